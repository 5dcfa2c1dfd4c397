"""A two-dimensional shallow-ice-approximation (SIA) glacier model in NumPy.

Used to make the demo region's hidden "truth": a different (simpler) ice-flow model than IGM,
driven by a known mass balance, so that the control outlines it produces have a known answer
and IGM's calibration has real model error to absorb, as it would against real outlines.

Scheme: Mahaffy (1976) staggered-grid fluxes, explicit in time with an adaptive step
(dt <= 0.2 dx^2 / max D, capped at `max_dt`), no sliding, Glen's n = 3.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..constants import GRAVITY, IGM_ICE_DENSITY

SECONDS_PER_YEAR = 31_556_926.0
GLEN_A = 2.4e-24  # Pa-3 s-1, temperate ice (Cuffey & Paterson 2010)
RHO_ICE = IGM_ICE_DENSITY  # the same ice as IGM's: the truth differs in its flow model, not its density
GLEN_N = 3


def _diffusivity_factor(a: float = GLEN_A) -> float:
    return 2.0 * a * (RHO_ICE * GRAVITY) ** GLEN_N / (GLEN_N + 2) * SECONDS_PER_YEAR


def sia_step_fluxes(bed: np.ndarray, thk: np.ndarray, dx: float, gamma: float) -> tuple[np.ndarray, float]:
    """Flux divergence (m/yr) of the SIA and the largest diffusivity (m2/yr)."""
    s = bed + thk
    # x-staggered faces (between columns j and j+1)
    hx = 0.5 * (thk[:, 1:] + thk[:, :-1])
    dsdx_x = (s[:, 1:] - s[:, :-1]) / dx
    sy = np.gradient(s, dx, axis=0)
    dsdy_x = 0.5 * (sy[:, 1:] + sy[:, :-1])
    dx_faces = gamma * hx ** (GLEN_N + 2) * (dsdx_x**2 + dsdy_x**2) ** ((GLEN_N - 1) / 2)
    qx = -dx_faces * dsdx_x
    # y-staggered faces (between rows i and i+1)
    hy = 0.5 * (thk[1:, :] + thk[:-1, :])
    dsdy_y = (s[1:, :] - s[:-1, :]) / dx
    sx = np.gradient(s, dx, axis=1)
    dsdx_y = 0.5 * (sx[1:, :] + sx[:-1, :])
    dy_faces = gamma * hy ** (GLEN_N + 2) * (dsdy_y**2 + dsdx_y**2) ** ((GLEN_N - 1) / 2)
    qy = -dy_faces * dsdy_y
    div = np.zeros_like(thk)
    div[:, 1:-1] += (qx[:, 1:] - qx[:, :-1]) / dx
    div[:, 0] += qx[:, 0] / dx
    div[:, -1] -= qx[:, -1] / dx
    div[1:-1, :] += (qy[1:, :] - qy[:-1, :]) / dx
    div[0, :] += qy[0, :] / dx
    div[-1, :] -= qy[-1, :] / dx
    dmax = float(max(dx_faces.max(initial=0.0), dy_faces.max(initial=0.0)))
    return div, dmax


def run_sia(
    bed: np.ndarray,
    thk0: np.ndarray,
    dx: float,
    smb: Callable[[int, np.ndarray], np.ndarray],
    start: float,
    end: float,
    save_years: tuple[int, ...] = (),
    max_dt: float = 1.0,
    glen_a: float = GLEN_A,
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Integrate from `start` to `end` (years). `smb(year, surface)` gives the balance (m ice/yr),
    re-evaluated every calendar year. Returns the final thickness and the saved snapshots."""
    gamma = _diffusivity_factor(glen_a)
    thk = np.clip(thk0.astype("float64"), 0.0, None)
    t = float(start)
    saved: dict[int, np.ndarray] = {}
    pending = sorted(y for y in save_years if start <= y <= end)
    if pending and pending[0] == start:
        saved[pending.pop(0)] = thk.copy()
    year: int | None = None
    b = None
    while t < end - 1e-9:
        now = int(np.floor(t + 1e-9))
        if year != now:
            year = now
            b = smb(year, bed + thk)
        div, dmax = sia_step_fluxes(bed, thk, dx, gamma)
        dt = min(max_dt, 0.2 * dx * dx / dmax if dmax > 0 else max_dt, end - t, (now + 1) - t)
        if pending:
            dt = min(dt, pending[0] - t)
        thk = np.maximum(thk + dt * (b - div), 0.0)
        t += dt
        if pending and abs(t - pending[0]) < 1e-6:
            saved[pending.pop(0)] = thk.copy()
    return thk, saved
