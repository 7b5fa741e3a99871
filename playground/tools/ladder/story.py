"""Running every stage and telling the story: tables per stage, then a comparison."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

from rich import box
from rich.console import Console, Group
from rich.table import Table

from ..._errors import ConfigError
from .runner import DEFAULT_USERS, LadderOptions, StageResult, StepResult, run_step
from .stages import STAGES, Stage

__all__ = ["LadderResult", "run_ladder"]


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


def run_ladder(options: LadderOptions | None = None, stages: Sequence[str] | None = None, *,
               console: Console | None = None, progress: bool = True, html_dir=None) -> LadderResult:
    """Run the chosen stages (default all) and return their results; prints as it goes if ``console``.

    With ``html_dir``, each stage writes ``stage<N>.html`` there: the HTML run report of the step
    that broke it (what killed it), or of its largest population if none did.
    """
    opts = options or LadderOptions()
    chosen: list[Stage] = []
    keys = [s.key for s in STAGES]
    for key in stages or [s.key for s in STAGES if s.in_default]:
        if str(key) not in keys:
            raise ConfigError(f"unknown stage {key!r} (stages: {', '.join(keys)})")
        chosen.append(next(s for s in STAGES if s.key == str(key)))
    results = []
    default_users = opts.users == DEFAULT_USERS  # a stage with its own populations uses them unless asked

    def users_of(stage: Stage) -> tuple[int, ...]:
        return stage.users if stage.users is not None and default_users else opts.users

    total = sum(len(users_of(s)) for s in chosen)
    bar = None
    if progress and console is not None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                       TimeElapsedColumn(), console=console, transient=True)
        bar.start()
        task = bar.add_task("ladder", total=total)
    try:
        for stage in chosen:
            steps: list[StepResult] = []
            latest: list = []  # the last step's full report, when pages are wanted
            page = None  # the report the stage's page shows: the first step that broke, else the last
            populations = users_of(stage)
            for users in populations:
                if bar is not None:
                    bar.update(task, description=f"stage {stage.key} ({stage.title}): {_users(users)} users")
                step = run_step(stage.build, users, opts, None if html_dir is None else latest.append)
                steps.append(step)
                if latest and (page is None or not any(s.broke for s in steps[:-1])):
                    page = latest.pop()
                latest.clear()
                if bar is not None:
                    bar.advance(task)
                if step.broke and opts.stop_at_break:
                    if bar is not None:
                        bar.advance(task, len(populations) - len(steps))
                    break
            result = StageResult(stage.key, stage.title, stage.story, steps)
            results.append(result)
            if page is not None:
                _write_page(page, result, html_dir, console)
            if console is not None:
                (bar.console if bar is not None else console).print(stage_table(result))
    finally:
        if bar is not None:
            bar.stop()
    return LadderResult(opts, results)
