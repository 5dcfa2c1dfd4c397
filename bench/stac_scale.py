"""Write a STAC catalog of 2,000 glaciers x 13 epochs (26,000 thickness items) and time it.

    .venv/bin/python bench/stac_scale.py [--glaciers 2000] [--workers 2]

Setup (not timed): 2,000 small real COGs at distinct UTM positions, each published for the 13
epochs, and 13 regional outline files. Timed: a publication as the `stac_catalog` asset makes it
— a new catalog version hard-linked from the live one (publication.py), then `stac.write_catalog`:
checksums, copying every COG into the catalog, reading each COG's header, writing every item, the
13 epoch sub-catalogs, both collections and items.parquet, and the switch to the new version —
first from empty, then again with nothing changed (the incremental path), then one glacier.
Target: <= 30 s on 2 cores for the first. Validation is timed separately on a sample. Each figure
also gives the CPU seconds of this process and its workers, which another job on the machine
changes less than the wall time.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
from shapely.geometry import box

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from glacier_assets.constants import EPOCHS, THICKNESS_NODATA, albers_crs, thickness_relpath  # noqa: E402
from glacier_assets.publication import new_version  # noqa: E402
from glacier_assets.science.grids import Grid  # noqa: E402
from glacier_assets.stac import (  # noqa: E402
    Provenance,
    ThicknessProduct,
    all_item_paths,
    catalog_json_paths,
    validate_objects,
    write_catalog,
)
from glacier_assets.storage import write_cog  # noqa: E402


def setup(products: Path, n: int) -> tuple[dict[str, list[ThicknessProduct]], dict[int, tuple]]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        gid = f"RGI60-13.{i + 1:05d}"
        x0, y0 = 300_000 + 250 * (i % 200), 3_600_000 + 250 * (i // 200)
        data = np.where(rng.random((12, 12)) > 0.3, rng.random((12, 12)) * 80, THICKNESS_NODATA).astype("float32")
        first = products / thickness_relpath(gid, EPOCHS[0])
        write_cog(first, data, Grid("EPSG:32646", x0, y0, 25.0, 12, 12), THICKNESS_NODATA, "float32")
        for year in EPOCHS:
            dst = products / thickness_relpath(gid, year)
            if year != EPOCHS[0]:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(first, dst)
            out.append(ThicknessProduct(gid, year, dst))
    outlines = {}
    boxes = gpd.GeoDataFrame({"glacier_id": [f"RGI60-13.{i + 1:05d}" for i in range(n)], "year": 0,
                              "code": 1300001 + np.arange(n), "area_km2": 0.05},
                             geometry=[box(300_000 + 250 * (i % 200), 3_599_800 + 250 * (i // 200),
                                           300_200 + 250 * (i % 200), 3_600_000 + 250 * (i // 200)) for i in range(n)],
                             crs="EPSG:32646").to_crs(albers_crs())
    for year in EPOCHS:
        shp = products / "regional_outlines" / f"{year}.shp"
        shp.parent.mkdir(parents=True, exist_ok=True)
        boxes.assign(year=year).to_file(shp)
        boxes.assign(year=year).to_parquet(shp.with_suffix(".parquet"))
        outlines[year] = (gpd.read_parquet(shp.with_suffix(".parquet")), shp)
    by_glacier: dict[str, list[ThicknessProduct]] = {}
    for product in out:
        by_glacier.setdefault(product.glacier_id, []).append(product)
    return by_glacier, outlines


def cpu_seconds() -> float:
    """User + system CPU of this process and of its finished workers."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                    resource.getrusage(resource.RUSAGE_CHILDREN)))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--glaciers", type=int, default=2000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--validate-sample", type=int, default=26000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-stac-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        products, outlines = setup(tmp / "products", args.glaciers)
        print(f"setup: {sum(map(len, products.values()))} COGs and {len(outlines)} outline files in "
              f"{time.perf_counter() - t0:.0f} s "
              "(not timed below)")
        versions = {"igm-model": "3.2.1", "tensorflow": "2.17.0"}
        prov = {f"RGI60-13.{i + 1:05d}": Provenance(versions, "calibrated", "bench") for i in range(args.glaciers)}
        catalog = tmp / "catalog" / "current"
        t0, c0 = time.perf_counter(), cpu_seconds()
        with new_version(catalog) as stage:
            stats = write_catalog(stage, products, outlines, prov, "bench", workers=args.workers)
        first = time.perf_counter() - t0
        print(f"first publication: {stats.items} items ({stats.thickness_items} thickness, {stats.outline_items} "
              f"outlines) in {first:.1f} s with {args.workers} workers (target <= 30 s), "
              f"{cpu_seconds() - c0:.1f} CPU s")
        t0, c0 = time.perf_counter(), cpu_seconds()
        with new_version(catalog) as stage:
            linked = time.perf_counter() - t0
            again = write_catalog(stage, products, outlines, prov, "bench", workers=args.workers)
        print(f"second publication, nothing changed: {again.unchanged} unchanged, {again.new + again.updated} "
              f"rewritten, {time.perf_counter() - t0:.1f} s (of which {linked:.1f} s hard-linking the live version "
              f"into the new one), {cpu_seconds() - c0:.1f} CPU s")
        one = next(iter(products))
        t0, c0 = time.perf_counter(), cpu_seconds()
        with new_version(catalog) as stage:
            write_catalog(stage, {one: products[one]}, outlines, prov, "bench", workers=args.workers)
        print(f"publishing one glacier, the rest kept: {time.perf_counter() - t0:.1f} s, "
              f"{cpu_seconds() - c0:.1f} CPU s")
        sample = all_item_paths(catalog)[:: max(1, stats.items // args.validate_sample)]
        t0 = time.perf_counter()
        problems = validate_objects(catalog_json_paths(catalog) + sample, REPO.parent / "shared" / "stac-schemas")
        print(f"offline validation of {len(sample)} items + catalogs: {time.perf_counter() - t0:.1f} s, "
              f"{len(problems)} problems")


if __name__ == "__main__":
    main()
