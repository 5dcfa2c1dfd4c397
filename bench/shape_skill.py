"""Issue 25 ("Right area, right place"): is the simulated ice where the observed outline is?

    .venv/bin/python bench/shape_skill.py WORK SIM.nc [SIM2.nc ...] [--domains domains] [--png out.png]

WORK is a folder made by bench/study25_setup.py (inventory.parquet, domains/). For every
simulation and each of its glacier's outlines, at the outline's model time (year + 1), on the
25 m product grid (the simulation bilinear from 100 m, as published):

* iou      simulated ice (>= 2 m) vs the outline rasterized at 25 m
* ceil     the grid's ceiling: the outline rasterized on the model grid, against itself at 25 m
* low5     share of the outline's lowest fifth (by DEM elevation) under simulated ice >= 2 m
* z_term   lowest DEM elevation under simulated ice of the component overlapping the outline most
* z_obs    lowest DEM elevation inside the outline
* out%     share of the simulated ice outside the outline
* fg_iou / fg_low5: the same for the first guess (the domain's initial ice at the run's factor)

For Hintereisferner also: the length change 1960 -> 2003 (model times 1960 -> 2004) along the
tongue's axis (the upper basin's centre to the outline's lowest point, extended down-valley),
against the length record (-744 m), and thickness RMSE / bias vs the Farinotti consensus at 2004
(model and first guess alone).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import xarray as xr
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from glacier_assets.constants import GEOGRAPHIC_CRS, ICE_THRESHOLD_M, outline_model_time  # noqa: E402
from glacier_assets.science.domain import rasterize, with_rheology  # noqa: E402
from glacier_assets.science.grids import reproject_raster  # noqa: E402
from glacier_assets.science.quality import iou  # noqa: E402
from glacier_assets.science.resample import bilinear_refine, refined_thickness  # noqa: E402
from glacier_assets.simulation_file import SimulationFile  # noqa: E402

HEF = "RGI60-11.00897"
SHARED = REPO.parent / "shared" / "data"
R = 4  # 100 m -> 25 m
HEF_LENGTH_CHANGE_1960_2003 = -744.0  # m, hef_lengths.csv: -2918 - (-2174)
AXIS_HALF_WIDTH_M = 400.0


def lowest_fifth(obs: np.ndarray, dem: np.ndarray) -> np.ndarray:
    z = dem[obs]
    return obs & (dem <= np.quantile(z, 0.2))


def main_component(ice: np.ndarray, obs: np.ndarray) -> np.ndarray:
    lab, n = ndimage.label(ice, structure=np.ones((3, 3)))
    if n == 0:
        return ice
    overlap = ndimage.sum(obs, lab, index=np.arange(1, n + 1))
    return lab == (1 + int(np.argmax(overlap)))


class Axis:
    """A straight tongue axis: from the centre of the outline's upper third (by elevation) to its
    lowest cell; positions are projections onto it (m), limited to a corridor around it."""

    def __init__(self, obs: np.ndarray, dem: np.ndarray, X: np.ndarray, Y: np.ndarray):
        z = dem[obs]
        top = obs & (dem >= np.quantile(z, 2 / 3))
        low = np.flatnonzero(obs.ravel())[np.argmin(z)]
        self.p0 = np.array([X[top].mean(), Y[top].mean()])
        p1 = np.array([X.ravel()[low], Y.ravel()[low]])
        self.u = (p1 - self.p0) / np.linalg.norm(p1 - self.p0)
        self.X, self.Y = X, Y
        self.s = (X - self.p0[0]) * self.u[0] + (Y - self.p0[1]) * self.u[1]
        self.d = np.abs(-(X - self.p0[0]) * self.u[1] + (Y - self.p0[1]) * self.u[0])

    def length(self, ice: np.ndarray) -> float:
        sel = ice & (self.d <= AXIS_HALF_WIDTH_M) & (self.s > 0)
        return float(self.s[sel].max()) if sel.any() else float("nan")


def evaluate(work: Path, sim_path: Path, domains: str = "domains") -> list[dict]:
    inv = gpd.read_parquet(work / "inventory.parquet")
    sim = SimulationFile(sim_path).load()
    gid = sim.attrs["glacier_id"]
    with xr.open_dataset(work / domains / f"{gid}.nc") as dom:
        dom = with_rheology(dom.load(), float(sim.attrs["rheology_factor"]))
    grid = sim.grid
    fine = grid.refined(R)
    dem = bilinear_refine(dom["dem"].values, R)
    X, Y = np.meshgrid(fine.x, fine.y)
    fg = refined_thickness(dom["thk"].values, R) >= ICE_THRESHOLD_M
    saved = sim.states
    rows = inv[inv["glacier_id"] == gid].sort_values("year")
    out = []
    for _, r in rows.iterrows():
        geom = gpd.GeoSeries([r.geometry], crs=GEOGRAPHIC_CRS).to_crs(grid.crs).iloc[0]
        obs = rasterize([geom], fine)
        ceiling = iou(np.kron(rasterize([geom], grid), np.ones((R, R), bool)), obs)
        t = outline_model_time(int(r["year"]))
        ice = refined_thickness(saved[t], R) >= ICE_THRESHOLD_M
        low = lowest_fifth(obs, dem)
        main = main_component(ice, obs)
        row = {"glacier_id": gid, "year": int(r["year"]), "iou": iou(ice, obs), "ceil": ceiling,
               "low5": float((ice & low).sum() / low.sum()),
               "z_term": float(dem[main].min()) if main.any() else float("nan"),
               "z_obs": float(dem[obs].min()), "z_low5": float(dem[low].max()),
               "out_pct": 100.0 * float((ice & ~obs).sum() / max(ice.sum(), 1)),
               "fg_iou": iou(fg, obs), "fg_low5": float((fg & low).sum() / low.sum())}
        if gid == HEF:
            axis = Axis(obs, dem, X, Y)
            l60 = axis.length(main_component(refined_thickness(saved[1960], R) >= ICE_THRESHOLD_M, obs))
            l03 = axis.length(main)
            row.update(len_1960_m=l60, len_2004_m=l03, dlen_m=l03 - l60, len_obs_m=axis.length(obs))
            cons = reproject_raster(str(SHARED / "oggm_hef" / "RGI60-11.00897_thickness.tif"), fine)
            where = np.isfinite(cons) & (cons > 0)
            for name, thk in (("", refined_thickness(saved[t], R)), ("fg_", refined_thickness(dom["thk"].values, R))):
                diff = thk[where] - cons[where]
                row[f"{name}rmse_m"] = float(np.sqrt((diff ** 2).mean()))
                row[f"{name}bias_m"] = float(diff.mean())
        out.append(row)
    return out


def summary_line(name: str, rows: list[dict], cost: int | None) -> str:
    iou_ = np.array([r["iou"] for r in rows])
    low = np.array([r["low5"] for r in rows])
    return (f"{name}: n={len(rows)} IoU median {np.median(iou_):.3f} min {iou_.min():.3f} "
            f"(ceiling median {np.median([r['ceil'] for r in rows]):.3f}); lowest fifth covered median "
            f"{np.median(low):.2f}, >=0.8 in {(low >= 0.8).sum()}/{len(rows)}"
            + (f"; {cost} model years" if cost is not None else ""))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("work", type=Path)
    p.add_argument("sims", nargs="+", type=Path)
    p.add_argument("--domains", default="domains")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    paths = [q for s in args.sims for q in (sorted(s.glob("*.nc")) if s.is_dir() else [s])]
    rows, cost = [], 0
    hdr = f"{'glacier':20} {'year':>4} {'IoU':>5} {'ceil':>5} {'low5':>5} {'z_term':>6} {'z_obs':>6} {'out%':>5} " \
          f"{'fgIoU':>5} {'fgLow':>5}"
    print(hdr)
    for path in paths:
        with xr.open_dataset(path) as s:
            cost += int(s.attrs.get("model_years", 0))
            status = s.attrs.get("calibration_status", "")
        for r in evaluate(args.work, path, args.domains):
            rows.append(r)
            print(f"{r['glacier_id']:20} {r['year']:>4} {r['iou']:5.3f} {r['ceil']:5.3f} {r['low5']:5.2f} "
                  f"{r['z_term']:6.0f} {r['z_obs']:6.0f} {r['out_pct']:5.1f} {r['fg_iou']:5.3f} {r['fg_low5']:5.2f}"
                  + ("" if status == "calibrated" else f"  [{status[:60]}]"))
            if "dlen_m" in r:
                print(f"    HEF length 1960->2004 {r['dlen_m']:+.0f} m (record {HEF_LENGTH_CHANGE_1960_2003:+.0f}); "
                      f"terminus on axis 1960 {r['len_1960_m']:.0f} m, 2004 {r['len_2004_m']:.0f} m, "
                      f"outline {r['len_obs_m']:.0f} m")
                print(f"    HEF 2004 vs consensus: RMSE {r['rmse_m']:.1f} m, bias {r['bias_m']:+.1f} m "
                      f"(first guess RMSE {r['fg_rmse_m']:.1f}, bias {r['fg_bias_m']:+.1f})")
    print(summary_line(", ".join(p.stem for p in args.sims), rows, cost))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
