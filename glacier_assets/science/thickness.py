"""First-guess ice thickness from an outline and a surface DEM (no velocities needed).

Perfect-plasticity / shear-stress estimate (Haeberli & Hoelzle 1995, as used by GlabTop):

    dz  = z_max - z_min over the outline, in km
    tau = 0.005 + 1.598 dz - 0.435 dz**2   [bar]   for dz <= 1.6 km, else 1.5 bar
    h   = tau / (f rho g sin(alpha))

with f = 0.8 (valley shape factor), rho = 900 kg m-3 and alpha the surface slope of the DEM,
smoothed by `slope_smoothing` 3x3 means and floored at 1.5 degrees (OGGM's `min_slope`).
h is set to 0 outside the outline and then smoothed by `thickness_smoothing` 3x3 means, which
tapers it to zero over the last cells inside the margin.

`match_product_area` then caps the thickness of the outermost ring of ice cells so that the
glacier area *as the products count it* (bilinear to 25 m, >= 2 m) equals the outline's area:
without it, bilinear interpolation spreads a 100 m margin half a cell outwards and the initial
state starts ~4 % too large for a 20 km2 glacier.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter

from ..constants import GRAVITY, ICE_DENSITY

SHAPE_FACTOR = 0.8
MIN_SLOPE_DEG = 1.5
MAX_TAU_BAR = 1.5


def basal_shear_stress_pa(dz_km: float) -> float:
    """Haeberli & Hoelzle (1995) basal shear stress from the outline's elevation range."""
    if dz_km < 0:
        raise ValueError("elevation range must be >= 0")
    tau_bar = MAX_TAU_BAR if dz_km > 1.6 else 0.005 + 1.598 * dz_km - 0.435 * dz_km**2
    return tau_bar * 1e5


def surface_slope_rad(dem: np.ndarray, res: float, smoothing: int = 2) -> np.ndarray:
    """Slope angle of a north-up DEM after `smoothing` passes of a 3x3 mean."""
    z = dem.astype("float64")
    for _ in range(smoothing):
        z = uniform_filter(z, size=3, mode="nearest")
    gy, gx = np.gradient(z, res)
    return np.arctan(np.hypot(gx, gy))


def first_guess_thickness(
    dem: np.ndarray,
    outline: np.ndarray,
    res: float,
    slope_smoothing: int = 2,
    thickness_smoothing: int = 2,
) -> np.ndarray:
    """Thickness (m) on the DEM's grid; `outline` is a boolean mask of the glacier."""
    outline = outline.astype(bool)
    if not outline.any():
        return np.zeros(dem.shape, dtype="float64")
    if np.isnan(dem[outline]).any():
        raise ValueError("the DEM has no data inside the outline")
    z = dem[outline]
    tau = basal_shear_stress_pa((float(z.max()) - float(z.min())) / 1000.0)
    alpha = np.maximum(surface_slope_rad(np.nan_to_num(dem, nan=float(np.nanmean(dem))), res, slope_smoothing),
                       np.deg2rad(MIN_SLOPE_DEG))
    h = tau / (SHAPE_FACTOR * ICE_DENSITY * GRAVITY * np.sin(alpha))
    h = np.where(outline, h, 0.0)
    for _ in range(thickness_smoothing):
        h = np.where(outline, uniform_filter(h, size=3, mode="constant", cval=0.0), 0.0)
    return h


def margin_ring(ice: np.ndarray) -> np.ndarray:
    """Ice cells with at least one ice-free 4-neighbour."""
    padded = np.pad(ice, 1, constant_values=False)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return ice & ~inner


def match_product_area(h: np.ndarray, res: float, target_km2: float, iterations: int = 30) -> np.ndarray:
    """Cap the margin ring of `h` at the thickness that makes the product area equal `target_km2`
    (bisection; the area grows with the cap). Returns `h` unchanged if no cap can reach it."""
    from .resample import product_area_km2

    ring = margin_ring(h > 0)
    if not ring.any():
        return h
    capped = lambda c: np.where(ring, np.minimum(h, c), h)  # noqa: E731
    lo, hi = 0.0, float(h[ring].max())
    if not (product_area_km2(capped(lo), res) <= target_km2 <= product_area_km2(capped(hi), res)):
        return h
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if product_area_km2(capped(mid), res) < target_km2:
            lo = mid
        else:
            hi = mid
    return capped(0.5 * (lo + hi))
