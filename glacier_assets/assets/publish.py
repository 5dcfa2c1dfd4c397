"""Publishing: the STAC catalog in `catalog/`, written only for products that passed the gates.
A failed gate publishes nothing and leaves what was published before untouched."""

from importlib.metadata import version

import dagster as dg
import pandas as pd
import xarray as xr

from ..checks import audit_problems
from ..constants import (
    CALIBRATION_REPORT_RELPATH,
    EPOCHS,
    PRODUCT_AUDIT_RELPATH,
    regional_outline_relpath,
    simulation_relpath,
    thickness_relpath,
)
from ..resources import ProductStore
from ..science.quality import area_gate
from ..stac import Provenance, ThicknessProduct, catalog_json_paths, validate_objects, write_catalog
from ._metadata import metadata
from .inventory import load_inventory
from .quality import calibration_report, product_audit


class StacCatalogConfig(dg.Config):
    validate_items: bool = True  # validate every catalog, collection and (re)written item offline
    workers: int = 2  # processes publishing thickness items


def _software(package_version: str) -> dict[str, str]:
    return {"glacier_assets": package_version, "dagster": version("dagster")}


def _provenance(store: ProductStore, glacier_id: str, package_version: str) -> Provenance:
    software = _software(package_version)
    status = "uncalibrated"
    sim = store.path(simulation_relpath(glacier_id))
    if sim.exists():
        with xr.open_dataset(sim) as ds:
            software.update({k.removeprefix("version_"): str(v) for k, v in ds.attrs.items()
                             if k.startswith("version_")})
            status = ds.attrs.get("calibration_status", status)
    return Provenance(software=software, calibration_status=status, version=package_version)


@dg.asset(deps=[calibration_report, product_audit], group_name="publish", kinds={"stac", "cog", "shapefile"})
def stac_catalog(context: dg.AssetExecutionContext, config: StacCatalogConfig, store: ProductStore):
    """The published products and their static STAC 1.1 catalog in `catalog/`: a thickness
    collection (one item per glacier x epoch beside its COG, a sub-catalog per epoch), an outline
    collection (one item per epoch: zipped shapefile + GeoParquet) and `items.parquet`
    (stac-geoparquet). Runs after the blocking checks pass and re-verifies the area gate and the
    product audit itself. Incremental: only items whose product changed are rewritten; items of
    products that are gone are removed. Everything is validated offline."""
    report = pd.read_csv(store.path(CALIBRATION_REPORT_RELPATH))
    gate = area_gate(report)
    problems = {k: v for k, v in audit_problems(pd.read_csv(store.path(PRODUCT_AUDIT_RELPATH))).items() if v}
    if not gate.passed or problems:
        raise dg.Failure(
            description=(f"not published: area gate {'passed' if gate.passed else 'FAILED'} "
                         f"(mean {gate.mean_abs_diff_pct:.2f} %; worst {gate.worst}); audit problems {problems}"),
            metadata={"worst_glaciers": dg.MetadataValue.json(gate.worst)})
    package_version = version("glacier_assets")
    glaciers = sorted(load_inventory(store)["glacier_id"].unique())
    products = [ThicknessProduct(g, y, store.path(thickness_relpath(g, y))) for y in EPOCHS for g in glaciers]
    products = [p for p in products if p.source.exists()]
    outlines = {y: store.path(regional_outline_relpath(y, "shp")) for y in EPOCHS}
    outlines = {y: p for y, p in outlines.items() if p.exists()}
    provenance = {g: _provenance(store, g, package_version) for g in glaciers}
    provenance["__region__"] = Provenance(software=_software(package_version), version=package_version)
    root = store.catalog_path()
    stats = write_catalog(root, products, outlines, provenance, package_version, workers=config.workers)
    checked = 0
    if config.validate_items:
        schemas = store.stac_schemas_path()
        targets = catalog_json_paths(root) + [root / p for p in stats.written]
        problems = validate_objects(targets, schemas)
        checked = len(targets)
        if problems:
            raise dg.Failure(description=f"invalid STAC: {problems[:5]}",
                             metadata={"problems": dg.MetadataValue.json(problems[:100])})
    context.log.info(f"catalog: {stats.items} items ({stats.new} new, {stats.updated} updated, "
                     f"{stats.unchanged} unchanged, {stats.removed} removed)")
    return dg.MaterializeResult(metadata={
        **metadata({"path": root / "catalog.json", "items_parquet": root / "items.parquet"}),
        "n_items": stats.items, "n_thickness_items": stats.thickness_items, "n_outline_items": stats.outline_items,
        "new": stats.new, "updated": stats.updated, "unchanged": stats.unchanged, "removed": stats.removed,
        "validated_objects": checked, "n_glaciers": len(glaciers),
        "regional_mean_abs_diff_pct": round(gate.mean_abs_diff_pct, 3) if gate.n_comparisons else None,
    })
