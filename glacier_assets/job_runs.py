"""Launching the code location's jobs on the project's Dagster instance, and reading their results.

The main job (main_job.py) runs every step of the chain as one of these runs: `execute` one of
the jobs below (ranged over partitions by tags), or `materialize` a few region-wide assets. Each
returns whether it succeeded and, when not, one line naming each failed step's cause.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from typing import Any

IN_PROCESS: dict[str, Any] = {"execution": {"config": {"in_process": {}}}}
# The runs' own log lines (each IGM trial, each emulator year) stay in the event log, for the UI;
# the console shows the main job's progress lines and the runs' warnings and errors.
QUIET_CONSOLE: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _job(name: str):
    from .definitions import defs

    return defs.resolve_job_def(name)


# Module-level functions, so that `dg.reconstructable` can rebuild each job in a run's process.
def simulate_glaciers_job():
    return _job("simulate_glaciers")


def glacier_epoch_products_job():
    return _job("glacier_epoch_products")


def regional_products_job():
    return _job("regional_products")


def quality_and_publish_job():
    return _job("quality_and_publish")


def partition_range(first: str, last: str) -> dict[str, str]:
    """The tags of a run over the partitions from `first` to `last`."""
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


def block_members(order: list[str], needed: set[str]) -> list[list[str]]:
    """Contiguous runs of `needed` glaciers in partition order (each one can be a ranged run)."""
    out: list[list[str]] = []
    prev_needed = False
    for g in order:
        if g in needed:
            if not prev_needed:
                out.append([])
            out[-1].append(g)
        prev_needed = g in needed
    return out


def ranges(order: list[str], needed: set[str], per_run: int) -> list[list[str]]:
    """The `needed` glaciers as ranges of contiguous partitions, of at most `per_run` glaciers each."""
    return [block[i:i + per_run] for block in block_members(order, needed) for i in range(0, len(block), per_run)]


def submit_ranges(pool: Executor, job_fn, members: list[list[str]]) -> dict[Future, list[str]]:
    """A ranged run of `job_fn` over each of `members` (glacier partitions), all submitted to `pool` at once."""
    return {pool.submit(execute, job_fn, partition_range(m[0], m[-1])): m for m in members}


def as_finished(futures: dict[Future, list[str]], poll_s: float,
                poll: Callable[[], None]) -> Iterator[tuple[list[str], bool, str, float]]:
    """Each submitted run's glaciers and result (execute's) as it finishes; `poll()` is called
    after each finished run and every `poll_s` seconds meanwhile."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=poll_s, return_when=FIRST_COMPLETED)
        poll()
        for fut in done:
            yield (futures[fut], *fut.result())


def failure_text(result) -> str:
    """The first line of each failed step's cause (a Failure's description, else the exception);
    a blocking check's failure names the check and its problems, not only Dagster's header."""
    lines = []
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            lines.append(data.user_failure_data.description.strip().splitlines()[0])
            continue
        err = data.error
        while err is not None and err.cause is not None and err.message.startswith("Error occurred while"):
            err = err.cause
        if err is not None and "blocking asset check" in err.message:
            lines += failed_checks(result) or [f"{event.step_key}: {' '.join(err.message.split())}"]
            continue
        lines.append(f"{event.step_key}: {err.message.strip().splitlines()[0] if err else 'failed'}")
    return "; ".join(lines)


def failed_checks(result) -> list[str]:
    """Each failed ERROR check: its asset, name and problems (its `problems` metadata, else its description)."""
    import dagster as dg

    out = []
    for e in result.get_asset_check_evaluations():
        if e.passed or e.severity != dg.AssetCheckSeverity.ERROR:
            continue
        problems = (e.metadata or {}).get("problems")
        detail = getattr(problems, "value", None) if problems is not None else e.description
        if isinstance(detail, list):
            detail = "; ".join(map(str, detail[:5])) + (f" (+{len(detail) - 5} more)" if len(detail) > 5 else "")
        out.append(f"check {e.check_name} of {e.asset_key.to_user_string()} failed: {detail or 'no detail'}")
    return out


def execute(job_fn, tags: dict) -> tuple[bool, str, float]:
    """Run a job of the code location on the project's instance, tagged with this process (so a
    later start can tell the run's process died). Returns (success, failure text, seconds)."""
    import dagster as dg

    from .deploy import executor_name
    from .recovery import process_tag

    t0 = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        # one run per process here, steps in process; with GLACIER_EXECUTOR set, that executor's defaults
        run_config = {**(IN_PROCESS if executor_name() == "multiprocess" else {}), **QUIET_CONSOLE}
        result = dg.execute_job(dg.reconstructable(job_fn), instance=instance, run_config=run_config,
                                tags={**tags, **process_tag()}, raise_on_error=False)
        return result.success, ("" if result.success else failure_text(result)), time.perf_counter() - t0


def materialize(selection: list[str]) -> tuple[bool, str]:
    """Materialize some of the code location's assets (with their checks) on the project's instance."""
    import dagster as dg

    from .definitions import defs
    from .recovery import process_tag

    with dg.DagsterInstance.get() as instance:
        targets: list[Any] = [*(defs.assets or []), *(defs.asset_checks or [])]
        res = dg.materialize(targets, selection=selection, instance=instance, resources=defs.resources,
                             raise_on_error=False, tags=process_tag(), run_config=QUIET_CONSOLE)
        return res.success, ("" if res.success else failure_text(res))
