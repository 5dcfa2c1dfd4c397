"""Command line: `python -m glacier_assets run` materializes the whole chain (the main job).

    python -m glacier_assets run [--region region.yaml] [--include ID ...] [--workers 2]
    python -m glacier_assets demo-region [DEST]      # only (re)generate the demo region's inputs
    python -m glacier_assets ui [--port 3000]        # `dagster dev` on 127.0.0.1 over the same instance

The runs go to the project's Dagster instance ($DAGSTER_HOME, default var/dagster_home), so the
UI (`make ui`) shows them. Glaciers are simulated `--workers` at a time, one Dagster run each;
the cheap per-epoch products run batched, one ranged run per epoch.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

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


def _execute(job_fn, tags: dict) -> tuple[bool, str, float]:
    import dagster as dg

    t0 = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        # one run per process here, steps in process; with GLACIER_EXECUTOR set, that executor's defaults
        run_config = IN_PROCESS if os.environ.get("GLACIER_EXECUTOR", "multiprocess") == "multiprocess" else {}
        result = dg.execute_job(dg.reconstructable(job_fn), instance=instance, run_config=run_config,
                                tags=tags, raise_on_error=False)
        message = ""
        if not result.success:
            failures = [e for e in result.all_events if e.is_step_failure]
            message = "; ".join(str(e.step_failure_data.error.message).strip().splitlines()[0] for e in failures)
        return result.success, message or result.run_id, time.perf_counter() - t0


def run_chain(workers: int) -> int:
    import dagster as dg
    import pandas as pd

    from .constants import AREA_GATE_PCT, CALIBRATION_REPORT_RELPATH, EPOCHS
    from .definitions import defs
    from .partitions import GLACIERS
    from .science.quality import area_gate

    instance = dg.DagsterInstance.get()
    t_start = time.perf_counter()
    print("1/5 outline inventory and ice-flow emulator", flush=True)
    res = dg.materialize([*defs.assets, *defs.asset_checks], selection=["outline_inventory", "iceflow_emulator"],
                         instance=instance, resources=defs.resources, raise_on_error=False)
    if not res.success:
        print("   failed: see the run in the UI (make ui)", file=sys.stderr)
        return 1
    inv_md = res.asset_materializations_for_node("outline_inventory")[0].metadata
    glaciers = sorted(set(instance.get_dynamic_partitions(GLACIERS)) & set(_inventory_ids(inv_md)))
    print(f"   {len(glaciers)} glaciers, inventory {inv_md['path'].value}", flush=True)

    print(f"2/5 domains and calibrated IGM simulations ({workers} at a time)", flush=True)
    done_ok = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_execute, simulate_glaciers_job, {"dagster/partition": g}): g for g in glaciers}
        for i, fut in enumerate(as_completed(futures), 1):
            g = futures[fut]
            ok, msg, secs = fut.result()
            bar = "#" * int(30 * i / len(glaciers))
            print(f"   [{bar:<30}] {i}/{len(glaciers)} {g} {'ok' if ok else 'FAILED: ' + msg} ({secs:.0f} s)", flush=True)
            if ok:
                done_ok.append(g)
    if not done_ok:
        return 1

    print("3/5 thickness 25 m, masks and outlines (one batched run per epoch)", flush=True)
    failed = 0
    for year in EPOCHS:
        keys = [f"{year}|{g}" for g in sorted(done_ok)]
        ok, msg, secs = _execute(glacier_epoch_products_job, {
            "dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]})
        failed += not ok
        print(f"   {year}: {len(keys)} glaciers {'ok' if ok else 'FAILED: ' + msg} ({secs:.1f} s)", flush=True)

    print("4/5 regional outlines per epoch (Albers)", flush=True)
    ok, msg, secs = _execute(regional_products_job, {
        "dagster/asset_partition_range_start": str(EPOCHS[0]), "dagster/asset_partition_range_end": str(EPOCHS[-1])})
    print(f"   {'ok' if ok else 'FAILED: ' + msg} ({secs:.1f} s)", flush=True)

    print("5/5 calibration report, product audit, quality gates, publishing", flush=True)
    published, msg, secs = _execute(quality_and_publish_job, {})
    store = defs.resources["store"]
    report = store.path(CALIBRATION_REPORT_RELPATH)
    if report.exists():
        gate = area_gate(pd.read_csv(report))
        print(f"   area agreement: mean |A_sim - A_obs| / A_obs = {gate.mean_abs_diff_pct:.2f} % over "
              f"{gate.n_comparisons} glacier-epochs (gate {AREA_GATE_PCT} %): {'PASSED' if gate.passed else 'FAILED'}")
    print(f"   {'published to ' + str(store.catalog_path()) if published else 'NOT published: ' + msg} "
          f"({secs:.1f} s)", flush=True)

    print(f"\nDone in {time.perf_counter() - t_start:.0f} s. Products under {store.path('')}:")
    for sub in ("domains", "simulations", "thickness", "masks", "outlines", "regional_outlines", "reports"):
        print(f"   {store.path(sub)}")
    print(f"Dagster instance: {os.environ['DAGSTER_HOME']} (browse it with `make ui`)")
    failed_glaciers = sorted(set(glaciers) - set(done_ok))
    if failed_glaciers:
        print(f"Glaciers that failed: {', '.join(failed_glaciers)}", file=sys.stderr)
    return 0 if (ok and published and not failed and not failed_glaciers) else 1


def _inventory_ids(md) -> list[str]:
    import geopandas as gpd

    return list(gpd.read_parquet(md["path"].value)["glacier_id"].unique())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m glacier_assets")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="materialize the whole chain (the main job)")
    r.add_argument("--region", help="region YAML (default: the built-in demo region)")
    r.add_argument("--products", help="products folder (default var/products)")
    r.add_argument("--include", nargs="*", default=None, help="only these glacier ids")
    r.add_argument("--workers", type=int, default=2, help="IGM runs at a time (default 2)")
    d = sub.add_parser("demo-region", help="generate the demo region's inputs")
    d.add_argument("dest", nargs="?", default="var/demo_region")
    u = sub.add_parser("ui", help="open the Dagster UI (dagster dev on 127.0.0.1) over the project's instance")
    u.add_argument("--port", type=int, default=3000)
    args = p.parse_args(argv)

    if args.cmd == "demo-region":
        from .inventory.demo import build_demo_region

        print(build_demo_region(Path(args.dest)))
        return 0
    from .instance import ensure_dagster_home

    os.environ.setdefault("GLACIER_ASSETS_ROOT", os.getcwd())
    ensure_dagster_home()
    if args.cmd == "ui":
        from .deploy import batch_event_writes

        batch_event_writes()  # the webserver and daemon create the runs: they need the settings too
        dagster = str(Path(sys.executable).parent / "dagster")
        os.execv(dagster, [dagster, "dev", "-h", "127.0.0.1", "-p", str(args.port), "-w", "workspace.yaml"])
    if args.region:
        os.environ["GLACIER_REGION_SPEC"] = str(Path(args.region).resolve())
    if args.products:
        os.environ["GLACIER_PRODUCTS"] = str(Path(args.products).resolve())
    if args.include:
        os.environ["GLACIER_INCLUDE"] = ",".join(args.include)
    return run_chain(args.workers)


if __name__ == "__main__":
    sys.exit(main())
