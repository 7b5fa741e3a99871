"""The README's "Testing your own idea" passes outside this repository, as a user's own project.

The README's ``pytest.ini`` and test are copied, verbatim, into an empty
directory and run there with ``python -m pytest`` in a subprocess: only what
the README says is needed (trio mode in the config, the ``virtual_clock``
fixture from the package's pytest plugin). The package is imported as
installed; when it is not installed (a bare checkout), ``PYTHONPATH`` points
at this repository and its plugin is named with ``-p``, which is what the
entry point would do.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANG_GUARD_S = 600


def readme_blocks(section: str) -> dict[str, str]:
    """The fenced blocks of one README section, by language."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return {lang: code for lang, code in re.findall(r"```(\w+)\n(.*?)```", body, re.S)}


def plugin_installed() -> bool:
    return any(ep.value == "playground.testing" for ep in metadata.entry_points(group="pytest11"))


def test_the_readme_test_passes_in_a_project_of_its_own(tmp_path):
    blocks = readme_blocks("Testing your own idea")
    assert "trio_mode = true" in blocks["ini"] and "virtual_clock" in blocks["python"]
    (tmp_path / "pytest.ini").write_text(blocks["ini"], encoding="utf-8")
    (tmp_path / "test_p99.py").write_text(blocks["python"], encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    extra = [] if plugin_installed() else ["-p", "playground.testing"]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^1 passed", done.stdout.splitlines()[-1]), done.stdout
