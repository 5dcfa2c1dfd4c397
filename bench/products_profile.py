"""Where the per-(glacier, epoch) products' time goes: `_glacier_epoch` without Dagster.

    .venv/bin/python bench/products_profile.py [--tiles 1] [--profile]

Setup (not timed) as in region_scale.py: 12 x `tiles` glaciers and their stand-in simulations,
the outline inventory. Timed: every glacier x epoch through `assets.products._glacier_epoch`
(thickness, mask, outline and the reuse check), one after another in this process, with a fresh
product folder; prints ms per partition (the science of one core, without the worker pool).
`--profile` runs the same under cProfile and prints the top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import dagster as dg  # noqa: E402
from region_scale import setup, stamp_simulations  # noqa: E402

from glacier_assets.constants import EPOCHS  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tiles", type=int, default=1)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--workers", type=int, default=1, help="> 1: through compute_partitions' worker pool")
    p.add_argument("--top", type=int, default=35)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-products-") as tmp:
        tmp = Path(tmp)
        spec, n = setup(tmp, args.tiles)
        from glacier_assets.deploy import batch_event_writes

        batch_event_writes()  # as the CLI sets them for the runs it starts
        os.environ.update({"GLACIER_REGION_SPEC": str(spec), "GLACIER_PRODUCTS": str(tmp / "products"),
                           "GLACIER_CATALOG": str(tmp / "catalog")})
        from glacier_assets.assets import products as P
        from glacier_assets.definitions import build_definitions, resolved_resources
        from glacier_assets.science.masks import glacier_code

        defs = build_definitions("in_process")
        (tmp / "home").mkdir()
        with dg.instance_for_test(temp_dir=str(tmp / "home")) as instance:
            dg.materialize([*defs.assets, *defs.asset_checks], selection=["outline_inventory"],
                           instance=instance, resources=defs.resources)
            glaciers = sorted(instance.get_dynamic_partitions("glaciers"))
        stamp_simulations(defs, tmp / "products", glaciers)
        store = resolved_resources(defs, ("store",))["store"]
        root = store.path("")
        codes = {g: glacier_code(g) for g in glaciers}
        selected = [P.THICKNESS, P.MASK, P.OUTLINE]

        def run_all():
            for sub in ("thickness", "masks", "outlines"):  # made anew, not reused
                shutil.rmtree(tmp / "products" / sub, ignore_errors=True)
            if args.workers > 1:  # as a batched run does: one epoch's glaciers at a time, on the pool
                os.environ["GLACIER_PRODUCT_WORKERS"] = str(args.workers)
                for year in EPOCHS:
                    jobs = [(f"{year}|{g}", g, year, codes[g]) for g in glaciers]
                    assert all(why is None for *_, why in P.compute_partitions(root, jobs, selected))
                return
            for year in EPOCHS:
                for gid in glaciers:
                    P._glacier_epoch(root, codes[gid], gid, year, selected)

        def run_all_reused():
            for year in EPOCHS:
                for gid in glaciers:
                    P._glacier_epoch(root, codes[gid], gid, year, selected)

        run_all()  # warm-up: imports, GDAL drivers, page cache
        parts = len(glaciers) * len(EPOCHS)
        t0 = time.perf_counter()
        run_all()
        dt = time.perf_counter() - t0
        print(f"{parts} partitions in {dt:.2f} s: {1000 * dt / parts:.1f} ms per partition (made anew)")
        t0 = time.perf_counter()
        run_all_reused()
        dt = time.perf_counter() - t0
        print(f"{parts} partitions in {dt:.2f} s: {1000 * dt / parts:.1f} ms per partition (all reused)")
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            run_all()
            prof.disable()
            stats = pstats.Stats(prof).sort_stats("cumulative")
            stats.print_stats(args.top)
            stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
