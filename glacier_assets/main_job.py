"""The main job: the whole chain for a region, doing only what changed, naming what failed.

    recover   runs left STARTED by a dead process -> failed; their `gpu` slots freed; temporaries gone
    1/5       outline inventory (skipped if its files did not change) and the ice-flow emulator
    2/5       domain + calibrated IGM run of the glaciers whose inputs changed: ranged runs of up to
              BATCH_GLACIERS glaciers (as many as workers), each one packed IGM child
    3/5       25 m thickness, mask, outline: one ranged run per epoch (and block of glaciers) still to make
    4/5, 5/5  regional outlines, reports, gates, publication: skipped when the published catalog
              already holds exactly this state

Glaciers are judged by fingerprints (fingerprints.py, ledger.py), so a second run with nothing
changed launches no run at all, and a run over some glaciers (`include`) leaves the others' products
and published items alone. The exit status is 0 only if nothing failed: no glacier, no inventory
row, no gate.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

from . import job_runs as runs
from .constants import BATCH_GLACIERS, EPOCHS, INVENTORY_RELPATH, PROGRESS_DIR, REJECTED_RELPATH

PROGRESS_POLL_S = 20.0  # how often step 2 looks at its IGM children's latest lines
PROGRESS_QUIET_S = 60.0  # the longest a running glacier goes without a line on the console


@dataclass
class Outcome:
    failed: dict[str, str] = field(default_factory=dict)  # glacier -> "step: cause" (this run)
    problems: list[str] = field(default_factory=list)  # region-wide failures
    rejected: int = 0
    published: bool = False


def say(line: str, error: bool = False) -> None:
    print(line, file=sys.stderr if error else sys.stdout, flush=True)


def progress(done: int, total: int, failed: int, started: float) -> str:
    """A step's progress: bar, counts, failures, time so far and the time left at this pace."""
    spent = time.perf_counter() - started
    left = f", ~{spent / done * (total - done):.0f} s left" if 0 < done < total else ""
    return (f"[{'#' * int(30 * done / max(total, 1)):<30}] {done}/{total}, {failed} failed, "
            f"{spent:.0f} s{left}")


class MainJob:
    """The main job's steps over the project's code location, instance and folders."""

    def __init__(self, workers: int, include: list[str] | None):
        import dagster as dg

        from .claims import CLAIMS_DIR, Claims
        from .definitions import resolved_resources
        from .stopping import worker_pool

        self.workers, self.include = workers, include
        self.store, self.region, self.igm = resolved_resources().values()
        self.instance = dg.DagsterInstance.get()
        self.out = Outcome()
        self.pool = worker_pool(workers)  # every Dagster run of the job executes in one of these (stopping.py)
        self.claims = Claims(self.store.path(CLAIMS_DIR))  # the glaciers this job simulates (claims.py)
        self.sims: dict[str, str | None] = {}  # glacier -> the simulation fingerprint this run is making
        self.made = [0, 0]  # glacier-epochs made, to make

    def run(self, started: float | None = None) -> int:
        """The chain; a SIGTERM or Ctrl-C stops it cleanly (stopping.py) with status 128 + signal."""
        from .stopping import Stopped, stop_on_signals

        t0 = time.perf_counter() if started is None else started
        with stop_on_signals():
            try:
                code = self.chain(t0)
            except Stopped as stop:
                return self.stop(stop, t0)
            finally:
                self.claims.release()
        self.pool.shutdown()
        return code

    def _call(self, fn, *args):
        """`fn(*args)` in a worker process, waited for."""
        return self.pool.submit(fn, *args).result()

    def stop(self, stop, t0: float) -> int:
        """Kill the job's processes, mark its runs canceled, say in one line what was finished."""
        from .plan import simulations_made
        from .stopping import stop_job

        reason = f"stopped by {stop.name}; a re-run resumes"
        canceled = stop_job(self.instance, self.pool, reason)
        done = [f"{simulations_made(self.store, self.sims)} of {len(self.sims)} glacier simulations"] \
            if self.sims else []
        done += [f"{self.made[0]} of {self.made[1]} glacier-epochs"] if self.made[1] else []
        say(f"\nStopped by {stop.name} after {time.perf_counter() - t0:.0f} s: finished "
            f"{', '.join(done) or 'nothing yet'}{', published' if self.out.published else ', nothing published'}; "
            f"{len(canceled)} Dagster run(s) marked canceled. Run the same command again to resume: it redoes only "
            f"what is unfinished.", error=True)
        return 128 + stop.signum

    def chain(self, t0: float) -> int:
        from .inventory.region import RegionSpecError

        self.recover()
        try:
            spec = self.region.load()
        except (RegionSpecError, FileNotFoundError, ValueError) as exc:
            say(str(exc) if str(exc).startswith("region spec") else f"region spec: {exc}", error=True)
            return 2
        inventory = self.inventory_and_emulator(spec)
        if inventory is None:
            return 1
        glaciers = self.select(inventory)
        if not glaciers:
            return 1
        self.simulate(inventory, spec, glaciers)
        self.products(inventory, glaciers)
        state = self.publish(inventory, spec)
        self.summary(state, glaciers, time.perf_counter() - t0)
        out = self.out
        return 0 if out.published and not (out.failed or out.problems or out.rejected) else 1

    def recover(self) -> None:
        from .recovery import recover

        for line in recover(self.instance, [self.store.path("")], self.store.catalog_path()).lines():
            say(f"recovered: {line}")

    def inventory_and_emulator(self, spec):
        """1/5: (re)build the inventory, train the emulator and calibrate the regional rheology
        where they are not current."""
        import geopandas as gpd

        from .assets.rheology import read_rheology
        from .plan import region_wide

        say("1/5 outline inventory, ice-flow emulator and regional ice rheology")
        todo = region_wide(self.store, self.region, self.igm, spec)
        self.inventory_current = todo.inventory_current
        if "ice_rheology" in todo.selection and self.igm.rheology_sample:
            say(f"   the rheology: inverted, then corrected on up to {self.igm.rheology_sample} glaciers' calibrated "
                "simulations (one after another: a few minutes)")
        if todo.selection:
            ok, msg = self._call(runs.materialize, todo.selection)
            if not ok:
                say(f"   FAILED: {msg}", error=True)
                return None
        rheology = read_rheology(self.store)
        self.rheology_factor = float(rheology["factor"])
        if rheology["n_glaciers"]:
            say(f"   rheology factor {self.rheology_factor:g} from {rheology['n_glaciers']} glacier(s) with reference "
                f"volumes ({rheology['reference_km3']:g} km3; {', '.join(rheology['source'])})"
                + (f": the inversion's {rheology['inversion_factor']:g} x R^5, R = {rheology['sample_ratio']:g} the "
                   f"simulated / inverted volume of {len(rheology['sample'])} glaciers"
                   if "sample_ratio" in rheology else "")
                + (" (unchanged)" if todo.rheology_current else ""))
        else:
            say(f"   rheology: {rheology['note']}", error=True)
        return gpd.read_parquet(self.store.path(INVENTORY_RELPATH))

    def select(self, inventory) -> list[str]:
        """The glaciers of this run (registered as partitions); rejected rows and repairs told."""
        import pandas as pd

        from .partitions import register_glaciers
        from .region_notes import inventory_notes

        ids = sorted(inventory["glacier_id"].unique())
        unknown = sorted(set(self.include or []) - set(ids))
        glaciers = [g for g in ids if not self.include or g in self.include]
        register_glaciers(self.instance, glaciers)  # e.g. a new instance over old products
        rejected = pd.read_csv(self.store.path(REJECTED_RELPATH), dtype=str)
        self.out.rejected = len(rejected) + len(unknown)
        say(f"   {len(ids)} glaciers in the inventory{' (unchanged)' if self.inventory_current else ''}, "
            f"{len(glaciers)} in this run; {self.store.path(INVENTORY_RELPATH)}")
        for line, error in inventory_notes(self.store, inventory, rejected, unknown):
            say(line, error)
        return glaciers

    def simulate(self, inventory, spec, glaciers: list[str]) -> None:
        """2/5: the glaciers whose simulation is not current (or whose last attempt failed), as
        ranged runs of contiguous glaciers, each one packed IGM child (igm_simulation). A glacier
        another main job has claimed (claims.py) is left to it, and waited for at the end."""
        from .plan import expected_simulations, simulations_to_run

        expected = expected_simulations(self.igm, inventory, spec, self.rheology_factor, glaciers)
        todo = simulations_to_run(self.store, expected, glaciers)
        self.sims = {g: expected[g] for g in todo}
        head = f"2/5 domains and calibrated IGM simulations: {len(todo)} to run, {len(glaciers) - len(todo)} unchanged"
        busy = self.claims.claim(todo)
        mine = [g for g in todo if g not in busy]
        if busy:
            say(f"{head}; {len(busy)} of them claimed by another run of the main job (pid "
                f"{', '.join(sorted(set(busy.values())))}): left to it, and waited for at the end")
        if mine or not busy:
            self.run_simulations(mine, head if not busy else f"   {len(mine)} to run here")
        if busy:
            say(f"   waiting for the other run to finish {len(busy)} glacier(s) ...")
            self.claims.wait(list(busy))
            left = simulations_to_run(self.store, expected, list(busy))
            say(f"   the other run made {len(busy) - len(left)} of them"
                + (f"; {len(left)} it did not are run here" if left else ""))
            if left:
                self.claims.claim(left)
                self.run_simulations(left, "   ")

    def run_simulations(self, todo: list[str], head: str) -> None:
        from .ledger import failures_at
        from .partitions import GLACIERS

        if not todo:
            say(head)
            return
        order = list(self.instance.get_dynamic_partitions(GLACIERS))
        per_run = max(1, min(BATCH_GLACIERS, -(-len(todo) // self.workers)))
        blocks = runs.ranges(order, set(todo), per_run)
        say(f"{head} (in {len(blocks)} ranged run(s), {self.workers} at a time)")
        futures = runs.submit_ranges(self.pool, runs.simulate_glaciers_job, blocks)
        finished, started, since = 0, time.perf_counter(), time.time()
        shown: dict[str, tuple[str, float]] = {}
        for members, ok, msg, _ in runs.as_finished(futures, PROGRESS_POLL_S, lambda: self.show_progress(since, shown)):
            bad = failures_at(self.store.path(""), members, ("glacier_domain", "igm_simulation"))
            if not ok and not bad:  # the run failed before any glacier's step could say why
                bad = {g: msg for g in members}
            self.out.failed.update(bad)
            finished += len(members)
            what = members[0] if len(members) == 1 else f"{members[0]}..{members[-1]} ({len(members)} glaciers)"
            say(f"   {progress(finished, len(todo), len(self.out.failed), started)}: {what} "
                f"{'ok' if not bad else 'FAILED ' + '; '.join(f'{g}: {m}' for g, m in bad.items())}")

    def show_progress(self, since: float, shown: dict[str, tuple[str, float]]) -> None:
        """The latest line of each running IGM child (igm_run/progress.py): a new one at most every
        PROGRESS_POLL_S seconds, the same one again after PROGRESS_QUIET_S, so no glacier goes quiet."""
        from .igm_run.progress import read_progress

        now = time.time()  # a child ticks every 30 s: an older record is a finished or dead run's
        for run, record in read_progress(self.store.path(PROGRESS_DIR), max(since, now - 3 * PROGRESS_POLL_S)).items():
            line, last = shown.get(run, ("", 0.0))
            if (record["line"] != line and now - last >= PROGRESS_POLL_S) or now - last >= PROGRESS_QUIET_S:
                say(f"   ... {record['line']} ({record['running_s'] / 60:.0f} min in)")
                shown[run] = (record["line"], now)

    def products(self, inventory, glaciers: list[str]) -> None:
        """3/5: the glacier-epochs whose products are not made from the current simulation, one
        ranged run per epoch and block of glaciers."""
        from .ledger import failures_at
        from .partitions import GLACIERS
        from .plan import epoch_products_to_make

        simulated = [g for g in glaciers if g not in self.out.failed]
        todo, damaged = epoch_products_to_make(self.store, simulated)
        n = sum(len(v) for v in todo.values())
        self.made = [0, n]
        say(f"3/5 thickness 25 m, masks and outlines: {n} glacier-epochs to make, "
            f"{len(simulated) * len(EPOCHS) - n} unchanged")
        if damaged:
            say(f"   remaking {len(damaged)} damaged product(s): " + "; ".join(damaged[:5])
                + (f" (+{len(damaged) - 5} more)" if len(damaged) > 5 else ""))
        def failed() -> dict[str, str]:  # the simulated glaciers whose products failed, and why
            return failures_at(self.store.path(""), simulated, ("glacier_products",))

        order = list(self.instance.get_dynamic_partitions(GLACIERS))
        done, started = 0, time.perf_counter()
        for year in EPOCHS:
            for members in runs.block_members(order, todo[year]):
                first, last = members[0], members[-1]
                ok, msg, _ = self._call(runs.execute, runs.glacier_epoch_products_job,
                                        runs.partition_range(f"{year}|{first}", f"{year}|{last}"))
                done += len(members)
                self.made[0] = done
                say(f"   {progress(done, n, len(failed()), started)}: {year} {first}..{last} "
                    f"{'ok' if ok else 'FAILED: ' + msg}")
        self.out.failed.update(failed())

    def publish(self, inventory, spec):
        """4/5 and 5/5, unless the live catalog already holds exactly this state."""
        from .assets.publish import publication_record
        from .plan import glacier_states_and_live
        from .publication import live_version
        from .region_notes import report_notes

        store = self.store
        state, live = glacier_states_and_live(store, self.region, self.igm, inventory, spec)
        if live is not None:
            say(f"4/5 regional outlines, 5/5 publishing: unchanged since the last publication "
                f"({store.catalog_path()} -> version {live.name})")
            self.out.published = True
            return state
        say(f"4/5 regional outlines per epoch (Albers) from {len(state.current)} glaciers")
        epochs = runs.partition_range(str(EPOCHS[0]), str(EPOCHS[-1]))
        ok, msg, secs = self._call(runs.execute, runs.regional_products_job, epochs)
        say(f"   {'ok' if ok else 'FAILED: ' + msg} ({secs:.1f} s)")
        if not ok:
            self.out.problems.append(f"regional outlines: {msg}")
            return state
        say("5/5 calibration report, product audit, quality gates, publishing")
        published, msg, secs = self._call(runs.execute, runs.quality_and_publish_job, {})
        for line, error in report_notes(store):
            say(line, error)
        if published:
            now_live = live_version(store.catalog_path())
            say(f"   published to {store.catalog_path()} (version {now_live.name}) ({secs:.1f} s)")
            self.out.failed.update({g: why for g, why in publication_record(store).get("failed", {}).items()
                                    if why.startswith("product_audit")})  # left out of this publication
        else:
            say(f"   NOT published: {msg} ({secs:.1f} s)", error=True)
            self.out.problems.append(f"publishing: {msg}")
        self.out.published = published
        return state

    def summary(self, state, glaciers: list[str], seconds: float) -> None:
        store, out = self.store, self.out
        say(f"\nDone in {seconds:.0f} s. Products under {store.path('')}:")
        for sub in ("domains", "simulations", "thickness", "masks", "outlines", "regional_outlines", "reports"):
            say(f"   {store.path(sub)}")
        say(f"Dagster instance: {os.environ['DAGSTER_HOME']} (browse it with `make ui`)")
        say(f"Region: {len(state.current)} glaciers with complete, current products, {len(state.failed)} failed, "
            f"{len(state.stale)} with changed inputs not re-run, {len(state.missing) + len(state.incomplete)} "
            "without complete products")
        if out.failed:
            say(f"\n{len(out.failed)} glacier(s) FAILED in this run (the others were published; "
                f"details in {store.path('status/failures')}):", error=True)
            for g, why in sorted(out.failed.items()):
                say(f"   {g} {why}", error=True)
        earlier = sorted(g for g in state.failed if g not in glaciers)
        if earlier:
            say(f"{len(earlier)} glacier(s) outside this run still failed from an earlier run: {', '.join(earlier)}",
                error=True)
        if out.rejected:
            say(f"{out.rejected} inventory row(s) rejected (see above and {store.path(REJECTED_RELPATH)})", error=True)
        for p in out.problems:
            say(f"FAILED {p}", error=True)


def run_chain(workers: int, include: list[str] | None = None, started: float | None = None) -> int:
    """The main job; `started` (perf_counter) is when the command began, for the time it reports."""
    return MainJob(workers, include).run(started)

