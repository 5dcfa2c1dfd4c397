"""The main job: the whole chain for a region, doing only what changed, naming what failed.

    recover   runs left STARTED by a dead process -> failed; their `gpu` slots freed; temporaries gone
    1/5       outline inventory (skipped if its files did not change) and the ice-flow emulator
    2/5       domain + calibrated IGM run, one Dagster run per glacier whose inputs changed
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
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from importlib.metadata import version

IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


def _job(name: str):
    from .definitions import defs

    return defs.resolve_job_def(name)


def simulate_glaciers_job():
    return _job("simulate_glaciers")


def glacier_epoch_products_job():
    return _job("glacier_epoch_products")


def regional_products_job():
    return _job("regional_products")


def quality_and_publish_job():
    return _job("quality_and_publish")


def _failure_text(result) -> str:
    """The first line of each failed step's cause (a Failure's description, else the exception)."""
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
        lines.append(f"{event.step_key}: {err.message.strip().splitlines()[0] if err else 'failed'}")
    return "; ".join(lines)


def execute(job_fn, tags: dict) -> tuple[bool, str, float]:
    """Run a job of the code location on the project's instance, tagged with this process (so a
    later start can tell the run's process died). Returns (success, failure text, seconds)."""
    import dagster as dg

    from .recovery import process_tag

    t0 = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        # one run per process here, steps in process; with GLACIER_EXECUTOR set, that executor's defaults
        run_config = IN_PROCESS if os.environ.get("GLACIER_EXECUTOR", "multiprocess") == "multiprocess" else {}
        result = dg.execute_job(dg.reconstructable(job_fn), instance=instance, run_config=run_config,
                                tags={**tags, **process_tag()}, raise_on_error=False)
        return result.success, ("" if result.success else _failure_text(result)), time.perf_counter() - t0


def _worker_init(parent: int) -> None:
    from .recovery import die_with_parent

    die_with_parent(parent)


def _blocks(order: list[str], needed: set[str]) -> list[tuple[str, str]]:
    """Contiguous runs of `needed` glaciers in partition order, as (first, last) ranges."""
    out, start, prev = [], None, None
    for g in order:
        if g in needed:
            start, prev = start or g, g
        elif start:
            out.append((start, prev))
            start = None
    if start:
        out.append((start, prev))
    return out


@dataclass
class Outcome:
    failed: dict[str, str] = field(default_factory=dict)  # glacier -> "step: cause" (this run)
    problems: list[str] = field(default_factory=list)  # region-wide failures
    rejected: int = 0


def run_chain(workers: int, include: list[str] | None = None) -> int:
    import dagster as dg
    import pandas as pd

    from .assets.inventory import REJECTED_RELPATH, inventory_fingerprint
    from .assets.publish import publication_record
    from .assets.simulation import emulator_current
    from .assets._steps import glacier_states
    from .constants import AREA_GATE_PCT, CALIBRATION_REPORT_RELPATH, EPOCHS, INVENTORY_RELPATH, outline_relpath
    from .definitions import defs
    from .fingerprints import product_fingerprint
    from .inventory.region import RegionSpecError
    from .ledger import describe_failures, read_failures
    from .partitions import GLACIERS
    from .publication import leftovers, live_version
    from .recovery import process_tag, recover
    from .science.quality import area_gate
    from .storage import netcdf_attrs, read_parquet_metadata, remove_paths
    from .constants import simulation_relpath
    from .workflow import code_for, expected_fingerprints

    store, region, igm = defs.resources["store"], defs.resources["region"], defs.resources["igm"]
    instance = dg.DagsterInstance.get()
    t_start = time.perf_counter()
    out = Outcome()
    rec = recover(instance, [store.path("")])
    stray = leftovers(store.catalog_path())
    remove_paths(stray)
    for line in rec.lines() + ([f"removed {len(stray)} unfinished catalog link(s)"] if stray else []):
        print(f"recovered: {line}", flush=True)
    try:
        spec = region.load()
    except (RegionSpecError, FileNotFoundError, ValueError) as exc:
        print(f"region spec: {exc}", file=sys.stderr)
        return 2

    print("1/5 outline inventory and ice-flow emulator", flush=True)
    inv_path = store.path(INVENTORY_RELPATH)
    registered = set(instance.get_dynamic_partitions(GLACIERS))
    inventory_current = (read_parquet_metadata(inv_path).get("fingerprint") == inventory_fingerprint(spec)
                         and store.path(REJECTED_RELPATH).exists())
    selection = [] if inventory_current else ["outline_inventory"]
    if not emulator_current(store, igm):
        selection.append("iceflow_emulator")
    if selection:
        res = dg.materialize([*defs.assets, *defs.asset_checks], selection=selection, instance=instance,
                             resources=defs.resources, raise_on_error=False, tags=process_tag())
        if not res.success:
            print(f"   FAILED: {_failure_text(res)}", file=sys.stderr)
            return 1
    import geopandas as gpd

    inventory = gpd.read_parquet(inv_path)
    ids = sorted(inventory["glacier_id"].unique())
    unknown = sorted(set(include or []) - set(ids))
    glaciers = [g for g in ids if not include or g in include]
    missing_partitions = sorted(set(glaciers) - registered - set(instance.get_dynamic_partitions(GLACIERS)))
    if missing_partitions:  # e.g. a new instance over old products
        instance.add_dynamic_partitions(GLACIERS, missing_partitions)
    rejected = pd.read_csv(store.path(REJECTED_RELPATH), dtype=str)
    out.rejected = len(rejected) + len(unknown)
    print(f"   {len(ids)} glaciers in the inventory{' (unchanged)' if inventory_current else ''}, "
          f"{len(glaciers)} in this run; {inv_path}", flush=True)
    for r in rejected.head(10).itertuples():
        print(f"   REJECTED {r.glacier_id} ({r.source}): {r.reason}", file=sys.stderr)
    if len(rejected) > 10:
        print(f"   ... {len(rejected) - 10} more rejected rows in {store.path(REJECTED_RELPATH)}", file=sys.stderr)
    if "repair" in inventory.columns:
        for r in inventory[inventory["repair"].fillna("") != ""].head(10).itertuples():
            print(f"   repaired {r.glacier_id} ({r.source}, {r.year}): {r.repair}", flush=True)
    for g in unknown:
        print(f"   REJECTED {g} (--include): not in the inventory", file=sys.stderr)
    if not glaciers:
        return 1

    expected = expected_fingerprints(inventory, spec, igm.emulator_fingerprint(), igm.simulation_settings(), glaciers)
    failures = read_failures(store.path(""))
    to_simulate = [g for g in glaciers if g in failures or expected[g]["simulation"] is None
                   or netcdf_attrs(store.path(simulation_relpath(g))).get("fingerprint") != expected[g]["simulation"]]
    print(f"2/5 domains and calibrated IGM simulations: {len(to_simulate)} to run, "
          f"{len(glaciers) - len(to_simulate)} unchanged ({workers} at a time)", flush=True)
    if to_simulate:
        with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init, initargs=(os.getpid(),)) as pool:
            futures = {pool.submit(execute, simulate_glaciers_job, {"dagster/partition": g}): g for g in to_simulate}
            for i, fut in enumerate(as_completed(futures), 1):
                g = futures[fut]
                ok, msg, secs = fut.result()
                if not ok:
                    recs = read_failures(store.path("")).get(g)
                    out.failed[g] = describe_failures(recs) if recs else msg
                bar = "#" * int(30 * i / len(to_simulate))
                print(f"   [{bar:<30}] {i}/{len(to_simulate)} {g} "
                      f"{'ok' if ok else 'FAILED ' + out.failed[g]} ({secs:.0f} s)", flush=True)

    simulated = [g for g in glaciers if g not in out.failed]
    codes = {g: code_for(g, inventory) for g in simulated}
    sim_fps = {g: netcdf_attrs(store.path(simulation_relpath(g))).get("fingerprint") for g in simulated}
    todo = {year: {g for g in simulated
                   if read_parquet_metadata(store.path(outline_relpath(g, year))).get("fingerprint")
                   != product_fingerprint(sim_fps[g], year, codes[g])} for year in EPOCHS}
    n_todo = sum(len(v) for v in todo.values())
    print(f"3/5 thickness 25 m, masks and outlines: {n_todo} glacier-epochs to make, "
          f"{len(simulated) * len(EPOCHS) - n_todo} unchanged", flush=True)
    order = list(instance.get_dynamic_partitions(GLACIERS))
    for year in EPOCHS:
        for first, last in _blocks(order, todo[year]):
            ok, msg, secs = execute(glacier_epoch_products_job, {
                "dagster/asset_partition_range_start": f"{year}|{first}",
                "dagster/asset_partition_range_end": f"{year}|{last}"})
            print(f"   {year}: {first}..{last} {'ok' if ok else 'FAILED: ' + msg} ({secs:.1f} s)", flush=True)
    for g, recs in read_failures(store.path("")).items():
        if g in simulated and any(r["step"] == "glacier_products" for r in recs):
            out.failed[g] = describe_failures(recs)

    state = glacier_states(store, region, igm, inventory)
    pub_fp = state.publication_fingerprint(store.albers, version("glacier_assets"))
    live = live_version(store.catalog_path())
    if live is not None and publication_record(store).get("fingerprint") == pub_fp:
        print(f"4/5 regional outlines, 5/5 publishing: unchanged since the last publication "
              f"({store.catalog_path()} -> version {live.name})", flush=True)
        published = True
    else:
        print(f"4/5 regional outlines per epoch (Albers) from {len(state.current)} glaciers", flush=True)
        ok, msg, secs = execute(regional_products_job, {
            "dagster/asset_partition_range_start": str(EPOCHS[0]), "dagster/asset_partition_range_end": str(EPOCHS[-1])})
        print(f"   {'ok' if ok else 'FAILED: ' + msg} ({secs:.1f} s)", flush=True)
        if not ok:
            out.problems.append(f"regional outlines: {msg}")
        print("5/5 calibration report, product audit, quality gates, publishing", flush=True)
        published, msg, secs = execute(quality_and_publish_job, {}) if ok else (False, "no regional outlines", 0.0)
        report = store.path(CALIBRATION_REPORT_RELPATH)
        if report.exists():
            gate = area_gate(pd.read_csv(report))
            print(f"   area agreement: mean |A_sim - A_obs| / A_obs = {gate.mean_abs_diff_pct:.2f} % over "
                  f"{gate.n_comparisons} glacier-epochs (gate {AREA_GATE_PCT} %): "
                  f"{'PASSED' if gate.passed else 'FAILED'}", flush=True)
        live = live_version(store.catalog_path())
        print(f"   {'published to ' + str(store.catalog_path()) + ' (version ' + live.name + ')' if published else 'NOT published: ' + msg} "
              f"({secs:.1f} s)", flush=True)
        if not published:
            out.problems.append(f"publishing: {msg}")

    print(f"\nDone in {time.perf_counter() - t_start:.0f} s. Products under {store.path('')}:")
    for sub in ("domains", "simulations", "thickness", "masks", "outlines", "regional_outlines", "reports"):
        print(f"   {store.path(sub)}")
    print(f"Dagster instance: {os.environ['DAGSTER_HOME']} (browse it with `make ui`)")
    print(f"Region: {len(state.current)} glaciers current and published-ready, {len(state.failed)} failed, "
          f"{len(state.stale)} with changed inputs not re-run, {len(state.missing) + len(state.incomplete)} "
          "without complete products")
    if out.failed:
        print(f"\n{len(out.failed)} glacier(s) FAILED in this run (the others were published; "
              f"details in {store.path('status/failures')}):", file=sys.stderr)
        for g, why in sorted(out.failed.items()):
            print(f"   {g} {why}", file=sys.stderr)
    earlier = {g: r for g, r in state.failed.items() if g not in glaciers}
    if earlier:
        print(f"{len(earlier)} glacier(s) outside this run still failed from an earlier run: "
              + ", ".join(sorted(earlier)), file=sys.stderr)
    if out.rejected:
        print(f"{out.rejected} inventory row(s) rejected (see above and {store.path(REJECTED_RELPATH)})",
              file=sys.stderr)
    for p in out.problems:
        print(f"FAILED {p}", file=sys.stderr)
    return 0 if published and not (out.failed or out.problems or out.rejected) else 1


def remove_glaciers(ids: list[str], store=None, instance=None) -> int:
    """Unpublish glaciers and forget their products: a new catalog version without their items
    and outline rows, their work-area products and failure records deleted, their partitions
    dropped. A glacier still in the region's outline files comes back at the next full run."""
    import json

    import dagster as dg

    from .assets.products import REGION_LOCK
    from .assets.publish import published_glaciers, publication_record
    from .constants import (
        EPOCHS,
        PUBLICATION_RECORD_RELPATH,
        domain_relpath,
        mask_relpath,
        outline_relpath,
        plot_relpath,
        simulation_relpath,
        thickness_relpath,
    )
    from .definitions import defs
    from .ledger import clear_glacier
    from .partitions import GLACIERS
    from .publication import live_version, new_version
    from .stac import catalog_json_paths, validate_objects, write_catalog
    from .storage import atomic_path, file_lock

    store = store or defs.resources["store"]
    root = store.catalog_path()
    with file_lock(store.path(REGION_LOCK)):
        live = live_version(root)
        in_catalog = set(published_glaciers(root)) if live else set()
        if live is not None and in_catalog & set(ids):
            record = publication_record(store)
            extent = json.loads((live / "thickness" / "collection.json").read_text())["extent"]["spatial"]["bbox"][0]
            with new_version(root) as stage:
                write_catalog(stage, {g: [] for g in ids}, {y: (None, None) for y in EPOCHS}, {},
                              version("glacier_assets"), failed={g: r for g, r in record.get("failed", {}).items()
                                                                 if g not in ids}, region_bbox=extent)
                problems = validate_objects(catalog_json_paths(stage), store.stac_schemas_path())
                if problems:
                    print(f"not removed: the catalog would be invalid: {problems[:3]}", file=sys.stderr)
                    raise SystemExit(1)
            record["fingerprint"] = ""  # the next run publishes again
            with atomic_path(store.path(PUBLICATION_RECORD_RELPATH), suffix=".json") as tmp:
                tmp.write_text(json.dumps(record, indent=1))
        for g in ids:
            paths = [store.path(domain_relpath(g)), store.path(simulation_relpath(g)), store.path(plot_relpath(g))]
            paths += [store.path(f(g, y)) for y in EPOCHS for f in (thickness_relpath, mask_relpath, outline_relpath)]
            for p in paths:
                p.unlink(missing_ok=True)
            clear_glacier(store.path(""), g)
    instance = instance or dg.DagsterInstance.get()
    for g in set(ids) & set(instance.get_dynamic_partitions(GLACIERS)):
        instance.delete_dynamic_partition(GLACIERS, g)
    for g in ids:
        where = "unpublished from " + str(root) + " and " if g in in_catalog else ""
        print(f"{g}: {where}its products removed")
    live = live_version(root)
    if live is not None:
        print(f"catalog: version {live.name}")
    return 0
