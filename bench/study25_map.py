"""Issue 25 study: maps of a simulation (thickness at a few times) with the outline and the DEM.

    .venv/bin/python bench/study25_map.py WORK SIM.nc out.png [--times 1960 1990 2004 2020]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import geopandas as gpd
import matplotlib
import numpy as np
import xarray as xr

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from glacier_assets.science.domain import with_rheology  # noqa: E402
from glacier_assets.simulation_file import SimulationFile  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("work", type=Path)
    p.add_argument("sim", type=Path)
    p.add_argument("png", type=Path)
    p.add_argument("--times", nargs="+", type=int, default=[1960, 1990, 2004, 2020])
    args = p.parse_args()
    sim = SimulationFile(args.sim).load()
    gid = sim.attrs["glacier_id"]
    dom = xr.open_dataset(args.work / "domains" / f"{gid}.nc").load()
    dom = with_rheology(dom, float(sim.attrs["rheology_factor"]))
    inv = gpd.read_parquet(args.work / "inventory.parquet")
    geom = inv[inv.glacier_id == gid].to_crs(sim.attrs["crs"]).geometry
    x, y = sim.grid.x, sim.grid.y
    ext = [sim.grid.xmin, sim.grid.xmax, sim.grid.ymin, sim.grid.ymax]
    panels = [("first guess", dom["thk"].values)]
    panels += [(str(t), sim.states[t]) for t in args.times if t in sim.states]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6))
    for ax, (name, thk) in zip(axes, panels):
        im = ax.imshow(np.where(thk >= 2, thk, np.nan), extent=ext, vmin=0, vmax=300, cmap="viridis")
        ax.contour(x, y, dom["dem"].values, levels=np.arange(2200, 3800, 200), colors="grey", linewidths=0.5)
        geom.boundary.plot(ax=ax, color="red", linewidth=0.8)
        ax.set_title(name)
        ax.set_xticks([]), ax.set_yticks([])
    fig.colorbar(im, ax=axes, shrink=0.8, label="thickness (m)")
    fig.savefig(args.png, dpi=80)


if __name__ == "__main__":
    main()
