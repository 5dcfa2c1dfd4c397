"""The STAC catalog on small real files, no simulation: items built with pystac's extension
classes from the COG headers, checksums, footprints, offline validation, and a whole catalog
written, re-written unchanged, walked by pystac and indexed by stac-geoparquet."""

import hashlib
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pystac
import pytest
import rasterio
from shapely.geometry import box, shape

from glacier_assets.constants import EPOCHS, albers_crs, thickness_relpath
from glacier_assets.dataset_texts import SEED_TEXTS
from glacier_assets.publication import new_version
from glacier_assets.science.grids import Grid
from glacier_assets.stac import (
    Provenance,
    ThicknessProduct,
    all_item_paths,
    catalog_json_paths,
    epoch_datetime,
    footprint,
    multihash_sha256,
    thickness_item,
    validate_objects,
    write_catalog,
)
from glacier_assets.storage import write_cog

from .conftest import REPO

SCHEMAS = REPO.parent / "shared" / "stac-schemas"
PROV = Provenance({"igm-model": "3.2.1", "tensorflow": "2.17.0"}, "calibrated", "1.2.3", texts=SEED_TEXTS)


def _cog(path, crs="EPSG:32646", width=11, height=7):
    data = np.where(np.arange(width * height).reshape(height, width) % 3, 40.0, -9999.0).astype("float32")
    return write_cog(path, data, Grid(crs, 305750.0, 3714550.0, 25.0, width, height), -9999.0, "float32")


def test_thickness_item_from_the_cog_header(tmp_path):
    cog = _cog(tmp_path / "RGI60-13.00001_1990.tif")
    item = thickness_item(ThicknessProduct("RGI60-13.00001", 1990, cog), cog, multihash_sha256(cog), PROV)
    props, asset = item["properties"], item["assets"]["thickness"]
    with rasterio.open(cog) as src:
        assert props["proj:shape"] == [7, 11] and props["proj:transform"] == list(src.transform)[:6]
        assert props["proj:bbox"] == list(src.bounds)
    assert props["proj:code"] == "EPSG:32646" and "proj:wkt2" not in props
    assert props["datetime"] == "1990-01-01T00:00:00Z" and props["epoch"] == 1990 and props["gsd"] == 25.0
    assert props["processing:software"] == PROV.software and props["version"] == "1.2.3"
    assert props["sci:publications"][0]["doi"] == "10.1017/jog.2021.120" and props["license"] == "CC-BY-4.0"
    assert asset["href"] == "./RGI60-13.00001_1990.tif" and asset["file:size"] == cog.stat().st_size
    assert asset["file:checksum"] == "1220" + hashlib.sha256(cog.read_bytes()).hexdigest()
    assert asset["raster:bands"] == [{"nodata": -9999.0, "data_type": "float32", "spatial_resolution": 25.0,
                                      "unit": "m"}]
    assert {e.split("/")[3] for e in item["stac_extensions"]} == \
        {"projection", "raster", "file", "processing", "scientific", "version"}
    links = {lk["rel"]: lk["href"] for lk in item["links"]}
    assert links == {"root": "../../catalog.json", "parent": "./catalog.json", "collection": "../collection.json",
                     "cite-as": "https://doi.org/10.1017/jog.2021.120"}
    # the footprint (WGS84) holds the COG's corners
    lon, lat = footprint("EPSG:32646", tuple(props["proj:bbox"]))[1][:2]
    assert item["bbox"][:2] == [lon, lat]
    pystac.Item.from_dict(item)  # pystac reads it back


def test_a_cog_without_an_epsg_code_gets_its_wkt2(tmp_path):
    cog = _cog(tmp_path / "RGI60-13.00002_2000.tif", crs=albers_crs())
    item = thickness_item(ThicknessProduct("RGI60-13.00002", 2000, cog), cog, multihash_sha256(cog), PROV)
    assert item["properties"]["proj:code"] is None and "Albers" in item["properties"]["proj:wkt2"]
    path = tmp_path / "RGI60-13.00002_2000.json"
    path.write_text(json.dumps(item))
    assert validate_objects([path], SCHEMAS) == []


def test_validation_names_the_broken_extension(tmp_path):
    cog = _cog(tmp_path / "RGI60-13.00001_1990.tif")
    item = thickness_item(ThicknessProduct("RGI60-13.00001", 1990, cog), cog, multihash_sha256(cog), PROV)
    path = tmp_path / "item.json"
    path.write_text(json.dumps(item))
    assert validate_objects([path], SCHEMAS) == []
    item["properties"]["proj:shape"] = "7x11"
    item["assets"]["thickness"]["file:checksum"] = "not hex"
    path.write_text(json.dumps(item))
    problems = validate_objects([path], SCHEMAS)
    assert len(problems) == 2 and "projection" in problems[0] and "file" in problems[1]
    del item["id"]
    path.write_text(json.dumps(item))
    assert any("item.json" in p and "'id' is a required property" in p for p in validate_objects([path], SCHEMAS))


def test_checksum_datetime_footprint(tmp_path):
    (tmp_path / "f").write_bytes(b"glacier")
    assert multihash_sha256(tmp_path / "f") == "1220" + hashlib.sha256(b"glacier").hexdigest()
    assert epoch_datetime(1965).isoformat() == "1965-01-01T00:00:00+00:00"
    geom, bbox = footprint("EPSG:32646", (323400.0, 3702800.0, 324400.0, 3703800.0))
    assert geom["type"] == "Polygon" and geom["coordinates"][0][0] == geom["coordinates"][0][-1]
    assert bbox[0] == pytest.approx(91.10, abs=0.01) and bbox[1] == pytest.approx(33.45, abs=0.01)


def _products(root, glaciers, years):
    thickness = {}
    for k, gid in enumerate(glaciers):
        for year in years:
            path = root / thickness_relpath(gid, year)
            path.parent.mkdir(parents=True, exist_ok=True)
            _cog(path, width=9 + k, height=7 + year % 3)
            thickness.setdefault(gid, []).append(ThicknessProduct(gid, year, path))
    outlines = {}
    for year in years:
        gdf = gpd.GeoDataFrame({"glacier_id": glaciers, "year": year, "area_km2": 0.05},
                               geometry=[box(305750 + 500 * k, 3714375, 305950 + 500 * k, 3714550)
                                         for k in range(len(glaciers))], crs="EPSG:32646").to_crs(albers_crs())
        shp = root / "regional_outlines" / f"{year}.shp"
        shp.parent.mkdir(parents=True, exist_ok=True)
        gdf.to_file(shp)
        gdf.to_parquet(shp.with_suffix(".parquet"))
        outlines[year] = (gdf, shp)
    return thickness, outlines


def test_a_catalog_written_rewritten_read_and_indexed(tmp_path):
    glaciers, years = ["RGI60-13.00001", "RGI60-13.00002"], list(EPOCHS[:3])
    thickness, outlines = _products(tmp_path / "products", glaciers, years)
    prov = {g: PROV for g in glaciers}
    root = tmp_path / "catalog"
    stats = write_catalog(root, thickness, outlines, prov, "1.2.3", failed={"RGI60-13.00003": "no outline"},
                          region_bbox=[91.0, 33.0, 92.0, 34.0], quality={"mean_abs_diff_pct": 1.5})
    assert (stats.items, stats.thickness_items, stats.outline_items, stats.new) == (9, 6, 3, 6)
    assert len(stats.written) == 9 and stats.glaciers == glaciers
    paths = catalog_json_paths(root) + all_item_paths(root)
    assert validate_objects(paths, SCHEMAS) == []
    for path in paths:  # relative hrefs, but for the IGM paper's DOI
        for link in json.loads(path.read_text())["links"]:
            assert link["rel"] == "cite-as" or not link["href"].startswith(("/", "http")), (path, link)
    links = [(lk["rel"], lk["href"]) for lk in json.loads((root / "catalog.json").read_text())["links"]]
    assert links == [("root", "./catalog.json"), ("child", "./thickness/collection.json"),
                     ("child", "./outlines/collection.json"), ("alternate", "./items.parquet")]
    coll = json.loads((root / "thickness" / "collection.json").read_text())
    assert sorted((lk["rel"], lk["href"]) for lk in coll["links"]) == sorted(
        [("root", "../catalog.json"), ("parent", "../catalog.json"), ("cite-as", "https://doi.org/10.1017/jog.2021.120")]
        + [("child", f"./{y}/catalog.json") for y in years])
    assert coll["summaries"]["epoch"] == years and coll["summaries"]["glacier_id"] == glaciers
    assert coll["summaries"]["proj:code"] == ["EPSG:32646"]
    assert coll["summaries"]["failed_glacier_id"] == ["RGI60-13.00003"]
    assert coll["glacier_assets:quality"] == {"mean_abs_diff_pct": 1.5}
    assert coll["item_assets"]["thickness"]["raster:bands"][0]["nodata"] == -9999.0
    assert coll["extent"]["temporal"]["interval"] == [[f"{years[0]}-01-01T00:00:00Z", f"{years[-1]}-01-01T00:00:00Z"]]
    out = json.loads((root / "outlines" / str(years[1]) / f"{years[1]}.json").read_text())
    assert out["assets"]["geoparquet"]["table:row_count"] == 2 and out["properties"]["n_glaciers"] == 2
    assert out["properties"]["proj:code"] is None and "Albers" in out["properties"]["proj:wkt2"]
    cat = pystac.Catalog.from_file(str(root / "catalog.json"))
    items = list(cat.get_items(recursive=True))
    assert len(items) == 9
    item = next(i for i in items if i.id == f"{glaciers[1]}_{years[2]}")
    with rasterio.open(item.assets["thickness"].get_absolute_href()) as src:
        assert (src.height, src.width) == (7 + years[2] % 3, 10)
    table = pd.read_parquet(root / "items.parquet")
    assert sorted(table["id"]) == sorted(i.id for i in items)
    row = table[table["id"] == item.id].iloc[0]  # asset hrefs from the catalog root, where the index lies
    assert row["assets"]["thickness"]["href"] == thickness_relpath(glaciers[1], years[2])
    assert item.assets["thickness"].href.startswith("./")  # the item files keep theirs
    assert set(table[table["epoch"] == years[0]]["id"]) == {f"{g}_{years[0]}" for g in glaciers} | {f"outlines_{years[0]}"}

    # nothing changed: nothing rewritten, every file byte for byte
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and p.name != "items.parquet"}
    again = write_catalog(root, thickness, outlines, prov, "1.2.3", failed={"RGI60-13.00003": "no outline"},
                          region_bbox=[91.0, 33.0, 92.0, 34.0], quality={"mean_abs_diff_pct": 1.5})
    assert (again.unchanged, again.new, again.updated, again.written) == (6, 0, 0, [])
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and p.name != "items.parquet"} == before

    # one glacier re-published with other thickness at one epoch and none at the last
    gid = glaciers[0]
    _cog(thickness[gid][0].source, width=12, height=12)
    third = write_catalog(root, {gid: thickness[gid][:2]}, {}, prov, "1.2.3")
    assert (third.updated, third.unchanged, third.removed) == (1, 1, 1)
    assert not (root / thickness_relpath(gid, years[2])).exists()
    assert not (root / thickness_relpath(gid, years[2])).with_suffix(".json").exists()
    assert json.loads((root / thickness_relpath(gid, years[0])).with_suffix(".json").read_text()
                      )["properties"]["proj:shape"] == [12, 12]
    assert {p: b for p, b in before.items() if glaciers[1] in p.name} == \
        {p: p.read_bytes() for p in before if glaciers[1] in p.name}
    assert validate_objects(catalog_json_paths(root) + all_item_paths(root), SCHEMAS) == []


def test_items_parquet_is_geoparquet_that_geopandas_and_stac_geoparquet_read(tmp_path):
    """`items.parquet` carries GeoParquet's `geo` metadata: geopandas (and so DuckDB spatial and
    QGIS) read it as GeoParquet, and stac-geoparquet turns its rows back into the items."""
    import pyarrow.parquet as pq
    from stac_geoparquet.arrow import stac_table_to_items

    glaciers, years = ["RGI60-13.00001", "RGI60-13.00002"], list(EPOCHS[:2])
    thickness, outlines = _products(tmp_path / "products", glaciers, years)
    root = tmp_path / "catalog"
    write_catalog(root, thickness, outlines, {g: PROV for g in glaciers}, "1.2.3")
    items = {i.id: i for i in pystac.Catalog.from_file(str(root / "catalog.json")).get_items(recursive=True)}

    gdf = gpd.read_parquet(root / "items.parquet")
    assert gdf.crs.to_epsg() == 4326 and len(gdf) == len(items) == 6
    for row in gdf.itertuples():
        item = items[row.id]
        assert row.geometry.equals_exact(shape(item.geometry), 1e-9)
        assert pd.Timestamp(row.datetime) == pd.Timestamp(item.datetime)
        assert getattr(row, "glacier_id", None) == item.properties.get("glacier_id")

    back = {d["id"]: d for d in stac_table_to_items(pq.read_table(root / "items.parquet"))}
    assert set(back) == set(items)
    for iid, d in back.items():
        assert d["properties"].get("glacier_id") == items[iid].properties.get("glacier_id")
        assert pd.Timestamp(d["properties"]["datetime"]) == pd.Timestamp(items[iid].datetime)
        assert d["geometry"]["type"] == items[iid].geometry["type"]


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_published_files_follow_the_process_umask(tmp_path, umask):
    """Temporary files are private (mkstemp: 0600) until renamed; what is published takes the
    umask's mode, so a web server or a colleague serving `catalog/` can read it."""
    import os
    import stat

    old = os.umask(umask)
    try:
        glaciers, years = ["RGI60-13.00001"], list(EPOCHS[:2])
        thickness, outlines = _products(tmp_path / "products", glaciers, years)
        with new_version(tmp_path / "catalog") as stage:  # a published version, as the publish asset makes it
            write_catalog(stage, thickness, outlines, {g: PROV for g in glaciers}, "1.2.3")
    finally:
        os.umask(old)
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != ".lock"]
    assert any(p.suffix == ".tif" for p in files) and any(p.name == "items.parquet" for p in files)
    assert any(p.suffix == ".zip" for p in files) and any(p.name == "catalog.json" for p in files)
    wrong = {str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files
             if stat.S_IMODE(p.stat().st_mode) != 0o666 & ~umask}
    assert wrong == {}
    folders = [p for p in tmp_path.rglob("*") if p.is_dir()]
    assert {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in folders
            if stat.S_IMODE(p.stat().st_mode) != 0o777 & ~umask} == {}


def test_a_region_s_catalog_says_what_its_spec_and_its_run_say(tmp_path):
    """Texts from the region spec's `dataset` key, a neutral default naming the region for what it
    leaves out, never the seed dataset's; the lineage names the run's forcing, reference volumes,
    geodetic balances and each glacier's outline dates."""
    import yaml

    from glacier_assets.dataset_texts import dataset_texts, outline_dates_text
    from glacier_assets.inventory.region import load_region_spec

    from .tiny import A, write_tiny_region

    spec_path = write_tiny_region(tmp_path / "region", reference_km3={A: 0.01},
                                  geodetic=pd.DataFrame({"glacier_id": [A], "start": [2000], "end": [2020],
                                                         "dmdtda_mwe": [-0.5]}), calibrate_geodetic=False)
    raw = yaml.safe_load(spec_path.read_text())
    neutral = dataset_texts(load_region_spec(spec_path),
                            rheology={"source": ["reference_volumes.csv"], "n_glaciers": 1})
    assert neutral.title == "Glacier thickness and area: tiny, 1960-2020" and "'tiny'" in neutral.description
    assert neutral.citation is None and neutral.license == "other"
    assert [p["name"] for p in neutral.providers] == ["glacier_assets"]
    assert neutral.inputs == ("Mass balance from the ELA table mass_balance.csv. Ice rheology calibrated to 1 "
                              "reference volume (reference_volumes.csv). Compared with, not calibrated to, the geodetic "
                              "mass balances of geodetic.csv.")
    raw["dataset"] = {"title": "Tiny glaciers", "citation": "Me, A. (2027): Tiny glaciers.", "license": "CC0-1.0",
                      "providers": [{"name": "My lab", "roles": ["producer", "licensor"], "url": "https://lab.example"}]}
    spec_path.write_text(yaml.safe_dump(raw))
    own = dataset_texts(load_region_spec(spec_path), rheology=None)
    assert (own.title, own.citation, own.license) == ("Tiny glaciers", "Me, A. (2027): Tiny glaciers.", "CC0-1.0")
    assert own.description == neutral.description  # not given: the neutral one
    assert "No reference volumes: IGM's default rheology." in own.inputs

    glaciers, years = [A], list(EPOCHS[:2])
    thickness, outlines = _products(tmp_path / "products", glaciers, years)
    dates = outline_dates_text([("initial", 1974), ("control", 2000)])
    assert dates == "This glacier: initial outline 1974; calibrated to its outline of 2000."
    prov = Provenance({"glacier_assets": "1.2.3"}, "calibrated", "1.2.3", texts=own, outlines=dates)
    root = tmp_path / "catalog"
    write_catalog(root, thickness, outlines, {A: prov, "__region__": prov}, "1.2.3")
    assert validate_objects(catalog_json_paths(root) + all_item_paths(root), SCHEMAS) == []
    cat = json.loads((root / "catalog.json").read_text())
    assert cat["title"] == "Tiny glaciers" and cat["description"] == own.description
    for name in ("thickness", "outlines"):
        coll = json.loads((root / name / "collection.json").read_text())
        assert coll["license"] == "CC0-1.0" and coll["sci:citation"] == own.citation
        assert [p["name"] for p in coll["providers"]] == ["glacier_assets", "My lab"]
    item = json.loads((root / thickness_relpath(A, years[0])).with_suffix(".json").read_text())["properties"]
    assert item["license"] == "CC0-1.0" and item["sci:citation"] == own.citation
    assert item["processing:lineage"].endswith(own.inputs + " " + dates)
    everything = "".join(p.read_text() for p in root.rglob("*.json"))
    assert "Yangtze" not in everything and "Guo, W." not in everything and "1990/2000/2010/2020" not in everything
