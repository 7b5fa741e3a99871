"""One server under sustained overload: FIFO, deadlines, LIFO and CoDel.

A server that does 100 requests/s receives 150/s for 30 s; its accept queue
is deep (5,000) and clients give up after 1 s. First come, first served, the
backlog passes the timeout within seconds and from then on every answer is
late: the server is busy all along, for users who have left. Propagating the
client's deadline lets it skip those requests without spending CPU on them;
serving the newest first (LIFO) or shedding requests that waited too long
(CoDel, a 503 at once instead of a timeout later) keeps most answers fast.

    python examples/load_shedding.py
"""
from __future__ import annotations

from components import AppServer, CoDel
from playground import Exponential, OpenLoop, Sim


def run(discipline="fifo", propagate_deadline: bool = False, seed: int = 9):
    sim = Sim(seed=seed)
    sim.add(AppServer("app", cores=1, workers=1, cpu_s=Exponential(0.01), queue_limit=5000,
                      queue_discipline=discipline))
    sim.load(OpenLoop("app", rate=150, timeout_s=1.0, propagate_deadline=propagate_deadline))
    return sim.run(30)


def main() -> dict:
    runs = {
        "FIFO": run("fifo"),
        "FIFO + deadline": run("fifo", propagate_deadline=True),
        "LIFO": run("lifo"),
        "CoDel 50 ms": run(CoDel(target_s=0.05, interval_s=0.1)),
    }
    print("150 requests/s at a server that does 100/s; clients give up after 1 s")
    for name, r in runs.items():
        app = r.component("app")
        extra = ""
        if app.detail.get("deadline_skipped"):
            extra = f", {app.detail['deadline_skipped']:,} skipped past their deadline"
        if app.detail.get("shed"):
            extra = f", {app.detail['shed']:,} shed with 503"
        print(f"{name:>16}: {r.ok / r.sent:4.0%} answered in time (p50 {r.p50_s * 1000:5,.0f} ms), "
              f"{r.errors.get('timeout', 0):,} timeouts{extra}")
    return runs


if __name__ == "__main__":
    main()
