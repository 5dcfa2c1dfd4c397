"""Per glacier: the model domain and the IGM simulation; once: the shared ice-flow emulator."""


import json
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import xarray as xr

from ..constants import (
    BATCH_GLACIERS,
    CODE_VERSIONS,
    EMULATOR_RELPATH,
    EPOCHS,
    OUTLINE_TIME_OFFSET_YEARS,
    REFINE,
    domain_relpath,
    igm_batch_relpath,
    igm_child_error_relpath,
    outline_model_time,
    plot_relpath,
    progress_relpath,
    simulation_relpath,
    thickness_plot_relpath,
)
from ..deploy import IGM_STEP_K8S_CONFIG
from ..fingerprints import simulation_fingerprint
from ..inventory.reference import farinotti_volume_km3
from ..partitions import glacier_partitions
from ..plots import area_volume_png, markdown_image, save_png, thickness_map_png
from ..resources import IGMChildError, IGMRunner, ProductStore, RegionSource
from ..science.resample import refined_thickness
from ..simulation_file import SimulationFile, SimulationState, states_summary
from ..steps.domain import domain_fingerprint, glacier_rows, make_domain
from ..steps.inputs import geodetic_targets, observed_areas, simulation_inputs
from ..steps.rheology import reference_outline
from ..storage import atomic_path, netcdf_attrs
from ._metadata import failure, markdown_table, metadata
from ._steps import glacier_step, run_igm_batch
from .inventory import INVENTORY, load_inventory
from .rheology import ice_rheology, region_references, rheology_factor


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
    if not igm.needs_emulator:
        return dg.MaterializeResult(metadata={"needed": False, "note": f"IGMRunner.mapping={igm.mapping!r}: "
                                              "the simulations solve the ice flow without an emulator"})
    if emulator_current(store, igm):
        return dg.MaterializeResult(data_version=dg.DataVersion(str(fp)),
                                    metadata={**metadata({"path": out}), "reused": True, "fingerprint": str(fp)})
    result = igm.run(context, "train-emulator", {**igm.settings_extras(None), "output": str(out)})
    with atomic_path(emulator_record(store), suffix=".json") as tmp:
        tmp.write_text(json.dumps({"fingerprint": fp}))
    return dg.MaterializeResult(data_version=dg.DataVersion(str(fp)), metadata={
        **(result.metadata or {}), **metadata({"path": out}), "reused": False, "fingerprint": str(fp)})


SIMULATION_BATCHES = dg.BackfillPolicy.multi_run(max_partitions_per_run=BATCH_GLACIERS)


def _report(context: dg.AssetExecutionContext, done: dict[str, dict], failures: dict[str, dg.Failure],
            versions: dict[str, str] | None = None):
    """What a per-glacier step returns for its partitions (one, or a range): each glacier's own
    metadata; if some failed, the good ones recorded one by one and the step failing with the
    bad ones named (a single glacier's own failure as it was raised)."""
    keys = context.partition_keys
    if failures:
        if len(keys) == 1:
            raise next(iter(failures.values()))
        for gid, md in done.items():
            yield dg.AssetMaterialization(context.asset_key, partition=gid, metadata=md)
        raise failure(context.asset_key.to_user_string(), [f.description or "" for f in failures.values()])
    if len(keys) == 1:
        yield dg.MaterializeResult(data_version=dg.DataVersion((versions or {})[keys[0]]) if versions else None,
                                   metadata=done[keys[0]])
        return
    for gid, md in done.items():
        context.add_asset_metadata(md, partition_key=gid)
    yield dg.MaterializeResult()


def _each(context, store: ProductStore, step: str, work, keys: list[str] | None = None) -> tuple[dict, dict, dict]:
    """`work(gid) -> (metadata, data version)` for every partition of the run (or `keys`), each
    glacier's failure its own (named, recorded in the ledger)."""
    done, failures, versions = {}, {}, {}
    for gid in context.partition_keys if keys is None else keys:
        try:
            with glacier_step(context, store, gid, step):
                done[gid], versions[gid] = work(gid)
        except dg.Failure as exc:
            context.log.error(exc.description)
            failures[gid] = exc
    return done, failures, versions


@dg.asset(partitions_def=glacier_partitions, deps=[INVENTORY], group_name="model", kinds={"netcdf"},
          code_version=CODE_VERSIONS["glacier_domain"], backfill_policy=SIMULATION_BATCHES)
def glacier_domain(context: dg.AssetExecutionContext, region: RegionSource, store: ProductStore):
    """The glacier's 100 m UTM model grid: DEM (reprojected from any CRS; small voids filled and
    counted), its outlines, the apparent-balance ice flux and slope from which the bed and the
    initial ice are inverted for the region's rheology, where snow may accumulate, and yearly
    mass-balance profiles (NetCDF). Not made again while
    its inputs (outlines, neighbours, DEM, forcing) are unchanged."""
    inventory, spec = load_inventory(store), region.load()

    def work(gid: str):
        out = store.path(domain_relpath(gid))
        fp = domain_fingerprint(gid, inventory, spec)
        if netcdf_attrs(out).get("fingerprint") == fp:
            return metadata({"path": str(out), "reused": True, "fingerprint": fp}), fp
        return metadata({**make_domain(gid, inventory, spec, out, fingerprint_=fp), "reused": False}), fp

    yield from _report(context, *_each(context, store, "glacier_domain", work))


@dg.asset(partitions_def=glacier_partitions, deps=[glacier_domain, iceflow_emulator, ice_rheology], group_name="model",
          kinds={"tensorflow", "netcdf"}, pool="gpu", op_tags={"dagster-k8s/config": IGM_STEP_K8S_CONFIG},
          code_version=CODE_VERSIONS["igm_simulation"], backfill_policy=SIMULATION_BATCHES)
def igm_simulation(context: dg.AssetExecutionContext, igm: IGMRunner, store: ProductStore, region: RegionSource):
    """IGM on the glacier's domain with the region's ice rheology, from a spin-up 30 years before
    1960 to 2020; thickness saved every 5 years from 1960 and at every outline's date (NetCDF).
    Calibrated to each of the glacier's outlines at its own date: the spin-up's constant ELA shift
    lands on the first outline's area (a glacier with one outline is calibrated by it alone),
    then one ELA shift per period meets each later outline (`science/calibration.py`); a period
    that misses the tolerance is flagged. Runs in a child
    process through Dagster Pipes (TensorFlow threads bounded, seeds fixed, GPU when present);
    progress and every calibration trial stream to the run log.

    A backfill runs at most `BATCH_GLACIERS` glaciers per run, all in one IGM child
    (`igm_run/batch.py`): packed into shared grids with the identity mapping, each glacier
    calibrated by its own root finders; one after another with the network emulator. Each
    glacier's result, metadata and failure is its own; if the child itself dies, its glaciers are
    run one by one, each in its own child, so one bad glacier cannot take the others with it."""
    inventory, spec, factor = load_inventory(store), region.load(), rheology_factor(store)
    geodetic_all = geodetic_targets(spec)
    emulator = store.path(EMULATOR_RELPATH)
    jobs: dict[str, dict] = {}  # what the IGM child gets per glacier
    rows_of: dict = {}

    def prepare(gid: str):
        domain = store.path(domain_relpath(gid))
        domain_fp = netcdf_attrs(domain).get("fingerprint")
        if domain_fp is None:
            raise dg.Failure(description=f"glacier {gid}: no model domain at {domain}; "
                                         "materialize glacier_domain first")
        if igm.needs_emulator and not emulator.exists():
            raise dg.Failure(description=f"no ice-flow emulator at {emulator}; materialize iceflow_emulator first")
        rows = glacier_rows(inventory, gid)
        targets, geodetic = simulation_inputs(rows, geodetic_all, gid)
        fp = simulation_fingerprint(gid, domain_fp, igm.emulator_fingerprint(), igm.simulation_settings(factor),
                                    targets, geodetic)
        out = store.path(simulation_relpath(gid))
        if SimulationFile(out).fingerprint() == fp:
            return {**metadata({"path": out}), "reused": True, "fingerprint": fp}, fp
        jobs[gid] = {"domain": str(domain), "output": str(out), "targets": {str(k): v for k, v in targets.items()},
                     "geodetic": geodetic, "fingerprint": fp,
                     "error_path": str(store.path(igm_child_error_relpath(gid)))}
        rows_of[gid] = rows
        return None, fp

    done, failures, versions = _each(context, store, "igm_simulation", prepare)
    done = {g: md for g, md in done.items() if md is not None}
    progress = store.path(progress_relpath(context.run_id))  # the children's latest line (igm_run/progress.py)
    settings = {**igm.settings_extras(emulator), "rheology_factor": factor, "progress_path": str(progress)}
    outcomes = _run_batch(context, igm, store, settings, jobs) if len(jobs) > 1 else {}
    references = _references(context, region, inventory, spec) if jobs else {}

    def finish(gid: str):
        job = jobs[gid]
        child = outcomes.get(gid)
        if child is None:  # alone: a batch of one, or its batch's child died
            result = igm.run(context, "simulate", {**settings, **job})
            child = {k: getattr(v, "value", v) for k, v in (result.metadata or {}).items()}
        elif "error" in child:
            raise IGMChildError(child["error"])
        return _simulation_result(gid, Path(job["output"]), rows_of[gid], child, region, store,
                                  job["fingerprint"], references.get(gid)), job["fingerprint"]

    more_done, more_failures, _ = _each(context, store, "igm_simulation", finish, list(jobs))
    progress.unlink(missing_ok=True)
    yield from _report(context, {**done, **more_done}, {**failures, **more_failures}, versions)


def _references(context, region: RegionSource, inventory, spec) -> dict:
    """glacier -> its reference volume (km3, year, source), for the figures; none if the table
    cannot be read (the rheology step reports why)."""
    try:
        return region_references(region, inventory, spec)
    except ValueError as exc:
        context.log.warning(f"no reference volumes in the figures: {exc}")
        return {}


def _run_batch(context, igm: IGMRunner, store: ProductStore, settings: dict, jobs: dict[str, dict]) -> dict[str, dict]:
    """One IGM child for all `jobs`: each glacier's figures, or {"error": why}. If the child dies
    as a whole, nothing (its glaciers then run alone)."""
    first, last = min(jobs), max(jobs)
    try:
        return run_igm_batch(context, igm, settings, jobs, store.path(igm_batch_relpath(first, last)))
    except Exception as exc:
        context.log.warning(f"the IGM child of {len(jobs)} glaciers ({first}..{last}) failed as a whole "
                            f"({exc}); running them one by one")
        return {}


def _simulation_result(gid, out, rows, child: dict, region: RegionSource, store: ProductStore, fp: str,
                       reference: tuple[float, int, str] | None = None) -> dict:
    """Figures and pictures of a finished simulation for the UI (with the IGM child's own); the
    two figures (area and volume series, thickness maps) are also written beside the products."""
    sim = SimulationFile(out, gid).load()
    summary, crs, calibration = sim.summary(), sim.crs, sim.calibration
    series_png, maps_png = glacier_figures(gid, sim, store.path(domain_relpath(gid)), rows, reference)
    plot = save_png(store.path(plot_relpath(gid)), series_png)
    maps = save_png(store.path(thickness_plot_relpath(gid)), maps_png)
    by_year = summary.set_index("year")
    md = {
        **metadata({k: v for k, v in (child or {}).items() if k != "error"}),
        **metadata({"path": out, "crs": crs, "plot_path": plot, "thickness_map_path": maps}),
        "area_km2": round(float(by_year["area_km2"].iloc[-1]), 4),
        "volume_km3": round(float(by_year["volume_km3"].iloc[-1]), 5),
        "volume_1970_km3": round(float(by_year.loc[1970, "volume_km3"]), 5),
        "volume_2000_km3": round(float(by_year.loc[2000, "volume_km3"]), 5),
        "area_volume_by_epoch": markdown_table(summary.round(5)),
        "area_plot": dg.MetadataValue.md(markdown_image(series_png, f"{gid} area and volume")),
        "thickness_maps": dg.MetadataValue.md(markdown_image(maps_png, f"{gid} thickness at the outlines' dates")),
        "reused": False,
        "fingerprint": fp,
    }
    if calibration:
        md["calibration"] = markdown_table(pd.DataFrame(calibration).drop(columns=["trials"]).round(3))
    if reference is not None:
        md["reference_volume_km3"] = round(reference[0], 5)
        md["reference_volume_source"] = f"{reference[2]} ({reference[1]})"
    farinotti = farinotti_volume_km3(region.farinotti_path(), gid)
    if farinotti is not None:
        md["farinotti2019_volume_km3"] = round(farinotti, 5)
    return md


MAP_PANELS = 6  # thickness panels per glacier: its outlines' dates, and the first and last epochs


def glacier_figures(gid: str, sim: SimulationState, domain_path: Path, rows,
                    reference: tuple[float, int, str] | None) -> tuple[bytes, bytes]:
    """A glacier's two figures (PNG): its simulated area and volume over the epochs with its
    observed outline areas and its reference volume; and its thickness (the 25 m product's
    recipe) on a hillshade of the domain's DEM at each outline's model time with that outline,
    and at the first and last epochs (at most `MAP_PANELS` panels). `reference`: (km3, year,
    source) as `inventory.reference.reference_volumes` gives it, placed at the model time of the
    outline it belongs to (as the validation compares it). `sim`: the simulation file's contents."""
    crs, grid, at_outlines, states = sim.crs, sim.grid, sim.outlines, sim.states
    yearly = None if sim.yearly is None else sim.yearly["volume_km3"]
    extent = (grid.xmin, grid.xmax, grid.ymin, grid.ymax)
    series = states_summary(states, grid.res)
    observed = observed_areas(rows)
    ref = None
    if reference is not None:
        outline_year = int(reference_outline(rows, reference[1])["year"])
        ref = (reference[0], outline_model_time(outline_year), reference[2])
    series_png = area_volume_png(gid, series, observed, volume_series=yearly, reference=ref)

    ordered = rows.assign(_control=rows["role"] == "control").sort_values(["year", "_control"])
    outlines = {outline_model_time(int(r["year"])): g for r, g in zip(ordered.to_dict("records"),
                                                                       ordered.to_crs(crs).geometry)}
    times = sorted(at_outlines)
    if not times or min(times) > EPOCHS[0] + 2:
        times.insert(0, EPOCHS[0])
    if max(times) < EPOCHS[-1] - 2:
        times.append(EPOCHS[-1])
    if len(times) > MAP_PANELS:  # keep the first and last, and evenly spread ones between
        times = [times[i] for i in np.unique(np.linspace(0, len(times) - 1, MAP_PANELS).round().astype(int))]
    panels = []
    for t in times:
        observed_geom = outlines.get(t) if t in at_outlines else None
        title = f"{t} (outline {t - OUTLINE_TIME_OFFSET_YEARS})" if observed_geom is not None else str(t)
        panels.append((title, refined_thickness(states[t], REFINE), observed_geom))
    dem, dem_label = None, "none"
    if Path(domain_path).exists():
        with xr.open_dataset(domain_path) as dom:
            if dom["dem"].shape == grid.shape:
                dem = dom["dem"].values
                dem_label = f"DEM of {dom.attrs['dem_year']}" if "dem_year" in dom.attrs else "DEM"
    maps_png = thickness_map_png(gid, panels, dem, extent, crs, dem_label=dem_label)
    return series_png, maps_png
