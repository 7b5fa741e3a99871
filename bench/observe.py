"""What seeing a run costs: tracing on the hot path, and writing the HTML page and the OTLP file.

    python bench/observe.py

Runs one three-tier topology (balancer -> app server -> backend app server,
300 requests/s for 60 simulated seconds) with tracing off, at the default
share (1 in 1,000) and on every request, best of five each, interleaved, and prints the
wall time and the ratio to "off"; then the size and the time of
``report.to_html`` and ``report.traces_otlp``, and how many series rows and
traces the report kept (flat: they do not grow with the request count).
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components import AppServer, L7Balancer  # noqa: E402
from playground import Exponential, OpenLoop, Response, Sim  # noqa: E402


def build(trace_sample: float) -> Sim:
    sim = Sim(seed=1, trace_sample=trace_sample)

    async def front(request, ctx):
        await ctx.cpu(Exponential(0.002))
        await ctx.get("back", "/inner")
        return Response(200, body=b"ok")

    sim.add(AppServer("app", front, cores=2, calls=("back",)))
    sim.add(AppServer("back", cores=2, cpu_s=Exponential(0.004)))
    sim.add(L7Balancer("lb", ["app"]))
    sim.load(OpenLoop("lb", rate=300))
    sim.at(30, sim.crash, "back", 5)
    return sim


def main(repeat: int = 5) -> None:
    shares = (("off (trace_sample=0)", 0.0), ("1 in 1,000 (default)", 0.001), ("every request", 1.0))
    best = {share: float("inf") for _, share in shares}
    for _ in range(repeat):  # interleaved, so a busy machine slows every configuration alike
        for _, share in shares:
            sim = build(share)
            t = time.perf_counter()
            report = sim.run(duration_s=60)
            best[share] = min(best[share], time.perf_counter() - t)
    print(f"{'tracing':<22} {'wall s':>8} {'vs off':>7}   (best of {repeat}, interleaved)")
    for label, share in shares:
        print(f"{label:<22} {best[share]:>8.3f} {best[share] / best[0.0]:>7.2f}")
    print(f"\n{report.sent} requests; kept {len(report.traces)} traces, "
          f"{sum(len(r) for r in report.host_series.values())} series rows for {len(report.host_series)} hosts")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        report.to_html(Path(tmp) / "run.html")
        html_s = time.perf_counter() - t
        t = time.perf_counter()
        report.traces_otlp(Path(tmp) / "traces.json")
        otlp_s = time.perf_counter() - t
        html_kb = (Path(tmp) / "run.html").stat().st_size / 1024
        otlp_kb = (Path(tmp) / "traces.json").stat().st_size / 1024
    print(f"to_html: {html_kb:.0f} KB in {html_s * 1000:.0f} ms; traces_otlp: {otlp_kb:.0f} KB in {otlp_s * 1000:.0f} ms")


if __name__ == "__main__":
    main()
