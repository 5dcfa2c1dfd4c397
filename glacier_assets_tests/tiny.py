"""Tiny real inputs for the fast tests: a two-glacier region (square outlines, a sloping DEM
GeoTIFF, an ELA table, reference volumes) and simulation NetCDFs in the layout
`igm_run/simulate.py: write_simulation` writes, made without IGM.

Everything is in UTM zone 46N, where squares of whole 100 m cells keep their areas to the
figures below once stored in EPSG:4326 and brought back (the grids are snapped to 100 m).
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import yaml
from shapely.geometry import box

from glacier_assets.constants import EPOCHS, GEOGRAPHIC_CRS, PRODUCT_RESOLUTION_M
from glacier_assets.science.grids import Grid
from glacier_assets.simulation_file import SimulationFile

UTM = "EPSG:32646"
CELL_KM2 = PRODUCT_RESOLUTION_M**2 / 1e6  # one 25 m product cell
X0, Y0 = 500_000.0, 3_650_000.0  # near 93 E, 33 N: the zone's central meridian
A, B = "RGI60-13.00001", "RGI60-13.00002"
A_CODE, B_CODE = 1_300_001, 1_300_002  # glacier_code: region * 100000 + number
# A: a 1 x 1 km square; B: 600 x 600 m, touching A's east side; A's control outline of 2000 is
# 800 x 800 m inside its initial one
A_INITIAL = box(X0, Y0, X0 + 1000, Y0 + 1000)
A_2000 = box(X0 + 100, Y0 + 100, X0 + 900, Y0 + 900)
B_INITIAL = box(X0 + 1000, Y0 + 200, X0 + 1600, Y0 + 800)
ELA_M = 5600.0


def dem_surface(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A plane rising 0.2 m per m to the north: 5,500 m at Y0."""
    return 5500.0 + 0.2 * (y - Y0) + 0.0 * x


def write_tiny_region(dest: Path, reference_km3: dict[str, float] | None = None,
                      geodetic: pd.DataFrame | None = None, calibrate_geodetic: bool = True) -> Path:
    """The region's files in `dest`; returns region.yaml. `reference_km3` (glacier -> volume in
    km3, of the 2000 outline) adds a reference-volume table, `geodetic` a geodetic-balance table
    (glacier_id, start, end, dmdtda_mwe[, err_mwe])."""
    dest.mkdir(parents=True, exist_ok=True)
    initial = gpd.GeoDataFrame({"RGIId": [A, B], "BgnDate": ["19740815", "19740815"]},
                               geometry=[A_INITIAL, B_INITIAL], crs=UTM).to_crs(GEOGRAPHIC_CRS)
    initial.to_file(dest / "outlines_1970s.shp", engine="pyogrio")
    control = gpd.GeoDataFrame({"RGIId": [A], "BgnDate": ["20000815"]}, geometry=[A_2000], crs=UTM)
    control = control.to_crs(GEOGRAPHIC_CRS)
    control.to_file(dest / "outlines_2000.shp", engine="pyogrio")
    res, w, h = 50.0, 200, 180  # 10 x 9 km around the glaciers
    grid = Grid(UTM, X0 - 4500.0, Y0 + 5000.0, res, w, h)
    X, Y = np.meshgrid(grid.x, grid.y)
    with rasterio.open(dest / "dem.tif", "w", driver="GTiff", width=w, height=h, count=1, dtype="float32",
                       crs=UTM, transform=grid.transform, nodata=-9999.0) as dst:
        dst.write(dem_surface(X, Y).astype("float32"), 1)
    years = np.arange(1960, 2021)
    pd.DataFrame({"year": years, "ela": ELA_M, "grad_abl": 0.007, "grad_acc": 0.003, "acc_max": 1.5}
                 ).to_csv(dest / "mass_balance.csv", index=False)
    spec = {
        "name": "tiny",
        "outlines": [{"path": "outlines_1970s.shp", "role": "initial", "year_column": "BgnDate"},
                     {"path": "outlines_2000.shp", "role": "control", "year_column": "BgnDate"}],
        "dem": {"path": "dem.tif", "year": 2000},
        "mass_balance": {"path": "mass_balance.csv"},
    }
    if reference_km3:
        pd.DataFrame({"glacier_id": list(reference_km3), "volume_km3": list(reference_km3.values()),
                      "year": 2000}).to_csv(dest / "reference_volumes.csv", index=False)
        spec["reference_volumes"] = {"path": "reference_volumes.csv"}
    if geodetic is not None:
        geodetic.to_csv(dest / "geodetic.csv", index=False)
        spec["geodetic_mass_balance"] = {"path": "geodetic.csv", "calibrate": calibrate_geodetic}
    (dest / "region.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return dest / "region.yaml"


def model_grid(n: int = 12, x0: float = X0 - 400.0, y1: float = Y0 + 800.0) -> Grid:
    """A 100 m model grid of n x n cells; by default its cells 4..7 (rows and columns) cover the
    400 x 400 m square from (X0, Y0) to (X0 + 400, Y0 + 400)."""
    return Grid(UTM, x0, y1, 100.0, n, n)


def slab(n: int = 12, lo: int = 4, hi: int = 8, thickness: float = 100.0) -> np.ndarray:
    """Ice `thickness` m thick on the model cells [lo, hi) x [lo, hi), none elsewhere."""
    thk = np.zeros((n, n), "float32")
    thk[lo:hi, lo:hi] = thickness
    return thk


def write_fake_simulation(path: Path, grid: Grid, thk_at: dict[int, np.ndarray], glacier_id: str = A,
                          outline_thk: dict[int, np.ndarray] | None = None, series: dict[int, tuple] | None = None,
                          calibration: list | None = None, validation: list | None = None,
                          geodetic: dict | None = None, status: str = "calibrated",
                          fingerprint: str | None = "fp-sim") -> Path:
    """A simulation NetCDF as write_simulation lays it out: `thk` at every epoch (`thk_at[year]`,
    zero where not given), `thk_outline` at the outlines' model times, the yearly series
    (year -> (volume km3, area km2, balance m w.e.)), and the calibration records as JSON."""
    zero = np.zeros(grid.shape, "float32")
    attrs = {"glacier_id": glacier_id, "crs": grid.crs, "calibration_status": status,
             "calibration": json.dumps(calibration or []), "validation": json.dumps(validation or []),
             "geodetic_calibration": json.dumps(geodetic or {}), **({"fingerprint": fingerprint} if fingerprint else {})}
    return SimulationFile(path, glacier_id).write(grid.x, grid.y, {y: thk_at.get(y, zero) for y in EPOCHS},
                                                  outline_thk or {}, series or {}, attrs)
