"""What one glacier runs in a batch run (`TileRun`), and our two IGM processes: the surface mass
balance read from the domain's balance profiles, and the snapshots of each tile's thickness,
volume and area."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..constants import ICE_THRESHOLD_M
from ..science.masks import volume_km3
from ..science.massbalance import BalanceProfiles
from ..science.packing import Packing

NO_GRADIENT = (1.0, float("inf"))  # a balance-gradient factor of 1 from no year on
IDLE_SHIFT_M = 3000.0  # the ELA shift of a tile with nothing to run in a batch run: no snow anywhere


class BalanceProcess:
    """Our IGM process `smb`: each tile's yearly balance profiles read at its simulated surface,
    shifted by the tile's `d_ela` and scaled by its `gradient` from `gradient_from` on. Computed
    north-up on the packed canvas; the gutters between tiles melt (-10 m/a)."""

    __name__ = "glacier_assets.smb"

    def __init__(self, profiles: list[BalanceProfiles], icemask: np.ndarray, packing: Packing):
        self.profiles = profiles
        self.icemask = icemask  # north-up canvas
        self.packing = packing
        n = len(profiles)
        self.d_ela = np.zeros(n)
        self.gradient = np.ones(n)  # balance-gradient factor: b = gradient * b(z - d_ela) ...
        self.gradient_from = np.full(n, np.inf)  # ... in the years from this one on (geodetic calibration)
        self.spinup_offset = np.zeros(n)  # the spin-up's ELA shifted this much more (geodetic calibration)
        self.offset = np.zeros(n, dtype=int)  # each tile's calendar year = the run's year + its offset
        self._year: int | None = None
        self.melt: np.ndarray | None = None  # north-up canvas: where the balance is at most -10 m/a

    def initialize(self, cfg, state) -> None:
        self._year = None

    def update(self, cfg, state) -> None:
        import tensorflow as tf

        year = int(np.floor(float(state.t.numpy()) + 1e-3))
        if year == self._year:
            return
        self._year = year
        usurf = state.usurf.numpy()[::-1]
        b = np.full(usurf.shape, -10.0)
        for k, tile in enumerate(self.packing.tiles):
            own = year + int(self.offset[k])
            bk = self.profiles[k].at(own, usurf[tile.slices], self.d_ela[k], self.spinup_offset[k])
            b[tile.slices] = self.gradient[k] * bk if own >= self.gradient_from[k] else bk
        b = np.where((b < 0) | (self.icemask > 0.5), b, -10.0)
        if self.melt is not None:
            b = np.where(self.melt, np.minimum(b, -10.0), b)
        state.smb = tf.constant(np.ascontiguousarray(b[::-1]).astype("float32"))

    def finalize(self, cfg, state) -> None:
        pass


class Snapshots:
    """Each tile's volume and area every saved year of its own calendar (up to its end), and its
    thickness (north-up) in the years `keep(tile, year)` says."""

    __name__ = "glacier_assets.snapshots"

    def __init__(self, packing: Packing, offsets: np.ndarray, ends: list[int],
                 keep: Callable[[int, int], bool], cell_m2: float,
                 on_save: Callable[[int, list[np.ndarray]], None] | None = None,
                 on_step: Callable[[float], None] | None = None):
        self.packing, self.offsets, self.ends = packing, offsets, ends
        self.on_step = on_step
        self.saved: list[dict[int, np.ndarray]] = [{} for _ in packing.tiles]
        self.series: list[dict[int, tuple[float, float]]] = [{} for _ in packing.tiles]  # (km3, km2 >= 2 m)
        self.on_save = on_save
        self.keep = keep
        self.cell_m2 = cell_m2

    def run(self, cfg, state) -> None:
        if self.on_step is not None:
            self.on_step(float(state.t.numpy()))
        if state.saveresult:
            year = int(round(float(state.t.numpy())))
            tiles = self.packing.unpack(state.thk.numpy()[::-1])  # north-up copies
            kept = []
            for k, thk in enumerate(tiles):
                own = year + int(self.offsets[k])
                if own > self.ends[k]:
                    continue
                self.series[k][own] = (volume_km3(thk, self.cell_m2),
                                       float(np.count_nonzero(thk >= ICE_THRESHOLD_M)) * self.cell_m2 / 1e6)
                if self.keep(k, own):
                    self.saved[k][own] = thk.astype("float32")
                    kept.append(k)
            if self.on_save and kept:
                self.on_save(year, [self.saved[k][year + int(self.offsets[k])] for k in kept])


@dataclass(frozen=True)
class TileRun:
    """One glacier's run within a batch run: from `start` to `end` of its own calendar, from
    `thk0` (north-up; None: the domain's initial ice), with ELA shift `d_ela` and gradient factor
    `gradient` = (factor, from year), the spin-up's ELA shifted `spinup_offset` more; thickness
    kept every `SAVE_EVERY_YEARS` years, at the end and in the years of `keep`. `flow` is the flow
    state the run starts from, as a run returned it (None: the model's initial one): with the
    identity mapping each tile starts from its own velocities; with the network, a batch run starts
    from the weights most of its runs ask for."""

    start: int
    end: int
    thk0: np.ndarray | None = None
    d_ela: float = 0.0
    keep: tuple[int, ...] = ()
    flow: list | None = None
    gradient: tuple[float, float] = NO_GRADIENT
    spinup_offset: float = 0.0
