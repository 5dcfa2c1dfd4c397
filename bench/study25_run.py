"""Issue 25 study: one glacier's calibrated simulation from a work folder made by
bench/study25_setup.py (no Dagster), as the igm_simulation asset runs it (area targets, regional
rheology factor, shared emulator), without the leave-one-out.

    .venv/bin/python bench/study25_run.py var/study25/hef RGI60-11.00897 --out var/study25/hef/sims/base.nc
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("work", type=Path)
    p.add_argument("glaciers", nargs="+")
    p.add_argument("--out", type=Path, help="output file (one glacier) or folder (several)")
    p.add_argument("--mapping", default="network")
    p.add_argument("--factor", type=float, help="rheology factor (default: the work folder's)")
    p.add_argument("--flow", type=float, default=1.0, help="IGM flow enhancement (IGMSettings.flow_enhancement)")
    p.add_argument("--consistent", action="store_true", help="IGMSettings.flow_consistency")
    p.add_argument("--field", type=float, default=150.0,
                   help="IGMSettings.consistency_scale_m (m): the ratio as a field; 0: one ratio per glacier")
    p.add_argument("--melt", type=float, help="IGMSettings.melt_downvalley_m (m)")
    p.add_argument("--warm", type=int, default=100, help="IGMSettings.warm_iterations (network)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--domains", default="domains", help="domain subfolder")
    p.add_argument("--geodetic", help="START,END,MWE: a balance to calibrate to (one glacier), e.g. HEF's WGMS mean "
                   "1960,2004,-0.483")
    p.add_argument("--set", action="append", default=[], help="IGM override key=value")
    args = p.parse_args()
    from glacier_assets.igm_run.glacier import ModelPool
    from glacier_assets.igm_run.settings import IGMSettings, configure_tensorflow
    configure_tensorflow(args.threads, 0)
    from glacier_assets.igm_run.simulate import simulate_glacier

    factor = args.factor or json.loads((args.work / "rheology.json").read_text())["factor"]
    targets = json.loads((args.work / "targets.json").read_text())
    emu = REPO / "var" / "study25" / "iceflow_emulator.weights.h5"
    overrides = {}
    for kv in args.set:
        k, v = kv.split("=", 1)
        overrides[k] = json.loads(v)
    settings = IGMSettings(threads=args.threads, emulator_weights=str(emu) if args.mapping == "network" else None,
                           rheology_factor=factor, flow_enhancement=args.flow, flow_consistency=args.consistent,
                           consistency_scale_m=args.field or None,
                           melt_downvalley_m=args.melt, warm_iterations=args.warm, leave_one_out=False,
                           mapping=args.mapping, overrides=overrides)
    pool = ModelPool()
    geodetic = None
    if args.geodetic:
        start, end, mwe = args.geodetic.split(",")
        geodetic = {"start": int(start), "end": int(end), "mwe": float(mwe)}
    for gid in args.glaciers:
        out = args.out if len(args.glaciers) == 1 and args.out and args.out.suffix == ".nc" else \
            (args.out or args.work / "sims") / f"{gid}.nc"
        out.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        res = simulate_glacier(args.work / args.domains / f"{gid}.nc", out, settings, log=lambda m: None,
                               targets=targets[gid], pool=pool, geodetic=geodetic)
        import xarray as xr
        with xr.open_dataset(out) as sim:
            ratio = sim.attrs.get("flux_ratio", "")
        print(f"{gid}: flux ratio {ratio}, {res['calibration_status']}, {res['model_years']} model years, "
              f"{time.perf_counter() - t0:.0f} s -> {out}", flush=True)


if __name__ == "__main__":
    main()
