"""The outline inventory: every initial and control outline of the region, validated."""


import dagster as dg
import geopandas as gpd
import pandas as pd

from ..constants import CODE_VERSIONS, GEOGRAPHIC_CRS, INVENTORY_RELPATH, REJECTED_RELPATH
from ..fingerprints import fingerprint, input_parts
from ..inventory.outlines import Rejection, build_inventory
from ..inventory.region import RegionSpec
from ..partitions import register_glaciers
from ..resources import ProductStore, RegionSource
from ..storage import atomic_path, read_parquet_metadata, write_geoparquet
from ._metadata import markdown_table, metadata


def load_inventory(store: ProductStore) -> gpd.GeoDataFrame:
    path = store.path(INVENTORY_RELPATH)
    if not path.exists():
        raise dg.Failure(description=f"no outline inventory at {path}: materialize outline_inventory first")
    return gpd.read_parquet(path)


def inventory_fingerprint(spec: RegionSpec) -> str:
    """The outline files (content), how they are read, and the id pattern."""
    return fingerprint("outline_inventory", spec.id_pattern, input_parts(spec.outlines))


def _repairs(inv: gpd.GeoDataFrame) -> list[str]:
    if "repair" not in inv.columns:
        return []
    fixed = inv[inv["repair"].fillna("") != ""]
    return [f"{r.glacier_id} ({r.source}, {r.year}): {r.repair}" for r in fixed.itertuples()]


@dg.asset(group_name="inputs", kinds={"geoparquet"}, code_version=CODE_VERSIONS["outline_inventory"])
def outline_inventory(context: dg.AssetExecutionContext, region: RegionSource, store: ProductStore) -> dg.MaterializeResult:
    """Initial (1970s) and control (~1990/2000/2010/2020) outlines of every glacier in the region,
    read from RGI6 / CGI-style files in any CRS, validated and stored as GeoParquet (EPSG:4326).
    The inventory always holds the whole region; the region's `include` list only limits which
    glaciers are registered as `glaciers` partitions (only new ones are added). Rejected rows are
    logged with the glacier and the reason and listed in `inventory/rejected.csv`; repaired
    geometries are listed with the repair. Not rebuilt when the outline files and settings did
    not change (fingerprint)."""
    spec = region.load()
    fp = inventory_fingerprint(spec)
    path, rej_path = store.path(INVENTORY_RELPATH), store.path(REJECTED_RELPATH)
    reused = read_parquet_metadata(path).get("fingerprint") == fp and rej_path.exists()
    if reused:
        inv = gpd.read_parquet(path)
        rejected = [Rejection(**r) for r in pd.read_csv(rej_path, dtype=str).fillna("").to_dict("records")]
    else:
        inv, rejected = build_inventory(spec.outlines, spec.id_pattern)
    ids = sorted(inv["glacier_id"].unique())
    unknown = sorted(set(region.include) - set(ids))
    for r in rejected:
        context.log.error(f"rejected outline: {r}")
    for line in _repairs(inv):
        context.log.warning(f"repaired outline: {line}")
    if unknown:
        context.log.error(f"requested glaciers not in the inventory: {', '.join(unknown)}")
    if inv.empty:
        raise dg.Failure(description=f"region {spec.name}: no valid glacier in the inventory",
                         metadata={"rejected": dg.MetadataValue.json([str(r) for r in rejected])})
    if not reused:
        write_geoparquet(path, inv, {"fingerprint": fp})
        with atomic_path(rej_path) as tmp:
            pd.DataFrame([vars(r) for r in rejected], columns=["glacier_id", "source", "reason"]).to_csv(tmp, index=False)
    added = register_glaciers(context.instance, [g for g in ids if not region.include or g in region.include])
    per_year = (inv.groupby(["role", "year"]).agg(glaciers=("glacier_id", "nunique"), area_km2=("area_km2", "sum"))
                .round(3).reset_index())
    return dg.MaterializeResult(data_version=dg.DataVersion(fp), metadata={
        **metadata({"path": path, "rejected_path": rej_path, "region": spec.name, "crs": GEOGRAPHIC_CRS}),
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
        "outlines_by_date": markdown_table(per_year),
    })
