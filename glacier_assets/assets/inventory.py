"""The outline inventory: every initial and control outline of the region, validated."""


import dagster as dg
import geopandas as gpd
import pandas as pd

from ..constants import (
    CODE_VERSIONS,
    GEOGRAPHIC_CRS,
    INVENTORY_RELPATH,
    MATCH_RELPATH,
    MISSING_RELPATH,
    REJECTED_RELPATH,
    UNMATCHED_RELPATH,
)
from ..fingerprints import fingerprint, input_parts
from ..inventory.outlines import InventoryBuild, Rejection, build_inventory
from ..inventory.region import RegionSpec
from ..partitions import register_glaciers
from ..resources import ProductStore, RegionSource
from ..science.masks import check_codes
from ..storage import atomic_path, read_parquet_metadata, write_geoparquet
from ._metadata import markdown_table, metadata

INVENTORY = dg.AssetKey("outline_inventory")
MATCH = dg.AssetKey("outline_match")


def load_inventory(store: ProductStore) -> gpd.GeoDataFrame:
    path = store.path(INVENTORY_RELPATH)
    if not path.exists():
        raise dg.Failure(description=f"no outline inventory at {path}: materialize outline_inventory first")
    return gpd.read_parquet(path)


def inventory_fingerprint(spec: RegionSpec) -> str:
    """The outline files (content), how they are read and matched, the selection and the id pattern."""
    return fingerprint("outline_inventory", spec.id_pattern, input_parts(spec.outlines), input_parts(spec.selection))


def _repairs(inv: gpd.GeoDataFrame) -> list[str]:
    if "repair" not in inv.columns:
        return []
    fixed = inv[inv["repair"].fillna("") != ""]
    return [f"{r.glacier_id} ({r.source}, {r.year}): {r.repair}" for r in fixed.itertuples()]


def _read_build(store: ProductStore) -> InventoryBuild:
    """The inventory as stored (see `_write_build`)."""
    inv = gpd.read_parquet(store.path(INVENTORY_RELPATH))
    rows = pd.read_csv(store.path(REJECTED_RELPATH), dtype=str).fillna("").to_dict("records")
    rejected = [Rejection(**r) for r in rows]
    return InventoryBuild(inv, rejected, gpd.read_parquet(store.path(MATCH_RELPATH)),
                          pd.read_csv(store.path(UNMATCHED_RELPATH), dtype={"source_id": str}),
                          pd.read_csv(store.path(MISSING_RELPATH), dtype=str),
                          read_parquet_metadata(store.path(INVENTORY_RELPATH)).get("selection", {}))


def _write_build(store: ProductStore, build: InventoryBuild, fp: str) -> None:
    """Every file of the inventory, each written atomically; the outlines last, since their
    fingerprint says that the set is complete."""
    write_geoparquet(store.path(MATCH_RELPATH), build.matches, {"fingerprint": fp})
    for relpath, table in ((REJECTED_RELPATH, pd.DataFrame([vars(r) for r in build.rejections],
                                                           columns=["glacier_id", "source", "reason"])),
                           (UNMATCHED_RELPATH, build.unmatched), (MISSING_RELPATH, build.missing)):
        with atomic_path(store.path(relpath)) as tmp:
            table.to_csv(tmp, index=False)
    write_geoparquet(store.path(INVENTORY_RELPATH), build.outlines, {"fingerprint": fp, "selection": build.selection})


def _match_metadata(build: InventoryBuild, store: ProductStore) -> dict:
    m = build.matches
    by_source = (m.groupby(["source", "status"]).agg(shares=("glacier_id", "size"), polygons=("source_id", "nunique"),
                                                     glaciers=("glacier_id", "nunique"), area_km2=("area_km2", "sum"))
                 .round(3).reset_index())
    unmatched = [f"{r.source} {r.source_id} ({r.year}, {r.area_km2:.3f} km2): {r.reason}"
                 for r in build.unmatched.itertuples()]
    missing = [f"{r.glacier_id}: no outline in {r.source}" for r in build.missing.itertuples()]
    return {
        **metadata({"path": store.path(MATCH_RELPATH), "unmatched_path": store.path(UNMATCHED_RELPATH),
                    "missing_path": store.path(MISSING_RELPATH)}),
        "n_shares": int((m["status"] == "matched").sum()),
        "n_slivers": int((m["status"] == "sliver").sum()),
        "n_unmatched": len(unmatched),
        "unmatched": dg.MetadataValue.json(unmatched[:200]),
        "n_missing": len(missing),
        "missing": dg.MetadataValue.json(missing[:200]),
        "by_source": markdown_table(by_source),
    }


@dg.multi_asset(
    specs=[
        dg.AssetSpec(INVENTORY, group_name="inputs", kinds={"geoparquet"},
                     code_version=CODE_VERSIONS["outline_inventory"],
                     description="Initial (1970s) and control (~1990/2000/2010/2020) outlines of every glacier in "
                                 "the region, validated, one row per glacier and date (GeoParquet, EPSG:4326)."),
        dg.AssetSpec(MATCH, group_name="inputs", kinds={"geoparquet"}, code_version=CODE_VERSIONS["outline_inventory"],
                     description="Outline files without the reference ids, matched to the glaciers by location: "
                                 "one row per polygon and glacier (source, source id, glacier, date, area, overlap "
                                 "fraction, status), with the polygons matched to no glacier and the glaciers a "
                                 "source has no outline for."),
    ],
    can_subset=True,
)
def outline_inventory(context: dg.AssetExecutionContext, region: RegionSource, store: ProductStore):
    """The region's glaciers and their outlines. The first outline file matched by id (RGI6 by
    default) names the glaciers; the spec's `selection` (basins, box, minimum area) cuts the region
    out of it; other files are matched by id or split between the glaciers by location
    (inventory/matching.py). Read from any CRS, validated and stored as GeoParquet (EPSG:4326).
    Both assets are always made together (the outlines need the match); the region's `include` list
    only limits which glaciers are registered as `glaciers` partitions (only new ones are added).
    Rejected rows are logged with the glacier and the reason and listed in
    `inventory/rejected.csv`; repaired geometries are listed with the repair. Not rebuilt when the
    outline files and settings did not change (fingerprint)."""
    spec = region.load()
    fp = inventory_fingerprint(spec)
    files = [store.path(p)
             for p in (INVENTORY_RELPATH, REJECTED_RELPATH, MATCH_RELPATH, UNMATCHED_RELPATH, MISSING_RELPATH)]
    reused = read_parquet_metadata(files[0]).get("fingerprint") == fp and all(f.exists() for f in files)
    build = _read_build(store) if reused else build_inventory(spec.outlines, spec.id_pattern, selection=spec.selection)
    inv, rejected = build.outlines, build.rejections
    ids = sorted(inv["glacier_id"].unique())
    unknown = sorted(set(region.include) - set(ids))
    for r in rejected:
        context.log.info(f"rejected outline: {r}")  # the main job's console names them itself
    for line in _repairs(inv):
        context.log.info(f"repaired outline: {line}")
    if unknown:
        context.log.error(f"requested glaciers not in the inventory: {', '.join(unknown)}")
    if inv.empty:
        raise dg.Failure(description=f"region {spec.name}: no valid glacier in the inventory",
                         metadata={"rejected": dg.MetadataValue.json([str(r) for r in rejected]),
                                   "selection": dg.MetadataValue.json(build.selection)})
    try:
        check_codes(ids)  # mask codes come from the ids alone: two hashed ids may collide
    except ValueError as exc:
        raise dg.Failure(description=f"region {spec.name}: {exc}") from exc
    if not reused:
        _write_build(store, build, fp)
    added = register_glaciers(context.instance, [g for g in ids if not region.include or g in region.include])
    per_year = (inv.groupby(["role", "year"]).agg(glaciers=("glacier_id", "nunique"), area_km2=("area_km2", "sum"))
                .round(3).reset_index())
    if MATCH in context.selected_asset_keys:
        yield dg.MaterializeResult(asset_key=MATCH, data_version=dg.DataVersion(fp),
                                   metadata={**_match_metadata(build, store), "reused": reused, "fingerprint": fp})
    if INVENTORY in context.selected_asset_keys:
        yield dg.MaterializeResult(asset_key=INVENTORY, data_version=dg.DataVersion(fp), metadata={
            **metadata({"path": files[0], "rejected_path": files[1], "region": spec.name, "crs": GEOGRAPHIC_CRS}),
            "n_glaciers": len(ids),
            "n_outlines": len(inv),
            "n_rejected": len(rejected),
            "rejected": dg.MetadataValue.json([str(r) for r in rejected[:200]]),
            "n_repaired": len(_repairs(inv)),
            "repaired": dg.MetadataValue.json(_repairs(inv)[:200]),
            "unknown_include": dg.MetadataValue.json(unknown),
            "partitions_added": len(added),
            "reused": reused,
            "fingerprint": fp,
            "area_km2": round(float(inv.loc[inv["role"] == "initial", "area_km2"].sum()), 3),
            "selection": dg.MetadataValue.json(build.selection),
            "outlines_by_date": markdown_table(per_year),
        })
