"""One glacier's IGM model (a batch of one), and the pool that re-targets one model to every glacier
of its grid, so a process builds IGM's TensorFlow functions once per grid."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr

from ..constants import END_YEAR, START_YEAR
from ..science.packing import model_shape
from .model import IGMBatch
from .settings import IGMSettings


def reusable(settings: IGMSettings) -> bool:
    """Whether a model of these settings can be re-targeted to another glacier: the network
    emulator warm-started from shared weights, which it reloads for each (a cold start trains
    from scratch once; the identity mapping's glaciers are packed instead)."""
    return settings.mapping == "network" and settings.emulator_weights is not None


def model_key(glacier_id: str, shape: tuple[int, int], settings: IGMSettings) -> tuple[int, int] | str:
    """The model a glacier alone runs on in a process (`ModelPool`): its grid's, shared, when
    models are `reusable`, else its own."""
    return model_shape(shape) if reusable(settings) else glacier_id


class IGMGlacier(IGMBatch):
    """One glacier's IGM model: a batch of one, with scalar shifts and per-glacier results. A
    model that can be re-used (`reusable`: the network emulator warm-started from shared weights)
    runs on the domain padded to `model_shape` (ice-free, like a gutter), so that one model serves
    every glacier of that grid in turn (`retarget`), its TensorFlow functions built once (~10 s of
    a glacier's start-up, measured); any other runs on the domain's own grid."""

    def __init__(self, domain: xr.Dataset, settings: IGMSettings = IGMSettings()):
        shape = (domain.sizes["y"], domain.sizes["x"])
        super().__init__([domain], settings, canvas=model_shape(shape) if reusable(settings) else None)
        self.domain = self.domains[0]
        self.retargeted = False  # built for another glacier's domain

    def fits(self, domain: xr.Dataset, settings: IGMSettings) -> bool:
        """Whether `retarget` can give this model `domain` run with `settings`."""
        return (settings == self.settings and reusable(settings)
                and model_shape((domain.sizes["y"], domain.sizes["x"])) == self.packing.shape
                and float(abs(domain["x"].values[1] - domain["x"].values[0])) == self.resolution)

    def retarget(self, domain: xr.Dataset) -> None:
        """This model, its IGM module and compiled functions kept, on another glacier's domain of
        the same grid: it then starts as a fresh model of that domain does (the shared emulator
        reloaded and re-trained, the optimizer reset), so its answers are the same, bit for bit
        on CPU (`test_batch.py`)."""
        if not self.fits(domain, self.settings):
            raise ValueError(f"glacier {domain.attrs.get('glacier_id')}: a {domain.sizes['y']}x{domain.sizes['x']} "
                             f"domain does not fit this {self.packing.shape} network model")
        self._set_domains([domain], self.packing.shape)
        self.domain = self.domains[0]
        self._set_state()
        self.retargeted = True

    def run(self, start: float = START_YEAR, end: float = END_YEAR, thk0: np.ndarray | None = None,
            d_ela: float = 0.0, on_save: Callable[[int, np.ndarray], None] | None = None,
            keep: tuple[int, ...] = ()) -> dict[int, np.ndarray]:
        """Simulate from `start` to `end` (from `thk0`, north-up, or the domain's initial ice) and
        return the thickness (north-up, m) at the end, every `SAVE_EVERY_YEARS` years and at the
        years in `keep`."""
        saved = self.run_batch(start, end, [thk0], d_ela, None if on_save is None else
                               (lambda year, tiles: on_save(year, tiles[0])), keep)
        return saved[0]


class ModelPool:
    """One `IGMGlacier` per grid and settings, re-targeted to each glacier that fits it: a process
    running many glaciers builds IGM's TensorFlow functions once per grid, not per glacier (and
    its memory grows per grid: TensorFlow keeps every model's functions until the process ends)."""

    def __init__(self) -> None:
        self.models: list[IGMGlacier] = []
        self.reused = 0

    def model(self, domain: xr.Dataset, settings: IGMSettings) -> IGMGlacier:
        for m in self.models:
            if m.fits(domain, settings):
                m.retarget(domain)
                self.reused += 1
                return m
        m = IGMGlacier(domain, settings)
        if reusable(settings):
            self.models.append(m)
        return m
