"""Touching glaciers: nearest-glacier zones tile the ground, and regional files are checked for
area counted twice (no IGM)."""

import geopandas as gpd
import pytest
import numpy as np
from shapely.geometry import box

from glacier_assets.science.grids import Grid
from glacier_assets.science.resample import thickness_product
from glacier_assets.science.vectorize import overlaps
from glacier_assets.science.zones import owned_cells

GRID = Grid("EPSG:32646", 0.0, 1000.0, 25.0, 40, 40)  # 1 km square
WEST, EAST = box(100, 100, 500, 900), box(500, 100, 900, 900)  # share the edge x = 500


def test_touching_glaciers_split_the_ground_without_gaps_or_overlap():
    west = owned_cells(GRID, WEST, 7, [(EAST, 3)])
    east = owned_cells(GRID, EAST, 3, [(WEST, 7)])
    assert not (west & east).any() and (west | east).all()
    x = GRID.x[None, :].repeat(GRID.height, 0)
    assert (x[west] < 500).all() and (x[east] > 500).all()  # the divide is the shared edge


def test_ice_that_flowed_into_a_neighbour_is_cut_at_the_divide():
    thk = np.zeros((10, 10))  # 100 m model grid; the west glacier's ice reaches far into the east one
    thk[2:8, 1:8] = 50.0
    fine_keep = owned_cells(GRID, WEST, 7, [(EAST, 3)])
    fine, fgrid = thickness_product(thk, Grid("EPSG:32646", 0.0, 1000.0, 100.0, 10, 10), 4, fine_keep)
    assert fgrid.xmax <= 500  # nothing east of the divide
    assert fine.max() == 50.0


def test_overlapping_outlines_go_to_the_lower_code_from_either_side():
    a, b, c = box(0, 0, 600, 600), box(400, 0, 1000, 600), box(400, 400, 1000, 1000)  # all three share a corner area
    owners = {code: owned_cells(GRID, geom, code, [(g, k) for g, k in ((a, 1), (b, 2), (c, 3)) if k != code])
              for geom, code in ((a, 1), (b, 2), (c, 3))}
    total = sum(o.astype(int) for o in owners.values())
    assert (total <= 1).all()
    cell = (GRID.height - 1 - int(500 // 25), int(500 // 25))  # inside a, b and c
    assert owners[1][cell] and not owners[2][cell] and not owners[3][cell]


def test_the_split_does_not_depend_on_the_grid_it_is_computed_on():
    whole = owned_cells(GRID, WEST, 7, [(EAST, 3)])
    part_grid = GRID.window(5, 30, 12, 28)  # a crop on the same lattice around the divide
    part = owned_cells(part_grid, WEST, 7, [(EAST, 3)])
    np.testing.assert_array_equal(part, whole[5:30, 12:28])


def test_a_glacier_without_neighbours_keeps_everything():
    assert owned_cells(GRID, WEST, 7, []).all()


def test_overlap_figures_of_a_regional_file():
    outlines = gpd.GeoSeries([box(0, 0, 1000, 1000), box(500, 0, 1500, 1000), box(1500, 0, 2000, 1000)],
                             crs="EPSG:32646")
    assert overlaps(outlines) == (1, 0.5)  # the third only touches the second
    assert overlaps(outlines.iloc[[0, 2]]) == (0, 0.0)


def test_the_touching_oetztal_glaciers_spilling_ice_never_overlap(shared_data):
    """The 20 real, touching Ötztal glaciers (RGI 5.0), each with ice spilling 500 m beyond its
    outline on its own grid: cut to their zones, the outlines tile the ground (no area counted
    twice, none lost); uncut, they overlap."""
    from shapely.ops import unary_union

    from glacier_assets.constants import albers_crs
    from glacier_assets.inventory.outlines import build_inventory
    from glacier_assets.inventory.region import OutlineSource
    from glacier_assets.science.vectorize import mask_to_polygons
    from glacier_assets.science.zones import burn
    from glacier_assets.workflow import domain_layout, glacier_zone

    src = OutlineSource(shared_data / "oggm_oetztal" / "rgi_oetztal.shp", year_column="BgnDate")
    inv = build_inventory((src,), r"^RGI50-\d{2}\.\d{5}(_d\d{2})?$").outlines
    cut, uncut = [], []
    for gid in sorted(inv["glacier_id"]):
        rows, grid, _ = domain_layout(gid, inv)
        fine = grid.refined(4)
        zone = glacier_zone(gid, inv, grid)
        ice = burn(rows.to_crs(grid.crs).geometry.iloc[0].buffer(500), fine)
        for masks, out in (((ice & zone.cells(fine)), cut), (ice, uncut)):
            polys = mask_to_polygons(masks.astype("int32") * zone.code, fine.transform)
            out.append(gpd.GeoSeries(list(polys.values()), crs=grid.crs).to_crs(albers_crs()).iloc[0])
    cut, uncut = gpd.GeoSeries(cut, crs=albers_crs()), gpd.GeoSeries(uncut, crs=albers_crs())
    n_pairs, twice_km2 = overlaps(uncut)
    assert n_pairs >= 10 and twice_km2 > 1.0
    assert overlaps(cut) == (0, 0.0)
    assert unary_union(list(cut)).area == pytest.approx(unary_union(list(uncut)).area, rel=1e-3)
