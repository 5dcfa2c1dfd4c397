"""STAC objects of the published products, built with pystac and its extension classes: the
thickness and outline items, the collections' extents, the catalogs' links (the package's
docstring: layout and conventions)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import pystac
from pystac import MediaType
from pystac.extensions.file import FileExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension
from pystac.extensions.scientific import ScientificExtension
from pystac.extensions.table import Column, TableExtension
from pystac.extensions.version import VersionExtension

from ..constants import (
    EPOCHS,
    PRODUCT_RESOLUTION_M,
    THICKNESS_NODATA,
)
from ..dataset_texts import DatasetTexts, neutral_texts
from .texts import (
    IGM_PUBLICATION,
    OUTLINE_LINEAGE,
    OUTLINES_TITLE,
    THICKNESS_ASSET_TITLE,
    THICKNESS_TITLE,
    outline_asset_titles,
    thickness_year_title,
)

PROCESSING = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"  # no pystac class for it


def thickness_band() -> RasterBand:
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


def make_link(rel: str, href: str, title: str | None = None, media_type: str = MediaType.JSON) -> pystac.Link:
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
                 [make_link("root", "../../catalog.json"),
                  make_link("parent", "./catalog.json", thickness_year_title(year)),
                  make_link("collection", "../collection.json", THICKNESS_TITLE)], prov,
                 prov.texts.thickness_lineage(prov.outlines))
    item.common_metadata.gsd = PRODUCT_RESOLUTION_M
    ProjectionExtension.ext(item, add_if_missing=True).apply(
        code=code, wkt2=None if code else crs.to_wkt(), shape=shape, transform=transform, bbox=bounds)
    asset = _file_asset(item, "thickness", cog, MediaType.COG, THICKNESS_ASSET_TITLE, checksum)
    RasterExtension.ext(asset, add_if_missing=True).apply([thickness_band()])
    return item.to_dict(include_self_link=False, transform_hrefs=False)


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
                 [make_link("root", "../../catalog.json"), make_link("parent", "../collection.json"),
                  make_link("collection", "../collection.json", OUTLINES_TITLE)], prov, OUTLINE_LINEAGE)
    ProjectionExtension.ext(item, add_if_missing=True).apply(code=None, wkt2=gdf.crs.to_wkt())
    shp_title, parquet_title = outline_asset_titles(year)
    _file_asset(item, "shapefile", zpath, "application/zip", shp_title)
    table = TableExtension.ext(_file_asset(item, "geoparquet", ppath, MediaType.VND_APACHE_PARQUET, parquet_title),
                               add_if_missing=True)
    table.columns = [Column({"name": c, "type": str(t)}) for c, t in gdf.dtypes.items() if c != "geometry"] \
        + [Column({"name": "geometry", "type": "geometry"})]
    table.primary_geometry = "geometry"
    table.row_count = int(len(gdf))
    return item.to_dict(include_self_link=False, transform_hrefs=False)


def make_extent(bboxes: list[list[float]], years: list[int]) -> pystac.Extent:
    if bboxes:
        spatial = [min(b[0] for b in bboxes), min(b[1] for b in bboxes), max(b[2] for b in bboxes),
                   max(b[3] for b in bboxes)]
    else:
        spatial = [-180.0, -90.0, 180.0, 90.0]
    years = sorted(years) or [EPOCHS[0], EPOCHS[-1]]
    return pystac.Extent(pystac.SpatialExtent([spatial]), pystac.TemporalExtent(
        [[epoch_datetime(years[0]), epoch_datetime(years[-1])]]))


def make_collection(cid: str, title: str, description: str, extent: pystac.Extent,
                item_assets: dict[str, pystac.ItemAssetDefinition | dict[str, Any]], summaries: dict, version: str,
                extra: dict, texts: DatasetTexts) -> pystac.Collection:
    providers = [pystac.Provider.from_dict(p) for p in texts.providers]
    collection = pystac.Collection(cid, description, extent, title=title, license=texts.license, providers=providers,
                                   summaries=pystac.Summaries({k: v for k, v in summaries.items() if v}),
                                   extra_fields=dict(extra))
    collection.item_assets = item_assets
    _cite(collection, version, texts)
    return collection


def catalog_dict(catalog: pystac.Catalog, links: list[pystac.Link]) -> dict:
    """A catalog or collection with the given links (pystac's root link to the object itself has no
    href here, and is left out)."""
    catalog.add_links(links)
    return catalog.to_dict(include_self_link=False, transform_hrefs=False)
