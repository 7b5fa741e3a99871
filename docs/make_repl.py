"""Replay the sessions in docs/REPL.md and write back what each line prints now.

Every ```` ```pycon ```` block of the page is a piece of an interpreter session:
``>>>`` and ``...`` lines are typed, the lines after them are what came back.
A block whose first line is ``$ python -m trio`` starts a new session run
inside trio (top-level ``await`` works, as in trio's REPL); any other block
goes on with the session before it (a plain ``python`` one, for the first).
The examples run under virtual time with fixed seeds, so the output is the
same on every machine; rich tables are drawn at ``COLUMNS=100``.

    python docs/make_repl.py            # rewrite the outputs in docs/REPL.md
    python docs/make_repl.py --check    # exit 1 if any is stale (tests/test_docs_repl.py does this too)
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import doctest
import io
import itertools
import os
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "REPL.md"
COLUMNS = 100
TRIO_SESSION = "$ python -m trio"
_BLOCK = re.compile(r"^```pycon\n(.*?)^```$", re.S | re.M)


@dataclass(frozen=True)
class Line:
    """One typed entry of a session: where it is on the page, what it printed there and now."""

    block: int
    lineno: int  # within its block, of the first ``>>>`` line
    source: str
    want: str
    got: str


class Session:
    """One interpreter: its globals, and a way to run an entry as the REPL would (echoing values)."""

    def __init__(self) -> None:
        self.globs: dict = {"__name__": "__main__"}

    def _compile(self, source: str):
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        return compile(source, "<stdin>", "single", flags=flags, dont_inherit=True)

    async def run_async(self, source: str) -> str:
        with _captured() as out:
            try:
                result = eval(self._compile(source), self.globs)
                if result is not None:  # an entry with a top-level await compiles to a coroutine
                    await result
            except Exception:
                _print_exception()
        return out.getvalue()

    def run(self, source: str) -> str:
        with _captured() as out:
            try:
                result = eval(self._compile(source), self.globs)
                if result is not None:
                    result.close()
                    raise SyntaxError("'await' outside a trio session: start the block with " + TRIO_SESSION)
            except Exception:
                _print_exception()
        return out.getvalue()


@contextlib.contextmanager
def _captured():
    out = io.StringIO()
    saved_hook = sys.displayhook
    sys.displayhook = sys.__displayhook__  # writes repr(value) to sys.stdout, as the REPL does
    try:
        with contextlib.redirect_stdout(out):
            yield out
    finally:
        sys.displayhook = saved_hook


def _print_exception() -> None:
    kind, value, _ = sys.exc_info()
    print("Traceback (most recent call last):\n  ...")
    print("".join(traceback.format_exception_only(kind, value)).rstrip())


def replay(page: str) -> list[Line]:
    """Run every session of ``page`` and return each entry with its old and new output."""
    import trio

    old_columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(COLUMNS)
    try:
        lines: list[Line] = []
        pending: list[tuple[int, str]] = []  # the current plain session's blocks

        def flush_plain() -> None:
            session = Session()
            for b, text in pending:
                for ex in doctest.DocTestParser().get_examples(text):
                    lines.append(Line(b, ex.lineno, ex.source, ex.want, session.run(ex.source)))
            pending.clear()

        blocks = _BLOCK.findall(page)
        b = 0
        while b < len(blocks):
            if not blocks[b].startswith(TRIO_SESSION):
                pending.append((b, blocks[b]))
                b += 1
                continue
            flush_plain()
            group = [(b, blocks[b])]
            b += 1
            while b < len(blocks) and not blocks[b].startswith(TRIO_SESSION):
                group.append((b, blocks[b]))
                b += 1

            async def session_in_trio(group=group) -> None:
                session = Session()
                for gb, text in group:
                    for ex in doctest.DocTestParser().get_examples(text):
                        lines.append(Line(gb, ex.lineno, ex.source, ex.want, await session.run_async(ex.source)))

            trio.run(session_in_trio)
        flush_plain()
        return lines
    finally:
        if old_columns is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old_columns


def shown(output: str) -> str:
    """Output as the page shows it: no trailing spaces (rich pads its lines), no trailing blank lines."""
    text = "\n".join(line.rstrip() for line in output.splitlines()).rstrip("\n")
    return text + "\n" if text else ""


def stale(lines: list[Line]) -> list[Line]:
    """The entries whose output on the page is not what they print now."""
    return [line for line in lines if shown(line.want) != shown(line.got)]


def rewrite(page: str, lines: list[Line]) -> str:
    """``page`` with each entry's output replaced by what it printed now."""
    by_block: dict[int, list[Line]] = {}
    for line in lines:
        by_block.setdefault(line.block, []).append(line)
    count = itertools.count()

    def block(match: re.Match) -> str:
        b = next(count)
        text_lines = match.group(1).splitlines(keepends=True)
        entries = by_block.get(b, [])
        out: list[str] = text_lines[:entries[0].lineno] if entries else text_lines
        for i, entry in enumerate(entries):
            typed = 1  # the >>> line and its ... lines, as on the page (doctest drops an empty "...")
            while entry.lineno + typed < len(text_lines) and text_lines[entry.lineno + typed].startswith("..."):
                typed += 1
            out += text_lines[entry.lineno:entry.lineno + typed]
            out.append(shown(entry.got))
            end = entries[i + 1].lineno if i + 1 < len(entries) else len(text_lines)
            old_want = entry.lineno + typed + entry.want.count("\n")
            out += text_lines[old_want:end]  # what follows the old output (nothing, or prose lines)
        return "```pycon\n" + "".join(out) + "```"

    return _BLOCK.sub(block, page)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="exit 1 if the page is stale; change nothing")
    a = p.parse_args(argv)
    page = PAGE.read_text()
    lines = replay(page)
    bad = stale(lines)
    if a.check:
        for line in bad:
            print(f"docs/REPL.md, block {line.block + 1}: >>> {line.source.splitlines()[0]}\n"
                  f"  on the page: {shown(line.want)!r}\n  now:         {shown(line.got)!r}")
        print(f"{len(lines)} entries, {len(bad)} stale" + ("" if not bad else ": run python docs/make_repl.py"))
        return 1 if bad else 0
    PAGE.write_text(rewrite(page, lines))
    print(f"{len(lines)} entries replayed, {len(bad)} updated in {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
