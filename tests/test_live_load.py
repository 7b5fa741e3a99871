"""A bounded load from a separate process against `playground serve` (bench/live_load.py, shortened)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "live_load.py"


def test_a_real_load_from_another_process_is_answered_and_the_server_stops_cleanly():
    # the waits are hang guards for a busy machine: a request unanswered for 60 s is a hang, not slowness
    out = subprocess.run([sys.executable, str(SCRIPT), "--seconds", "3", "--clients", "8", "--hang-s", "60"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().splitlines()[-1] == "OK: every response accounted for, no hangs, server up"
    assert "SIGINT: the server stopped with exit code 0" in out.stdout
