"""What calibration costs: one plain IGM run vs one calibrated run: to the outlines' areas only,
then also to the geodetic 2000-2020 balance, then also with the leave-one-out validation.

    .venv/bin/python bench/calibration_cost.py [--glaciers RGI60-13.90008 RGI60-13.90007 RGI60-13.90006]

Each run is a fresh child process (as Dagster Pipes launches it), with the shared emulator and the
region's calibrated rheology. The plain run is the spin-up from 1930 and 1960-2020 with no shift;
the calibrated run trains the emulator once and reuses it for every trial (the spin-up onto the
first outline, then one ELA shift per later outline), then calibrates the 2000-2020 balance to
the twin's geodetic one (the balance-gradient factor from the ~2000 outline on, the later
shifts solved again for each trial factor), then predicts each outline with it left out. Prints
the wall times, their ratio to the plain run (target: at most 3), the model runs and the worst
area misfit.
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

from glacier_assets.igm_run.emulator import train_emulator  # noqa: E402
from glacier_assets.igm_run.settings import IGMSettings  # noqa: E402
from glacier_assets.inventory.demo import build_demo_region  # noqa: E402
from glacier_assets.inventory.outlines import build_inventory  # noqa: E402
from glacier_assets.inventory.reference import reference_volumes  # noqa: E402
from glacier_assets.inventory.region import load_region_spec  # noqa: E402
from glacier_assets.steps.domain import make_domain  # noqa: E402
from glacier_assets.steps.inputs import calibration_targets, geodetic_targets  # noqa: E402
from glacier_assets.steps.rheology import calibrate_rheology  # noqa: E402

CHILD = """
import json, sys
from pathlib import Path
from glacier_assets.igm_run.__main__ import _settings
from glacier_assets.igm_run.settings import configure_tensorflow
configure_tensorflow(1, 0)
from glacier_assets.igm_run.simulate import simulate_glacier
a = json.loads(sys.argv[1])
r = simulate_glacier(Path(a["domain"]), Path(a["output"]), _settings(a), lambda m: None, targets=a["targets"],
                     geodetic=a["geodetic"])
print(json.dumps(r))
"""


def child(domain: Path, out: Path, emulator: Path, targets: dict, factor: float, loo: bool = True,
          geodetic: dict | None = None) -> tuple[float, dict]:
    args = {"domain": str(domain), "output": str(out), "emulator_weights": str(emulator), "targets": targets,
            "rheology_factor": factor, "leave_one_out": loo, "geodetic": geodetic}
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
        inv = build_inventory(spec.outlines, spec.id_pattern).outlines
        emulator = tmp / "emulator.weights.h5"
        train_emulator(emulator, IGMSettings(), log=lambda m: None)
        refs = reference_volumes(spec.reference_volumes, None, sorted(inv.glacier_id.unique()), 2000)
        factor = calibrate_rheology(inv, spec, refs)["factor"]
        print(f"rheology factor {factor:g}")
        print(f"{'glacier':16} {'area km2':>8} | {'plain':>7} | {'areas':>8} {'ratio':>6} | "
              f"{'+ geodetic':>10} {'ratio':>6} | {'+ leave-one-out':>15} {'ratio':>6} {'runs':>5} {'max |dA|':>9} "
              f"{'dMB':>6} status")
        for gid in args.glaciers:
            make_domain(gid, inv, spec, tmp / f"{gid}.nc")
            rows = inv[inv.glacier_id == gid]
            targets = {str(k): v for k, v in calibration_targets(rows).items()}
            plain_s, _ = child(tmp / f"{gid}.nc", tmp / "plain.nc", emulator, {}, factor)
            geodetic = geodetic_targets(spec).get(gid)
            cal_s, _ = child(tmp / f"{gid}.nc", tmp / "cal.nc", emulator, targets, factor, loo=False)
            geo_s, _ = child(tmp / f"{gid}.nc", tmp / "geo.nc", emulator, targets, factor, loo=False,
                             geodetic=geodetic)
            loo_s, res = child(tmp / f"{gid}.nc", tmp / "loo.nc", emulator, targets, factor, geodetic=geodetic)
            with xr.open_dataset(tmp / "loo.nc") as sim:
                cal = json.loads(sim.attrs["calibration"])
                geo = json.loads(sim.attrs["geodetic_calibration"])
            worst = max(abs(r["rel_diff_pct"]) for r in cal)
            area = float(rows[rows.role == "initial"].area_km2.iloc[0])
            dmb = geo["simulated_mwe"] - geo["geodetic_mwe"] if "simulated_mwe" in geo else float("nan")
            print(f"{gid:16} {area:>8.2f} | {plain_s:>5.1f} s | {cal_s:>6.1f} s {cal_s / plain_s:>5.2f}x | "
                  f"{geo_s:>8.1f} s {geo_s / plain_s:>5.2f}x | {loo_s:>13.1f} s {loo_s / plain_s:>5.2f}x "
                  f"{res['model_runs']:>5} {worst:>8.2f}% {dmb:>+6.3f} {res['calibration_status']}")
        print("\nplain = one 1930-2020 run (30-year spin-up, no shift); areas = the spin-up onto the first "
              "outline and one shift per later outline, every trial a model run of its period; + geodetic = the "
              "2000-2020 balance calibrated too (dMB: simulated - geodetic, m w.e./a); + leave-one-out = "
              "each outline also predicted without it; all whole child processes (import, emulator start-up, "
              "runs, NetCDF)")


if __name__ == "__main__":
    main()
