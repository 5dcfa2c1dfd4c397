"""A twin that can see shape (issue 25): valley glaciers with tongues on the Oetztal's real, rough
terrain, whose hidden truth comes from another flow model than the one calibrated to it.

    python -m glacier_assets demo-region var/valley_twin --valley

The demo twin's glaciers are round ice caps on smooth domes: a model that keeps the area and loses
the tongue scores well there. This twin is made from the real sample data in `../shared/data`
(`oggm_oetztal/`: SRTM and the RGI5 outlines of 2003), deterministically:

1. A bed: the SRTM surface minus an ice thickness inside every 2003 outline, made as a
   glaciologist makes a first guess without a model: perfect plasticity (basal stress
   `BED_BASAL_STRESS_PA` over the smoothed surface slope, at most `BED_MAX_THICKNESS_M`), tapered to
   zero at the margins. The valleys, walls and ridges are real.
2. A public mass-balance forcing 1960-2020 (`mass_balance.csv`): a regional ELA near the Oetztal's
   (`ELA_1960_M`) that rises from 1980, as the Alps' did, with seeded noise, and the Alps'
   balance gradients.
3. A hidden truth: the `VALLEY_GLACIERS` (the region's largest, all valley glaciers) grown together
   from no ice with the 2-D shallow-ice model (`science.sia`: no sliding, ice `TRUTH_FLOW_FACTOR`
   times softer than IGM's default, another scheme) on a 100 m grid: 300 years under their 1960
   climate less `LIA_ELA_DROP_M` (a Little Ice Age), a linear warming from `LIA_END` to 1960 (so
   that the 1960 glaciers are retreating, as the Alps' were), then 1960-2020. The balance law is
   the demo twin's (curved ablation, its own accumulation gradient and cap;
   `demo_truth.truth_balance`) with the Alps' gradients. Each glacier's ELA is the public one plus
   a local offset that puts its 1960 ELA at the median elevation of its 2003 outline, plus the
   demo twin's hidden per-period offsets and trends. Snow can only stay within
   `ACCUMULATION_MARGIN_M` of a glacier's 2003 outline; the ice flows and melts wherever the
   terrain takes it. Where two glaciers touch, a cell belongs to the one whose 2003 outline is
   nearest, as inventories split them at divides.
4. Then as the demo twin (`demo.py`, `demo_truth.py`): outlines drawn from the truth as the dataset
   draws its products, at each glacier's own acquisition dates, digitized with noise; a surface DEM
   (bed + the truth's ice of 2000, with noise) on a 50 m grid; reference volumes with a 20 % error;
   geodetic balances 2000-2020 with their error. `truth/` keeps the truth's area, volume and
   thickness (`truth/thickness.nc`, for the shape and length figures of `bench/twin_skill.py`).

Ids are RGI60-11.90001 ... (valid RGI6 syntax above region 11's highest number), named after the
real glacier whose valley each occupies.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage
from scipy.ndimage import gaussian_filter

from ..constants import EPOCHS, outline_model_time
from ..science.domain import rasterize
from ..science.grids import Grid, reproject_raster, snapped_grid, utm_crs_for
from ..science.resample import bilinear_refine
from ..science.sia import GLEN_A, RHO_ICE, run_sia
from .demo import replace_directory, write_dem, write_twin
from .demo_massif import outline_years
from .demo_truth import (
    GEODETIC_ERROR_MWE,
    OUTLINE_JITTER_M,
    REFERENCE_ERROR_PCT,
    SPINUP_YEARS,
    TRUTH_ABL_CURVATURE_M,
    TRUTH_PERIOD_OFFSETS_M,
    TRUTH_PERIOD_TRENDS_M_PER_YR,
    TwinRecords,
    truth_balance,
    truth_ela,
)

# bump when the generator changes
FORMAT_VERSION = 1

# the 2003 outlines (`oggm_oetztal/rgi_oetztal.shp`) whose valleys hold the twin's glaciers
VALLEY_GLACIERS = ("RGI50-11.00897", "RGI50-11.00787", "RGI50-11.00887", "RGI50-11.00666", "RGI50-11.00945",
                   "RGI50-11.00687", "RGI50-11.00958", "RGI50-11.00746")
NAMES = {"RGI50-11.00897": "Hintereisferner", "RGI50-11.00787": "Kesselwandferner"}
O1REGION = "11"
TRUTH_RESOLUTION_M = 100.0
DEM_RESOLUTION_M = 50.0
MARGIN_M = 1500.0  # the world around the glaciers' outlines
BED_BASAL_STRESS_PA = 1.0e5
BED_MAX_THICKNESS_M = 350.0
BED_TAPER_M = 400.0  # the first guess reaches its full thickness this far inside the outline
ACCUMULATION_MARGIN_M = 200.0
TRUTH_FLOW_FACTOR = 3.0  # the truth's ice is softer than Glen's A for temperate ice (deformation for sliding)
ELA_1960_M = 2_950.0
ELA_TREND_M_PER_YR = 5.0  # from 1980 on
ELA_NOISE_M = 40.0
LIA_ELA_DROP_M = 100.0  # the spin-up's ELA below the 1960 one until the Little Ice Age's end
LIA_END = 1850
GRAD_ABL, GRAD_ACC, ACC_MAX = 0.008, 0.003, 1.2  # public, m ice eq. a-1 m-1 and m ice eq. a-1
TRUTH_GRAD_ABL, TRUTH_GRAD_ACC, TRUTH_ACC_MAX = 0.009, 0.004, 1.5
DEM_NOISE_M = 4.0


def twin_id(number: int) -> str:
    return f"RGI60-{O1REGION}.{90000 + number:05d}"


def public_forcing() -> pd.DataFrame:
    """The forcing users get: year, ela, grad_abl, grad_acc, acc_max."""
    years = np.arange(EPOCHS[0], EPOCHS[-1] + 1)
    noise = gaussian_filter(np.random.default_rng(1961).normal(0.0, 1.0, years.size), 0.8)
    ela = ELA_1960_M + ELA_TREND_M_PER_YR * np.clip(years - 1980, 0, None) + noise / noise.std() * ELA_NOISE_M
    return pd.DataFrame({"year": years, "ela": np.round(ela, 1), "grad_abl": GRAD_ABL, "grad_acc": GRAD_ACC,
                         "acc_max": ACC_MAX})


def plastic_thickness(surface: np.ndarray, inside: np.ndarray, res: float) -> np.ndarray:
    """Ice thickness (m) under a glacier surface by perfect plasticity, H = tau / (rho g sin(slope)),
    the slope smoothed over ~200 m, capped, and tapered to zero at the outline's edge."""
    s = gaussian_filter(surface, 200.0 / res)
    gy, gx = np.gradient(s, res)
    sin_slope = np.maximum(np.sin(np.arctan(np.hypot(gx, gy))), 0.05)
    h = np.minimum(BED_BASAL_STRESS_PA / (RHO_ICE * 9.81 * sin_slope), BED_MAX_THICKNESS_M)
    taper = np.sqrt(np.minimum(1.0, ndimage.distance_transform_edt(inside) * res / BED_TAPER_M))
    return np.where(inside, gaussian_filter(h * taper, 1.0), 0.0)


def block_mean(fine: np.ndarray, factor: int) -> np.ndarray:
    """A field on a grid `factor` times coarser, each cell the mean of the fine cells it holds."""
    h, w = fine.shape[0] // factor, fine.shape[1] // factor
    return fine.reshape(h, factor, w, factor).mean(axis=(1, 3))


def nearest_labels(footprints: np.ndarray) -> np.ndarray:
    """Every cell's nearest labelled cell's label (the label map `footprints`, 0 = none)."""
    _, (rows, cols) = ndimage.distance_transform_edt(footprints == 0, return_indices=True)
    return footprints[rows, cols]


def simulate_truth(bed: np.ndarray, grid: Grid, labels: np.ndarray, accumulate: np.ndarray,
                   offsets: dict[int, float], forcing: pd.DataFrame, times: list[int],
                   spinup_years: int = SPINUP_YEARS) -> dict[int, np.ndarray]:
    """All the twin's glaciers together with the shallow-ice model: thickness at `times`."""
    offset = np.zeros(bed.shape)
    for number, value in offsets.items():
        offset[labels == number] = value
    glen_a = TRUTH_FLOW_FACTOR * GLEN_A

    def balance(surface: np.ndarray, ela) -> np.ndarray:
        b = truth_balance(surface, ela, TRUTH_GRAD_ABL, TRUTH_GRAD_ACC, TRUTH_ACC_MAX)
        return np.where((b < 0) | accumulate, b, -10.0)

    def smb(year: int, surface: np.ndarray) -> np.ndarray:
        return balance(surface, truth_ela(forcing, offset, year))

    def spinup_smb(year: int, surface: np.ndarray) -> np.ndarray:
        """The 1960 climate, colder by `LIA_ELA_DROP_M` until `LIA_END`, then warming linearly."""
        cold = LIA_ELA_DROP_M * min(1.0, (EPOCHS[0] - year) / (EPOCHS[0] - LIA_END))
        return balance(surface, truth_ela(forcing, offset, EPOCHS[0]) - cold)

    start = EPOCHS[0]
    thk, _ = run_sia(bed, np.zeros_like(bed), grid.res, spinup_smb, LIA_END - spinup_years, start, glen_a=glen_a)
    _, saved = run_sia(bed, thk, grid.res, smb, start, max(times), save_years=tuple(times), glen_a=glen_a)
    return saved


def build_valley_twin(shared_data: str | Path, dest: str | Path, glaciers: tuple[str, ...] = VALLEY_GLACIERS,
                      spinup_years: int = SPINUP_YEARS) -> Path:
    """Write the valley twin into `dest` (replacing it atomically) and return its region.yaml."""
    data = Path(shared_data) / "oggm_oetztal"
    dest = Path(dest).resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    rgi = gpd.read_file(data / "rgi_oetztal.shp")
    crs = utm_crs_for(*rgi.union_all().centroid.coords[0])
    rgi = rgi.to_crs(crs)
    chosen = rgi.set_index("RGIId").loc[list(glaciers)]
    numbers = {src: i + 1 for i, src in enumerate(glaciers)}
    x0, y0, x1, y1 = chosen.total_bounds
    grid = snapped_grid(crs, (x0 - MARGIN_M, y0 - MARGIN_M, x1 + MARGIN_M, y1 + MARGIN_M), TRUTH_RESOLUTION_M, 0)
    factor = int(TRUTH_RESOLUTION_M / DEM_RESOLUTION_M)
    fine = grid.refined(factor)
    srtm = reproject_raster(str(data / "srtm_oetztal.tif"), fine)
    if np.isnan(srtm).any():
        raise ValueError(f"{data / 'srtm_oetztal.tif'}: does not cover the valley twin's domain {grid.bounds}")
    bed_fine = srtm - plastic_thickness(srtm, rasterize(list(rgi.geometry), fine) > 0, fine.res)
    bed = block_mean(bed_fine, factor)
    footprints = np.zeros(grid.shape, dtype=int)
    for src, number in numbers.items():
        footprints[rasterize([chosen.geometry[src]], grid) > 0] = number
    labels = nearest_labels(footprints)
    accumulate = rasterize([g.buffer(ACCUMULATION_MARGIN_M) for g in chosen.geometry], grid) > 0
    surface_2003 = block_mean(srtm, factor)
    offsets = {}
    forcing = public_forcing()
    ela_1960 = float(forcing.loc[forcing.year == EPOCHS[0], "ela"].iloc[0])
    for number in numbers.values():
        zmed = float(np.median(surface_2003[footprints == number]))
        offsets[number] = zmed - ela_1960
    years = {number: outline_years(number) for number in numbers.values()}
    times = sorted(set(EPOCHS) | {outline_model_time(y) for ys in years.values() for y in ys.values()})
    saved = simulate_truth(bed, grid, labels, accumulate, offsets, forcing, times, spinup_years)
    own = {n: {t: np.where(labels == n, thk, 0.0) for t, thk in saved.items()} for n in numbers.values()}

    tmp = Path(tempfile.mkdtemp(prefix=".valley-", dir=dest.parent))
    try:
        forcing.to_csv(tmp / "mass_balance.csv", index=False)
        records = TwinRecords()
        for src, number in numbers.items():
            records.observe(twin_id(number), f"Twin of {NAMES.get(src, src)}", number, own[number], bed, grid,
                            lambda year, n=number: truth_ela(forcing, offsets[n], year))
        noise = gaussian_filter(np.random.default_rng(5).normal(0.0, 1.0, bed_fine.shape), 1.0)
        surface = bed_fine + bilinear_refine(saved[2000], factor) + noise / noise.std() * DEM_NOISE_M
        write_dem(tmp / "dem.tif", surface, fine)
        (tmp / "truth").mkdir()
        ids = [twin_id(n) for n in numbers.values()]
        xr.Dataset(
            {"thk": (("glacier_id", "time", "y", "x"),
                     np.stack([np.stack([own[n][t] for t in EPOCHS]) for n in numbers.values()]).astype("float32")),
             "bed": (("y", "x"), bed.astype("float32"))},
            coords={"glacier_id": ids, "time": list(EPOCHS), "y": grid.y, "x": grid.x},
            attrs={"crs": crs, "note": "the valley twin's hidden truth: each glacier's own ice at the epochs"},
        ).to_netcdf(tmp / "truth" / "thickness.nc")
        params = {
            "period_offsets_m": TRUTH_PERIOD_OFFSETS_M, "period_trends_m_per_yr": TRUTH_PERIOD_TRENDS_M_PER_YR,
            "balance_law": {"grad_abl": TRUTH_GRAD_ABL, "abl_curvature_m": TRUTH_ABL_CURVATURE_M,
                            "grad_acc": TRUTH_GRAD_ACC, "acc_max": TRUTH_ACC_MAX},
            "flow": f"2-D shallow ice, no sliding, Glen A {TRUTH_FLOW_FACTOR * GLEN_A:g} Pa-3 s-1, rho {RHO_ICE:g}",
            "bed": {"basal_stress_pa": BED_BASAL_STRESS_PA, "max_thickness_m": BED_MAX_THICKNESS_M,
                    "taper_m": BED_TAPER_M},
            "accumulation_margin_m": ACCUMULATION_MARGIN_M, "dem_noise_m": DEM_NOISE_M,
            "outline_jitter_m": OUTLINE_JITTER_M, "reference_error_pct": REFERENCE_ERROR_PCT,
            "geodetic_error_mwe": GEODETIC_ERROR_MWE, "spinup_years": spinup_years,
            "lia_ela_drop_m": LIA_ELA_DROP_M, "lia_end": LIA_END,
            "mountains": [{"glacier_id": twin_id(n), "source": src, "ela_offset_m": round(offsets[n], 1),
                           "outline_years": years[n]} for src, n in numbers.items()],
        }
        write_twin(tmp, records, crs, O1REGION, params, {"name": "valley-twin-oetztal"}, FORMAT_VERSION)
        replace_directory(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest / "region.yaml"
