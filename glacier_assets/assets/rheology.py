"""Once per region: the ice rheology factor, calibrated so the glaciers' volume matches reference
volumes (Farinotti et al. 2019 for RGI6 glaciers, or the region's own table)."""

import json
import shutil

import dagster as dg
import pandas as pd

from ..constants import (
    CODE_VERSIONS,
    EMULATOR_RELPATH,
    REFERENCE_VOLUME_YEAR,
    REGION_LOCK_RELPATH,
    RHEOLOGY_RELPATH,
    RHEOLOGY_SAMPLE_RELDIR,
    outline_model_time,
)
from ..errors import GlacierError
from ..inventory.reference import outline_areas, outline_geometries, reference_volumes
from ..resources import IGMRunner, ProductStore, RegionSource
from ..simulation_file import SimulationFile
from ..steps.domain import glacier_rows, make_domain
from ..steps.inputs import expected_fingerprints, geodetic_targets, simulation_inputs
from ..steps.rheology import (
    calibrate_rheology,
    dynamic_factor,
    reference_outline,
    rheology_fingerprint,
    rheology_sample,
)
from ..storage import atomic_path, file_lock
from ._metadata import markdown_table, metadata
from ._steps import run_igm_batch
from .inventory import INVENTORY, load_inventory


def read_rheology(store: ProductStore) -> dict | None:
    path = store.path(RHEOLOGY_RELPATH)
    return json.loads(path.read_text()) if path.exists() else None


def rheology_factor(store: ProductStore) -> float:
    """The region's calibrated factor; a Failure if `ice_rheology` was never materialized."""
    record = read_rheology(store)
    if record is None:
        raise dg.Failure(description=f"no rheology at {store.path(RHEOLOGY_RELPATH)}: materialize ice_rheology first")
    return float(record["factor"])


def region_references(region: RegionSource, inventory, spec=None) -> dict:
    """glacier -> (reference volume km3, year, source) for the inventory's glaciers that have one."""
    spec = region.load() if spec is None else spec
    return reference_volumes(spec.reference_volumes, region.farinotti_path(),
                             sorted(inventory["glacier_id"].unique()), REFERENCE_VOLUME_YEAR,
                             outline_areas(inventory, REFERENCE_VOLUME_YEAR),
                             outline_geometries(inventory, REFERENCE_VOLUME_YEAR))


def sample_settings(igm: IGMRunner) -> dict:
    """What the sample's simulations depend on but the factor (the inversion's, which the
    references decide): the simulations' own settings, without the validation."""
    settings = igm.simulation_settings(0.0)
    return {**{k: v for k, v in settings.items() if k not in ("rheology_factor", "validation_share")},
            "leave_one_out": False}


def current_fingerprint(region: RegionSource, inventory, igm: IGMRunner, spec=None) -> tuple[str, dict]:
    """The fingerprint the rheology would have from today's inputs, and the references it is of."""
    spec = region.load() if spec is None else spec
    refs = region_references(region, inventory, spec)
    sample = rheology_sample({g: v for g, (v, _, _) in refs.items()}, igm.rheology_sample)
    expected = expected_fingerprints(inventory, spec, igm.emulator_fingerprint(), sample_settings(igm), sample) \
        if sample else {}
    return rheology_fingerprint(inventory, spec, refs, {g: expected[g]["simulation"] for g in sample}), refs


def rheology_current(store: ProductStore, region: RegionSource, inventory, igm: IGMRunner, spec=None) -> bool:
    record = read_rheology(store)
    return record is not None and record.get("fingerprint") == current_fingerprint(region, inventory, igm, spec)[0]


def sample_volumes(context, igm: IGMRunner, store: ProductStore, inventory, spec, static: dict,
                   sample: list[str]) -> tuple[dict[str, float], dict[str, str]]:
    """The sample's calibrated simulations with the inversion's factor (one IGM child, no
    validation; domains and results in a scratch folder, removed after): each glacier's simulated
    volume (km3) at its reference outline's model time, and why a glacier was left out."""
    if igm.needs_emulator and not store.path(EMULATOR_RELPATH).exists():
        raise dg.Failure(description=f"no ice-flow emulator at {store.path(EMULATOR_RELPATH)} for the rheology's "
                                     "sample: materialize iceflow_emulator first")
    scratch = store.path(RHEOLOGY_SAMPLE_RELDIR)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    years = {r["glacier_id"]: r["year"] for r in static["glaciers"]}
    geodetic_all, jobs, times, skipped = geodetic_targets(spec), {}, {}, {}
    outputs = {g: scratch / f"{g}.nc" for g in sample}
    try:
        for gid in sample:
            rows, domain = glacier_rows(inventory, gid), scratch / f"{gid}_domain.nc"
            try:
                make_domain(gid, inventory, spec, domain)
            except (GlacierError, ValueError) as exc:
                skipped[gid] = str(exc)
                continue
            targets, geodetic = simulation_inputs(rows, geodetic_all, gid)
            times[gid] = outline_model_time(int(reference_outline(rows, years[gid])["year"]))
            jobs[gid] = {"domain": str(domain), "output": str(outputs[gid]),
                         "targets": {str(k): v for k, v in targets.items()}, "geodetic": geodetic}
        if not jobs:
            return {}, skipped
        settings = {**igm.settings_extras(store.path(EMULATOR_RELPATH)), "leave_one_out": False,
                    "rheology_factor": static["factor"]}
        outcome = run_igm_batch(context, igm, settings, jobs, scratch / "results.json")
        simulated = {}
        for gid in jobs:
            result = outcome.get(gid, {"error": "no result"})
            if "error" in result:
                skipped[gid] = result["error"]
                continue
            simulated[gid] = SimulationFile(outputs[gid], gid).load().series()[times[gid]][0]
        return simulated, skipped
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def calibrated_record(context, igm: IGMRunner, store: ProductStore, inventory, spec, refs: dict) -> dict:
    """The inversion's factor (`steps.rheology.calibrate_rheology`), then corrected by the sample's
    simulated volume (`dynamic_factor`); the record says both, and the sample."""
    static = calibrate_rheology(inventory, spec, refs)
    inverted = {r["glacier_id"]: r["inverted_km3"] for r in static["glaciers"]}
    sample = [g for g in rheology_sample({g: v for g, (v, _, _) in refs.items()}, igm.rheology_sample)
              if g in inverted]
    record = {**static, "inversion_factor": static["factor"], "sample": []}
    if not sample:
        return record
    simulated, skipped = sample_volumes(context, igm, store, inventory, spec, static, sample)
    for gid, why in skipped.items():
        context.log.warning(f"{gid} ice_rheology: left out of the sample: {why}")
    record["sample"] = [{"glacier_id": g, "inverted_km3": round(inverted[g], 6),
                         **({"simulated_km3": round(simulated[g], 6)} if g in simulated else {"left_out": skipped[g]})}
                        for g in sample]
    if simulated:
        factor, ratio = dynamic_factor(static["factor"], inverted, simulated)
        record.update(factor=round(factor, 6), sample_ratio=round(ratio, 4))
    return record


@dg.asset(deps=[INVENTORY, dg.AssetKey("iceflow_emulator")], group_name="model", kinds={"json", "tensorflow"},
          code_version=CODE_VERSIONS["ice_rheology"])
def ice_rheology(context: dg.AssetExecutionContext, region: RegionSource, store: ProductStore,
                 igm: IGMRunner) -> dg.MaterializeResult:
    """One factor f scaling the ice's mobility (IGM's Glen A and sliding) for the whole region,
    like OGGM's consensus calibration: the thickness inverted by mass conservation with IGM's flow
    law (`science/inversion.py`) on each glacier's outline nearest its reference date, summed
    over the glaciers with a reference volume, equals their summed reference. A calibrated
    simulation is not its inversion: it relaxes to its own thickness. So a sample of
    `IGMRunner.rheology_sample` glaciers (spread over the references' volume) is simulated with
    that factor, and f is corrected by their simulated to inverted volume R, as f R^5 (thickness
    goes as f^-1/5). Every simulation uses f for its bed, its initial ice and its ice flow
    (`reports/rheology.json`). Always over the whole inventory, whatever subset runs; made again
    only when a reference, one of those outlines, the DEM, the forcing or the sample's inputs and
    settings change."""
    with file_lock(store.path(REGION_LOCK_RELPATH)):
        inventory, spec = load_inventory(store), region.load()
        fp, refs = current_fingerprint(region, inventory, igm, spec)
        path = store.path(RHEOLOGY_RELPATH)
        record = read_rheology(store)
        reused = record is not None and record.get("fingerprint") == fp
        if record is None or not reused:
            record = {"fingerprint": fp, **calibrated_record(context, igm, store, inventory, spec, refs)}
            with atomic_path(path, suffix=".json") as tmp:
                tmp.write_text(json.dumps(record, indent=1))
    for gid, why in record["skipped"].items():
        context.log.warning(f"{gid} ice_rheology: left out of the calibration: {why}")
    table = pd.DataFrame(record["glaciers"])
    return dg.MaterializeResult(data_version=dg.DataVersion(str(record["factor"])), metadata={
        **metadata({"path": path}),
        "factor": record["factor"], "inversion_factor": record["inversion_factor"], "raw_factor": record["raw_factor"],
        "n_glaciers": record["n_glaciers"], "reference_km3": record["reference_km3"],
        "reference_source": ", ".join(record["source"]) or "none",
        "skipped": dg.MetadataValue.json(record["skipped"]), "reused": reused,
        **({"sample_ratio": record["sample_ratio"]} if "sample_ratio" in record else {}),
        **({"sample": markdown_table(pd.DataFrame(record["sample"]))} if record["sample"] else {}),
        **({"note": record["note"]} if record.get("note") else {}),
        **({"per_glacier": markdown_table(table.head(200))} if len(table) else {}),
    })
