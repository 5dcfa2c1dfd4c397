"""Touching glaciers: nearest-glacier zones tile the ground, and regional files are checked for
area counted twice (no IGM)."""

import geopandas as gpd
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
