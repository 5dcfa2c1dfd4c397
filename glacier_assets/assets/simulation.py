"""Per glacier: the model domain and the IGM simulation; once: the shared ice-flow emulator."""


import json

import dagster as dg
import pandas as pd
import xarray as xr

from ..constants import (
    CODE_VERSIONS,
    EMULATOR_RELPATH,
    domain_relpath,
    igm_child_error_relpath,
    plot_relpath,
    simulation_relpath,
)
from ..deploy import IGM_STEP_K8S_CONFIG
from ..fingerprints import simulation_fingerprint
from ..inventory.reference import farinotti_volume_km3
from ..partitions import glacier_partitions
from ..plots import area_volume_png, markdown_image, save_png, thickness_panels_png
from ..resources import IGMRunner, ProductStore, RegionSource
from ..storage import atomic_path, netcdf_attrs
from ..workflow import (
    domain_fingerprint,
    geodetic_targets,
    glacier_rows,
    make_domain,
    observed_areas,
    simulation_inputs,
    simulation_summary,
)
from ._metadata import markdown_table, metadata
from ._steps import glacier_step
from .inventory import INVENTORY, load_inventory
from .rheology import ice_rheology, rheology_factor


def emulator_record(store: ProductStore):
    """The JSON beside the emulator's weights that says what they were trained with."""
    return store.path(EMULATOR_RELPATH).with_name("iceflow_emulator.json")


def emulator_current(store: ProductStore, igm: IGMRunner) -> bool:
    record = emulator_record(store)
    return (store.path(EMULATOR_RELPATH).exists() and record.exists()
            and json.loads(record.read_text()).get("fingerprint") == igm.emulator_fingerprint())


@dg.asset(group_name="model", kinds={"tensorflow"}, pool="gpu", code_version=CODE_VERSIONS["iceflow_emulator"])
def iceflow_emulator(context: dg.AssetExecutionContext, igm: IGMRunner, store: ProductStore) -> dg.MaterializeResult:
    """IGM's ice-flow emulator (a CNN trained on the Blatter-Pattyn energy), trained once on a
    reference ice cap and saved as Keras HDF5 weights. Every glacier's simulation starts from it
    and trains `warm_iterations` more instead of IGM's 300 cold-start iterations (measured cost:
    bench/emulator_accuracy.py). Not trained again while the settings and IGM's version stay."""
    out, fp = store.path(EMULATOR_RELPATH), igm.emulator_fingerprint()
    if emulator_current(store, igm):
        return dg.MaterializeResult(data_version=dg.DataVersion(str(fp)),
                                    metadata={**metadata({"path": out}), "reused": True, "fingerprint": str(fp)})
    result = igm.run(context, "train-emulator", {**igm.settings_extras(None), "output": str(out)})
    with atomic_path(emulator_record(store), suffix=".json") as tmp:
        tmp.write_text(json.dumps({"fingerprint": fp}))
    return dg.MaterializeResult(data_version=dg.DataVersion(str(fp)), metadata={
        **(result.metadata or {}), **metadata({"path": out}), "reused": False, "fingerprint": str(fp)})


@dg.asset(partitions_def=glacier_partitions, deps=[INVENTORY], group_name="model", kinds={"netcdf"},
          code_version=CODE_VERSIONS["glacier_domain"])
def glacier_domain(context: dg.AssetExecutionContext, region: RegionSource, store: ProductStore) -> dg.MaterializeResult:
    """The glacier's 100 m UTM model grid: DEM (reprojected from any CRS; small voids filled and
    counted), its outlines, the apparent-balance ice flux and slope from which the bed and the
    initial ice are inverted for the region's rheology, where snow may accumulate, and yearly
    mass-balance profiles (NetCDF). Not made again while
    its inputs (outlines, neighbours, DEM, forcing) are unchanged."""
    gid = context.partition_key
    out = store.path(domain_relpath(gid))
    with glacier_step(context, store, gid, "glacier_domain"):
        inventory, spec = load_inventory(store), region.load()
        fp = domain_fingerprint(gid, inventory, spec)
        if netcdf_attrs(out).get("fingerprint") == fp:
            figures = {"path": str(out), "reused": True, "fingerprint": fp}
        else:
            figures = {**make_domain(gid, inventory, spec, out, fingerprint_=fp), "reused": False}
    return dg.MaterializeResult(data_version=dg.DataVersion(fp), metadata=metadata(figures))


@dg.asset(partitions_def=glacier_partitions, deps=[glacier_domain, iceflow_emulator, ice_rheology], group_name="model",
          kinds={"tensorflow", "netcdf"}, pool="gpu", op_tags={"dagster-k8s/config": IGM_STEP_K8S_CONFIG},
          code_version=CODE_VERSIONS["igm_simulation"])
def igm_simulation(context: dg.AssetExecutionContext, igm: IGMRunner, store: ProductStore,
                   region: RegionSource) -> dg.MaterializeResult:
    """IGM on the glacier's domain with the region's ice rheology, from a spin-up 30 years before
    1960 to 2020; thickness saved every 5 years from 1960 and at every outline's date (NetCDF).
    Calibrated to each of the glacier's outlines at its own date: the spin-up's constant ELA shift
    lands on the first outline's area (a glacier with one outline is calibrated by it alone),
    then one ELA shift per period meets each later outline (`science/calibration.py`); a period
    that misses the tolerance is flagged. Runs in a child
    process through Dagster Pipes (TensorFlow threads bounded, seeds fixed, GPU when present);
    progress and every calibration trial stream to the run log."""
    gid = context.partition_key
    out = store.path(simulation_relpath(gid))
    with glacier_step(context, store, gid, "igm_simulation"):
        domain = store.path(domain_relpath(gid))
        domain_fp = netcdf_attrs(domain).get("fingerprint")
        if domain_fp is None:
            raise dg.Failure(description=f"glacier {gid}: no model domain at {domain}; materialize glacier_domain first")
        emulator = store.path(EMULATOR_RELPATH)
        if igm.use_emulator and not emulator.exists():
            raise dg.Failure(description=f"no ice-flow emulator at {emulator}; materialize iceflow_emulator first")
        rows = glacier_rows(load_inventory(store), gid)
        targets, geodetic = simulation_inputs(rows, geodetic_targets(region.load()), gid)
        factor = rheology_factor(store)
        fp = simulation_fingerprint(domain_fp, igm.emulator_fingerprint(), igm.simulation_settings(factor), targets,
                                    geodetic)
        if netcdf_attrs(out).get("fingerprint") == fp:
            return dg.MaterializeResult(data_version=dg.DataVersion(fp), metadata={
                **metadata({"path": out}), "reused": True, "fingerprint": fp})
        extras = {**igm.settings_extras(emulator), "rheology_factor": factor, "domain": str(domain), "output": str(out),
                  "targets": {str(k): v for k, v in targets.items()}, "geodetic": geodetic, "fingerprint": fp,
                  "error_path": str(store.path(igm_child_error_relpath(gid)))}
        result = igm.run(context, "simulate", extras)
        return _simulation_result(gid, out, rows, result, region, store, fp)


def _simulation_result(gid, out, rows, result, region: RegionSource, store: ProductStore, fp: str) -> dg.MaterializeResult:
    """Figures and pictures of a finished simulation for the UI."""
    with xr.open_dataset(out) as sim:
        summary = simulation_summary(sim)
        crs, calibration = sim.attrs["crs"], json.loads(sim.attrs["calibration"])
        x, y = sim["x"].values, sim["y"].values
        half = abs(x[1] - x[0]) / 2
        maps = thickness_panels_png(gid, [int(t) for t in sim["time"].values], list(sim["thk"].values),
                                    (x.min() - half, x.max() + half, y.min() - half, y.max() + half))
    observed = observed_areas(rows)
    png = area_volume_png(gid, summary, observed)
    plot = save_png(store.path(plot_relpath(gid)), png)
    by_year = summary.set_index("year")
    md = {
        **(result.metadata or {}),
        **metadata({"path": out, "crs": crs, "plot_path": plot}),
        "area_km2": round(float(by_year["area_km2"].iloc[-1]), 4),
        "volume_km3": round(float(by_year["volume_km3"].iloc[-1]), 5),
        "volume_1970_km3": round(float(by_year.loc[1970, "volume_km3"]), 5),
        "volume_2000_km3": round(float(by_year.loc[2000, "volume_km3"]), 5),
        "area_volume_by_epoch": markdown_table(summary.round(5)),
        "area_plot": dg.MetadataValue.md(markdown_image(png, f"{gid} area and volume")),
        "thickness_maps": dg.MetadataValue.md(markdown_image(maps, f"{gid} thickness per epoch")),
        "reused": False,
        "fingerprint": fp,
    }
    if calibration:
        md["calibration"] = markdown_table(pd.DataFrame(calibration).drop(columns=["trials"]).round(3))
    farinotti = farinotti_volume_km3(region.farinotti_path(), gid)
    if farinotti is not None:
        md["farinotti2019_volume_km3"] = round(farinotti, 5)
    return dg.MaterializeResult(data_version=dg.DataVersion(fp), metadata=md)
