"""Clean stops: SIGTERM (what `timeout`, systemd and Kubernetes send) or Ctrl-C ends every process
of the main job within seconds, marks its Dagster runs canceled, and leaves a re-run to resume.

The main job executes no Dagster run itself: each run goes to a worker of its pool (`worker_pool`),
and each worker leads a process group of its own, with the IGM child, that child's helpers and
Dagster's log tails below it. A Ctrl-C at the terminal therefore reaches the main job alone, which
stops the rest itself (`stop_job`): every worker's group is killed at once (the products are
written atomically, so a killed writer leaves the previous file whole), whatever is left below
the main job too, and the runs it had started are reported canceled, their concurrency slots
freed. What was finished stays: the next run redoes only what is unfinished.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

import dagster as dg

from .recovery import PROCESS_TAG, descendants, die_with_parent, free_finished_slots

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(BaseException):
    """A stop signal reached the main job (a BaseException, so no `except Exception` swallows it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.name = signal.Signals(signum).name


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block the first SIGINT or SIGTERM raises `Stopped`; a second one, while the stop
    is under way, is ignored."""
    def handler(signum, _frame):
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        raise Stopped(signum)

    old = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s in STOP_SIGNALS:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _worker_init(parent: int) -> None:
    die_with_parent(parent)
    os.setpgid(0, 0)  # a group of its own: the terminal's Ctrl-C goes to the main job only
    signal.signal(signal.SIGINT, signal.default_int_handler)  # not the main job's handler, inherited by fork
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """Processes that run the main job's Dagster runs, each leading its own process group."""
    return ProcessPoolExecutor(max_workers=workers, initializer=_worker_init, initargs=(os.getpid(),))


def _tagged_pid(run: dg.DagsterRun) -> int | None:
    host, _, rest = run.tags.get(PROCESS_TAG, "").partition(":")
    return int(rest.split(":")[0]) if host == socket.gethostname() and rest else None


def _kill(pid: int, group: bool = False) -> None:
    try:
        os.killpg(pid, signal.SIGKILL) if group else os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def stop_job(instance: dg.DagsterInstance, pool: ProcessPoolExecutor | None, reason: str) -> list[str]:
    """Kill every process below this one (each worker's group first), mark the runs they were
    executing canceled with `reason`, free their concurrency slots. Returns the canceled run ids."""
    me = os.getpid()
    family = descendants(me)
    pids = {me, *family}
    live = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
            dg.DagsterRunStatus.CANCELING]
    runs = [r.dagster_run for r in instance.get_run_records(filters=dg.RunsFilter(statuses=live))
            if _tagged_pid(r.dagster_run) in pids]
    for pid in family:
        try:
            leads = os.getpgid(pid) == pid
        except ProcessLookupError:
            continue
        _kill(pid, group=leads)
    for pid in descendants(me):  # anything that left its worker's group
        _kill(pid)
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)
    for run in runs:
        instance.report_run_canceled(run, message=f"glacier_assets: {reason}")
    free_finished_slots(instance)
    return [r.run_id for r in runs]


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie, dead but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def run_supervised(cmd: list[str], grace_s: float = 4.0) -> int:
    """Run `cmd` (e.g. `dagster dev`) in a session of its own until it ends, or until SIGINT or
    SIGTERM reaches this process: then every process below it gets SIGTERM, and what is still
    alive `grace_s` later SIGKILL. Returns its exit status, or 128 + the signal."""
    import subprocess
    import time

    proc = subprocess.Popen(cmd, start_new_session=True)
    try:
        with stop_on_signals():
            return proc.wait()
    except Stopped as stop:
        family = [proc.pid, *descendants(proc.pid)]
        for pid in family:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(alive(p) for p in family):
            proc.poll()
            time.sleep(0.1)
        for pid in family + descendants(proc.pid):
            _kill(pid)
        proc.wait()
        return 128 + stop.signum
