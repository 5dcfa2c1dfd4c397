"""How IGM runs here: the settings of a glacier's model, TensorFlow's threads and seeds, IGM's
configuration from its own module defaults, and the software versions a result records."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

from ..constants import CONSISTENCY_SCALE_M, VALIDATION_SHARE

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


def validates(settings: IGMSettings, glacier_id: str) -> bool:
    """Whether the glacier's calibration is validated by leave-one-out under these settings."""
    from ..science.quality import validated

    return validated(glacier_id, settings.leave_one_out, settings.validation_share)


def software_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("igm-model", "tensorflow", "numpy")}
