"""Per glacier and epoch: 25 m thickness, mask, outline (batched); per epoch: regional outlines."""


import dagster as dg

from ..constants import mask_relpath, outline_relpath, regional_outline_relpath, thickness_relpath, simulation_relpath
from ..partitions import epoch_partitions, glacier_epoch_partitions, split_key
from ..plots import markdown_image, outline_map_png
from ..resources import ProductStore
from ..workflow import code_for, make_mask, make_outline, make_regional_outlines, publish_thickness
from ._metadata import add_partition_metadata, failure, metadata
from .inventory import load_inventory

THICKNESS = dg.AssetKey("thickness_25m")
MASK = dg.AssetKey("glacier_mask")
OUTLINE = dg.AssetKey("glacier_outline")
by_glacier = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="glacier")
by_epoch = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="epoch")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(THICKNESS, deps=[dg.AssetDep("igm_simulation", partition_mapping=by_glacier)],
                     partitions_def=glacier_epoch_partitions, skippable=True, group_name="products",
                     kinds={"cog"},
                     description="Thickness at 25 m: bilinear from the 100 m simulation, cropped to the "
                                 "non-zero extent; Cloud-Optimized GeoTIFF `thickness/YEAR/ID_YEAR.tif`."),
        dg.AssetSpec(MASK, deps=[THICKNESS], partitions_def=glacier_epoch_partitions, skippable=True,
                     group_name="products", kinds={"cog"},
                     description="Glacier mask: thickness >= 2 m, coded with the glacier's unique integer."),
        dg.AssetSpec(OUTLINE, deps=[MASK], partitions_def=glacier_epoch_partitions, skippable=True,
                     group_name="products", kinds={"geoparquet"},
                     description="Glacier outline: the mask vectorized with holes, area from the geometry."),
    ],
    partitions_def=glacier_epoch_partitions,
    can_subset=True,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def epoch_products(context: dg.AssetExecutionContext, store: ProductStore):
    """Cheap per-(glacier, epoch) products, batched: a backfill runs them as one run per range.

    Every partition is computed on its own, so one bad glacier is reported by name and the others
    still get their products. If all succeed, each asset returns one result for the whole range,
    with every partition's own metadata, which Dagster records in bulk (deploy.EVENT_BATCHING); if
    some fail, the good partitions are recorded one by one and the run fails naming the bad ones."""
    selected = [k for k in (THICKNESS, MASK, OUTLINE) if k in context.selected_asset_keys]
    keys = context.partition_keys
    inventory = None
    done: dict[tuple[dg.AssetKey, str], dict] = {}
    problems = []
    step = max(1, len(keys) // 10)
    for i, pk in enumerate(keys):
        gid, year = split_key(pk)
        try:
            thk_path = store.path(thickness_relpath(gid, year))
            mask_path = store.path(mask_relpath(gid, year))
            if THICKNESS in selected:
                done[THICKNESS, pk] = metadata(publish_thickness(store.path(simulation_relpath(gid)), gid, year, thk_path))
            if MASK in selected:
                if inventory is None:
                    inventory = load_inventory(store)
                done[MASK, pk] = metadata(make_mask(thk_path if thk_path.exists() else None, gid,
                                                    code_for(gid, inventory), mask_path))
            if OUTLINE in selected:
                done[OUTLINE, pk] = metadata(make_outline(mask_path if mask_path.exists() else None, gid, year,
                                                          store.path(outline_relpath(gid, year))))
        except Exception as exc:  # one glacier's problem must not stop the others
            context.log.error(f"{gid} {year}: {exc}")
            problems.append(f"{gid} {year}: {exc}")
        if len(keys) >= 100 and ((i + 1) % step == 0 or i + 1 == len(keys)):  # progress of a big batch
            context.log.info(f"per-epoch products: {i + 1}/{len(keys)} partitions, {len(problems)} failed")
    if problems:
        for (key, pk), md in done.items():
            yield dg.AssetMaterialization(key, partition=pk, metadata=md)
        raise failure("glacier products", problems)
    add_partition_metadata(context, done)
    for key in selected:
        yield dg.MaterializeResult(asset_key=key)


class RegionalOutlinesConfig(dg.Config):
    allow_missing: bool = False  # publish an epoch even if some glaciers have no outline yet


@dg.asset(partitions_def=epoch_partitions, group_name="products", kinds={"shapefile", "geoparquet"},
          deps=[dg.AssetDep(OUTLINE, partition_mapping=by_epoch)],
          backfill_policy=dg.BackfillPolicy.single_run(), output_required=False)
def regional_outlines(context: dg.AssetExecutionContext, config: RegionalOutlinesConfig, store: ProductStore):
    """All glacier outlines of one epoch in one file, `regional_outlines/YEAR.shp` (and
    `.parquet`), in the Albers equal-area projection (lon_0 105, lat_1 25, lat_2 47 by default)."""
    glaciers = sorted(load_inventory(store)["glacier_id"].unique())
    problems = []
    for key in context.partition_keys:
        year = int(key)
        paths = [store.path(outline_relpath(g, year)) for g in glaciers]
        missing = [g for g, p in zip(glaciers, paths) if not p.exists()]
        if missing and not config.allow_missing:
            problems.append(f"{year}: no outline yet for {', '.join(missing)}")
            continue
        figures = make_regional_outlines([p for p in paths if p.exists()], year, store.albers,
                                         store.path(regional_outline_relpath(year, "shp")),
                                         store.path(regional_outline_relpath(year, "parquet")))
        figures["n_missing"] = len(missing)
        table = figures.pop("table")
        png = outline_map_png(f"{year}: {len(table)} glaciers, {figures['area_km2']:.2f} km2", table)
        md = {**metadata(figures), "outline_map": dg.MetadataValue.md(markdown_image(png, f"outlines {year}"))}
        yield dg.AssetMaterialization(context.asset_key, partition=key, metadata=md)
    if problems:
        raise failure("regional outlines", problems)
