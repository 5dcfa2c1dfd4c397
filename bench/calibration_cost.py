"""What calibration to the control outlines costs: one plain IGM run vs one calibrated run.

    .venv/bin/python bench/calibration_cost.py [--glaciers RGI60-13.90008 RGI60-13.90007 RGI60-13.90006]

Each run is a fresh `python -m glacier_assets.igm_run simulate` child process (as Dagster Pipes
launches it), with the shared emulator. The calibrated run trains the emulator once and reuses it
for every trial (spin-up to the 1970s outline, then one ELA shift per control period). Prints the
wall time of both, their ratio (target: at most 3), the number of model runs and the area misfit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import xarray as xr

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from glacier_assets.igm_run.model import IGMSettings  # noqa: E402
from glacier_assets.igm_run.simulate import train_emulator  # noqa: E402
from glacier_assets.inventory.demo import build_demo_region  # noqa: E402
from glacier_assets.inventory.outlines import build_inventory  # noqa: E402
from glacier_assets.inventory.region import load_region_spec  # noqa: E402
from glacier_assets.workflow import calibration_targets, make_domain  # noqa: E402

CHILD = """
import json, sys
from pathlib import Path
from glacier_assets.igm_run.__main__ import _settings
from glacier_assets.igm_run.model import configure_tensorflow
configure_tensorflow(1, 0)
from glacier_assets.igm_run.simulate import simulate_glacier
a = json.loads(sys.argv[1])
r = simulate_glacier(Path(a["domain"]), Path(a["output"]), _settings(a), lambda m: None, targets=a["targets"])
print(json.dumps(r))
"""


def child(domain: Path, out: Path, emulator: Path, targets: dict) -> tuple[float, dict]:
    args = {"domain": str(domain), "output": str(out), "emulator_weights": str(emulator), "targets": targets}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, check=True)
    return time.perf_counter() - t0, json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--glaciers", nargs="*", default=["RGI60-13.90008", "RGI60-13.90007", "RGI60-13.90006"])
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-calibration-") as tmp:
        tmp = Path(tmp)
        spec = load_region_spec(build_demo_region(tmp / "demo"))
        inv, _ = build_inventory(spec.outlines, spec.id_pattern)
        emulator = tmp / "emulator.weights.h5"
        train_emulator(emulator, IGMSettings(), log=lambda m: None)
        print(f"{'glacier':16} {'area km2':>8} | {'plain':>7} | {'calibrated':>10} {'ratio':>6} {'runs':>5} "
              f"{'max |dA|':>9} status")
        for gid in args.glaciers:
            make_domain(gid, inv, spec, tmp / f"{gid}.nc")
            rows = inv[inv.glacier_id == gid]
            targets = {str(k): v for k, v in calibration_targets(rows).items()}
            plain_s, _ = child(tmp / f"{gid}.nc", tmp / "plain.nc", emulator, {})
            cal_s, res = child(tmp / f"{gid}.nc", tmp / "cal.nc", emulator, targets)
            with xr.open_dataset(tmp / "cal.nc") as sim:
                cal = json.loads(sim.attrs["calibration"])
            worst = max(abs(r["rel_diff_pct"]) for r in cal)
            area = float(rows[rows.role == "initial"].area_km2.iloc[0])
            print(f"{gid:16} {area:>8.2f} | {plain_s:>5.1f} s | {cal_s:>8.1f} s {cal_s / plain_s:>5.2f}x "
                  f"{res['model_runs']:>5} {worst:>8.2f}% {res['calibration_status']}")
        print("\nplain = one 1960-2020 run; calibrated = spin-up + 4 control periods, every trial a model run "
              "of its period; both whole child processes (import, emulator start-up, runs, NetCDF)")


if __name__ == "__main__":
    main()
