"""docs/REPL.md is a true record: every line of its sessions, replayed, prints what the page shows.

``docs/make_repl.py`` replays the page's ``pycon`` blocks (the plain session with
``sim.run``, the ``python -m trio`` one with ``await sim.run_async``); this fails
when a change to the engine or a component changed any of that output.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("make_repl", ROOT / "docs" / "make_repl.py")
make_repl = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("make_repl", make_repl)  # its dataclasses look their module up
_spec.loader.exec_module(make_repl)


def test_every_line_of_the_repl_page_prints_what_the_page_shows():
    lines = make_repl.replay(make_repl.PAGE.read_text())
    assert len(lines) >= 30 and any("await " in line.source for line in lines)  # both sessions ran
    stale = make_repl.stale(lines)
    assert not stale, "docs/REPL.md is stale (run python docs/make_repl.py):\n" + "\n".join(
        f">>> {line.source.splitlines()[0]}\n  page: {make_repl.shown(line.want)!r}\n  now:  {make_repl.shown(line.got)!r}"
        for line in stale)


def test_a_line_that_prints_something_else_is_caught_and_rewritten():
    page = "```pycon\n>>> 1 + 1\n3\n>>> print('a')\na\n```\n\n```pycon\n$ python -m trio\n>>> import trio\n" \
           ">>> await trio.sleep(0) or 'slept'\n'slept'\n```\n"
    lines = make_repl.replay(page)
    assert [make_repl.shown(line.got) for line in lines] == ["2\n", "a\n", "", "'slept'\n"]
    assert [line.source for line in make_repl.stale(lines)] == ["1 + 1\n"]
    assert make_repl.rewrite(page, lines) == page.replace(">>> 1 + 1\n3\n", ">>> 1 + 1\n2\n")
