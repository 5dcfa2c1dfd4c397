"""A real region of touching glaciers through the whole chain, as a user runs it: the Ötztal RGI 5.0
outlines, SRTM and HISTALP (variable names detected), two glaciers that share a divide
(RGI50-11.00719_d01/_d02) simulated by the main job: products, regional outlines that do not
overlap, a valid catalog."""

import os
import shutil
import subprocess
import sys

import geopandas as gpd
import pytest
import xarray as xr

from glacier_assets.constants import EMULATOR_RELPATH, EPOCHS, domain_relpath, regional_outline_relpath
from glacier_assets.inventory.examples import oetztal_region_yaml
from glacier_assets.science.vectorize import overlaps
from glacier_assets.stac import all_item_paths, catalog_json_paths, validate_objects

from .conftest import REPO

PAIR = ("RGI50-11.00719_d01", "RGI50-11.00719_d02")


@pytest.fixture(scope="module")
def oetztal(tmp_path_factory, shared_data, demo_chain):
    root = tmp_path_factory.mktemp("oetztal")
    oetztal_region_yaml(shared_data, root)
    products = root / "var" / "products"
    for suffix in (".weights.h5", ".json"):  # the emulator does not depend on the region: reuse the demo's
        src = (demo_chain["products"] / EMULATOR_RELPATH).with_name(f"iceflow_emulator{suffix}")
        (products / EMULATOR_RELPATH).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, (products / EMULATOR_RELPATH).with_name(src.name))
    env = {**os.environ, "GLACIER_ASSETS_ROOT": str(root), "DAGSTER_HOME": str(root / "home"), "GLACIER_IGM_THREADS": "1",
           "GLACIER_RHEOLOGY_SAMPLE": "0"}  # its three largest glaciers would triple the test: the inversion's factor
    for k in ("GLACIER_PRODUCTS", "GLACIER_CATALOG", "GLACIER_INCLUDE", "GLACIER_REGION_SPEC"):
        env.pop(k, None)
    res = subprocess.run([sys.executable, "-m", "glacier_assets", "run", "--region", str(root / "region.yaml"),
                          "--include", *PAIR], env=env, cwd=root, capture_output=True, text=True, timeout=1200)
    return {"res": res, "products": products, "catalog": root / "catalog" / "current"}


def test_the_main_job_publishes_the_pair(oetztal):
    res = oetztal["res"]
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "20 glaciers in the inventory" in res.stdout and "2 in this run" in res.stdout


def test_regional_outlines_do_not_overlap(oetztal):
    for year in EPOCHS:
        table = gpd.read_parquet(oetztal["products"] / regional_outline_relpath(year, "parquet"))
        assert sorted(table["glacier_id"]) == sorted(PAIR), year
        assert overlaps(table.geometry) == (0, 0.0), year


def test_the_catalog_is_valid(oetztal):
    catalog = oetztal["catalog"]
    assert validate_objects(catalog_json_paths(catalog) + all_item_paths(catalog),
                            REPO.parent / "shared" / "stac-schemas") == []


def test_the_climate_variables_were_detected(oetztal):
    with xr.open_dataset(oetztal["products"] / domain_relpath(PAIR[0])) as ds:
        assert ds.attrs["forcing_variables"] == "temp, prcp, elevation hgt (histalp)"
        assert ds.attrs["dem_flag"] == ""


def test_the_catalog_describes_the_oetztal_not_the_seed_dataset(oetztal):
    """A region without a `dataset` key gets neutral texts naming it, and a lineage of its own run:
    its climate file, its one outline date per glacier, the consensus volumes its RGI5 ids were
    matched to (issue 25). Its items carry where the ice is at the outline date."""
    import json

    catalog = oetztal["catalog"]
    cat = json.loads((catalog / "catalog.json").read_text())
    assert cat["title"] == "Glacier thickness and area: oetztal, 1960-2020"
    coll = json.loads((catalog / "thickness" / "collection.json").read_text())
    assert coll["license"] == "other" and "sci:citation" not in coll
    assert [p["name"] for p in coll["providers"]] == ["glacier_assets"]
    item = json.loads(next(p for p in all_item_paths(catalog) if PAIR[0] in p.name).read_text())["properties"]
    lineage = item["processing:lineage"]
    assert "monthly climate (HISTALP_oetztal.nc)" in lineage and "precipitation factor 2.5" in lineage
    assert "This glacier: initial outline 2003; no later outline" in lineage, lineage
    assert "calibrated to 20 reference volumes (Farinotti et al. (2019) consensus, by the RGI6 id" in lineage, lineage
    assert 0.0 < item["glacier_assets:iou"] <= item["glacier_assets:ceiling_iou"] <= 1.0
    assert 0.0 <= item["glacier_assets:tongue_covered"] <= 1.0 and "glacier_assets:shape_flag" in item
    everything = "".join(p.read_text() for p in catalog.rglob("*.json"))
    assert "Yangtze" not in everything and "Guo, W." not in everything and "1990/2000/2010/2020" not in everything
