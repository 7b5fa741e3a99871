"""Which ``Host`` and ``Origin`` a live server answers: a guard against DNS rebinding.

A web page on ``evil.example`` cannot read ``http://127.0.0.1:8001`` (the
browser's same-origin rule), unless the attacker's DNS server first answers
``evil.example`` with a public address and then, moments later, with
127.0.0.1: the page's requests now reach this machine's dashboard while the
browser still believes they go to ``evil.example``. The one thing that
betrays them is the ``Host`` header, which still says ``evil.example``. So
both servers answer only a ``Host`` that is the bound address, a loopback
name (``localhost``, ``127.0.0.1``, ``[::1]``, any port) or one allowed
explicitly (``--allowed-host``); anything else gets 421 (Misdirected
Request) and nothing happens. A request without ``Host`` (HTTP/1.0, which
no browser sends) is let through.

Controls also check ``Origin`` when a browser sends one: it must be the
dashboard itself (same host and port as the ``Host`` header), so a page on
another local port cannot click the buttons either (403).

Pure: a frozen record and a few string functions; nothing here waits.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from playground import ConfigError

__all__ = ["HostGuard", "host_name"]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def host_name(netloc: str) -> str | None:
    """The host part of ``host[:port]`` (``[v6]:port`` too), lower-cased, or None if malformed."""
    netloc = netloc.strip().lower()
    if not netloc or any(c <= " " or c in "/\\@?#" for c in netloc):
        return None
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0 or (netloc[end + 1:] and not _port_ok(netloc[end + 1:])):
            return None
        return netloc[1:end] or None
    name, sep, port = netloc.rpartition(":")
    if not sep:
        name = netloc
    elif ":" in name:  # a bare IPv6 address without brackets is not a valid Host
        return None
    elif not _port_ok(sep + port):
        return None
    return name.rstrip(".") or None


def _port_ok(text: str) -> bool:
    return text.startswith(":") and text[1:].isdigit() and len(text) <= 6 and int(text[1:]) <= 65535


def _loopback(name: str) -> bool:
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class HostGuard:
    """The names a server answers to: loopback, ``bound`` and ``allowed``.

        guard = HostGuard("127.0.0.1", allowed=("demo.internal",))
        guard.refusal("evil.example:8001")   # -> a short reason; None means answer it
    """

    bound: str = "127.0.0.1"
    allowed: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = []
        for given in self.allowed:
            name = host_name(given) if isinstance(given, str) else None
            if name is None:
                raise ConfigError(f"allowed host must be a host name such as 'demo.example', got {given!r}")
            names.append(name)
        object.__setattr__(self, "allowed", tuple(names))

    def allows(self, name: str) -> bool:
        bound = self.bound.strip("[]").lower()
        return _loopback(name) or name == bound or name in self.allowed

    def refusal(self, host_header: str | None) -> str | None:
        """Why a request with this ``Host`` is refused (421), or None to answer it."""
        if host_header is None:
            return None
        name = host_name(host_header)
        if name is None:
            return f"malformed Host header {host_header[:100]!r}"
        if not self.allows(name):
            return (f"host {name[:100]!r} is not served here (DNS rebinding guard); "
                    f"to allow it, start with --allowed-host {name[:100]}")
        return None

    def origin_refusal(self, origin: str | None, host_header: str | None) -> str | None:
        """Why a control from this ``Origin`` is refused (403), or None: it must be this very server."""
        if origin is None:
            return None
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return f"controls are only taken from the dashboard's own page, not from origin {origin[:100]!r}"
        if host_header is not None and parts.netloc.lower() != host_header.strip().lower():
            return f"controls are only taken from the dashboard's own page, not from origin {origin[:100]!r}"
        name = host_name(parts.netloc)
        if name is None or not self.allows(name):
            return f"controls are only taken from the dashboard's own page, not from origin {origin[:100]!r}"
        return None
