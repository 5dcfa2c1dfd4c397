"""A bad glacier is named with the step and the cause, recorded, and never stops the others:
DEM voids (filled when small), an outline in the wrong place, an unreadable DEM, an IGM child
that fails."""

import shutil

import dagster as dg
import numpy as np
import pytest
import xarray as xr

from glacier_assets.constants import domain_relpath
from glacier_assets.errors import GlacierError
from glacier_assets.ledger import read_failures
from glacier_assets.steps.domain import domain_layout, fill_dem_voids, percent

from .conftest import DEMO_PAIR, chain_definitions

GID = DEMO_PAIR[0]


def test_small_dem_voids_are_filled_and_counted_large_ones_named_with_their_share():
    y, x = np.mgrid[0:50, 0:40]
    dem = 5000.0 + 3.0 * x + 2.0 * y
    holed = dem.copy()
    holed[10:13, 10:12] = np.nan  # 6 of 2,000 cells: 0.3 %
    filled, n = fill_dem_voids(holed, GID, "dem.tif")
    assert n == 6 and np.isfinite(filled).all()
    assert np.abs(filled[10:13, 10:12] - dem[10:13, 10:12]).max() < 10.0  # a smooth surface, filled smoothly
    big = dem.copy()
    big[:, :5] = np.nan  # 12.5 %
    with pytest.raises(GlacierError, match=rf"glacier {GID}: the DEM dem.tif leaves 12 % of its 50x40-cell"):
        fill_dem_voids(big, GID, "dem.tif")
    assert percent(0.0003) == "0.03 %" and percent(0.042) == "4.2 %" and percent(1.0) == "100 %"


def test_an_outline_in_the_wrong_place_is_named(demo_region):
    from glacier_assets.inventory.outlines import build_inventory
    from glacier_assets.inventory.region import load_region_spec

    spec = load_region_spec(demo_region)
    inv = build_inventory(spec.outlines, spec.id_pattern).outlines
    far = inv[(inv.glacier_id == GID) & (inv.epoch == 2010)].index
    year = int(inv.loc[far, "year"].iloc[0])  # the demo's "2010" outlines are dated 2008-2011
    inv.loc[far, "geometry"] = inv.loc[far, "geometry"].translate(xoff=3.0)  # three degrees east
    with pytest.raises(GlacierError, match=rf"glacier {GID}: its outlines span 28\d x \d km, .* the control outline "
                                           rf"of {year} from outlines_2010.shp lies 2\d\d km from the initial one; is it "
                                           r"in the wrong place or CRS\?"):
        domain_layout(GID, inv)


@pytest.fixture
def broken_dem_region(tmp_path, demo_region):
    region = tmp_path / "region"
    shutil.copytree(demo_region.parent, region, ignore=shutil.ignore_patterns("truth"))
    (region / "dem.tif").write_bytes(b"not a GeoTIFF")
    return region / "region.yaml"


def test_an_unexpected_error_names_glacier_step_and_cause_and_is_recorded(tmp_path, broken_dem_region):
    products = tmp_path / "products"
    defs = chain_definitions(products, broken_dem_region, (GID,))
    with dg.instance_for_test() as instance:
        dg.materialize(defs.assets, selection=["outline_inventory"], instance=instance, resources=defs.resources)
        result = dg.materialize(defs.assets, selection=["glacier_domain"], partition_key=GID, instance=instance,
                                resources=defs.resources, raise_on_error=False)
    assert not result.success
    failure = [e for e in result.all_events if e.is_step_failure][0].step_failure_data
    message = failure.user_failure_data.description
    assert message.startswith(f"{GID} [glacier_domain]: RasterioIOError: ") and "dem.tif" in message
    (record,) = read_failures(products)[GID]
    assert record["step"] == "glacier_domain" and record["message"] == message.split("]: ", 1)[1]
    assert not (products / domain_relpath(GID)).exists()


@pytest.mark.igm
def test_the_igm_childs_own_error_reaches_the_console(tmp_path, demo_chain):
    """The Pipes child fails (a domain without the ice flux its bed is inverted from): the step's
    failure says why, not only the child's exit code."""
    products = tmp_path / "products"
    shutil.copytree(demo_chain["products"], products)
    domain = products / domain_relpath(GID)
    with xr.open_dataset(domain) as ds:
        ds = ds.load()
    ds.drop_vars("flux_bed").to_netcdf(domain)
    (products / "simulations" / f"{GID}.nc").unlink()
    defs = chain_definitions(products, demo_chain["region"], (GID,))
    with dg.instance_for_test() as instance:
        dg.materialize(defs.assets, selection=["outline_inventory", "ice_rheology"], instance=instance,
                       resources=defs.resources)
        result = dg.materialize(defs.assets, selection=["igm_simulation"], partition_key=GID, instance=instance,
                                resources=defs.resources, raise_on_error=False)
    message = [e for e in result.all_events if e.is_step_failure][0].step_failure_data.user_failure_data.description
    assert message.startswith(f"{GID} [igm_simulation]: KeyError: ") and "flux_bed" in message
    assert read_failures(products)[GID][0]["step"] == "igm_simulation"
    assert not list((products / "status").rglob(".igm_child_error.txt"))


@pytest.mark.igm
def test_a_glacier_failing_in_a_batch_is_named_the_others_written_and_a_rerun_redoes_only_it(tmp_path, demo_chain):
    """One ranged run of both demo glaciers, one IGM child for both: the glacier whose domain lacks
    its ice flux fails with its own cause and stays unmaterialized, the other is simulated and
    recorded; after the domain is mended the same range again simulates only the failed one."""
    from glacier_assets.constants import simulation_relpath
    from glacier_assets.storage import netcdf_attrs

    from .conftest import range_tags

    bad, good = DEMO_PAIR
    products = tmp_path / "products"
    shutil.copytree(demo_chain["products"], products)
    domain = products / domain_relpath(bad)
    shutil.copy(domain, tmp_path / "domain.nc")
    with xr.open_dataset(domain) as ds:
        ds = ds.load()
    ds.drop_vars("flux_bed").to_netcdf(domain)
    # without the leave-one-out the simulations' fingerprints change: both glaciers are to be simulated
    defs = chain_definitions(products, demo_chain["region"], DEMO_PAIR, leave_one_out=False)
    job = defs.resolve_job_def("simulate_glaciers")
    with dg.instance_for_test() as instance:
        dg.materialize(defs.assets, selection=["outline_inventory", "ice_rheology"], instance=instance,
                       resources=defs.resources)
        first = job.execute_in_process(instance=instance, tags=range_tags(*DEMO_PAIR), raise_on_error=False)
        assert not first.success
        (message,) = [e.step_failure_data.user_failure_data.description for e in first.all_events if e.is_step_failure]
        assert message.startswith("igm_simulation: 1 failed: ") and f"{bad} [igm_simulation]: KeyError: " in message
        (sim,) = first.asset_materializations_for_node("igm_simulation")
        assert sim.partition == good and sim.metadata["process_glaciers"].value == 2
        assert not netcdf_attrs(products / simulation_relpath(good))["validation"].strip("[]")  # made by this run
        assert [r["step"] for r in read_failures(products)[bad]] == ["igm_simulation"]
        shutil.copy(tmp_path / "domain.nc", domain)
        again = job.execute_in_process(instance=instance, tags=range_tags(*DEMO_PAIR))
        reused = {m.partition: m.metadata["reused"].value for m in again.asset_materializations_for_node("igm_simulation")}
        assert reused == {good: True, bad: False}
        assert bad not in read_failures(products)


def test_pooled_products_keep_each_partitions_failure_its_own(tmp_path, monkeypatch):
    """A batch big enough for the worker pool (threshold lowered): the glacier without a
    simulation fails by itself with its cause, the others get the same products as in process."""
    import glacier_assets.assets.products as P
    from glacier_assets.constants import simulation_relpath, thickness_relpath

    y, x = np.mgrid[0:20, 0:20]
    thk = np.clip(80.0 - 9.0 * np.hypot(x - 10, y - 9), 0.0, None)
    good = ["RGI60-13.00001", "RGI60-13.00002"]
    for gid in good:
        ds = xr.Dataset({"thk": (("time", "y", "x"), np.stack([thk, 0.5 * thk]).astype("float32"))},
                        coords={"time": np.array([2000, 2010], "int32"), "x": 500_000.0 + 100.0 * np.arange(20),
                                "y": 3_500_000.0 - 100.0 * np.arange(20)},
                        attrs={"crs": "EPSG:32646", "fingerprint": f"fp-{gid}"})
        (tmp_path / simulation_relpath(gid)).parent.mkdir(parents=True, exist_ok=True)
        ds.to_netcdf(tmp_path / simulation_relpath(gid))
    jobs = [(f"{year}|{g}", g, year, 1300000 + int(g[-5:])) for year in (2000, 2010)
            for g in [good[0], "RGI60-13.00003", good[1]]]
    selected = [P.THICKNESS, P.MASK, P.OUTLINE]
    in_process = list(P._make_chunk(tmp_path, jobs, selected))
    for gid in good:
        for year in (2000, 2010):
            (tmp_path / thickness_relpath(gid, year)).unlink()  # made again by the pool, not reused
    monkeypatch.setattr(P, "POOL_MIN_PARTITIONS", 2)
    monkeypatch.setattr(P, "POOL_CHUNK", 2)
    monkeypatch.setenv("GLACIER_PRODUCT_WORKERS", "2")
    monkeypatch.setattr(P, "_POOL", {})  # this test's own pool, not the process's, shut down after it
    try:
        pooled = list(P.compute_partitions(tmp_path, jobs, selected))
    finally:
        for pool in P._POOL.values():
            pool.shutdown(cancel_futures=True)
    assert [r[0] for r in pooled] == [j[0] for j in jobs]
    for (_, gid, _year, figures, why), again in zip(pooled, in_process):
        if gid == "RGI60-13.00003":
            assert figures is None and why.startswith("no simulation at")
        else:
            assert why is None and figures == again[3]


def test_a_failed_blocking_check_is_told_with_its_problems_not_only_dagster_s_header():
    """The main job's failure line once ended at '1 blocking asset check failed with ERROR severity:'."""
    from glacier_assets.job_runs import failure_text

    @dg.asset
    def table():
        return 1

    @dg.asset_check(asset=table, blocking=True)
    def rows_in_range():
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR,
                                   metadata={"problems": dg.MetadataValue.json(["year: in_range(1900, 2030) (2035)"])})

    @dg.asset(deps=[table])
    def downstream():
        return 2

    with dg.instance_for_test() as instance:
        result = dg.materialize([table, rows_in_range, downstream], instance=instance, raise_on_error=False)
    assert not result.success
    text = failure_text(result)
    assert text == "check rows_in_range of table failed: year: in_range(1900, 2030) (2035)", text
