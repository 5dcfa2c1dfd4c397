"""Many glacier domains packed into one grid, so that one IGM simulation runs them all.

Each glacier keeps its own 100 m domain (a tile); tiles are placed on shelves (rows as tall as
their tallest tile, filled left to right, tallest tiles first) separated by ice-free gutters, in a
canvas about as wide as it is tall. Nothing flows between tiles: every domain's border is ice-free
(`science/domain.py` lays out at least 1.5 km around the outlines) and in the gutters, which lie
outside every glacier's ice-allowed mask, the balance is never positive. The gutters' bed is the
nearest tile's, so the surface has no cliffs there for the ice-flow emulator to see.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt

GUTTER_CELLS = 2
# A glacier alone runs on a grid whose sides are rounded up to this ladder (`model_shape`), so that
# glaciers of similar size share one IGM model, whose compiled TensorFlow functions are built once
# (igm_run/glacier.py: IGMGlacier.retarget): steps of 8 cells up to 128, 16 up to 256, 32 beyond.
SHAPE_LADDER = ((128, 8), (256, 16), (None, 32))


@dataclass(frozen=True)
class Tile:
    row: int
    col: int
    ny: int
    nx: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.row, self.row + self.ny), slice(self.col, self.col + self.nx)


@dataclass(frozen=True)
class Packing:
    shape: tuple[int, int]
    tiles: tuple[Tile, ...]  # in the order of the domains given to `pack_tiles`

    def labels(self) -> np.ndarray:
        """Each cell's tile index, -1 in the gutters."""
        out = np.full(self.shape, -1, dtype="int32")
        for k, tile in enumerate(self.tiles):
            out[tile.slices] = k
        return out

    def pack(self, arrays: list[np.ndarray], fill: float | None = None) -> np.ndarray:
        """One canvas from one array per tile; gutters get `fill`, or with None the value of the
        nearest tile cell."""
        canvas = np.zeros(self.shape, dtype=np.result_type(*arrays))
        for tile, a in zip(self.tiles, arrays, strict=True):
            if a.shape != (tile.ny, tile.nx):
                raise ValueError(f"array of shape {a.shape} for a tile of {(tile.ny, tile.nx)}")
            canvas[tile.slices] = a
        gutter = self.labels() < 0
        if gutter.any():
            if fill is None:
                _, (iy, ix) = distance_transform_edt(gutter, return_indices=True)
                canvas[gutter] = canvas[iy[gutter], ix[gutter]]
            else:
                canvas[gutter] = fill
        return canvas

    def unpack(self, canvas: np.ndarray) -> list[np.ndarray]:
        """One array (a copy) per tile."""
        return [canvas[tile.slices].copy() for tile in self.tiles]

    @property
    def fill_fraction(self) -> float:
        """The share of the canvas inside tiles."""
        return sum(t.ny * t.nx for t in self.tiles) / float(self.shape[0] * self.shape[1])


def model_side(n: int) -> int:
    """A grid side of `n` cells rounded up to the `SHAPE_LADDER`."""
    if n < 1:
        raise ValueError(f"a grid side of {n} cells")
    for upto, step in SHAPE_LADDER:
        if upto is None or n <= upto:
            return -(-n // step) * step
    raise AssertionError("the ladder ends with an open step")


def model_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """The grid a glacier domain of `shape` (ny, nx) runs on alone: each side on the ladder."""
    return model_side(shape[0]), model_side(shape[1])


def padded(shape: tuple[int, int], canvas: tuple[int, int]) -> Packing:
    """One tile of `shape` in the north-west corner of a `canvas` at least as large: the rest is
    ice-free padding (filled like a gutter)."""
    if shape[0] > canvas[0] or shape[1] > canvas[1]:
        raise ValueError(f"a domain of {shape} does not fit a grid of {canvas}")
    return Packing((canvas[0], canvas[1]), (Tile(0, 0, *shape),))


def pack_tiles(shapes: list[tuple[int, int]], gutter: int = GUTTER_CELLS) -> Packing:
    """Shelf packing of tiles of `shapes` (ny, nx), tallest first, on shelves about as long as the
    canvas is tall; a single tile is its own canvas (no gutter)."""
    if not shapes:
        raise ValueError("nothing to pack")
    order = sorted(range(len(shapes)), key=lambda k: (-shapes[k][0], -shapes[k][1], k))
    area = sum((ny + gutter) * (nx + gutter) for ny, nx in shapes)
    width = max(max(nx for _, nx in shapes), int(np.ceil(np.sqrt(area))))
    placed: dict[int, Tile] = {}
    row = col = shelf_height = 0
    for k in order:
        ny, nx = shapes[k]
        if col > 0 and col + nx > width:  # next shelf
            row, col, shelf_height = row + shelf_height + gutter, 0, 0
        placed[k] = Tile(row, col, ny, nx)
        col += nx + gutter
        shelf_height = max(shelf_height, ny)
    tiles = tuple(placed[k] for k in range(len(shapes)))
    shape = (max(t.row + t.ny for t in tiles), max(t.col + t.nx for t in tiles))
    return Packing(shape, tiles)
