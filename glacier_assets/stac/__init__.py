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
folder, with no network. The catalog's fixed texts are in `texts.py`, the dataset's in `dataset_texts.py`.
"""

from .items import (
    Provenance,
    ThicknessProduct,
    epoch_datetime,
    footprint,
    multihash_sha256,
    outline_item,
    thickness_item,
)
from .publish import (
    CatalogStats,
    all_item_paths,
    catalog_json_paths,
    outline_item_paths,
    stac_geoparquet_arrow,
    thickness_item_paths,
    write_catalog,
    write_items_parquet,
)
from .validate import validate_objects

__all__ = ["CatalogStats", "Provenance", "ThicknessProduct", "all_item_paths", "catalog_json_paths", "epoch_datetime",
           "footprint", "multihash_sha256", "outline_item", "outline_item_paths", "stac_geoparquet_arrow",
           "thickness_item", "thickness_item_paths", "validate_objects", "write_catalog", "write_items_parquet"]
