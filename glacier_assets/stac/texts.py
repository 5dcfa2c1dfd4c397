"""The catalog's fixed texts, written once: titles of the collections, catalogs, links and assets,
the collections' descriptions, the outlines' lineage and the IGM paper cited on every item. The
dataset's own texts (title, description, citation, license) are the region's: `dataset_texts.py`."""

from __future__ import annotations

from pystac.extensions.scientific import Publication

from ..constants import ALBERS_LAT_1, ALBERS_LAT_2, ALBERS_LON_0, EPOCHS, ICE_THRESHOLD_M, PRODUCT_RESOLUTION_M

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
THICKNESS_TITLE = "Glacier thickness, 25 m"
THICKNESS_ASSET_TITLE = "Ice thickness (m), 25 m"
OUTLINES_TITLE = "Glacier outlines per epoch"
INDEX_TITLE = "Every item as stac-geoparquet"
THICKNESS_DESCRIPTION = (
    f"Simulated ice thickness of every glacier (IGM, calibrated to its outlines at their dates), every 5 years "
    f"{EPOCHS[0]}-{EPOCHS[-1]}, bilinearly resampled to 25 m within the model's ice cells, UTM, one "
    f"Cloud-Optimized GeoTIFF per glacier and epoch (`thickness/YEAR/GLACIERID_YEAR.tif`). "
    f"datetime = 1 January of the epoch year.")
OUTLINES_DESCRIPTION = (
    f"Outlines of every glacier (thickness >= {ICE_THRESHOLD_M:g} m), one file per epoch in an Albers "
    f"equal-area projection {ALBERS_TEXT}: a zipped ESRI Shapefile `YEAR.shp` and the same as GeoParquet.")


def thickness_year_title(year: int) -> str:
    """The title of an epoch's thickness catalog, and of the links to it."""
    return f"Thickness {year}"


def thickness_year_description(year: int) -> str:
    return f"25 m ice thickness of every glacier in {year}."


def outline_asset_titles(year: int) -> tuple[str, str]:
    """The titles of an epoch's outline assets: the zipped shapefile, the GeoParquet."""
    return (f"Outlines {year}, ESRI Shapefile (zipped), Albers equal-area",
            f"Outlines {year}, GeoParquet, Albers equal-area")
