"""report.to_html writes one self-contained page: no URL, every section, the data the slider replays."""
from __future__ import annotations

import json
import re

from components import AppServer, L7Balancer
from playground import OpenLoop, Sim
from playground._html import SECTIONS, Section, render


def crashed_pair() -> Sim:
    sim = Sim(seed=4, trace_sample=0.05)
    for name in ("app1", "app2"):
        sim.add(AppServer(name, cores=1, cpu_s=0.004))
    sim.add(L7Balancer("lb", ["app1", "app2"]))
    sim.load(OpenLoop("lb", rate=150))
    sim.at(3, sim.crash, "app2", 3)
    sim.at(2, sim.event, "deploy notes at https://example.invalid/x")  # a URL in user text
    return sim


def test_the_page_is_one_file_with_no_url_in_it(tmp_path):
    report = crashed_pair().run(duration_s=8)
    path = tmp_path / "run.html"
    report.to_html(path)
    text = path.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)""", text)  # nothing loaded or linked from elsewhere
    assert text.count("<script") == 2 and "deploy notes at https:&#47;&#47;example.invalid" in text


def test_the_page_has_every_section_and_the_series_for_the_slider():
    report = crashed_pair().run(duration_s=8)
    text = render(report)
    for section in ("topology", "saturation", "clients", "errors", "theory", "traces", "config"):
        assert f'<section id="{section}">' in text
    assert "app1.cpu" in text and "M/G/1" in text  # theory beside the run, a row per station (constant service)
    data = json.loads(re.search(r'<script type="application/json" id="run-data">(.*?)</script>', text, re.S)[1])
    assert data["hosts"] == ["app1", "app2", "lb"]
    up = data["columns"].index("up")
    assert [row[up] for row in data["series"]["app2"][:8]] == [1, 1, 1, 0, 0, 0, 1, 1]
    assert 'data-host="app2"' in text and "crash app2" in text
    assert "cpu_per_request=Constant" in text or "cpu_per_request=" in text  # the config section


def test_a_new_section_is_one_function():
    report = crashed_pair().run(duration_s=2)
    text = render(report, sections=SECTIONS + [lambda r: Section("notes", "Notes", f"<p>{r.sent} sent</p>")])
    assert '<section id="notes"><h2>Notes</h2>' in text and f"{report.sent} sent" in text


def test_the_ladder_writes_the_page_of_the_step_that_broke_each_stage(tmp_path):
    from playground.tools.cli import main

    assert main(["ladder", "--stages", "1", "--users", "5,10000", "--duration-s", "3", "--quiet",
                 "--html", str(tmp_path)]) == 0
    text = (tmp_path / "stage1.html").read_text(encoding="utf-8")
    assert "Stage 1 (monolith): 10k users - broke:" in text and "://" not in text


def test_a_warm_up_keeps_the_page_on_the_whole_run():
    report = crashed_pair().run(duration_s=8, warmup_s=2)
    text = render(report)
    assert 'max="7"' in text and "the first 2 s a warm-up" in text
    data = json.loads(re.search(r'id="run-data">(.*?)</script>', text, re.S)[1])
    assert data["duration_s"] == 8
