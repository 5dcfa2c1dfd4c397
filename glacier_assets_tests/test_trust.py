"""What makes the thickness trustworthy, on tiny inputs without IGM: outlines compared at their own
dates, a gate that cannot pass on nothing, the spin-up climate, the rheology's reference volumes,
the fit-vs-validation figures and the demo twin's error structure."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from glacier_assets.constants import SPINUP_START, outline_model_time
from glacier_assets.igm_run.calibrate import shift_flag
from glacier_assets.igm_run.simulate import annual_mass_balance, calibration_status
from glacier_assets.inventory import demo_massif, demo_truth
from glacier_assets.inventory.reference import (
    farinotti_volume_km3,
    read_reference_table,
    read_rgi6_outlines,
    reference_volumes,
    rgi6_counterpart,
)
from glacier_assets.inventory.region import ReferenceVolumes
from glacier_assets.science.domain import build_domain, with_rheology
from glacier_assets.science.grids import Grid
from glacier_assets.science.massbalance import profiles_from_ela
from glacier_assets.science.quality import area_gate, validation_summary, validation_table
from glacier_assets.steps.inputs import calibration_targets
from glacier_assets.steps.reports import REPORT_COLUMNS
from glacier_assets.steps.rheology import reference_outline


def _rows(*outlines):
    """Inventory rows of one glacier: (role, year, area)."""
    return gpd.GeoDataFrame(
        [{"glacier_id": "RGI60-13.00001", "role": r, "year": y, "epoch": 0, "area_km2": a, "geometry": box(0, 0, 1, 1)}
         for r, y, a in outlines], crs="EPSG:4326")


def test_outlines_are_targets_at_their_own_dates_even_a_single_one():
    # a single RGI outline of 2003 (any RGI6-only inventory): calibrated to it, at 2004 (end of its balance year)
    assert calibration_targets(_rows(("initial", 2003, 8.0))) == {2004: 8.0}
    rows = _rows(("initial", 1974, 10.0), ("control", 1991, 9.5), ("control", 2001, 9.0), ("control", 2018, 7.0))
    assert calibration_targets(rows) == {1975: 10.0, 1992: 9.5, 2002: 9.0, 2019: 7.0}
    # an initial and a control outline of the same year: the control one is the target
    assert calibration_targets(_rows(("initial", 2000, 5.0), ("control", 2000, 4.0))) == {2001: 4.0}
    # an outline dated before the spin-up starts cannot be a target
    assert calibration_targets(_rows(("initial", SPINUP_START - 5, 5.0), ("control", 2000, 4.0))) == {2001: 4.0}
    assert outline_model_time(2019) == 2020


def _report(rows):
    df = pd.DataFrame(rows)
    for c in REPORT_COLUMNS:
        if c not in df:
            df[c] = np.nan
    return df[REPORT_COLUMNS]


def test_gate_fails_on_nothing_and_on_uncalibrated_glaciers():
    empty = area_gate(_report([]))
    assert not empty.passed and empty.n_comparisons == 0 and "nothing was checked" in empty.note
    ok = _report([{"glacier_id": "A", "rel_diff_pct": 0.5, "glacier_status": "calibrated"},
                  {"glacier_id": "B", "rel_diff_pct": -1.0, "glacier_status": "flagged: tolerance missed at 2010"}])
    gate = area_gate(ok)
    assert gate.passed and gate.mean_abs_diff_pct == pytest.approx(0.75) and gate.n_glaciers == 2
    blocked = area_gate(_report([{"glacier_id": "A", "rel_diff_pct": 0.1, "glacier_status": "uncalibrated"}]))
    assert not blocked.passed and "A" in blocked.note
    # a flagged glacier counts with its misfit: far off, it fails the region
    far = _report([{"glacier_id": "A", "rel_diff_pct": 0.1, "glacier_status": "calibrated"},
                   {"glacier_id": "B", "rel_diff_pct": 40.0, "glacier_status": "flagged: tolerance missed at 2010"}])
    assert not area_gate(far).passed


def test_fit_vs_leave_one_out_and_volume_vs_reference():
    report = _report([
        {"glacier_id": "A", "obs_year": 1975, "rel_diff_pct": 0.2, "loo_rel_diff_pct": -3.0, "volume_km3": 1.0,
         "reference_volume_km3": 1.2, "reference_year": 2000, "glacier_status": "calibrated"},
        {"glacier_id": "A", "obs_year": 2001, "rel_diff_pct": -0.4, "loo_rel_diff_pct": 5.0, "volume_km3": 0.9,
         "reference_volume_km3": 1.2, "reference_year": 2000, "glacier_status": "calibrated"},
        {"glacier_id": "B", "obs_year": 2003, "rel_diff_pct": 1.0, "loo_rel_diff_pct": np.nan, "volume_km3": 0.5,
         "reference_volume_km3": np.nan, "reference_year": np.nan, "glacier_status": "calibrated"},
    ])
    table = validation_table(report).set_index("glacier_id")
    assert table.loc["A", "fit_mean_abs_pct"] == pytest.approx(0.3) and table.loc["A", "loo_mean_abs_pct"] == 4.0
    # the volume at the outline nearest the reference's date (2001) against the reference
    assert table.loc["A", "volume_vs_reference_pct"] == pytest.approx(100 * (0.9 / 1.2 - 1))
    assert np.isnan(table.loc["B", "loo_mean_abs_pct"]) and table.loc["B", "n_loo"] == 0
    summary = validation_summary(report)
    assert summary["area_fit_mean_abs_pct"] == pytest.approx(0.533, abs=1e-3)
    assert summary["area_loo_mean_abs_pct"] == 4.0 and summary["n_left_out"] == 2
    assert summary["n_glaciers_validated"] == 1  # B was not in the validation sample
    assert summary["n_with_reference_volume"] == 1 and summary["volume_vs_reference_pct"] == pytest.approx(-25.0)


def test_implausible_shifts_are_flagged_and_named_in_the_status():
    assert shift_flag(120.0, 60.0) == ""
    assert "beyond +-400" in shift_flag(450.0, 400.0)
    assert "jump +250" in shift_flag(300.0, 50.0)
    rows = [{"obs_year": 1975, "status": "converged", "rel_diff_pct": 0.1, "shift_flag": ""},
            {"obs_year": 2001, "status": "converged", "rel_diff_pct": 0.2, "shift_flag": "jump +250 m beyond +-200 m"}]
    assert calibration_status(rows) == "flagged: implausible shift at 2001 (jump +250 m beyond +-200 m)"
    assert calibration_status(rows[:1]) == "calibrated" and calibration_status([]) == "uncalibrated"
    missed = {"parameter": "balance_gradient_factor", "flag": "geodetic balance missed (-0.49 vs -0.72 +- 0.15 m w.e./a, "
                                                              "balance_gradient_factor 0.5)"}
    assert calibration_status(rows[:1], missed) == "flagged: " + missed["flag"]
    assert calibration_status(rows[:1], {"parameter": "balance_gradient_factor"}) == "calibrated"


def test_spinup_climate_and_the_balanced_first_trial():
    years = np.arange(1960, 2021)
    z = np.arange(4000.0, 7001.0, 10.0)
    ela = np.where(years < 1970, 5500.0, 5800.0)
    prof = profiles_from_ela(years, ela, np.full(61, 0.005), np.full(61, 0.002), np.full(61, 0.5), z)
    # before the forcing: the mean of its first ten years (here the 1960s, ELA 5,500 m)
    np.testing.assert_allclose(prof.at(1935, np.array([5500.0])), [0.0], atol=1e-9)
    np.testing.assert_allclose(prof.profile(1935), prof.profile(1960))
    assert prof.at(1975, np.array([5500.0]))[0] < 0
    # a glacier between 5,300 and 5,900 m is balanced by the spin-up climate shifted to its middle
    cells = np.linspace(5300.0, 5900.0, 61)
    p = prof.balanced_shift(cells)
    assert np.interp(cells - p, z, prof.spinup_profile()).mean() == pytest.approx(0.0, abs=1e-3)


def test_annual_mass_balance_by_hand():
    vol = np.array([1.0, 0.99, 0.985])  # km3
    area = np.array([10.0, 10.0, 9.0])  # km2
    mb = annual_mass_balance(vol, area)
    assert mb[0] == pytest.approx(-0.01 / 10.0 * 1e3 * 0.9)  # -0.9 m w.e.
    assert mb[1] == pytest.approx(-0.005 / 9.5 * 1e3 * 0.9) and np.isnan(mb[2])


def test_a_stiffer_ice_makes_a_thicker_glacier_and_a_deeper_bed():
    grid = Grid("EPSG:32646", 0.0, 3000.0, 100.0, 30, 30)
    X, Y = np.meshgrid(grid.x - 1500, grid.y - 1500)
    r = np.hypot(X, Y)
    dem = 5000.0 + 900.0 * np.exp(-((r / 1100.0) ** 2))
    outline = r < 1000.0
    years = np.arange(1960, 2021)
    prof = profiles_from_ela(years, np.full(61, 5500.0), np.full(61, 0.005), np.full(61, 0.002), np.full(61, 0.5),
                             np.arange(4000.0, 7001.0, 10.0))
    ds = build_domain("RGI60-13.00001", grid, dem, outline, outline, outline, prof)
    soft, stiff = with_rheology(ds, 2.0), with_rheology(ds, 0.2)
    assert stiff.thk.sum() > 1.3 * soft.thk.sum()
    assert float((stiff.dem - stiff.topg).sum()) == pytest.approx(float(stiff.thk.sum()), rel=1e-5)
    assert float(stiff.thk.values[~outline].max()) == 0.0 and stiff.attrs["rheology_factor"] == 0.2


def test_reference_volumes_from_a_table_or_farinotti(tmp_path, shared_data):
    table = tmp_path / "refs.csv"
    table.write_text("glacier_id,volume_km3,year\nRGI60-13.00001,0.5,2001\nRGI60-13.00002,0.25,\n")
    refs = reference_volumes(ReferenceVolumes(table), None, ["RGI60-13.00001", "RGI60-13.00002", "X"], 2000)
    assert refs["RGI60-13.00001"][:2] == (0.5, 2001) and refs["RGI60-13.00002"][:2] == (0.25, 2000)
    assert "X" not in refs
    h5 = shared_data / "oggm_rgi6_meta_farinotti_vol" / "rgi62_itmix_df.h5"
    hef = reference_volumes(None, h5, ["RGI60-11.00897"], 2000)["RGI60-11.00897"]
    assert hef[0] == pytest.approx(0.578, abs=0.001) and "Farinotti" in hef[2]
    bad = tmp_path / "bad.csv"
    bad.write_text("glacier_id,volume_km3\nA,-1\n")
    with pytest.raises(ValueError, match=r"bad.csv: volume_km3 not a positive number for A"):
        read_reference_table(bad)
    bad.write_text("rgi_id,vol\nA,1\n")
    with pytest.raises(ValueError, match=r"no column glacier_id, volume_km3"):
        read_reference_table(bad)


def test_reference_volumes_for_other_rgi_versions_and_divides(shared_data):
    """RGI5 ids (the Ötztal inventory) find their RGI6 glacier's consensus volume; two divides of
    one glacier share it by volume-area scaling; a number whose RGI6 glacier is far too big or
    small for the outline, and an id of another scheme, find nothing (issue 25)."""
    h5 = shared_data / "oggm_rgi6_meta_farinotti_vol" / "rgi62_itmix_df.h5"
    areas = {"RGI50-11.00897": 8.03, "RGI50-11.00719_d01": 6.54, "RGI50-11.00719_d02": 2.02,
             "RGI50-11.00746": 0.05, "RGI2000-v7.0-G-11-03116": 8.0, "5K441M0100": 0.97}
    refs = reference_volumes(None, h5, sorted(areas), 2000, areas)
    assert refs["RGI50-11.00897"][0] == pytest.approx(0.578, abs=0.001) and "RGI6 id" in refs["RGI50-11.00897"][2]
    d01, d02 = refs["RGI50-11.00719_d01"][0], refs["RGI50-11.00719_d02"][0]
    assert d01 + d02 == pytest.approx(farinotti_volume_km3(h5, "RGI60-11.00719"))
    assert d01 / d02 == pytest.approx((6.54 / 2.02) ** 1.375)
    assert set(refs) == {"RGI50-11.00897", "RGI50-11.00719_d01", "RGI50-11.00719_d02"}
    assert rgi6_counterpart("RGI50-11.00719_d02") == "RGI60-11.00719" and rgi6_counterpart("5K441M0100") is None
    # without areas (or for an RGI6 id) nothing changes
    assert reference_volumes(None, h5, ["RGI50-11.00897"], 2000) == {}


def test_reference_volumes_by_location_for_any_id_scheme(tmp_path, shared_data):
    """Given the RGI6 outlines (`reference_volumes: {rgi6_outlines: ...}`), an outline of any id
    scheme gets the consensus volume of the RGI6 glacier it overlaps: HEF's RGI7 outline gets
    RGI60-11.00897's, in any CRS (here the CGI2 inventory's Albers); its two halves share it by
    volume-area scaling; the Ötztal neighbours touching HEF get none of it (issue 25, item 5)."""
    h5 = shared_data / "oggm_rgi6_meta_farinotti_vol" / "rgi62_itmix_df.h5"
    rgi6 = shared_data / "oggm_hef" / "Hintereisferner_RGI6.shp"
    hef = farinotti_volume_km3(h5, "RGI60-11.00897")
    rgi7 = gpd.read_file(shared_data / "oggm_rgi7_hef" / "rgi7g_hef.shp")
    albers = gpd.read_file(shared_data / "oggm_cgi2" / "cgi2.shp").crs
    oetztal = gpd.read_file(shared_data / "oggm_oetztal" / "rgi_oetztal.shp")
    neighbours = oetztal[oetztal["RGIId"] != "RGI50-11.00897"]
    outlines = gpd.GeoSeries([*rgi7.geometry, *neighbours.geometry], crs=rgi7.crs,
                             index=["RGI2000-v7.0-G-11-03116", *[f"N{k}" for k in range(len(neighbours))]]).to_crs(albers)
    refs = reference_volumes(ReferenceVolumes(rgi6_outlines=rgi6), h5, sorted(outlines.index), 2000,
                             outlines=outlines)
    assert set(refs) == {"RGI2000-v7.0-G-11-03116"}  # the neighbours overlap HEF by slivers at most
    vol, year, source = refs["RGI2000-v7.0-G-11-03116"]
    assert vol == pytest.approx(hef) and year == 2000 and source.endswith("by location (RGI60-11.00897)")
    # one outline split in two (as CGI splits what RGI6 holds as one): the halves share it
    geom = outlines.iloc[0]
    x0, y0, x1, y1 = geom.bounds
    x = geom.centroid.x
    halves = [geom.intersection(box(x0 - 1, y0 - 1, x, y1 + 1)), geom.intersection(box(x, y0 - 1, x1 + 1, y1 + 1))]
    pieces = gpd.GeoSeries(halves, index=["5Y000A0001", "5Y000A0002"], crs=albers)
    shared = reference_volumes(ReferenceVolumes(rgi6_outlines=rgi6), h5, list(pieces.index), 2000, outlines=pieces)
    assert sum(v for v, _, _ in shared.values()) == pytest.approx(hef)
    ratio = shared["5Y000A0001"][0] / shared["5Y000A0002"][0]
    assert ratio == pytest.approx((halves[0].area / halves[1].area) ** 1.375, rel=0.01)
    # from an inventory of RGI7 ids, as the ice_rheology asset asks (the outline nearest 2000)
    from glacier_assets.inventory.outlines import build_inventory
    from glacier_assets.inventory.reference import outline_areas, outline_geometries
    from glacier_assets.inventory.region import OutlineSource

    inv = build_inventory((OutlineSource(shared_data / "oggm_rgi7_hef" / "rgi7g_hef.shp", year_column="src_date",
                                         id_column="rgi_id"),), r"^RGI2000-v7\.0-G-\d{2}-\d{5}$").outlines
    refs = reference_volumes(ReferenceVolumes(rgi6_outlines=rgi6), h5, list(inv["glacier_id"]), 2000,
                             outline_areas(inv, 2000), outline_geometries(inv, 2000))
    assert refs["RGI2000-v7.0-G-11-03116"][0] == pytest.approx(hef)
    # a file without RGI6 ids, or neither a table nor outlines, is the spec's error
    bad = tmp_path / "bad.gpkg"
    rgi7.to_file(bad)
    with pytest.raises(ValueError, match=r"bad.gpkg: ids that are not RGI6 ones: RGI2000-v7.0-G-11-03116"):
        read_rgi6_outlines(bad)
    with pytest.raises(ValueError, match="either `path`"):
        ReferenceVolumes()


def test_reference_outline_is_the_one_nearest_the_reference_date():
    rows = _rows(("initial", 1974, 10.0), ("control", 1998, 9.5), ("control", 2002, 9.0))
    assert reference_outline(rows, 2000)["year"] == 2002  # a tie: the later one
    assert reference_outline(rows, 1990)["year"] == 1998


def test_the_twin_does_not_mirror_the_model():
    # its balance law is not the public linear one the model uses
    dz = np.array([-800.0, -200.0, 300.0])
    truth = demo_truth.truth_balance(dz + 5700.0, 5700.0)
    linear = np.minimum(np.where(dz < 0, demo_massif.GRAD_ABL * dz, demo_massif.GRAD_ACC * dz), demo_massif.ACC_MAX)
    assert truth[0] < 1.15 * linear[0] and truth[2] != linear[2]
    # trends within periods: the truth's ELA moves inside a period where the model's shift is constant
    forcing = demo_massif.public_forcing()
    m = demo_massif.DEMO_MOUNTAINS[0]
    offset = [demo_truth.truth_ela(forcing, m.ela_offset_m, y) - float(forcing.set_index("year").ela[y]) for y in (1991, 1999)]
    assert offset[0] != offset[1]
    # outline dates differ between glaciers and from the epochs
    years = [demo_massif.outline_years(m.number) for m in demo_massif.DEMO_MOUNTAINS]
    assert len({y[1970] for y in years}) > 1 and any(y[2000] != 2000 for y in years)
    # digitizing noise: vertices move, the area barely
    from glacier_assets.science.masks import glacier_mask
    from glacier_assets.science.vectorize import mask_to_polygons

    mask = np.zeros((40, 40))
    mask[5:35, 8:30] = 3.0  # metres of ice
    geom = mask_to_polygons(glacier_mask(mask, 7), Grid("EPSG:32646", 0, 1000, 25.0, 40, 40).transform)[7]
    noisy = demo_truth.digitized(geom, np.random.default_rng(0))
    assert noisy.is_valid and noisy.area != geom.area and abs(noisy.area / geom.area - 1) < 0.05
    # reference volumes: noisy per glacier, unbiased for the region
    truth_km3 = {f"G{i}": v for i, v in enumerate([0.1, 0.5, 1.0, 2.0, 0.3])}
    refs = demo_truth.reference_volumes(truth_km3)
    assert sum(refs.values()) == pytest.approx(sum(truth_km3.values()))
    assert max(abs(refs[g] / v - 1) for g, v in truth_km3.items()) > 0.05


def test_skill_figures_by_hand():
    from glacier_assets.science.skill import mass_balance_skill, thickness_skill

    sim = np.array([[10.0, 20.0], [30.0, 0.0]])
    obs = np.array([[12.0, 18.0], [np.nan, 0.0]])  # no data and ice-free cells are not compared
    s = thickness_skill(sim, obs)
    assert s["n"] == 2 and s["bias_m"] == 0.0 and s["rmse_m"] == 2.0 and s["mean_observed_m"] == 15.0
    with pytest.raises(ValueError, match="no observed thickness"):
        thickness_skill(sim, np.zeros_like(sim))
    m = mass_balance_skill(pd.Series([-0.5, -1.0, -0.2], index=[2000, 2001, 2002]),
                           pd.Series([-0.7, -0.8, np.nan, -1.2], index=[2000, 2001, 2002, 2003]))
    assert m["n_years"] == 2 and m["bias_mwe"] == pytest.approx(0.0) and m["rmse_mwe"] == pytest.approx(0.2)
    assert m["correlation"] == pytest.approx(1.0)  # both fall from 2000 to 2001


def test_a_bad_reference_table_stops_the_spec_and_names_it(tmp_path, demo_region):
    import shutil

    from glacier_assets.inventory.region import RegionSpecError, load_region_spec

    region = tmp_path / "region"
    shutil.copytree(demo_region.parent, region)
    (region / "reference_volumes.csv").write_text("glacier_id,volume_km3\nA,-1\n")
    with pytest.raises(RegionSpecError, match=r"reference_volumes.path: reference volumes .*reference_volumes.csv: "
                                               r"volume_km3 not a positive number for A"):
        load_region_spec(region / "region.yaml")


def test_geodetic_balances_by_hand_and_in_the_validation(tmp_path):
    from glacier_assets.inventory.reference import read_geodetic_table
    from glacier_assets.science.skill import geodetic_balance

    # 0.1 km3 lost over a mean 10 km2 in 20 years: 10 m of ice, 8.5 m w.e., 0.425 m w.e. a-1
    assert geodetic_balance(1.0, 0.9, 10.5, 9.5, 20) == pytest.approx(-0.425)
    report = pd.DataFrame([{c: np.nan for c in REPORT_COLUMNS} | {"glacier_id": g, "rel_diff_pct": 0.1,
                                                                   "glacier_status": "calibrated"} for g in "AB"])
    geo = pd.DataFrame({"glacier_id": ["A", "B"], "start": 2000, "end": 2020, "geodetic_mb_mwe": [-0.4, -0.2],
                        "simulated_mb_mwe": [-0.5, -0.2], "mean_area_km2": [30.0, 10.0],
                        "mb_calibration": ["", "balance_gradient_factor 1.2 from 2000, converged"]})
    table = validation_table(report, geo)
    assert table.set_index("glacier_id")["mb_diff_mwe"].to_dict() == pytest.approx({"A": -0.1, "B": 0.0})
    summary = validation_summary(report, geo)  # area-weighted: -0.35 observed, -0.425 simulated
    assert summary["geodetic_mb_mwe"] == -0.35 and summary["simulated_mb_mwe"] == -0.425
    assert summary["mb_diff_mwe"] == -0.075 and summary["mb_rmse_mwe"] == pytest.approx(0.071, abs=1e-3)
    assert summary["n_geodetic_calibrated"] == 1  # B's figure is a fit, A's a validation
    assert validation_summary(report)["n_geodetic"] == 0
    (tmp_path / "g.csv").write_text("glacier_id,start,end,dmdtda_mwe\nA,2020,2000,-0.3\n")
    with pytest.raises(ValueError, match="start < end and a number in dmdtda_mwe needed for A"):
        read_geodetic_table(tmp_path / "g.csv")


def test_the_twins_geodetic_balances_are_the_truths_with_their_error(demo_region):
    """Made as real ones are: the truth's 2000-2020 change at 850 kg m-3, plus a seeded error."""
    truth = pd.read_csv(demo_region.parent / "truth" / "truth.csv").set_index(["glacier_id", "year"])
    geo = pd.read_csv(demo_region.parent / "geodetic_mass_balance.csv").set_index("glacier_id")
    assert len(geo) == 12 and (geo["start"] == 2000).all() and (geo["end"] == 2020).all()
    from glacier_assets.science.skill import geodetic_balance

    err = [geo.loc[g, "dmdtda_mwe"] - geodetic_balance(truth.loc[(g, 2000), "volume_km3"], truth.loc[(g, 2020), "volume_km3"],
                                                       truth.loc[(g, 2000), "area_km2"], truth.loc[(g, 2020), "area_km2"], 20)
           for g in geo.index]
    assert 0.05 < np.std(err) < 0.3 and abs(np.mean(err)) < 0.15  # sigma 0.15 m w.e. a-1, unbiased


def test_a_large_region_validates_a_fixed_random_sample_of_its_glaciers(monkeypatch):
    """With a validation share below 1 the leave-one-out runs on that share of the glaciers,
    chosen by their ids alone: the same ones every run, a larger share keeping a smaller one's."""
    from glacier_assets.definitions import resources
    from glacier_assets.igm_run.settings import IGMSettings, validates
    from glacier_assets.science.quality import in_validation_sample

    ids = [f"RGI60-13.{k:05d}" for k in range(2000)]
    tenth = {g for g in ids if in_validation_sample(g, 0.1)}
    assert 140 <= len(tenth) <= 260  # ~200: a binomial draw, 4 sigma either side
    assert tenth == {g for g in ids if in_validation_sample(g, 0.1)}
    assert tenth < {g for g in ids if in_validation_sample(g, 0.3)}
    assert all(in_validation_sample(g, 1.0) for g in ids[:50])
    assert validates(IGMSettings(validation_share=0.1), min(tenth))
    assert not validates(IGMSettings(validation_share=0.1), min(set(ids) - tenth))
    assert not validates(IGMSettings(leave_one_out=False), min(tenth))
    monkeypatch.setenv("GLACIER_VALIDATION_SHARE", "0.25")
    assert resources()["igm"].validation_share == 0.25
    monkeypatch.setenv("GLACIER_VALIDATION_SHARE", "10%")
    with pytest.raises(ValueError, match="GLACIER_VALIDATION_SHARE='10%'"):
        resources()
