"""Shared fixtures: the real sample data in ../shared/data and a demo region built once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GLACIER_SHARED_DATA", REPO.parent / "shared" / "data"))
DEMO_PAIR = ("RGI60-13.90008", "RGI60-13.90010")  # the two smallest demo glaciers: short IGM runs


@pytest.fixture(scope="session")
def shared_data() -> Path:
    assert SHARED_DATA.exists(), f"sample data not found at {SHARED_DATA} (set GLACIER_SHARED_DATA)"
    return SHARED_DATA


@pytest.fixture(scope="session")
def demo_region(tmp_path_factory) -> Path:
    """The demo region built once per test session; returns its region.yaml."""
    from glacier_assets.inventory.demo import build_demo_region

    return build_demo_region(tmp_path_factory.mktemp("demo") / "region")


def hef_region_yaml(shared_data: Path, dest: Path) -> Path:
    """A region spec for Hintereisferner: RGI6 outline, SRTM DEM, HISTALP + ERA5 climate."""
    hef = shared_data / "oggm_hef"
    text = f"""
name: hintereisferner
outlines:
  - {{path: {hef}/Hintereisferner_RGI6.shp, role: initial, year_column: BgnDate}}
dem: {{path: {hef}/hef_srtm.tif, year: 2000}}
climate:
  sources:
    - {{path: {hef}/histalp_merged_hef.nc, temperature: temp, precipitation: prcp, elevation: hgt}}
    - path: [{hef}/sel_era5_monthly_t2m_1979-2018.nc, {hef}/sel_era5_monthly_prcp_1979-2018.nc]
      temperature: t2m
      precipitation: tp
      geopotential: z
      invariant_path: {hef}/sel_era5_invariant.nc
  prcp_factor: 2.5
"""
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "region.yaml"
    path.write_text(text)
    return path


def chain_definitions(products: Path, region_spec: Path, include=(), leave_one_out: bool = True):
    """The project's assets and jobs with resources pointing at a test products folder."""
    import dagster as dg

    from glacier_assets.checks import CHECKS
    from glacier_assets.definitions import ASSETS, JOBS
    from glacier_assets.resources import IGMRunner, ProductStore, RegionSource

    return dg.Definitions(
        assets=ASSETS,
        asset_checks=CHECKS,
        jobs=JOBS,
        resources={
            "store": ProductStore(root=str(products), catalog_root=str(products.parent / "catalog")),
            "region": RegionSource(spec=str(region_spec), include=list(include)),
            "igm": IGMRunner(threads=1, leave_one_out=leave_one_out),
        },
    )


def range_tags(first: str, last: str) -> dict:
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


@pytest.fixture(scope="session")
def demo_chain(tmp_path_factory, demo_region):
    """The whole chain, for real, on two demo glaciers: inventory, rheology, domains, one ranged
    run of both glaciers' IGM simulations (one packed Pipes child), batched 25 m products,
    regional outlines, gates and publication."""
    import dagster as dg

    from glacier_assets.constants import EPOCHS

    root = tmp_path_factory.mktemp("chain")
    products = root / "products"
    defs = chain_definitions(products, demo_region, DEMO_PAIR)
    (root / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "dagster_home")) as instance:
        results = {}
        results["setup"] = dg.materialize([*defs.assets, *defs.asset_checks],
                                          selection=["outline_inventory", "iceflow_emulator", "ice_rheology"],
                                          instance=instance, resources=defs.resources)
        results["simulate"] = defs.resolve_job_def("simulate_glaciers").execute_in_process(  # one packed IGM run
            instance=instance, tags=range_tags(*DEMO_PAIR))
        job = defs.resolve_job_def("glacier_epoch_products")
        for year in EPOCHS:
            results[year] = job.execute_in_process(
                instance=instance, tags=range_tags(f"{year}|{DEMO_PAIR[0]}", f"{year}|{DEMO_PAIR[1]}"))
        results["regional"] = defs.resolve_job_def("regional_products").execute_in_process(
            instance=instance, tags=range_tags(str(EPOCHS[0]), str(EPOCHS[-1])))
        results["publish"] = defs.resolve_job_def("quality_and_publish").execute_in_process(
            instance=instance, raise_on_error=False)
        yield {"defs": defs, "instance": instance, "products": products, "results": results,
               "region": demo_region}


def remake_simulation(products: Path, glacier_id: str, change) -> None:
    """Rewrite a glacier's simulated thickness with `change(thk, years) -> thk` (as a re-run from the
    same inputs on another machine might), keeping its fingerprint, and drop its per-epoch
    products so the next products run makes them again from it."""
    import xarray as xr

    from glacier_assets.constants import EPOCHS, outline_relpath, simulation_relpath
    from glacier_assets.storage import write_netcdf

    path = products / simulation_relpath(glacier_id)
    with xr.open_dataset(path) as sim:
        sim = sim.load()
    sim["thk"] = (sim["thk"].dims, change(sim["thk"].values.copy(), [int(t) for t in sim["time"].values]),
                  sim["thk"].attrs)
    write_netcdf(path, sim)
    for year in EPOCHS:
        (products / outline_relpath(glacier_id, year)).unlink(missing_ok=True)
