"""What packing glaciers into one IGM run saves: plain 1930-2020 runs, one by one vs packed.

    .venv/bin/python bench/batch_cost.py [--sizes 1 12 48] [--threads 2]

Setup (not timed): the demo region's 12 domains, the shared emulator and the regional rheology.
Timed, each a fresh child process as Dagster Pipes launches it (import, TensorFlow and emulator
start-up, the run): the 12 demo glaciers one by one, then batches of each size packed into one
grid (`science/packing.py`; larger batches repeat the 12 domains, which costs IGM the same as
other glaciers of those sizes). Prints per batch the wall time, the amortized time per glacier and
its ratio to one by one, the emulator start-up, the canvas and how full it is, the peak memory of
the child, and how far each glacier's packed volume lies from its own run (2000 and 2020).
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from glacier_assets.igm_run.model import IGMSettings  # noqa: E402
from glacier_assets.igm_run.simulate import train_emulator  # noqa: E402
from glacier_assets.inventory.demo import build_demo_region  # noqa: E402
from glacier_assets.inventory.outlines import build_inventory  # noqa: E402
from glacier_assets.inventory.reference import reference_volumes  # noqa: E402
from glacier_assets.inventory.region import load_region_spec  # noqa: E402
from glacier_assets.workflow import calibrate_rheology, make_domain  # noqa: E402

CHILD = """
import json, resource, sys, time
import xarray as xr
from glacier_assets.igm_run.model import IGMBatch, IGMSettings, configure_tensorflow
a = json.loads(sys.argv[1])
configure_tensorflow(a["threads"], 0)
domains = [xr.load_dataset(p) for p in a["domains"]]
t0 = time.perf_counter()
model = IGMBatch(domains, IGMSettings(threads=a["threads"], emulator_weights=a["emulator"], rheology_factor=a["factor"]))
model.run_batch(1930, 2020)
print(json.dumps({"run_s": time.perf_counter() - t0, "startup_s": model.startup_s, "canvas": list(model.packing.shape),
                  "fill": model.packing.fill_fraction, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "volumes": [{str(y): s[y][0] for y in (2000, 2020)} for s in model.last_series]}))
"""


def child(domains: list[Path], emulator: Path, factor: float, threads: int) -> tuple[float, dict]:
    args = {"domains": [str(d) for d in domains], "emulator": str(emulator), "factor": factor, "threads": threads}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    return time.perf_counter() - t0, json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", nargs="*", type=int, default=[1, 12, 48])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp = Path(tmp)
        spec = load_region_spec(build_demo_region(tmp / "demo"))
        inv = build_inventory(spec.outlines, spec.id_pattern).outlines
        ids = sorted(inv.glacier_id.unique())
        domains = []
        for gid in ids:
            make_domain(gid, inv, spec, tmp / f"{gid}.nc")
            domains.append(tmp / f"{gid}.nc")
        emulator = tmp / "emulator.weights.h5"
        train_emulator(emulator, IGMSettings(), log=lambda m: None)
        refs = reference_volumes(spec.reference_volumes, None, ids, 2000)
        factor = calibrate_rheology(inv, spec, refs)["factor"]
        print(f"{len(ids)} demo domains, rheology factor {factor:g}, {args.threads} TensorFlow threads")
        single_s, single_vol = 0.0, []
        for d in domains:
            wall, res = child([d], emulator, factor, args.threads)
            single_s += wall
            single_vol.append(res["volumes"][0])
        per_single = single_s / len(domains)
        print(f"one by one: {single_s:.1f} s for {len(domains)} glaciers, {per_single:.1f} s per glacier")
        print(f"{'batch':>5} | {'wall':>7} | {'per glacier':>11} {'vs one by one':>13} | {'start-up':>8} | "
              f"{'canvas':>9} {'full':>5} | {'peak MB':>7} | max |dV| 2000 / 2020 vs own run")
        for n in args.sizes:
            batch = [domains[k % len(domains)] for k in range(n)]
            wall, res = child(batch, emulator, factor, args.threads)
            dv = {y: max(abs(v[y] / single_vol[k % len(domains)][y] - 1) * 100 for k, v in enumerate(res["volumes"]))
                  for y in ("2000", "2020")}
            print(f"{n:>5} | {wall:>5.1f} s | {wall / n:>9.1f} s {per_single / (wall / n):>12.2f}x | "
                  f"{res['startup_s']:>6.1f} s | {res['canvas'][0]:>4}x{res['canvas'][1]:<4} {res['fill']:>5.2f} | "
                  f"{res['peak_mb']:>7.0f} | {dv['2000']:.2f} % / {dv['2020']:.2f} %")
        print("\nwall: the whole child process (import, TensorFlow and emulator start-up, 1930-2020, plain: no "
              "calibration); per glacier: wall / batch size; vs one by one: how many times cheaper per glacier")


if __name__ == "__main__":
    main()
