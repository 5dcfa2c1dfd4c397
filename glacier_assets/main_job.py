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
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field

from . import job_runs as runs
from .constants import (
    AREA_GATE_PCT,
    BATCH_GLACIERS,
    CALIBRATION_REPORT_RELPATH,
    EPOCHS,
    INVENTORY_RELPATH,
    MISSING_RELPATH,
    PROGRESS_DIR,
    REJECTED_RELPATH,
    UNMATCHED_RELPATH,
    simulation_relpath,
)

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
        from .simulation_file import SimulationFile
        from .stopping import stop_job

        reason = f"stopped by {stop.name}; a re-run resumes"
        canceled = stop_job(self.instance, self.pool, reason)
        simulated = sum(1 for g, fp in self.sims.items()
                        if fp and SimulationFile(self.store.path(simulation_relpath(g))).fingerprint() == fp)
        done = [f"{simulated} of {len(self.sims)} glacier simulations"] if self.sims else []
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
        from .publication import leftovers
        from .recovery import recover
        from .storage import remove_paths

        rec = recover(self.instance, [self.store.path("")])
        stray = leftovers(self.store.catalog_path())
        remove_paths(stray)
        for line in rec.lines() + ([f"removed {len(stray)} unfinished catalog link(s)"] if stray else []):
            say(f"recovered: {line}")

    def inventory_and_emulator(self, spec):
        """1/5: (re)build the inventory, train the emulator and calibrate the regional rheology
        where they are not current."""
        import geopandas as gpd

        from .assets.inventory import inventory_fingerprint
        from .assets.rheology import read_rheology, rheology_current
        from .assets.simulation import emulator_current
        from .storage import read_parquet_metadata

        say("1/5 outline inventory, ice-flow emulator and regional ice rheology")
        path = self.store.path(INVENTORY_RELPATH)
        self.inventory_current = (read_parquet_metadata(path).get("fingerprint") == inventory_fingerprint(spec)
                                  and self.store.path(REJECTED_RELPATH).exists())
        rheology_ok = self.inventory_current and rheology_current(self.store, self.region, gpd.read_parquet(path), spec)
        selection = ([] if self.inventory_current else ["outline_inventory", "outline_match"]) + \
            ([] if not self.igm.needs_emulator or emulator_current(self.store, self.igm) else ["iceflow_emulator"]) + \
            ([] if rheology_ok else ["ice_rheology"])
        if selection:
            ok, msg = self._call(runs.materialize, selection)
            if not ok:
                say(f"   FAILED: {msg}", error=True)
                return None
        rheology = read_rheology(self.store)
        self.rheology_factor = float(rheology["factor"])
        if rheology["n_glaciers"]:
            say(f"   rheology factor {self.rheology_factor:g} from {rheology['n_glaciers']} glacier(s) with reference "
                f"volumes ({rheology['reference_km3']:g} km3; {', '.join(rheology['source'])})"
                + (" (unchanged)" if rheology_ok else ""))
        else:
            say(f"   rheology: {rheology['note']}", error=True)
        return gpd.read_parquet(path)

    def select(self, inventory) -> list[str]:
        """The glaciers of this run (registered as partitions); rejected rows and repairs told."""
        import pandas as pd

        from .partitions import register_glaciers

        ids = sorted(inventory["glacier_id"].unique())
        unknown = sorted(set(self.include or []) - set(ids))
        glaciers = [g for g in ids if not self.include or g in self.include]
        register_glaciers(self.instance, glaciers)  # e.g. a new instance over old products
        rejected = pd.read_csv(self.store.path(REJECTED_RELPATH), dtype=str)
        self.out.rejected = len(rejected) + len(unknown)
        say(f"   {len(ids)} glaciers in the inventory{' (unchanged)' if self.inventory_current else ''}, "
            f"{len(glaciers)} in this run; {self.store.path(INVENTORY_RELPATH)}")
        for r in rejected.head(10).itertuples():
            say(f"   REJECTED {r.glacier_id} ({r.source}): {r.reason}", error=True)
        if len(rejected) > 10:
            say(f"   ... {len(rejected) - 10} more rejected rows in {self.store.path(REJECTED_RELPATH)}", error=True)
        if "repair" in inventory.columns:
            for r in inventory[inventory["repair"].fillna("") != ""].head(10).itertuples():
                say(f"   repaired {r.glacier_id} ({r.source}, {r.year}): {r.repair}")
        for g in unknown:
            say(f"   REJECTED {g} (--include): not in the inventory", error=True)
        unmatched = pd.read_csv(self.store.path(UNMATCHED_RELPATH), dtype=str)
        missing = pd.read_csv(self.store.path(MISSING_RELPATH), dtype=str)
        if len(unmatched) or len(missing):
            say(f"   outlines matched by location: {len(unmatched)} polygon(s) matched to no glacier "
                f"({self.store.path(UNMATCHED_RELPATH)}), {len(missing)} glacier-source pair(s) without an outline "
                f"({self.store.path(MISSING_RELPATH)})")
        return glaciers

    def simulate(self, inventory, spec, glaciers: list[str]) -> None:
        """2/5: the glaciers whose simulation is not current (or whose last attempt failed), as
        ranged runs of contiguous glaciers, each one packed IGM child (igm_simulation). A glacier
        another main job has claimed (claims.py) is left to it, and waited for at the end."""
        from .ledger import read_failures
        from .simulation_file import SimulationFile
        from .steps.inputs import expected_fingerprints

        expected = expected_fingerprints(inventory, spec, self.igm.emulator_fingerprint(),
                                         self.igm.simulation_settings(self.rheology_factor), glaciers)

        def not_current(ids: list[str]) -> list[str]:
            failures = read_failures(self.store.path(""))
            return [g for g in ids if g in failures or expected[g]["simulation"] is None
                    or SimulationFile(self.store.path(simulation_relpath(g))).fingerprint()
                    != expected[g]["simulation"]]

        todo = not_current(glaciers)
        self.sims = {g: expected[g]["simulation"] for g in todo}
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
            left = not_current(list(busy))
            say(f"   the other run made {len(busy) - len(left)} of them"
                + (f"; {len(left)} it did not are run here" if left else ""))
            if left:
                self.claims.claim(left)
                self.run_simulations(left, "   ")

    def run_simulations(self, todo: list[str], head: str) -> None:
        from .ledger import describe_failures, read_failures
        from .partitions import GLACIERS

        if not todo:
            say(head)
            return
        order = list(self.instance.get_dynamic_partitions(GLACIERS))
        per_run = max(1, min(BATCH_GLACIERS, -(-len(todo) // self.workers)))
        ranges = [block[i:i + per_run] for block in runs.block_members(order, set(todo))
                  for i in range(0, len(block), per_run)]
        say(f"{head} (in {len(ranges)} ranged run(s), {self.workers} at a time)")
        pool = self.pool
        futures = {pool.submit(runs.execute, runs.simulate_glaciers_job,
                               {"dagster/asset_partition_range_start": members[0],
                                "dagster/asset_partition_range_end": members[-1]}): members for members in ranges}
        finished, started, since = 0, time.perf_counter(), time.time()
        pending, shown = set(futures), dict[str, tuple[str, float]]()
        while pending:
            done, pending = wait(pending, timeout=PROGRESS_POLL_S, return_when=FIRST_COMPLETED)
            self.show_progress(since, shown)
            for fut in done:
                members = futures[fut]
                ok, msg, secs = fut.result()
                records = read_failures(self.store.path(""))
                bad = {g: describe_failures(records[g]) for g in members
                       if any(r["step"] in ("glacier_domain", "igm_simulation") for r in records.get(g, []))}
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
        from .fingerprints import product_fingerprint
        from .ledger import describe_failures, epoch_products_made, read_failures
        from .partitions import GLACIERS
        from .science.masks import glacier_code
        from .simulation_file import SimulationFile

        simulated = [g for g in glaciers if g not in self.out.failed]
        sim = {g: SimulationFile(self.store.path(simulation_relpath(g))).fingerprint() for g in simulated}

        damaged: list[str] = []

        def stale(g: str, year: int) -> bool:
            sim_fp = sim[g]
            if sim_fp is None:  # no simulation: left to the step, which names it
                return True
            made, problems = epoch_products_made(self.store.path(""), g, year,
                                                 product_fingerprint(sim_fp, year, glacier_code(g)))
            damaged.extend(f"{g} {year}: {p}" for p in problems)
            return not made or bool(problems)

        todo = {year: {g for g in simulated if stale(g, year)} for year in EPOCHS}
        n = sum(len(v) for v in todo.values())
        self.made = [0, n]
        say(f"3/5 thickness 25 m, masks and outlines: {n} glacier-epochs to make, "
            f"{len(simulated) * len(EPOCHS) - n} unchanged")
        if damaged:
            say(f"   remaking {len(damaged)} damaged product(s): " + "; ".join(damaged[:5])
                + (f" (+{len(damaged) - 5} more)" if len(damaged) > 5 else ""))
        def failed() -> dict[str, str]:  # the simulated glaciers whose products failed, and why
            return {g: describe_failures(records) for g, records in read_failures(self.store.path("")).items()
                    if g in simulated and any(r["step"] == "glacier_products" for r in records)}

        order = list(self.instance.get_dynamic_partitions(GLACIERS))
        done, started = 0, time.perf_counter()
        for year in EPOCHS:
            for members in runs.block_members(order, todo[year]):
                first, last = members[0], members[-1]
                ok, msg, _ = self._call(runs.execute, runs.glacier_epoch_products_job, {
                    "dagster/asset_partition_range_start": f"{year}|{first}",
                    "dagster/asset_partition_range_end": f"{year}|{last}"})
                done += len(members)
                self.made[0] = done
                say(f"   {progress(done, n, len(failed()), started)}: {year} {first}..{last} "
                    f"{'ok' if ok else 'FAILED: ' + msg}")
        self.out.failed.update(failed())

    def publish(self, inventory, spec):
        """4/5 and 5/5, unless the live catalog already holds exactly this state."""
        import pandas as pd

        from .assets._steps import glacier_states
        from .assets.publish import catalog_texts, publication_record, publication_settings
        from .publication import live_version
        from .science.quality import area_gate

        store = self.store
        state = glacier_states(store, self.region, self.igm, inventory)
        live = live_version(store.catalog_path())
        if live is not None and publication_record(store).get("fingerprint") == \
                state.publication_fingerprint(*publication_settings(store, catalog_texts(store, spec))):
            say(f"4/5 regional outlines, 5/5 publishing: unchanged since the last publication "
                f"({store.catalog_path()} -> version {live.name})")
            self.out.published = True
            return state
        say(f"4/5 regional outlines per epoch (Albers) from {len(state.current)} glaciers")
        epochs = {"dagster/asset_partition_range_start": str(EPOCHS[0]),
                  "dagster/asset_partition_range_end": str(EPOCHS[-1])}
        ok, msg, secs = self._call(runs.execute, runs.regional_products_job, epochs)
        say(f"   {'ok' if ok else 'FAILED: ' + msg} ({secs:.1f} s)")
        if not ok:
            self.out.problems.append(f"regional outlines: {msg}")
            return state
        say("5/5 calibration report, product audit, quality gates, publishing")
        published, msg, secs = self._call(runs.execute, runs.quality_and_publish_job, {})
        report = store.path(CALIBRATION_REPORT_RELPATH)
        if report.exists():
            gate = area_gate(pd.read_csv(report))
            say(f"   area agreement: mean |A_sim - A_obs| / A_obs = {gate.mean_abs_diff_pct:.2f} % over "
                f"{gate.n_comparisons} outlines (gate {AREA_GATE_PCT} %): {'PASSED' if gate.passed else 'FAILED'}"
                + (f"; {gate.note}" if gate.note else ""))
            status = pd.read_csv(report).groupby("glacier_id")["glacier_status"].first()
            flagged = status[status.str.startswith("flagged")]
            if len(flagged):
                say(f"   {len(flagged)} glacier(s) flagged (published, with the reason in {report.name}): "
                    + "; ".join(f"{g} {s.removeprefix('flagged: ')}" for g, s in flagged.head(5).items())
                    + (" ..." if len(flagged) > 5 else ""))
            self._say_shape(pd.read_csv(report), report.name)
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

    @staticmethod
    def _say_shape(report, name: str) -> None:
        """Where the ice is at the outline dates (science/shape.py): the region's figures, then
        the glaciers flagged for their shape."""
        from .science.quality import shape_summary, validation_table

        table = validation_table(report)
        fig = shape_summary(table)
        if fig["iou_median"] is None:
            return
        say(f"   shape at the outline dates: IoU median {fig['iou_median']:.2f} (model-grid ceiling "
            f"{fig['ceiling_iou_median']:.2f}), lowest {fig['iou_min']:.2f}; tongues under ice: median "
            + ("n/a" if fig["tongue_covered_median"] is None else f"{fig['tongue_covered_median']:.2f}"))
        flagged = table[table["shape_flag"] != ""]
        if len(flagged):
            say(f"   {len(flagged)} glacier(s) flagged for their shape (published, with the reason in {name}): "
                + "; ".join(f"{g} {f}" for g, f in zip(flagged["glacier_id"].head(5), flagged["shape_flag"].head(5)))
                + (" ..." if len(flagged) > 5 else ""))

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
