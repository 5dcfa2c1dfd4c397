"""IGM (igm-model 3.2) run in process on one glacier domain, without Hydra or its CLI.

The configuration is IGM's own module defaults (`igm/conf`) merged with OmegaConf; the process
order is smb -> iceflow -> time -> thk, as in IGM's examples. The surface mass balance is our own
IGM process: it reads the domain's yearly balance profiles at the simulated surface (so geometry
feeds back on the balance), shifted by `d_ela` and, from a given year on, scaled by a
balance-gradient factor (`set_gradient`, calibrated to a geodetic balance), and like IGM's
`smb.simple` it replaces positive balance outside the domain's `icemask` with -10 m/a.

The ice-flow emulator (IGM's default `unified` method: a CNN trained on the Blatter-Pattyn energy
while the model runs) is built once per `IGMGlacier` and reused by every `run()`, so repeated runs
(calibration) pay the start-up once. With `emulator_weights` it starts from a shared pretrained
network and trains `warm_iterations` instead of IGM's 300 cold-start iterations.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr

from ..constants import END_YEAR, ICE_THRESHOLD_M, SAVE_EVERY_YEARS, START_YEAR
from ..science.domain import domain_profiles, with_rheology
from ..science.masks import volume_km3
from ..science.massbalance import BalanceProfiles

_TF_CONFIGURED: dict = {}
COLD_ITERATIONS = 300  # IGM's default `unified.nbit_init`: training from scratch at start-up
WARM_ITERATIONS = 100  # from the shared pretrained emulator (accuracy traded: bench/emulator_accuracy.py)


@dataclass(frozen=True)
class IGMSettings:
    threads: int = 1
    seed: int = 0
    emulator_weights: str | None = None
    warm_iterations: int = WARM_ITERATIONS
    cold_iterations: int = COLD_ITERATIONS
    rheology_factor: float = 1.0  # scales the ice's mobility (Glen A and sliding), science/inversion.py
    leave_one_out: bool = True  # predict each outline with it left out of the calibration
    overrides: dict = field(default_factory=dict)  # dotted IGM config keys -> values


def configure_tensorflow(threads: int, seed: int) -> str:
    """Bound TF's threads and fix its seeds; must run before the first TF op. Returns the device."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF's C++ start-up chatter (CUDA plugins on CPU)
    import tensorflow as tf

    if not _TF_CONFIGURED:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))
        gpus = tf.config.list_physical_devices("GPU")
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
        _TF_CONFIGURED["device"] = f"GPU ({gpus[0].name})" if gpus else f"CPU ({threads} threads)"
    tf.keras.utils.set_random_seed(seed)
    return _TF_CONFIGURED["device"]


def igm_config(settings: IGMSettings):
    from omegaconf import OmegaConf
    import igm

    root = Path(igm.__file__).parent / "conf"
    core = OmegaConf.load(root / "core.yaml")
    processes = OmegaConf.merge(*(OmegaConf.load(root / "processes" / f"{p}.yaml") for p in ("iceflow", "time", "thk")))
    cfg = OmegaConf.merge({"core": core.get("core", core)}, {"processes": processes})
    cfg.core.print_info = False
    cfg.processes.time.save = 1.0  # every year: the epochs and any outline's date are whole years
    from ..science.inversion import igm_overrides

    for key, value in {**igm_overrides(settings.rheology_factor), **settings.overrides}.items():
        OmegaConf.update(cfg, key, value)
    return cfg


class _BalanceProcess:
    """Our IGM process `smb`: yearly balance profiles read at the simulated surface."""

    __name__ = "glacier_assets.smb"

    def __init__(self, profiles: BalanceProfiles, icemask: np.ndarray):
        self.profiles = profiles
        self.icemask = icemask
        self.d_ela = 0.0
        self.gradient = 1.0  # balance-gradient factor: b = gradient * b(z - d_ela) ...
        self.gradient_from = np.inf  # ... in the years from this one on (geodetic calibration)
        self._year: int | None = None

    def initialize(self, cfg, state) -> None:
        self._year = None

    def update(self, cfg, state) -> None:
        import tensorflow as tf

        year = int(np.floor(float(state.t.numpy()) + 1e-3))
        if year == self._year:
            return
        self._year = year
        b = self.profiles.at(year, state.usurf.numpy(), self.d_ela)
        if year >= self.gradient_from:
            b = self.gradient * b
        b = np.where((b < 0) | (self.icemask > 0.5), b, -10.0)
        state.smb = tf.constant(b.astype("float32"))

    def finalize(self, cfg, state) -> None:
        pass


class _Snapshots:
    __name__ = "glacier_assets.snapshots"

    def __init__(self, on_save: Callable[[int, np.ndarray], None] | None, keep: Callable[[int], bool], cell_m2: float):
        self.saved: dict[int, np.ndarray] = {}
        self.series: dict[int, tuple[float, float]] = {}  # year -> (volume km3, area km2 of cells >= 2 m)
        self.on_save = on_save
        self.keep = keep
        self.cell_m2 = cell_m2

    def run(self, cfg, state) -> None:
        if state.saveresult:
            year = int(round(float(state.t.numpy())))
            thk_now = state.thk.numpy()
            self.series[year] = (volume_km3(thk_now, self.cell_m2),
                                 float(np.count_nonzero(thk_now >= ICE_THRESHOLD_M)) * self.cell_m2 / 1e6)
            if not self.keep(year):
                return
            thk = thk_now[::-1].astype("float32")  # back to north-up (a copy)
            self.saved[year] = thk
            if self.on_save:
                self.on_save(year, thk)


class IGMGlacier:
    """One glacier's IGM model: build once, `run()` as often as needed."""

    def __init__(self, domain: xr.Dataset, settings: IGMSettings = IGMSettings()):
        self.settings = settings
        self.device = configure_tensorflow(settings.threads, settings.seed)
        import tensorflow as tf
        from igm.common import State

        self.domain = with_rheology(domain, settings.rheology_factor)
        domain = self.domain
        self.cfg = igm_config(settings)
        flip = lambda a: np.ascontiguousarray(np.asarray(a, dtype="float32")[::-1])  # IGM wants y ascending
        x = domain["x"].values.astype("float32")
        y = domain["y"].values[::-1].astype("float32")
        X, Y = np.meshgrid(x, y)
        dx = float(abs(x[1] - x[0]))
        s = State()
        s.original_cwd = Path.cwd()
        s.x, s.y = tf.constant(x), tf.constant(y)
        s.X, s.Y = tf.constant(X), tf.constant(Y)
        s.dx = tf.Variable(np.float32(dx), trainable=False)
        s.dy = tf.Variable(np.float32(dx), trainable=False)
        s.dX = tf.Variable(np.full(X.shape, dx, dtype="float32"), trainable=False)
        s.topg = tf.Variable(flip(domain["topg"].values), trainable=False)
        s.thk = tf.Variable(flip(domain["thk"].values), trainable=False)
        s.usurf = tf.Variable(s.topg + s.thk, trainable=False)
        self.state = s
        self._flip = flip
        self.smb = _BalanceProcess(domain_profiles(domain), flip(domain["icemask"].values))
        self._iceflow_ready = False
        self.startup_s = 0.0
        self.runs = 0  # calls of run(): the calibration's cost

    def _init_iceflow(self) -> None:
        import igm.processes.iceflow as iceflow
        from igm.processes.iceflow.unified.evaluator import evaluate_iceflow
        from igm.processes.iceflow.unified.solver import solve_iceflow

        t0 = time.perf_counter()
        cfg_u = self.cfg.processes.iceflow.unified
        weights = self.settings.emulator_weights
        cfg_u.nbit_init = 1 if weights else self.settings.cold_iterations
        with warnings.catch_warnings():  # IGM warns that it starts from scratch: a cold start is meant to,
            warnings.filterwarnings("ignore", message="No pretrained emulator selected")  # a warm one loads below
            iceflow.initialize(self.cfg, self.state)
        if weights:
            self.state.iceflow_model.load_weights(weights)
            cfg_u.nbit_init = self.settings.warm_iterations
            solve_iceflow(self.cfg, self.state, init=True)
            evaluate_iceflow(self.cfg, self.state)
        self._iceflow_ready = True
        self.startup_s = time.perf_counter() - t0

    def run(
        self,
        start: float = START_YEAR,
        end: float = END_YEAR,
        thk0: np.ndarray | None = None,
        d_ela: float = 0.0,
        on_save: Callable[[int, np.ndarray], None] | None = None,
        keep: tuple[int, ...] = (),
    ) -> dict[int, np.ndarray]:
        """Simulate from `start` to `end` (from `thk0`, north-up, or the domain's initial ice) and
        return the thickness (north-up, m) at the end, every `SAVE_EVERY_YEARS` years and at the
        years in `keep`."""
        import tensorflow as tf
        import igm.processes.iceflow as iceflow
        import igm.processes.thk as thk
        import igm.processes.time as timep
        from igm.common.runner.modules.src import finalize_modules, initialize_modules, update_modules

        s = self.state
        start_thk = self.domain["thk"].values if thk0 is None else thk0
        s.thk = tf.Variable(self._flip(np.clip(start_thk, 0, None)), trainable=False)
        s.usurf = tf.Variable(s.topg + s.thk, trainable=False)
        self.cfg.processes.time.start = float(start)
        self.cfg.processes.time.end = float(end)
        self.smb.d_ela = float(d_ela)
        self.runs += 1
        if not self._iceflow_ready:
            self._init_iceflow()
        wanted = set(keep) | {int(end)}
        out = _Snapshots(on_save, lambda y: y % SAVE_EVERY_YEARS == 0 or y in wanted, self.resolution**2)
        modules = [self.smb, iceflow, timep, thk]
        initialize_modules([self.smb, timep, thk], self.cfg, s)
        update_modules(modules, [out], self.cfg, s)
        finalize_modules(modules, self.cfg, s)
        self.last_series = out.series
        return out.saved

    @property
    def resolution(self) -> float:
        return float(abs(self.domain["x"].values[1] - self.domain["x"].values[0]))

    def balanced_shift(self) -> float:
        """The ELA shift that puts the domain's initial ice in balance under the spin-up climate:
        the spin-up's first trial."""
        thk = self.domain["thk"].values
        return self.smb.profiles.balanced_shift((self.domain["topg"].values + thk)[thk > 0])

    def set_gradient(self, factor: float, from_year: float) -> None:
        """Scale the balance profiles (about their ELA, so their gradients) by `factor` in every
        run's years from `from_year` on."""
        self.smb.gradient, self.smb.gradient_from = float(factor), float(from_year)

    def emulator_state(self) -> list[np.ndarray]:
        """The emulator's weights now (to rewind to before each calibration trial)."""
        if not self._iceflow_ready:
            self._init_iceflow()
        return [w.copy() for w in self.state.iceflow_model.get_weights()]

    def restore_emulator(self, weights: list[np.ndarray]) -> None:
        self.state.iceflow_model.set_weights(weights)

    def save_emulator(self, path: str | Path) -> Path:
        """Keras HDF5 weights of the trained emulator (written atomically; name must end .weights.h5)."""
        from ..storage import atomic_path

        with atomic_path(path, suffix=".weights.h5") as tmp:
            self.state.iceflow_model.save_weights(str(tmp))
        return Path(path)


def software_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("igm-model", "tensorflow", "numpy")}
