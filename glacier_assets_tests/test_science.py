"""The science on small arrays whose answers can be checked by hand."""

import numpy as np
import pytest
from shapely.geometry import box

from glacier_assets.science.grids import Grid, snapped_grid, utm_crs_for
from glacier_assets.science.masks import (
    DIVIDE_STEP,
    HASHED_BASE,
    RGI7_BASE,
    check_codes,
    glaciated_area_km2,
    glacier_code,
    glacier_mask,
    volume_km3,
)
from glacier_assets.science.massbalance import (
    BalanceProfiles,
    TemperatureIndexParams,
    equilibrium_line_altitude,
    monthly_balance,
    profiles_from_ela,
)
from glacier_assets.science.resample import bilinear_refine, cropped_thickness, valid_window
from glacier_assets.science.sia import run_sia
from glacier_assets.science.vectorize import mask_to_polygons


def test_bilinear_reproduces_a_linear_field_and_clamps_at_edges():
    coarse = np.array([[0.0, 4.0], [8.0, 12.0]])  # f(row, col) = 8 row + 4 col
    fine = bilinear_refine(coarse, 2)
    # fine centres sit at coarse index -0.25, 0.25, 0.75, 1.25 -> clamped to 0, 0.25, 0.75, 1
    pos = np.array([0.0, 0.25, 0.75, 1.0])
    expected = 8 * pos[:, None] + 4 * pos[None, :]
    assert fine.shape == (4, 4)
    np.testing.assert_allclose(fine, expected)


def test_a_single_ice_cell_stays_within_its_own_footprint_at_25m():
    """Bilinear from the model grid, then clipped to the model's ice cells (the seed's "valid
    simulated area"): the interpolation does not carry ice into the ice-free neighbours."""
    thk = np.zeros((5, 5))
    thk[2, 2] = 100.0
    grid = Grid("EPSG:32646", 1000.0, 2000.0, 100.0, 5, 5)
    fine, fgrid = cropped_thickness(thk, grid, 4)
    # the fine centres within cell 2 lie at coarse offsets +-0.125, +-0.375 from its centre
    assert fine.shape == (4, 4)
    assert fgrid.res == 25.0 and fgrid.width == 4
    assert fgrid.xmin == pytest.approx(1000 + 2 * 100) and fgrid.ymax == pytest.approx(2000 - 2 * 100)
    assert fine.max() == pytest.approx(100 * 0.875**2)
    assert fine.min() == pytest.approx(100 * 0.625**2)
    assert cropped_thickness(np.zeros((3, 3)), grid, 4) is None
    thin = np.where(thk > 0, 1.9, 0.0)  # below the masks' 2 m: no model ice, no product ice
    assert cropped_thickness(thin, grid, 4) is None


def test_valid_window():
    v = np.zeros((4, 6), bool)
    v[1, 2] = v[2, 4] = True
    assert valid_window(v) == (1, 3, 2, 5)
    assert valid_window(np.zeros((2, 2), bool)) is None


def test_mask_threshold_is_inclusive_and_coded():
    thk = np.array([[0.0, 1.99, 2.0], [5.0, np.nan, 2.01]])
    m = glacier_mask(thk, 1301234)
    np.testing.assert_array_equal(m, [[0, 0, 1301234], [1301234, 0, 1301234]])
    assert m.dtype == np.int32
    assert glaciated_area_km2(thk, 625.0) == pytest.approx(3 * 625 / 1e6)
    assert volume_km3(np.array([[10.0, -1.0]]), 625.0) == pytest.approx(10 * 625 / 1e9)
    with pytest.raises(ValueError):
        glacier_mask(thk, 0)


def test_glacier_codes_come_from_the_id_alone_and_never_overlap():
    assert glacier_code("RGI60-13.01234") == 1301234
    assert glacier_code("RGI60-11.00897") == 1100897
    assert glacier_code("RGI50-11.00719_d02") == 1100719 + 2 * DIVIDE_STEP  # a divide of an RGI 5 glacier
    assert glacier_code("RGI2000-v7.0-G-11-01234") == RGI7_BASE["G"] + 1101234
    assert glacier_code("RGI2000-v7.0-C-11-01234") == RGI7_BASE["C"] + 1101234
    other = glacier_code("5K441M0100")  # any other id: a hash, the same in every inventory
    assert other == glacier_code("5K441M0100") and HASHED_BASE <= other < 2**31
    ranges = [glacier_code("RGI60-19.99999"), glacier_code("RGI60-19.99999_d99"),
              glacier_code("RGI2000-v7.0-G-19-99999"), glacier_code("RGI2000-v7.0-C-19-99999"), other]
    assert ranges == sorted(ranges) and ranges[-2] < HASHED_BASE and glacier_code("RGI60-01.00001") > 0
    assert check_codes(["RGI60-13.00001", "G-a", "G-b"]) == {g: glacier_code(g) for g in ("RGI60-13.00001", "G-a", "G-b")}


def test_two_ids_with_one_code_are_named(monkeypatch):
    from glacier_assets.science import masks

    monkeypatch.setattr(masks.zlib, "crc32", lambda b: 7)  # every hashed id collides
    with pytest.raises(ValueError, match="glaciers G-a and G-b have the same mask code"):
        masks.check_codes(["G-a", "G-b"])


def test_vectorize_keeps_holes_and_pixel_area():
    mask = np.zeros((5, 5), np.int32)
    mask[1:4, 1:4] = 7
    mask[2, 2] = 0  # a hole
    mask[0, 4] = 7  # a separate pixel, diagonal to nothing
    transform = Grid("EPSG:32646", 0.0, 125.0, 25.0, 5, 5).transform
    polys = mask_to_polygons(mask, transform)
    geom = polys[7]
    assert geom.area == pytest.approx(9 * 625.0)  # 8 ring pixels + 1 separate
    assert len(geom.geoms) == 2
    assert sum(len(p.interiors) for p in geom.geoms) == 1


def test_ela_profiles_and_shift():
    z = np.arange(5000.0, 6001.0, 10.0)
    p = profiles_from_ela(np.array([2000]), np.array([5500.0]), np.array([0.005]), np.array([0.002]),
                          np.array([0.5]), z)
    assert p.at(2000, np.array([5400.0]))[0] == pytest.approx(-0.5)
    assert p.at(2000, np.array([5600.0]))[0] == pytest.approx(0.2)
    assert p.at(2000, np.array([5900.0]))[0] == pytest.approx(0.5)  # capped
    assert p.at(2000, np.array([5600.0]), d_ela=100.0)[0] == pytest.approx(0.0)
    assert equilibrium_line_altitude(z, p.b[0]) == pytest.approx(5500.0)
    assert p.ela(2000) == pytest.approx(5500.0)
    with pytest.raises(ValueError):
        BalanceProfiles(np.array([2000]), z, np.full((1, z.size), np.nan))


def test_temperature_index_month_by_hand():
    params = TemperatureIndexParams(ddf_mm_per_day_k=5.0)
    z = np.array([4000.0])
    cold = monthly_balance(np.array([-10.0]), np.array([100.0]), np.array([30.0]), 4000.0, z, params)
    assert cold[0, 0] == pytest.approx(100.0)  # all snow, no melt
    warm = monthly_balance(np.array([10.0]), np.array([100.0]), np.array([30.0]), 4000.0, z, params)
    assert warm[0, 0] == pytest.approx(-5.0 * 30 * 11)  # rain, melt above -1 C
    mid = monthly_balance(np.array([1.0]), np.array([100.0]), np.array([30.0]), 4000.0, z, params)
    assert mid[0, 0] == pytest.approx(50.0 - 5.0 * 30 * 2)  # half solid at 1 C


def test_utm_zones_and_snapped_grids():
    assert utm_crs_for(91.10, 33.45) == "EPSG:32646"
    assert utm_crs_for(10.76, 46.80) == "EPSG:32632"
    assert utm_crs_for(-70.0, -33.0) == "EPSG:32719"
    g = snapped_grid("EPSG:32646", (1030.0, 2010.0, 1270.0, 2290.0), 100.0, 2)
    assert (g.xmin, g.xmax, g.ymin, g.ymax) == (800.0, 1500.0, 1800.0, 2500.0)
    assert g.shape == (7, 7)
    assert g.refined(4).shape == (28, 28)
    assert box(*g.bounds).contains(box(1030, 2010, 1270, 2290))


def test_sia_conserves_mass_without_balance_and_spreads_a_bump():
    n, dx = 40, 100.0
    bed = np.zeros((n, n))
    thk = np.zeros((n, n))
    thk[15:25, 15:25] = 200.0
    final, saved = run_sia(bed, thk, dx, lambda y, s: np.zeros_like(s), 0.0, 20.0, save_years=(0, 10, 20))
    assert set(saved) == {0, 10, 20}
    assert final.sum() == pytest.approx(thk.sum(), rel=1e-6)
    assert final.max() < 200.0 and np.count_nonzero(final > 1) > 100


def test_margin_cap_matches_the_product_area_to_the_outline():
    from glacier_assets.science.resample import product_area_km2
    from glacier_assets.science.thickness import margin_ring, match_product_area

    ice = np.zeros((30, 30), bool)
    ice[8:22, 6:24] = True
    assert margin_ring(ice).sum() == 2 * 14 + 2 * 18 - 4
    h = np.where(ice, 60.0, 0.0)
    outline_km2 = ice.sum() * 1e4 / 1e6  # 100 m cells
    assert product_area_km2(h, 100.0) == pytest.approx(outline_km2)  # the ice stays within its cells
    target = 0.95 * outline_km2
    fitted = match_product_area(h, 100.0, target)  # a thinner ring: less of it >= 2 m at 25 m
    # a ring capped evenly loses its footprint's outer 25 m rows in steps: within one such row
    assert product_area_km2(fitted, 100.0) == pytest.approx(target, abs=margin_ring(ice).sum() * 4 * 625 / 1e6)
    assert (fitted[~margin_ring(ice)] == h[~margin_ring(ice)]).all()  # only the margin ring changes


def test_melt_mask_keeps_the_outlines_and_the_valley_below_the_tongue():
    """Issue 25: outside the glacier's outlines the balance is forced negative, except down-valley
    of its lowest fifth (where the tongue reached before the outline's date)."""
    from glacier_assets.science.domain import melt_mask

    yy, xx = np.mgrid[0:30, 0:30]
    dem = 3500.0 - 20.0 * xx  # a valley falling eastwards
    own = (xx >= 5) & (xx < 20) & (yy >= 10) & (yy < 20)
    melt = melt_mask(own.astype("float32"), dem, 100.0, 0.0, 500.0)
    assert not melt[own].any()
    assert melt[own.shape[0] // 2, 3]  # up-valley of the glacier: melt
    assert melt[5, 10]  # beside it (higher than its lowest fifth): melt
    assert not melt[15, 22] and melt[15, 27]  # below its end: kept within 500 m, melt beyond
    assert not melt_mask(np.zeros((5, 5)), np.zeros((5, 5)), 100.0, 0.0, 500.0).any()
