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

import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xarray as xr

from ..constants import END_YEAR, SAVE_EVERY_YEARS, START_YEAR
from ..science.domain import domain_profiles, with_rheology
from ..science.packing import GUTTER_CELLS, pack_tiles, padded
from .processes import IDLE_SHIFT_M, BalanceProcess, Snapshots, TileRun
from .settings import IGMSettings, configure_tensorflow, igm_config


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
        self.smb = BalanceProcess([domain_profiles(d) for d in self.domains], icemask, self.packing)
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
        out = Snapshots(self.packing, self.smb.offset, ends,
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


