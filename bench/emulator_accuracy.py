"""What the shared, pretrained ice-flow emulator costs in accuracy and saves in time.

    .venv/bin/python bench/emulator_accuracy.py [--glaciers RGI60-13.90008 ...] [--warm 100]

IGM's default start-up trains its emulator from scratch for 300 iterations in every run. Here
it is trained once (`iceflow_emulator`) and each glacier starts from those weights with `--warm`
iterations. For each glacier this script runs both, in fresh child processes, and prints the
start-up time, the whole run time and the 2020 volume and area of each, and their differences.
Includes Hintereisferner when ../shared/data is there.
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
sys.path.insert(0, str(REPO))

from glacier_assets.igm_run.emulator import train_emulator  # noqa: E402
from glacier_assets.igm_run.settings import WARM_ITERATIONS, IGMSettings  # noqa: E402
from glacier_assets.inventory.demo import build_demo_region  # noqa: E402
from glacier_assets.inventory.outlines import build_inventory  # noqa: E402
from glacier_assets.inventory.region import load_region_spec  # noqa: E402
from glacier_assets.simulation_file import SimulationFile  # noqa: E402
from glacier_assets.steps.domain import make_domain  # noqa: E402


def run(domain: Path, out: Path, emulator: Path | None, warm: int) -> tuple[float, dict, dict]:
    cmd = [sys.executable, "-m", "glacier_assets.igm_run", "simulate", "--domain", str(domain), "--output", str(out),
           "--warm-iterations", str(warm)]
    if emulator:
        cmd += ["--emulator", str(emulator)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    wall = time.perf_counter() - t0
    sim = SimulationFile(out).load()
    return wall, sim.attrs, sim.summary().set_index("year").loc[2020].to_dict()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--glaciers", nargs="*", default=["RGI60-13.90008", "RGI60-13.90003", "RGI60-13.90006"])
    p.add_argument("--warm", type=int, default=WARM_ITERATIONS)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-emulator-") as tmp:
        tmp = Path(tmp)
        domains = []
        spec = load_region_spec(build_demo_region(tmp / "demo"))
        inv = build_inventory(spec.outlines, spec.id_pattern).outlines
        for gid in args.glaciers:
            make_domain(gid, inv, spec, tmp / f"{gid}.nc")
            domains.append((gid, tmp / f"{gid}.nc"))
        shared = REPO.parent / "shared" / "data" / "oggm_hef"
        if shared.exists():
            sys.path.insert(0, str(REPO))
            from glacier_assets.inventory.examples import hef_region_yaml

            hspec = load_region_spec(hef_region_yaml(shared.parent, tmp / "hef"))
            hinv = build_inventory(hspec.outlines, hspec.id_pattern).outlines
            make_domain("RGI60-11.00897", hinv, hspec, tmp / "hef.nc")
            domains.append(("RGI60-11.00897", tmp / "hef.nc"))
        t0 = time.perf_counter()
        train_emulator(tmp / "emulator.weights.h5", IGMSettings(), log=lambda m: None)
        print(f"emulator training (once per region): {time.perf_counter() - t0:.1f} s\n")
        print(f"{'glacier':16} {'cells':>9} | {'cold start-up':>13} {'cold run':>8} | {'warm start-up':>13} "
              f"{'warm run':>8} | {'dV 2020':>8} {'dA 2020':>8}")
        for gid, dom in domains:
            cw, ca, cs = run(dom, tmp / "cold.nc", None, args.warm)
            ww, wa, ws = run(dom, tmp / "warm.nc", tmp / "emulator.weights.h5", args.warm)
            with xr.open_dataset(dom) as d:
                cells = f"{d.sizes['y']}x{d.sizes['x']}"
            dv = 100 * (ws["volume_km3"] - cs["volume_km3"]) / cs["volume_km3"]
            da = 100 * (ws["area_km2"] - cs["area_km2"]) / cs["area_km2"]
            print(f"{gid:16} {cells:>9} | {ca['iceflow_startup_s']:>11.1f} s {cw:>6.1f} s | "
                  f"{wa['iceflow_startup_s']:>11.1f} s {ww:>6.1f} s | {dv:>+7.2f}% {da:>+7.2f}%")
        print(f"\ncold = IGM default (300 start-up iterations); warm = shared emulator + {args.warm} iterations;"
              " run = whole child process; dV, dA = warm minus cold, 2020 volume and area")


if __name__ == "__main__":
    main()
