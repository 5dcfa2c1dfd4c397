"""The demo twin as several inventories would deliver it, to exercise matching by location.

The reference is the twin's ~2000 RGI6 outlines (matched by id, with the 2010 ones). The 1970s,
1990 and 2020 outlines come as a Chinese inventory would hold them: CGI-style codes instead of
RGI ids, in the Albers projection, and with the changes a real inventory pair shows:

- the two nearest glaciers as one 1970s record (a two-part polygon, as old inventories often
  recorded a glacier complex),
- one glacier in two 2020 polygons (cut through its centroid),
- one glacier missing from 1990.

`variant.json` records which glaciers those are, so a test (or a user) can check that each
outline ended up on the right glacier.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import yaml
from shapely.geometry import box
from shapely.ops import unary_union

from ..constants import albers_crs

SPLIT_INDEX, MISSING_INDEX = 1, 2  # which glaciers (in id order) are split in 2020 and missing from 1990


def _rekeyed(gdf: gpd.GeoDataFrame, prefix: str, extra=()) -> gpd.GeoDataFrame:
    """Outlines with CGI-style codes in Albers; `extra` adds (date, geometry in gdf's CRS) features."""
    rows = [(r.BgnDate, r.geometry) for r in gdf.itertuples()] + list(extra)
    return gpd.GeoDataFrame({"FCGI_ID": [f"{prefix}{i:04d}" for i in range(len(rows))],
                             "BgnDate": [d for d, _ in rows], "geometry": [g for _, g in rows]},
                            crs=gdf.crs).to_crs(albers_crs())


def build_multi_inventory_variant(demo_spec: Path, dest: Path) -> Path:
    """Write the variant of the demo region at `demo_spec` into `dest`; return its region.yaml."""
    src, dest = Path(demo_spec).parent, Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    read = lambda name: gpd.read_file(src / name).sort_values("RGIId").reset_index(drop=True)  # noqa: E731
    old, c1990, c2020 = (read(f"outlines_{y}.shp") for y in ("1970s", "1990", "2020"))
    utm = old.estimate_utm_crs()
    shapes = old.to_crs(utm).geometry
    dist = np.array([[a.distance(b) for b in shapes] for a in shapes]) + np.eye(len(old)) * 1e12
    i, j = (int(k) for k in np.unravel_index(np.argmin(dist), dist.shape))
    joined = unary_union([old.geometry.iloc[i], old.geometry.iloc[j]])
    piece = c2020.to_crs(utm).geometry.iloc[SPLIT_INDEX]
    x0, y0, x1, y1 = piece.bounds
    cx = piece.centroid.x
    halves = gpd.GeoSeries([piece.intersection(box(x0 - 1, y0 - 1, cx, y1 + 1)),
                            piece.intersection(box(cx, y0 - 1, x1 + 1, y1 + 1))], crs=utm).to_crs(c2020.crs)
    missing = c1990["RGIId"].iloc[MISSING_INDEX]
    _rekeyed(old.drop(index=[i, j]), "5K441A", [(old.loc[i, "BgnDate"], joined)]).to_file(dest / "cgi_1970s.gpkg")
    _rekeyed(c1990[c1990["RGIId"] != missing], "5K441C").to_file(dest / "cgi_1990.gpkg")
    date = c2020.loc[SPLIT_INDEX, "BgnDate"]
    _rekeyed(c2020.drop(index=[SPLIT_INDEX]), "5K441B", [(date, h) for h in halves]).to_file(dest / "cgi_2020.gpkg")
    for name in ("dem.tif", "mass_balance.csv", "reference_volumes.csv"):
        shutil.copy(src / name, dest / name)
    for year in ("2000", "2010"):
        for part in src.glob(f"outlines_{year}.*"):
            shutil.copy(part, dest / part.name)
    by_location = {"year_column": "BgnDate", "match": "location"}
    spec = {
        "name": "demo-multi-inventory",
        "outlines": [
            {"path": "outlines_2000.shp", "role": "control", "year_column": "BgnDate"},  # the reference
            {"path": "cgi_1970s.gpkg", "role": "initial", **by_location},
            {"path": "cgi_1990.gpkg", "role": "control", **by_location},
            {"path": "outlines_2010.shp", "role": "control", "year_column": "BgnDate"},
            {"path": "cgi_2020.gpkg", "role": "control", **by_location},
        ],
        "dem": {"path": "dem.tif", "year": 2000},
        "mass_balance": {"path": "mass_balance.csv"},
        "reference_volumes": {"path": "reference_volumes.csv"},
    }
    (dest / "region.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (dest / "variant.json").write_text(json.dumps({
        "joined_in_1970s": [old.loc[i, "RGIId"], old.loc[j, "RGIId"]],
        "split_in_2020": c2020.loc[SPLIT_INDEX, "RGIId"],
        "split_2020_codes": ["5K441B" + f"{len(c2020) - 1 + n:04d}" for n in (0, 1)],
        "missing_from_1990": missing,
    }, indent=1))
    return dest / "region.yaml"
