"""A run's report prints, saves, reads back and compares; the topology draws itself."""
from __future__ import annotations

import json

import pytest

from playground import Comparison, ConfigError, Node, OpenLoop, Report, Request, Response, Sim


class Back(Node):
    kind = "echo"

    def __init__(self, name: str, work_s: float = 0.002) -> None:
        super().__init__(name)
        self.work_s = work_s

    async def handle(self, request):
        await self.sleep(self.work_s)
        return Response(200, body=b"hi")


class Front(Node):
    kind = "front"

    def downstream(self):
        return ("back",)

    async def handle(self, request):
        return await self.call("back", Request("GET", "/x"))


def two_tier(work_s: float = 0.002) -> Sim:
    sim = Sim(seed=1)
    sim.add(Front("front"))
    sim.add(Back("back", work_s), region="eu")
    sim.load(OpenLoop("front", rate=50))
    return sim


def test_the_report_prints_what_clients_saw_and_what_each_host_did():
    text = str(two_tier().run(duration_s=2))
    for expected in ("Run: 2 s simulated, seed 1", "openloop->front", "p99 ms", "Components", "front", "back", "echo"):
        assert expected in text
    assert "client" not in text.split("Components")[1]  # the load's own host is not a component


def test_the_json_round_trips_and_leaves_wall_time_out_unless_asked(tmp_path):
    report = two_tier().run(duration_s=2)
    text = report.to_json()
    assert Report.from_json(text) == json.loads(text) == report.to_dict()
    assert "wall_s" not in json.loads(text)  # identical runs, identical JSON
    assert json.loads(report.to_json(wall=True))["wall_s"] >= 0
    report.save(tmp_path / "run.json")
    saved = Report.from_json((tmp_path / "run.json").read_text())
    assert saved["clients"]["openloop->front"]["ok"] == report.ok
    assert saved["components"]["back"]["served"] == report.components["back"].served
    assert saved["series"]["openloop->front"][0]["t_s"] == 0.0


def test_compare_puts_two_runs_side_by_side():
    fast = two_tier(work_s=0.002).run(duration_s=2)
    slow = two_tier(work_s=0.020).run(duration_s=2)
    cmp = fast.compare(slow, labels=("2 ms backend", "20 ms backend"))
    assert isinstance(cmp, Comparison)
    rows = {name: (a, b) for name, a, b in cmp.rows()}
    assert rows["p50 ms"] == (fast.p50_s * 1000, slow.p50_s * 1000)
    assert rows["p50 ms"][1] > 5 * rows["p50 ms"][0]
    assert rows["sent"] == (fast.sent, slow.sent)
    text = str(cmp)
    assert "2 ms backend vs 20 ms backend" in text and "change" in text and "p50 ms" in text


def test_a_run_compares_with_a_saved_one_as_with_the_report_it_was(tmp_path):
    fast = two_tier(work_s=0.002).run(duration_s=2)
    slow = two_tier(work_s=0.020).run(duration_s=2)
    slow.save(tmp_path / "slow.json")
    saved = Report.from_json((tmp_path / "slow.json").read_text())
    assert fast.compare(saved).rows() == fast.compare(slow).rows()
    assert str(fast.compare(saved, labels=("now", "saved"))).startswith("now vs saved")
    with pytest.raises(ConfigError, match=r"^compare\(\) takes a Report or the dict Report.from_json reads back, "
                                          r"got 'slow.json'$"):
        fast.compare("slow.json")
    with pytest.raises(ConfigError, match=r"this dict lacks 'clients'$"):
        fast.compare({"seed": 1})


def test_the_topology_draws_as_mermaid_and_as_dot():
    sim = two_tier()
    sim.add(Back("spare"))
    assert sim.diagram() == "\n".join([
        "graph LR",
        '    front["front<br/>front"]',
        '    back["back<br/>echo"]',
        '    client["client<br/>client"]',
        '    spare["spare<br/>echo"]',
        "    client --> front",
        "    front --> back",
    ])
    assert sim.diagram("dot") == "\n".join([
        "digraph topology {",
        "    rankdir=LR;",
        '    "front" [label="front\\nfront"];',
        '    "back" [label="back\\necho"];',
        '    "client" [label="client\\nclient"];',
        '    "spare" [label="spare\\necho"];',
        '    "client" -> "front";',
        '    "front" -> "back";',
        "}",
    ])
    assert repr(sim).splitlines()[0] == "<Sim seed=1 virtual time, 4 hosts, 1 load>"


def test_a_reports_repr_is_one_line_of_headline_figures_not_every_row():
    """What a REPL shows for ``report``: the figures that matter, the same for the same seed, and
    short however long the run (the series hold a row a second a host)."""
    short, long_run = two_tier().run(duration_s=2), two_tier().run(duration_s=600)
    text = repr(short)
    assert text.startswith("<Report seed=1, 2 s: ") and text.endswith("(print it for the tables)>")
    assert f"{short.sent:,} sent, {short.ok:,} ok, 0 failed" in text and "p99 " in text and "2 hosts" in text
    assert "\n" not in text and len(repr(long_run)) < 200 and repr(two_tier().run(duration_s=2)) == text

    sim = Sim(seed=2)
    sim.add(Back("back", work_s=1.0))
    sim.load(OpenLoop("back", rate=20, timeout_s=0.1))
    failing = sim.run(duration_s=3, warmup_s=1)
    assert "after a 1 s warm-up" in repr(failing)
    assert f"{failing.failed:,} failed (timeout {failing.errors['timeout']:,})" in repr(failing)


def test_asking_for_a_host_the_report_does_not_have_lists_the_ones_it_has():
    report = two_tier().run(duration_s=1)
    with pytest.raises(KeyError, match=r"no host 'bak' in this report \(hosts: front, back; the load's own client "
                                       r"is in report.clients\)"):
        report.component("bak")
