"""Sampled requests record their path as spans; the slowest and a sample are kept; OTLP/JSON comes out."""
from __future__ import annotations

import json
import re

import pytest

from components import AppServer, L7Balancer
from playground import ConfigError, Exponential, OpenLoop, Response, Sim


def three_tiers(trace_sample: float = 0.01, seed: int = 1, rate: float = 200) -> Sim:
    sim = Sim(seed=seed, trace_sample=trace_sample)

    async def front(request, ctx):
        await ctx.cpu(0.002)
        await ctx.get("back", "/inner")
        return Response(200, body=b"ok")

    sim.add(AppServer("app", front, cores=2, calls=("back",)))
    sim.add(AppServer("back", cores=1, cpu_s=Exponential(0.004)))
    sim.add(L7Balancer("lb", ["app"]))
    sim.load(OpenLoop("lb", rate=rate))
    return sim


def test_tracing_changes_no_other_figure():
    plain = three_tiers(trace_sample=0.0).run(duration_s=3)
    assert plain.traces == []
    for share in (0.01, 1.0):
        traced = three_tiers(trace_sample=share).run(duration_s=3)
        assert traced.traces and traced.to_json() == plain.to_json()


def test_the_same_seed_samples_the_same_requests():
    a, b = three_tiers().run(duration_s=3), three_tiers().run(duration_s=3)
    assert [t.trace_id for t in a.traces] == [t.trace_id for t in b.traces]
    assert [t.request_id for t in a.traces] == [t.request_id for t in b.traces]


def test_a_trace_follows_the_request_through_balancer_app_and_backend():
    trace = three_tiers().run(duration_s=3).traces[0]
    by_id = {s.span_id: s for s in trace.spans}
    root = trace.spans[0]
    assert (root.kind, root.host, root.parent_id, root.status) == ("client", "client", "", 200)
    path = [(s.host, s.kind, s.name.split(" ")[0]) for s in trace.spans if s.kind != "internal"]
    assert path == [("client", "client", "GET"), ("lb", "server", "GET"), ("lb", "client", "call"),
                    ("app", "server", "GET"), ("app", "client", "call"), ("back", "server", "GET")]
    names = {(s.host, s.name) for s in trace.spans}
    assert ("app", "cpu") in names and ("back", "cpu") in names
    for s in trace.spans:
        assert re.fullmatch(r"[0-9a-f]{16}", s.span_id)
        if s.parent_id:  # children sit inside their parents
            parent = by_id[s.parent_id]
            assert parent.start_s - 1e-9 <= s.start_s <= s.end_s <= parent.end_s + 1e-9
    for server in (s for s in trace.spans if s.kind == "server"):
        inner = [s for s in trace.spans if s.parent_id == server.span_id]
        assert sum(s.duration_s for s in inner) <= server.duration_s + 1e-9  # steps in a host run one after another
    assert abs(trace.duration_s - root.duration_s) < 1e-9


def test_memory_stays_flat_and_the_slowest_are_kept():
    report = three_tiers(trace_sample=1.0, rate=300).run(duration_s=5)
    assert report.sent > 1000
    slow = [t for t in report.traces if t.slowest]
    sample = [t for t in report.traces if not t.slowest]
    assert len(slow) == 20 and len(sample) == 100
    assert slow[0].duration_s == pytest.approx(report.latency.max_s, abs=1e-9)
    assert [t.duration_s for t in slow] == sorted((t.duration_s for t in slow), reverse=True)
    assert min(t.duration_s for t in slow) >= max(t.duration_s for t in sample) - 1e-9


def test_a_crash_shows_as_reset_and_refused_spans():
    sim = three_tiers(trace_sample=1.0)
    sim.at(1, sim.crash, "back", 1)
    report = sim.run(duration_s=3)
    errors = {(s.host, s.error) for t in report.traces for s in t.spans if s.error}
    assert ("back", "refused") in errors or ("back", "reset") in errors
    assert ("app", "refused") in errors or ("app", "reset") in errors  # the call span says how it failed


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "often"])
def test_the_share_is_a_probability(bad):
    with pytest.raises(ConfigError, match=rf"^trace_sample must be between 0 and 1, got {re.escape(repr(bad))}$"):
        Sim(trace_sample=bad)


def test_traces_otlp_writes_the_shape_jaeger_and_tempo_load(tmp_path):
    report = three_tiers().run(duration_s=3)
    path = tmp_path / "traces.json"
    assert report.traces_otlp(path) == len(report.traces) > 0
    doc = json.loads(path.read_text())
    services = []
    spans = []
    for rs in doc["resourceSpans"]:
        (attr,) = rs["resource"]["attributes"]
        assert attr["key"] == "service.name"
        services.append(attr["value"]["stringValue"])
        (scope,) = rs["scopeSpans"]
        assert scope["scope"]["name"] == "playground"
        spans += scope["spans"]
    assert sorted(services) == ["app", "back", "client", "lb"]  # one resource per host
    ids = {(s["traceId"], s["spanId"]) for s in spans}
    for s in spans:
        assert re.fullmatch(r"[0-9a-f]{32}", s["traceId"]) and re.fullmatch(r"[0-9a-f]{16}", s["spanId"])
        assert s["kind"] in (1, 2, 3) and s["status"]["code"] in (1, 2)
        assert re.fullmatch(r"\d+", s["startTimeUnixNano"]) and re.fullmatch(r"\d+", s["endTimeUnixNano"])
        assert int(s["startTimeUnixNano"]) <= int(s["endTimeUnixNano"])
        assert int(s["startTimeUnixNano"]) >= 1_704_067_200 * 10**9  # simulated 0 is 2024-01-01 UTC
        if "parentSpanId" in s:
            assert (s["traceId"], s["parentSpanId"]) in ids
        for a in s["attributes"]:
            (kind, value), = a["value"].items()
            assert kind in ("stringValue", "intValue", "doubleValue", "boolValue")
            if kind == "intValue":
                assert isinstance(value, str) and re.fullmatch(r"-?\d+", value)
    roots = [s for s in spans if "parentSpanId" not in s]
    assert len(roots) == len(report.traces)
    assert path.read_text() == (report.traces_otlp(tmp_path / "again.json") and (tmp_path / "again.json").read_text())
