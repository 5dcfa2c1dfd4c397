"""Region scale: 2,000+ glaciers x 13 epochs through the Dagster orchestration.

    .venv/bin/python bench/region_scale.py [--tiles 167] [--workers 2]

Setup (not timed): a synthetic region of 12 x `tiles` glaciers (the demo massif tiled over UTM
zone 46N, ids RGI60-13.6xxxx): their outlines (initial + 4 controls) and, as stand-ins for IGM
runs, simulation files made from the demo's hidden truth runs. Timed:

1. `outline_inventory`: reading and validating every outline, registering the glacier partitions;
2. the per-epoch products (thickness 25 m, masks, outlines) over all glacier x epoch partitions
   as batched runs, one ranged run per epoch (what a UI backfill launches under the single-run
   backfill policy), and `regional_outlines` for the 13 epochs in one ranged run.

For 2 the science (the steps functions) is timed inside the runs; the rest of the wall time is
orchestration (Dagster's planning, event log, per-partition materializations). Prints the overhead
per partition and its share of the wall time (target <= 5 %). `--no-batching` turns off the bulk
event writes of deploy.EVENT_BATCHING to show what they save.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import dagster as dg  # noqa: E402

from glacier_assets.constants import EPOCHS, simulation_relpath  # noqa: E402
from glacier_assets.inventory import demo  # noqa: E402
from glacier_assets.steps.inputs import expected_fingerprints  # noqa: E402

TILE_M = 40_000.0


def setup(root: Path, tiles: int) -> tuple[Path, int]:
    spec_dir = root / "region"
    spec_dir.mkdir(parents=True)
    demo_dir = demo.build_demo_region(root / "demo").parent
    forcing = demo.public_forcing()
    truth = {m.number: demo.simulate_truth(m, forcing) for m in demo.DEMO_MOUNTAINS}
    offsets = [((k % 14) * TILE_M - 7 * TILE_M, (k // 14) * TILE_M - 5 * TILE_M) for k in range(tiles)]
    files = {}
    for name in ["outlines_1970s"] + [f"outlines_{y}" for y in (1990, 2000, 2010, 2020)]:
        base = gpd.read_file(demo_dir / f"{name}.shp").to_crs(demo.DEMO_CRS)
        parts = []
        for k, (dx, dy) in enumerate(offsets):
            t = base.copy()
            t["geometry"] = t.geometry.translate(dx, dy)
            t["RGIId"] = [f"RGI60-13.{60000 + k * 12 + int(r[-2:]):05d}" for r in base["RGIId"]]
            parts.append(t)
        gdf = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=demo.DEMO_CRS).to_crs("EPSG:4326")
        gdf.to_file(spec_dir / f"{name}.shp")
        files[name] = f"{name}.shp"
    columns = {"id_column": "RGIId", "year_column": "BgnDate"}
    spec = {"name": "synthetic-2000",
            "outlines": [{"path": files["outlines_1970s"], "role": "initial", **columns}]
            + [{"path": files[f"outlines_{y}"], "role": "control", **columns} for y in (1990, 2000, 2010, 2020)],
            "dem": {"path": str(demo_dir / "dem.tif"), "year": 2000},
            "mass_balance": {"path": str(demo_dir / "mass_balance.csv")}}
    (spec_dir / "region.yaml").write_text(yaml.safe_dump(spec))
    products = root / "products"
    for k, (dx, dy) in enumerate(offsets):
        for m in demo.DEMO_MOUNTAINS:
            grid, _, saved = truth[m.number]
            gid = f"RGI60-13.{60000 + k * 12 + m.number:05d}"
            ds = xr.Dataset({"thk": (("time", "y", "x"), np.stack([saved[y] for y in EPOCHS]).astype("float32"))},
                            coords={"time": np.array(EPOCHS, "int32"), "x": grid.x + dx, "y": grid.y + dy},
                            attrs={"glacier_id": gid, "crs": demo.DEMO_CRS, "calibration": "[]",
                                   "calibration_status": "uncalibrated"})
            out = products / simulation_relpath(gid)
            out.parent.mkdir(parents=True, exist_ok=True)
            ds.to_netcdf(out)
    return spec_dir / "region.yaml", tiles * 12


def stamp_simulations(defs, products: Path, glaciers: list[str]) -> None:
    """Not timed: give each stand-in simulation the fingerprint a real IGM run from today's inputs
    would carry (with a regional rheology factor of 1), so the per-epoch products accept the files
    and `regional_outlines` counts the glaciers as current."""
    import json

    import netCDF4

    from glacier_assets.assets.inventory import load_inventory
    from glacier_assets.constants import RHEOLOGY_RELPATH

    rheology = products / RHEOLOGY_RELPATH
    rheology.parent.mkdir(parents=True, exist_ok=True)
    rheology.write_text(json.dumps({"factor": 1.0}))
    from glacier_assets.definitions import resolved_resources

    store, region, igm = resolved_resources(defs).values()
    expected = expected_fingerprints(load_inventory(store), region.load(),
                                              igm.emulator_fingerprint(), igm.simulation_settings(1.0), glaciers)
    for gid in glaciers:
        with netCDF4.Dataset(str(products / simulation_relpath(gid)), "a") as ds:
            ds.setncattr("fingerprint", expected[gid]["simulation"] or f"bench-{gid}")


class ScienceClock:
    """Wraps the steps functions the per-epoch assets call and adds up their time."""

    names = ("make_thickness", "make_mask", "make_outline", "make_epoch_products", "make_regional_outlines")

    def __init__(self):
        self.seconds = 0.0

    def install(self, module) -> None:
        for name in self.names:
            fn = getattr(module, name)

            def timed(*a, __fn=fn, **k):
                t0 = time.perf_counter()
                try:
                    return __fn(*a, **k)
                finally:
                    self.seconds += time.perf_counter() - t0

            setattr(module, name, timed)


@contextmanager
def instance_for(storage: str, home: Path):
    """A Dagster instance on SQLite (the local default) or on a real PostgreSQL server started on
    loopback with the production settings of deploy/dagster.yaml."""
    home.mkdir(parents=True, exist_ok=True)
    if storage == "sqlite":
        with dg.instance_for_test(temp_dir=str(home)) as instance:
            yield instance
        return
    from glacier_assets.services import postgres_server

    with postgres_server() as pg:
        os.environ.update({"DAGSTER_PG_HOST": pg["host"], "DAGSTER_PG_PORT": str(pg["port"]),
                           "DAGSTER_PG_USER": pg["user"], "DAGSTER_PG_PASSWORD": pg["password"],
                           "DAGSTER_PG_DB": pg["db"]})
        shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
        with dg.DagsterInstance.from_config(str(home)) as instance:
            yield instance


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tiles", type=int, default=167, help="copies of the 12-glacier massif (167 -> 2,004 glaciers)")
    p.add_argument("--epochs", type=int, default=len(EPOCHS), help="epochs to backfill (default all 13)")
    p.add_argument("--storage", choices=["postgres", "sqlite"], default="postgres",
                   help="event log storage: postgres (production, deploy/dagster.yaml) or sqlite (local)")
    p.add_argument("--no-batching", action="store_true",
                   help="write every event on its own (Dagster's default), for comparison")
    p.add_argument("--events-per-partition", action="store_true",
                   help="record every partition as its own event with its own metadata, as runs of <= "
                        "PARTITION_METADATA_MAX partitions do, instead of each asset's range at once")
    p.add_argument("--workers", type=int, default=1,
                   help="processes per batched run for the per-epoch products (GLACIER_PRODUCT_WORKERS; "
                        "default 1, which also times the science apart from the orchestration)")
    args = p.parse_args()
    os.environ["GLACIER_PRODUCT_WORKERS"] = str(args.workers)
    if args.no_batching:
        os.environ.update({"DAGSTER_EVENT_BATCH_SIZE": "0", "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "false"})
    else:  # as the CLI sets them for the runs it starts
        from glacier_assets.deploy import batch_event_writes

        batch_event_writes()
    if args.events_per_partition:
        from glacier_assets.assets import products as product_assets

        product_assets.PARTITION_METADATA_MAX = 10**9
    with tempfile.TemporaryDirectory(prefix="bench-region-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        spec, n = setup(tmp, args.tiles)
        print(f"setup: {n} glaciers, their outlines and simulation files in {time.perf_counter() - t0:.0f} s "
              "(not timed)")
        os.environ.update({"GLACIER_REGION_SPEC": str(spec), "GLACIER_PRODUCTS": str(tmp / "products"),
                           "GLACIER_CATALOG": str(tmp / "catalog")})
        import glacier_assets.assets.products as products_module
        from glacier_assets.definitions import build_definitions

        clock = ScienceClock()
        clock.install(products_module)
        defs = build_definitions("in_process")
        with instance_for(args.storage, tmp / "home") as instance:
            t0 = time.perf_counter()
            res = dg.materialize([*defs.assets, *defs.asset_checks], selection=["outline_inventory"],
                                 instance=instance, resources=defs.resources)
            md = res.asset_materializations_for_node("outline_inventory")[0].metadata
            t_inv = time.perf_counter() - t0
            glaciers = sorted(instance.get_dynamic_partitions("glaciers"))
            print(f"inventory: {md['n_outlines'].value} outlines validated, {len(glaciers)} glacier partitions "
                  f"registered in {t_inv:.1f} s")
            stamp_simulations(defs, tmp / "products", glaciers)
            t0 = time.perf_counter()
            job = defs.resolve_job_def("glacier_epoch_products")
            runs = 0
            for year in EPOCHS[: args.epochs]:
                r = job.execute_in_process(instance=instance, tags={
                    "dagster/asset_partition_range_start": f"{year}|{glaciers[0]}",
                    "dagster/asset_partition_range_end": f"{year}|{glaciers[-1]}"})
                assert r.success
                runs += 1
            t_epochs = time.perf_counter() - t0
            r = defs.resolve_job_def("regional_products").execute_in_process(instance=instance, tags={
                "dagster/asset_partition_range_start": str(EPOCHS[0]),
                "dagster/asset_partition_range_end": str(EPOCHS[args.epochs - 1])})
            assert r.success
            runs += 1
            wall = time.perf_counter() - t0
        parts = len(glaciers) * args.epochs
        overhead = wall - clock.seconds
        print(f"per-epoch products: {parts} glacier x epoch partitions (+ {args.epochs} regional) "
              f"in {runs} batched runs, "
              f"{wall:.0f} s wall ({1000 * wall / parts:.1f} ms per partition); "
              f"science {clock.seconds:.0f} s ({1000 * clock.seconds / parts:.1f} ms per partition)")
        print(f"  of which the {runs - 1} per-epoch runs {t_epochs:.0f} s "
              f"({1000 * t_epochs / parts:.1f} ms per partition), "
              f"the regional run {wall - t_epochs:.0f} s")
        if args.workers > 1:
            print(f"(with {args.workers} workers the glacier-epochs' science runs in the worker processes, which "
                  "this clock does not see: run with --workers 1 for the science/orchestration split)")
            return
        batching = "off" if args.no_batching else "on"
        print(f"orchestration overhead ({args.storage} event log, bulk event writes {batching}): "
              f"{1000 * overhead / parts:.2f} ms per partition, "
              f"{100 * overhead / wall:.1f} % of the wall time (target <= 5 %)")


if __name__ == "__main__":
    main()
