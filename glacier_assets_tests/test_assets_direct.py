"""The assets themselves on the tiny region (tiny.py), without IGM: invoked directly with
`dagster.build_asset_context` (the outline inventory, the rheology, the domains, the regional
outlines, the audit and the calibration report), and the batched per-epoch products through one
ranged `dagster.materialize`. The IGM simulation is replaced by files in its layout that carry
the fingerprint igm_simulation would give them from these inputs, so the region-wide steps
count the glaciers as current.

The simulated ice is 50 m thick on each glacier's initial outline at every epoch: A's 10 x 10
model cells give (4 * 10 + 4)^2 - 4 = 1932 cells of 25 m, B's 6 x 6 cells 780; where A's east
edge meets B's west edge both spread 50 m over it, on 110 cells (B's 28 rows by 4 columns, less
its two corners).
"""

import json
import shutil

import dagster as dg
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from glacier_assets.assets.inventory import outline_inventory
from glacier_assets.assets.products import epoch_products, regional_outlines
from glacier_assets.assets.quality import calibration_report, product_audit
from glacier_assets.assets.rheology import ice_rheology
from glacier_assets.assets.simulation import glacier_domain
from glacier_assets.constants import (
    CALIBRATION_REPORT_RELPATH,
    EPOCHS,
    INVENTORY_RELPATH,
    PRODUCT_AUDIT_RELPATH,
    RHEOLOGY_RELPATH,
    domain_relpath,
    outline_relpath,
    regional_outline_relpath,
    simulation_relpath,
)
from glacier_assets.fingerprints import product_fingerprint
from glacier_assets.ledger import read_failures, record_failure
from glacier_assets.resources import IGMRunner, ProductStore, RegionSource
from glacier_assets.science.grids import Grid
from glacier_assets.steps.domain import domain_fingerprint
from glacier_assets.steps.inputs import expected_fingerprints
from glacier_assets.storage import netcdf_attrs, read_parquet_metadata

from .tiny import A_CODE, B_CODE, CELL_KM2, A, B, write_fake_simulation, write_tiny_region

# the fake simulations' 50 m of ice on the outlines' 100 m cells, 16 product cells each (the product
# stays within the model's ice cells: science/resample.py); A and B touch and do not overlap
A_KM2, B_KM2, TWICE_KM2 = 1600 * CELL_KM2, 576 * CELL_KM2, 0.0
GHOST = "RGI60-13.00009"


def _md(result) -> dict:
    """A result's metadata as plain values (an AssetMaterialization holds them as MetadataValues,
    a MaterializeResult as given)."""
    return {k: v.value if isinstance(v, dg.MetadataValue) else v for k, v in (result.metadata or {}).items()}


def _context(resources: dict, **kwargs):
    return dg.build_asset_context(resources=resources, **kwargs)


def _fake_simulation(store: ProductStore, gid: str, fingerprint: str, targets: list[int]) -> None:
    """Ice 50 m thick on the glacier's initial outline at every epoch, and at each outline's
    model time on that outline (the initial or the one of 2000, the domain's bed outline)."""
    with xr.open_dataset(store.path(domain_relpath(gid))) as dom:
        grid = Grid.from_xy(dom.attrs["crs"], dom["x"].values, dom["y"].values)
        initial = np.where(dom["outline_initial"].values > 0, 50.0, 0.0)
        bed = np.where(dom["outline_bed"].values > 0, 50.0, 0.0)
    calibration = [{"obs_year": t - 1, "d_ela_m": 0.0, "iterations": 3, "status": "converged", "shift_flag": ""}
                   for t in targets]
    write_fake_simulation(store.path(simulation_relpath(gid)), grid, {y: initial for y in EPOCHS}, glacier_id=gid,
                          outline_thk={t: initial if t < 2000 else bed for t in targets}, calibration=calibration,
                          fingerprint=fingerprint)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """The tiny chain made once: every asset up to the per-epoch products, each result kept."""
    root = tmp_path_factory.mktemp("assets")
    spec = write_tiny_region(root / "region", {A: 0.02})
    store = ProductStore(root=str(root / "products"), catalog_root=str(root / "catalog"))
    region, igm = RegionSource(spec=str(spec)), IGMRunner(rheology_sample=0)  # no IGM here: the inversion's factor
    resources = {"store": store, "region": region, "igm": igm}
    out = {"root": root, "store": store, "region": region, "igm": igm}
    with dg.DagsterInstance.ephemeral() as instance:
        out["inventory"] = list(outline_inventory(_context(resources, instance=instance)))
        out["inventory_again"] = list(outline_inventory(_context(resources, instance=instance)))
        out["partitions"] = instance.get_dynamic_partitions("glaciers")
        out["rheology"] = ice_rheology(_context(resources))
        out["rheology_again"] = ice_rheology(_context(resources))
        for gid in (A, B):
            out[gid] = list(glacier_domain(_context(resources, instance=instance, partition_key=gid)))
            out[f"{gid} again"] = list(glacier_domain(_context(resources, instance=instance, partition_key=gid)))
        inventory = gpd.read_parquet(store.path(INVENTORY_RELPATH))
        factor = json.loads(store.path(RHEOLOGY_RELPATH).read_text())["factor"]
        expected = expected_fingerprints(inventory, region.load(), igm.emulator_fingerprint(),
                                         igm.simulation_settings(float(factor)))
        _fake_simulation(store, A, expected[A]["simulation"], [1975, 2001])
        _fake_simulation(store, B, expected[B]["simulation"], [1975])
        out["products"] = dg.materialize([epoch_products], resources={"store": store}, instance=instance,
                                         tags={"dagster/asset_partition_range_start": f"{EPOCHS[0]}|{A}",
                                               "dagster/asset_partition_range_end": f"{EPOCHS[-1]}|{B}"})
    yield out


@pytest.fixture
def products(chain, tmp_path):
    """The chain's products, copied for one test to change: the resources that point at them."""
    shutil.copytree(chain["store"].path(""), tmp_path / "products")
    store = ProductStore(root=str(tmp_path / "products"), catalog_root=str(tmp_path / "catalog"))
    return {"store": store, "region": chain["region"], "igm": chain["igm"]}


def test_the_inventory_asset_registers_the_glaciers_and_is_not_rebuilt(chain):
    match, inventory = chain["inventory"]
    assert (match.asset_key.path, inventory.asset_key.path) == (["outline_match"], ["outline_inventory"])
    md = _md(inventory)
    assert (md["n_glaciers"], md["n_outlines"], md["n_rejected"], md["partitions_added"]) == (2, 3, 0, 2)
    assert md["area_km2"] == pytest.approx(1.36 * 1.0008, abs=2e-3) and md["reused"] is False
    assert inventory.data_version == dg.DataVersion(md["fingerprint"])
    assert chain["partitions"] == [A, B]
    again = _md(chain["inventory_again"][1])
    assert again["reused"] is True and again["partitions_added"] == 0 and again["fingerprint"] == md["fingerprint"]


def test_the_rheology_asset_calibrates_once(chain):
    result, again = chain["rheology"], chain["rheology_again"]
    md = _md(result)
    assert (md["n_glaciers"], md["reference_km3"], md["reused"]) == (1, 0.02, False)
    assert md["reference_source"] == "reference_volumes.csv"
    record = json.loads(chain["store"].path(RHEOLOGY_RELPATH).read_text())
    assert md["factor"] == record["factor"] and result.data_version == dg.DataVersion(str(record["factor"]))
    assert record["glaciers"][0]["inverted_km3"] == pytest.approx(0.02, rel=0.01)  # the factor meets the reference
    assert _md(again)["reused"] is True and _md(again)["factor"] == md["factor"]


def test_the_domain_asset_per_glacier_and_not_made_twice(chain):
    store, region = chain["store"], chain["region"]
    inventory = gpd.read_parquet(store.path(INVENTORY_RELPATH))
    for gid, area in ((A, 1.0), (B, 0.36)):
        (result,) = chain[gid]
        fp = domain_fingerprint(gid, inventory, region.load())
        assert _md(result)["grid_area_km2"] == area and _md(result)["reused"] is False
        assert result.data_version == dg.DataVersion(fp)
        assert netcdf_attrs(store.path(domain_relpath(gid)))["fingerprint"] == fp
        (again,) = chain[f"{gid} again"]
        assert _md(again)["reused"] is True and again.data_version == dg.DataVersion(fp)


def test_a_glacier_the_inventory_lacks_fails_by_name_and_is_recorded(products):
    store = products["store"]
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("glaciers", [GHOST])
        ctx = _context({"store": store, "region": products["region"]}, instance=instance, partition_key=GHOST)
        with pytest.raises(dg.Failure) as failed:
            list(glacier_domain(ctx))
    assert failed.value.description == f"{GHOST} [glacier_domain]: not in the outline inventory"
    (record,) = read_failures(store.path(""))[GHOST]
    assert (record["step"], record["message"]) == ("glacier_domain", "not in the outline inventory")


def test_the_per_epoch_products_of_a_ranged_run(chain):
    result, store = chain["products"], chain["store"]
    assert result.success
    found = {(m.asset_key.path[0], m.partition): _md(m)
             for m in result.asset_materializations_for_node("epoch_products")}
    assert len(found) == 3 * 2 * len(EPOCHS)
    for gid, area in ((A, A_KM2), (B, B_KM2)):
        md = found[("glacier_outline", f"1990|{gid}")]
        assert md["area_km2"] == pytest.approx(area) and md["n_holes"] == 0
        assert found[("thickness_25m", f"1990|{gid}")]["max_thickness_m"] == 50.0
        assert found[("glacier_mask", f"1990|{gid}")]["code"] == (A_CODE if gid == A else B_CODE)
        sim_fp = netcdf_attrs(store.path(simulation_relpath(gid)))["fingerprint"]
        code = A_CODE if gid == A else B_CODE
        for year in EPOCHS:  # each outline says which simulation its epoch's three products come from
            assert read_parquet_metadata(store.path(outline_relpath(gid, year)))["fingerprint"] == \
                product_fingerprint(sim_fp, year, code)


def test_a_big_ranged_run_records_each_assets_range_at_once(products, monkeypatch):
    """Above PARTITION_METADATA_MAX partitions the run records every partition through one
    result per asset (Dagster writes them in bulk), with the range's figures."""
    from glacier_assets.assets import products as P

    monkeypatch.setattr(P, "PARTITION_METADATA_MAX", 3)
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("glaciers", [A, B])
        result = dg.materialize([epoch_products], resources={"store": products["store"]}, instance=instance,
                                tags={"dagster/asset_partition_range_start": f"{EPOCHS[0]}|{A}",
                                      "dagster/asset_partition_range_end": f"{EPOCHS[-1]}|{B}"})
        assert result.success
        for key in ("thickness_25m", "glacier_mask", "glacier_outline"):
            assert len(instance.get_materialized_partitions(dg.AssetKey(key))) == 2 * len(EPOCHS)
    found = {m.asset_key.path[0]: _md(m) for m in result.asset_materializations_for_node("epoch_products")}
    outline = found["glacier_outline"]
    assert outline["partitions"] == 2 * len(EPOCHS) and outline["reused"] == 2 * len(EPOCHS)  # made by `chain`
    assert P.range_figures([{"area_km2": 1.5}, {"area_km2": 2.0, "vanished": True}, {"reused": True}]) == {
        "partitions": 3, "reused": 1, "vanished": 1, "total_area_km2_made": 3.5,
        "per_partition": "in each product's file (outline GeoParquet: area, fingerprint)"}


def test_a_glacier_without_simulation_fails_alone_in_the_products(products):
    store = products["store"]
    ghost = "RGI60-13.00003"
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("glaciers", [ghost])
        ctx = _context({"store": store}, instance=instance, partition_key=f"2000|{ghost}")
        with pytest.raises(dg.Failure) as failed:
            list(epoch_products(ctx))
    assert failed.value.description.startswith(
        f"glacier products: 1 failed: {ghost} 2000 [glacier_products]: no simulation at ")
    (record,) = read_failures(store.path(""))[ghost]
    assert (record["step"], record["epoch"]) == ("glacier_products", 2000)


def test_the_regional_outlines_asset_makes_one_epoch_and_reuses_it(products):
    with dg.DagsterInstance.ephemeral() as instance:
        (first,) = regional_outlines(_context(products, instance=instance, partition_key="1990"))
        (again,) = regional_outlines(_context(products, instance=instance, partition_key="1990"))
    md = _md(first)
    assert first.asset_key.path == ["regional_outlines"] and first.partition == "1990"
    assert (md["n_glaciers"], md["overlapping_pairs"], md["overlap_area_km2"]) == (2, 0, 0.0)
    assert md["area_km2"] == pytest.approx(A_KM2 + B_KM2 - TWICE_KM2, rel=2e-3)
    assert md["mosaicked_overlap_km2"] == pytest.approx(TWICE_KM2, rel=2e-3)
    assert md["n_glaciers_current"] == 2 and md["incomplete_glaciers"] == [] and md["reused"] is False
    parquet = products["store"].path(regional_outline_relpath(1990, "parquet"))
    assert read_parquet_metadata(parquet)["fingerprint"] == md["fingerprint"]
    assert _md(again)["reused"] is True and _md(again)["fingerprint"] == md["fingerprint"]
    assert _md(again)["area_km2"] == md["area_km2"]


def test_the_regional_outlines_leave_out_incomplete_and_failed_glaciers(products):
    store = products["store"]
    store.path(outline_relpath(B, 1995)).unlink()
    with dg.DagsterInstance.ephemeral() as instance:
        (result,) = regional_outlines(_context(products, instance=instance, partition_key="1995"))
        md = _md(result)
        assert md["n_glaciers"] == 1 and md["incomplete_glaciers"] == [B] and md["n_glaciers_current"] == 1
        assert md["area_km2"] == pytest.approx(A_KM2, rel=2e-3)
        record_failure(store.path(""), A, "igm_simulation", "boom")
        with pytest.raises(dg.Failure) as failed:
            list(regional_outlines(_context(products, instance=instance, partition_key="1995")))
    assert failed.value.description.startswith("regional outlines: no glacier has complete, current products")
    assert failed.value.metadata["failed_glaciers"].data == [{"glacier_id": A, "reason": "igm_simulation: boom"}]


def test_products_of_an_older_rheology_are_stale_not_published(products):
    """Another rheology factor means other simulations: the products on disk are from older inputs."""
    path = products["store"].path(RHEOLOGY_RELPATH)
    path.write_text(json.dumps({**json.loads(path.read_text()), "factor": 0.9}))
    with dg.DagsterInstance.ephemeral() as instance, pytest.raises(dg.Failure) as failed:
        list(regional_outlines(_context(products, instance=instance, partition_key="2000")))
    assert failed.value.metadata["stale_glaciers"].data == [A, B]
    assert failed.value.metadata["n_glaciers_current"].value == 0
    assert not products["store"].path(regional_outline_relpath(2000, "parquet")).exists()


def test_the_audit_and_the_calibration_report_of_the_current_glaciers(products):
    store = products["store"]
    with dg.DagsterInstance.ephemeral() as instance:
        list(regional_outlines(_context(products, instance=instance, partition_key="2000")))
        audit = _md(product_audit(_context(products, instance=instance)))
        report = _md(calibration_report(_context(products, instance=instance)))
    assert (audit["n_rows"], audit["n_missing_products"], audit["n_vanished"]) == (2 * len(EPOCHS), 0, 0)
    assert audit["max_thickness_m"] == 50.0 and audit["max_mask_outline_diff_pct"] == 0.0
    assert audit["published_outline_rows"] == 2  # the one regional file made, 2000
    table = pd.read_csv(store.path(PRODUCT_AUDIT_RELPATH))
    assert table["thickness_ok"].all() and table["off_glacier_zero"].all() and table["mask_codes_ok"].all()
    # the calibration report: each outline at its own model time; the products' 25 m masks against
    # the outlines rasterized at 25 m (on these 100 m-aligned squares, the same cells)
    rows = pd.read_csv(store.path(CALIBRATION_REPORT_RELPATH)).set_index(["glacier_id", "obs_year"])
    inventory = gpd.read_parquet(store.path(INVENTORY_RELPATH)).set_index(["glacier_id", "year"])
    expected = {(A, 1974): (A_KM2, 1.0), (A, 2000): (1024 * CELL_KM2, 1.0), (B, 1974): (B_KM2, 1.0)}
    assert sorted(rows.index) == sorted(expected) and report["n_glaciers"] == 2
    diffs = []
    for key, (sim_km2, iou) in expected.items():
        obs = inventory.loc[key, "area_km2"]
        diffs.append(100 * (sim_km2 - obs) / obs)
        assert rows.loc[key, "sim_area_km2"] == pytest.approx(sim_km2)
        assert rows.loc[key, "rel_diff_pct"] == pytest.approx(diffs[-1]) and rows.loc[key, "iou"] == pytest.approx(iou)
    assert rows.loc[(A, 2000), "reference_volume_km3"] == 0.02 and np.isnan(rows.loc[(B, 1974), "reference_volume_km3"])
    assert report["regional_mean_abs_diff_pct"] == pytest.approx(np.mean(np.abs(diffs)), abs=1e-3)
    assert report["n_flagged"] == 0 and report["n_uncalibrated"] == 0
    assert report["glaciers_above_10pct"] == []  # the fake ice lies on each outline's own cells
