"""The demo region's hidden truth (`demo.py`) and what is observed of it: each glacier grown and run
with a shallow-ice model under a balance law that is not the public one, its outlines drawn and
digitized as the dataset does, and reference volumes and geodetic balances with their errors."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from shapely.geometry import MultiPolygon, Polygon
from shapely.validation import make_valid

from ..constants import (
    CONTROL_EPOCHS,
    EPOCHS,
    GEODETIC_PERIOD,
    INITIAL_EPOCH,
    PRODUCT_RESOLUTION_M,
    outline_model_time,
)
from ..science.grids import Grid
from ..science.masks import glacier_code, glacier_mask, volume_km3
from ..science.resample import product_area_km2, refined_thickness
from ..science.sia import run_sia
from ..science.skill import geodetic_balance
from ..science.vectorize import mask_to_polygons
from .demo_massif import DEMO_CENTER_UTM, DEMO_MOUNTAINS, GRAD_ABL, DemoMountain, demo_bed, demo_grid, outline_years

TRUTH_RESOLUTION_M = 100.0
SPINUP_YEARS = 300
# Hidden truth: ELA offset per period [start, next start), and a trend within each period (m/yr)
TRUTH_PERIOD_OFFSETS_M = {1960: 0.0, 1970: -15.0, 1990: 25.0, 2000: 20.0, 2010: 35.0}
TRUTH_PERIOD_TRENDS_M_PER_YR = {1960: 0.0, 1970: 1.0, 1990: -1.5, 2000: 2.0, 2010: -1.0}
# ablation b = grad_abl dz (1 - dz / C) below the ELA: its gradient 1.5x at 1,000 m below
TRUTH_ABL_CURVATURE_M = 4000.0
TRUTH_GRAD_ACC = 0.0025
TRUTH_ACC_MAX = 0.6
OUTLINE_JITTER_M = 12.5  # digitizing noise: standard deviation of each outline vertex's shift
REFERENCE_ERROR_PCT = 20.0  # per-glacier error of the reference volumes
GEODETIC_ERROR_MWE = 0.15  # per-glacier error (1 sigma) of the geodetic balances, m w.e. a-1


def truth_ela(forcing: pd.DataFrame, offset_m: float | np.ndarray, year: int) -> float | np.ndarray:
    """The truth's ELA: the public one, plus a glacier's local offset (`offset_m`), plus the
    hidden per-period offset and its trend."""
    period = max(p for p in TRUTH_PERIOD_OFFSETS_M if p <= max(year, EPOCHS[0]))
    y = int(np.clip(year, forcing["year"].min(), forcing["year"].max()))
    base = float(forcing.loc[forcing["year"] == y, "ela"].iloc[0])
    trend = TRUTH_PERIOD_TRENDS_M_PER_YR[period] * (max(year, EPOCHS[0]) - period)
    return base + offset_m + TRUTH_PERIOD_OFFSETS_M[period] + trend


def truth_balance(surface: np.ndarray, ela: float | np.ndarray, grad_abl: float = GRAD_ABL,
                  grad_acc: float = TRUTH_GRAD_ACC, acc_max: float = TRUTH_ACC_MAX) -> np.ndarray:
    """The truth's balance law (m ice eq. / yr): not the public linear one. Ablation steepens
    downglacier (`TRUTH_ABL_CURVATURE_M`), accumulation has its own gradient and cap."""
    dz = surface - ela
    abl = grad_abl * dz * (1.0 - dz / TRUTH_ABL_CURVATURE_M)
    return np.where(dz < 0, abl, np.minimum(grad_acc * dz, acc_max))


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
        b = truth_balance(surface, truth_ela(forcing, m.ela_offset_m, year))
        return np.where((b < 0) | own, b, -10.0)

    def spinup_smb(year: int, surface: np.ndarray) -> np.ndarray:
        return smb(EPOCHS[0], surface)

    thk1960, _ = run_sia(bed, np.zeros_like(bed), grid.res, spinup_smb, EPOCHS[0] - SPINUP_YEARS, EPOCHS[0])
    times = sorted(set(EPOCHS) | {outline_model_time(y) for y in outline_years(m.number).values()})
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


@dataclass
class TwinRecords:
    """What is observed of a twin's truth, gathered glacier by glacier (`observe`) for the writer
    (`demo.write_twin`): outlines per epoch, the truth's tables, and what the references and the
    geodetic balances are made from."""

    outlines: dict[int, list[dict]] = field(default_factory=lambda: {y: [] for y in (INITIAL_EPOCH, *CONTROL_EPOCHS)})
    truth_rows: list[dict] = field(default_factory=list)
    outline_rows: list[dict] = field(default_factory=list)
    ref_truth: dict[str, float] = field(default_factory=dict)
    ref_year: dict[str, int] = field(default_factory=dict)
    change: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)

    def observe(self, glacier_id: str, name: str, number: int, saved: dict[int, np.ndarray], bed: np.ndarray,
                grid: Grid, ela) -> None:
        """One glacier's truth (`saved`: thickness by model time on `grid` over `bed`; `ela(year)`
        its ELA): its epochs' area and volume, its outlines at its own dates (`outline_years`),
        drawn as the products are and digitized, and its ~2000 volume and geodetic change."""
        area = lambda t: product_area_km2(saved[t], grid.res)  # noqa: E731
        volume = lambda t: volume_km3(saved[t], grid.cell_area_m2)  # noqa: E731
        g0, g1 = GEODETIC_PERIOD
        self.change[glacier_id] = (volume(g0), volume(g1), area(g0), area(g1))
        self.truth_rows += [{"glacier_id": glacier_id, "year": y, "area_km2": area(y), "volume_km3": volume(y),
                             "ela_m": ela(y)} for y in EPOCHS]
        rng = np.random.default_rng(8000 + number)
        for epoch, year in outline_years(number).items():
            t = outline_model_time(year)
            geom = outline_from_thickness(saved[t], grid, glacier_code(glacier_id))
            if geom is None:
                continue
            s, on = bed + saved[t], saved[t] >= 2.0
            self.outlines[epoch].append({
                "RGIId": glacier_id, "Name": name, "BgnDate": f"{year}0815", "geometry": digitized(geom, rng),
                "Zmin": int(s[on].min()), "Zmax": int(s[on].max()), "Zmed": int(np.median(s[on])),
            })
            self.outline_rows.append({"glacier_id": glacier_id, "epoch": epoch, "obs_year": year, "model_time": t,
                                      "area_km2": area(t), "volume_km3": volume(t)})
            if epoch == 2000:
                self.ref_truth[glacier_id], self.ref_year[glacier_id] = volume(t), year
