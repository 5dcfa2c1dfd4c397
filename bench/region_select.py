"""The region cut out of a regional inventory, and older outlines matched to it by location, at
the size of RGI6 region 13.

    .venv/bin/python bench/region_select.py [--glaciers 54429] [--old 3000]

Setup (not timed): a synthetic RGI6-like inventory of `--glaciers` glaciers (rectangles of
0.01-20 km2, log-uniform, scattered over the Tibetan Plateau's bounding box, none overlapping)
and a 1970s-like inventory of `--old` polygons in Albers, each a glacier 15 % larger than today
or two neighbours joined in one record, with CGI-style codes and no RGI ids. Timed:
`build_inventory` with the Yangtze + Yellow basins of `../shared/data/tp_basins` and a 0.01 km2
minimum, without and with the location-matched file. Prints glaciers kept, shares, seconds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
from shapely.affinity import scale
from shapely.geometry import box

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from glacier_assets.constants import albers_crs  # noqa: E402
from glacier_assets.inventory.outlines import build_inventory  # noqa: E402
from glacier_assets.inventory.region import BasinSelection, OutlineSource, Selection  # noqa: E402

BASINS = REPO.parent / "shared" / "data" / "tp_basins" / "TP_basins.shp"
RGI6 = r"^RGI60-\d{2}\.\d{5}$"


def synthetic_inventory(n: int, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """`n` glaciers on a jittered lattice over the plateau, in UTM 46N metres then EPSG:4326."""
    side = int(np.ceil(np.sqrt(n)))
    x0, y0 = -700_000.0, 3_000_000.0  # UTM 46N: ~80.5 E .. 104 E, 27 N .. 40 N
    step = 2_400_000.0 / side
    area_m2 = np.exp(rng.uniform(np.log(1e4), np.log(2e7), n))
    rows = []
    for k in range(n):
        i, j = divmod(k, side)
        w = min(np.sqrt(area_m2[k] * 2.0), step * 0.8)
        h = min(area_m2[k] / w, step * 0.8)
        cx, cy = x0 + (j + 0.5) * step, y0 + (i + 0.5) * step * 0.55
        rows.append(box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    ids = [f"RGI60-13.{k + 1:05d}" for k in range(n)]
    return gpd.GeoDataFrame({"RGIId": ids, "BgnDate": "20000801"}, geometry=rows, crs="EPSG:32646").to_crs("EPSG:4326")


def old_inventory(ref: gpd.GeoDataFrame, n: int, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """`n` 1970s polygons: a glacier 15 % larger, or it and the next one in one two-part record."""
    utm = ref.to_crs("EPSG:32646").geometry.to_numpy()
    picks = rng.choice(len(utm) - 1, size=n, replace=False)
    geoms = [scale(utm[k], 1.07, 1.07) if rng.random() < 0.8 else utm[k].union(utm[k + 1]) for k in picks]
    codes = [f"5Y{k:08d}" for k in range(n)]
    return gpd.GeoDataFrame({"FCGI_ID": codes, "year": 1976}, geometry=geoms, crs="EPSG:32646").to_crs(albers_crs())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--glaciers", type=int, default=54_429)
    ap.add_argument("--old", type=int, default=3_000)
    args = ap.parse_args()
    rng = np.random.default_rng(13)
    tmp = Path(tempfile.mkdtemp())
    ref = synthetic_inventory(args.glaciers, rng)
    ref.to_file(tmp / "rgi13.gpkg")
    old_inventory(ref, args.old, rng).to_file(tmp / "cgi1.gpkg")
    selection = Selection(basins=BasinSelection(BASINS, "BasinName", ("Yangtze", "Yellow")), min_area_km2=0.01)
    reference = OutlineSource(tmp / "rgi13.gpkg", "control", year_column="BgnDate")
    located = OutlineSource(tmp / "cgi1.gpkg", "initial", year=1976, match="location")
    for label, sources in (("reference only", (reference,)), ("+ 1970s by location", (reference, located))):
        t0 = time.perf_counter()
        build = build_inventory(sources, RGI6, selection=selection)
        dt = time.perf_counter() - t0
        sel = build.selection
        print(f"{label:22s}: {sel['reference_glaciers']} glaciers read, {sel['selected_glaciers']} kept "
              f"({sel['selected_area_km2']:.0f} km2), {len(build.matches)} shares, {len(build.unmatched)} unmatched, "
              f"{len(build.outlines)} outlines: {dt:.1f} s")


if __name__ == "__main__":
    main()
