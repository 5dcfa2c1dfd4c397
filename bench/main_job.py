"""Time the main job (`python -m glacier_assets run`) on the demo region, and one glacier's IGM run.

    .venv/bin/python bench/main_job.py [--glacier RGI60-13.90007] [--workers 2] [--skip-main]

Runs in a fresh temporary products folder and Dagster instance, so nothing is reused; the demo
region's inputs are generated inside the timing too. Prints both figures.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import xarray as xr

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--glacier", default="RGI60-13.90007", help="glacier for the single IGM timing")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--skip-main", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-main-") as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "DAGSTER_HOME": str(tmp / "dagster_home"), "GLACIER_ASSETS_ROOT": str(tmp)}
        (tmp / "dagster_home").mkdir()
        (tmp / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
        products = tmp / "var" / "products"
        if not args.skip_main:
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "glacier_assets", "run", "--workers", str(args.workers)],
                                  cwd=tmp, env=env, capture_output=True, text=True)
            main_s = time.perf_counter() - t0
            if proc.returncode != 0:
                print(proc.stdout[-3000:], proc.stderr[-3000:])
                raise SystemExit("main job failed")
            n = len(list((products / "simulations").glob("*.nc")))
            runtimes = [xr.open_dataset(f).attrs["runtime_s"] for f in (products / "simulations").glob("*.nc")]
            print(f"main job: {main_s:.0f} s wall for {n} glaciers x 13 epochs "
                  f"({args.workers} IGM runs at a time; IGM child runtime {min(runtimes):.0f}-{max(runtimes):.0f} s "
                  f"per glacier, {sum(runtimes):.0f} s in all)")
        else:
            subprocess.run([sys.executable, "-m", "glacier_assets", "run", "--include", args.glacier],
                           cwd=tmp, env=env, check=True, capture_output=True)
        domain = products / "domains" / f"{args.glacier}.nc"
        emulator = products / "emulator" / "iceflow_emulator.weights.h5"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "glacier_assets.igm_run", "simulate", "--domain", str(domain),
                        "--output", str(tmp / "one.nc"), "--emulator", str(emulator)],
                       cwd=tmp, env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"}, check=True, capture_output=True)
        one_s = time.perf_counter() - t0
        with xr.open_dataset(tmp / "one.nc") as sim:
            attrs = sim.attrs
            shape = (sim.sizes["y"], sim.sizes["x"])
        print(f"one glacier ({args.glacier}, {shape[0]}x{shape[1]} cells, 1960-2020): {one_s:.1f} s wall "
              f"for the IGM child process: {attrs['runtime_s']} s in IGM, of which {attrs['iceflow_startup_s']} s "
              f"emulator start-up; the rest is Python/TensorFlow import; on {attrs['device']}")


if __name__ == "__main__":
    main()
