"""Per glacier: the model domain and the IGM simulation; once: the shared ice-flow emulator."""


import dagster as dg
import xarray as xr

from ..constants import EMULATOR_RELPATH, domain_relpath, simulation_relpath
from ..partitions import glacier_partitions
from ..resources import IGMRunner, ProductStore, RegionSource
from ..workflow import GlacierError, make_domain, simulation_summary
from ._metadata import markdown_table, metadata
from .inventory import load_inventory, outline_inventory


@dg.asset(group_name="model", kinds={"tensorflow"}, pool="gpu")
def iceflow_emulator(context: dg.AssetExecutionContext, igm: IGMRunner, store: ProductStore) -> dg.MaterializeResult:
    """IGM's ice-flow emulator (a CNN trained on the Blatter-Pattyn energy), trained once on a
    reference ice cap and saved as Keras HDF5 weights. Every glacier's simulation starts from it
    and trains `warm_iterations` more instead of IGM's 300 cold-start iterations (measured cost:
    bench/emulator_accuracy.py)."""
    out = store.path(EMULATOR_RELPATH)
    result = igm.run(context, "train-emulator", {**igm.settings_extras(None), "output": str(out)})
    return dg.MaterializeResult(metadata={**(result.metadata or {}), **metadata({"path": out})})


@dg.asset(partitions_def=glacier_partitions, deps=[outline_inventory], group_name="model", kinds={"netcdf"})
def glacier_domain(context: dg.AssetExecutionContext, region: RegionSource, store: ProductStore) -> dg.MaterializeResult:
    """The glacier's 100 m UTM model grid: DEM (reprojected from any CRS), bed (DEM minus a
    first-guess thickness), first-guess initial ice on the 1970s outline, where ice may grow, and
    yearly mass-balance profiles (NetCDF)."""
    gid = context.partition_key
    try:
        figures = make_domain(gid, load_inventory(store), region.load(), store.path(domain_relpath(gid)))
    except GlacierError as exc:
        raise dg.Failure(description=str(exc)) from exc
    return dg.MaterializeResult(metadata=metadata(figures))


@dg.asset(partitions_def=glacier_partitions, deps=[glacier_domain, iceflow_emulator], group_name="model",
          kinds={"tensorflow", "netcdf"}, pool="gpu")
def igm_simulation(context: dg.AssetExecutionContext, igm: IGMRunner, store: ProductStore) -> dg.MaterializeResult:
    """IGM 1960-2020 on the glacier's domain, thickness saved every 5 years (NetCDF). Runs in a
    child process through Dagster Pipes (TensorFlow threads bounded, seeds fixed, GPU when
    present); progress streams to the run log."""
    gid = context.partition_key
    domain = store.path(domain_relpath(gid))
    if not domain.exists():
        raise dg.Failure(description=f"glacier {gid}: no model domain at {domain}; materialize glacier_domain first")
    emulator = store.path(EMULATOR_RELPATH)
    if igm.use_emulator and not emulator.exists():
        raise dg.Failure(description=f"no ice-flow emulator at {emulator}; materialize iceflow_emulator first")
    out = store.path(simulation_relpath(gid))
    extras = {**igm.settings_extras(emulator), "domain": str(domain), "output": str(out)}
    result = igm.run(context, "simulate", extras)
    with xr.open_dataset(out) as sim:
        summary = simulation_summary(sim)
    last = summary.iloc[-1]
    return dg.MaterializeResult(metadata={
        **(result.metadata or {}),
        **metadata({"path": out, "crs": xr.open_dataset(out).attrs["crs"]}),
        "area_km2": round(float(last["area_km2"]), 4),
        "volume_km3": round(float(last["volume_km3"]), 5),
        "area_volume_by_epoch": markdown_table(summary.round(5)),
    })
