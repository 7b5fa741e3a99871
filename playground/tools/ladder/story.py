"""Running every stage and telling the story: tables per stage, then a comparison."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Sequence

from rich import box
from rich.console import Console, Group
from rich.table import Table

from ..._errors import ConfigError
from .runner import DEFAULT_USERS, LadderOptions, StageResult, StepResult, run_step
from .schedule import LadderPlan
from .stages import STAGES, Stage

__all__ = ["LadderResult", "run_ladder", "check_jobs"]


def _ms(s: float) -> str:
    return f"{s * 1000:,.1f}"


def _rate(x: float) -> str:
    return f"{x:,.1f}" if x < 10 else f"{x:,.0f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def _dollars(x: float) -> str:
    return f"{x:,.2f}" if x < 100 else f"{x:,.0f}"


def _users(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else (
        f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n))


def _approx_users(n: float | None) -> str:
    """A predicted population, rounded as a person would say it: ~8.2k, ~1.3M."""
    if n is None or n != n or n == float("inf"):
        return "-"
    for suffix, unit in (("M", 1e6), ("k", 1e3), ("", 1.0)):
        if n >= unit or unit == 1.0:
            v = n / unit
            return f"~{v:.2g}{suffix}" if v < 100 else f"~{v:.0f}{suffix}"
    return "-"


def stage_table(result: StageResult) -> Table:
    t = Table(title=f"Stage {result.key}: {result.title}", title_justify="left", caption=result.story,
              caption_justify="left")
    for col in ("users", "offer/s", "ok/s", "p50 ms", "p99 ms", "errors", "bottleneck (util)", "hit",
                "db q/s", "verdict"):
        if col in ("bottleneck (util)", "verdict"):
            t.add_column(col, justify="left", ratio=1)
        else:
            t.add_column(col, justify="right", no_wrap=True)
    for s in result.steps:
        verdict = f"BREAKS: {s.why}" if s.broke else "ok"
        t.add_row(_users(s.users), _rate(s.offered_per_s), _rate(s.throughput_per_s), _ms(s.p50_s),
                  _ms(s.p99_s), f"{s.error_rate:.1%}", f"{s.bottleneck} {s.bottleneck_utilisation:.0%}",
                  _pct(s.cache_hit_ratio), "-" if s.db_queries_per_s is None else f"{s.db_queries_per_s:,.0f}",
                  verdict, style="red" if s.broke else None)
    return t


@dataclass(frozen=True)
class LadderResult:
    options: LadderOptions
    stages: list[StageResult]

    def comparison(self) -> Table:
        top = max((s.users for st in self.stages for s in st.steps), default=0)
        t = Table(title=f"From 5 users to {'1 million' if top <= 1_000_000 else _users(top)}: the comparison",
                  title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True)
        # 100 columns: the two text columns wrap, every figure keeps its width
        for col in ("stage", "holds", "breaks", "predicted", "bottleneck there", "p99 ok", "hit", "db q/s",
                    "$/month", "$/1k users"):  # $/1k users: $/month per 1,000 users
            if col in ("stage", "bottleneck there"):
                t.add_column(col, justify="left", ratio=1, min_width=12)
            else:
                t.add_column(col, justify="right", no_wrap=True)
        for st in self.stages:
            ok = [s for s in st.steps if not s.broke]
            best: StepResult | None = ok[-1] if ok else None
            broke = st.broke_at
            t.add_row(f"{st.key}. {st.title}", _users(st.max_users_ok) if ok else "none",
                      _users(broke.users) if broke else f"> {_users(top)}",
                      _approx_users(st.predicted_break),
                      broke.bottleneck if broke else (best.bottleneck if best else "-"),
                      _ms(best.p99_s) + " ms" if best else "-",
                      _pct(best.cache_hit_ratio if best else None),
                      "-" if not best or best.db_queries_per_s is None else f"{best.db_queries_per_s:,.0f}",
                      f"{best.cost_per_month:,.0f}" if best else "-",
                      _dollars(best.cost_per_1k_users) if best else "-")
        return t

    def __rich__(self):
        return Group(*[stage_table(s) for s in self.stages], self.comparison())

    def render(self, width: int | None = None) -> str:
        """As text, ``width`` columns wide (default: ``$COLUMNS``, else 100)."""
        import io

        from playground._report import text_width

        buf = io.StringIO()
        Console(file=buf, width=text_width(width), color_system=None).print(self)
        return buf.getvalue()

    def to_json(self) -> str:
        from dataclasses import asdict

        return json.dumps({"options": asdict(self.options), "stages": [s.to_dict() for s in self.stages]},
                          indent=2, default=str)


def _write_page(report, result: StageResult, html_dir, console) -> None:
    from dataclasses import replace
    from pathlib import Path

    folder = Path(html_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"stage{result.key}.html"
    step = next((s for s in result.steps if s.broke), result.steps[-1])
    title = f"Stage {result.key} ({result.title}): {_users(step.users)} users"
    replace(report, title=title + (f" - broke: {step.why}" if step.broke else "")).to_html(path)
    if console is not None:
        console.print(f"saved {path}")


def check_jobs(jobs) -> int:
    """How many processes run steps side by side: ``jobs``, or one per core for None."""
    if jobs is None:
        return os.cpu_count() or 1
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs must be an integer >= 1 (1: one step at a time, in this process), got {jobs!r}")
    return jobs


def _one_step(stage_key: str, users: int, last: bool, opts: LadderOptions, pages: bool):
    """One step (in a worker, or here): its result, and its full report if it may be its stage's page
    (the page shows the first step that broke, else the last)."""
    build = next(s for s in STAGES if s.key == stage_key).build
    kept: list = []
    step = run_step(build, users, opts, kept.append if pages else None)
    return step, (kept[0] if kept and (step.broke or last) else None)


def run_ladder(options: LadderOptions | None = None, stages: Sequence[str] | None = None, *,
               console: Console | None = None, progress: bool = True, html_dir=None,
               jobs: int | None = None) -> LadderResult:
    """Run the chosen stages (default all) and return their results; prints as it goes if ``console``.

    With ``html_dir``, each stage writes ``stage<N>.html`` there: the HTML run report of the step
    that broke it (what killed it), or of its largest population if none did.

    ``jobs``: how many steps run side by side, each in its own process (default: one per core);
    1 runs them one at a time in this process. The results, what is printed and the files are
    the same whatever ``jobs`` is: a step past a stage's first break may be started before the
    break is known, and is then left out (see ``schedule.py``).
    """
    opts = options or LadderOptions()
    workers = check_jobs(jobs)
    chosen: list[Stage] = []
    keys = [s.key for s in STAGES]
    for key in stages or [s.key for s in STAGES if s.in_default]:
        if str(key) not in keys:
            raise ConfigError(f"unknown stage {key!r} (stages: {', '.join(keys)})")
        chosen.append(next(s for s in STAGES if s.key == str(key)))
    default_users = opts.users == DEFAULT_USERS  # a stage with its own populations uses them unless asked

    def users_of(stage: Stage) -> tuple[int, ...]:
        return stage.users if stage.users is not None and default_users else opts.users

    plan = LadderPlan([users_of(s) for s in chosen], opts.stop_at_break)
    workers = min(workers, plan.total)
    pages = html_dir is not None
    results: list[StageResult] = []
    bar = None
    if progress and console is not None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                       TimeElapsedColumn(), console=console, transient=True)
        task = bar.add_task("ladder", total=plan.total)

    def show(running) -> None:
        if bar is not None:
            what = ", ".join(f"stage {chosen[s].key} ({chosen[s].title}): {_users(plan.populations[s][k])} users"
                             if len(running) == 1 else f"stage {chosen[s].key}: {_users(plan.populations[s][k])} users"
                             for s, k in sorted(running))
            bar.update(task, description=what or "ladder", completed=plan.settled())

    def finished(s: int, k: int, outcome) -> None:
        step, report = outcome
        plan.record(s, k, (step, report), step.broke)
        for ready in plan.ready_stages():
            stage = chosen[ready]
            done = plan.results(ready)
            result = StageResult(stage.key, stage.title, stage.story, [d[0] for d in done])
            results.append(result)
            plan.done[ready] = {k: (d[0], None) for k, d in plan.done[ready].items()}  # its reports are printed
            if pages:
                page = next((d for d in done if d[0].broke), done[-1])[1]
                _write_page(page, result, html_dir, console)
            if console is not None:
                (bar.console if bar is not None else console).print(stage_table(result))

    def args(s: int, k: int) -> tuple:
        pops = plan.populations[s]
        return chosen[s].key, pops[k], k == len(pops) - 1, opts, pages

    try:
        if workers <= 1:
            if bar is not None:
                bar.start()
            while (nxt := plan.next_step(in_order=True)) is not None:
                show([nxt])
                finished(*nxt, _one_step(*args(*nxt)))
        else:
            _run_pool(plan, workers, args, finished, show, bar)
        show([])
    finally:
        if bar is not None:
            bar.stop()
    return LadderResult(opts, results)


def _run_pool(plan: LadderPlan, workers: int, args, finished, show, bar) -> None:
    """Keep ``workers`` steps running in a local process pool until the plan has none left."""
    from concurrent.futures import FIRST_COMPLETED, wait

    from ..._sweep import local_pool, stop_pool

    running: dict = {}  # future -> (stage, step)
    with local_pool(workers) as pool:
        try:
            def fill() -> None:
                while len(running) < workers and (nxt := plan.next_step(running.values())) is not None:
                    running[pool.submit(_one_step, *args(*nxt))] = nxt

            fill()  # the workers are forked here, before the progress bar's thread starts
            if bar is not None:
                bar.start()
            while running:
                show(running.values())
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: running[f]):
                    s, k = running.pop(fut)
                    if plan.wanted(s, k):  # else past its stage's first break: left out, as in order
                        finished(s, k, fut.result())  # a step that raised ends the ladder, as in order
                fill()
        except BaseException:  # Ctrl-C or a failed step: the runs under way are not waited for
            stop_pool(pool)
            raise
