"""Self-healing after crashes: runs whose process died, concurrency slots they still hold,
temporaries they left, and children that must not outlive their parent.

Dagster's daemon has run monitoring for runs it launched (`dagster.yaml`: `run_monitoring`), and
`dagster dev`'s code server marks a run failed when its worker dies. The main job runs its jobs
itself (`execute_job`), with no daemon behind it, so every run it starts carries a tag naming its
process (host, pid, start time) and `recover()` runs at start-up: runs left STARTED by a dead
process are marked failed, the `gpu` pool slots held by finished runs are freed, and half-written
temporaries of dead writers are removed. IGM children and the main job's worker processes ask
the kernel to kill them when their parent dies (`die_with_parent`), so none runs on as an orphan.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from .storage import file_lock, pid_alive, remove_paths, stale_temporaries

PROCESS_TAG = "glacier_assets/process"
PARENT_PID_ENV = "GLACIER_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def _start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22): with the pid,
    it names one process even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def process_tag(pid: int | None = None) -> dict[str, str]:
    pid = pid or os.getpid()
    return {PROCESS_TAG: f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"}


def tagged_process_alive(tag: str) -> bool:
    """False only when the tagged process is known to be gone (same host, pid dead or reused)."""
    host, pid, ticks = tag.rsplit(":", 2)
    if host != socket.gethostname():
        return True
    return pid_alive(int(pid)) and _start_ticks(int(pid)) == ticks


@dataclass
class Recovery:
    failed_runs: list[str] = field(default_factory=list)
    freed_slot_runs: list[str] = field(default_factory=list)
    temporaries: list[Path] = field(default_factory=list)
    catalog_links: list[Path] = field(default_factory=list)  # what a publication killed half-way left

    def lines(self) -> list[str]:
        out = []
        if self.failed_runs:
            out.append(f"marked {len(self.failed_runs)} run(s) of a dead process as failed: "
                       + ", ".join(r[:8] for r in self.failed_runs))
        if self.freed_slot_runs:
            out.append(f"freed the concurrency slots of {len(self.freed_slot_runs)} finished run(s)")
        if self.temporaries:
            out.append(f"removed {len(self.temporaries)} half-written temporary file(s) of dead writers")
        if self.catalog_links:
            out.append(f"removed {len(self.catalog_links)} unfinished catalog link(s)")
        return out


def recover(instance: dg.DagsterInstance, folders: list[Path], catalog: Path | None = None) -> Recovery:
    """Mark runs of dead main-job processes failed, free slots held by finished runs, remove
    stale temporaries under `folders`, and what a publication killed half-way left beside the
    `catalog` link (publication.py: its staging folder, an unswapped link)."""
    rec = Recovery()
    live = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
    with file_lock(Path(instance.root_directory) / ".glacier_assets_recover.lock"):  # two main jobs starting at once
        _fail_dead_runs(instance, live, rec)
        rec.freed_slot_runs += free_finished_slots(instance)
    for folder in folders:
        found = stale_temporaries(folder)
        remove_paths(found)
        rec.temporaries.extend(found)
    if catalog is not None:
        from .publication import leftovers

        rec.catalog_links = leftovers(catalog)
        remove_paths(rec.catalog_links)
    return rec


def _fail_dead_runs(instance: dg.DagsterInstance, statuses: list, rec: Recovery) -> None:
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=statuses)):
        run = record.dagster_run
        tag = run.tags.get(PROCESS_TAG)
        if tag and not tagged_process_alive(tag):
            instance.report_run_failed(run, message=f"glacier_assets: the process that ran this run ({tag}) "
                                                    "is gone (killed or crashed); marked failed at the next start")
            rec.failed_runs.append(run.run_id)


def free_finished_slots(instance: dg.DagsterInstance) -> list[str]:
    """Free the concurrency slots still held by finished (or vanished) runs; returns those runs."""
    freed = []
    storage = instance.event_log_storage
    holders = set(storage.get_concurrency_run_ids())
    for key in storage.get_concurrency_keys():
        holders |= storage.get_concurrency_info(key).active_run_ids
    for run_id in sorted(holders):
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            storage.free_concurrency_slots_for_run(run_id)
            freed.append(run_id)
    return freed


def die_with_parent(expected_parent: int | None = None) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no-op elsewhere); exit at once if
    the parent is already gone."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if expected_parent is not None and os.getppid() != expected_parent:
        os._exit(1)


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc): to check that none outlives a kill."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        kids = [c for c, p in parents.items() if p == parent]
        out += kids
        todo += kids
    return out
