"""The whole chain materialized in process on two demo glaciers with real, short IGM runs."""

import json
from pathlib import Path

import dagster as dg
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from rio_cogeo.cogeo import cog_validate

from glacier_assets.constants import (
    EPOCHS,
    PRODUCT_RESOLUTION_M,
    THICKNESS_NODATA,
    mask_relpath,
    outline_relpath,
    regional_outline_relpath,
    simulation_relpath,
    thickness_relpath,
)
from glacier_assets.inventory.demo_truth import GEODETIC_ERROR_MWE  # the twin's balances' error
from glacier_assets.partitions import GLACIERS
from glacier_assets.science.masks import glacier_code
from glacier_assets.steps.epoch import read_thickness

from .conftest import DEMO_PAIR, range_tags

pytestmark = pytest.mark.igm


def _latest(instance, key: str, partition: str):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition]), limit=1).records
    return records[0].asset_materialization.metadata


def test_inventory_registers_glacier_partitions(demo_chain):
    instance = demo_chain["instance"]
    # the inventory holds the whole region; `include` only limits the partitions registered
    assert sorted(instance.get_dynamic_partitions(GLACIERS)) == list(DEMO_PAIR)
    md = demo_chain["results"]["setup"].asset_materializations_for_node("outline_inventory")[0].metadata
    assert md["n_glaciers"].value == 12 and md["n_outlines"].value == 60 and md["n_rejected"].value == 0
    # materializing again is idempotent: nothing new is registered
    again = dg.materialize(demo_chain["defs"].assets, selection=["outline_inventory"], instance=instance,
                           resources=demo_chain["defs"].resources)
    assert again.asset_materializations_for_node("outline_inventory")[0].metadata["partitions_added"].value == 0
    assert sorted(instance.get_dynamic_partitions(GLACIERS)) == list(DEMO_PAIR)


def test_domain_and_simulation(demo_chain):
    products = demo_chain["products"]
    res = demo_chain["results"]["simulate"]  # one ranged run: each glacier's own metadata
    for gid in DEMO_PAIR:
        (dom,) = [m for m in res.asset_materializations_for_node("glacier_domain") if m.partition == gid]
        (sim,) = [m for m in res.asset_materializations_for_node("igm_simulation") if m.partition == gid]
        dom_md = dom.metadata
        assert dom_md["crs"].value == "EPSG:32646" and dom_md["resolution_m"].value == 100.0
        assert dom_md["volume_km3"].value > 0
        sim_md = sim.metadata
        assert sim_md["process_glaciers"].value == 2 and sim_md["path"].value.endswith(f"{gid}.nc")
        assert sim_md["device"].value.startswith(("CPU", "GPU"))
        assert sim_md["version_igm-model"].value.startswith("3.2")
        with xr.open_dataset(products / simulation_relpath(gid)) as sim:
            assert [int(t) for t in sim.time.values] == list(EPOCHS)
            thk = sim.thk.values
        assert np.isfinite(thk).all() and (thk >= 0).all()
        assert thk[0].sum() > 0 and thk[-1].sum() > 0
        # the simulation moves: thickness changes between 1960 and 2020
        assert np.abs(thk[-1] - thk[0]).max() > 1.0
        assert sim_md["volume_km3"].value == pytest.approx(thk[-1].sum() * 1e4 / 1e9, rel=1e-3, abs=1e-5)  # rounded


def test_products_are_batched_and_per_partition(demo_chain):
    instance = demo_chain["instance"]
    for year in (1970, 2020):
        result = demo_chain["results"][year]
        assert result.success
        # one run made the products of both glaciers, each with its own materialization and path
        mats = [e for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
        parts = sorted((e.asset_key.to_user_string(), e.partition) for e in mats)
        assert parts == sorted((k, f"{year}|{g}") for k in ("thickness_25m", "glacier_mask", "glacier_outline")
                               for g in DEMO_PAIR)
        # bulk event writes (deploy.EVENT_BATCHING): one planned event per asset, covering the range
        planned = instance.get_records_for_run(
            result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED).records
        assert len(planned) == 3
        data = planned[0].event_log_entry.dagster_event.event_specific_data
        assert sorted(data.partitions_subset.get_partition_keys()) == sorted(f"{year}|{g}" for g in DEMO_PAIR)
    # each partition of a range result carries its own metadata
    paths = {g: _latest(instance, "glacier_outline", f"2020|{g}")["path"].value for g in DEMO_PAIR}
    assert all(paths[g].endswith(f"{g}_2020.parquet") for g in DEMO_PAIR), paths
    md = _latest(instance, "thickness_25m", f"2020|{DEMO_PAIR[0]}")
    assert md["path"].value.endswith(f"thickness/2020/{DEMO_PAIR[0]}_2020.tif")


@pytest.mark.parametrize("gid", DEMO_PAIR)
@pytest.mark.parametrize("year", (1970, 2020))
def test_thickness_mask_outline_agree(demo_chain, gid, year):
    products, instance = demo_chain["products"], demo_chain["instance"]
    tif = products / thickness_relpath(gid, year)
    assert tif.name == f"{gid}_{year}.tif" and tif.parent.name == str(year)
    assert cog_validate(str(tif))[0]
    with rasterio.open(tif) as src:
        assert src.crs.to_epsg() == 32646 and src.res == (PRODUCT_RESOLUTION_M, PRODUCT_RESOLUTION_M)
        assert src.nodata == THICKNESS_NODATA
        raw = src.read(1)
    valid = raw != THICKNESS_NODATA
    # cropped to the valid extent: every edge row and column holds ice
    assert valid[0].any() and valid[-1].any() and valid[:, 0].any() and valid[:, -1].any()
    thk, _ = read_thickness(tif)
    ice_px = int((thk >= 2.0).sum())
    t_md = _latest(instance, "thickness_25m", f"{year}|{gid}")
    assert t_md["area_km2"].value == pytest.approx(ice_px * 625 / 1e6, abs=1e-5)
    assert t_md["volume_km3"].value == pytest.approx(thk.sum() * 625 / 1e9, abs=1e-6)  # rounded to 1e-6
    with rasterio.open(products / mask_relpath(gid, year)) as src:
        mask = src.read(1)
    assert set(np.unique(mask)) == {0, glacier_code(gid)}
    assert int((mask != 0).sum()) == ice_px
    outline = gpd.read_parquet(products / outline_relpath(gid, year))
    assert outline.crs.to_epsg() == 32646 and list(outline.glacier_id) == [gid]
    # polygon area equals the mask's pixel area
    assert outline.geometry.iloc[0].area == pytest.approx(ice_px * 625.0, rel=1e-9)


@pytest.mark.parametrize("year", (1970, 2020))
def test_regional_outlines_albers(demo_chain, year):
    products = demo_chain["products"]
    assert demo_chain["results"]["regional"].success
    shp = gpd.read_file(products / regional_outline_relpath(year, "shp"))
    pq = gpd.read_parquet(products / regional_outline_relpath(year, "parquet"))
    assert sorted(shp.glacier_id) == sorted(DEMO_PAIR) == sorted(pq.glacier_id)
    assert shp.crs.to_dict()["proj"] == "aea"
    assert shp.crs.to_dict()["lon_0"] == 105 and shp.crs.to_dict()["lat_1"] == 25 and shp.crs.to_dict()["lat_2"] == 47
    utm = pd.concat([gpd.read_parquet(products / outline_relpath(g, year)) for g in DEMO_PAIR])
    # equal-area Albers vs UTM (scale ~0.9996 here): areas agree within 0.2 %
    np.testing.assert_allclose(shp.sort_values("glacier_id").area_km2.values,
                               utm.sort_values("glacier_id").area_km2.values, rtol=2e-3)


def test_regional_outlines_leave_out_an_incomplete_glacier_and_name_it(demo_chain, tmp_path):
    """An epoch where a glacier has no outline is made from the others; the glacier is listed."""
    import shutil

    products, defs, instance = demo_chain["products"], demo_chain["defs"], demo_chain["instance"]
    moved = tmp_path / "outline.parquet"
    src = products / outline_relpath(DEMO_PAIR[1], 1990)
    shutil.move(src, moved)
    try:
        result = defs.resolve_job_def("regional_products").execute_in_process(
            instance=instance, partition_key="1990", raise_on_error=False)
        assert result.success
        md = _latest(instance, "regional_outlines", "1990")
        assert md["n_glaciers"].value == 1 and md["incomplete_glaciers"].value == [DEMO_PAIR[1]]
        assert list(gpd.read_parquet(products / regional_outline_relpath(1990, "parquet")).glacier_id) == [DEMO_PAIR[0]]
    finally:
        shutil.move(moved, src)
    again = defs.resolve_job_def("regional_products").execute_in_process(instance=instance, partition_key="1990")
    assert again.success and _latest(instance, "regional_outlines", "1990")["n_glaciers"].value == 2


def test_one_bad_glacier_does_not_stop_the_others(demo_chain):
    """A third glacier registered without a simulation fails by name, step and cause, and is
    recorded as failed; the others in the batch still get (here: keep) their products."""
    from glacier_assets.ledger import clear_glacier, read_failures

    instance, products = demo_chain["instance"], demo_chain["products"]
    ghost = "RGI60-13.90011"
    instance.add_dynamic_partitions(GLACIERS, [ghost])
    try:
        before = {g: (products / thickness_relpath(g, 2000)).read_bytes() for g in DEMO_PAIR}
        result = demo_chain["defs"].resolve_job_def("glacier_epoch_products").execute_in_process(
            instance=instance, raise_on_error=False,
            tags=range_tags(f"2000|{DEMO_PAIR[0]}", f"2000|{ghost}"))
        assert not result.success
        msg = [e for e in result.all_events if e.is_step_failure][0].step_failure_data.error.message
        assert f"{ghost} 2000 [glacier_products]: no simulation" in msg
        assert DEMO_PAIR[0] not in msg and DEMO_PAIR[1] not in msg
        assert [r["step"] for r in read_failures(products)[ghost]] == ["glacier_products"]
        for gid in DEMO_PAIR:  # the good glaciers were current: reused as they were, and recorded
            assert (products / thickness_relpath(gid, 2000)).read_bytes() == before[gid]
            assert _latest(instance, "glacier_outline", f"2000|{gid}")["reused"].value is True
        done = instance.get_materialized_partitions(dg.AssetKey("glacier_outline"))
        assert f"2000|{DEMO_PAIR[0]}" in done and f"2000|{ghost}" not in done
    finally:
        instance.delete_dynamic_partition(GLACIERS, ghost)
        clear_glacier(products, ghost)


def _no_missed_outline(status: str) -> bool:
    """Calibrated, or flagged only for what the twin's noise may bring: a shift jump between periods
    or a geodetic balance the outlines leave out of reach; never a missed outline."""
    reasons = [] if status == "calibrated" else status.removeprefix("flagged: ").split("; ")
    return status.startswith(("calibrated", "flagged: ")) and all(
        r.startswith(("implausible shift at ", "geodetic balance missed (")) for r in reasons)


def test_calibration_meets_the_control_outlines_and_recovers_the_truth(demo_chain):
    products = demo_chain["products"]
    report = pd.read_csv(products / "reports" / "calibration.csv")
    assert set(report.glacier_id) == set(DEMO_PAIR)
    # every outline, compared at its own date (year + 1), not at the nearest epoch
    assert len(report) == 10 and (report.model_time == report.obs_year + 1).all()
    assert (report.obs_year != report.epoch).any()
    assert (report.status == "converged").all()
    status = report.groupby("glacier_id").glacier_status.first()
    # both meet every outline; whether a shift jumps by more than the 200 m flag limit, and which
    # glacier's geodetic reference the outlines leave out of reach (RGI60-13.90008's is 2.6 sigma off
    # its truth and was until issue 25; with the products in the model's ice cells and flow
    # consistency it is RGI60-13.90010's), is the calibration's noise (bench/RESULTS.md): each is
    # flagged and published, never hidden (test_gates_pass_and_products_are_published)
    assert all(_no_missed_outline(status[g]) for g in DEMO_PAIR), status.to_dict()
    # each outline also predicted with it left out of the calibration: out of sample, so larger
    assert report.loo_rel_diff_pct.notna().all() and report.loo_rel_diff_pct.abs().mean() < 15.0
    assert report.loo_rel_diff_pct.abs().mean() > report.rel_diff_pct.abs().mean()
    # every period within 1 % or one 100 m model cell (16 pixels of 625 m2)
    assert ((report.rel_diff_pct.abs() <= 1.0) | ((report.sim_area_km2 - report.obs_area_km2).abs() <= 0.01 + 1e-9)).all()
    assert (report.iou > 0.75).all()  # 0.4 km2 glaciers: 100 m model cells vs 25 m outlines
    assert report.d_ela_m.notna().all() and (report.iterations >= 1).all()
    # the hidden truth of the demo region at the outlines' dates: areas recovered within the
    # outlines' digitizing noise (measured up to 5.2 %: RGI60-13.90008's 0.39 km2 outline of 2011,
    # drawn on the truth's 100 m cells since issue 25, loses more to the vertices' noise)
    truth = pd.read_csv(demo_chain["region"].parent / "truth" / "outlines.csv")
    merged = report.merge(truth, on=["glacier_id", "obs_year"])
    assert len(merged) == 10
    assert (100 * (merged.sim_area_km2 - merged.area_km2).abs() / merged.area_km2).max() < 6.5
    (md,) = [m.metadata for m in demo_chain["results"]["simulate"].asset_materializations_for_node("igm_simulation")
             if m.partition == DEMO_PAIR[0]]
    assert md["calibration_status"].value == status[DEMO_PAIR[0]]
    assert md["area_plot"].value.startswith("![")  # the area/volume plot, embedded
    assert md["thickness_maps"].value.startswith("![")  # a thickness map per epoch
    reg = _latest(demo_chain["instance"], "regional_outlines", "2020")
    assert reg["outline_map"].value.startswith("![") and reg["n_glaciers"].value == 2
    assert (products / "reports" / "plots" / f"{DEMO_PAIR[0]}.png").exists()


def test_gates_pass_and_products_are_published(demo_chain):
    result = demo_chain["results"]["publish"]
    assert result.success
    evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evals) >= {"area_agreement_gate", "glacier_area_warning", "thickness_check", "consistency_check",
                          "outline_check", "missing_check", "published_outlines_schema",
                          "published_outlines_expectations"}
    shape = evals.pop("glacier_shape_warning")  # a warning: glaciers flagged for their shape still publish
    assert shape.severity == dg.AssetCheckSeverity.WARN and shape.metadata["iou_median"].value > 0.5
    assert all(e.passed for e in evals.values()), {k: e.metadata for k, e in evals.items() if not e.passed}
    gate = evals["area_agreement_gate"].metadata
    assert gate["regional_mean_abs_diff_pct"].value <= 2.8
    docs = evals["published_outlines_expectations"].metadata["data_docs"].value
    assert docs.endswith("index.html") and Path(docs).exists()
    catalog = demo_chain["products"].parent / "catalog" / "current"
    assert (catalog / "outlines" / "2020" / "2020.zip").exists() and (catalog / "catalog.json").exists()
    # fit vs out-of-sample validation: an asset with a plot, and the figures in the STAC collections
    val = result.asset_materializations_for_node("validation_report")[0].metadata
    assert val["plot"].value.startswith("![") and val["n_left_out"].value == 10
    assert val["area_loo_mean_abs_pct"].value > val["area_fit_mean_abs_pct"].value
    quality = json.loads((catalog / "thickness" / "collection.json").read_text())["glacier_assets:quality"]
    assert quality["area_loo_mean_abs_pct"] == val["area_loo_mean_abs_pct"].value
    assert quality["rheology"]["factor"] > 0 and quality["rheology"]["n_glaciers"] == 12  # the whole region
    assert quality["rheology"]["inversion_factor"] == quality["rheology"]["factor"]  # no sample here
    assert quality["n_with_reference_volume"] == 2 and quality["area_gate_pct"] == 2.8
    # where the ice is (issue 25): the region's shape figures, and each glacier's on its items
    assert 0.5 < quality["iou_median"] <= quality["ceiling_iou_median"] <= 1.0
    assert 0.0 <= quality["tongue_covered_median"] <= 1.0 and quality["n_shape_flagged"] >= 0
    item = json.loads((catalog / thickness_relpath(DEMO_PAIR[0], 1990)).with_suffix(".json").read_text())
    assert item["properties"]["glacier_assets:iou"] <= item["properties"]["glacier_assets:ceiling_iou"]
    assert "glacier_assets:tongue_covered" in item["properties"] and "glacier_assets:shape_flag" in item["properties"]
    # each glacier's 2000-2020 balance calibrated to the twin's geodetic one by its balance gradient
    assert val["n_geodetic"].value == 2 and val["n_geodetic_calibrated"].value == 2
    table = pd.read_csv(demo_chain["products"] / "reports" / "validation.csv").set_index("glacier_id")
    assert table["mb_calibration"].str.startswith("balance_gradient_factor").all(), table["mb_calibration"]
    # the balance is a noisy function of the factor (each trial solves the later shifts again, each
    # landing anywhere within the area tolerance: measured up to 0.09 m w.e./a between factors 0.01
    # apart; and a platform's rounding moves where the search ends: 0.131 off at factor 1.9 on one
    # machine, within 0.1 on another), so the 0.02 aim is met or nearly (status "best"). The
    # contract: a glacier is flagged exactly when its balance is missed by more than its error
    # (the twin's 0.15), the best trial kept; out of reach, the search ends at a bound (0.5-2)
    reached = 0
    for g in DEMO_PAIR:
        calib, diff, flagged = table.loc[g, "mb_calibration"], table.loc[g, "mb_diff_mwe"], table.loc[g, "status"]
        assert calib.endswith(("converged", "best")), calib
        missed = abs(diff) > GEODETIC_ERROR_MWE
        assert ("geodetic balance missed (" in flagged) == missed, (g, diff, flagged)
        reached += not missed
        if abs(diff) > 2 * GEODETIC_ERROR_MWE:  # far out of reach: the factor went to a bound
            assert calib.startswith(("balance_gradient_factor 0.5 ", "balance_gradient_factor 2.0 ")), (g, calib)
    assert reached >= 1  # the calibration does reach a balance
    assert quality["n_geodetic"] == 2 and quality["mb_rmse_mwe"] == val["mb_rmse_mwe"].value
    assert (catalog / thickness_relpath(DEMO_PAIR[0], 1990)).exists()


def test_epochs_no_outline_constrains_against_the_truth(demo_chain):
    """The twin's hidden truth at the epochs no outline is near (out of sample for the area), and
    its volume, which only the regional reference volumes constrain (tolerances: what was
    measured on these two small glaciers, with room for a platform's rounding)."""
    from glacier_assets.science.resample import product_area_km2

    truth = pd.read_csv(demo_chain["region"].parent / "truth" / "truth.csv").set_index(["glacier_id", "year"])
    vol, true_vol = {}, {}
    for gid in DEMO_PAIR:
        with xr.open_dataset(demo_chain["products"] / simulation_relpath(gid)) as sim:
            for year, thk in zip(sim.time.values, sim.thk.values):
                t = truth.loc[(gid, int(year))]
                if int(year) in (1960, 1965, 1975, 1980, 1985, 1995, 2005, 2015):
                    # measured up to 10.0 % (RGI60-13.90008 in 1960, 0.44 vs 0.40 km2, 17 years before its
                    # first outline)
                    assert abs(product_area_km2(thk, 100.0) / t.area_km2 - 1) < 0.12, (gid, int(year))
                vol[int(year)] = vol.get(int(year), 0.0) + float(thk.sum()) * 1e4 / 1e9
                true_vol[int(year)] = true_vol.get(int(year), 0.0) + t.volume_km3
    assert abs(vol[1960] / true_vol[1960] - 1) < 0.1
    # the 1960s are model states: the volume changes 1960 -> 1970 with the truth's sign
    assert np.sign(vol[1970] - vol[1960]) == np.sign(true_vol[1970] - true_vol[1960])
