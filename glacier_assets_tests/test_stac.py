"""The published STAC catalog: structure, metadata, offline validity, real clients, incremental
updates. Built on a copy of the demo chain's products so it can be changed freely."""

import hashlib
import json
import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pystac
import pytest
import rasterio
import xarray as xr

from glacier_assets.constants import EPOCHS, simulation_relpath, thickness_relpath
from glacier_assets.stac import all_item_paths, catalog_json_paths, validate_objects

from .conftest import DEMO_PAIR, REPO, chain_definitions, range_tags, remake_simulation

pytestmark = pytest.mark.igm
SCHEMAS = REPO.parent / "shared" / "stac-schemas"


@pytest.fixture(scope="module")
def published(tmp_path_factory, demo_chain):
    root = tmp_path_factory.mktemp("stac")
    products = root / "products"
    shutil.copytree(demo_chain["products"], products)
    defs = chain_definitions(products, demo_chain["region"], DEMO_PAIR)
    (root / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "home")) as instance:
        dg.materialize([*defs.assets, *defs.asset_checks], selection=["outline_inventory"], instance=instance,
                       resources=defs.resources)
        first = defs.resolve_job_def("quality_and_publish").execute_in_process(instance=instance)
        yield {"defs": defs, "instance": instance, "products": products, "catalog": root / "catalog" / "current",
               "first": first, "root": root}


def _md(result):
    return result.asset_materializations_for_node("stac_catalog")[0].metadata


def test_structure_and_relative_hrefs(published):
    catalog = published["catalog"]
    md = _md(published["first"])
    assert md["n_thickness_items"].value == 2 * 13 and md["n_outline_items"].value == 13
    assert md["n_items"].value == 39 and md["new"].value == 26
    root = json.loads((catalog / "catalog.json").read_text())
    assert root["stac_version"] == "1.1.0" and root["type"] == "Catalog"
    thk = json.loads((catalog / "thickness" / "collection.json").read_text())
    assert sorted(lk["href"] for lk in thk["links"] if lk["rel"] == "child") == \
        sorted(f"./{y}/catalog.json" for y in EPOCHS)
    for path in catalog_json_paths(catalog) + all_item_paths(catalog):  # relative, but for the IGM paper's DOI
        for link in json.loads(path.read_text())["links"]:
            assert link["rel"] == "cite-as" or not link["href"].startswith(("/", "http")), (path, link)
    item_path = catalog / "thickness" / "2000" / f"{DEMO_PAIR[0]}_2000.json"
    assert item_path.with_suffix(".tif").exists()  # the COG lies beside its item


def test_item_metadata(published):
    catalog = published["catalog"]
    item = json.loads((catalog / "thickness" / "1990" / f"{DEMO_PAIR[1]}_1990.json").read_text())
    props = item["properties"]
    assert props["glacier_id"] == DEMO_PAIR[1] and props["epoch"] == 1990
    assert props["datetime"] == "1990-01-01T00:00:00Z"
    assert props["proj:code"] == "EPSG:32646" and len(props["proj:transform"]) == 6
    cog = catalog / "thickness" / "1990" / f"{DEMO_PAIR[1]}_1990.tif"
    with rasterio.open(cog) as src:
        assert props["proj:shape"] == [src.height, src.width]
        assert props["proj:transform"] == list(src.transform)[:6]
        assert props["proj:bbox"] == list(src.bounds)
    asset = item["assets"]["thickness"]
    assert asset["type"] == "image/tiff; application=geotiff; profile=cloud-optimized"
    assert asset["raster:bands"] == [{"nodata": -9999.0, "data_type": "float32", "unit": "m",
                                      "spatial_resolution": 25.0}]
    assert asset["file:size"] == cog.stat().st_size
    assert asset["file:checksum"] == "1220" + hashlib.sha256(cog.read_bytes()).hexdigest()
    assert {"igm-model", "tensorflow", "dagster", "glacier_assets"} <= set(props["processing:software"])
    with xr.open_dataset(published["products"] / simulation_relpath(DEMO_PAIR[1])) as sim:
        assert props["calibration_status"] == sim.attrs["calibration_status"]  # "calibrated" or "flagged: ..."
    assert "IGM" in props["processing:lineage"] and props["sci:publications"][0]["doi"] == "10.1017/jog.2021.120"
    assert "Yangtze" in props["sci:citation"] and props["version"]
    coll = json.loads((catalog / "thickness" / "collection.json").read_text())
    assert coll["item_assets"]["thickness"]["raster:bands"][0]["unit"] == "m"
    assert coll["summaries"]["epoch"] == list(EPOCHS)
    assert coll["extent"]["temporal"]["interval"] == [["1960-01-01T00:00:00Z", "2020-01-01T00:00:00Z"]]
    out = json.loads((catalog / "outlines" / "2010" / "2010.json").read_text())
    assert out["assets"]["shapefile"]["type"] == "application/zip"
    assert out["assets"]["geoparquet"]["table:row_count"] == 2
    assert out["properties"]["n_glaciers"] == 2


def test_valid_offline_and_a_broken_item_is_rejected(published, tmp_path):
    catalog = published["catalog"]
    assert validate_objects(catalog_json_paths(catalog) + all_item_paths(catalog), SCHEMAS) == []
    item = json.loads((catalog / "thickness" / "1970" / f"{DEMO_PAIR[0]}_1970.json").read_text())
    item["properties"]["proj:shape"] = "144x136"
    (tmp_path / "broken.json").write_text(json.dumps(item))
    problems = validate_objects([tmp_path / "broken.json"], SCHEMAS)
    assert len(problems) == 1 and "projection" in problems[0]


def test_pystac_walks_a_moved_catalog(published, tmp_path):
    moved = tmp_path / "elsewhere"
    shutil.copytree(published["catalog"], moved)
    cat = pystac.Catalog.from_file(str(moved / "catalog.json"))
    items = list(cat.get_items(recursive=True))
    assert len(items) == 39
    item = next(i for i in items if i.id == f"{DEMO_PAIR[0]}_2020")
    with rasterio.open(item.assets["thickness"].get_absolute_href()) as src:
        assert src.read(1).max() > 2
    # the whole catalog folder moves with its versions: the live link is relative
    folder = tmp_path / "folder"
    shutil.copytree(published["catalog"].parent, folder, symlinks=True)
    assert (folder / "current").is_symlink()
    assert len(list(pystac.Catalog.from_file(str(folder / "current" / "catalog.json")).get_items(recursive=True))) == 39


def test_odc_stac_loads_a_glacier_through_time(published):
    import odc.stac

    cat = pystac.Catalog.from_file(str(published["catalog"] / "catalog.json"))
    items = [i for i in cat.get_items(recursive=True) if i.properties.get("glacier_id") == DEMO_PAIR[1]]
    assert len(items) == 13
    ds = odc.stac.load(items, bands=["thickness"], groupby="id", chunks={})
    assert ds.odc.crs.epsg == 32646
    assert ds.sizes["time"] == 13 and abs(ds.odc.geobox.resolution.x) == 25
    thk = ds["thickness"].compute().values
    # volume from the cube equals the sum over the published rasters, epoch by epoch
    for k, year in enumerate(EPOCHS):
        with rasterio.open(published["catalog"] / thickness_relpath(DEMO_PAIR[1], year)) as src:
            raw = src.read(1).astype(float)
        cube = np.nansum(np.where(thk[k] == -9999, np.nan, thk[k])) * 625 / 1e9
        assert cube == pytest.approx(raw[raw != -9999].sum() * 625 / 1e9, rel=1e-6)


def test_items_parquet_filters_by_glacier_and_epoch(published):
    import odc.stac
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from stac_geoparquet.arrow import stac_table_to_items

    table = pd.read_parquet(published["catalog"] / "items.parquet")
    assert len(table) == 39
    one = table[table["glacier_id"] == DEMO_PAIR[0]]
    assert sorted(one["epoch"]) == list(EPOCHS)
    y1990 = table[table["epoch"] == 1990]
    assert sorted(y1990["id"]) == sorted([f"{g}_1990" for g in DEMO_PAIR] + ["outlines_1990"])
    arrow = pq.read_table(published["catalog"] / "items.parquet")
    items = [pystac.Item.from_dict(d) for d in
             stac_table_to_items(arrow.filter(pc.equal(arrow["glacier_id"], DEMO_PAIR[0])))]
    assert {i.properties["glacier_id"] for i in items} == {DEMO_PAIR[0]}
    for i in items:  # index hrefs are relative to the catalog root
        i.assets["thickness"].href = str(published["catalog"] / i.assets["thickness"].href)
    ds = odc.stac.load(items, bands=["thickness"], groupby="id", chunks={})
    assert ds.sizes["time"] == 13


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refresh(defs, instance, glacier_ids):
    for year in EPOCHS:
        defs.resolve_job_def("glacier_epoch_products").execute_in_process(
            instance=instance, tags=range_tags(f"{year}|{glacier_ids[0]}", f"{year}|{glacier_ids[-1]}"))
    defs.resolve_job_def("regional_products").execute_in_process(
        instance=instance, tags=range_tags(str(EPOCHS[0]), str(EPOCHS[-1])))
    return defs.resolve_job_def("quality_and_publish").execute_in_process(instance=instance)


def test_republishing_one_glacier_replaces_only_its_items(published):
    defs, instance, products, catalog = (published[k] for k in ("defs", "instance", "products", "catalog"))
    before = {p: p.stat().st_mtime_ns for p in all_item_paths(catalog)}
    other = {p: _sha(p) for p in catalog.rglob(f"{DEMO_PAIR[1]}_*")}
    old_version = catalog.resolve()
    # a re-simulation of one glacier (thicker ice), then its per-epoch products again
    remake_simulation(products, DEMO_PAIR[0], lambda thk, years: thk * 1.02)
    again = _refresh(defs, instance, DEMO_PAIR)
    md = _md(again)
    assert md["updated"].value == 13 and md["unchanged"].value == 13 and md["new"].value == 0
    changed = {p for p in all_item_paths(catalog) if p.stat().st_mtime_ns != before.get(p)}
    thickness_changed = {p.stem for p in changed if "thickness" in p.parts}
    assert thickness_changed == {f"{DEMO_PAIR[0]}_{y}" for y in EPOCHS}
    assert {p: _sha(p) for p in catalog.rglob(f"{DEMO_PAIR[1]}_*")} == other  # byte for byte
    # a new version went live in one switch; the previous one is still whole on disk for its readers
    assert catalog.resolve() != old_version and (old_version / "catalog.json").exists()
    assert validate_objects(catalog_json_paths(catalog) + all_item_paths(catalog), SCHEMAS) == []
    assert validate_objects(catalog_json_paths(old_version) + all_item_paths(old_version), SCHEMAS) == []


def test_a_glacier_with_no_ice_at_an_epoch_publishes(published):
    """Both glaciers vanish in 2015 (not a control epoch, so the gate still holds): no thickness
    items for 2015, an outline item with an empty file and the region's footprint, a valid
    stac-geoparquet index."""
    import geopandas as gpd

    defs, instance, products, catalog = (published[k] for k in ("defs", "instance", "products", "catalog"))

    def vanish_2015(thk, years):
        thk[years.index(2015)] = 0.0
        return thk

    for gid in DEMO_PAIR:
        remake_simulation(products, gid, vanish_2015)
    md = _md(_refresh(defs, instance, DEMO_PAIR))
    assert md["n_thickness_items"].value == 2 * 12 and md["removed"].value == 2
    assert not (catalog / "thickness" / "2015").exists()
    item = json.loads((catalog / "outlines" / "2015" / "2015.json").read_text())
    assert item["properties"]["n_glaciers"] == 0 and item["geometry"]["type"] == "Polygon" and item["bbox"]
    assert gpd.read_parquet(catalog / "outlines" / "2015" / "2015.parquet").empty
    table = pd.read_parquet(catalog / "items.parquet")
    assert len(table) == 24 + 13 and "outlines_2015" in set(table["id"])
    assert validate_objects(catalog_json_paths(catalog) + all_item_paths(catalog), SCHEMAS) == []
    assert len(list(pystac.Catalog.from_file(str(catalog / "catalog.json")).get_items(recursive=True))) == 37


def test_removing_a_glacier_is_explicit_and_leaves_no_orphans(published):
    from glacier_assets.removal import remove_glaciers

    defs, instance, products, catalog = (published[k] for k in ("defs", "instance", "products", "catalog"))
    kept = {p: _sha(p) for p in catalog.rglob(f"{DEMO_PAIR[1]}_*")}
    remove_glaciers([DEMO_PAIR[0]], store=defs.resources["store"], instance=instance)
    assert not list(catalog.rglob(f"{DEMO_PAIR[0]}*"))
    assert {p: _sha(p) for p in catalog.rglob(f"{DEMO_PAIR[1]}_*")} == kept
    for year in EPOCHS:
        assert DEMO_PAIR[0] not in set(gpd_read(catalog / "outlines" / str(year) / f"{year}.parquet").glacier_id)
    # every file in the catalog is an item, a catalog, or an asset some item points at
    referenced = set(catalog_json_paths(catalog)) | set(all_item_paths(catalog)) | {catalog / "items.parquet"}
    for item_path in all_item_paths(catalog):
        for asset in json.loads(item_path.read_text())["assets"].values():
            referenced.add((item_path.parent / asset["href"]).resolve())
    files = {p.resolve() for p in catalog.rglob("*") if p.is_file()}
    assert files - {p.resolve() for p in referenced} == set()
    assert validate_objects(catalog_json_paths(catalog) + all_item_paths(catalog), SCHEMAS) == []
    assert not (products / simulation_relpath(DEMO_PAIR[0])).exists()
    assert DEMO_PAIR[0] not in instance.get_dynamic_partitions("glaciers")


def gpd_read(path):
    import geopandas as gpd

    return gpd.read_parquet(path)
