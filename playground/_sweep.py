"""Sweeps: every point of a grid, every seed, and honest statistics over them.

A decision needs many runs: "how many servers, with or without a cache?" is a
grid of configurations, and each configuration needs several seeds before its
figures mean anything. ``sweep`` runs them all and returns one tidy row per
(point, seed) and a mean with a 95% confidence interval per point:

    result = sweep(build, grid={"servers": [2, 4, 8], "cache_items": [0, 5000]}, seeds=10)
    print(result)                       # one line per point, mean [95% CI]
    result.to_csv("out.csv"); result.plot("p99.png", metric="p99_ms", x="servers")

``build(**params)`` (or ``build(params)``, one positional dict) returns a
``Sim``; the sweep sets its seed. Seeds are *common random numbers*: point A
and point B run with the same seeds see the same arrivals, keys and service
draws where their topologies agree, so their *difference* is measured more
sharply than either figure alone (compare points, not runs).

Where the runs happen: a local process pool, one worker per core (the
default); serially (``executor="serial"`` or ``workers=1``); or any
``concurrent.futures.Executor`` - Dask's ``Client.get_executor()`` spreads
them over a cluster. A row is a pure function of (build, point, seed,
duration, warm-up), so all three give identical rows, in point order.

A row holds the point's parameters, ``seed``, and what the run measured in
its window (after ``warmup_s``): ``p50_ms``, ``p99_ms``, ``mean_ms``,
``throughput_per_s``, ``error_rate`` (clients), ``busiest_host`` and
``busiest_utilisation`` (from the hosts' per-second series), and over the
whole run, warm-up included, as hosts count them: ``cache_hit_ratio`` (the
cache tier; None without one), ``db_queries_per_s``; ``cost_per_month``
(``report.cost(prices)``); then ``warmup_s`` as used, ``saturated`` (the
stations offered more than they can serve, rho >= 1 in ``report.theory()``:
such a run has no steady state, and an SLO counts its point as missed),
``warnings`` (what ``report.warnings`` said, joined by `` | ``), ``status``
("ok" or "failed") and ``error``.

Before any run every point is built once here: a parameter ``build`` does not
take, an empty list of values or a value ``build`` rejects fails at once,
naming it. A run that raises is a failed row; the sweep goes on. Ctrl-C
stops it, keeping (and saving) the rows finished so far.
"""
from __future__ import annotations

import inspect
import itertools
import multiprocessing
import os
import pickle
import signal
import time
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from typing import Any, Callable, Mapping, Sequence

from ._buildref import BuildRef
from ._errors import ConfigError, check_positive
from ._sweep_result import WARNING_SEPARATOR, SweepResult
from ._warmup import check_warmup

__all__ = ["sweep", "run_point"]


def sweep(build: Callable | str, grid: Mapping[str, Sequence] | None = None, *, seeds: int | Sequence = 5,
          duration_s: float = 30.0, warmup_s: float | str = 0.0, executor: Executor | str | None = None,
          workers: int | None = None, progress: bool = True, prices=None, slo=None,
          fixed: Mapping[str, Any] | None = None, csv: str | None = None, json: str | None = None,
          console=None) -> SweepResult:
    """Run ``build`` at every point of ``grid`` for every seed; see the module docstring.

    ``seeds``: n (seeds 1..n) or a list. ``fixed``: parameters passed to every
    point. ``executor``: None or "process" (a local pool, ``workers`` of them,
    default one per core), "serial", or a ``concurrent.futures.Executor``.
    ``prices`` go to ``report.cost``; ``slo`` gives each point a verdict.
    ``csv``/``json``: paths the rows are saved to (also when interrupted).
    """
    grid = dict(grid or {})
    fixed = dict(fixed or {})
    seed_list = _seeds(seeds)
    check_positive("duration_s", duration_s)
    check_warmup(warmup_s, duration_s)
    if workers is not None and not (isinstance(workers, int) and not isinstance(workers, bool) and workers >= 1):
        raise ConfigError(f"workers must be an integer >= 1 or None, got {workers!r}")
    ref = BuildRef.parse(build) if isinstance(build, str) else None
    fn = ref.resolve() if ref is not None else build
    if not callable(fn):
        raise ConfigError(f"build must be a function returning a Sim, or 'MODULE:FUNCTION', got {build!r}")
    style = _check_grid(fn, grid, fixed)
    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())] or [{}]
    _build_every_point(fn, style, points, fixed)

    tasks = [(p, s) for p in range(len(points)) for s in range(len(seed_list))]
    pool, own, portable = _executor(executor, workers, fn, ref, len(tasks))
    result = SweepResult(grid=grid, seeds=seed_list, duration_s=float(duration_s), warmup_s=warmup_s, fixed=fixed,
                         slo=slo, prices=prices, build=str(ref or BuildRef.of(fn) or getattr(fn, "__name__", fn)))
    rows: dict[tuple[int, int], dict] = {}
    wall0 = time.perf_counter()
    from ._progress import progress_bar

    try:
        if pool is None:
            with progress_bar(len(tasks), "sweep", console=console) if progress else _nobar() as bar:
                for p, s in tasks:
                    rows[p, s] = run_point(fn, points[p], fixed, seed_list[s], duration_s, warmup_s, prices, style)
                    bar.advance()
        else:
            futures = {pool.submit(run_point, portable, points[p], fixed, seed_list[s], duration_s, warmup_s,
                                   prices, style): (p, s) for p, s in tasks}
            try:
                with progress_bar(len(tasks), "sweep", console=console) if progress else _nobar() as bar:
                    for fut in as_completed(futures):
                        rows[futures[fut]] = fut.result()  # a BuildImportError from a worker ends the sweep
                        bar.advance()
            except BaseException:
                for fut in futures:
                    fut.cancel()
                for fut, key in futures.items():  # runs that finished meanwhile are kept
                    if key not in rows and fut.done() and not fut.cancelled() and fut.exception() is None:
                        rows[key] = fut.result()
                raise
    except KeyboardInterrupt:
        result.interrupted = True
        if own:
            stop_pool(pool)
            own = False
    finally:
        if own:
            pool.shutdown(wait=True)
        result.wall_s = time.perf_counter() - wall0
        result.rows = [rows[k] for k in sorted(rows)]
        if csv:
            result.to_csv(csv)
        if json:
            result.to_json(json)
    return result


def run_point(build, params: dict, fixed: dict, seed, duration_s: float, warmup_s, prices=None,
              style: str = "kwargs") -> dict:
    """One row: build the point, run it with ``seed``, read the figures. Runs in a worker."""
    if isinstance(build, BuildRef):
        build = _resolve_cached(build)
    row: dict[str, Any] = dict(params)
    row["seed"] = seed
    try:
        sim = _call(build, style, {**fixed, **params}, seed)
        report = sim.run(duration_s, warmup_s=warmup_s)
        row.update(_figures(report, prices))
        row["status"], row["error"] = "ok", ""
    except Exception as exc:  # a failing point is a failed row, not a failed sweep
        row.update(dict.fromkeys(_FIGURES))
        row["warmup_s"] = None
        row["saturated"], row["warnings"] = "", ""
        row["status"], row["error"] = "failed", f"{type(exc).__name__}: {exc}"
    return row


_FIGURES = ("p50_ms", "p99_ms", "mean_ms", "throughput_per_s", "error_rate", "busiest_host", "busiest_utilisation",
            "cache_hit_ratio", "db_queries_per_s", "cost_per_month")


def _figures(report, prices) -> dict:
    lat = report.latency
    comps = list(report.components.values())
    busiest, util = "", 0.0
    for s in comps:
        u = max(_window_utilisation(report, s), float(s.detail.get("io_utilisation", 0.0) or 0.0))
        if u > util:
            busiest, util = s.name, u
    caches = [s for s in comps if s.kind == "cache"]
    hits = sum(s.detail.get("hits", 0) for s in caches)
    misses = sum(s.detail.get("misses", 0) for s in caches)
    dbs = [s for s in comps if s.kind == "database"]
    simulated = report.duration_s + report.warmup_s  # host counters cover the whole run
    db_q = sum(s.detail.get("reads", 0) + s.detail.get("writes", 0) for s in dbs) / simulated if dbs else None
    cost = None
    if callable(getattr(report, "cost", None)):
        cost = report.cost(prices).total_per_month
    return {
        "p50_ms": _r(lat.p50_s * 1000), "p99_ms": _r(lat.p99_s * 1000), "mean_ms": _r(lat.mean_s * 1000),
        "throughput_per_s": _r(report.throughput_per_s), "error_rate": _r(report.error_rate),
        "busiest_host": busiest, "busiest_utilisation": _r(util),
        "cache_hit_ratio": _r(hits / (hits + misses)) if caches and hits + misses else None,
        "db_queries_per_s": _r(db_q), "cost_per_month": _r(cost), "warmup_s": _r(report.warmup_s),
        "saturated": ", ".join(saturated_stations(report)),
        "warnings": WARNING_SEPARATOR.join(dict.fromkeys(report.warnings)),
    }



def saturated_stations(report) -> list[str]:
    """The stations offered more work than they can do (rho >= 1 in ``report.theory()``).

    Such a run has no steady state: its queue, and so its p99, grow for as long
    as it runs, so a short run's figures understate what the configuration gives.
    """
    try:
        rows = report.theory().stations
    except Exception:  # a report the theory cannot read (no stations): nothing to say
        return []
    return [f"{r.name} (rho {r.rho:.2f})" for r in rows if r.rho >= 1.0]


def _window_utilisation(report, stats) -> float:
    """A host's utilisation over the measurement window (its per-second series after the warm-up)."""
    rows = [r for r in getattr(report, "host_series", {}).get(stats.name, ()) if r.t_s >= report.warmup_s - 1e-9]
    span = sum(r.dt_s for r in rows)
    if not report.warmup_s or span <= 0:
        return stats.utilisation
    return sum(r.utilisation * r.dt_s for r in rows) / span


def _r(x):
    return None if x is None else round(float(x), 6)


# -- checks before any run ------------------------------------------------------------
def _seeds(seeds) -> list:
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"seeds must be an integer >= 1 or a list of seeds, got {seeds!r}")
        return list(range(1, seeds + 1))
    if isinstance(seeds, (list, tuple, range)) and seeds and all(
            isinstance(s, (int, str)) and not isinstance(s, bool) for s in seeds) and len(set(seeds)) == len(seeds):
        return list(seeds)
    raise ConfigError(f"seeds must be an integer >= 1 or a list of distinct int or str seeds, got {seeds!r}")


def _check_grid(fn: Callable, grid: dict, fixed: dict) -> str:
    """How to call ``fn`` ("kwargs" or "dict"); every grid name must be one of its parameters."""
    for name, values in grid.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(f"grid names must be parameter names, got {name!r}")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not len(values):
            raise ConfigError(f"grid[{name!r}] must be a non-empty list of values, got {values!r}")
    for name in (*grid, *fixed):
        if name == "seed":
            raise ConfigError("seed is set by the sweep (seeds=...), not a grid parameter, got 'seed'")
    both = set(grid) & set(fixed)
    if both:
        raise ConfigError(f"a parameter is either swept or fixed, got both for {sorted(both)[0]!r}")
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return "kwargs"
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return "kwargs"
    named = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [n for n in (*grid, *fixed) if n not in named]
    positional = [p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if unknown and len(params) == 1 and positional:
        return "dict"  # build(params): one dict of everything
    if unknown:
        takes = ", ".join(n for n in named if n != "seed") or "nothing"
        raise ConfigError(f"grid parameter must be a parameter of {getattr(fn, '__name__', 'build')}() "
                          f"(it takes {takes}), got {unknown[0]!r}")
    return "kwargs"


def _call(fn: Callable, style: str, params: dict, seed):
    from ._sim import Sim

    if style == "dict":
        sim = fn(dict(params))
    else:
        kw = dict(params)
        try:
            if "seed" in inspect.signature(fn).parameters:
                kw["seed"] = seed
        except (TypeError, ValueError):
            pass
        sim = fn(**kw)
    if not isinstance(sim, Sim):
        raise ConfigError(f"build must return a Sim, got {sim!r}")
    sim.seed = seed  # the sweep's seed, whatever build chose: each run draws from (seed, purpose)
    return sim


def _build_every_point(fn: Callable, style: str, points: list[dict], fixed: dict) -> None:
    """Build (and check the wiring of) every point once, before any run."""
    failed: dict[int, str] = {}
    for i, point in enumerate(points):
        try:
            _call(fn, style, {**fixed, **point}, 1).validate()
        except Exception as exc:
            failed[i] = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ConfigError) else str(exc)
    if not failed:
        return
    i, why = next(iter(failed.items()))
    point = points[i]
    # name the value to blame: the one parameter whose change alone makes the point build
    for name in point:
        for j, other in enumerate(points):
            if j not in failed and all(other[k] == point[k] for k in point if k != name):
                raise ConfigError(f"build rejects {name}={point[name]!r}: {why}")
    text = ", ".join(f"{k}={v!r}" for k, v in point.items()) or "(no parameters)"
    raise ConfigError(f"build rejects the point {text}: {why}")


# -- where the runs happen -----------------------------------------------------------
def _executor(executor, workers, fn, ref, n_tasks):
    """(executor or None for serial, whether we own it, the build as the workers get it)."""
    if executor == "serial" or workers == 1 or (executor in (None, "process") and n_tasks == 1):
        return None, False, fn
    if executor in (None, "process"):
        portable = _portable(fn, ref, fork=True)
        if portable is None:  # a lambda or a local function cannot reach another process
            return None, False, fn
        return local_pool(min(workers or os.cpu_count() or 1, n_tasks)), True, portable
    if isinstance(executor, Executor) or callable(getattr(executor, "submit", None)):
        portable = _portable(fn, ref, fork=False)
        if portable is None:
            raise ConfigError(f"build must be a module-level function to run on an executor's workers, got {fn!r}")
        return executor, False, portable
    raise ConfigError(f"executor must be None, 'process', 'serial' or a concurrent.futures.Executor, got {executor!r}")


def local_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` local processes, forked where the platform can (they start with this
    process's modules already imported) and leaving Ctrl-C to this process (``stop_pool`` ends them)."""
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init)


def _portable(fn, ref, *, fork: bool):
    if ref is not None:
        return ref
    if fork and getattr(fn, "__module__", None) == "__main__":
        try:  # a forked worker has this process's __main__: the function travels by its name
            pickle.dumps(fn)
            return fn
        except Exception:
            return None
    found = BuildRef.of(fn)
    if found is not None:
        return found
    try:
        pickle.dumps(fn)
        return fn
    except Exception:
        return None


_CACHE: dict[BuildRef, Callable] = {}


def _resolve_cached(ref: BuildRef) -> Callable:
    fn = _CACHE.get(ref)
    if fn is None:
        fn = _CACHE[ref] = ref.resolve(" on the worker")
    return fn


def _worker_init() -> None:
    # Ctrl-C is the parent's to handle: it cancels what is pending and keeps what is done
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """End a pool now: what is queued is cancelled, the runs under way are killed."""
    processes = list(getattr(pool, "_processes", {}).values())  # no public way to stop runs under way
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        p.terminate()
    for p in processes:
        p.join(5)


class _nobar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def advance(self, steps: float = 1) -> None:
        pass

