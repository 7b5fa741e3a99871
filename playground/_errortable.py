"""The error table: what went wrong on a host, grouped by message, in bounded memory.

A real server's error log says "ValueError: bug in my handler" ten thousand
times; what a person wants is the line once, with how often, since when and
on which path - what Sentry or an APM's "top errors" page shows. A host keeps
one ``ErrorTable``: a row per distinct (exception type, message), with a
count, the first and last simulated time it happened, the request path of
its first occurrence and, when the engine recognises the mistake, a hint
(a handler that awaited asyncio code, a handler that returned a bad value).

Memory stays flat: at most ``limit`` distinct rows (20 by default); later
new messages are only counted, in ``other``. Nothing is recorded on the path
of a request that succeeds.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ErrorRecord", "ErrorTable", "describe"]

MESSAGE_CHARS = 300  # a longer message is cut: the table is for reading, not for dumps
ASYNCIO_HINT = ("this runs on trio, not asyncio: use await ctx.sleep(seconds) and trio-based libraries "
                "(asyncio futures, tasks and sleeps do not work here)")


@dataclass(frozen=True)
class ErrorRecord:
    """One row of a host's error table.

    ``error`` is the exception type (``"ValueError"``), ``message`` its text;
    ``first_s`` and ``last_s`` are simulated seconds since the run started;
    ``path`` is the request path of the first occurrence ("" if none).
    """

    error: str
    message: str
    count: int
    first_s: float
    last_s: float
    path: str = ""
    hint: str = ""

    def __str__(self) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.error}: {self.message} x{self.count}{hint}"


def _awaited_asyncio(exc: BaseException) -> bool:
    """Did ``exc`` come out of asyncio code (a handler awaiting an asyncio future or sleep)?"""
    text = str(exc)
    if isinstance(exc, RuntimeError) and "event loop" in text:
        return True
    if isinstance(exc, TypeError) and "asyncio" in text:
        return True
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").startswith("asyncio."):
            return True
        tb = tb.tb_next
    return False


def describe(exc: BaseException) -> tuple[str, str, str]:
    """(type name, message, hint) of an exception, as the table shows it."""
    message = str(exc) or repr(exc)
    if len(message) > MESSAGE_CHARS:
        message = message[:MESSAGE_CHARS - 3] + "..."
    hint = ASYNCIO_HINT if _awaited_asyncio(exc) else ""
    return type(exc).__name__, message, hint


class ErrorTable:
    """Rows by (error, message), at most ``limit`` of them; the rest counted in ``other``."""

    __slots__ = ("limit", "_rows", "other")

    def __init__(self, limit: int = 20) -> None:
        self.limit = limit
        self._rows: dict[tuple[str, str], list] = {}  # key -> [count, first_s, last_s, path, hint]
        self.other = 0

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def total(self) -> int:
        return sum(row[0] for row in self._rows.values()) + self.other

    def note(self, error: str, message: str, now_s: float, path: str = "", hint: str = "") -> None:
        """Count one occurrence of ``error: message`` at simulated time ``now_s``."""
        key = (error, message)
        row = self._rows.get(key)
        if row is not None:
            row[0] += 1
            row[2] = now_s
        elif len(self._rows) < self.limit:
            self._rows[key] = [1, now_s, now_s, path, hint]
        else:
            self.other += 1

    def note_exception(self, exc: BaseException, now_s: float, path: str = "", hint: str = "") -> None:
        error, message, found_hint = describe(exc)
        self.note(error, message, now_s, path, hint or found_hint)

    def records(self) -> tuple[ErrorRecord, ...]:
        """The rows, most frequent first (then earliest first)."""
        rows = [ErrorRecord(error, message, count, round(first, 9), round(last, 9), path, hint)
                for (error, message), (count, first, last, path, hint) in self._rows.items()]
        rows.sort(key=lambda r: (-r.count, r.first_s, r.error, r.message))
        return tuple(rows)

    def clear(self) -> None:
        self._rows.clear()
        self.other = 0
