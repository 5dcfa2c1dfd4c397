"""The built-in demo region: a synthetic massif at real coordinates in the Geladandong area
(`demo_massif.py`), its hidden truth and what is observed of it (`demo_truth.py`), written here.

Everything is generated deterministically (fixed parameters and seeds, no download):

1. A bed: a plateau at ~5,000 m with smooth undulations, and twelve mountains (super-Gaussian
   domes, stretched and rotated, with a little seeded roughness) rising to ~6,600 m, on a 50 m
   grid in UTM zone 46N around 33.45 N, 91.10 E.
2. A public mass-balance forcing 1960-2020: a regional ELA near 5,750 m that rises from the
   1980s on, with seeded year-to-year noise, and fixed balance gradients (`mass_balance.csv`).
3. A hidden truth the model cannot mirror: each glacier is grown from no ice with a 2-D
   shallow-ice model (`science.sia`, not IGM: no sliding, another numerical scheme) for 300 years
   under its 1960 climate, then run 1960-2020. Its balance law is not the public one: ablation
   steepens downglacier (curvature `TRUTH_ABL_CURVATURE_M`) and accumulation has its own gradient
   and cap. The truth ELA is the public ELA plus a per-glacier offset (local climate), plus a
   per-period offset and a trend within each period (the "reanalysis bias" the calibration must
   absorb with one constant shift per period). Ice outside a glacier's own catchment (nearer to
   another summit) cannot accumulate.
4. Outlines made from the truth as the dataset makes its products (bilinear to 25 m, thickness
   >= 2 m, raster to vector), at each glacier's own acquisition dates (initial inventory
   1972-1977, controls about 1990, 2000, 2010 and 2020, never on the 5-year epochs' schedule
   for all), from the truth state at the end of that balance year (date + 1), with digitizing
   noise (vertices moved by ~half a 25 m pixel), written as RGI6-style shapefiles in EPSG:4326.
5. The surface DEM is bed + truth ice of 2000 (like SRTM) plus seeded noise (`DEM_NOISE_M`).
6. A reference volume per glacier made the way real ones are (`reference_volumes.csv`): the
   truth's volume at the date of its ~2000 outline with a seeded per-glacier error of
   `REFERENCE_ERROR_PCT` % (Gaussian), recentred so the regional total is unbiased, as the
   Farinotti et al. (2019) consensus is good regionally and poor per glacier.
7. A geodetic mass balance per glacier for 2000-2020 made as Hugonnet et al. (2021) make theirs
   (`geodetic_mass_balance.csv`): the truth's volume change over the mean area at 850 kg m-3,
   with a seeded error of `GEODETIC_ERROR_MWE` m w.e. a-1, what a user would have. The model is
   calibrated to it; the truth's own change measures it.

Ids are RGI60-13.90001 ... RGI60-13.90012: valid RGI6 syntax, above the highest real region-13
number (54,429), so they never collide with real glaciers. `truth/truth.csv` keeps the true
area and volume per glacier and epoch, `truth/outlines.csv` at each outline's date, and
`truth/params.json` the truth's parameters, for tests and benchmarks; the model never reads them.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import yaml
from scipy.ndimage import gaussian_filter

from ..constants import (
    CONTROL_EPOCHS,
    GEODETIC_PERIOD,
    GEOGRAPHIC_CRS,
    INITIAL_EPOCH,
    albers_crs,
)
from ..dataset_texts import SEED_TEXTS
from ..science.grids import Grid
from ..science.resample import bilinear_refine
from ..science.sia import GLEN_A, RHO_ICE
from ..storage import publishable
from .demo_massif import (
    DEM_RESOLUTION_M,
    DEMO_CRS,
    DEMO_MOUNTAINS,
    GRAD_ABL,
    demo_bed,
    demo_grid,
    outline_years,
    public_forcing,
)
from .demo_truth import (
    GEODETIC_ERROR_MWE,
    OUTLINE_JITTER_M,
    REFERENCE_ERROR_PCT,
    SPINUP_YEARS,
    TRUTH_ABL_CURVATURE_M,
    TRUTH_ACC_MAX,
    TRUTH_GRAD_ACC,
    TRUTH_PERIOD_OFFSETS_M,
    TRUTH_PERIOD_TRENDS_M_PER_YR,
    TwinRecords,
    geodetic_balances,
    reference_volumes,
    simulate_truth,
    truth_ela,
)

# bump when the generator changes, so cached regions are rebuilt; 6: outlines within the truth's ice cells
FORMAT_VERSION = 6


DEM_NOISE_M = 4.0  # standard deviation of the DEM's noise (per 50 m cell, lightly correlated)


def write_dem(path: Path, surface: np.ndarray, grid: Grid) -> None:
    """A twin's surface DEM as a GeoTIFF (float32)."""
    with rasterio.open(
        path, "w", driver="GTiff", width=grid.width, height=grid.height, count=1, dtype="float32",
        crs=grid.crs, transform=grid.transform, nodata=-9999.0, compress="DEFLATE", predictor=3, tiled=True,
    ) as dst:
        dst.write(surface.astype("float32"), 1)


def rgi_rows(records: list[dict], crs: str, o1region: str) -> gpd.GeoDataFrame:
    """A twin's outlines (records with RGIId, Name, BgnDate, Zmin, Zmax, Zmed and a geometry in
    `crs`) as RGI6 rows in EPSG:4326."""
    gdf = gpd.GeoDataFrame(records, geometry="geometry", crs=crs)
    area = gdf.geometry.to_crs(albers_crs()).area / 1e6
    cent = gdf.geometry.centroid.to_crs(GEOGRAPHIC_CRS)
    out = gdf.to_crs(GEOGRAPHIC_CRS)
    out["CenLon"] = cent.x.round(4)
    out["CenLat"] = cent.y.round(4)
    out["O1Region"] = o1region
    out["Area"] = area.round(3)
    return out[["RGIId", "Name", "BgnDate", "CenLon", "CenLat", "O1Region", "Area", "Zmin", "Zmax", "Zmed", "geometry"]]


def replace_directory(tmp: Path, dest: Path) -> None:
    """Put the finished folder `tmp` in the place of `dest` (renames only: a reader sees the old
    folder or the new one)."""
    publishable(tmp, directory=True)  # mkdtemp made it 0700
    if dest.exists():
        old = dest.with_name(dest.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(dest)


def write_twin(tmp: Path, records: TwinRecords, crs: str, o1region: str, params: dict, spec: dict,
               version: int) -> None:
    """A twin's observations and truth into the folder `tmp`: its outlines per epoch (RGI6-style
    shapefiles), reference volumes and geodetic balances made from its truth with their errors,
    `truth/` (tables and `params.json`), and the region spec (`spec`'s name and any extra keys)."""
    files = {}
    for epoch, rows in records.outlines.items():
        files[epoch] = "outlines_1970s.shp" if epoch == INITIAL_EPOCH else f"outlines_{epoch}.shp"
        rgi_rows(rows, crs, o1region).to_file(tmp / files[epoch], engine="pyogrio")
    refs = reference_volumes(records.ref_truth)
    pd.DataFrame({"glacier_id": list(refs), "volume_km3": [round(v, 6) for v in refs.values()],
                  "year": [records.ref_year[g] for g in refs]}).to_csv(tmp / "reference_volumes.csv", index=False)
    geo = geodetic_balances(records.change, GEODETIC_PERIOD[1] - GEODETIC_PERIOD[0])
    pd.DataFrame({"glacier_id": list(geo), "start": GEODETIC_PERIOD[0], "end": GEODETIC_PERIOD[1],
                  "dmdtda_mwe": [round(v, 4) for v in geo.values()], "err_mwe": GEODETIC_ERROR_MWE}
                 ).to_csv(tmp / "geodetic_mass_balance.csv", index=False)
    (tmp / "truth").mkdir(exist_ok=True)
    pd.DataFrame(records.truth_rows).to_csv(tmp / "truth" / "truth.csv", index=False)
    pd.DataFrame(records.outline_rows).to_csv(tmp / "truth" / "outlines.csv", index=False)
    (tmp / "truth" / "params.json").write_text(json.dumps(params, indent=1))
    columns = {"id_column": "RGIId", "year_column": "BgnDate"}
    region = {
        "name": spec["name"],
        "outlines": [{"path": files[INITIAL_EPOCH], "role": "initial", **columns}]
        + [{"path": files[y], "role": "control", **columns} for y in CONTROL_EPOCHS],
        "dem": {"path": "dem.tif", "year": 2000},
        "mass_balance": {"path": "mass_balance.csv"},
        "reference_volumes": {"path": "reference_volumes.csv"},
        "geodetic_mass_balance": {"path": "geodetic_mass_balance.csv"},
    } | {k: v for k, v in spec.items() if k != "name"}
    (tmp / "region.yaml").write_text(yaml.safe_dump(region, sort_keys=False))
    (tmp / "VERSION").write_text(str(version))


def build_demo_region(dest: str | Path) -> Path:
    """Write the demo region into `dest` (replacing it atomically) and return its region.yaml path."""
    dest = Path(dest).resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".demo-", dir=dest.parent))
    try:
        forcing = public_forcing()
        forcing.to_csv(tmp / "mass_balance.csv", index=False)
        dem_grid = demo_grid(DEM_RESOLUTION_M)
        bed50 = demo_bed(dem_grid)
        surface = bed50.copy()
        records = TwinRecords()
        for m in DEMO_MOUNTAINS:
            grid, bed, saved = simulate_truth(m, forcing)
            # ice of 2000 onto the 50 m DEM grid
            factor = int(round(grid.res / DEM_RESOLUTION_M))
            r0 = int(round((dem_grid.ymax - grid.ymax) / DEM_RESOLUTION_M))
            c0 = int(round((grid.xmin - dem_grid.xmin) / DEM_RESOLUTION_M))
            ice = bilinear_refine(saved[2000], factor)
            surface[r0 : r0 + ice.shape[0], c0 : c0 + ice.shape[1]] += ice
            records.observe(m.glacier_id, f"Demo glacier {m.number:02d}", m.number, saved, bed, grid,
                            lambda year, m=m: truth_ela(forcing, m.ela_offset_m, year))
        noise = gaussian_filter(np.random.default_rng(4).normal(0.0, 1.0, surface.shape), 1.0)
        surface = surface + noise / noise.std() * DEM_NOISE_M
        write_dem(tmp / "dem.tif", surface, dem_grid)
        params = {
            "period_offsets_m": TRUTH_PERIOD_OFFSETS_M,
            "period_trends_m_per_yr": TRUTH_PERIOD_TRENDS_M_PER_YR,
            "balance_law": {"grad_abl": GRAD_ABL, "abl_curvature_m": TRUTH_ABL_CURVATURE_M,
                            "grad_acc": TRUTH_GRAD_ACC, "acc_max": TRUTH_ACC_MAX},
            "flow": f"2-D shallow ice, no sliding, Glen A {GLEN_A:g} Pa-3 s-1, rho {RHO_ICE:g}",
            "dem_noise_m": DEM_NOISE_M, "outline_jitter_m": OUTLINE_JITTER_M,
            "reference_error_pct": REFERENCE_ERROR_PCT, "geodetic_error_mwe": GEODETIC_ERROR_MWE,
            "mountains": [asdict(m) | {"glacier_id": m.glacier_id, "outline_years": outline_years(m.number)}
                          for m in DEMO_MOUNTAINS],
            "spinup_years": SPINUP_YEARS,
        }
        dataset = {"title": SEED_TEXTS.title, "description": SEED_TEXTS.description,  # the seed dataset's texts
                   "citation": SEED_TEXTS.citation, "license": SEED_TEXTS.license,
                   "providers": [p for p in SEED_TEXTS.providers if p["name"] != "glacier_assets"]}
        write_twin(tmp, records, DEMO_CRS, "13", params, {"name": "demo-geladandong", "dataset": dataset},
                   FORMAT_VERSION)
        replace_directory(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest / "region.yaml"


def ensure_demo_region(dest: str | Path) -> Path:
    """Build the demo region in `dest` unless an up-to-date copy is there; return region.yaml."""
    dest = Path(dest)
    version = dest / "VERSION"
    if version.exists() and version.read_text().strip() == str(FORMAT_VERSION) and (dest / "region.yaml").exists():
        return dest / "region.yaml"
    import fcntl

    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / f".{dest.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if version.exists() and version.read_text().strip() == str(FORMAT_VERSION):
            return dest / "region.yaml"
        return build_demo_region(dest)
