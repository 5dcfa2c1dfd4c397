"""The built-in demo region: a synthetic massif at real coordinates in the Geladandong area.

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
   with a seeded error of `GEODETIC_ERROR_MWE` m w.e. a-1. The model is validated against it,
   never calibrated to it.

Ids are RGI60-13.90001 ... RGI60-13.90012: valid RGI6 syntax, above the highest real region-13
number (54,429), so they never collide with real glaciers. `truth/truth.csv` keeps the true
area and volume per glacier and epoch, `truth/outlines.csv` at each outline's date, and
`truth/params.json` the truth's parameters, for tests and benchmarks; the model never reads them.
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
from shapely.geometry import MultiPolygon, Polygon
from shapely.validation import make_valid

from ..constants import (
    CONTROL_EPOCHS,
    EPOCHS,
    GEODETIC_PERIOD,
    GEOGRAPHIC_CRS,
    INITIAL_EPOCH,
    PRODUCT_RESOLUTION_M,
    albers_crs,
    outline_model_time,
)
from ..dataset_texts import SEED_TEXTS
from ..science.grids import Grid
from ..science.masks import glacier_code, glacier_mask, volume_km3
from ..science.resample import bilinear_refine, product_area_km2, refined_thickness
from ..science.sia import GLEN_A, RHO_ICE, run_sia
from ..science.skill import geodetic_balance
from ..science.vectorize import mask_to_polygons
from ..storage import publishable

DEMO_CRS = "EPSG:32646"
DEMO_CENTER_UTM = (323_400.0, 3_702_800.0)  # 91.10 E, 33.45 N in EPSG:32646, snapped to 100 m
DEM_RESOLUTION_M = 50.0
TRUTH_RESOLUTION_M = 100.0
HALF_EXTENT_M = (24_000.0, 18_000.0)
BASE_ELEVATION_M = 5_000.0
SPINUP_YEARS = 300
# bump when the generator changes, so cached regions are rebuilt; 6: outlines within the truth's ice cells
FORMAT_VERSION = 6

# Public forcing
ELA_1960_M = 5_720.0
ELA_TREND_M_PER_YR = 5.0  # from 1980 on
GRAD_ABL = 0.005  # m ice eq. a-1 m-1
GRAD_ACC = 0.002
ACC_MAX = 0.5  # m ice eq. a-1
ELA_NOISE_M = 25.0

# Hidden truth: ELA offset per period [start, next start), and a trend within each period (m/yr)
TRUTH_PERIOD_OFFSETS_M = {1960: 0.0, 1970: -15.0, 1990: 25.0, 2000: 20.0, 2010: 35.0}
TRUTH_PERIOD_TRENDS_M_PER_YR = {1960: 0.0, 1970: 1.0, 1990: -1.5, 2000: 2.0, 2010: -1.0}
# ablation b = grad_abl dz (1 - dz / C) below the ELA: its gradient 1.5x at 1,000 m below
TRUTH_ABL_CURVATURE_M = 4000.0
TRUTH_GRAD_ACC = 0.0025
TRUTH_ACC_MAX = 0.6
DEM_NOISE_M = 4.0  # standard deviation of the DEM's noise (per 50 m cell, lightly correlated)
OUTLINE_JITTER_M = 12.5  # digitizing noise: standard deviation of each outline vertex's shift
REFERENCE_ERROR_PCT = 20.0  # per-glacier error of the reference volumes
GEODETIC_ERROR_MWE = 0.15  # per-glacier error (1 sigma) of the geodetic balances, m w.e. a-1
# Acquisition years: the initial inventory's per glacier, then each control epoch's offsets
INITIAL_YEARS = (1972, 1977)
CONTROL_YEAR_OFFSETS = {1990: (-2, 2), 2000: (-1, 2), 2010: (-2, 1), 2020: (-3, -1)}


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
    trend = TRUTH_PERIOD_TRENDS_M_PER_YR[period] * (max(year, EPOCHS[0]) - period)
    return base + mountain.ela_offset_m + TRUTH_PERIOD_OFFSETS_M[period] + trend


def truth_balance(surface: np.ndarray, ela: float) -> np.ndarray:
    """The truth's balance law (m ice eq. / yr): not the public linear one."""
    dz = surface - ela
    abl = GRAD_ABL * dz * (1.0 - dz / TRUTH_ABL_CURVATURE_M)
    return np.where(dz < 0, abl, np.minimum(TRUTH_GRAD_ACC * dz, TRUTH_ACC_MAX))


def outline_years(m: DemoMountain) -> dict[int, int]:
    """Acquisition year of each of the glacier's outlines, keyed by the epoch it stands for."""
    rng = np.random.default_rng(7000 + m.number)
    years = {INITIAL_EPOCH: int(rng.integers(INITIAL_YEARS[0], INITIAL_YEARS[1] + 1))}
    for epoch, (lo, hi) in CONTROL_YEAR_OFFSETS.items():
        years[epoch] = epoch + int(rng.integers(lo, hi + 1))
    return years


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
    """The hidden truth run of one glacier on its own 100 m window of the massif; saved at the
    epochs and at each outline's model time (its year + 1)."""
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
        b = truth_balance(surface, truth_ela(forcing, m, year))
        return np.where((b < 0) | own, b, -10.0)

    def spinup_smb(year: int, surface: np.ndarray) -> np.ndarray:
        return smb(EPOCHS[0], surface)

    thk1960, _ = run_sia(bed, np.zeros_like(bed), grid.res, spinup_smb, EPOCHS[0] - SPINUP_YEARS, EPOCHS[0])
    times = sorted(set(EPOCHS) | {outline_model_time(y) for y in outline_years(m).values()})
    _, saved = run_sia(bed, thk1960, grid.res, smb, EPOCHS[0], max(times), save_years=tuple(times))
    return grid, bed, saved


def outline_from_thickness(thk: np.ndarray, grid: Grid, code: int) -> MultiPolygon | None:
    """The dataset's recipe (`science/resample.py`): bilinear to 25 m within the ice cells,
    thickness >= 2 m, raster to vector."""
    factor = int(round(grid.res / PRODUCT_RESOLUTION_M))
    fine = refined_thickness(thk, factor)
    polys = mask_to_polygons(glacier_mask(fine, code), grid.refined(factor).transform)
    return polys.get(code)


def digitized(geom: MultiPolygon, rng: np.random.Generator, sd_m: float = OUTLINE_JITTER_M) -> MultiPolygon:
    """An outline as a person digitizes it from an image: every vertex moved at random by about
    half a pixel (Gaussian, `sd_m`), the polygon kept valid."""
    def jitter(ring):
        xy = np.asarray(ring.coords)
        xy[:-1] += rng.normal(0.0, sd_m, xy[:-1].shape)
        xy[-1] = xy[0]
        return xy

    parts = [Polygon(jitter(p.exterior), [jitter(i) for i in p.interiors]) for p in geom.geoms]
    fixed = make_valid(MultiPolygon(parts))
    polys = [g for g in getattr(fixed, "geoms", [fixed]) if isinstance(g, (Polygon, MultiPolygon))]
    flat = [q for g in polys for q in getattr(g, "geoms", [g])]
    return MultiPolygon(flat)


def reference_volumes(truth_km3: dict[str, float], seed: int = 2019,
                      error_pct: float = REFERENCE_ERROR_PCT) -> dict[str, float]:
    """Truth volumes with a Gaussian per-glacier error of `error_pct` %, recentred so the
    regional total is the truth's: unbiased regionally, noisy per glacier."""
    ids = sorted(truth_km3)
    rng = np.random.default_rng(seed)
    err = np.clip(rng.normal(0.0, error_pct / 100.0, len(ids)), -0.6, 0.6)
    vol = np.array([truth_km3[g] for g in ids])
    err -= np.sum(vol * err) / vol.sum()
    return {g: float(v * (1 + e)) for g, v, e in zip(ids, vol, err)}


def geodetic_balances(truth: dict[str, tuple[float, float, float, float]], years: int, seed: int = 2021,
                      error_mwe: float = GEODETIC_ERROR_MWE) -> dict[str, float]:
    """Geodetic balances (m w.e. a-1) made as real ones are: each glacier's true volume and area
    change over `years` (start volume, end volume, start area, end area) converted like Hugonnet
    et al. (2021) (`science.skill.geodetic_balance`), with a Gaussian error of `error_mwe`."""
    rng = np.random.default_rng(seed)
    return {g: geodetic_balance(*truth[g], years) + float(rng.normal(0.0, error_mwe)) for g in sorted(truth)}


def _write_dem(path: Path, surface: np.ndarray, grid: Grid) -> None:
    with rasterio.open(
        path, "w", driver="GTiff", width=grid.width, height=grid.height, count=1, dtype="float32",
        crs=grid.crs, transform=grid.transform, nodata=-9999.0, compress="DEFLATE", predictor=3, tiled=True,
    ) as dst:
        dst.write(surface.astype("float32"), 1)


def _rgi_rows(records: list[dict]) -> gpd.GeoDataFrame:
    gdf = gpd.GeoDataFrame(records, geometry="geometry", crs=DEMO_CRS)
    area = gdf.geometry.to_crs(albers_crs()).area / 1e6
    cent = gdf.geometry.centroid.to_crs(GEOGRAPHIC_CRS)
    out = gdf.to_crs(GEOGRAPHIC_CRS)
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
        truth_rows, outline_rows, ref_year, change = [], [], {}, {}
        ref_truth: dict[str, float] = {}
        for m in DEMO_MOUNTAINS:
            grid, bed, saved = simulate_truth(m, forcing)
            code = glacier_code(m.glacier_id)
            # ice of 2000 onto the 50 m DEM grid
            factor = int(round(grid.res / DEM_RESOLUTION_M))
            r0 = int(round((dem_grid.ymax - grid.ymax) / DEM_RESOLUTION_M))
            c0 = int(round((grid.xmin - dem_grid.xmin) / DEM_RESOLUTION_M))
            ice = bilinear_refine(saved[2000], factor)
            surface[r0 : r0 + ice.shape[0], c0 : c0 + ice.shape[1]] += ice
            g0, g1 = GEODETIC_PERIOD
            change[m.glacier_id] = (volume_km3(saved[g0], grid.cell_area_m2), volume_km3(saved[g1], grid.cell_area_m2),
                                    product_area_km2(saved[g0], grid.res), product_area_km2(saved[g1], grid.res))
            for year in EPOCHS:
                truth_rows.append({
                    "glacier_id": m.glacier_id, "year": year,
                    "area_km2": product_area_km2(saved[year], grid.res),
                    "volume_km3": volume_km3(saved[year], grid.cell_area_m2),
                    "ela_m": truth_ela(forcing, m, year),
                })
            rng = np.random.default_rng(8000 + m.number)
            for epoch, year in outline_years(m).items():
                t = outline_model_time(year)
                geom = outline_from_thickness(saved[t], grid, code)
                if geom is None:
                    continue
                s = bed + saved[t]
                on = saved[t] >= 2.0
                outlines[epoch].append({
                    "RGIId": m.glacier_id, "Name": f"Demo glacier {m.number:02d}", "BgnDate": f"{year}0815",
                    "geometry": digitized(geom, rng),
                    "Zmin": int(s[on].min()), "Zmax": int(s[on].max()), "Zmed": int(np.median(s[on])),
                })
                volume = volume_km3(saved[t], grid.cell_area_m2)
                outline_rows.append({"glacier_id": m.glacier_id, "epoch": epoch, "obs_year": year, "model_time": t,
                                     "area_km2": product_area_km2(saved[t], grid.res), "volume_km3": volume})
                if epoch == 2000:
                    ref_truth[m.glacier_id], ref_year[m.glacier_id] = volume, year
        noise = gaussian_filter(np.random.default_rng(4).normal(0.0, 1.0, surface.shape), 1.0)
        surface = surface + noise / noise.std() * DEM_NOISE_M
        _write_dem(tmp / "dem.tif", surface, dem_grid)
        files = {}
        for epoch, records in outlines.items():
            name = "outlines_1970s.shp" if epoch == INITIAL_EPOCH else f"outlines_{epoch}.shp"
            _rgi_rows(records).to_file(tmp / name, engine="pyogrio")
            files[epoch] = name
        refs = reference_volumes(ref_truth)
        pd.DataFrame({"glacier_id": list(refs), "volume_km3": [round(v, 6) for v in refs.values()],
                      "year": [ref_year[g] for g in refs]}).to_csv(tmp / "reference_volumes.csv", index=False)
        geo = geodetic_balances(change, GEODETIC_PERIOD[1] - GEODETIC_PERIOD[0])
        pd.DataFrame({"glacier_id": list(geo), "start": GEODETIC_PERIOD[0], "end": GEODETIC_PERIOD[1],
                      "dmdtda_mwe": [round(v, 4) for v in geo.values()], "err_mwe": GEODETIC_ERROR_MWE}
                     ).to_csv(tmp / "geodetic_mass_balance.csv", index=False)
        (tmp / "truth").mkdir()
        pd.DataFrame(truth_rows).to_csv(tmp / "truth" / "truth.csv", index=False)
        pd.DataFrame(outline_rows).to_csv(tmp / "truth" / "outlines.csv", index=False)
        (tmp / "truth" / "params.json").write_text(json.dumps({
            "period_offsets_m": TRUTH_PERIOD_OFFSETS_M,
            "period_trends_m_per_yr": TRUTH_PERIOD_TRENDS_M_PER_YR,
            "balance_law": {"grad_abl": GRAD_ABL, "abl_curvature_m": TRUTH_ABL_CURVATURE_M,
                            "grad_acc": TRUTH_GRAD_ACC, "acc_max": TRUTH_ACC_MAX},
            "flow": f"2-D shallow ice, no sliding, Glen A {GLEN_A:g} Pa-3 s-1, rho {RHO_ICE:g}",
            "dem_noise_m": DEM_NOISE_M, "outline_jitter_m": OUTLINE_JITTER_M,
            "reference_error_pct": REFERENCE_ERROR_PCT, "geodetic_error_mwe": GEODETIC_ERROR_MWE,
            "mountains": [asdict(m) | {"glacier_id": m.glacier_id, "outline_years": outline_years(m)}
                          for m in DEMO_MOUNTAINS],
            "spinup_years": SPINUP_YEARS,
        }, indent=1))
        columns = {"id_column": "RGIId", "year_column": "BgnDate"}
        spec = {
            "name": "demo-geladandong",
            "outlines": [{"path": files[INITIAL_EPOCH], "role": "initial", **columns}]
            + [{"path": files[y], "role": "control", **columns} for y in CONTROL_EPOCHS],
            "dem": {"path": "dem.tif", "year": 2000},
            "mass_balance": {"path": "mass_balance.csv"},
            "reference_volumes": {"path": "reference_volumes.csv"},
            "geodetic_mass_balance": {"path": "geodetic_mass_balance.csv"},
            "dataset": {"title": SEED_TEXTS.title, "description": SEED_TEXTS.description,  # the seed dataset's texts
                        "citation": SEED_TEXTS.citation, "license": SEED_TEXTS.license,
                        "providers": [p for p in SEED_TEXTS.providers if p["name"] != "glacier_assets"]},
        }
        (tmp / "region.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        (tmp / "VERSION").write_text(str(FORMAT_VERSION))
        publishable(tmp, directory=True)  # mkdtemp made it 0700
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
