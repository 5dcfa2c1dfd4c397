"""The gate bites: with a forcing the calibration cannot compensate, the area gate fails, names
the glacier, and publishing does not happen."""

import shutil

import dagster as dg
import pandas as pd
import pytest

from glacier_assets.constants import EMULATOR_RELPATH, EPOCHS

from .conftest import DEMO_PAIR, chain_definitions, range_tags

pytestmark = pytest.mark.igm
GID = DEMO_PAIR[0]


@pytest.fixture(scope="module")
def perturbed(tmp_path_factory, demo_chain):
    root = tmp_path_factory.mktemp("perturbed")
    region = root / "region"
    shutil.copytree(demo_chain["region"].parent, region)
    mb = pd.read_csv(region / "mass_balance.csv")
    mb.loc[mb.year >= 1995, "ela"] += 1500.0  # a forcing error no ELA shift within bounds can undo
    mb.to_csv(region / "mass_balance.csv", index=False)
    products = root / "products"
    (products / EMULATOR_RELPATH).parent.mkdir(parents=True)
    shutil.copy(demo_chain["products"] / EMULATOR_RELPATH, products / EMULATOR_RELPATH)
    defs = chain_definitions(products, region / "region.yaml", (GID,), leave_one_out=False)  # the gate, not skill
    (root / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "home")) as instance:
        dg.materialize([*defs.assets, *defs.asset_checks], selection=["outline_inventory", "ice_rheology"],
                       instance=instance, resources=defs.resources)
        sim = dg.materialize(defs.assets, selection=["glacier_domain", "igm_simulation"], partition_key=GID,
                             instance=instance, resources=defs.resources)
        for year in EPOCHS:
            defs.resolve_job_def("glacier_epoch_products").execute_in_process(
                instance=instance, tags=range_tags(f"{year}|{GID}", f"{year}|{GID}"))
        defs.resolve_job_def("regional_products").execute_in_process(
            instance=instance, tags=range_tags(str(EPOCHS[0]), str(EPOCHS[-1])))
        publish = defs.resolve_job_def("quality_and_publish").execute_in_process(instance=instance,
                                                                                 raise_on_error=False)
        yield {"sim": sim, "publish": publish, "products": products, "catalog": products.parent / "catalog",
               "instance": instance}


def test_unreachable_controls_are_flagged_not_hidden(perturbed):
    md = perturbed["sim"].asset_materializations_for_node("igm_simulation")[0].metadata
    status = md["calibration_status"].value
    report = pd.read_csv(perturbed["products"] / "reports" / "calibration.csv")
    # the outlines after the forcing error (the "2000" one is dated 2001) are missed and named
    year_2000 = int(report.loc[report.epoch == 2000, "obs_year"].iloc[0])
    assert status.startswith("flagged: tolerance missed at") and f"{year_2000} (" in status
    assert (report.loc[report.epoch >= 2000, "status"] == "best").all()
    assert (report.loc[report.epoch <= 1990, "status"] == "converged").all()


def test_gate_fails_names_the_glacier_and_stops_publishing(perturbed):
    result = perturbed["publish"]
    evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
    gate = evals["area_agreement_gate"]
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.ERROR
    assert gate.metadata["regional_mean_abs_diff_pct"].value > 2.8
    assert GID in str(gate.metadata["worst_glaciers"].value)
    warn = evals["glacier_area_warning"]
    assert not warn.passed and warn.severity == dg.AssetCheckSeverity.WARN
    assert GID in str(warn.metadata["glaciers"].value)
    # the blocking check stopped the publishing asset: never materialized, nothing in the catalog
    assert not perturbed["instance"].get_latest_materialization_event(dg.AssetKey("stac_catalog"))
    assert not result.success
    assert not any(perturbed["catalog"].rglob("*.tif"))
    assert not (perturbed["catalog"] / "current").exists()
