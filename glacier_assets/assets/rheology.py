"""Once per region: the ice rheology factor, calibrated so the glaciers' volume matches reference
volumes (Farinotti et al. 2019 for RGI6 glaciers, or the region's own table)."""

import json

import dagster as dg
import pandas as pd

from ..constants import CODE_VERSIONS, REFERENCE_VOLUME_YEAR, REGION_LOCK_RELPATH, RHEOLOGY_RELPATH
from ..inventory.reference import outline_areas, outline_geometries, reference_volumes
from ..resources import ProductStore, RegionSource
from ..steps.rheology import calibrate_rheology, rheology_fingerprint
from ..storage import atomic_path, file_lock
from ._metadata import markdown_table, metadata
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


def current_fingerprint(region: RegionSource, inventory, spec=None) -> tuple[str, dict]:
    """The fingerprint the rheology would have from today's inputs, and the references it is of."""
    spec = region.load() if spec is None else spec
    refs = region_references(region, inventory, spec)
    return rheology_fingerprint(inventory, spec, refs), refs


def rheology_current(store: ProductStore, region: RegionSource, inventory, spec=None) -> bool:
    record = read_rheology(store)
    return record is not None and record.get("fingerprint") == current_fingerprint(region, inventory, spec)[0]


@dg.asset(deps=[INVENTORY], group_name="model", kinds={"json"}, code_version=CODE_VERSIONS["ice_rheology"])
def ice_rheology(context: dg.AssetExecutionContext, region: RegionSource, store: ProductStore) -> dg.MaterializeResult:
    """One factor f scaling the ice's mobility (IGM's Glen A and sliding) for the whole region,
    like OGGM's consensus calibration: the thickness inverted by mass conservation with IGM's flow
    law (`science/inversion.py`) on each glacier's outline nearest its reference date, summed
    over the glaciers with a reference volume, equals their summed reference. Every simulation
    uses f for its bed, its initial ice and its ice flow (`reports/rheology.json`). Always over
    the whole inventory, whatever subset runs; made again only when a reference, one of those
    outlines, the DEM or the forcing changes."""
    with file_lock(store.path(REGION_LOCK_RELPATH)):
        inventory, spec = load_inventory(store), region.load()
        fp, refs = current_fingerprint(region, inventory, spec)
        path = store.path(RHEOLOGY_RELPATH)
        record = read_rheology(store)
        reused = record is not None and record.get("fingerprint") == fp
        if record is None or not reused:
            record = {"fingerprint": fp, **calibrate_rheology(inventory, spec, refs)}
            with atomic_path(path, suffix=".json") as tmp:
                tmp.write_text(json.dumps(record, indent=1))
    for gid, why in record["skipped"].items():
        context.log.warning(f"{gid} ice_rheology: left out of the calibration: {why}")
    table = pd.DataFrame(record["glaciers"])
    return dg.MaterializeResult(data_version=dg.DataVersion(str(record["factor"])), metadata={
        **metadata({"path": path}),
        "factor": record["factor"], "raw_factor": record["raw_factor"], "n_glaciers": record["n_glaciers"],
        "reference_km3": record["reference_km3"], "reference_source": ", ".join(record["source"]) or "none",
        "skipped": dg.MetadataValue.json(record["skipped"]), "reused": reused,
        **({"note": record["note"]} if record.get("note") else {}),
        **({"per_glacier": markdown_table(table.head(200))} if len(table) else {}),
    })
