"""Ice thickness by mass conservation with IGM's flow law, and a regional rheology factor.

Flow law (IGM 3.2's defaults in the shallow-ice limit, `igm/conf/processes/iceflow.yaml`; IGM's
viscous energy uses B = 2 A^(-1/n), i.e. Glen's law eps_xz = A tau^n), with one factor f scaling the
ice's mobility, deformation and sliding alike:

    tau = rho g H sin(alpha)                        basal shear stress (Pa; /1e6 for MPa)
    u_d = 2 f A / (n + 2) tau^n H                   depth-mean deformation velocity (m/a)
    u_b = f u_ref (tau / tau_ref)^m                 Weertman sliding (m/a)
    q   = H (u_d + u_b)                             flux per unit width (m2/a), monotone in H

with rho = 910 kg m-3, A = 78 MPa-3 a-1, n = 3, u_ref = 100 m/a, tau_ref = 0.2154 MPa, m = 3 and
alpha the surface slope, floored at `thickness.MIN_SLOPE_DEG`. In IGM the same ice is
arrhenius = 78 f and tau_ref' = tau_ref f^(-1/m) (`igm_overrides`). Without sliding H ~ f^(-1/5).

Flux (steady state: Farinotti et al. 2009; Huss & Farinotti 2012; OGGM's apparent mass balance),
in 2-D: the apparent balance b~ = b - mean(b over the outline) (m ice/a) is accumulated downslope
over the surface (smoothed by `smoothing` 3x3 means) with multiple-flow-direction routing
(Freeman 1991; Quinn et al. 1991): each cell's outflow Q_out = b~ res^2 + inflow is split among
its lower 8-neighbours inside the outline in proportion to (drop / distance)^1.1; a cell with
no lower neighbour passes nothing on. Processing cells from highest to lowest is a triangular
linear system, (I - W) Q = b~ res^2, solved here with one sparse LU. Negative outflows (ablation
exceeding the inflow) are passed on as they are, so volume is conserved (as OGGM's flowline
flux); the flux per unit width is q = max(Q_out, 0) / res.

Thickness: q = H (u_d + u_b) solved per cell by bisection on H in [0, 2000] m; H = 0 where
q = 0 and outside the outline, then `smoothing` 3x3 means restricted to the outline taper the
margin. The apparent balance is zero-mean per outlet, the cells with no lower neighbour
(`outlet_means`), not over the outline: no flux vanishes into a hollow of the DEM or the end of a
tributary cut off on the 100 m grid, and every tongue's flux ends at its end (issue 25).

Calibration (as OGGM's `calibrate_inversion_from_consensus`): one factor f for a region such
that the summed volume equals the summed reference volumes (Brent's method on ln f).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter
from scipy.optimize import brentq
from scipy.sparse import csc_matrix, identity
from scipy.sparse.linalg import spsolve

from ..constants import (
    FLUX_RATIO_BOUNDS,
    GLEN_N,
    GRAVITY,
    IGM_ARRHENIUS_MPA3_A,
    IGM_ICE_DENSITY,
    IGM_SLIDING_EXPONENT,
    IGM_SLIDING_TAU_REF_MPA,
    IGM_SLIDING_U_REF_M_A,
)
from .thickness import MIN_SLOPE_DEG, surface_slope_rad

H_MAX_M = 2000.0
ROUTING_EXPONENT = 1.1  # Freeman (1991)
_BISECTIONS = 50  # 2000 m / 2^50: exact to ~1e-12 m
_NEIGHBOURS = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)]


def igm_overrides(factor: float) -> dict[str, float]:
    """IGM parameters (dotted OmegaConf keys) of ice whose mobility is `factor` times the default."""
    if not factor > 0:
        raise ValueError(f"the rheology factor must be > 0, got {factor}")
    return {
        "processes.iceflow.physics.viscosity.arrhenius": IGM_ARRHENIUS_MPA3_A * factor,
        "processes.iceflow.physics.sliding.tau_ref": IGM_SLIDING_TAU_REF_MPA * factor ** (-1.0 / IGM_SLIDING_EXPONENT),
    }


def ice_flux(thickness: np.ndarray, slope_rad: np.ndarray, factor: float = 1.0, sliding: bool = True) -> np.ndarray:
    """Flux per unit width q = H (u_d + u_b) (m2/a) of the flow law above."""
    h = np.asarray(thickness, dtype="float64")
    tau = IGM_ICE_DENSITY * GRAVITY * h * np.sin(np.maximum(slope_rad, np.deg2rad(MIN_SLOPE_DEG))) / 1e6  # MPa
    u = 2.0 * factor * IGM_ARRHENIUS_MPA3_A / (GLEN_N + 2.0) * tau**GLEN_N * h
    if sliding:
        u = u + factor * IGM_SLIDING_U_REF_M_A * (tau / IGM_SLIDING_TAU_REF_MPA) ** IGM_SLIDING_EXPONENT
    return h * u


def _smooth(z: np.ndarray, passes: int) -> np.ndarray:
    for _ in range(passes):
        z = uniform_filter(z, size=3, mode="nearest")
    return z


def apparent_flux(surface: np.ndarray, outline: np.ndarray, balance: np.ndarray, res: float,
                  smoothing: int = 2) -> np.ndarray:
    """Flux per unit width (m2/a) leaving each outline cell of the apparent balance; 0 outside."""
    outline = np.asarray(outline, dtype=bool)
    q = np.zeros(outline.shape, dtype="float64")
    n_cells = int(outline.sum())
    if n_cells == 0:
        return q
    if not (np.isfinite(surface[outline]).all() and np.isfinite(balance[outline]).all()):
        raise ValueError("the surface or the balance has no data inside the outline")
    z = _smooth(np.nan_to_num(np.asarray(surface, dtype="float64"), nan=float(np.mean(surface[outline]))), smoothing)
    b = np.asarray(balance, dtype="float64")[outline]
    index = np.full(outline.shape, -1, dtype=np.int64)
    index[outline] = np.arange(n_cells)
    zp = np.pad(z, 1, constant_values=np.nan)
    ip = np.pad(index, 1, constant_values=-1)
    ny, nx = outline.shape
    weights, targets = [], []
    for di, dj in _NEIGHBOURS:
        zn = zp[1 + di:1 + di + ny, 1 + dj:1 + dj + nx][outline]
        tn = ip[1 + di:1 + di + ny, 1 + dj:1 + dj + nx][outline]
        drop = z[outline] - zn
        lower = (tn >= 0) & (drop > 0)  # NaN drops (outside the array) compare False
        weights.append((np.where(lower, drop, 0.0) / (res * math.hypot(di, dj))) ** ROUTING_EXPONENT)
        targets.append(np.where(lower, tn, 0))
    w = np.stack(weights, axis=1)  # (cells, 8)
    total = w.sum(axis=1, keepdims=True)
    frac = np.divide(w, total, out=np.zeros_like(w), where=total > 0)
    keep = frac > 0
    src = np.broadcast_to(np.arange(n_cells)[:, None], w.shape)[keep]
    routing = csc_matrix((frac[keep], (np.stack(targets, axis=1)[keep], src)), shape=(n_cells, n_cells))
    system = (identity(n_cells, format="csc") - routing).tocsc()
    source = (b - outlet_means(system, b, total[:, 0] == 0)) * res**2  # m3/a
    q_out = spsolve(system, source)  # Q = source + W Q
    q[outline] = np.maximum(q_out, 0.0) / res
    return q


def outlet_means(system, b: np.ndarray, outlets: np.ndarray) -> np.ndarray:
    """The balance each cell's apparent balance is taken from: per outlet (a cell passing nothing
    on) the mean m_k such that the apparent balance drained to it sums to zero (steady state: no
    flux leaves any tongue's end), each cell's share of the m_k weighted by the fraction of its
    mass that reaches outlet k. With one outlet, the outline's mean balance (as before).

    Before issue 25 one mean over the outline let outlets other than the tongue's end keep flux: on
    Hintereisferner 1.3e6 of 5.3e6 m3/a ended in margin cells of 2,819-3,569 m (hollows of the
    smoothed 100 m DEM, tributaries cut off on the grid), and the lowest km of the tongue got none
    (first-guess ice and bed depth 0 there).

    phi_k = fraction of each cell's mass reaching outlet k solves system^T phi_k = e_k (system =
    I - W); the m_k solve G m = Phi^T b with G = Phi^T Phi."""
    ks = np.flatnonzero(outlets)
    if ks.size <= 1:
        return np.full_like(b, b.mean())
    from scipy.sparse.linalg import splu

    lu = splu(system.T.tocsc())
    phi = np.stack([lu.solve(np.eye(1, b.size, k).ravel()) for k in ks], axis=1)  # (cells, outlets)
    m = np.linalg.lstsq(phi.T @ phi, phi.T @ b, rcond=None)[0]
    return phi @ m


def thickness_from_flux(flux: np.ndarray, slope_rad: np.ndarray, outline: np.ndarray, factor: float = 1.0,
                        smoothing: int = 2, sliding: bool = True) -> np.ndarray:
    """Thickness (m) whose flux per unit width is `flux`, margin-tapered by `smoothing` 3x3 means."""
    if not factor > 0:
        raise ValueError(f"the rheology factor must be > 0, got {factor}")
    outline = np.asarray(outline, dtype=bool)
    active = outline & (np.asarray(flux) > 0)
    target, slope = np.asarray(flux, dtype="float64")[active], np.asarray(slope_rad, dtype="float64")[active]
    lo, hi = np.zeros_like(target), np.full_like(target, H_MAX_M)
    for _ in range(_BISECTIONS):  # q(H) increases monotonically in H
        mid = 0.5 * (lo + hi)
        low = ice_flux(mid, slope, factor, sliding) < target
        lo, hi = np.where(low, mid, lo), np.where(low, hi, mid)
    h = np.zeros(outline.shape, dtype="float64")
    h[active] = 0.5 * (lo + hi)
    for _ in range(smoothing):
        h = np.where(outline, uniform_filter(h, size=3, mode="constant", cval=0.0), 0.0)
    return h


@dataclass(frozen=True, eq=False)
class InversionInputs:
    """One glacier's flux and slope, computed once; thickness and volume for any factor are cheap."""

    flux: np.ndarray  # m2/a
    slope_rad: np.ndarray
    outline: np.ndarray  # bool
    res: float  # m
    sliding: bool = True
    smoothing: int = 2

    @classmethod
    def from_surface(cls, surface: np.ndarray, outline: np.ndarray, balance: np.ndarray, res: float,
                     smoothing: int = 2) -> InversionInputs:
        flux = apparent_flux(surface, outline, balance, res, smoothing)  # checks the data inside the outline
        filled = np.nan_to_num(np.asarray(surface, dtype="float64"), nan=float(np.nanmean(surface)))
        return cls(flux, surface_slope_rad(filled, res, 2), np.asarray(outline, dtype=bool), res, smoothing=smoothing)

    def thickness(self, factor: float = 1.0) -> np.ndarray:
        return thickness_from_flux(self.flux, self.slope_rad, self.outline, factor, self.smoothing, self.sliding)

    def volume_km3(self, factor: float = 1.0) -> float:
        return float(self.thickness(factor).sum()) * self.res**2 / 1e9


def _interior(outline: np.ndarray, thickness: np.ndarray) -> np.ndarray:
    """Where the flux ratio is measured: the outline's cells with ice, less its margin ring (whose
    first-guess ice is capped to match the area: `thickness.match_product_area`)."""
    from .thickness import margin_ring

    outline = np.asarray(outline, dtype=bool)
    return outline & ~margin_ring(outline) & (np.asarray(thickness) > 0)


def flux_consistency(flux: np.ndarray, thickness: np.ndarray, speed: np.ndarray, outline: np.ndarray,
                     bounds: tuple[float, float] = FLUX_RATIO_BOUNDS) -> float:
    """How many times its mobility a flow model needs so that it carries, on the inverted
    `thickness`, the flux the inversion routed (issue 25): sum over the outline of the apparent flux
    `flux` (m2/a) over the sum of H |u| (`speed`, the model's depth-mean speed there, m/a), within
    `bounds`. Velocities scale with the mobility at a given geometry (Glen A and Weertman sliding
    alike), so the ratio is the factor. The outline's margin ring is left out (its first-guess ice
    is capped to match the area: `thickness.match_product_area`). NaN when the model moves no ice there."""
    inside = _interior(outline, thickness)
    carried = float((np.asarray(thickness) * np.asarray(speed))[inside].sum())
    routed = float(np.asarray(flux)[inside].sum())
    if not (carried > 0 and routed > 0):
        return float("nan")
    return float(np.clip(routed / carried, *bounds))


def flux_consistency_field(flux: np.ndarray, thickness: np.ndarray, speed: np.ndarray, outline: np.ndarray,
                           sigma_cells: float, bounds: tuple[float, float] = FLUX_RATIO_BOUNDS) -> np.ndarray:
    """`flux_consistency` as a field: at each cell the ratio of the routed flux to the model's H |u|,
    both averaged with a Gaussian of `sigma_cells` over the outline's interior (normalized
    convolution, so the margin ring and the cells just beyond take their neighbours' ratio), within
    `bounds`; where no interior cell is near, the glacier's one ratio. One ratio per glacier is
    dominated by the basin: on a tongue a few cells wide the model's lateral drag leaves it carrying
    a third of what it must (issue 25, Hintereisferner)."""
    from scipy.ndimage import gaussian_filter

    h = np.asarray(thickness, dtype="float64")
    inside = _interior(outline, h).astype("float64")
    whole = flux_consistency(flux, thickness, speed, outline, bounds)
    if not np.isfinite(whole):
        return np.full(inside.shape, np.nan)
    routed = gaussian_filter(np.asarray(flux, dtype="float64") * inside, sigma_cells, mode="constant")
    carried = gaussian_filter(h * np.asarray(speed, dtype="float64") * inside, sigma_cells, mode="constant")
    weight = gaussian_filter(inside, sigma_cells, mode="constant")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((carried > 0) & (routed > 0), routed / carried, whole)
    near = weight > 0.05 * weight.max()
    return np.clip(np.where(near, ratio, whole), *bounds)


def invert_thickness(surface: np.ndarray, outline: np.ndarray, balance: np.ndarray, res: float,
                     factor: float = 1.0) -> np.ndarray:
    """Thickness (m) of one glacier from its surface, outline and balance (m ice/a), for `factor`."""
    return InversionInputs.from_surface(surface, outline, balance, res).thickness(factor)


def regional_factor(inputs: list[InversionInputs], reference_km3: list[float],
                    bounds: tuple[float, float] = (1e-3, 1e3)) -> float:
    """The factor f whose summed inverted volume equals the summed reference volumes."""
    if not inputs:
        raise ValueError("regional_factor needs at least one glacier")
    if len(inputs) != len(reference_km3):
        raise ValueError(f"{len(inputs)} glaciers but {len(reference_km3)} reference volumes")
    target = float(np.sum(reference_km3))
    if not (np.isfinite(target) and target > 0):
        raise ValueError(f"the summed reference volume must be finite and > 0, got {target}")
    misfit = lambda log_f: sum(g.volume_km3(math.exp(log_f)) for g in inputs) - target  # noqa: E731
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    at_lo, at_hi = misfit(lo), misfit(hi)  # the volume falls as f grows
    if at_lo < 0:
        raise ValueError(f"reference volume {target:.4g} km3 exceeds the inverted volume at the lowest factor "
                         f"{bounds[0]:g} ({at_lo + target:.4g} km3): the factor lies below the bounds")
    if at_hi > 0:
        raise ValueError(f"reference volume {target:.4g} km3 is below the inverted volume at the highest factor "
                         f"{bounds[1]:g} ({at_hi + target:.4g} km3): the factor lies above the bounds")
    return math.exp(brentq(misfit, lo, hi, xtol=1e-8, rtol=1e-10))


def quantize_factor(factor: float, step: float = 0.02) -> float:
    """exp(round(ln f / step) step): a factor on a 2 % logarithmic grid, so a re-calibration on a
    slightly changed sample returns the same value and the IGM runs that depend on it stay cached
    (re-runs remain incremental); 1 % in f changes the volume by only ~0.2 %."""
    if not factor > 0:
        raise ValueError(f"the rheology factor must be > 0, got {factor}")
    return math.exp(round(math.log(factor) / step) * step)
