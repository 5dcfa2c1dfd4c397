"""Per glacier: the model domain and the IGM simulation; once: the shared ice-flow emulator."""


import json

import dagster as dg
import pandas as pd
import xarray as xr

from ..deploy import IGM_STEP_K8S_CONFIG
from ..constants import EMULATOR_RELPATH, domain_relpath, plot_relpath, simulation_relpath
from ..inventory.reference import farinotti_volume_km3
from ..plots import area_volume_png, markdown_image, save_png, thickness_panels_png
from ..partitions import glacier_partitions
from ..resources import IGMRunner, ProductStore, RegionSource
from ..workflow import (
    GlacierError,
    calibration_targets,
    glacier_rows,
    make_domain,
    observed_areas,
    simulation_summary,
)
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
          kinds={"tensorflow", "netcdf"}, pool="gpu", op_tags={"dagster-k8s/config": IGM_STEP_K8S_CONFIG})
def igm_simulation(context: dg.AssetExecutionContext, igm: IGMRunner, store: ProductStore,
                   region: RegionSource) -> dg.MaterializeResult:
    """IGM 1960-2020 on the glacier's domain, thickness saved every 5 years (NetCDF), calibrated
    to the glacier's outlines: a spin-up from 1960 onto the 1970s outline area, then one ELA shift
    per period so the simulated area meets each control outline (`science/calibration.py`).
    Glaciers without control outlines run uncalibrated and are flagged so. Runs in a child
    process through Dagster Pipes (TensorFlow threads bounded, seeds fixed, GPU when present);
    progress and every calibration trial stream to the run log."""
    gid = context.partition_key
    domain = store.path(domain_relpath(gid))
    if not domain.exists():
        raise dg.Failure(description=f"glacier {gid}: no model domain at {domain}; materialize glacier_domain first")
    emulator = store.path(EMULATOR_RELPATH)
    if igm.use_emulator and not emulator.exists():
        raise dg.Failure(description=f"no ice-flow emulator at {emulator}; materialize iceflow_emulator first")
    out = store.path(simulation_relpath(gid))
    rows = glacier_rows(load_inventory(store), gid)
    targets = calibration_targets(rows)
    extras = {**igm.settings_extras(emulator), "domain": str(domain), "output": str(out),
              "targets": {str(k): v for k, v in targets.items()}}
    result = igm.run(context, "simulate", extras)
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
    }
    if calibration:
        md["calibration"] = markdown_table(pd.DataFrame(calibration).drop(columns=["trials"]).round(3))
    farinotti = farinotti_volume_km3(region.farinotti_path(), gid)
    if farinotti is not None:
        md["farinotti2019_volume_km3"] = round(farinotti, 5)
    return dg.MaterializeResult(metadata=md)
