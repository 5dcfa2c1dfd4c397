"""Mass-conservation inversion with IGM's flow law and the regional rheology factor (science/inversion.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from glacier_assets.constants import FLUX_RATIO_BOUNDS
from glacier_assets.science.inversion import (
    InversionInputs,
    apparent_flux,
    flux_consistency,
    flux_consistency_field,
    igm_overrides,
    invert_thickness,
    quantize_factor,
    regional_factor,
    thickness_from_flux,
)

RES = 100.0


def _hand_flux(h: float, slope_deg: float, factor: float = 1.0, sliding: bool = True) -> tuple[float, float, float]:
    """q, u_d, u_b written out from the formulas with IGM 3.2's numbers."""
    tau = 910.0 * 9.81 * h * math.sin(math.radians(slope_deg)) / 1e6  # MPa
    u_d = 2.0 * factor * 78.0 / 5.0 * tau**3 * h
    u_b = factor * 100.0 * (tau / 0.2153697218796329) ** 3 if sliding else 0.0
    return h * (u_d + u_b), u_d, u_b


def _dome(n: int = 40, radius_cells: float = 15.0, top: float = 600.0):
    yy, xx = np.mgrid[0:n, 0:n]
    r = np.hypot(yy - (n - 1) / 2, xx - (n - 1) / 2) / radius_cells
    outline = r < 1.0
    surface = 4000.0 + top * np.sqrt(np.clip(1.0 - r**2, 0.0, 1.0))
    balance = 0.006 * (surface - 4000.0 - 0.6 * top)  # m ice/a, rising with elevation
    return surface, outline, balance, r


def _plane(ny: int = 20, nx: int = 40, slope: float = 0.1):
    yy, xx = np.mgrid[0:ny, 0:nx]
    surface = 3000.0 - slope * RES * xx
    outline = (yy >= 5) & (yy < 15) & (xx >= 5) & (xx < 35)
    balance = 0.01 * (surface - 2850.0)
    return surface, outline, balance


@pytest.mark.parametrize("sliding, slope_deg, h_true", [(False, 5.0, 100.0), (True, 5.0, 100.0), (True, 3.0, 250.0)])
def test_uniform_slab_reproduces_hand_computed_thickness(sliding, slope_deg, h_true):
    q, u_d, u_b = _hand_flux(h_true, slope_deg, sliding=sliding)
    if sliding:
        assert u_b > u_d  # with IGM's defaults sliding dominates below ~320 m
    outline = np.zeros((11, 11), dtype=bool)
    outline[1:-1, 1:-1] = True
    h = thickness_from_flux(np.where(outline, q, 0.0), np.full(outline.shape, math.radians(slope_deg)), outline,
                            sliding=sliding)
    assert h[4:-4, 4:-4] == pytest.approx(h_true, rel=5e-3)  # the interior is untouched by the taper
    assert (h[~outline] == 0).all() and h[outline].min() < 0.9 * h_true  # the margin tapers


def test_volume_scales_as_factor_to_minus_one_fifth_without_sliding():
    inputs = InversionInputs.from_surface(*_dome()[:3], RES)
    inputs = InversionInputs(inputs.flux, inputs.slope_rad, inputs.outline, RES, sliding=False)
    v1 = inputs.volume_km3(1.0)
    assert v1 > 0
    for f in (0.1, 0.3, 3.0, 10.0):
        assert inputs.volume_km3(f) / v1 == pytest.approx(f ** -0.2, rel=0.01)
    # with sliding (u_b ~ H^3, q_b ~ H^4) the exponent lies between -1/4 and -1/5
    sliding = InversionInputs(inputs.flux, inputs.slope_rad, inputs.outline, RES)
    ratio = sliding.volume_km3(2.0) / sliding.volume_km3(1.0)
    assert 2.0**-0.25 - 1e-6 <= ratio <= 2.0**-0.2 + 1e-6


def test_apparent_flux_conserves_mass_on_a_tilted_plane():
    surface, outline, balance = _plane()
    q = apparent_flux(surface, outline, balance, RES)
    assert (q[~outline] == 0).all() and (q >= 0).all()
    b_app = balance - balance[outline].mean()
    upstream = np.cumsum(b_app[10, 5:35]) * RES  # m2/a: integral of b~ upstream per unit width
    width_mean = q[5:15, 5:35].mean(axis=0)  # routing across the width keeps the width-total exact
    big = upstream > 0.05 * upstream.max()
    # each cell of the glacier's end is an outlet with its own zero-mean drainage (issue 25): the
    # margins' drainages differ slightly from the centre's, the width-total by < 2 %
    assert width_mean[big] == pytest.approx(upstream[big], rel=2e-2)
    centre = q[10, 5:35]  # the centre line, upstream half: within a few % (lateral spread at margins)
    assert centre[:15] == pytest.approx(upstream[:15], rel=0.05)


def test_a_hollow_in_the_surface_does_not_swallow_the_flux():
    """Issue 25: a closed hollow of the DEM (an artefact at 100 m) kept the flux routed into it, and
    the glacier below got too little; now the hollow's own drainage balances."""
    surface, outline, balance = _plane()
    hollow = surface.copy()
    hollow[9:12, 19:22] -= 100.0  # 300 m wide, mid-glacier; still a hollow after the routing's smoothing
    q = apparent_flux(hollow, outline, balance, RES)
    assert q[9:12, 19:24].min() < 1e-6 * q.max()  # the hollow's bottom passes nothing on, and keeps nothing
    assert q[5:15, 28].sum() > 0  # the glacier below the hollow's drainage is still fed


def test_each_tongue_carries_its_own_balance_to_its_end():
    """Two tongues (two parts of one outline) at different heights: the apparent balance is zero
    over each one's drainage, not over the outline, so neither ends with flux left to pass on."""
    surface, outline, balance = _plane(ny=30)
    outline = outline.copy()
    outline[15:, :] = False
    outline[17:27, 5:35] = True
    surface = np.where(np.arange(30)[:, None] >= 17, surface - 400.0, surface)  # the second part 400 m lower
    balance = 0.01 * (surface - 2850.0)
    q = apparent_flux(surface, outline, balance, RES)
    for rows in (slice(5, 15), slice(17, 27)):
        ends = q[rows, 34]  # the last column: each part's end
        assert ends.max() < 0.02 * q[rows].max()


def test_flux_consistency_is_the_mobility_ratio():
    outline = np.zeros((12, 12), dtype=bool)
    outline[2:-2, 2:-2] = True
    thk = np.where(outline, 100.0, 0.0)
    flux = np.where(outline, 3000.0, 0.0)
    assert flux_consistency(flux, thk, np.where(outline, 30.0 / 4.0, 0.0), outline) == pytest.approx(4.0)
    assert flux_consistency(flux, thk, np.where(outline, 1e-6, 0.0), outline) == FLUX_RATIO_BOUNDS[1]  # bounded
    assert math.isnan(flux_consistency(flux, thk, np.zeros_like(thk), outline))


def test_the_consistency_field_follows_where_the_model_falls_short():
    """A basin the model drains at half the routed flux and a tongue (the east third) at a quarter:
    one ratio is dominated by the basin, the field has ~2 there and ~4 on the tongue, and beyond
    the outline, far from any interior cell, the glacier's one ratio."""
    outline = np.zeros((20, 40), dtype=bool)
    outline[4:16, 4:36] = True
    thk = np.where(outline, 100.0, 0.0)
    flux = np.where(outline, 3000.0, 0.0)
    share = np.where(np.arange(40) >= 26, 0.25, 0.5)[None, :]
    speed = np.where(outline, 30.0 * share, 0.0)
    whole = flux_consistency(flux, thk, speed, outline)
    field = flux_consistency_field(flux, thk, speed, outline, sigma_cells=1.5)
    assert 2.0 < whole < 4.0
    assert field[10, 10] == pytest.approx(2.0, rel=0.02) and field[10, 33] == pytest.approx(4.0, rel=0.02)
    assert field[0, 0] == pytest.approx(whole)
    assert (field >= 0.2).all() and (field <= FLUX_RATIO_BOUNDS[1]).all()
    assert np.isnan(flux_consistency_field(flux, thk, np.zeros_like(thk), outline, 1.5)).all()


def test_apparent_flux_zero_balance_and_empty_outline():
    surface, outline, _ = _plane()
    assert apparent_flux(surface, outline, np.full(surface.shape, -2.0), RES) == pytest.approx(0.0, abs=1e-9)  # b~ = 0
    assert not apparent_flux(surface, np.zeros_like(outline), surface * 0.01, RES).any()
    with pytest.raises(ValueError, match="no data"):
        apparent_flux(np.where(outline, np.nan, surface), outline, surface * 0.0, RES)


def test_dome_thickness_is_thickest_in_the_interior():
    surface, outline, balance, r = _dome()
    h = invert_thickness(surface, outline, balance, RES)
    assert np.isfinite(h).all() and (h >= 0).all()
    assert (h[~outline] == 0).all()
    assert h[outline].mean() > 20.0
    assert h[r < 0.5].mean() > 1.5 * h[r > 0.75].mean()
    assert r.flat[h.argmax()] < 0.5


def _three_glaciers() -> list[InversionInputs]:
    glaciers = [InversionInputs.from_surface(*_dome(n, rad, top)[:3], RES)
                for n, rad, top in ((30, 10.0, 400.0), (40, 15.0, 700.0))]
    surface, outline, balance = _plane()
    return [*glaciers, InversionInputs.from_surface(surface, outline, balance, RES)]


def test_regional_factor_recovers_the_true_factor():
    glaciers = _three_glaciers()
    references = [g.volume_km3(0.3) for g in glaciers]
    assert all(v > 0 for v in references)
    assert regional_factor(glaciers, references) == pytest.approx(0.3, rel=0.01)
    total_at_1 = sum(g.volume_km3(1.0) for g in glaciers)
    assert regional_factor(glaciers, [total_at_1 / 3] * 3) == pytest.approx(1.0, rel=0.01)


def test_regional_factor_refuses_empty_or_unreachable_input():
    glaciers = _three_glaciers()
    with pytest.raises(ValueError, match="at least one glacier"):
        regional_factor([], [])
    with pytest.raises(ValueError, match="below the bounds"):
        regional_factor(glaciers, [1e3, 0.0, 0.0])
    with pytest.raises(ValueError, match="above the bounds"):
        regional_factor(glaciers, [1e-9, 0.0, 0.0])
    with pytest.raises(ValueError, match="reference volumes"):
        regional_factor(glaciers, [1.0])


def test_igm_overrides_scale_deformation_and_sliding_alike():
    arr, tau = "processes.iceflow.physics.viscosity.arrhenius", "processes.iceflow.physics.sliding.tau_ref"
    assert igm_overrides(1.0) == {arr: pytest.approx(78.0), tau: pytest.approx(0.2153697218796329)}
    half = igm_overrides(0.5)
    assert half[arr] == pytest.approx(39.0)
    assert half[tau] == pytest.approx(0.2153697218796329 * 0.5 ** (-1 / 3))
    # the sliding velocity u_ref (tau / tau_ref')^3 is halved too
    assert (0.2153697218796329 / half[tau]) ** 3 == pytest.approx(0.5)
    with pytest.raises(ValueError):
        igm_overrides(0.0)


def test_quantize_factor_is_stable():
    assert quantize_factor(1.0) == 1.0
    f0 = quantize_factor(0.3)
    assert abs(math.log(f0 / 0.3)) <= 0.01 + 1e-12
    assert quantize_factor(f0) == pytest.approx(f0, rel=1e-12)
    assert {quantize_factor(f0 * math.exp(d)) for d in (-0.009, -0.001, 0.0, 0.004, 0.009)} == {f0}
    assert quantize_factor(f0 * math.exp(0.02)) == pytest.approx(f0 * math.exp(0.02), rel=1e-12)
    with pytest.raises(ValueError):
        quantize_factor(-1.0)
