"""An aiocache backend whose storage is a simulated ``CacheServer``.

Application code written against aiocache (``await cache.get(key)``,
``await cache.set(key, value, ttl=60)``) runs unchanged inside a playground
app server: each call becomes a request over the simulated network to a
``CacheServer`` host, paying link latency, the server's queue, its evictions,
and its crashes. Swapping ``SimulatedCache`` for aiocache's ``RedisCache`` is
the step from the model to production.

aiocache under trio. aiocache 0.12.3 is written for asyncio, and two of its
features use asyncio directly: the per-operation ``timeout`` (``API.timeout``
wraps every call in ``asyncio.wait_for``) and TTLs in its memory backend
(``loop.call_later``). Measured by the team: aiocache works under trio only
with ``timeout=None``. So this backend

* forces ``timeout=None`` (any other value is a ``ConfigError``; a per-call
  ``timeout=`` other than None or 0 would fail the same way - do not pass one)
  and offers ``op_timeout_s`` instead: a deadline on the simulated network
  call, on virtual time, raising ``playground.Timeout``;
* implements TTL by sending it to the server as ``x-ttl``, where it runs on
  the simulated clock (cachetools with a timer reading virtual time). A set
  without a ttl leaves the server's default (``CacheServer(ttl_s=...)``).

Both are exercised by tests/test_caching_story.py (the "d" scenarios). aiocache's
plugins still time calls with ``time.monotonic`` (wall clock): their ``took``
is not simulated time.

Serialization is aiocache's own: ``serializer=`` takes any
``aiocache.serializers`` object (default ``JsonSerializer``, as aiocache's
Redis backend); str results are sent as UTF-8 (or the serializer's encoding).

Supported: get, multi_get, set, multi_set, add, exists, delete, expire (read
and re-store), clear (the whole server, like aiocache's memcached backend:
namespaces are not tracked). Not supported: increment, raw, optimistic locks
(cas tokens). A network failure (host down, timeout) raises the
``playground.RequestError`` subclass; a server error raises ``RuntimeError``.

    cache = SimulatedCache(app_server, "cache", serializer=PickleSerializer())
    await cache.set("user:1", {"name": "ada"}, ttl=30)
    await cache.get("user:1")          # {'name': 'ada'}, until 30 simulated seconds pass
"""
from __future__ import annotations


from aiocache.base import BaseCache
from aiocache.serializers import JsonSerializer

from playground import ConfigError, Node, Request, Response
from playground._errors import check_positive
from playground._messages import quote_key

from .cache import PREFIX

__all__ = ["SimulatedCache"]


class SimulatedCache(BaseCache):
    """aiocache's API over the simulated network. ``caller`` is the host the code runs on
    (a ``Node``, or an app server ``Context``); ``cache_host`` the ``CacheServer``'s name.

        cache = SimulatedCache(app, "cache", namespace="users:", ttl=60)
        await cache.set("1", {"name": "ada"})
    """

    NAME = "playground"

    def __init__(self, caller, cache_host: str = "cache", *, op_timeout_s: float | None = 1.0,
                 serializer=None, timeout=None, **kwargs) -> None:
        if timeout not in (None, 0):
            raise ConfigError(f"timeout must be None: aiocache's timeout uses asyncio.wait_for, which fails "
                              f"under trio (use op_timeout_s for a simulated deadline), got {timeout!r}")
        host = getattr(caller, "server", caller)
        if not isinstance(host, Node):
            raise ConfigError(f"caller must be a Node or an app server Context, got {caller!r}")
        if not isinstance(cache_host, str) or not cache_host:
            raise ConfigError(f"cache_host must be a host name, got {cache_host!r}")
        if op_timeout_s is not None:
            check_positive("op_timeout_s", op_timeout_s)
        super().__init__(serializer=serializer or JsonSerializer(), timeout=None, **kwargs)
        self.caller = caller
        self.cache_host = cache_host
        self.op_timeout_s = op_timeout_s

    # -- one request -------------------------------------------------------------------
    async def _request(self, method: str, key: str, body: bytes = b"", headers: dict | None = None) -> Response:
        path = PREFIX + quote_key(str(key))
        resp = await self.caller.call(self.cache_host, Request(method, path, headers or {}, body), self.op_timeout_s)
        if resp.status >= 500 or resp.status in (400, 405, 413):
            raise RuntimeError(f"cache {self.cache_host!r} answered {resp.status} to {method} {path}: {resp.text}")
        return resp

    def _body(self, value) -> bytes:
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        return str(value).encode(self.serializer.encoding or "utf-8")

    @staticmethod
    def _ttl_headers(ttl) -> dict[str, str]:
        return {"x-ttl": repr(float(ttl))} if ttl else {}

    # -- aiocache's backend interface ----------------------------------------------------
    async def _get(self, key, encoding="utf-8", _conn=None):
        resp = await self._request("GET", key)
        if resp.status == 404:
            return None
        return resp.body.decode(encoding) if encoding else resp.body

    async def _gets(self, key, encoding="utf-8", _conn=None):
        return await self._get(key, encoding=encoding, _conn=_conn)

    async def _multi_get(self, keys, encoding="utf-8", _conn=None):
        return [await self._get(key, encoding=encoding) for key in keys]

    async def _set(self, key, value, ttl=None, _cas_token=None, _conn=None):
        if _cas_token is not None:
            raise NotImplementedError("SimulatedCache does not support cas tokens")
        await self._request("PUT", key, self._body(value), self._ttl_headers(ttl))
        return True

    async def _multi_set(self, pairs, ttl=None, _conn=None):
        for key, value in pairs:
            await self._set(key, value, ttl=ttl)
        return True

    async def _add(self, key, value, ttl=None, _conn=None):
        headers = {**self._ttl_headers(ttl), "x-if-absent": "1"}
        resp = await self._request("PUT", key, self._body(value), headers)
        if resp.status == 409:
            raise ValueError(f"Key {key} already exists, use .set to update the value")
        return True

    async def _exists(self, key, _conn=None):
        return (await self._request("GET", key)).status == 200

    async def _delete(self, key, _conn=None):
        return 1 if (await self._request("DELETE", key)).status == 204 else 0

    async def _expire(self, key, ttl, _conn=None):
        resp = await self._request("GET", key)
        if resp.status != 200:
            return False
        headers = {"x-ttl": repr(float(ttl)) if ttl else "0"}
        if "x-flags" in resp.headers:
            headers["x-flags"] = resp.headers["x-flags"]
        await self._request("PUT", key, resp.body, headers)
        return True

    async def _clear(self, namespace=None, _conn=None):
        await self._request("DELETE", "")
        return True

    def __repr__(self) -> str:
        return f"<SimulatedCache -> {self.cache_host!r} serializer={type(self.serializer).__name__}>"
