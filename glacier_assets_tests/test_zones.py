"""Touching glaciers: nearest-glacier zones, the mosaic of simulated outlines, and regional files
checked for area counted twice (no IGM)."""

import geopandas as gpd
import pytest
from shapely.geometry import box
from shapely.ops import unary_union

from glacier_assets.science.vectorize import overlaps
from glacier_assets.science.zones import mosaic, nearest_zones

WEST, EAST = box(100, 100, 500, 900), box(500, 100, 900, 900)  # initial outlines sharing the edge x = 500


def test_zones_split_the_ground_at_the_divide():
    zones = nearest_zones({"W": WEST, "E": EAST}, box(0, 0, 1000, 1000))
    assert zones["W"].intersection(zones["E"]).area == pytest.approx(0, abs=1)
    assert zones["W"].union(zones["E"]).area == pytest.approx(1e6, rel=1e-6)
    # the divide, to half the 25 m sampling of the outlines beyond their ends
    assert zones["W"].bounds[2] == pytest.approx(500, abs=12.5) and zones["E"].bounds[0] == pytest.approx(500, abs=12.5)


def test_overlapping_ice_goes_to_the_nearer_glacier_and_nothing_is_lost():
    west_ice = box(100, 100, 700, 900)  # the west glacier's ice flowed 200 m past the divide
    east_ice = box(450, 300, 900, 900)  # the east glacier's ice reaches 50 m back
    tiled = mosaic({"W": west_ice, "E": east_ice}, {"W": WEST, "E": EAST})
    assert tiled["W"].intersection(tiled["E"]).area == pytest.approx(0, abs=1)
    assert unary_union([tiled["W"], tiled["E"]]).area == pytest.approx(west_ice.union(east_ice).area, rel=1e-9)
    # where only the west glacier has ice (below y = 300, past the divide) it keeps it
    assert tiled["W"].contains(box(510, 110, 690, 290))
    assert tiled["E"].contains(box(510, 310, 690, 890)) and tiled["W"].contains(box(455, 310, 495, 890))


def test_overlap_figures_of_a_regional_file():
    outlines = gpd.GeoSeries([box(0, 0, 1000, 1000), box(500, 0, 1500, 1000), box(1500, 0, 2000, 1000)],
                             crs="EPSG:32646")
    assert overlaps(outlines) == (1, 0.5)  # the third only touches the second
    assert overlaps(outlines.iloc[[0, 2]]) == (0, 0.0)


def test_the_touching_oetztal_glaciers_spilling_ice_make_a_mosaic(shared_data):
    """The 20 real, touching Ötztal glaciers (RGI 5.0), each with ice spilling 500 m beyond its
    outline: as a mosaic, no area is counted twice and none is lost."""
    from glacier_assets.inventory.outlines import build_inventory
    from glacier_assets.inventory.region import OutlineSource

    src = OutlineSource(shared_data / "oggm_oetztal" / "rgi_oetztal.shp", year_column="BgnDate")
    inv = build_inventory((src,), r"^RGI50-\d{2}\.\d{5}(_d\d{2})?$").outlines
    utm = inv.estimate_utm_crs()
    initial = dict(zip(inv["glacier_id"], inv.to_crs(utm).geometry))
    spilled = {g: geom.buffer(500) for g, geom in initial.items()}
    n_pairs, twice_km2 = overlaps(gpd.GeoSeries(list(spilled.values()), crs=utm))
    assert n_pairs >= 10 and twice_km2 > 5
    tiled = mosaic(spilled, initial)
    assert overlaps(gpd.GeoSeries(list(tiled.values()), crs=utm)) == (0, 0.0)
    assert unary_union(list(tiled.values())).area == pytest.approx(unary_union(list(spilled.values())).area, rel=1e-6)
    for g, geom in initial.items():  # every glacier keeps its own outline
        assert tiled[g].intersection(geom).area == pytest.approx(geom.area, rel=1e-3), g


def test_a_glacier_whose_ice_all_lies_nearer_a_neighbour_leaves_the_regional_file(tmp_path):
    """Regional files never hold an empty outline: a glacier whose simulated ice overlaps a
    neighbour's and lies nearer the neighbour's initial outline cedes all of it."""
    from glacier_assets.constants import albers_crs
    from glacier_assets.steps.epoch import OUTLINE_COLUMNS
    from glacier_assets.steps.regional import make_regional_outlines

    crs = "EPSG:32646"
    initial = gpd.GeoSeries([box(0, 0, 1000, 1000), box(1000, 0, 1010, 10)], crs=crs).to_crs("EPSG:4326")
    paths = []
    for gid, geom in (("RGI60-13.00001", box(0, 0, 1000, 1000)), ("RGI60-13.00002", box(900, 100, 950, 150))):
        gdf = gpd.GeoDataFrame([{"glacier_id": gid, "year": 2000, "code": 1, "area_km2": geom.area / 1e6,
                                 "geometry": geom}], columns=OUTLINE_COLUMNS, geometry="geometry", crs=crs)
        gdf.to_parquet(tmp_path / f"{gid}.parquet")
        paths.append(tmp_path / f"{gid}.parquet")
    figures = make_regional_outlines(paths, 2000, albers_crs(), tmp_path / "r.shp", tmp_path / "r.parquet",
                                     dict(zip(["RGI60-13.00001", "RGI60-13.00002"], initial)))
    assert figures["n_glaciers"] == 1 and figures["overlapping_pairs"] == 0
    assert figures["mosaicked_overlap_km2"] == pytest.approx(0.0025, rel=0.01)  # the 50 m square, in Albers
