"""A glacier's model domain and the region's rheology on a tiny region without IGM: two square
glaciers side by side, a DEM that is a plane, an ELA table (tiny.py). What a domain is laid out
from, what it holds, what its fingerprint depends on, the rheology factor, the fingerprints
expected from today's inputs, and the mask codes (steps/domain.py, steps/inputs.py, steps/rheology.py)."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from glacier_assets.constants import MODEL_RESOLUTION_M, RHEOLOGY_FACTOR_STEP
from glacier_assets.errors import GlacierError
from glacier_assets.inventory.outlines import build_inventory
from glacier_assets.inventory.region import load_region_spec
from glacier_assets.science.masks import glacier_code
from glacier_assets.science.quality import in_validation_sample
from glacier_assets.steps.domain import domain_fingerprint, domain_layout, glacier_rows, make_domain
from glacier_assets.steps.inputs import expected_fingerprints, geodetic_targets, observed_areas, simulation_inputs
from glacier_assets.steps.rheology import (
    calibrate_rheology,
    dynamic_factor,
    inversion_inputs,
    rheology_fingerprint,
    rheology_sample,
)

from .tiny import A_CODE, ELA_M, UTM, X0, Y0, A, B, dem_surface, write_tiny_region

ALBERS_KM2 = 1.0008  # a square km of UTM, 0.9996 in scale near its central meridian


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    spec = load_region_spec(write_tiny_region(tmp_path_factory.mktemp("tiny") / "region", {A: 0.02}))
    return spec, build_inventory(spec.outlines, spec.id_pattern).outlines


def _moved(inv, glacier_id, km):
    """The inventory with a glacier's outlines `km` further east."""
    inv = inv.copy()
    rows = inv["glacier_id"] == glacier_id
    inv.loc[rows, "geometry"] = inv.loc[rows].to_crs(UTM).translate(xoff=km * 1000.0).to_crs(inv.crs)
    return inv


def test_the_inventory_of_the_tiny_region(tiny):
    _, inv = tiny
    assert sorted(zip(inv["glacier_id"], inv["role"], inv["year"])) == [(A, "control", 2000), (A, "initial", 1974),
                                                                       (B, "initial", 1974)]
    areas = inv.set_index(["glacier_id", "year"])["area_km2"]
    assert areas[(A, 1974)] == pytest.approx(ALBERS_KM2, abs=1e-4)
    assert areas[(A, 2000)] == pytest.approx(0.64 * ALBERS_KM2, abs=1e-4)
    assert areas[(B, 1974)] == pytest.approx(0.36 * ALBERS_KM2, abs=1e-4)


def test_glacier_rows_name_what_is_missing(tiny):
    _, inv = tiny
    assert sorted(glacier_rows(inv, A)["year"]) == [1974, 2000]
    with pytest.raises(GlacierError, match=r"glacier RGI60-13.00009: not in the outline inventory"):
        glacier_rows(inv, "RGI60-13.00009")
    with pytest.raises(GlacierError, match=rf"glacier {A}: no initial outline"):
        glacier_rows(inv[inv["role"] == "control"], A)


def test_the_layout_a_snapped_utm_grid_and_the_neighbours_in_it(tiny):
    _, inv = tiny
    rows, grid, others = domain_layout(A, inv)
    assert grid.crs == UTM and grid.res == MODEL_RESOLUTION_M
    # 15 cells (1.5 km) of border around the outlines, on multiples of 100 m (one more where the
    # outlines' round trip through EPSG:4326 moved an edge by a hair across a multiple)
    for low, high, edge_low, edge_high in ((grid.xmin, grid.xmax, X0, X0 + 1000),
                                           (grid.ymin, grid.ymax, Y0, Y0 + 1000)):
        assert edge_low - 1600.0 <= low <= edge_low - 1500.0 and edge_high + 1500.0 <= high <= edge_high + 1600.0
        assert low % 100.0 == 0 and high % 100.0 == 0
    assert list(others["glacier_id"]) == [B] and sorted(rows["year"]) == [1974, 2000]
    assert list(domain_layout(B, inv)[2]["glacier_id"]) == [A]
    assert domain_layout(A, _moved(inv, B, 20))[2].empty  # 20 km away: no longer in A's grid
    assert domain_layout(A, inv, margin_m=500.0)[1].xmin == X0 - 500.0


def test_the_domain_holds_the_dem_the_outlines_and_the_balance(tiny, tmp_path):
    spec, inv = tiny
    figures = make_domain(A, inv, spec, tmp_path / "domain.nc")
    assert figures["crs"] == UTM and figures["resolution_m"] == 100.0 and figures["border_cells"] == 15
    assert figures["grid_area_km2"] == 1.0 and figures["area_km2"] == pytest.approx(ALBERS_KM2, abs=1e-4)
    assert figures["dem_void_cells_filled"] == 0 and figures["dem_filled_pct"] == 0.0 and figures["dem_flag"] == ""
    assert figures["forcing"] == "ela_table" and figures["fingerprint"] == domain_fingerprint(A, inv, spec)
    assert figures["volume_km3"] > 0 and 0 < figures["max_thickness_m"] < 200
    with xr.open_dataset(tmp_path / "domain.nc") as ds:
        assert list(ds["y"].shape + ds["x"].shape) == figures["shape"]
        assert ds.attrs["crs"] == UTM and ds.attrs["glacier_id"] == A
        assert (ds.attrs["initial_outline_year"], ds.attrs["bed_outline_year"]) == (1974, 2000)
        assert int(ds["outline_initial"].sum()) == 100  # the 1 km square: 10 x 10 cells
        assert int(ds["outline_bed"].sum()) == 64  # the outline nearest the DEM's year (2000): 8 x 8
        # snow may lie on the glacier's own outlines only, never on B's
        icemask = ds["icemask"].values > 0
        X, Y = np.meshgrid(ds["x"].values, ds["y"].values)
        on_a = (X > X0) & (X < X0 + 1000) & (Y > Y0) & (Y < Y0 + 1000)
        on_b = (X > X0 + 1000) & (X < X0 + 1600) & (Y > Y0 + 200) & (Y < Y0 + 800)
        assert on_b.sum() == 36 and np.array_equal(icemask, on_a)
        # the DEM, averaged from 50 m, is the plane at the cell centres
        np.testing.assert_allclose(ds["dem"].values, dem_surface(X, Y), atol=0.01)
        # the balance is zero at the ELA every year
        at_ela = [np.interp(ELA_M, ds["mb_z"].values, b) for b in ds["mb_profile"].values]
        np.testing.assert_allclose(at_ela, 0.0, atol=1e-6)
        thk = ds["thk"].values
        assert thk[ds["outline_initial"].values == 0].max() == 0 and thk[ds["outline_initial"].values > 0].min() > 0


def test_an_outline_that_covers_no_cell_centre_is_named(tiny, tmp_path):
    spec, inv = tiny
    inv = inv.copy()
    rows = inv["glacier_id"] == B
    speck = gpd.GeoSeries.from_xy([X0 + 1530.0], [Y0 + 530.0], crs=UTM).buffer(10.0)  # 20 m across
    inv.loc[rows, "geometry"] = speck.to_crs(inv.crs).values
    with pytest.raises(GlacierError, match=rf"glacier {B}: the initial outline covers no 100 m cell centre"):
        make_domain(B, inv, spec, tmp_path / "domain.nc")
    assert not (tmp_path / "domain.nc").exists()


def test_the_domain_fingerprint_follows_what_the_domain_is_made_of(tiny, tmp_path):
    spec, inv = tiny
    fp = domain_fingerprint(A, inv, spec)
    assert domain_fingerprint(A, _moved(inv, B, 0.1), spec) != fp  # a neighbour in its grid moved
    far = domain_fingerprint(A, _moved(inv, B, 20), spec)
    assert far != fp and domain_fingerprint(A, _moved(inv, B, 21), spec) == far  # one outside it: not read
    assert domain_fingerprint(A, _moved(inv, A, 0.1), spec) != fp
    # the forcing's content, not its name
    other = load_region_spec(write_tiny_region(tmp_path / "copy"))
    assert domain_fingerprint(A, inv, other) == fp
    table = pd.read_csv(tmp_path / "copy" / "mass_balance.csv")
    table.loc[table["year"] == 1999, "ela"] += 10.0
    table.to_csv(tmp_path / "copy" / "mass_balance.csv", index=False)
    assert domain_fingerprint(A, inv, load_region_spec(tmp_path / "copy" / "region.yaml")) != fp


def test_the_rheology_factor_recovers_the_one_behind_the_reference_volume(tiny):
    spec, inv = tiny
    inputs = inversion_inputs(A, inv, spec, 2000)
    assert inputs.volume_km3(0.5) > inputs.volume_km3(1.0) > 0  # softer ice: thinner
    record = calibrate_rheology(inv, spec, {A: (inputs.volume_km3(0.5), 2000, "table")})
    assert record["factor"] == pytest.approx(0.5, rel=RHEOLOGY_FACTOR_STEP)
    assert record["raw_factor"] == pytest.approx(0.5, rel=1e-3)
    assert record["n_glaciers"] == 1 and record["skipped"] == {} and record["source"] == ["table"]
    (row,) = record["glaciers"]
    assert row["year"] == 2000 and row["inverted_km3"] == pytest.approx(row["reference_km3"], rel=0.01)
    # a reference for a glacier the inventory lacks is left out and named
    record = calibrate_rheology(inv, spec, {A: (inputs.volume_km3(0.5), 2000, "table"),
                                            "RGI60-13.00009": (1.0, 2000, "table")})
    assert record["skipped"] == {"RGI60-13.00009": "glacier RGI60-13.00009: not in the outline inventory"}
    assert record["factor"] == pytest.approx(0.5, rel=RHEOLOGY_FACTOR_STEP)
    none = calibrate_rheology(inv, spec, {})
    assert none["factor"] == 1.0 and none["raw_factor"] is None and "volume not constrained" in none["note"]


def test_the_rheology_fingerprint_follows_the_references(tiny):
    spec, inv = tiny
    fp = rheology_fingerprint(inv, spec, {A: (0.02, 2000, "table")})
    assert rheology_fingerprint(inv, spec, {A: (0.02, 2000, "table")}) == fp
    assert rheology_fingerprint(inv, spec, {A: (0.021, 2000, "table")}) != fp
    assert rheology_fingerprint(inv, spec, {A: (0.02, 1974, "table")}) != fp  # another outline
    assert rheology_fingerprint(_moved(inv, B, 0.1), spec, {A: (0.02, 2000, "table")}) == fp  # B has no reference


def test_expected_fingerprints_per_glacier(tiny):
    spec, inv = tiny
    settings = {"seed": 0, "rheology_factor": 0.5}
    out = expected_fingerprints(inv, spec, "emulator-fp", settings)
    assert sorted(out) == [A, B] and out[A]["domain"] == domain_fingerprint(A, inv, spec)
    assert len({out[A]["simulation"], out[B]["simulation"]}) == 2
    assert expected_fingerprints(inv, spec, "emulator-fp", None)[A] == {"domain": out[A]["domain"], "simulation": None}
    assert expected_fingerprints(inv, spec, "emulator-fp", {**settings, "rheology_factor": 0.52})[A]["simulation"] \
        != out[A]["simulation"]
    assert expected_fingerprints(inv, spec, "emulator-fp", settings, [B]) == {B: out[B]}
    # a glacier whose outlines cannot make a domain (one 300 km away) has none; the other keeps its own
    broken = _moved(inv, A, 300)
    broken.loc[(broken["glacier_id"] == A) & (broken["role"] == "initial"), "geometry"] = \
        inv.loc[(inv["glacier_id"] == A) & (inv["role"] == "initial"), "geometry"].values
    far = expected_fingerprints(broken, spec, "emulator-fp", settings)
    assert far[A] == {"domain": None, "simulation": None} and far[B]["domain"] is not None


def test_a_validation_share_re_runs_only_the_glaciers_it_adds_or_drops(tiny):
    """Below 1 the share enters a glacier's simulation fingerprint as whether it validates: at 0.5
    (B in the sample, A not) B keeps the fingerprint it had at 1 and A gets the one it has without
    the leave-one-out; raising the share to 0.7 brings A back to its validated fingerprint."""
    spec, inv = tiny
    assert not in_validation_sample(A, 0.5) and in_validation_sample(B, 0.5) and in_validation_sample(A, 0.7)
    settings = {"seed": 0, "rheology_factor": 0.5, "leave_one_out": True}
    every = expected_fingerprints(inv, spec, "emulator-fp", settings)
    none = expected_fingerprints(inv, spec, "emulator-fp", {**settings, "leave_one_out": False})
    half = expected_fingerprints(inv, spec, "emulator-fp", {**settings, "validation_share": 0.5})
    assert half[B] == every[B] and half[A] == none[A] != every[A]
    assert expected_fingerprints(inv, spec, "emulator-fp", {**settings, "validation_share": 0.7}) == every
    off = expected_fingerprints(inv, spec, "emulator-fp", {**settings, "leave_one_out": False, "validation_share": 0.5})
    assert off == none


def test_what_a_simulation_is_calibrated_to(tiny, tmp_path):
    _, inv = tiny
    rows = glacier_rows(inv, A)
    areas = observed_areas(rows)
    assert sorted(areas) == [1975, 2001]  # each outline at the start of the year after its date
    assert areas[1975] == pytest.approx(ALBERS_KM2, abs=1e-4)
    assert areas[2001] == pytest.approx(0.64 * ALBERS_KM2, abs=1e-4)
    geodetic = pd.DataFrame({"glacier_id": [A, B], "start": 2000, "end": 2020, "dmdtda_mwe": [-0.5, -0.3],
                             "err_mwe": [0.1, np.nan]})
    spec = load_region_spec(write_tiny_region(tmp_path / "geo", geodetic=geodetic))
    targets = geodetic_targets(spec)
    assert targets == {A: {"start": 2000, "end": 2020, "mwe": -0.5, "err": 0.1},
                       B: {"start": 2000, "end": 2020, "mwe": -0.3}}
    assert simulation_inputs(rows, targets, A) == (areas, targets[A])
    assert simulation_inputs(rows.iloc[:0], targets, A) == ({}, None)  # no outline to calibrate to: no balance either
    only_compared = load_region_spec(write_tiny_region(tmp_path / "cmp", geodetic=geodetic, calibrate_geodetic=False))
    assert geodetic_targets(only_compared) == {}


def test_mask_codes_come_from_the_ids(tiny):
    _, inv = tiny
    assert glacier_code(A) == A_CODE and glacier_code(B) == 1_300_002
    assert glacier_code("G-a") == glacier_code("G-a") != glacier_code("G-b")  # not RGI: a hash of the id, stable


def test_the_rheology_sample_stands_for_where_the_ice_is():
    # one large glacier holds half the volume, nine small ones the rest: it is in the sample
    refs = {"big": 9.0, **{f"s{i}": 1.0 for i in range(9)}}
    sample = rheology_sample(refs, 3)
    assert len(sample) == 3 and "big" in sample and sample == sorted(sample)
    assert rheology_sample(refs, 3) == sample  # the same answer each time: the fingerprint relies on it
    assert rheology_sample({"a": 1.0, "b": 2.0}, 3) == ["a", "b"]  # no more than the sample: all
    assert rheology_sample(refs, 0) == [] and rheology_sample({}, 3) == []


def test_the_dynamic_factor_gives_the_simulations_the_inverted_volume():
    # simulations 10 % thicker than their inversion: ice 1.1^5 more mobile makes them 10 % thinner
    factor, ratio = dynamic_factor(0.2, {"a": 1.0, "b": 3.0, "c": 5.0}, {"a": 1.2, "b": 3.2})
    assert ratio == pytest.approx(4.4 / 4.0)  # c was not simulated: it does not count
    assert factor == pytest.approx(0.2 * 1.1**5, rel=RHEOLOGY_FACTOR_STEP)
    assert dynamic_factor(0.2, {"a": 1.0}, {"a": 1.0}) == (pytest.approx(0.2, rel=RHEOLOGY_FACTOR_STEP), 1.0)
    with pytest.raises(ValueError, match="at least one"):
        dynamic_factor(0.2, {"a": 1.0}, {})
    with pytest.raises(ValueError, match="not usable"):
        dynamic_factor(0.2, {"a": 1.0}, {"a": 0.0})
