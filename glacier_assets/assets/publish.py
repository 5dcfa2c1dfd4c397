"""Publishing: the STAC catalog in `catalog/`, written only for products that passed the gates.
A failed gate publishes nothing and leaves what was published before untouched."""

import json
import time
from importlib.metadata import version
from pathlib import Path

import dagster as dg
import geopandas as gpd
import numpy as np
import pandas as pd

from ..checks import audit_failed_glaciers, overlap_problems
from ..constants import (
    AREA_GATE_PCT,
    CALIBRATION_REPORT_RELPATH,
    CODE_VERSIONS,
    EPOCHS,
    OUTLINE_TABLE_RELPATH,
    PRODUCT_AUDIT_RELPATH,
    PUBLICATION_RECORD_RELPATH,
    REGION_LOCK_RELPATH,
    regional_outline_relpath,
    simulation_relpath,
    thickness_relpath,
)
from ..dataset_texts import DatasetTexts, dataset_texts, outline_dates_text
from ..inventory.region import RegionSpec
from ..publication import live_version, new_version
from ..resources import IGMRunner, ProductStore, RegionSource
from ..science.quality import area_gate, validation_summary, validation_table
from ..simulation_file import SimulationFile
from ..stac import (
    CatalogStats,
    Provenance,
    ThicknessProduct,
    catalog_json_paths,
    thickness_item_paths,
    validate_objects,
    write_catalog,
)
from ..storage import atomic_path, file_lock
from ._metadata import metadata
from ._steps import glacier_states, state_metadata
from .inventory import load_inventory
from .quality import calibration_report, geodetic_comparison, product_audit, validation_report
from .rheology import read_rheology


class StacCatalogConfig(dg.Config):
    validate_items: bool = True  # validate every catalog, collection and (re)written item offline
    workers: int = 2  # processes publishing thickness items


def _software(package_version: str) -> dict[str, str]:
    return {"glacier_assets": package_version, "dagster": version("dagster")}


def catalog_texts(store: ProductStore, spec: RegionSpec) -> DatasetTexts:
    """The catalog's texts: the region spec's `dataset` key (the built-in region's holds the seed
    dataset's), and the lineage of what this run used (the rheology's reference volumes among it)."""
    return dataset_texts(spec, rheology=read_rheology(store))


def publication_settings(store: ProductStore, texts: DatasetTexts) -> tuple:
    """What a publication depends on beside the glaciers' states: projection, package version, texts."""
    return store.albers, version("glacier_assets"), texts.digest()


def item_quality(report: pd.DataFrame) -> dict[str, dict]:
    """Per glacier, the figures its thickness items carry: where the simulated ice is against its
    outlines (mean IoU and its ceiling on the model grid, mean share of the tongues under ice) and
    the shape flag (science/shape.py; "" when none)."""
    table = validation_table(report).set_index("glacier_id")
    num = {"iou": "glacier_assets:iou", "ceiling_iou": "glacier_assets:ceiling_iou",
           "tongue_covered": "glacier_assets:tongue_covered"}
    return {str(g): {**{key: (round(float(r[col]), 3) if np.isfinite(r[col]) else None) for col, key in num.items()},
                     "glacier_assets:shape_flag": str(r["shape_flag"])} for g, r in table.iterrows()}


def _provenance(store: ProductStore, glacier_id: str, package_version: str, texts: DatasetTexts,
                outlines: str, quality: dict) -> Provenance:
    software = _software(package_version)
    status = "uncalibrated"
    attrs = SimulationFile(store.path(simulation_relpath(glacier_id))).attrs()
    software.update({k.removeprefix("version_"): str(v) for k, v in attrs.items() if k.startswith("version_")})
    status = attrs.get("calibration_status", status)
    return Provenance(software=software, calibration_status=status, version=package_version, texts=texts,
                      outlines=outlines, quality=quality)


def published_glaciers(root: Path) -> list[str]:
    """Glaciers with thickness items in the published catalog at `root`."""
    return sorted({p.stem.rsplit("_", 1)[0] for p in thickness_item_paths(root)})


def publication_record(store: ProductStore) -> dict:
    path = store.path(PUBLICATION_RECORD_RELPATH)
    return json.loads(path.read_text()) if path.exists() else {}


def write_publication_record(store: ProductStore, record: dict) -> None:
    """What the live catalog was published from; an empty `fingerprint` makes the next run publish again."""
    with atomic_path(store.path(PUBLICATION_RECORD_RELPATH), suffix=".json") as tmp:
        tmp.write_text(json.dumps(record, indent=1))


class InvalidCatalog(Exception):
    """A new catalog version had invalid STAC objects; it was not published."""

    def __init__(self, problems: list[str]):
        super().__init__(f"invalid STAC: {problems[:5]}")
        self.problems = problems


def write_version(store: ProductStore, thickness: dict[str, list[ThicknessProduct]], outlines: dict[int, tuple],
                  provenance: dict[str, Provenance], package_version: str, *, failed: dict[str, str],
                  region_bbox: list[float], quality: dict | None = None, workers: int = 1,
                  validate: bool = True) -> tuple[CatalogStats, Path | None]:
    """The one publish path, for the catalog asset and `python -m glacier_assets remove`: a new
    catalog version where `thickness`' glaciers are replaced (an empty list removes one:
    stac.write_catalog), its catalogs, collections and rewritten items validated, then made live.
    Raises InvalidCatalog, leaving the live version as it was. Returns what changed and the live version."""
    with new_version(store.catalog_path()) as stage:
        stats = write_catalog(stage, thickness, outlines, provenance, package_version, workers=workers,
                              failed=failed, region_bbox=region_bbox, quality=quality)
        if validate:
            problems = validate_objects(catalog_json_paths(stage) + [Path(p) for p in stats.written],
                                        store.stac_schemas_path())
            if problems:
                raise InvalidCatalog(problems)
    return stats, live_version(store.catalog_path())


@dg.asset(deps=[calibration_report, validation_report, product_audit], group_name="publish",
          kinds={"stac", "cog", "shapefile"}, code_version=CODE_VERSIONS["stac_catalog"])
def stac_catalog(context: dg.AssetExecutionContext, config: StacCatalogConfig, store: ProductStore,
                 region: RegionSource, igm: IGMRunner):
    """The published products and their static STAC 1.1 catalog in `catalog/`: a thickness
    collection (one item per glacier x epoch beside its COG, a sub-catalog per epoch), an outline
    collection (one item per epoch: zipped shapefile + GeoParquet) and `items.parquet`
    (stac-geoparquet). Runs after the blocking checks pass and re-verifies the area gate and the
    product audit itself.

    Publishes the glaciers whose products are complete and current, replacing exactly their
    items; every other glacier already in the catalog keeps its items and outline rows byte for
    byte (removing one is an explicit act: `python -m glacier_assets remove`). Failed glaciers
    are listed in the collections. The new catalog is built as a new version beside the live one
    and switched to in one rename (publication.py), so readers never see half of it."""
    with file_lock(store.path(REGION_LOCK_RELPATH)):
        report = pd.read_csv(store.path(CALIBRATION_REPORT_RELPATH))
        audit = pd.read_csv(store.path(PRODUCT_AUDIT_RELPATH))
        gate = area_gate(report)
        overlapping = overlap_problems(gpd.read_parquet(store.path(OUTLINE_TABLE_RELPATH)))[0]
        if not gate.passed or overlapping:
            raise dg.Failure(
                description=(f"not published: area gate {'passed' if gate.passed else 'FAILED'} "
                             f"(mean {gate.mean_abs_diff_pct:.2f} %; worst {gate.worst}"
                             f"{'; ' + gate.note if gate.note else ''})"
                             + (f"; outlines overlap: {overlapping}" if overlapping else "")),
                metadata={"worst_glaciers": dg.MetadataValue.json(gate.worst)})
        audit_failed = audit_failed_glaciers(audit)  # left out, named; the others publish
        for gid, why in sorted(audit_failed.items()):
            context.log.warning(f"{gid} not published: {why}")
        inventory = load_inventory(store)
        state = glacier_states(store, region, igm, inventory)
        state.failed.update({g: why for g, why in audit_failed.items() if g in state.current})
        checked = set(report["glacier_id"]) & set(audit["glacier_id"])
        glaciers = [g for g in state.current if g in checked and g not in audit_failed]
        quality = {**validation_summary(report[report["glacier_id"].isin(glaciers)],
                                        geodetic_comparison(store, region, glaciers)),
                   "area_gate_pct": AREA_GATE_PCT, "rheology": _rheology_summary(store)}
        texts = catalog_texts(store, region.load())
        stats, live = _publish(store, config, inventory, glaciers, state.failed, quality, texts, item_quality(report))
        record = {"fingerprint": state.publication_fingerprint(*publication_settings(store, texts)),
                  "version": live.name, "glaciers": glaciers, "failed": state.failed,
                  "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        write_publication_record(store, record)
    root = store.catalog_path()
    carried = sorted(set(stats.glaciers) - set(glaciers))
    context.log.info(f"catalog version {live.name}: {stats.items} items ({stats.new} new, {stats.updated} updated, "
                     f"{stats.unchanged} unchanged, {stats.removed} removed); {len(glaciers)} glaciers published, "
                     f"{len(carried)} kept from earlier, {len(state.failed)} failed")
    return dg.MaterializeResult(metadata={
        **metadata({"path": root / "catalog.json", "items_parquet": root / "items.parquet"}),
        "catalog_version": live.name,
        "n_items": stats.items, "n_thickness_items": stats.thickness_items, "n_outline_items": stats.outline_items,
        "new": stats.new, "updated": stats.updated, "unchanged": stats.unchanged, "removed": stats.removed,
        "validated_objects": len(stats.written), "n_glaciers": len(glaciers),
        "n_glaciers_in_catalog": len(stats.glaciers),
        "kept_from_earlier": dg.MetadataValue.json(carried),
        "regional_mean_abs_diff_pct": round(gate.mean_abs_diff_pct, 3) if gate.n_comparisons else None,
        **state_metadata(state),
    })


def _rheology_summary(store: ProductStore) -> dict:
    record = read_rheology(store) or {}
    return {k: record.get(k) for k in ("factor", "inversion_factor", "sample_ratio", "n_glaciers", "reference_km3",
                                       "source")}


def _publish(store: ProductStore, config: StacCatalogConfig, inventory, glaciers: list[str],
             failed: dict[str, str], quality: dict, texts: DatasetTexts, per_glacier: dict[str, dict]) -> tuple:
    """Write a new catalog version replacing `glaciers`' products (validated before it goes live)."""
    package_version = version("glacier_assets")
    thickness = {g: [ThicknessProduct(g, y, store.path(thickness_relpath(g, y))) for y in EPOCHS
                     if store.path(thickness_relpath(g, y)).exists()] for g in glaciers}
    outlines = {}
    for year in EPOCHS:
        shp = store.path(regional_outline_relpath(year, "shp"))
        if shp.exists():
            table = gpd.read_parquet(shp.with_suffix(".parquet"))
            kept = table[table["glacier_id"].isin(glaciers)]
            outlines[year] = (kept, shp if len(kept) == len(table) else None)
    dates = inventory.groupby("glacier_id")[["role", "year"]].apply(lambda t: list(t.itertuples(index=False)))
    provenance = {g: _provenance(store, g, package_version, texts, outline_dates_text(dates.get(g, [])),
                                 per_glacier.get(g, {})) for g in glaciers}
    provenance["__region__"] = Provenance(software=_software(package_version), version=package_version, texts=texts)
    bbox = [float(v) for v in inventory.total_bounds]
    try:
        return write_version(store, thickness, outlines, provenance, package_version, failed=failed, region_bbox=bbox,
                             quality=quality, workers=config.workers, validate=config.validate_items)
    except InvalidCatalog as exc:
        raise dg.Failure(description=f"invalid STAC (nothing published): {exc.problems[:5]}",
                         metadata={"problems": dg.MetadataValue.json(exc.problems[:100])}) from None
