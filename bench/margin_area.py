"""Issue 25: how much of a simulation's product area the model's ice cells hold.

    .venv/bin/python bench/margin_area.py WORK SIM.nc [SIM2.nc ...]

WORK is a folder made by bench/study25_setup.py (domains/). For the first guess and each
simulation's state at its outline's model time: the product area (`product_area_km2`, as published
and calibrated), the area of the model cells with ice >= 2 m, the margin ring's cell count and mean
thickness, and the interior's mean thickness. Before issue 25's clip the product area was bilinear
without it: run this script at a commit before `d3c081f` to see the ring spread.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glacier_assets.constants import ICE_THRESHOLD_M  # noqa: E402
from glacier_assets.science.resample import product_area_km2  # noqa: E402
from glacier_assets.science.thickness import margin_ring  # noqa: E402
from glacier_assets.simulation_file import SimulationFile  # noqa: E402


def show(tag: str, thk: np.ndarray, res: float = 100.0) -> None:
    ice = thk >= ICE_THRESHOLD_M
    ring = margin_ring(ice)
    print(f"{tag:28s} product {product_area_km2(thk, res):.3f} km2, model cells {ice.sum() * res**2 / 1e6:.3f} km2, "
          f"ring {ring.sum()} cells, ring H mean {thk[ring].mean():.1f} m, interior H {thk[ice & ~ring].mean():.1f} m")


def main() -> None:
    work, sims = Path(sys.argv[1]), sys.argv[2:]
    for path in sims:
        sim = SimulationFile(path).load()
        gid, outline = sim.attrs["glacier_id"], next(iter(sim.outlines.values()))
        with xr.open_dataset(work / "domains" / f"{gid}.nc") as dom:
            show(f"{gid} first guess", np.clip(dom["thk"].values, 0, None))
        show(f"{gid} at its outline", outline)


if __name__ == "__main__":
    main()
