"""The database's storage: real SQLite, a write log, and a statement classifier.

A real database keeps its rows on disk and, before it acknowledges a write,
records the write in a log (PostgreSQL's WAL, MySQL's binlog). The log is what
makes a committed write survive a crash and what a read replica replays to
follow its primary. This module is that storage, with no waiting in it: the
``Database`` host (``database.py``) decides *when* a statement runs (after its
injected IO latency); this module only runs it.

Kept: real SQL on the standard library's ``sqlite3`` (in memory by default, a
file with ``path=``), every statement its own transaction (autocommit), a
version number per committed write (the log sequence number), the log of
committed writes while some replica may still need them, and a ``kv`` table for
the common key-value case. Left out: multi-statement transactions (``BEGIN``
is refused), isolation levels, locking between writers (statements run one at
a time, in simulated-time order), and anything that would make SQLite open
another file (``ATTACH``, ``VACUUM``).

Replication replays statements (MySQL's statement-based replication): a
statement whose result depends on the moment it runs (``random()``,
``CURRENT_TIMESTAMP``) can give a replica a different row than its primary.

    >>> store = SqlStore()
    >>> store.write("CREATE TABLE t(x)", ()).version
    1
    >>> store.write("INSERT INTO t VALUES (?)", [42]).rowcount
    1
    >>> store.read("SELECT x FROM t", ()).rows
    [(42,)]
"""
from __future__ import annotations

import json
import re
import sqlite3
import weakref
from collections import deque
from dataclasses import dataclass
from os import PathLike
from typing import Any, Literal, NamedTuple, Sequence

__all__ = ["SqlStore", "Result", "LogEntry", "StatementError", "classify", "dumps", "loads", "READ", "WRITE"]

READ: Literal["read"] = "read"
WRITE: Literal["write"] = "write"

_NOISE = re.compile(r"--[^\n]*|/\*.*?(?:\*/|$)|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|\[[^\]]*\]", re.S)
_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_READ_VERBS = frozenset({"SELECT", "VALUES", "EXPLAIN"})
_WRITE_WORDS = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE"})
_TRANSACTION_VERBS = frozenset({"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"})
_FILE_VERBS = frozenset({"ATTACH", "DETACH", "VACUUM"})

_KV_SCHEMA = "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, version INTEGER NOT NULL)"
_KV_PUT = ("INSERT INTO kv (key, value, version) VALUES (?, ?, ?) "
           "ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version")
_KV_DELETE = "DELETE FROM kv WHERE key = ?"

Params = Sequence[Any] | dict[str, Any]


class StatementError(ValueError):
    """A statement the database refuses before running it (empty, BEGIN, ATTACH ...)."""


def classify(sql: str) -> Literal["read", "write"]:
    """``"read"`` for a statement that only reads (SELECT, WITH ... SELECT), else ``"write"``.

        >>> classify("WITH recent AS (SELECT 1) SELECT * FROM recent"), classify("UPDATE t SET x = 1")
        ('read', 'write')

    Raises ``StatementError`` for an empty statement and for the ones this
    model refuses: transaction control and statements that open files.
    """
    if not isinstance(sql, str):
        raise StatementError(f"sql must be a string, got {sql!r}")
    words = _WORD.findall(_NOISE.sub(" ", sql))
    if not words:
        raise StatementError("empty SQL statement")
    verb = words[0].upper()
    if verb in _TRANSACTION_VERBS:
        raise StatementError(f"{verb} is not supported: each query runs in its own transaction")
    if verb in _FILE_VERBS:
        raise StatementError(f"{verb} is not allowed: the database does not open other files")
    if verb in _READ_VERBS:
        return READ
    if verb == "WITH":
        return WRITE if any(w.upper() in _WRITE_WORDS for w in words) else READ
    if verb == "PRAGMA":
        return WRITE if "=" in _NOISE.sub(" ", sql) else READ
    return WRITE


@dataclass(frozen=True)
class Result:
    """What one statement gave: its rows (tuples), column names, rows changed, and the store's version."""

    rows: list[tuple]
    columns: tuple[str, ...]
    rowcount: int
    lastrowid: int | None
    version: int


class LogEntry(NamedTuple):
    """One committed write, as a replica replays it. ``params`` None means a script."""

    version: int
    sql: str
    params: Any
    committed_at: float

    def to_json(self) -> list:
        return [self.version, self.sql, self.params, self.committed_at]

    @classmethod
    def from_json(cls, item: Sequence[Any]) -> "LogEntry":
        version, sql, params, committed_at = item
        return cls(int(version), str(sql), params, float(committed_at))


class SqlStore:
    """One SQLite database, its version (count of committed writes) and its write log.

    ``keep_log`` says whether committed writes are kept for replicas; the host
    turns it on when it has replicas and trims entries every replica has applied.
    """

    def __init__(self, path: str | PathLike[str] | None = None) -> None:
        self.path = ":memory:" if path is None else path
        # autocommit: one statement, one commit. Any thread may use it (one at a time): a Sim built in
        # `python -m trio` runs its virtual-time simulation in a worker thread.
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._finalizer = weakref.finalize(self, self.conn.close)
        self.conn.execute(_KV_SCHEMA)
        self.version = 0
        self.keep_log = False
        self.log: deque[LogEntry] = deque()

    # -- statements ---------------------------------------------------------------
    def read(self, sql: str, params: Params = ()) -> Result:
        """Run a read. It runs with writes forbidden, so a misclassified write fails instead of writing."""
        conn = self.conn
        conn.execute("PRAGMA query_only = ON")
        try:
            cur = conn.execute(sql, params)
            rows = cur.fetchall()
        finally:
            conn.execute("PRAGMA query_only = OFF")
        return Result(rows, _columns(cur), len(rows), None, self.version)

    def write(self, sql: str, params: Params = (), now: float = 0.0) -> Result:
        """Run a write and commit it: the version advances and the write is logged for replicas."""
        cur = self.conn.execute(sql, params)
        rows = cur.fetchall()  # INSERT ... RETURNING; also finishes (commits) the statement
        self._committed(sql, _plain_params(params), now)
        return Result(rows, _columns(cur), max(cur.rowcount, 0), cur.lastrowid, self.version)

    def script(self, sql: str, now: float = 0.0) -> int:
        """Run several statements (a schema) as one logged write; returns the new version."""
        self.conn.executescript(sql)
        self._committed(sql, None, now)
        return self.version

    def _committed(self, sql: str, params: Any, now: float) -> None:
        self.version += 1
        if self.keep_log:
            self.log.append(LogEntry(self.version, sql, params, now))

    # -- the key-value table ----------------------------------------------------------
    def kv_get(self, key: str) -> tuple[str, int] | None:
        """``(value, version)`` of ``key``, or None."""
        row = self.conn.execute("SELECT value, version FROM kv WHERE key = ?", (key,)).fetchone()
        return (row[0], row[1]) if row else None

    def kv_put(self, key: str, value: str, now: float = 0.0) -> int:
        """Store ``value`` under ``key``; returns the write's version."""
        version = self.version + 1
        self.write(_KV_PUT, (key, value, version), now)
        return version

    def kv_delete(self, key: str, now: float = 0.0) -> bool:
        """Delete ``key``; False (and no write logged) if it was not there."""
        if self.kv_get(key) is None:
            return False
        self.write(_KV_DELETE, (key,), now)
        return True

    # -- replication ---------------------------------------------------------------------
    def log_after(self, version: int, limit: int) -> list[LogEntry]:
        """Up to ``limit`` logged writes after ``version``, in order."""
        log = self.log
        if not log or version >= log[-1].version:
            return []
        start = max(0, version + 1 - log[0].version)
        return [log[i] for i in range(start, min(len(log), start + limit))]

    def covers(self, version: int) -> bool:
        """Whether the log holds every write after ``version`` (a replica there can catch up)."""
        if version >= self.version:
            return True
        return bool(self.log) and self.log[0].version <= version + 1

    def trim_log(self, applied_everywhere: int) -> None:
        """Forget logged writes that every replica has applied."""
        log = self.log
        while log and log[0].version <= applied_everywhere:
            log.popleft()

    def apply(self, entry: LogEntry) -> None:
        """Replay a write from the primary; the version follows the primary's even if the replay fails."""
        try:
            if entry.params is None:
                self.conn.executescript(entry.sql)
            else:
                self.conn.execute(entry.sql, entry.params).fetchall()
        finally:
            self.version = entry.version
            if self.keep_log:
                self.log.append(entry)

    def copy_from(self, other: "SqlStore") -> None:
        """Become a copy of ``other`` (a replica restored from a base backup)."""
        other.conn.backup(self.conn)
        self.version = other.version
        self.log.clear()

    # -- looking at it ------------------------------------------------------------------------
    def kv_rows(self) -> int:
        return self.conn.execute("SELECT count(*) FROM kv").fetchone()[0]

    def tables(self) -> list[str]:
        """User tables (the ``kv`` table included)."""
        rows = self.conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        return [r[0] for r in rows]

    def close(self) -> None:
        self._finalizer()


def dumps(data: Any) -> bytes:
    """JSON for the wire; BLOBs (``bytes``) travel as ``{"$bytes": hex}`` and come back as bytes."""
    return json.dumps(data, default=_encode_bytes, separators=(",", ":")).encode()


def loads(body: bytes) -> Any:
    return json.loads(body, object_hook=_decode_bytes)


def _encode_bytes(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"$bytes": bytes(obj).hex()}
    raise TypeError(f"cannot send {type(obj).__name__} over the wire: {obj!r}")


def _decode_bytes(obj: dict) -> Any:
    if len(obj) == 1 and "$bytes" in obj:
        return bytes.fromhex(obj["$bytes"])
    return obj


def _columns(cur: sqlite3.Cursor) -> tuple[str, ...]:
    return tuple(d[0] for d in cur.description) if cur.description else ()


def _plain_params(params: Params) -> Any:
    """Params as JSON-friendly data, so a log entry can travel to a replica."""
    if isinstance(params, dict):
        return dict(params)
    return list(params)
