"""IGM (igm-model 3.2) run in process on one glacier domain, without Hydra or its CLI.

The configuration is IGM's own module defaults (`igm/conf`) merged with OmegaConf; the process
order is smb -> iceflow -> time -> thk, as in IGM's examples. The surface mass balance is our own
IGM process: it reads the domain's yearly balance profiles at the simulated surface (so geometry
feeds back on the balance), shifted by `d_ela` and, from a given year on, scaled by a
balance-gradient factor (`TileRun.gradient`, calibrated to a geodetic balance), and like IGM's
`smb.simple` it replaces positive balance outside the domain's `icemask` with -10 m/a.

Ice flow is IGM's `unified` solver, which minimises the Blatter-Pattyn energy. With
`mapping="network"` (IGM's default and ours, `FLOW_MAPPING`) the velocities come from a CNN
emulator trained while the model runs; with `emulator_weights` it starts from a pretrained network
and trains `warm_iterations`. With `mapping="identity"` the unknowns are each cell's velocities
themselves, improved by a few Adam iterations every time step from the step before. The energy is
a sum over cells, so glaciers packed into one grid are solved as if each ran alone
(`test_batch.py`), which one network shared by different glaciers is not.

The flow state (the velocities, or the network's weights) a run starts from is part of the run
(`TileRun.flow`) and each run returns its own, so a calibration trial depends on its inputs and
not on the trials before it.
"""

from __future__ import annotations

import os
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

import numpy as np
import xarray as xr

from ..constants import CONSISTENCY_SCALE_M, END_YEAR, ICE_THRESHOLD_M, SAVE_EVERY_YEARS, START_YEAR, VALIDATION_SHARE
from ..science.domain import domain_profiles, with_rheology
from ..science.masks import volume_km3
from ..science.massbalance import BalanceProfiles
from ..science.packing import GUTTER_CELLS, Packing, model_shape, pack_tiles, padded

_TF_CONFIGURED: dict = {}
COLD_ITERATIONS = 300  # IGM's default `unified.nbit_init`: training from scratch at start-up
WARM_ITERATIONS = 100  # from the shared pretrained emulator (accuracy traded: bench/emulator_accuracy.py)
# IGM unified solver's unknowns: "network" (a CNN emulator) or "identity" (each cell's velocities).
# The identity solve is nearer the converged flow and packs glaciers exactly, but with the rheology
# calibrated as it is (science/inversion.py) it loses the demo twin's volume after 1995 (docs/scaling.md)
FLOW_MAPPING: Final = "network"
# Adam on the velocities: IGM's defaults are tuned for a network's weights (lr 5e-4, 5 iterations
# every 5 steps) and leave velocities far from converged (2020 volume +21 % off an L-BFGS solve on
# RGI60-13.90008); these stay within 4 % of it (the emulator: +18 %) at the emulator's cost.
IDENTITY_IGM = {"adam.lr": 0.05, "adam.lr_init": 0.05, "retrain_freq": 1, "nbit": 5}
# The emulator keeps training as the glacier changes: IGM's default is 5 Adam iterations every 5 time
# steps; every 10 costs 22 % less IGM time on the demo (make demo: IGM step 249 -> 193 s) with the twin's
# skill unchanged within the calibration's noise (bench/twin_skill.py: regional volume worst 3.8 -> 3.3 %,
# per-glacier median 3.1 -> 3.5 %, left-out areas 0.96 -> 0.90 %)
NETWORK_IGM = {"retrain_freq": 10}
Log = Callable[[str], None]  # where a run tells what it does (print, a Dagster log, a progress line)
NO_GRADIENT = (1.0, float("inf"))  # a balance-gradient factor of 1 from no year on
IDLE_SHIFT_M = 3000.0  # the ELA shift of a tile with nothing to run in a batch run: no snow anywhere


@dataclass(frozen=True)
class IGMSettings:
    threads: int = 1
    seed: int = 0
    emulator_weights: str | None = None
    warm_iterations: int = WARM_ITERATIONS
    cold_iterations: int = COLD_ITERATIONS
    rheology_factor: float = 1.0  # scales the ice's mobility (Glen A and sliding), science/inversion.py
    # IGM's ice flow only (not the inversion's bed and first guess): its mobility is rheology_factor times
    # this (issue 25: IGM's higher-order flow carries less flux than the inversion's shallow ice)
    flow_enhancement: float = 1.0
    # each glacier's IGM mobility scaled so that IGM's flux of its first guess equals the inversion's
    # (science/inversion.py: flux_consistency); False: the regional factor alone, as before issue 25
    flow_consistency: bool = False
    # with flow_consistency: the mobility as a field, the ratio smoothed at this scale (m)
    # (science/inversion.py: flux_consistency_field); None: one ratio per glacier
    consistency_scale_m: float | None = CONSISTENCY_SCALE_M
    # where the balance is forced to <= -10 m/a whatever its sign (science/domain.py: melt_mask): None
    # (off: only positive balance outside the outlines is, IGM's `smb.simple` practice), else beyond the
    # glacier's own outlines but for this many metres down-valley of their lowest fifth (issue 25)
    melt_downvalley_m: float | None = None
    leave_one_out: bool = True  # predict each outline with it left out of the calibration ...
    validation_share: float = VALIDATION_SHARE  # ... on this share of the glaciers (science/quality.py)
    mapping: str = FLOW_MAPPING  # "network" (IGM's CNN emulator) or "identity" (velocities solved per cell)
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
    import igm
    from omegaconf import DictConfig, OmegaConf

    root = Path(igm.__file__).parent / "conf"
    core = cast(DictConfig, OmegaConf.load(root / "core.yaml"))  # a mapping, never a list
    processes = OmegaConf.merge(*(OmegaConf.load(root / "processes" / f"{p}.yaml") for p in ("iceflow", "time", "thk")))
    cfg = OmegaConf.merge({"core": core.get("core", core)}, {"processes": processes})
    cfg.core.print_info = False
    cfg.processes.time.save = 1.0  # every year: the epochs and any outline's date are whole years
    from ..science.inversion import igm_overrides

    if settings.mapping not in ("identity", "network"):
        raise ValueError(f"IGM mapping {settings.mapping!r}: expected 'identity' or 'network'")
    flow: dict[str, Any] = {"processes.iceflow.unified.mapping": settings.mapping}
    tuning = IDENTITY_IGM if settings.mapping == "identity" else NETWORK_IGM
    flow.update({f"processes.iceflow.unified.{k}": v for k, v in tuning.items()})
    for key, value in {**flow, **igm_overrides(settings.rheology_factor * settings.flow_enhancement),
                       **settings.overrides}.items():
        OmegaConf.update(cfg, key, value)
    return cfg


class _BalanceProcess:
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


class _Snapshots:
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


def validates(settings: IGMSettings, glacier_id: str) -> bool:
    """Whether the glacier's calibration is validated by leave-one-out under these settings."""
    from ..science.quality import validated

    return validated(glacier_id, settings.leave_one_out, settings.validation_share)


class IGMBatch:
    """One IGM model of many glacier domains packed into one grid (`science/packing.py`): one
    TensorFlow graph and one emulator for the batch, each glacier with its own balance profiles,
    shift and gradient factor. Build once, `run_batch()` as often as needed."""

    def __init__(self, domains: list[xr.Dataset], settings: IGMSettings = IGMSettings(),
                 gutter: int = GUTTER_CELLS, canvas: tuple[int, int] | None = None):
        self.settings = settings
        self.device = configure_tensorflow(settings.threads, settings.seed)
        import tensorflow as tf
        from igm.common import State

        self.gutter = gutter
        self.on_step: Callable[[float], None] | None = None  # called at every time step (a sign of life)
        self._set_domains(domains, canvas)
        self.cfg = igm_config(settings)
        ny, nx = self.packing.shape
        x = (np.arange(nx) * self.resolution).astype("float32")  # only the spacing matters to IGM
        y = (np.arange(ny) * self.resolution).astype("float32")
        X, Y = np.meshgrid(x, y)
        dx = self.resolution
        s = State()
        s.original_cwd = Path.cwd()
        s.x, s.y = tf.constant(x), tf.constant(y)
        s.X, s.Y = tf.constant(X), tf.constant(Y)
        s.dx = tf.Variable(np.float32(dx), trainable=False)
        s.dy = tf.Variable(np.float32(dx), trainable=False)
        s.dX = tf.Variable(np.full(X.shape, dx, dtype="float32"), trainable=False)
        self.state = s
        self._igm_initialized = False  # IGM's ice-flow module built (its TensorFlow functions traced)
        self._set_state()

    @staticmethod
    def _flip(a) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(a, dtype="float32")[::-1])  # IGM wants y ascending

    def _set_domains(self, domains: list[xr.Dataset], canvas: tuple[int, int] | None) -> None:
        self.domains = [with_rheology(d, self.settings.rheology_factor) for d in domains]
        res = {float(abs(d["x"].values[1] - d["x"].values[0])) for d in self.domains}
        if len(res) != 1:
            raise ValueError(f"a batch needs one resolution, got {sorted(res)} m")
        self.resolution = res.pop()
        shapes = [(d.sizes["y"], d.sizes["x"]) for d in self.domains]
        if canvas is not None and len(shapes) == 1:
            self.packing = padded(shapes[0], canvas)
        else:
            self.packing = pack_tiles(shapes, self.gutter)

    def _set_state(self) -> None:
        """The domains' bed, initial ice and balance in IGM's state, and the model's record of
        them: no ice-flow start-up and no runs yet."""
        import tensorflow as tf

        s = self.state
        s.topg = tf.Variable(self._flip(self.packing.pack([d["topg"].values for d in self.domains])), trainable=False)
        s.thk = tf.Variable(self._flip(self.initial_thk()), trainable=False)
        s.usurf = tf.Variable(s.topg + s.thk, trainable=False)
        icemask = self.packing.pack([d["icemask"].values.astype("float64") for d in self.domains], fill=0.0)
        self.smb = _BalanceProcess([domain_profiles(d) for d in self.domains], icemask, self.packing)
        if self.settings.melt_downvalley_m is not None:
            from ..science.domain import melt_mask

            self.smb.melt = self.packing.pack(
                [melt_mask(d["icemask"].values, d["dem"].values, self.resolution, 0.0,
                           self.settings.melt_downvalley_m).astype("float64") for d in self.domains], fill=1.0) > 0.5
        # each tile's IGM mobility beyond the settings' (flow_consistency): a number or a field
        self.mobility: list = [1.0] * len(self.domains)
        self.flux_ratios: list[float] = [float("nan")] * len(self.domains)
        self._set_mobility()
        self._iceflow_ready = False  # the ice flow started on these domains
        self.startup_s = 0.0
        self.runs = 0  # calls of run_batch(): the calibration's cost
        self.last_series: list[dict[int, tuple[float, float]]] = []

    def _set_mobility(self) -> None:
        """IGM's rate factor and sliding stress as fields (IGM reads `state.arrhenius` and `state.tau_ref`
        at every solve): the settings' values, each tile's scaled by its `mobility` m (arrhenius x m,
        tau_ref x m^(-1/3): deformation and sliding velocities both x m at a given geometry)."""
        import tensorflow as tf

        phys = self.cfg.processes.iceflow.physics
        a0 = float(phys.viscosity.arrhenius) * float(phys.viscosity.get("enhancement_factor", 1.0))
        t0 = float(phys.sliding.tau_ref)
        m = self.packing.pack([np.broadcast_to(self.mobility[k], (d.sizes["y"], d.sizes["x"]))
                               for k, d in enumerate(self.domains)], fill=1.0)
        exponent = float(phys.sliding.exponent)
        self.state.arrhenius = tf.constant(self._flip(a0 * m))
        self.state.tau_ref = tf.constant(self._flip(t0 * m ** (-1.0 / exponent)))

    def _tile_speed(self, k: int) -> np.ndarray:
        """Tile k's depth-mean ice speed (m/a, north-up) of IGM's last solve."""
        rows, cols = self.packing.tiles[k].slices
        speed = np.hypot(self.state.ubar.numpy(), self.state.vbar.numpy())[::-1]
        return speed[rows, cols]

    def _make_flow_consistent(self) -> None:
        """Each tile's mobility from the start-up's solve on its first guess (issue 25): the ratio of
        the inversion's flux to IGM's (`science.inversion.flux_consistency`), then the start-up again
        with it. The inversion's shallow ice carries 3-6x the flux IGM's higher-order flow does on the
        same ice (Hintereisferner: 5.6); a first guess IGM cannot drain piles up where the slope eases
        and starves the tongue."""
        from igm.processes.iceflow.unified.evaluator import evaluate_iceflow

        from ..science.inversion import flux_consistency, flux_consistency_field

        evaluate_iceflow(self.cfg, self.state)
        scale = self.settings.consistency_scale_m
        for k, d in enumerate(self.domains):
            flux, thk, outline, speed = (d["flux_initial"].values, d["thk"].values, d["outline_initial"].values > 0,
                                         self._tile_speed(k))
            ratio = flux_consistency(flux, thk, speed, outline)
            self.flux_ratios[k] = ratio
            if not np.isfinite(ratio):
                self.mobility[k] = 1.0
            elif scale:
                self.mobility[k] = flux_consistency_field(flux, thk, speed, outline, scale / self.resolution)
            else:
                self.mobility[k] = ratio
        self._set_mobility()

    def initial_thk(self, thk0: list[np.ndarray | None] | None = None) -> np.ndarray:
        """The canvas of start thicknesses: `thk0[k]` (north-up), or the domain's initial ice."""
        thk0 = thk0 or [None] * len(self.domains)
        return self.packing.pack([np.clip(d["thk"].values if t is None else t, 0, None)
                                  for d, t in zip(self.domains, thk0, strict=True)], fill=0.0)

    @property
    def identity(self) -> bool:
        return self.settings.mapping == "identity"

    def _init_iceflow(self) -> None:
        """IGM's ice-flow start-up on the domains' initial ice (every tile): the velocities solved
        from rest (identity), or the emulator trained or loaded (network). Its flow state is each
        tile's initial one. A model re-targeted to other domains (`IGMGlacier.retarget`) keeps
        IGM's module and only reloads and re-trains the emulator, as a fresh one does."""
        import igm.processes.iceflow as iceflow
        from igm.processes.iceflow.unified.evaluator import evaluate_iceflow
        from igm.processes.iceflow.unified.solver import solve_iceflow

        t0 = time.perf_counter()
        cfg_u = self.cfg.processes.iceflow.unified
        weights = None if self.identity else self.settings.emulator_weights
        if not self._igm_initialized:
            cfg_u.nbit_init = 1 if weights else self.settings.cold_iterations
            with warnings.catch_warnings():  # IGM warns that it starts from scratch: a cold start is meant to,
                warnings.filterwarnings("ignore", message="No pretrained emulator selected")  # a warm one loads below
                iceflow.initialize(self.cfg, self.state)
            self._igm_initialized = True
        if weights:
            self.state.iceflow_model.load_weights(weights)
            self._reset_optimizer()  # the training starts afresh from the shared weights
            cfg_u.nbit_init = self.settings.warm_iterations
            solve_iceflow(self.cfg, self.state, init=True)
            evaluate_iceflow(self.cfg, self.state)
        self._iceflow_ready = True
        if self.identity:
            self._start_iterations = int(self.state.iceflow.optimizer.optim_adam.iterations.numpy())
        shared = self._flow_now()
        self._initial_flow = [self._tile_flow(shared, k) for k in range(len(self.domains))]
        self.startup_s = time.perf_counter() - t0

    def _reset_optimizer(self) -> None:
        """The emulator's Adam as new: no iterations, no moments (its learning rate is set per solve)."""
        import tensorflow as tf

        for v in self.state.iceflow.optimizer.optim_adam.variables:
            if "learning_rate" not in v.name:
                v.assign(tf.zeros_like(v))

    def _flow_variables(self) -> list:
        """What a run's flow state is: the velocities and their optimizer's moments (per cell,
        so each tile keeps its own history), or the network's weights."""
        if not self.identity:
            return self.state.iceflow_model.weights
        theta = self.state.iceflow.mapping.get_theta()
        moments = [v for v in self.state.iceflow.optimizer.optim_adam.variables if v.shape == theta[0].shape]
        return [*theta, *moments]

    def _flow_now(self) -> list[np.ndarray]:
        return [np.array(v.numpy()) for v in self._flow_variables()]

    def _igm_slices(self, k: int) -> tuple[slice, slice]:
        """Tile k's rows and columns in IGM's arrays (y ascending: the canvas flipped)."""
        rows, cols = self.packing.tiles[k].slices
        ny = self.packing.shape[0]
        return slice(ny - rows.stop, ny - rows.start), cols

    def _tile_flow(self, shared: list[np.ndarray], k: int) -> list[np.ndarray]:
        """Tile k's part of a flow state: its velocities (identity), or the whole network."""
        if not self.identity:
            return shared
        rows, cols = self._igm_slices(k)
        return [a[..., rows, cols].copy() for a in shared]

    def _start_flow(self, runs: dict[int, TileRun]) -> None:
        """Set the flow state a batch run starts from: each tile's own velocities (zero in idle
        tiles and gutters), or the network weights most runs ask for."""
        import tensorflow as tf

        start = {k: self._initial_flow[k] if r.flow is None else r.flow for k, r in runs.items()}
        if not self.identity:
            most_asked, _ = Counter(id(f) for f in start.values()).most_common(1)[0]
            self.state.iceflow_model.set_weights(next(f for f in start.values() if id(f) == most_asked))
            return
        variables = self._flow_variables()
        canvas = [np.zeros(tuple(v.shape), np.dtype(getattr(v.dtype, "name", v.dtype))) for v in variables]
        for k, flow in start.items():
            rows, cols = self._igm_slices(k)
            for whole, part in zip(canvas, flow, strict=True):
                whole[..., rows, cols] = part
        for v, a in zip(variables, canvas, strict=True):
            v.assign(tf.constant(a))
        # Adam's bias correction counts iterations: every run counts from the start-up's, as alone
        self.state.iceflow.optimizer.optim_adam.iterations.assign(self._start_iterations)

    def run_batch(
        self,
        start: float = START_YEAR,
        end: float = END_YEAR,
        thk0: list[np.ndarray | None] | None = None,
        d_ela: list[float] | np.ndarray | float = 0.0,
        on_save: Callable[[int, list[np.ndarray]], None] | None = None,
        keep: tuple[int, ...] = (),
    ) -> list[dict[int, np.ndarray]]:
        """Simulate every tile from `start` to `end` (from `thk0[k]`, north-up, or the domain's
        initial ice) with its ELA shift `d_ela[k]`, and return per tile the thickness (north-up,
        m) at the end, every `SAVE_EVERY_YEARS` years and at the years in `keep`."""
        n = len(self.domains)
        shifts = np.broadcast_to(np.asarray(d_ela, dtype="float64"), (n,))
        runs = {k: TileRun(int(start), int(end), (thk0 or [None] * n)[k], float(shifts[k]), tuple(keep))
                for k in range(n)}
        return [saved for saved, _, _ in self.run_tiles(runs, on_save).values()]

    def run_tiles(self, runs: dict[int, TileRun], on_save: Callable[[int, list[np.ndarray]], None] | None = None
                  ) -> dict[int, tuple[dict[int, np.ndarray], dict[int, tuple[float, float]], list[np.ndarray]]]:
        """One IGM run of the whole canvas in which tile k runs `runs[k]` on its own calendar
        (the run lasts as long as the longest), from its run's flow state; tiles not in `runs`
        hold no ice. Returns per tile in `runs` its kept thickness, its (volume km3, area km2)
        series by year and its flow state at the end."""
        import igm.processes.iceflow as iceflow
        import igm.processes.thk as thk
        import igm.processes.time as timep
        import tensorflow as tf
        from igm.common.runner.modules.src import finalize_modules, initialize_modules, update_modules

        if not self._iceflow_ready:
            self._init_iceflow()
            if self.settings.flow_consistency:
                t0 = time.perf_counter()
                spent = self.startup_s
                self._make_flow_consistent()
                if self.identity:  # the velocities solved again from the start-up's, for the new mobility
                    from igm.processes.iceflow.unified.solver import solve_iceflow

                    solve_iceflow(self.cfg, self.state, init=True)
                self._init_iceflow()  # the emulator trained again (network); the flow state recorded
                self.startup_s = spent + time.perf_counter() - t0
        n = len(self.domains)
        t0 = min(r.start for r in runs.values())
        length = max(r.end - r.start for r in runs.values())
        idle = [k for k in range(n) if k not in runs]
        start_thk = [runs[k].thk0 if k in runs else None for k in range(n)]
        canvas = self.initial_thk(start_thk)
        for k in idle:
            canvas[self.packing.tiles[k].slices] = 0.0
        s = self.state
        s.thk = tf.Variable(self._flip(canvas), trainable=False)
        s.usurf = tf.Variable(s.topg + s.thk, trainable=False)
        self.cfg.processes.time.start = float(t0)
        self.cfg.processes.time.end = float(t0 + length)
        self.smb.offset = np.array([runs[k].start - t0 if k in runs else 0 for k in range(n)], dtype=int)
        self.smb.d_ela = np.array([runs[k].d_ela if k in runs else IDLE_SHIFT_M for k in range(n)], dtype="float64")
        self.smb.gradient = np.array([runs[k].gradient[0] if k in runs else 1.0 for k in range(n)])
        self.smb.gradient_from = np.array([runs[k].gradient[1] if k in runs else np.inf for k in range(n)])
        self.smb.spinup_offset = np.array([runs[k].spinup_offset if k in runs else 0.0 for k in range(n)])
        self.runs += 1
        self._start_flow(runs)
        wanted = {k: set(r.keep) | {int(r.end)} for k, r in runs.items()}
        ends = [runs[k].end if k in runs else -1 for k in range(n)]
        out = _Snapshots(self.packing, self.smb.offset, ends,
                         lambda k, y: y % SAVE_EVERY_YEARS == 0 or y in wanted[k], self.resolution**2, on_save,
                         self.on_step)
        modules = [self.smb, iceflow, timep, thk]
        initialize_modules([self.smb, timep, thk], self.cfg, s)
        update_modules(modules, [out], self.cfg, s)
        finalize_modules(modules, self.cfg, s)
        self.last_series = out.series
        shared = self._flow_now()
        return {k: (out.saved[k], out.series[k], self._tile_flow(shared, k)) for k in runs}

    def balanced_shift(self, tile: int = 0) -> float:
        """The ELA shift that puts the tile's initial ice in balance under the spin-up climate:
        the spin-up's first trial."""
        domain = self.domains[tile]
        thk = domain["thk"].values
        return self.smb.profiles[tile].balanced_shift((domain["topg"].values + thk)[thk > 0])

    def save_emulator(self, path: str | Path) -> Path:
        """Keras HDF5 weights of the trained emulator (written atomically; name must end .weights.h5)."""
        if self.identity:
            raise ValueError("the identity mapping has no emulator to save")
        from ..storage import atomic_path

        with atomic_path(path, suffix=".weights.h5") as tmp:
            self.state.iceflow_model.save_weights(str(tmp))
        return Path(path)


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


def software_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("igm-model", "tensorflow", "numpy")}
