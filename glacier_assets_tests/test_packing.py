"""Packing glacier domains into one grid for a batched IGM run (science/packing.py)."""

import numpy as np
import pytest

from glacier_assets.science.packing import pack_tiles


def test_tiles_never_touch_and_round_trip():
    rng = np.random.default_rng(0)
    shapes = [(int(rng.integers(20, 120)), int(rng.integers(20, 120))) for _ in range(40)]
    packing = pack_tiles(shapes, gutter=2)
    labels = packing.labels()
    for k, tile in enumerate(packing.tiles):
        assert (tile.ny, tile.nx) == shapes[k] and (labels[tile.slices] == k).all()
        # a gutter of 2 cells around every tile: no other tile within it
        r0, c0 = max(tile.row - 2, 0), max(tile.col - 2, 0)
        ring = labels[r0:tile.row + tile.ny + 2, c0:tile.col + tile.nx + 2]
        assert set(np.unique(ring)) <= {-1, k}
    arrays = [rng.normal(size=s).astype("float32") for s in shapes]
    assert all(np.array_equal(a, b) for a, b in zip(arrays, packing.unpack(packing.pack(arrays, fill=0.0))))
    assert packing.fill_fraction > 0.6  # shelves waste little


def test_gutters_take_the_nearest_bed_or_a_fill_value():
    packing = pack_tiles([(3, 3), (3, 3)], gutter=2)
    assert packing.shape == (3, 8) and packing.tiles[1].col == 5
    canvas = packing.pack([np.full((3, 3), 4000.0), np.full((3, 3), 5000.0)])
    assert (canvas[:, 3] == 4000.0).all() and (canvas[:, 4] == 5000.0).all()  # no cliff between tiles
    assert (packing.pack([np.ones((3, 3)), np.ones((3, 3))], fill=0.0)[:, 3:5] == 0).all()


def test_one_domain_is_its_own_canvas():
    packing = pack_tiles([(81, 78)])
    assert packing.shape == (81, 78) and packing.fill_fraction == 1.0
    with pytest.raises(ValueError, match="nothing to pack"):
        pack_tiles([])
