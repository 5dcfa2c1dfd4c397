"""The IGM child process: `python -m glacier_assets.igm_run {simulate,simulate-batch,train-emulator}`.

Launched by Dagster Pipes it reads its parameters from the Pipes extras, streams progress to the
run log and reports the materialization's metadata. Run by hand it takes the same parameters as
options, e.g.

    python -m glacier_assets.igm_run simulate --domain d.nc --output s.nc [--emulator e.weights.h5]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _settings(extras: Mapping[str, Any]):
    from ..constants import VALIDATION_SHARE
    from .settings import COLD_ITERATIONS, FLOW_MAPPING, WARM_ITERATIONS, IGMSettings

    return IGMSettings(
        threads=int(extras.get("threads", 1)),
        seed=int(extras.get("seed", 0)),
        emulator_weights=extras.get("emulator_weights"),
        warm_iterations=int(extras.get("warm_iterations") or WARM_ITERATIONS),
        cold_iterations=int(extras.get("cold_iterations") or COLD_ITERATIONS),
        rheology_factor=float(extras.get("rheology_factor") or 1.0),
        leave_one_out=bool(extras.get("leave_one_out", True)),
        validation_share=float(extras.get("validation_share", VALIDATION_SHARE)),
        mapping=extras.get("mapping") or FLOW_MAPPING,
        flow_consistency=bool(extras.get("flow_consistency", False)),
        melt_downvalley_m=extras.get("melt_downvalley_m"),
    )


def _work(mode: str, extras: Mapping[str, Any], log) -> dict:
    # TensorFlow's threads must be bounded before IGM (and TF) run anything.
    from .settings import configure_tensorflow

    settings = _settings(extras)
    configure_tensorflow(settings.threads, settings.seed)
    from .emulator import train_emulator
    from .simulate import simulate_glacier

    if mode == "simulate":
        return simulate_glacier(Path(extras["domain"]), Path(extras["output"]), settings, log,
                                targets=extras.get("targets"), fingerprint=extras.get("fingerprint"),
                                geodetic=extras.get("geodetic"))
    if mode == "simulate-batch":  # many glaciers packed (batch.py); each one's outcome to `results_path`
        import json

        from ..storage import atomic_path
        from .batch import simulate_glaciers

        results = {g: _flat(r) for g, r in simulate_glaciers(extras["glaciers"], settings, log).items()}
        with atomic_path(Path(extras["results_path"]), suffix=".json") as tmp:
            tmp.write_text(json.dumps(results))
        failed = sorted(g for g, r in results.items() if "error" in r)
        return {"batch_size": len(results), "failed": len(failed), "failed_glaciers": ", ".join(failed)}
    if mode == "train-emulator":
        return train_emulator(Path(extras["output"]), settings, log)
    raise SystemExit(f"unknown mode {mode!r}")


def _flat(result: dict) -> dict:
    out = {k: v for k, v in result.items() if k != "versions"}
    out.update({f"version_{k}": v for k, v in result.get("versions", {}).items()})
    return out


def _report_error(extras: Mapping[str, Any], exc: BaseException) -> None:
    """Pipes tells the parent only the exit code: leave the cause where it looks for it."""
    if extras.get("error_path"):
        from .batch import error_line

        Path(extras["error_path"]).parent.mkdir(parents=True, exist_ok=True)
        Path(extras["error_path"]).write_text(error_line(exc) + "\n")


def main(argv: list[str] | None = None) -> None:
    import os

    from dagster_pipes import DAGSTER_PIPES_CONTEXT_ENV_VAR, open_dagster_pipes

    from ..recovery import PARENT_PID_ENV, die_with_parent

    if PARENT_PID_ENV in os.environ:  # never outlive the Dagster step that launched us
        die_with_parent(int(os.environ[PARENT_PID_ENV]))
    from .quiet import drop_native_chatter

    drop_native_chatter()  # TensorFlow/XLA's C++ start-up lines, which TF_CPP_MIN_LOG_LEVEL misses
    argv = sys.argv[1:] if argv is None else argv
    if DAGSTER_PIPES_CONTEXT_ENV_VAR in os.environ:  # launched by Dagster Pipes
        with open_dagster_pipes() as pipes:
            mode = argv[0]
            from .progress import Progress

            try:
                result = _work(mode, pipes.extras, Progress(pipes.log.info, pipes.extras.get("progress_path")))
            except Exception as exc:
                _report_error(pipes.extras, exc)
                raise
            pipes.report_asset_materialization(metadata=_flat(result))
        return
    p = argparse.ArgumentParser(prog="python -m glacier_assets.igm_run")
    p.add_argument("mode", choices=["simulate", "train-emulator"])
    p.add_argument("--domain")
    p.add_argument("--output", required=True)
    p.add_argument("--emulator", dest="emulator_weights")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warm-iterations", dest="warm_iterations", type=int)
    p.add_argument("--rheology-factor", dest="rheology_factor", type=float)
    args = p.parse_args(argv)
    print(_flat(_work(args.mode, vars(args), print)))


if __name__ == "__main__":
    main()
