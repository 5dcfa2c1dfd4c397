"""What packing glaciers into one IGM run saves, per glacier, against the batch size.

    .venv/bin/python bench/batch_cost.py [--sizes 1 10 50] [--threads 2] [--plain] [--leave-one-out]
                                         [--mapping identity|network] [--children N] [--per-process N]
                                         [--log FILE]

Setup (not timed): the demo region's 12 domains, their outlines and geodetic balances, and the
regional rheology. Timed, each a fresh child process as the `igm_simulation` step launches it
(import, TensorFlow and ice-flow start-up, the runs, the NetCDF files): batches of each size,
calibrated as the main job calibrates them (`igm_run/batch.py: simulate_glaciers`: outlines and
geodetic balance; the leave-one-out only with --leave-one-out), or with --plain one uncalibrated
1930-2020 run. A batch of 1 is a glacier alone (the first demo glacier of each size class, the 12 in
turn); larger batches repeat the 12 demo domains, which costs IGM what other glaciers of those sizes
would. A batch runs in children of at most --per-process glaciers, --children of them at once, as
the main job's workers run ranged runs (the CPU time is the children's sum, the memory one child's
peak). With the network mapping every child starts from the shared emulator, trained once in the
setup as the `iceflow_emulator` asset does. Prints per batch the wall time, the amortized time per
glacier and its ratio to the batch of 1, the child's CPU seconds (which another job on the machine
changes less than the wall time), the ice-flow start-up, the packed grids, and the peak memory of
the child.
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

from glacier_assets.constants import BATCH_GLACIERS  # noqa: E402
from glacier_assets.inventory.demo import build_demo_region  # noqa: E402
from glacier_assets.inventory.outlines import build_inventory  # noqa: E402
from glacier_assets.inventory.reference import reference_volumes  # noqa: E402
from glacier_assets.inventory.region import load_region_spec  # noqa: E402
from glacier_assets.steps.domain import glacier_rows, make_domain  # noqa: E402
from glacier_assets.steps.inputs import geodetic_targets, simulation_inputs  # noqa: E402
from glacier_assets.steps.rheology import calibrate_rheology  # noqa: E402

CHILD = """
import json, resource, sys, time
a = json.loads(sys.argv[1])
T0 = time.perf_counter()
from glacier_assets.igm_run.model import IGMBatch
from glacier_assets.igm_run.settings import IGMSettings, configure_tensorflow
configure_tensorflow(a["threads"], 0)
import xarray as xr
from glacier_assets.igm_run.batch import simulate_glaciers
settings = IGMSettings(threads=a["threads"], rheology_factor=a["factor"], leave_one_out=a["loo"], mapping=a["mapping"],
                       emulator_weights=a["emulator"])
if a["plain"]:
    model = IGMBatch([xr.load_dataset(g["domain"]) for g in a["glaciers"]], settings)
    model.run_batch(1930, 2020)
    out = {"startup": [model.startup_s], "grids": [list(model.packing.shape)]}
else:
    log = []

    def note(line):  # kept for the grids' sizes, and streamed with the time since the child began
        log.append(line)
        print(f"{time.perf_counter() - T0:8.1f} s  {line}", file=sys.stderr, flush=True)

    figures = simulate_glaciers(a["glaciers"], settings, note)
    failed = [g for g, f in figures.items() if "error" in f]
    if failed:
        raise SystemExit(f"failed: {failed}: {[figures[g]['error'] for g in failed]}")
    grids = [m.split("packed ")[1].split(" grid")[0] for m in log if "on a packed" in m]
    out = {"startup": sorted({f["iceflow_startup_s"] for f in figures.values()}), "grids": grids,
           "runs": sorted({f["model_runs"] for f in figures.values()}),
           "years": [{k: v for k, v in f.items() if k.startswith("model_years")} for f in figures.values()]}
use, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
# the child and the IGM processes it starts (one per at most MODELS_PER_PROCESS model grids)
out["peak_mb"] = max(use.ru_maxrss, kids.ru_maxrss) / 1024
out["cpu_s"] = use.ru_utime + use.ru_stime + kids.ru_utime + kids.ru_stime
out["reused"] = sum(1 for f in ([] if a["plain"] else figures.values()) if f.get("model_reused"))
print(json.dumps(out))
"""


def child(glaciers: list[dict], factor: float, args, log_path: str | None = None) -> tuple[float, dict]:
    """The glaciers in IGM children of at most `args.per_process` glaciers each, `args.children` at
    once (as the main job's workers run their ranged runs); returns the wall time and the
    children's figures together."""
    chunks = [glaciers[k:k + args.per_process] for k in range(0, len(glaciers), args.per_process)]
    t0 = time.perf_counter()
    res: list[dict] = []
    with open(log_path, "a+") if log_path else tempfile.TemporaryFile("w+") as log:  # the children's log, as it comes
        running: list[subprocess.Popen] = []

        def finish(proc: subprocess.Popen) -> None:
            out = proc.communicate()[0]
            if proc.returncode:
                log.seek(0)
                raise SystemExit(log.read()[-3000:])
            res.append(json.loads(out.strip().splitlines()[-1]))

        for chunk in chunks:
            while len(running) >= args.children:
                done = [p for p in running if p.poll() is not None]
                for p in done:
                    running.remove(p)
                    finish(p)
                if not done:
                    time.sleep(0.5)
            running.append(subprocess.Popen(
                [sys.executable, "-c", CHILD, json.dumps(
                    {"glaciers": chunk, "factor": factor, "threads": args.threads, "plain": args.plain,
                     "loo": args.leave_one_out, "mapping": args.mapping, "emulator": args.emulator})],
                stdout=subprocess.PIPE, stderr=log, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}))
        for p in running:
            finish(p)
    return time.perf_counter() - t0, {"startup": [x for r in res for x in r["startup"]],
                                      "grids": [g for r in res for g in r["grids"]],
                                      "peak_mb": max(r["peak_mb"] for r in res), "cpu_s": sum(r["cpu_s"] for r in res),
                                      "reused": sum(r.get("reused", 0) for r in res),
                                      "years": [y for r in res for y in r.get("years", [])]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", nargs="*", type=int, default=[1, 10, 50])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--plain", action="store_true", help="one uncalibrated run instead of the calibration")
    p.add_argument("--leave-one-out", action="store_true", help="with the leave-one-out validation runs")
    p.add_argument("--mapping", default="identity", choices=["identity", "network"],
                   help="IGM's ice-flow unknowns; only the identity mapping packs (the network runs each alone)")
    p.add_argument("--children", type=int, default=1,
                   help="IGM children running at once (the main job's workers)")
    p.add_argument("--per-process", type=int, default=BATCH_GLACIERS,
                   help="glaciers per IGM child at most (a ranged run's; default BATCH_GLACIERS)")
    p.add_argument("--log", help="append each batch child's log (seconds since it began) to this file")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp = Path(tmp)
        spec = load_region_spec(build_demo_region(tmp / "demo"))
        inv = build_inventory(spec.outlines, spec.id_pattern).outlines
        ids = sorted(inv.glacier_id.unique())
        geodetic = geodetic_targets(spec)
        jobs = []
        for gid in ids:
            make_domain(gid, inv, spec, tmp / f"{gid}.nc")
            targets, geo = simulation_inputs(glacier_rows(inv, gid), geodetic, gid)
            jobs.append({"glacier_id": gid, "domain": str(tmp / f"{gid}.nc"),
                         "targets": {str(k): v for k, v in targets.items()}, "geodetic": geo})
        args.emulator = None
        if args.mapping == "network":  # the shared emulator every glacier starts from, as in the main job
            args.emulator = str(tmp / "iceflow_emulator.weights.h5")
            subprocess.run([sys.executable, "-m", "glacier_assets.igm_run", "train-emulator",
                            "--output", args.emulator], check=True, capture_output=True,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        refs = reference_volumes(spec.reference_volumes, None, ids, 2000)
        factor = calibrate_rheology(inv, spec, refs)["factor"]
        what = "plain 1930-2020 runs" if args.plain else \
            f"calibrated runs (outlines, geodetic balance{', leave-one-out' if args.leave_one_out else ''})"
        print(f"{len(ids)} demo domains, rheology factor {factor:g}, {args.children} child(ren) at once with "
              f"{args.threads} TensorFlow thread(s) each, {args.mapping} mapping; {what}")
        print(f"{'batch':>5} | {'wall':>7} | {'per glacier':>11} {'vs alone':>8} | {'CPU':>8} | {'start-up':>8} | "
              f"{'peak MB':>7} | {'reused':>6} | packed grids")
        per_alone = None
        for n in args.sizes:
            if n == 1:  # every demo glacier alone, one child each: the mean is the cost of one
                walls, cpus, years = [], [], []
                for job in jobs:
                    wall, res = child([{**job, "output": str(tmp / "out" / f"{job['glacier_id']}.nc")}], factor, args,
                                      args.log)
                    walls.append(wall)
                    cpus.append(res["cpu_s"])
                    years += res["years"]
                wall, res["cpu_s"], res["years"] = sum(walls) / len(walls), sum(cpus) / len(cpus), years
                per_alone = wall
            else:
                batch = [{**jobs[k % len(jobs)], "glacier_id": f"{jobs[k % len(jobs)]['glacier_id']}-{k}",
                          "output": str(tmp / "out" / f"{k}.nc")} for k in range(n)]
                wall, res = child(batch, factor, args, args.log)
            per = wall / n
            ratio = f"{per_alone / per:>7.2f}x" if per_alone else f"{'-':>8}"
            print(f"{n:>5} | {wall:>5.1f} s | {per:>9.1f} s {ratio} | {res['cpu_s']:>6.0f} s | "
                  f"{max(res['startup']):>6.1f} s | "
                  f"{res['peak_mb']:>7.0f} | {res.get('reused', 0):>6} | "
                  f"{', '.join(res['grids']) if not args.plain else res['grids']}"
                  + (" (mean of the 12 alone)" if n == 1 else ""), flush=True)
            if res["years"]:  # the cost model: CPU per glacier = its model years x CPU per model year
                mean = {k: sum(y.get(k, 0) for y in res["years"]) / len(res["years"]) for k in res["years"][0]}
                cpu_glacier = res["cpu_s"] / (1 if n == 1 else n)
                print(f"{'':>5} | model years per glacier {mean['model_years']:.0f} ("
                      + ", ".join(f"{k.removeprefix('model_years_')} {v:.0f}" for k, v in mean.items()
                                  if k != "model_years")
                      + f"); CPU {cpu_glacier:.1f} s per glacier, {1000 * cpu_glacier / mean['model_years']:.0f} ms "
                      "per model year (start-up included)", flush=True)
        print("\nwall: the whole child process (import, TensorFlow and ice-flow start-up, every run, the files); "
              "per glacier: wall / batch size; vs alone: how many times cheaper per glacier than a glacier alone; "
              "reused: glaciers run by a model built for an earlier glacier of the same grid (ModelPool)")


if __name__ == "__main__":
    main()
