"""Issue 25 study: does IGM carry the flux the inversion routed, on a glacier's first guess?

    .venv/bin/python bench/study25_flux.py WORK GLACIER_ID [--factor F] [--mapping network|identity]
        [--flow C] [--warm N] [--band 100] [--consistent [--field SCALE_M]]

One IGM year from the domain's first guess (the balanced shift), then by elevation band of the
initial outline: thickness, IGM's depth-mean speed, the shallow-ice speed of the inversion's flow
law, their fluxes H u, the routed (apparent-balance) flux and the first year's thinning, and the
summed ratio routed / IGM (`science.inversion.flux_consistency`).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import xarray as xr

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("work", type=Path)
    p.add_argument("glacier")
    p.add_argument("--factor", type=float)
    p.add_argument("--mapping", default="network")
    p.add_argument("--flow", type=float, default=1.0)
    p.add_argument("--warm", type=int, default=100)
    p.add_argument("--consistent", action="store_true", help="IGMSettings.flow_consistency")
    p.add_argument("--field", type=float, default=150.0, help="IGMSettings.consistency_scale_m (m); 0: one ratio")
    p.add_argument("--band", type=float, default=100.0)
    args = p.parse_args()
    from glacier_assets.igm_run.glacier import IGMGlacier
    from glacier_assets.igm_run.settings import IGMSettings, configure_tensorflow

    configure_tensorflow(2, 0)
    from glacier_assets.science.inversion import flux_consistency, ice_flux

    f = args.factor or json.loads((args.work / "rheology.json").read_text())["factor"]
    dom = xr.open_dataset(args.work / "domains" / f"{args.glacier}.nc").load()
    emu = REPO / "var" / "study25" / "iceflow_emulator.weights.h5"
    s = IGMSettings(threads=2, emulator_weights=str(emu) if args.mapping == "network" else None, rheology_factor=f,
                    mapping=args.mapping, flow_enhancement=args.flow, warm_iterations=args.warm,
                    flow_consistency=args.consistent, consistency_scale_m=args.field or None)
    m = IGMGlacier(dom, s)
    d = m.domain
    saved = m.run(2000, 2001, d_ela=m.balanced_shift())
    speed = m._tile_speed(0)
    thk, dem = d["thk"].values, d["dem"].values
    out = d["outline_initial"].values > 0
    q_inv = d["flux_initial"].values
    q_sia = ice_flux(thk, d["slope"].values, f * args.flow)
    u_sia = np.where(thk > 1, q_sia / np.maximum(thk, 1), 0)
    dh = saved[2001] - thk
    print(f"{args.glacier}: factor {f:g} x flow {args.flow:g}, {args.mapping}; summed routed / IGM flux "
          f"{flux_consistency(q_inv, thk, speed, out):.2f}")
    print(f"{'z':>5} {'n':>4} {'H':>6} {'u_igm':>6} {'u_sia':>6} {'q_igm':>7} {'q_sia':>7} {'q_inv':>7} {'dH1yr':>6}")
    for lo in np.arange(np.floor(dem[out].min() / args.band) * args.band, dem[out].max(), args.band):
        sel = out & (dem >= lo) & (dem < lo + args.band)
        if sel.any():
            print(f"{lo:5.0f} {sel.sum():4d} {thk[sel].mean():6.1f} {speed[sel].mean():6.1f} {u_sia[sel].mean():6.1f} "
                  f"{(thk * speed)[sel].mean():7.0f} {q_sia[sel].mean():7.0f} {q_inv[sel].mean():7.0f} "
                  f"{dh[sel].mean():6.2f}")


if __name__ == "__main__":
    main()
