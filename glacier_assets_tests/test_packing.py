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


def test_a_glacier_alone_runs_on_a_grid_rounded_up_the_ladder_with_ice_free_padding():
    from glacier_assets.science.packing import model_shape, model_side, padded

    assert [model_side(n) for n in (1, 8, 9, 40, 46, 128, 129, 250, 257, 300)] == [8, 8, 16, 40, 48, 128, 144, 256,
                                                                                   288, 320]
    assert model_shape((91, 97)) == (96, 104)
    for n in range(1, 600):  # never smaller, never more than a step (at most 12.5 %, 1/8) larger
        assert n <= model_side(n) < n + max(8, n // 8 + 1)
    with pytest.raises(ValueError):
        model_side(0)
    packing = padded((40, 46), model_shape((40, 46)))
    assert packing.shape == (40, 48) and packing.tiles[0].slices == (slice(0, 40), slice(0, 46))
    bed = np.arange(40 * 46, dtype="float64").reshape(40, 46)
    canvas = packing.pack([bed])
    assert (canvas[:, 46:] == bed[:, -1:]).all()  # the padding takes the nearest bed, as gutters do
    assert (packing.pack([np.ones((40, 46))], fill=0.0)[:, 46:] == 0).all()  # and no ice
    assert (packing.unpack(canvas)[0] == bed).all()
    with pytest.raises(ValueError, match="does not fit"):
        padded((50, 40), (48, 48))
