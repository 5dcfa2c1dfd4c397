"""Outlines from several inventories tied to the reference glaciers by location, and the region cut
out of a regional inventory (no IGM)."""

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import yaml
from shapely.geometry import box
from shapely.ops import unary_union

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


def _rekeyed(gdf: gpd.GeoDataFrame, prefix: str, extra=()) -> gpd.GeoDataFrame:
    """The twin's outlines as a Chinese inventory would hold them: CGI-style codes, Albers; `extra`
    adds (date, geometry in the same CRS) features."""
    rows = [(r.BgnDate, r.geometry) for r in gdf.itertuples()] + list(extra)
    return gpd.GeoDataFrame({"FCGI_ID": [f"{prefix}{i:04d}" for i in range(len(rows))],
                             "BgnDate": [d for d, _ in rows], "geometry": [g for _, g in rows]},
                            crs=gdf.crs).to_crs(albers_crs())


def test_the_twin_from_several_inventories(demo_region, tmp_path):
    """Reference: the twin's ~2000 RGI6 outlines. The 1970s, 1990 and 2020 outlines come re-keyed
    with CGI codes in Albers: two glaciers joined in one 1970s polygon, one glacier in two 2020
    polygons, one glacier missing from 1990. Each ends up on the right glacier."""
    folder = demo_region.parent
    read = lambda name: gpd.read_file(folder / name).sort_values("RGIId").reset_index(drop=True)  # noqa: E731
    ref, old, c1990, c2020 = (read(f"outlines_{y}.shp") for y in ("2000", "1970s", "1990", "2020"))
    utm = ref.estimate_utm_crs()
    centres = old.to_crs(utm).geometry.centroid
    dist = np.array([[a.distance(b) for b in centres] for a in centres]) + np.eye(len(old)) * 1e9
    i, j = np.unravel_index(np.argmin(dist), dist.shape)  # the two nearest glaciers, joined by their hull
    pair = old.to_crs(utm).geometry.iloc[[i, j]]
    joined = unary_union([*pair, unary_union(list(pair)).convex_hull.buffer(-50)])
    joined_4326 = gpd.GeoSeries([joined], crs=utm).to_crs(old.crs).iloc[0]
    old_cgi = _rekeyed(old.drop(index=[i, j]), "5K441A", [(old.loc[i, "BgnDate"], joined_4326)])
    k = 1  # one glacier in two pieces by 2020
    piece = c2020.to_crs(utm).geometry.iloc[k]
    x0, y0, x1, y1 = piece.bounds
    cx = piece.centroid.x
    halves = gpd.GeoSeries([piece.intersection(box(x0 - 1, y0 - 1, cx, y1 + 1)),
                            piece.intersection(box(cx, y0 - 1, x1 + 1, y1 + 1))], crs=utm).to_crs(c2020.crs)
    new_cgi = _rekeyed(c2020.drop(index=[k]), "5K441B", [(c2020.loc[k, "BgnDate"], h) for h in halves])
    halves_ids = set(new_cgi["FCGI_ID"].iloc[-len(halves):])
    gone = c1990["RGIId"].iloc[2]
    mid_cgi = _rekeyed(c1990[c1990["RGIId"] != gone], "5K441C")
    for name, gdf in (("cgi_1970s.gpkg", old_cgi), ("cgi_1990.gpkg", mid_cgi), ("cgi_2020.gpkg", new_cgi)):
        gdf.to_file(tmp_path / name)
    sources = (
        OutlineSource(folder / "outlines_2000.shp", "control", year_column="BgnDate"),
        OutlineSource(tmp_path / "cgi_1970s.gpkg", "initial", year_column="BgnDate", match="location"),
        OutlineSource(tmp_path / "cgi_1990.gpkg", "control", year_column="BgnDate", match="location"),
        OutlineSource(folder / "outlines_2010.shp", "control", year_column="BgnDate"),
        OutlineSource(tmp_path / "cgi_2020.gpkg", "control", year_column="BgnDate", match="location"),
    )
    build = build_inventory(sources, RGI6)
    inv = build.outlines
    assert build.rejections == [] and build.unmatched.empty
    assert sorted(inv["glacier_id"].unique()) == sorted(ref["RGIId"])
    assert list(build.missing.itertuples(index=False)) == [("cgi_1990.gpkg", gone)]

    def outline(gid, source):
        return inv[(inv["glacier_id"] == gid) & (inv["source"] == source)].to_crs(utm).geometry.iloc[0]

    for n, gid in enumerate(ref["RGIId"]):  # every glacier's own ice, from whichever polygon held it
        own_old = old[old["RGIId"] == gid].to_crs(utm).geometry.iloc[0]
        got = outline(gid, "cgi_1970s.gpkg")
        assert got.intersection(own_old).area / own_old.area > 0.99, gid
        if gid not in (old.loc[i, "RGIId"], old.loc[j, "RGIId"]):
            assert got.area == pytest.approx(own_old.area, rel=1e-3), gid
        own_new = c2020[c2020["RGIId"] == gid].to_crs(utm).geometry.iloc[0]
        assert outline(gid, "cgi_2020.gpkg").area == pytest.approx(own_new.area, rel=1e-3), gid  # halves joined
    bridge = joined.area - pair.area.sum()
    shares = [outline(old.loc[g, "RGIId"], "cgi_1970s.gpkg").area - pair.iloc[n].area for n, g in enumerate((i, j))]
    assert sum(shares) == pytest.approx(bridge, rel=0.01) and min(shares) > 0  # the bridge is shared out
    split_rows = build.matches[build.matches["source"] == "cgi_2020.gpkg"]
    assert len(halves_ids) == 2
    assert set(split_rows.loc[split_rows["source_id"].isin(halves_ids), "glacier_id"]) == {ref["RGIId"].iloc[k]}


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
