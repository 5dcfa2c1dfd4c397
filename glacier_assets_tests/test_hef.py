"""Hintereisferner from real data: RGI6 outline, SRTM DEM (EPSG:4326), HISTALP + ERA5 climate,
through IGM and on to 25 m thickness and outlines for two epochs."""

import json
import shutil

import dagster as dg
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from glacier_assets.constants import (
    EMULATOR_RELPATH,
    EPOCHS,
    domain_relpath,
    outline_relpath,
    simulation_relpath,
    thickness_relpath,
)
from glacier_assets.inventory.examples import hef_region_yaml
from glacier_assets.steps.epoch import read_thickness
from glacier_assets.steps.evaluation import evaluate_mass_balance, evaluate_thickness

from .conftest import chain_definitions, range_tags

pytestmark = pytest.mark.igm
HEF = "RGI60-11.00897"


@pytest.fixture(scope="module")
def hef_chain(tmp_path_factory, shared_data, demo_chain):
    root = tmp_path_factory.mktemp("hef")
    products = root / "products"
    # the shared emulator trained by the demo chain: the same weights a region run would use
    (products / EMULATOR_RELPATH).parent.mkdir(parents=True)
    shutil.copy(demo_chain["products"] / EMULATOR_RELPATH, products / EMULATOR_RELPATH)
    defs = chain_definitions(products, hef_region_yaml(shared_data, root))
    (root / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "home")) as instance:
        dg.materialize(defs.assets, selection=["outline_inventory", "ice_rheology"], instance=instance,
                       resources=defs.resources)
        sim = dg.materialize(defs.assets, selection=["glacier_domain", "igm_simulation"], partition_key=HEF,
                             instance=instance, resources=defs.resources)
        job = defs.resolve_job_def("glacier_epoch_products")
        prods = {y: job.execute_in_process(instance=instance, tags=range_tags(f"{y}|{HEF}", f"{y}|{HEF}"))
                 for y in EPOCHS}  # all of them: the report covers glaciers with complete products
        report = dg.materialize([*defs.assets, *defs.asset_checks], selection=["calibration_report"],
                                instance=instance, resources=defs.resources)
        yield {"products": products, "sim": sim, "prods": prods, "report": report}


def test_a_single_outline_glacier_is_calibrated_to_it(hef_chain):
    """An RGI6-only inventory (one outline, 2003): the spin-up lands on its area at its date."""
    md = hef_chain["sim"].asset_materializations_for_node("igm_simulation")[0].metadata
    assert md["calibration_status"].value == "calibrated"
    report = hef_chain["report"]
    assert report.success
    table = pd.read_csv(hef_chain["products"] / "reports" / "calibration.csv")
    (row,) = table.itertuples()
    assert row.obs_year == 2003 and row.model_time == 2004 and abs(row.rel_diff_pct) <= 1.0
    assert row.iou > 0.6  # the area is the glacier's own, not ice grown on the slopes around it
    assert np.isnan(row.loo_rel_diff_pct)  # one outline: nothing to validate it with, and no figure made up
    gate = {e.check_name: e for e in report.get_asset_check_evaluations()}["area_agreement_gate"]
    assert gate.passed and gate.metadata["n_comparisons"].value == 1
    # the ice rheology calibrated to the Farinotti et al. (2019) consensus volume of HEF
    assert row.reference_volume_km3 == pytest.approx(0.578, abs=0.001)
    rheology = json.loads((hef_chain["products"] / "reports" / "rheology.json").read_text())
    assert rheology["n_glaciers"] == 1 and "Farinotti" in rheology["source"][0]


def test_hef_against_the_consensus_thickness_and_wgms(hef_chain, shared_data):
    """Real skill, from data the calibration did not see (its thickness field, the WGMS balances);
    the tolerances are what this model on a 100 m grid can honestly claim."""
    sim = hef_chain["products"] / simulation_relpath(HEF)
    thk = evaluate_thickness(sim, shared_data / "oggm_hef" / "RGI60-11.00897_thickness.tif", 2004)
    assert thk["n"] > 10_000 and thk["model_time"] == 2004
    # measured: bias +1 m on a 68 m consensus mean, RMSE 56 m (the thickness is right on average,
    # its pattern much less so: 100 m cells, a 2003 outline as the only shape constraint)
    assert abs(thk["bias_m"]) < 0.15 * thk["mean_observed_m"] and thk["rmse_m"] < 0.9 * thk["mean_observed_m"]
    mb = evaluate_mass_balance(sim, shared_data / "oggm_hef" / "mbdata_WGMS-00491.csv")
    assert mb["n_years"] >= 50 and mb["first_year"] <= 1960
    # measured 1953-2019: r = 0.77, the simulated balance 0.43 m w.e./a less negative than WGMS's
    assert mb["correlation"] > 0.6 and 0 < mb["bias_mwe"] < 0.6


def test_hef_domain_from_real_inputs(hef_chain, shared_data):
    md = hef_chain["sim"].asset_materializations_for_node("glacier_domain")[0].metadata
    assert md["crs"].value == "EPSG:32632"
    assert md["forcing"].value == "monthly_climate" and md["forcing_sources"].value == 2
    assert md["area_km2"].value == pytest.approx(8.04, abs=0.05)
    assert md["volume_km3"].value > 0  # at IGM's default rheology; the simulation uses the calibrated one
    with xr.open_dataset(hef_chain["products"] / domain_relpath(HEF)) as dom:
        assert 2300 < float(dom.dem.min()) and float(dom.dem.max()) < 3800
        assert dom.attrs["forcing_padded_years"] == "2019,2020"


@pytest.mark.parametrize("year", (1990, 2015))
def test_hef_thickness_and_outline(hef_chain, shared_data, year):
    assert hef_chain["prods"][year].success
    products = hef_chain["products"]
    thk, grid = read_thickness(products / thickness_relpath(HEF, year))
    assert grid.crs == "EPSG:32632" and grid.res == 25.0
    assert 50 < thk.max() < 600
    outline = gpd.read_parquet(products / outline_relpath(HEF, year))
    area = outline.geometry.iloc[0].area / 1e6
    assert 3 < area < 25
    assert area == pytest.approx((thk >= 2).sum() * 625 / 1e6, rel=1e-9)
    # the simulated glacier stays where the real one is
    rgi = gpd.read_file(shared_data / "oggm_hef" / "Hintereisferner_RGI6.shp").to_crs(grid.crs).geometry.iloc[0]
    assert outline.geometry.iloc[0].intersection(rgi).area > 0.6 * rgi.area
    sim_md = hef_chain["sim"].asset_materializations_for_node("igm_simulation")[0].metadata
    assert 0.1 < sim_md["volume_km3"].value < 2.0
