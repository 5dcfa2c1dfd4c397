"""The outline inventory: every initial and control outline of the region, validated."""


import dagster as dg
import geopandas as gpd
import pandas as pd

from ..constants import GEOGRAPHIC_CRS, INVENTORY_RELPATH
from ..inventory.outlines import build_inventory
from ..partitions import register_glaciers
from ..resources import ProductStore, RegionSource
from ..storage import atomic_path, write_geoparquet
from ._metadata import markdown_table, metadata


def load_inventory(store: ProductStore) -> gpd.GeoDataFrame:
    path = store.path(INVENTORY_RELPATH)
    if not path.exists():
        raise dg.Failure(description=f"no outline inventory at {path}: materialize outline_inventory first")
    return gpd.read_parquet(path)


@dg.asset(group_name="inputs", kinds={"geoparquet"})
def outline_inventory(context: dg.AssetExecutionContext, region: RegionSource, store: ProductStore) -> dg.MaterializeResult:
    """Initial (1970s) and control (~1990/2000/2010/2020) outlines of every glacier in the region,
    read from RGI6 / CGI-style files in any CRS, validated and stored as GeoParquet (EPSG:4326).
    Each valid glacier is registered as a `glaciers` partition (only new ones are added); rejected
    rows are logged with the glacier and the reason and listed in `inventory/rejected.csv`."""
    spec = region.load()
    inv, rejected = build_inventory(spec.outlines, spec.id_pattern, tuple(region.include))
    for r in rejected:
        context.log.error(f"rejected outline: {r}")
    if inv.empty:
        raise dg.Failure(description=f"region {spec.name}: no valid glacier in the inventory",
                         metadata={"rejected": dg.MetadataValue.json([str(r) for r in rejected])})
    path = write_geoparquet(store.path(INVENTORY_RELPATH), inv)
    rej_path = store.path("inventory/rejected.csv")
    with atomic_path(rej_path) as tmp:
        pd.DataFrame([vars(r) for r in rejected], columns=["glacier_id", "source", "reason"]).to_csv(tmp, index=False)
    ids = sorted(inv["glacier_id"].unique())
    added = register_glaciers(context.instance, ids)
    per_year = (inv.groupby(["role", "year"]).agg(glaciers=("glacier_id", "nunique"), area_km2=("area_km2", "sum"))
                .round(3).reset_index())
    return dg.MaterializeResult(metadata={
        **metadata({"path": path, "rejected_path": rej_path, "region": spec.name, "crs": GEOGRAPHIC_CRS}),
        "n_glaciers": len(ids),
        "n_outlines": len(inv),
        "n_rejected": len(rejected),
        "partitions_added": len(added),
        "area_km2": round(float(inv.loc[inv["role"] == "initial", "area_km2"].sum()), 3),
        "outlines_by_date": markdown_table(per_year),
    })
