"""The built-in demo region: a synthetic massif at real coordinates in the Geladandong area.

Everything is generated deterministically (fixed parameters and seeds, no download):

1. A bed: a plateau at ~5,000 m with smooth undulations, and twelve mountains (super-Gaussian
   domes, stretched and rotated, with a little seeded roughness) rising to ~6,600 m, on a 50 m
   grid in UTM zone 46N around 33.45 N, 91.10 E.
2. A public mass-balance forcing 1960-2020: a regional ELA near 5,750 m that rises from the
   1980s on, with seeded year-to-year noise, and fixed balance gradients (`mass_balance.csv`).
3. A hidden truth: each glacier is grown from no ice with a 2-D shallow-ice model
   (`science.sia`, not IGM) for 300 years under its 1960 climate, then run 1960-2020. The truth
   ELA is the public ELA plus a per-glacier offset (local climate) plus a per-period offset (the
   "reanalysis bias" that calibration must find). Ice outside a glacier's own catchment (nearer to
   another summit) cannot accumulate.
4. Outlines made from the truth exactly as the dataset makes its products (bilinear to 25 m,
   thickness >= 2 m, raster to vector): the 1970 outlines are the initial inventory, 1990, 2000,
   2010 and 2020 the control outlines, written as RGI6-style shapefiles in EPSG:4326.
5. The surface DEM is bed + truth ice of 2000 (like SRTM), written as a GeoTIFF.

Ids are RGI60-13.90001 ... RGI60-13.90012: valid RGI6 syntax, above the highest real region-13
number (54,429), so they never collide with real glaciers. `truth/truth.csv` keeps the true
area and volume per glacier and epoch for tests; the model never reads it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import yaml
from scipy.ndimage import gaussian_filter
from shapely.geometry import MultiPolygon

from ..constants import CONTROL_EPOCHS, EPOCHS, GEOGRAPHIC_CRS, INITIAL_EPOCH, PRODUCT_RESOLUTION_M, albers_crs
from ..science.grids import Grid
from ..science.masks import glacier_code, glacier_mask, volume_km3
from ..science.resample import bilinear_refine, product_area_km2
from ..science.sia import run_sia
from ..science.vectorize import mask_to_polygons

DEMO_CRS = "EPSG:32646"
DEMO_CENTER_LONLAT = (91.10, 33.45)
DEMO_CENTER_UTM = (323_400.0, 3_702_800.0)  # the same point in EPSG:32646, snapped to 100 m
DEM_RESOLUTION_M = 50.0
TRUTH_RESOLUTION_M = 100.0
HALF_EXTENT_M = (24_000.0, 18_000.0)
BASE_ELEVATION_M = 5_000.0
SPINUP_YEARS = 300
FORMAT_VERSION = 1  # bump when the generator changes, so cached regions are rebuilt

# Public forcing
ELA_1960_M = 5_720.0
ELA_TREND_M_PER_YR = 5.0  # from 1980 on
GRAD_ABL = 0.005  # m ice eq. a-1 m-1
GRAD_ACC = 0.002
ACC_MAX = 0.5  # m ice eq. a-1
ELA_NOISE_M = 25.0

# Hidden truth: ELA offset per period [start, next start)
TRUTH_PERIOD_OFFSETS_M = {1960: 0.0, 1970: -15.0, 1990: 25.0, 2000: 20.0, 2010: 35.0}


@dataclass(frozen=True)
class DemoMountain:
    number: int  # glacier RGI60-13.9xxxx
    east_km: float
    north_km: float
    relief_m: float  # summit above the plateau
    radius_m: float
    stretch: float  # elongation of the dome along `azimuth_deg`
    azimuth_deg: float
    ela_offset_m: float  # the glacier's local-climate ELA offset in the truth

    @property
    def glacier_id(self) -> str:
        return f"RGI60-13.{90000 + self.number:05d}"


DEMO_MOUNTAINS: tuple[DemoMountain, ...] = (
    DemoMountain(1, -16.0, 10.0, 1080, 2000, 1.3, 30, 10),
    DemoMountain(2, -5.5, 11.0, 1300, 2600, 1.5, 100, -25),
    DemoMountain(3, 5.0, 11.5, 960, 1700, 1.2, 60, 0),
    DemoMountain(4, 15.5, 9.0, 1180, 2300, 1.6, 150, 20),
    DemoMountain(5, -15.0, -0.5, 1000, 1800, 1.4, 80, -15),
    DemoMountain(6, -3.0, 0.0, 1540, 2400, 1.5, 120, -30),
    DemoMountain(7, 8.5, -1.0, 1240, 2400, 1.3, 10, 30),
    DemoMountain(8, 17.0, 0.5, 860, 800, 1.2, 45, 0),
    DemoMountain(9, -14.0, -11.0, 1150, 2200, 1.5, 170, 15),
    DemoMountain(10, -3.0, -11.5, 900, 1300, 1.1, 90, -10),
    DemoMountain(11, 6.5, -11.0, 1340, 2700, 1.4, 60, 25),
    DemoMountain(12, 16.5, -10.0, 1020, 1900, 1.3, 130, -5),
)


def public_forcing() -> pd.DataFrame:
    """The mass-balance forcing users get: year, ela, grad_abl, grad_acc, acc_max."""
    years = np.arange(EPOCHS[0], EPOCHS[-1] + 1)
    rng = np.random.default_rng(1960)
    noise = gaussian_filter(rng.normal(0.0, 1.0, years.size), 0.8)
    noise = noise / noise.std() * ELA_NOISE_M
    ela = ELA_1960_M + ELA_TREND_M_PER_YR * np.clip(years - 1980, 0, None) + noise
    return pd.DataFrame(
        {"year": years, "ela": np.round(ela, 1), "grad_abl": GRAD_ABL, "grad_acc": GRAD_ACC, "acc_max": ACC_MAX}
    )


def truth_ela(forcing: pd.DataFrame, mountain: DemoMountain, year: int) -> float:
    period = max(p for p in TRUTH_PERIOD_OFFSETS_M if p <= max(year, EPOCHS[0]))
    y = int(np.clip(year, forcing["year"].min(), forcing["year"].max()))
    base = float(forcing.loc[forcing["year"] == y, "ela"].iloc[0])
    return base + mountain.ela_offset_m + TRUTH_PERIOD_OFFSETS_M[period]


def demo_grid(res: float) -> Grid:
    cx, cy = DEMO_CENTER_UTM
    hx, hy = HALF_EXTENT_M
    return Grid(DEMO_CRS, cx - hx, cy + hy, res, int(2 * hx / res), int(2 * hy / res))


def _dome(grid: Grid, m: DemoMountain) -> np.ndarray:
    cx, cy = DEMO_CENTER_UTM
    X, Y = np.meshgrid(grid.x - (cx + 1000 * m.east_km), grid.y - (cy + 1000 * m.north_km))
    az = np.deg2rad(m.azimuth_deg)
    along = X * np.sin(az) + Y * np.cos(az)
    across = X * np.cos(az) - Y * np.sin(az)
    r = np.hypot(along / m.stretch, across) / m.radius_m
    return m.relief_m * np.exp(-(r**1.6))


def demo_bed(grid: Grid) -> np.ndarray:
    """Bed elevation on `grid` (any resolution; the roughness is defined on the 50 m grid)."""
    fine = demo_grid(DEM_RESOLUTION_M)
    rng = np.random.default_rng(33)
    undulation = gaussian_filter(rng.normal(0, 1, fine.shape), 40) * 40 * 60
    rough = gaussian_filter(rng.normal(0, 1, fine.shape), 3) * 3 * 25
    bed50 = BASE_ELEVATION_M + undulation + rough
    for m in DEMO_MOUNTAINS:
        bed50 = bed50 + _dome(fine, m)
    if grid.res == fine.res:
        return bed50
    factor = int(round(grid.res / fine.res))
    assert grid.crs == fine.crs and factor * fine.res == grid.res
    r0 = int(round((fine.ymax - grid.ymax) / fine.res))
    c0 = int(round((grid.xmin - fine.xmin) / fine.res))
    sub = bed50[r0 : r0 + grid.height * factor, c0 : c0 + grid.width * factor]
    return sub.reshape(grid.height, factor, grid.width, factor).mean(axis=(1, 3))


def _catchment(grid: Grid, number: int) -> np.ndarray:
    """Cells nearer to this mountain's summit than to any other (in stretched distance)."""
    cx, cy = DEMO_CENTER_UTM
    X, Y = np.meshgrid(grid.x, grid.y)
    dist = {m.number: np.hypot(X - (cx + 1000 * m.east_km), Y - (cy + 1000 * m.north_km)) / m.radius_m
            for m in DEMO_MOUNTAINS}
    others = np.min([d for n, d in dist.items() if n != number], axis=0)
    return dist[number] < others


def simulate_truth(m: DemoMountain, forcing: pd.DataFrame) -> tuple[Grid, np.ndarray, dict[int, np.ndarray]]:
    """The hidden truth run of one glacier on its own 100 m window of the massif."""
    full = demo_grid(TRUTH_RESOLUTION_M)
    cx, cy = DEMO_CENTER_UTM
    half = 2.6 * m.radius_m * m.stretch
    col0 = max(0, int((cx + 1000 * m.east_km - half - full.xmin) // full.res))
    col1 = min(full.width, int((cx + 1000 * m.east_km + half - full.xmin) // full.res) + 1)
    row0 = max(0, int((full.ymax - (cy + 1000 * m.north_km + half)) // full.res))
    row1 = min(full.height, int((full.ymax - (cy + 1000 * m.north_km - half)) // full.res) + 1)
    grid = full.window(row0, row1, col0, col1)
    bed = demo_bed(grid)
    own = _catchment(grid, m.number)

    def smb(year: int, surface: np.ndarray) -> np.ndarray:
        dz = surface - truth_ela(forcing, m, year)
        b = np.minimum(np.where(dz < 0, GRAD_ABL * dz, GRAD_ACC * dz), ACC_MAX)
        return np.where((b < 0) | own, b, -10.0)

    def spinup_smb(year: int, surface: np.ndarray) -> np.ndarray:
        return smb(EPOCHS[0], surface)

    thk1960, _ = run_sia(bed, np.zeros_like(bed), grid.res, spinup_smb, EPOCHS[0] - SPINUP_YEARS, EPOCHS[0])
    _, saved = run_sia(bed, thk1960, grid.res, smb, EPOCHS[0], EPOCHS[-1], save_years=EPOCHS)
    return grid, bed, saved


def outline_from_thickness(thk: np.ndarray, grid: Grid, code: int) -> MultiPolygon | None:
    """The dataset's recipe: bilinear to 25 m, thickness >= 2 m, raster to vector."""
    factor = int(round(grid.res / PRODUCT_RESOLUTION_M))
    fine = bilinear_refine(thk, factor)
    polys = mask_to_polygons(glacier_mask(fine, code), grid.refined(factor).transform)
    return polys.get(code)


def _write_dem(path: Path, surface: np.ndarray, grid: Grid) -> None:
    with rasterio.open(
        path, "w", driver="GTiff", width=grid.width, height=grid.height, count=1, dtype="float32",
        crs=grid.crs, transform=grid.transform, nodata=-9999.0, compress="DEFLATE", predictor=3, tiled=True,
    ) as dst:
        dst.write(surface.astype("float32"), 1)


def _rgi_rows(records: list[dict], year: int) -> gpd.GeoDataFrame:
    gdf = gpd.GeoDataFrame(records, geometry="geometry", crs=DEMO_CRS)
    area = gdf.geometry.to_crs(albers_crs()).area / 1e6
    cent = gdf.geometry.centroid.to_crs(GEOGRAPHIC_CRS)
    out = gdf.to_crs(GEOGRAPHIC_CRS)
    out["BgnDate"] = f"{year}0815"
    out["CenLon"] = cent.x.round(4)
    out["CenLat"] = cent.y.round(4)
    out["O1Region"] = "13"
    out["Area"] = area.round(3)
    return out[["RGIId", "Name", "BgnDate", "CenLon", "CenLat", "O1Region", "Area", "Zmin", "Zmax", "Zmed", "geometry"]]


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
        outlines: dict[int, list[dict]] = {y: [] for y in (INITIAL_EPOCH, *CONTROL_EPOCHS)}
        truth_rows = []
        for m in DEMO_MOUNTAINS:
            grid, bed, saved = simulate_truth(m, forcing)
            code = glacier_code(m.glacier_id)
            # ice of 2000 onto the 50 m DEM grid
            factor = int(round(grid.res / DEM_RESOLUTION_M))
            r0 = int(round((dem_grid.ymax - grid.ymax) / DEM_RESOLUTION_M))
            c0 = int(round((grid.xmin - dem_grid.xmin) / DEM_RESOLUTION_M))
            ice = bilinear_refine(saved[2000], factor)
            surface[r0 : r0 + ice.shape[0], c0 : c0 + ice.shape[1]] += ice
            for year in EPOCHS:
                truth_rows.append({
                    "glacier_id": m.glacier_id, "year": year,
                    "area_km2": product_area_km2(saved[year], grid.res),
                    "volume_km3": volume_km3(saved[year], grid.cell_area_m2),
                    "ela_m": truth_ela(forcing, m, year),
                })
            for year in outlines:
                geom = outline_from_thickness(saved[year], grid, code)
                if geom is None:
                    continue
                s = bed + saved[year]
                on = saved[year] >= 2.0
                outlines[year].append({
                    "RGIId": m.glacier_id, "Name": f"Demo glacier {m.number:02d}", "geometry": geom,
                    "Zmin": int(s[on].min()), "Zmax": int(s[on].max()), "Zmed": int(np.median(s[on])),
                })
        _write_dem(tmp / "dem.tif", surface, dem_grid)
        files = {}
        for year, records in outlines.items():
            name = "outlines_1970s.shp" if year == INITIAL_EPOCH else f"outlines_{year}.shp"
            _rgi_rows(records, year).to_file(tmp / name, engine="pyogrio")
            files[year] = name
        (tmp / "truth").mkdir()
        pd.DataFrame(truth_rows).to_csv(tmp / "truth" / "truth.csv", index=False)
        (tmp / "truth" / "params.json").write_text(json.dumps({
            "period_offsets_m": TRUTH_PERIOD_OFFSETS_M,
            "mountains": [asdict(m) | {"glacier_id": m.glacier_id} for m in DEMO_MOUNTAINS],
            "spinup_years": SPINUP_YEARS,
        }, indent=1))
        spec = {
            "name": "demo-geladandong",
            "outlines": [{"path": files[INITIAL_EPOCH], "role": "initial", "id_column": "RGIId", "year_column": "BgnDate"}]
            + [{"path": files[y], "role": "control", "id_column": "RGIId", "year_column": "BgnDate"} for y in CONTROL_EPOCHS],
            "dem": {"path": "dem.tif", "year": 2000},
            "mass_balance": {"path": "mass_balance.csv"},
        }
        (tmp / "region.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        (tmp / "VERSION").write_text(str(FORMAT_VERSION))
        if dest.exists():
            old = dest.with_name(dest.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            dest.rename(old)
            tmp.rename(dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(dest)
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
