"""The STAC 1.1 catalog of the published products: items, collections, incremental writing,
offline validation and the stac-geoparquet index.

Layout (all hrefs relative, so the folder can be moved or served as is):

    catalog.json                               root catalog
    items.parquet                              stac-geoparquet index of every item
    thickness/collection.json                  25 m thickness, one item per glacier x epoch
    thickness/YEAR/catalog.json                one sub-catalog per epoch
    thickness/YEAR/ID_YEAR.tif  ID_YEAR.json   the COG and its item, side by side
    outlines/collection.json                   regional outlines, one item per epoch
    outlines/YEAR/YEAR.zip  YEAR.parquet  YEAR.json   zipped shapefile, GeoParquet, item

`datetime` of an item is 1 January of its epoch year, 00:00 UTC: the model time YEAR.0 at which
IGM saved the state. Items and their files are rewritten only when the product's SHA-256 changes,
so re-publishing one glacier touches only its items; items and files of products that are gone
are removed.

Every object is built with pystac and its extension classes (projection, raster, file, table,
scientific, version; the processing fields by hand, pystac has no class for them) and written with
`to_dict(include_self_link=False, transform_hrefs=False)` and orjson: links are the relative hrefs
given here, and no in-memory tree of tens of thousands of items is walked (normalize_hrefs, save).
A COG's shape, transform and CRS are read from its header with rasterio. The one absolute link is
the IGM paper's DOI (`cite-as`, added by the scientific extension). Validation is jsonschema with a
referencing registry over pystac's bundled STAC core schemas and the extension schemas in a local
folder, with no network.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
import pystac
from pystac import MediaType
from pystac.extensions.file import FileExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension
from pystac.extensions.scientific import Publication, ScientificExtension
from pystac.extensions.table import Column, TableExtension
from pystac.extensions.version import VersionExtension

from .constants import (
    ALBERS_LAT_1,
    ALBERS_LAT_2,
    ALBERS_LON_0,
    EPOCHS,
    ICE_THRESHOLD_M,
    PRODUCT_RESOLUTION_M,
    THICKNESS_NODATA,
)
from .dataset_texts import DatasetTexts, neutral_texts
from .storage import SHAPEFILE_PARTS, atomic_path

PROCESSING = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"  # no pystac class for it
IGM_PUBLICATION = Publication(
    doi="10.1017/jog.2021.120",
    citation="Jouvet, G., Cordonnier, G., Kim, B., Luethi, M., Vieli, A., Aschwanden, A. (2022): Deep learning "
             "speeds up ice flow modelling by several orders of magnitude. Journal of Glaciology 68(270), 651-664.",
)
ALBERS_TEXT = f"(lon_0 {ALBERS_LON_0:g}, lat_1 {ALBERS_LAT_1:g}, lat_2 {ALBERS_LAT_2:g})"
OUTLINE_LINEAGE = (
    f"{PRODUCT_RESOLUTION_M:g} m thickness >= {ICE_THRESHOLD_M:g} m -> glacier mask coded per glacier -> raster "
    f"to vector (holes kept) -> all glaciers of the epoch reprojected to Albers equal-area {ALBERS_TEXT}."
)
def _thickness_band() -> RasterBand:
    return RasterBand.create(nodata=THICKNESS_NODATA, data_type=DataType.FLOAT32, unit="m",
                             spatial_resolution=PRODUCT_RESOLUTION_M)


def epoch_datetime(year: int) -> datetime:
    """An item's `datetime`: 1 January of its epoch year, 00:00 UTC."""
    return datetime(year, 1, 1, tzinfo=UTC)


def multihash_sha256(path: Path) -> str:
    """`file:checksum` as a multihash: 0x12 (sha2-256), 0x20 (32 bytes), then the digest."""
    return "1220" + hashlib.sha256(Path(path).read_bytes()).hexdigest()


@lru_cache(maxsize=64)
def _to_wgs84(crs: str):
    from pyproj import Transformer

    return Transformer.from_crs(crs, "EPSG:4326", always_xy=True)


def footprint(crs: str, bounds: Sequence[float]) -> tuple[dict, list[float]]:
    """GeoJSON polygon and bbox (WGS84) of a projected rectangle, edges densified."""
    xmin, ymin, xmax, ymax = bounds
    n = 4
    xs = [xmin + (xmax - xmin) * i / n for i in range(n)] + [xmax] * n + \
         [xmax - (xmax - xmin) * i / n for i in range(n)] + [xmin] * n
    ys = [ymin] * n + [ymin + (ymax - ymin) * i / n for i in range(n)] + \
         [ymax] * n + [ymax - (ymax - ymin) * i / n for i in range(n)]
    lon, lat = _to_wgs84(crs).transform(xs, ys)
    ring = [[round(float(x), 7), round(float(y), 7)] for x, y in zip(lon, lat)]
    ring.append(ring[0])
    bbox = [min(p[0] for p in ring), min(p[1] for p in ring), max(p[0] for p in ring), max(p[1] for p in ring)]
    return {"type": "Polygon", "coordinates": [ring]}, bbox


@dataclass(frozen=True)
class Provenance:
    """What made a glacier's products: software versions, calibration status, the dataset's texts
    (title, license, citation, the run's inputs) and the dates of the glacier's own outlines."""

    software: dict
    calibration_status: str = "uncalibrated"
    version: str = "0"
    texts: DatasetTexts = neutral_texts("unnamed region")
    outlines: str = ""  # dataset_texts.outline_dates_text
    quality: dict = field(default_factory=dict)  # the glacier's figures, as item properties (shape: issue 25)


@dataclass(frozen=True)
class ThicknessProduct:
    glacier_id: str
    year: int
    source: Path  # the product in the work area


def _link(rel: str, href: str, title: str | None = None, media_type: str = MediaType.JSON) -> pystac.Link:
    return pystac.Link(rel, href, media_type, title)


def _cite(obj, version: str, texts: DatasetTexts) -> None:
    """The dataset's citation (if it has one), the IGM paper (its DOI also a `cite-as` link) and the version."""
    ScientificExtension.ext(obj, add_if_missing=True).apply(citation=texts.citation, publications=[IGM_PUBLICATION])
    VersionExtension.ext(obj, add_if_missing=True).apply(version=version)


def _item(item_id: str, year: int, geometry: dict | None, bbox: list[float] | None, properties: dict,
          collection: str, links: list[pystac.Link], prov: Provenance, lineage: str) -> pystac.Item:
    """An item of the epoch `year` with its links, lineage and software (processing: fields by
    hand), citations and version."""
    item = pystac.Item(item_id, geometry, bbox, epoch_datetime(year),
                       {**properties, "processing:lineage": lineage, "processing:software": prov.software},
                       stac_extensions=[PROCESSING], collection=collection)
    item.common_metadata.license = prov.texts.license
    item.add_links(links)
    _cite(item, prov.version, prov.texts)
    return item


def _file_asset(item: pystac.Item, key: str, path: Path, media_type: str, title: str,
                checksum: str | None = None) -> pystac.Asset:
    """An asset lying beside its item, with its size and checksum."""
    asset = pystac.Asset(f"./{path.name}", title, media_type=media_type, roles=["data"])
    item.add_asset(key, asset)
    FileExtension.ext(asset, add_if_missing=True).apply(size=path.stat().st_size,
                                                        checksum=checksum or multihash_sha256(path))
    return asset


def thickness_item(product: ThicknessProduct, cog: Path, checksum: str, prov: Provenance) -> dict:
    """The STAC item of one published thickness COG (which lies beside the item); its grid is
    read from the COG's header."""
    import rasterio

    with rasterio.open(cog) as src:
        shape, transform, bounds, crs = [src.height, src.width], list(src.transform)[:6], list(src.bounds), src.crs
    code = crs.to_string() if crs.is_epsg_code else None
    geometry, bbox = footprint(code or crs.to_wkt(), tuple(bounds))
    gid, year = product.glacier_id, product.year
    item = _item(f"{gid}_{year}", year, geometry, bbox,
                 {"glacier_id": gid, "epoch": year, "calibration_status": prov.calibration_status,
                  "processing:level": "L4", **prov.quality}, "thickness",
                 [_link("root", "../../catalog.json"), _link("parent", "./catalog.json", f"Thickness {year}"),
                  _link("collection", "../collection.json", "Glacier thickness, 25 m")], prov,
                 prov.texts.thickness_lineage(prov.outlines))
    item.common_metadata.gsd = PRODUCT_RESOLUTION_M
    ProjectionExtension.ext(item, add_if_missing=True).apply(
        code=code, wkt2=None if code else crs.to_wkt(), shape=shape, transform=transform, bbox=bounds)
    asset = _file_asset(item, "thickness", cog, MediaType.COG, "Ice thickness (m), 25 m", checksum)
    RasterExtension.ext(asset, add_if_missing=True).apply([_thickness_band()])
    return item.to_dict(include_self_link=False, transform_hrefs=False)


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


def outline_item(year: int, folder: Path, prov: Provenance, region_bbox: list[float] | None = None) -> dict:
    """The STAC item of one epoch's regional outlines: zipped shapefile and GeoParquet. An epoch
    with no ice left has an empty file; its item's footprint is then the region's (`region_bbox`,
    WGS84), since STAC clients and stac-geoparquet need a geometry to index."""
    import geopandas as gpd

    zpath, ppath = folder / f"{year}.zip", folder / f"{year}.parquet"
    gdf = gpd.read_parquet(ppath)
    if len(gdf):
        geometry, bbox = footprint(gdf.crs.to_string(), tuple(gdf.total_bounds))
    elif region_bbox:
        geometry, bbox = footprint("EPSG:4326", tuple(region_bbox))
    else:
        geometry, bbox = None, None
    item = _item(f"outlines_{year}", year, geometry, bbox,
                 {"epoch": year, "n_glaciers": int(len(gdf)),
                  "area_km2": round(float(gdf["area_km2"].sum()) if len(gdf) else 0.0, 5)}, "outlines",
                 [_link("root", "../../catalog.json"), _link("parent", "../collection.json"),
                  _link("collection", "../collection.json", "Glacier outlines per epoch")], prov, OUTLINE_LINEAGE)
    ProjectionExtension.ext(item, add_if_missing=True).apply(code=None, wkt2=gdf.crs.to_wkt())
    _file_asset(item, "shapefile", zpath, "application/zip",
                f"Outlines {year}, ESRI Shapefile (zipped), Albers equal-area")
    table = TableExtension.ext(_file_asset(item, "geoparquet", ppath, MediaType.VND_APACHE_PARQUET,
                                           f"Outlines {year}, GeoParquet, Albers equal-area"), add_if_missing=True)
    table.columns = [Column({"name": c, "type": str(t)}) for c, t in gdf.dtypes.items() if c != "geometry"] \
        + [Column({"name": "geometry", "type": "geometry"})]
    table.primary_geometry = "geometry"
    table.row_count = int(len(gdf))
    return item.to_dict(include_self_link=False, transform_hrefs=False)


def _extent(bboxes: list[list[float]], years: list[int]) -> pystac.Extent:
    if bboxes:
        spatial = [min(b[0] for b in bboxes), min(b[1] for b in bboxes), max(b[2] for b in bboxes),
                   max(b[3] for b in bboxes)]
    else:
        spatial = [-180.0, -90.0, 180.0, 90.0]
    years = sorted(years) or [EPOCHS[0], EPOCHS[-1]]
    return pystac.Extent(pystac.SpatialExtent([spatial]), pystac.TemporalExtent(
        [[epoch_datetime(years[0]), epoch_datetime(years[-1])]]))


def _collection(cid: str, title: str, description: str, extent: pystac.Extent,
                item_assets: dict[str, pystac.ItemAssetDefinition | dict[str, Any]], summaries: dict, version: str,
                extra: dict, texts: DatasetTexts) -> pystac.Collection:
    providers = [pystac.Provider.from_dict(p) for p in texts.providers]
    collection = pystac.Collection(cid, description, extent, title=title, license=texts.license, providers=providers,
                                   summaries=pystac.Summaries({k: v for k, v in summaries.items() if v}),
                                   extra_fields=dict(extra))
    collection.item_assets = item_assets
    _cite(collection, version, texts)
    return collection


def _catalog(catalog: pystac.Catalog, links: list[pystac.Link]) -> dict:
    """A catalog or collection with the given links (pystac's root link to the object itself has no
    href here, and is left out)."""
    catalog.add_links(links)
    return catalog.to_dict(include_self_link=False, transform_hrefs=False)


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

    from .storage import write_geoparquet, write_shapefile

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
        _write_json(thk_root / str(year) / "catalog.json", _catalog(
            pystac.Catalog(f"thickness-{year}", f"25 m ice thickness of every glacier in {year}.",
                           f"Glacier thickness {year}"),
            [_link("root", "../../catalog.json"), _link("parent", "../collection.json")]
            + [_link("item", f"./{name}") for name in sorted(by_year[year])]))
    published = sorted({i["properties"]["glacier_id"] for i in items.values()})
    failed = failed or {}
    failures = {"glacier_assets:failed_glaciers": [{"glacier_id": g, "reason": r} for g, r in sorted(failed.items())],
                **({"glacier_assets:quality": quality} if quality else {})}
    links = [_link("root", "../catalog.json"), _link("parent", "../catalog.json")]
    collection = _collection(
        "thickness", "Glacier thickness, 25 m",
        f"Simulated ice thickness of every glacier (IGM, calibrated to its outlines at their dates), every 5 years "
        f"{EPOCHS[0]}-{EPOCHS[-1]}, bilinearly resampled to 25 m within the model's ice cells, UTM, one "
        f"Cloud-Optimized GeoTIFF per glacier and epoch (`thickness/YEAR/GLACIERID_YEAR.tif`). "
        f"datetime = 1 January of the epoch year. {texts.title}.",
        _extent([i["bbox"] for i in items.values()], years),
        {"thickness": pystac.ItemAssetDefinition.create("Ice thickness (m), 25 m", None, MediaType.COG, ["data"])},
        {"epoch": years, "proj:code": sorted({i["properties"]["proj:code"] for i in items.values()}),
         "gsd": [PRODUCT_RESOLUTION_M], "glacier_id": published, "failed_glacier_id": sorted(failed)},
        version, failures, texts)
    RasterExtension.ext(collection.item_assets["thickness"], add_if_missing=True).apply([_thickness_band()])
    _write_json(thk_root / "collection.json", _catalog(collection, links + [
        _link("child", f"./{y}/catalog.json", f"Thickness {y}") for y in years]))
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
    _write_json(out_root / "collection.json", _catalog(_collection(
        "outlines", "Glacier outlines per epoch",
        f"Outlines of every glacier (thickness >= {ICE_THRESHOLD_M:g} m), one file per epoch in an Albers "
        f"equal-area projection {ALBERS_TEXT}: a zipped ESRI Shapefile `YEAR.shp` and the same as GeoParquet.",
        _extent([i["bbox"] for i in out_items if i.get("bbox")], out_years),
        {"shapefile": pystac.ItemAssetDefinition.create(None, None, "application/zip", ["data"]),
         "geoparquet": pystac.ItemAssetDefinition.create(None, None, MediaType.VND_APACHE_PARQUET, ["data"])},
        {"epoch": out_years, "failed_glacier_id": sorted(failed)}, version, failures, texts),
        links + [_link("item", f"./{y}/{y}.json") for y in out_years]))
    write_items_parquet(root, list(items.items()) + list(zip(outline_item_paths(root), out_items)))
    _write_json(root / "catalog.json", _catalog(
        pystac.Catalog("glacier-assets", texts.description, texts.title),
        [_link("root", "./catalog.json"), _link("child", "./thickness/collection.json", "Glacier thickness, 25 m"),
         _link("child", "./outlines/collection.json", "Glacier outlines per epoch"),
         _link("alternate", "./items.parquet", "Every item as stac-geoparquet", MediaType.VND_APACHE_PARQUET)]))
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


# --- offline validation ----------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _offline_schemas(schema_root: str) -> tuple[dict, object]:
    """The STAC core schemas bundled with pystac and the extension schemas under
    `schema_root/<ext>/<version>/schema.json`, with a registry that resolves their references
    among themselves only: validation never touches the network."""
    from pystac.validation.local_validator import get_local_schema_cache
    from referencing import Registry, Resource

    schemas = dict(get_local_schema_cache())
    for path in Path(schema_root).glob("*/v*/schema.json"):
        schemas[f"https://stac-extensions.github.io/{path.parts[-3]}/{path.parts[-2]}/schema.json"] = \
            json.loads(path.read_text())
    return schemas, Registry().with_resources([(k, Resource.from_contents(v)) for k, v in schemas.items()])


def validate_objects(paths: list[Path], schema_root: Path) -> list[str]:
    """Validate STAC JSON files against their core schema and every extension schema they list,
    offline (jsonschema with pystac's bundled core schemas), each schema compiled once. Returns
    the problems, one line each (empty when all are valid)."""
    import jsonschema
    from pystac import STACObjectType
    from pystac.validation.schema_uri_map import DefaultSchemaUriMap

    schemas, registry = _offline_schemas(str(schema_root))
    kinds = {"Feature": STACObjectType.ITEM, "Catalog": STACObjectType.CATALOG, "Collection": STACObjectType.COLLECTION}
    uri_map, compiled, problems = DefaultSchemaUriMap(), {}, []
    for p in paths:
        obj = orjson.loads(Path(p).read_bytes())
        core = uri_map.get_object_schema_uri(kinds[obj["type"]], obj["stac_version"])
        for uri in [core, *obj.get("stac_extensions", [])]:
            if uri not in schemas:
                problems.append(f"{p}: schema not available offline: {uri}")
                continue
            if uri not in compiled:
                cls = jsonschema.validators.validator_for(schemas[uri])
                cls.check_schema(schemas[uri])
                compiled[uri] = cls(schemas[uri], registry=registry)
            best = jsonschema.exceptions.best_match(compiled[uri].iter_errors(obj))
            if best is not None:
                problems.append(f"{p}: {obj['type']} {obj.get('id')} fails {uri}: "
                                f"{best.message.splitlines()[0][:300]}")
    return problems


def catalog_json_paths(root: Path) -> list[Path]:
    root = Path(root)
    return [root / "catalog.json", *sorted(root.glob("*/collection.json")),
            *sorted(root.glob("thickness/*/catalog.json"))]
