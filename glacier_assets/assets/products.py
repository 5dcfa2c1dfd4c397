"""Per glacier and epoch: 25 m thickness, mask, outline (batched); per epoch: regional outlines."""

import hashlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import dagster as dg
import geopandas as gpd

from ..constants import (
    CODE_VERSIONS,
    REGION_LOCK_RELPATH,
    mask_relpath,
    outline_relpath,
    regional_outline_relpath,
    simulation_relpath,
    thickness_relpath,
)
from ..errors import GlacierError
from ..fingerprints import file_digest, product_fingerprint, regional_fingerprint
from ..ledger import clear_failure, epoch_products_made
from ..partitions import epoch_partitions, glacier_epoch_partitions, split_key
from ..plots import markdown_image, outline_map_png, save_png
from ..resources import IGMRunner, ProductStore, RegionSource
from ..science.masks import glacier_code
from ..simulation_file import SimulationFile
from ..steps.epoch import make_epoch_products, make_mask, make_outline, make_thickness
from ..steps.regional import make_regional_outlines, regional_figures
from ..storage import file_lock, read_parquet_metadata
from ._metadata import failure, metadata
from ._steps import cause, glacier_states, note_cause, state_metadata
from .inventory import load_inventory

STEP = "glacier_products"

THICKNESS = dg.AssetKey("thickness_25m")
MASK = dg.AssetKey("glacier_mask")
OUTLINE = dg.AssetKey("glacier_outline")
by_glacier = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="glacier")
by_epoch = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="epoch")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(THICKNESS, deps=[dg.AssetDep("igm_simulation", partition_mapping=by_glacier)],
                     partitions_def=glacier_epoch_partitions, skippable=True, group_name="products",
                     code_version=CODE_VERSIONS[STEP], kinds={"cog"},
                     description="Thickness at 25 m: bilinear from the 100 m simulation within its ice "
                                 "cells, cropped to the non-zero extent; Cloud-Optimized GeoTIFF "
                                 "`thickness/YEAR/ID_YEAR.tif`."),
        dg.AssetSpec(MASK, deps=[THICKNESS], partitions_def=glacier_epoch_partitions, skippable=True,
                     group_name="products", kinds={"cog"}, code_version=CODE_VERSIONS[STEP],
                     description="Glacier mask: thickness >= 2 m, coded with the glacier's unique integer."),
        dg.AssetSpec(OUTLINE, deps=[MASK], partitions_def=glacier_epoch_partitions, skippable=True,
                     group_name="products", kinds={"geoparquet"}, code_version=CODE_VERSIONS[STEP],
                     description="Glacier outline: the mask vectorized with holes, area from the geometry."),
    ],
    partitions_def=glacier_epoch_partitions,
    can_subset=True,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def epoch_products(context: dg.AssetExecutionContext, store: ProductStore):
    """Cheap per-(glacier, epoch) products, batched: a backfill runs them as one run per range.

    Every partition is computed on its own, so one bad glacier is reported by name (and recorded
    in the ledger) and the others still get their products. A partition whose products were
    already made from the glacier's current simulation is not made again. A run of up to
    `PARTITION_METADATA_MAX` partitions records each as its own materialization with its own
    metadata; a bigger one that succeeds records each asset's range at once, with the range's
    figures, which Dagster writes in bulk (bench/region_scale.py, 2,004 glaciers on PostgreSQL: 26 s
    per epoch, against 80 s with an event per partition, which Dagster writes one by one). If
    some failed, the good partitions are recorded one by one and the run fails naming the bad
    ones."""
    selected = [k for k in (THICKNESS, MASK, OUTLINE) if k in context.selected_asset_keys]
    keys = context.partition_keys
    root = store.path("")
    done: dict[tuple[dg.AssetKey, str], dict] = {}
    problems = []
    jobs = [(pk, *split_key(pk), glacier_code(split_key(pk)[0])) for pk in keys]
    step = max(1, len(keys) // 10)
    for i, (pk, gid, year, figures, why) in enumerate(compute_partitions(root, jobs, selected)):
        if why is None:
            done.update({(k, pk): f for k, f in figures.items()})
            clear_failure(root, gid, STEP, year)
        else:  # one glacier's problem must not stop the others
            problems.append(note_cause(context, store, gid, STEP, why, year))
            context.log.error(problems[-1])
        if len(keys) >= 100 and ((i + 1) % step == 0 or i + 1 == len(keys)):  # progress of a big batch
            context.log.info(f"per-epoch products: {i + 1}/{len(keys)} partitions, {len(problems)} failed")
    if problems or len(keys) <= PARTITION_METADATA_MAX:
        for (key, pk), figures in done.items():
            yield dg.AssetMaterialization(key, partition=pk, metadata=metadata(figures))
        if problems:
            raise failure("glacier products", problems)
        return
    for key in selected:
        yield dg.MaterializeResult(asset_key=key, metadata=range_figures([f for (k, _), f in done.items() if k == key]))


PARTITION_METADATA_MAX = 500  # partitions of a run that each get their own metadata (see epoch_products)


def range_figures(figures: list[dict]) -> dict:
    """What a big run's range of one asset holds, from its partitions' figures: how many, made or
    reused, vanished, and the total area and volume where the asset has them."""
    out: dict = {"partitions": len(figures), "reused": sum(bool(f.get("reused")) for f in figures),
                 "vanished": sum(bool(f.get("vanished")) for f in figures),
                 "per_partition": "in each product's file (outline GeoParquet: area, fingerprint)"}
    for name in ("area_km2", "volume_km3"):
        values = [f[name] for f in figures if isinstance(f.get(name), (int, float))]
        if values:
            out[f"total_{name}_made"] = round(float(sum(values)), 4)  # reused partitions carry none
    return out


# --- the partitions of a batched run, on all cores -------------------------------------------------

POOL_MIN_PARTITIONS = 48  # fewer are made in the run's own process (a pool costs ~2 s to start once)
POOL_CHUNK = 16  # partitions per task sent to a worker
_POOL: dict = {}


def product_workers() -> int:
    """Processes that make a big batch's products: $GLACIER_PRODUCT_WORKERS, else the usable cores."""
    env = os.environ.get("GLACIER_PRODUCT_WORKERS", "")
    return max(1, int(env) if env.strip() else len(os.sched_getaffinity(0)))


def compute_partitions(root: Path, jobs: list[tuple], selected: list):
    """Yield (partition key, glacier, epoch, {asset key: figures} or None, cause or None) for each
    job (partition key, glacier, epoch, mask code), in order. A big batch is spread over a pool of
    worker processes (product_workers(); one run's partitions are independent files), a small one,
    or one in a process that may not have children (a daemonic executor's worker), made here.
    Each partition's failure is its own, as in the run's process; if a worker dies (a crash in a
    native library), the partitions of its task are made again one per task, so only the one
    that kills a worker is failed."""
    workers = min(product_workers(), -(-len(jobs) // POOL_CHUNK))
    if workers <= 1 or len(jobs) < POOL_MIN_PARTITIONS or multiprocessing.current_process().daemon:
        yield from _make_chunk(root, jobs, selected)
        return
    chunks = [jobs[i:i + POOL_CHUNK] for i in range(0, len(jobs), POOL_CHUNK)]
    pool = _pool(workers)
    futures = [pool.submit(_make_chunk_list, root, chunk, selected) for chunk in chunks]
    for chunk, fut in zip(chunks, futures):
        try:
            yield from fut.result()
        except BrokenProcessPool:
            yield from _one_by_one(root, chunk, selected, workers)


def _one_by_one(root: Path, jobs: list[tuple], selected: list, workers: int):
    for job in jobs:
        try:
            yield from _pool(workers).submit(_make_chunk_list, root, [job], selected).result()
        except BrokenProcessPool as exc:
            _POOL.pop(workers, None)
            pk, gid, year, _ = job
            yield pk, gid, year, None, f"a products worker process died ({exc})"


def _pool(workers: int) -> ProcessPoolExecutor:
    """One pool per worker count for the life of the process (the 13 epochs' runs of a main job
    share it), forked from a server that has imported the science once; a broken one is replaced."""
    pool = _POOL.get(workers)
    if pool is None or getattr(pool, "_broken", False):
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["glacier_assets.assets.products"])
        pool = _POOL[workers] = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    return pool


def _make_chunk_list(root: Path, jobs: list[tuple], selected: list) -> list[tuple]:
    return list(_make_chunk(root, jobs, selected))


def _make_chunk(root: Path, jobs: list[tuple], selected: list):
    for pk, gid, year, code in jobs:
        try:
            yield pk, gid, year, _glacier_epoch(root, code, gid, year, selected), None
        except Exception as exc:
            yield pk, gid, year, None, cause(exc, gid)


def _glacier_epoch(root: Path, code: int, gid: str, year: int, selected: list) -> dict:
    """One glacier's selected products at one epoch (figures per asset key); reused when the
    outline says they were made from the current simulation (its fingerprint is written only when
    all three are made). `code` is the glacier's mask code."""
    root = Path(root)
    sim = root / simulation_relpath(gid)
    sim_fp = SimulationFile(sim).fingerprint()
    if sim_fp is None:
        raise GlacierError(f"glacier {gid}: no simulation at {sim} (materialize igm_simulation first)")
    fp = product_fingerprint(sim_fp, year, code)
    thk_path, mask_path = root / thickness_relpath(gid, year), root / mask_relpath(gid, year)
    outline_path = root / outline_relpath(gid, year)
    all_three = len(selected) == 3
    if all_three and epoch_products_made(root, gid, year, fp) == (True, []):
        return {k: {"path": p, "reused": True, "fingerprint": fp}
                for k, p in ((THICKNESS, thk_path), (MASK, mask_path), (OUTLINE, outline_path))}
    if all_three:  # the usual case: each product made from the one before in memory
        figures = make_epoch_products(sim, gid, year, code, thk_path, mask_path, outline_path, fp)
        return dict(zip((THICKNESS, MASK, OUTLINE), figures))
    out = {}
    if THICKNESS in selected:
        out[THICKNESS] = make_thickness(sim, gid, year, thk_path)
    if MASK in selected:
        out[MASK] = make_mask(thk_path if thk_path.exists() else None, gid, code, mask_path)
    if OUTLINE in selected:
        out[OUTLINE] = make_outline(mask_path if mask_path.exists() else None, gid, year, outline_path,
                                    fp if all_three else None)
    return out


@dg.asset(partitions_def=epoch_partitions, group_name="products", kinds={"shapefile", "geoparquet"},
          deps=[dg.AssetDep(OUTLINE, partition_mapping=by_epoch)], code_version=CODE_VERSIONS["regional_outlines"],
          backfill_policy=dg.BackfillPolicy.single_run(), output_required=False)
def regional_outlines(context: dg.AssetExecutionContext, store: ProductStore, region: RegionSource, igm: IGMRunner):
    """All glacier outlines of one epoch in one file, `regional_outlines/YEAR.shp` (and
    `.parquet`), in the Albers equal-area projection (lon_0 105, lat_1 25, lat_2 47 by default),
    as a mosaic: where touching glaciers' simulated ice overlaps, the overlap goes to the glacier
    whose initial outline is nearer, so no ground is counted twice. Made from the glaciers whose
    products are complete and current (ledger.py); glaciers that failed, are not simulated yet, or
    whose inputs changed since are left out and listed in the metadata. Rewritten only when the
    set of glaciers or their outlines changed. Its map (`regional_outlines/YEAR.png`: zoomed to
    the glaciers, lon/lat graticule, scale bar) is drawn every time, into the metadata and beside
    the files."""
    with file_lock(store.path(REGION_LOCK_RELPATH)):
        inventory = load_inventory(store)
        state = glacier_states(store, region, igm, inventory)
        if not state.current:
            raise dg.Failure(description="regional outlines: no glacier has complete, current products "
                                         f"({state.summary()})", metadata=state_metadata(state))
        first = inventory[inventory["role"] == "initial"].drop_duplicates("glacier_id").set_index("glacier_id").geometry
        initial = {g: first[g] for g in state.current}  # the mosaic splits overlaps by them
        shapes = {g: hashlib.sha256(geom.wkb).hexdigest()[:16] for g, geom in initial.items()}
        for key in context.partition_keys:
            year = int(key)
            paths = [store.path(outline_relpath(g, year)) for g in state.current]
            fp = regional_fingerprint(year, store.albers,
                                      [(g, file_digest(p), shapes[g]) for g, p in zip(state.current, paths)])
            shp = store.path(regional_outline_relpath(year, "shp"))
            pq_path = store.path(regional_outline_relpath(year, "parquet"))
            reused = shp.exists() and read_parquet_metadata(pq_path).get("fingerprint") == fp
            if reused:
                table = gpd.read_parquet(pq_path)
                figures = regional_figures(table, store.albers, shp, pq_path)
            else:
                figures = make_regional_outlines(paths, year, store.albers, shp, pq_path, initial, fp)
                table = figures.pop("table")
            if figures["overlapping_pairs"]:
                context.log.warning(f"regional outlines {year}: {figures['overlapping_pairs']} pairs of glaciers "
                                    f"overlap, {figures['overlap_area_km2']} km2 counted twice")
            png = outline_map_png(f"Glacier outlines {year}: {len(table)} glaciers, {figures['area_km2']:.2f} km²",
                                  table, store.albers)
            figures["outline_map_path"] = save_png(store.path(regional_outline_relpath(year, "png")), png)
            md = {**metadata(figures), "reused": reused,
                  "outline_map": dg.MetadataValue.md(markdown_image(png, f"outlines {year}"))}
            yield dg.AssetMaterialization(context.asset_key, partition=key,
                                          metadata={**md, "fingerprint": fp, **state_metadata(state)})
