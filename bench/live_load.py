"""A bounded real load from a separate process against ``playground serve``.

Starts ``python -m playground serve`` on free ports of 127.0.0.1, drives its
front door for ``--seconds`` (20) with ``--clients`` (32) threads of httpx,
each request with a 10 s client timeout, and then checks what a user of a
real server would: the server is still up (a last request is answered), every
response is accounted for (2xx or a simulated 5xx; no hangs, no connection
errors), and Ctrl-C (SIGINT) stops it cleanly with its report.

    python bench/live_load.py
    python bench/live_load.py --seconds 5 --clients 8

Exits 1 if any check fails; the last line is a one-line verdict.
"""
from __future__ import annotations

import argparse
import collections
import queue
import signal
import subprocess
import sys
import threading
import time

import httpx


def start_server(extra: list[str], start_s: float = 120.0) -> tuple[subprocess.Popen, str, str]:
    cmd = [sys.executable, "-m", "playground", "serve", "--port", "0", "--dashboard-port", "0", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    door = dash = ""
    deadline = time.monotonic() + start_s
    while not (door and dash):
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            proc.kill()
            raise SystemExit(f"the server did not announce its addresses within {start_s:g} s") from None
        if line.startswith("front door:"):
            door = line.split()[2]
        elif line.startswith("dashboard:"):
            dash = line.split()[1].rstrip("/")
    proc.lines = lines  # type: ignore[attr-defined]
    return proc, door, dash


def drive(door: str, seconds: float, clients: int, hang_s: float = 10.0) -> tuple[collections.Counter, list[float]]:
    outcomes: collections.Counter = collections.Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(i: int) -> None:
        with httpx.Client(base_url=door, timeout=hang_s) as http:
            n = 0
            while n == 0 or time.monotonic() < stop_at:  # at least one each, however slow the start
                n += 1
                t0 = time.perf_counter()
                try:
                    status = http.get(f"/item/{(i * 7919 + n) % 1000}").status_code
                    key = f"{status // 100}xx"
                except httpx.TimeoutException:
                    key = "client timeout (hang)"
                except httpx.HTTPError as exc:
                    key = f"connection error ({type(exc).__name__})"
                with lock:
                    outcomes[key] += 1
                    latencies.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes, latencies


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--users", type=int, default=20, help="simulated users inside the topology, besides this load")
    p.add_argument("--hang-s", type=float, default=10.0,
                   help="a request unanswered for this long counts as a hang (a busy machine wants more)")
    a = p.parse_args(argv)
    proc, door, dash = start_server(["--users", str(a.users)])
    print(f"server up: front door {door}, dashboard {dash}")
    failures = []
    try:
        outcomes, lat = drive(door, a.seconds, a.clients, a.hang_s)
        total = sum(outcomes.values())
        lat.sort()
        p50 = lat[len(lat) // 2] * 1000 if lat else 0.0
        p99 = lat[int(len(lat) * 0.99)] * 1000 if lat else 0.0
        print(f"{total:,} requests in {a.seconds:g} s from {a.clients} clients ({total / a.seconds:,.0f}/s); "
              f"wall-clock p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        for key, n in sorted(outcomes.items()):
            print(f"  {key:<32} {n:>8,}")
        unaccounted = {k: n for k, n in outcomes.items() if k not in ("2xx", "5xx")}
        if unaccounted:
            failures.append(f"responses neither 2xx nor a simulated 5xx: {unaccounted}")
        if not total:
            failures.append("no request was answered")
        after = httpx.get(f"{door}/item/1", timeout=a.hang_s)
        state = httpx.get(f"{dash}/api/state", timeout=a.hang_s)
        print(f"after the load: front door {after.status_code}, dashboard state {state.status_code}")
        if after.status_code >= 500 or state.status_code != 200:
            failures.append("the server was not healthy after the load")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=max(30.0, a.hang_s))
        except subprocess.TimeoutExpired:
            proc.kill()
            code = None
    report = []
    while not proc.lines.empty():  # type: ignore[attr-defined]
        report.append(proc.lines.get())  # type: ignore[attr-defined]
    if code != 0:
        failures.append(f"SIGINT did not stop the server cleanly (exit code {code})")
    elif not any("Run:" in line for line in report):
        failures.append("the server stopped without printing its report")
    else:
        print("SIGINT: the server stopped with exit code 0 and printed its report")
    print("FAIL: " + "; ".join(failures) if failures else "OK: every response accounted for, no hangs, server up")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
