"""The regional rheology corrected on a sample's calibrated simulations (assets/rheology.py), for
real: the tiny region's glacier A simulated by IGM (its solved flow: no emulator to train)."""

import json

import dagster as dg
import pytest

from glacier_assets.assets.inventory import load_inventory, outline_inventory
from glacier_assets.assets.rheology import ice_rheology, rheology_current
from glacier_assets.constants import RHEOLOGY_FACTOR_STEP, RHEOLOGY_RELPATH, RHEOLOGY_SAMPLE_RELDIR
from glacier_assets.resources import IGMRunner, ProductStore, RegionSource

from .tiny import A, write_tiny_region

pytestmark = pytest.mark.igm


def test_the_inversion_factor_is_corrected_by_the_sample_simulated_volume(tmp_path):
    spec = write_tiny_region(tmp_path / "region", {A: 0.02})
    store = ProductStore(root=str(tmp_path / "products"), catalog_root=str(tmp_path / "catalog"))
    region, igm = RegionSource(spec=str(spec)), IGMRunner(threads=1, mapping="identity", rheology_sample=1)
    with dg.DagsterInstance.ephemeral() as instance:
        list(outline_inventory(dg.build_asset_context(resources={"store": store, "region": region}, instance=instance)))
    result = ice_rheology(dg.build_asset_context(resources={"store": store, "region": region, "igm": igm}))
    record = json.loads(store.path(RHEOLOGY_RELPATH).read_text())
    (sampled,) = record["sample"]  # the region's one glacier with a reference volume
    ratio = sampled["simulated_km3"] / sampled["inverted_km3"]
    assert sampled["glacier_id"] == A and sampled["simulated_km3"] > 0
    assert record["sample_ratio"] == pytest.approx(ratio, abs=1e-3)
    assert record["factor"] == pytest.approx(record["inversion_factor"] * ratio**5, rel=RHEOLOGY_FACTOR_STEP)
    assert result.metadata["sample_ratio"] == record["sample_ratio"]
    assert result.metadata["factor"] == record["factor"]
    assert not store.path(RHEOLOGY_SAMPLE_RELDIR).exists()  # the sample's domains and runs were scratch
    # current while nothing changes; the sample's settings are part of what it is made from
    inventory = load_inventory(store)
    assert rheology_current(store, region, inventory, igm)
    assert not rheology_current(store, region, inventory, IGMRunner(threads=1, mapping="identity", rheology_sample=0))
