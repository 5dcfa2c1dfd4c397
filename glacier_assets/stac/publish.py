"""Publishing the catalog folder incrementally: COGs and items copied or rewritten only when
their product changed, the epochs' outline files merged, the catalogs and collections, the
stac-geoparquet index (the package's docstring: layout)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pystac
from pystac import MediaType
from pystac.extensions.raster import RasterExtension

from ..constants import (
    PRODUCT_RESOLUTION_M,
)
from ..storage import SHAPEFILE_PARTS, atomic_path
from .items import (
    Provenance,
    ThicknessProduct,
    catalog_dict,
    make_collection,
    make_extent,
    make_link,
    multihash_sha256,
    outline_item,
    thickness_band,
    thickness_item,
)
from .texts import (
    INDEX_TITLE,
    OUTLINES_DESCRIPTION,
    OUTLINES_TITLE,
    THICKNESS_ASSET_TITLE,
    THICKNESS_DESCRIPTION,
    THICKNESS_TITLE,
    thickness_year_description,
    thickness_year_title,
)


def _write_json(path: Path, obj: dict, only_if_changed: bool = True) -> bool:
    data = orjson.dumps(obj, option=orjson.OPT_INDENT_2)
    if only_if_changed and path.exists() and path.read_bytes() == data:
        return False
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_bytes(data)
    return True


def _read_json(path: Path) -> dict | None:
    try:
        return orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None


def _publish_chunk(jobs: list[tuple]) -> list[tuple[str, str]]:
    """Worker: for each (product, catalog root, provenance), copy the COG and write its item
    unless the published copy is identical. Returns (status, item path) of each."""
    import rasterio

    # GDAL reads only the COG's header: no listing of its folder (4,000 files), and the CRS from the
    # GeoKeys alone (by default it also builds it from the EPSG database to compare): 0.65 -> 0.45 ms a COG
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", GTIFF_SRS_SOURCE="GEOKEYS"):
        return [_publish_cog(*job) for job in jobs]


def _publish_cog(product: ThicknessProduct, root: Path, prov: Provenance) -> tuple[str, str]:
    cog = root / "thickness" / str(product.year) / product.source.name
    item_path = cog.with_suffix(".json")
    checksum = multihash_sha256(product.source)
    old = _read_json(item_path)
    if old and cog.exists() and old["assets"]["thickness"].get("file:checksum") == checksum \
            and old["properties"].get("calibration_status") == prov.calibration_status \
            and all(old["properties"].get(k) == v for k, v in prov.quality.items()) \
            and old["properties"].get("processing:software") == prov.software:
        return "unchanged", str(item_path)
    with atomic_path(cog, suffix=".tif") as tmp:
        shutil.copyfile(product.source, tmp)
    item = thickness_item(product, cog, checksum, prov)
    _write_json(item_path, item, only_if_changed=False)
    return ("updated" if old else "new"), str(item_path)


def _zip_shapefile(shp: Path, dest: Path) -> None:
    """Zip a shapefile's parts with fixed timestamps, so equal content gives an equal checksum."""
    with atomic_path(dest, suffix=".zip") as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for part in (shp.with_suffix(s) for s in SHAPEFILE_PARTS):
                if part.exists():
                    info = zipfile.ZipInfo(part.name, date_time=(1980, 1, 1, 0, 0, 0))
                    info.compress_type = zipfile.ZIP_DEFLATED
                    zf.writestr(info, part.read_bytes())


@dataclass
class CatalogStats:
    items: int = 0
    thickness_items: int = 0
    outline_items: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    glaciers: list[str] = field(default_factory=list)  # glaciers with a thickness item in the catalog
    written: list[str] = field(default_factory=list)  # item files (re)written this time


def _publish_outlines(folder: Path, year: int, table, source: Path | None, replaced: set[str]) -> bool:
    """The epoch's published outline files: `table` (the glaciers being published) plus the rows
    already published for every other glacier. When nothing is carried over, the work area's
    files are copied as they are (`source`, a shapefile with its .parquet beside it). Returns
    False when the epoch has nothing to publish."""
    import geopandas as gpd
    import pandas as pd

    from ..storage import write_geoparquet, write_shapefile

    ppath = folder / f"{year}.parquet"
    old = gpd.read_parquet(ppath) if ppath.exists() else None
    if old is None and table is None:
        return False
    carried = old[~old["glacier_id"].isin(replaced)] if old is not None else None
    folder.mkdir(parents=True, exist_ok=True)
    if (carried is None or carried.empty) and source is not None:
        _zip_shapefile(source, folder / f"{year}.zip")
        with atomic_path(ppath, suffix=".parquet") as tmp:
            shutil.copyfile(source.with_suffix(".parquet"), tmp)
        return True
    parts = [t for t in (table, carried) if t is not None and len(t)]
    base = table if table is not None else carried
    assert base is not None  # one of them is set (returned above when neither is)
    merged = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=base.crs) if parts \
        else base.iloc[:0]
    merged = merged.sort_values("glacier_id").reset_index(drop=True)
    if old is not None and _rows(merged) == _rows(old):
        return True  # the same outlines: keep the published files (and their checksums) as they are
    with tempfile.TemporaryDirectory(prefix=f".{year}.{os.getpid()}.", dir=folder) as tmpdir:
        shp = write_shapefile(Path(tmpdir) / f"{year}.shp", merged)
        _zip_shapefile(shp, folder / f"{year}.zip")
    write_geoparquet(ppath, merged)
    return True


def _rows(gdf) -> list[tuple]:
    return sorted(zip(gdf["glacier_id"], gdf.geometry.to_wkb(), gdf["area_km2"].round(6)))


def write_catalog(root: Path, thickness: dict[str, list[ThicknessProduct]], outlines: dict[int, tuple],
                  provenance: dict[str, Provenance], version: str, workers: int = 1,
                  failed: dict[str, str] | None = None, region_bbox: list[float] | None = None,
                  quality: dict | None = None) -> CatalogStats:
    """Publish some glaciers' products into the catalog folder `root` and rewrite its STAC
    catalogs, incrementally.

    `thickness`: for each glacier being published, all its thickness COGs (one per epoch with ice):
    exactly these replace the glacier's published items, and its items of epochs not listed are
    removed (the glacier vanished there). An empty list removes the glacier from the catalog.
    Glaciers not in `thickness` keep what was published for them, byte for byte.
    `outlines`: epoch -> (GeoDataFrame of the published glaciers' regional outlines, Albers; its
    shapefile in the work area or None): each epoch's file holds these rows plus the rows already
    published for glaciers not in `thickness`. `failed`: glacier -> reason, listed in the
    collections (their earlier products, if any, stay published). `quality`: the figures that say
    how far to trust the products (area fit and its leave-one-out validation, the rheology and
    its reference volumes), written into both collections as `glacier_assets:quality`.
    `provenance["__region__"]` carries the dataset's texts (dataset_texts.py) for the catalog and
    collections. Returns what changed."""
    root = Path(root)
    stats = CatalogStats()
    default = provenance.get("__region__", Provenance(software={}, version=version))
    texts = default.texts
    replaced = set(thickness)
    products = [p for ps in thickness.values() for p in ps]
    jobs = [(p, root, provenance.get(p.glacier_id, default)) for p in products]
    if workers > 1 and len(jobs) > 200:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = [r for chunk in pool.map(_publish_chunk, [jobs[i:i + 256] for i in range(0, len(jobs), 256)])
                       for r in chunk]
    else:
        results = _publish_chunk(jobs)
    wanted = set()
    for status, path in results:
        setattr(stats, status, getattr(stats, status) + 1)
        if status != "unchanged":
            stats.written.append(path)
        wanted.add(Path(path))
    thk_root = root / "thickness"
    for item_path in thickness_item_paths(root):  # the replaced glaciers' items no product backs any more
        if item_path.stem.rsplit("_", 1)[0] in replaced and item_path not in wanted:
            item_path.unlink()
            item_path.with_suffix(".tif").unlink(missing_ok=True)
            stats.removed += 1
    items = {p: orjson.loads(p.read_bytes()) for p in thickness_item_paths(root)}
    by_year: dict[int, list[str]] = {}
    for p, item in items.items():
        by_year.setdefault(int(item["properties"]["epoch"]), []).append(p.name)
    for year_dir in (thk_root.glob("[0-9][0-9][0-9][0-9]") if thk_root.exists() else []):
        if int(year_dir.name) not in by_year:
            shutil.rmtree(year_dir)
    years = sorted(by_year)
    for year in years:
        _write_json(thk_root / str(year) / "catalog.json", catalog_dict(
            pystac.Catalog(f"thickness-{year}", thickness_year_description(year), f"Glacier thickness {year}"),
            [make_link("root", "../../catalog.json"), make_link("parent", "../collection.json")]
            + [make_link("item", f"./{name}") for name in sorted(by_year[year])]))
    published = sorted({i["properties"]["glacier_id"] for i in items.values()})
    failed = failed or {}
    failures = {"glacier_assets:failed_glaciers": [{"glacier_id": g, "reason": r} for g, r in sorted(failed.items())],
                **({"glacier_assets:quality": quality} if quality else {})}
    links = [make_link("root", "../catalog.json"), make_link("parent", "../catalog.json")]
    collection = make_collection(
        "thickness", THICKNESS_TITLE, f"{THICKNESS_DESCRIPTION} {texts.title}.",
        make_extent([i["bbox"] for i in items.values()], years),
        {"thickness": pystac.ItemAssetDefinition.create(THICKNESS_ASSET_TITLE, None, MediaType.COG, ["data"])},
        {"epoch": years, "proj:code": sorted({i["properties"]["proj:code"] for i in items.values()}),
         "gsd": [PRODUCT_RESOLUTION_M], "glacier_id": published, "failed_glacier_id": sorted(failed)},
        version, failures, texts)
    RasterExtension.ext(collection.item_assets["thickness"], add_if_missing=True).apply([thickness_band()])
    _write_json(thk_root / "collection.json", catalog_dict(collection, links + [
        make_link("child", f"./{y}/catalog.json", thickness_year_title(y)) for y in years]))
    # outlines
    out_root = root / "outlines"
    for year, (table, source) in sorted(outlines.items()):
        folder = out_root / str(year)
        if not _publish_outlines(folder, year, table, source, replaced):
            continue
        item = outline_item(year, folder, default, region_bbox)
        if _write_json(folder / f"{year}.json", item):
            stats.written.append(str(folder / f"{year}.json"))
    out_items = [orjson.loads(p.read_bytes()) for p in outline_item_paths(root)]
    out_years = sorted(int(i["properties"]["epoch"]) for i in out_items)
    _write_json(out_root / "collection.json", catalog_dict(make_collection(
        "outlines", OUTLINES_TITLE, OUTLINES_DESCRIPTION,
        make_extent([i["bbox"] for i in out_items if i.get("bbox")], out_years),
        {"shapefile": pystac.ItemAssetDefinition.create(None, None, "application/zip", ["data"]),
         "geoparquet": pystac.ItemAssetDefinition.create(None, None, MediaType.VND_APACHE_PARQUET, ["data"])},
        {"epoch": out_years, "failed_glacier_id": sorted(failed)}, version, failures, texts),
        links + [make_link("item", f"./{y}/{y}.json") for y in out_years]))
    write_items_parquet(root, list(items.items()) + list(zip(outline_item_paths(root), out_items)))
    _write_json(root / "catalog.json", catalog_dict(
        pystac.Catalog("glacier-assets", texts.description, texts.title),
        [make_link("root", "./catalog.json"),
         make_link("child", "./thickness/collection.json", THICKNESS_TITLE),
         make_link("child", "./outlines/collection.json", OUTLINES_TITLE),
         make_link("alternate", "./items.parquet", INDEX_TITLE, MediaType.VND_APACHE_PARQUET)]))
    stats.thickness_items = len(items)
    stats.outline_items = len(out_items)
    stats.items = stats.thickness_items + stats.outline_items
    stats.glaciers = published
    return stats


def thickness_item_paths(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).glob("thickness/[0-9]*/*.json") if p.name != "catalog.json")


def outline_item_paths(root: Path) -> list[Path]:
    return sorted(Path(root).glob("outlines/[0-9]*/[0-9]*.json"))


def all_item_paths(root: Path) -> list[Path]:
    return thickness_item_paths(root) + outline_item_paths(root)


def stac_geoparquet_arrow():
    """`stac_geoparquet.arrow`, imported with the process's logging kept as it was: stac-geoparquet
    0.8.0 calls logging.basicConfig(INFO, stdout) when imported, which would put every library's
    INFO lines on the main job's console."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        import stac_geoparquet.arrow as arrow
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return arrow


def write_items_parquet(root: Path, items: list[tuple[Path, dict]]) -> Path:
    """Every item in one stac-geoparquet file, for clients that filter before they load. Written by
    stac-geoparquet's own writer, so it carries GeoParquet's `geo` metadata (geopandas, DuckDB
    spatial, QGIS read it as GeoParquet) beside the `stac-geoparquet` key."""
    arrow = stac_geoparquet_arrow()

    root = Path(root)
    rows = []
    for p, item in items:  # asset hrefs from the catalog root, where the index lies (the items are left as they are)
        folder = p.parent.relative_to(root).as_posix()
        rows.append({**item, "assets": {k: {**a, "href": f"{folder}/{a['href'].removeprefix('./')}"}
                                        for k, a in item["assets"].items()}})
    table = arrow.parse_stac_items_to_arrow(rows).read_all()
    dest = root / "items.parquet"
    with atomic_path(dest, suffix=".parquet") as tmp:
        arrow.to_parquet(table, tmp)
    return dest


def catalog_json_paths(root: Path) -> list[Path]:
    root = Path(root)
    return [root / "catalog.json", *sorted(root.glob("*/collection.json")),
            *sorted(root.glob("thickness/*/catalog.json"))]
