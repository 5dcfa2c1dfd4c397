"""Outlines from several inventories tied to the reference glaciers by location, and the region cut
out of a regional inventory (no IGM)."""

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import yaml
from shapely.geometry import box

from glacier_assets.constants import albers_crs
from glacier_assets.inventory.matching import split_by_location
from glacier_assets.inventory.outlines import build_inventory
from glacier_assets.inventory.region import OutlineSource, RegionSpecError, load_region_spec

RGI5 = r"^RGI50-\d{2}\.\d{5}(_d\d{2})?$"
RGI6 = r"^RGI60-\d{2}\.\d{5}$"
UTM = "EPSG:32646"


def _polygons(*geoms):
    return gpd.GeoDataFrame({"source": "old.shp", "source_id": [f"P{i}" for i in range(len(geoms))],
                             "role": "initial", "year": 1975, "geometry": list(geoms)}, crs=UTM)


def test_shares_of_joined_retreated_vanished_and_neighbouring_polygons():
    ref = gpd.GeoSeries([box(0, 0, 1000, 1000), box(1000, 0, 2000, 1000), box(5000, 0, 5500, 500)],
                        index=["A", "B", "C"], crs=UTM)
    joined = box(-100, -100, 2100, 1100)  # A and B as one glacier in the old inventory
    retreated = box(4800, -200, 5600, 700)  # C was larger
    vanished = box(9000, 0, 9300, 300)  # no glacier left there
    touching = box(5500, 0, 6000, 500)  # a neighbour missing from the reference, sharing C's edge
    shares, unmatched = split_by_location(_polygons(joined, retreated, vanished, touching), ref, 0.01, albers_crs())
    got = {(r.source_id, r.glacier_id): r for r in shares.itertuples()}
    assert set(got) == {("P0", "A"), ("P0", "B"), ("P1", "C")}
    assert got["P0", "A"].overlap_fraction == pytest.approx(0.5, abs=0.01)  # split at the divide x = 1000
    assert got["P0", "A"].geometry.bounds[2] == pytest.approx(1000, abs=25)
    assert got["P1", "C"].overlap_fraction == 1.0 and got["P1", "C"].status == "matched"
    assert list(unmatched["source_id"]) == ["P2", "P3"]
    assert "nearest: C, touching" in unmatched.iloc[1]["reason"]


def test_hintereisferner_under_three_id_schemes_is_one_glacier(shared_data):
    sources = (
        OutlineSource(shared_data / "oggm_hef" / "Hintereisferner_RGI6.shp", "initial", year_column="BgnDate"),
        OutlineSource(shared_data / "oggm_rgi7_hef" / "rgi7g_hef.shp", "control", year_column="src_date",
                      match="location"),
        OutlineSource(shared_data / "oggm_oetztal" / "rgi_oetztal.shp", "control", year=2004, match="location"),
    )
    build = build_inventory(sources, RGI6)
    matched = build.matches[build.matches["status"] == "matched"]
    assert sorted(matched["source_id"]) == ["RGI2000-v7.0-G-11-03116", "RGI50-11.00897"]
    assert set(matched["glacier_id"]) == {"RGI60-11.00897"}
    assert (matched["overlap_fraction"] > 0.999).all()
    assert len(build.unmatched) == 19  # the other Ötztal glaciers: not in this reference, never dropped silently
    inv = build.outlines
    assert sorted(inv["year"]) == [2003, 2003, 2004] and set(inv["glacier_id"]) == {"RGI60-11.00897"}
    rgi6 = inv[inv["source"] == "Hintereisferner_RGI6.shp"]["area_km2"].iloc[0]
    assert inv["area_km2"].to_numpy() == pytest.approx(rgi6, rel=0.05)


def test_the_twin_from_several_inventories(demo_region, tmp_path):
    """The project's multi-inventory variant of the twin (inventory/demo_variant.py): the reference
    is the ~2000 RGI6 outlines; the 1970s, 1990 and 2020 outlines come with CGI codes in Albers,
    two glaciers in one two-part 1970s record, one glacier in two 2020 polygons, one missing from
    1990. Each ends up on the right glacier."""
    from glacier_assets.inventory.demo_variant import build_multi_inventory_variant

    spec = load_region_spec(build_multi_inventory_variant(demo_region, tmp_path / "variant"))
    variant = json.loads((tmp_path / "variant" / "variant.json").read_text())
    build = build_inventory(spec.outlines, spec.id_pattern)
    inv = build.outlines
    assert build.rejections == [] and build.unmatched.empty
    folder = demo_region.parent
    read = lambda name: gpd.read_file(folder / name)  # noqa: E731
    ref, old, new = read("outlines_2000.shp"), read("outlines_1970s.shp"), read("outlines_2020.shp")
    utm = ref.estimate_utm_crs()
    assert sorted(inv["glacier_id"].unique()) == sorted(ref["RGIId"])
    assert list(build.missing.itertuples(index=False)) == [("cgi_1990.gpkg", variant["missing_from_1990"])]

    def outline(frame, gid, source=None):
        rows = frame[(frame["glacier_id"] == gid) & (frame["source"] == source)] if source else frame[frame["RGIId"] == gid]
        return rows.to_crs(utm).geometry.iloc[0]

    for gid in ref["RGIId"]:  # every glacier's own ice, from whichever polygon held it
        own_old, got = outline(old, gid), outline(inv, gid, "cgi_1970s.gpkg")
        assert got.symmetric_difference(own_old).area < 1e-3 * own_old.area, gid
        assert outline(inv, gid, "cgi_2020.gpkg").area == pytest.approx(outline(new, gid).area, rel=1e-3), gid
    joined = build.matches[build.matches["glacier_id"].isin(variant["joined_in_1970s"])
                           & (build.matches["source"] == "cgi_1970s.gpkg")]
    assert joined["source_id"].nunique() == 1 and len(joined) == 2  # one record, two glaciers
    halves = build.matches[build.matches["source_id"].isin(variant["split_2020_codes"])]
    assert len(halves) == 2 and set(halves["glacier_id"]) == {variant["split_in_2020"]}


# --- the region selected from a regional inventory -------------------------------------------------

PLACES = {  # lon, lat -> the basin that holds it
    "Geladandong (Yangtze source)": ((91.1, 33.5), "Yangtze"),
    "Amne Machin (Yellow River source)": ((99.5, 34.8), "Yellow"),
    "Nyainqentanglha (Brahmaputra)": ((90.6, 30.4), "Brahmaputra"),
    "Muztagh Ata (Tarim)": ((75.1, 38.3), "Tarim"),
}


def _regional_inventory(path: Path) -> None:
    """A synthetic region-wide RGI6 inventory: for each place, glaciers of 0.005 to 2 km2."""
    rows, n = [], 0
    for (lon, lat), _ in PLACES.values():
        for size_km in (0.07, 0.3, 1.0, 1.4):
            n += 1
            d = size_km / 111.0
            rows.append({"RGIId": f"RGI60-13.{n:05d}", "BgnDate": "20000801",
                         "geometry": box(lon + n * 0.05, lat, lon + n * 0.05 + d / np.cos(np.radians(lat)), lat + d)})
    gpd.GeoDataFrame(rows, crs="EPSG:4326").to_file(path)


def _spec(tmp_path: Path, selection: dict) -> Path:
    _regional_inventory(tmp_path / "rgi13.shp")
    (tmp_path / "mb.csv").write_text("year,ela,grad_abl,grad_acc,acc_max\n" +
                                     "".join(f"{y},5600,0.007,0.003,1.0\n" for y in range(1960, 2021)))
    (tmp_path / "dem.tif").write_bytes(b"")
    spec = {"outlines": [{"path": "rgi13.shp", "role": "initial"}], "dem": {"path": "dem.tif"},
            "mass_balance": {"path": "mb.csv"}, "selection": selection}
    (tmp_path / "region.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path / "region.yaml"


def test_the_yangtze_and_yellow_river_glaciers_selected_from_tp_basins(shared_data, tmp_path):
    basins = {"path": str(shared_data / "tp_basins" / "TP_basins.shp"), "column": "BasinName",
              "names": ["Yangtze", "Yellow"]}
    spec = load_region_spec(_spec(tmp_path, {"basins": basins, "min_area_km2": 0.05}))
    build = build_inventory(spec.outlines, spec.id_pattern, selection=spec.selection)
    inv = build.outlines
    # 4 glaciers in each of the two basins, of which the 0.005 km2 one is below the minimum
    assert len(inv) == 6 and (inv["area_km2"] >= 0.05).all()
    lon = inv.geometry.representative_point().x
    assert ((lon > 91) & (lon < 92)).sum() == 3 and ((lon > 99.5) & (lon < 100.5)).sum() == 3
    sel = build.selection
    assert sel["reference_glaciers"] == 16 and sel["selected_glaciers"] == 6
    assert sel["selected_area_km2"] == pytest.approx(inv["area_km2"].sum(), abs=1e-3)
    box_only = load_region_spec(_spec(tmp_path, {"bbox": [95, 30, 105, 36]}))
    assert len(build_inventory(box_only.outlines, box_only.id_pattern, selection=box_only.selection).outlines) == 4


def test_a_basin_the_file_lacks_is_named(shared_data, tmp_path):
    basins = {"path": str(shared_data / "tp_basins" / "TP_basins.shp"), "column": "BasinName", "names": ["Yangtse"]}
    with pytest.raises(RegionSpecError, match=r"selection.basins: basin file .*TP_basins.shp: no basin 'Yangtse'"):
        load_region_spec(_spec(tmp_path, {"basins": basins}))
    with pytest.raises(RegionSpecError, match=r"unknown key 'min_area' in selection \(did you mean 'min_area_km2'"):
        load_region_spec(_spec(tmp_path, {"min_area": 1}))
