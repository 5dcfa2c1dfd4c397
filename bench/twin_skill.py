"""How right the products are, measured on the demo twin against its hidden truth.

    make demo && .venv/bin/python bench/twin_skill.py [--products var/products] [--region var/demo_region]

The truth (`truth/`) never feeds the model; here it measures it. Prints, for the glaciers in
`simulations/`:
- regional volume and area against the truth at every epoch, and the per-glacier median |error|;
- the 1960 -> 1970 volume change (the spin-up's test: model states, not a first guess relaxing);
- the epochs no outline constrains (1960-65, 1975-85, 1995, 2005, 2015): area and volume errors;
- the leave-one-out area figures of the calibration report (each outline predicted without it);
- the recovered ELA shifts against the truth's ELA offsets over the same years (their changes
  from period to period, since the model's balance law is not the truth's);
- the 2000-2020 mass balance against the truth's and against the twin's geodetic balances (the
  truth's with a seeded error, what a user would have);
- shape: IoU, tongue coverage and terminus at the outline dates (the calibration report), and for
  the valley twin (`demo-region DEST --valley`, whose truth keeps its thickness) the IoU against
  the truth's ice at every epoch and each glacier's length change along its valley.

The valley twin: `python -m glacier_assets demo-region var/valley_twin --valley`, the main job with
`--region var/valley_twin/region.yaml --products var/vt/products`, then this with
`--products var/vt/products --region var/valley_twin`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from glacier_assets.constants import OUTLINE_TIME_OFFSET_YEARS, SPINUP_START, START_YEAR  # noqa: E402
from glacier_assets.science.resample import product_area_km2  # noqa: E402

UNCONSTRAINED = [1960, 1965, 1975, 1980, 1985, 1995, 2005, 2015]


def simulated(products: Path) -> pd.DataFrame:
    rows = []
    for path in sorted((products / "simulations").glob("*.nc")):
        with xr.open_dataset(path) as ds:
            res = float(abs(ds.x.values[1] - ds.x.values[0]))
            for i, t in enumerate(ds.time.values):
                thk = ds.thk.values[i]
                rows.append({"glacier_id": ds.attrs["glacier_id"], "year": int(t),
                             "sim_area_km2": product_area_km2(thk, res),
                             "sim_volume_km3": float(np.clip(thk, 0, None).sum()) * res * res / 1e9})
    return pd.DataFrame(rows)


def recovered_shifts(products: Path, region: Path) -> pd.DataFrame:
    """Per glacier and period after the spin-up: the model's shift and the truth's mean ELA offset
    from the public forcing over the same balance years."""
    params = json.loads((region / "truth" / "params.json").read_text())
    offsets = {m["glacier_id"]: m["ela_offset_m"] for m in params["mountains"]}
    periods = {int(k): v for k, v in params["period_offsets_m"].items()}
    trends = {int(k): v for k, v in params["period_trends_m_per_yr"].items()}

    def truth_offset(gid: str, year: int) -> float:
        p = max(k for k in periods if k <= max(year, START_YEAR))
        return offsets[gid] + periods[p] + trends[p] * (max(year, START_YEAR) - p)

    rows = []
    for path in sorted((products / "simulations").glob("*.nc")):
        with xr.open_dataset(path) as ds:
            gid, cal = ds.attrs["glacier_id"], json.loads(ds.attrs["calibration"])
        for r in cal:
            if r["start"] == SPINUP_START:
                continue
            years = range(int(r["start"]), int(r["time"]))
            rows.append({"glacier_id": gid, "start": r["start"], "end_year": r["time"] - OUTLINE_TIME_OFFSET_YEARS,
                         "model_shift_m": r["d_ela_m"],
                         "truth_offset_m": float(np.mean([truth_offset(gid, y) for y in years]))})
    df = pd.DataFrame(rows).sort_values(["glacier_id", "start"])
    df["model_change_m"] = df.groupby("glacier_id")["model_shift_m"].diff()
    df["truth_change_m"] = df.groupby("glacier_id")["truth_offset_m"].diff()
    return df


def shape_against_truth(products: Path, region: Path) -> pd.DataFrame:
    """Per glacier and epoch, where the twin keeps its truth's thickness (`truth/thickness.nc`, the
    valley twin): IoU of the simulated and the true ice on the 25 m product grid, and the
    glacier's length (path distance from the true 1960 glacier's head to the terminus, round the
    valley's bends) in the simulation and in the truth."""
    from glacier_assets.constants import EPOCHS, ICE_THRESHOLD_M
    from glacier_assets.science.grids import Grid, Resampling, reproject_array
    from glacier_assets.science.quality import iou
    from glacier_assets.science.resample import refined_thickness
    from glacier_assets.science.shape import glacier_length, path_distances
    from glacier_assets.simulation_file import SimulationFile

    rows = []
    with xr.open_dataset(region / "truth" / "thickness.nc") as truth:
        truth = truth.load()
    grid = Grid.from_xy(truth.attrs["crs"], truth.x.values, truth.y.values)
    bed = truth.bed.values
    for path in sorted((products / "simulations").glob("*.nc")):
        sim = SimulationFile(path).load()
        gid = sim.attrs["glacier_id"]
        true = {int(t): truth.thk.sel(glacier_id=gid, time=t).values.astype(float) for t in truth.time.values}
        model = {t: np.nan_to_num(reproject_array(sim.states[t], sim.grid.transform, sim.grid.crs, grid,
                                                  Resampling.nearest)) for t in EPOCHS}
        ref = true[EPOCHS[0]] >= ICE_THRESHOLD_M
        allowed = ndimage.binary_dilation(np.any([m >= ICE_THRESHOLD_M for m in (*model.values(), *true.values())],
                                                 axis=0))
        head = np.unravel_index(np.argmax(np.where(ref, bed, -np.inf)), bed.shape)
        dist = path_distances(allowed, head, grid.res)
        for t in EPOCHS:
            fine_sim, fine_true = refined_thickness(model[t], 4), refined_thickness(true[t], 4)
            rows.append({"glacier_id": gid, "year": t,
                         "iou": iou(fine_sim >= ICE_THRESHOLD_M, fine_true >= ICE_THRESHOLD_M),
                         "sim_length_m": glacier_length(model[t] >= ICE_THRESHOLD_M, ref, bed, dist),
                         "true_length_m": glacier_length(true[t] >= ICE_THRESHOLD_M, ref, bed, dist)})
    return pd.DataFrame(rows)


def print_shape(products: Path, region: Path) -> None:
    report = products / "reports" / "calibration.csv"
    if report.exists():
        cal = pd.read_csv(report)
        if "iou" in cal:
            low = cal.tongue_covered
            print(f"Shape at the outline dates (calibration report, {len(cal)} outlines): IoU median "
                  f"{cal.iou.median():.3f}, lowest {cal.iou.min():.3f} (grid ceiling median "
                  f"{cal.ceiling_iou.median():.3f}); "
                  f"tongue (outline's lowest fifth) covered median {low.median():.2f}, >= 0.8 in "
                  f"{(low >= 0.8).sum()} of {low.notna().sum()}; terminus below the outline's lowest point by "
                  f"{(cal.z_outline_min_m - cal.z_terminus_m).median():+.0f} m (median)\n")
    if not (region / "truth" / "thickness.nc").exists():
        return
    df = shape_against_truth(products, region)
    un = df[df.year.isin(UNCONSTRAINED)]
    print(f"Shape against the truth's ice (25 m): IoU median {df.iou.median():.3f} over all glacier-epochs, "
          f"{un.iou.median():.3f} at the epochs no outline constrains, lowest {df.iou.min():.3f}")
    w = df.pivot(index="glacier_id", columns="year", values=["sim_length_m", "true_length_m"])
    out = pd.DataFrame({
        "true_L1960_m": w["true_length_m"][1960], "sim_L1960_m": w["sim_length_m"][1960],
        "true_dL_1960_2000_m": w["true_length_m"][2000] - w["true_length_m"][1960],
        "sim_dL_1960_2000_m": w["sim_length_m"][2000] - w["sim_length_m"][1960],
        "true_dL_1960_2020_m": w["true_length_m"][2020] - w["true_length_m"][1960],
        "sim_dL_1960_2020_m": w["sim_length_m"][2020] - w["sim_length_m"][1960]})
    print("Glacier length along the valley (m):")
    print(out.round(0).to_string())
    both = out.dropna()
    err = (both.sim_dL_1960_2020_m - both.true_dL_1960_2020_m).abs() / both.true_dL_1960_2020_m.abs()
    print(f"length change 1960->2020: truth median {both.true_dL_1960_2020_m.median():+.0f} m, simulated "
          f"{both.sim_dL_1960_2020_m.median():+.0f} m; within 30 % of the truth's in {(err <= 0.3).sum()} of "
          f"{len(both)}; simulated 1960 longer than 2020 in {(both.sim_dL_1960_2020_m < 0).sum()} of {len(both)}\n")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--products", default=str(REPO / "var" / "products"))
    p.add_argument("--region", default=str(REPO / "var" / "demo_region"))
    args = p.parse_args()
    products, region = Path(args.products), Path(args.region)
    truth = pd.read_csv(region / "truth" / "truth.csv")
    m = simulated(products).merge(truth, on=["glacier_id", "year"])
    print(f"{m.glacier_id.nunique()} glaciers of {truth.glacier_id.nunique()} in the twin\n")
    reg = m.groupby("year")[["sim_volume_km3", "volume_km3", "sim_area_km2", "area_km2"]].sum()
    reg["volume_err_pct"] = 100 * (reg.sim_volume_km3 / reg.volume_km3 - 1)
    reg["area_err_pct"] = 100 * (reg.sim_area_km2 / reg.area_km2 - 1)
    m["volume_err_pct"] = 100 * (m.sim_volume_km3 / m.volume_km3 - 1)
    m["area_err_pct"] = 100 * (m.sim_area_km2 / m.area_km2 - 1)
    reg["median_abs_glacier_volume_err_pct"] = m.groupby("year").volume_err_pct.apply(lambda s: s.abs().median())
    reg["outlines_near"] = ["" if y in UNCONSTRAINED else "yes" for y in reg.index]
    print("Regional volume and area against the truth, per epoch:")
    print(reg.round(3).to_string(), "\n")
    print(f"regional volume: worst |error| {reg.volume_err_pct.abs().max():.2f} % (goal 5 %); per-glacier median "
          f"|error| over all glacier-epochs {m.volume_err_pct.abs().median():.2f} % (goal 15 %), worst epoch "
          f"{reg.median_abs_glacier_volume_err_pct.max():.2f} %")
    v = reg.sim_volume_km3
    t = reg.volume_km3
    sim_change, true_change = 100 * (v[1970] / v[1960] - 1), 100 * (t[1970] / t[1960] - 1)
    print(f"volume change 1960->1970: simulated {sim_change:+.2f} %, truth {true_change:+.2f} % "
          f"(difference {sim_change - true_change:+.2f} percentage points; goal: same sign, within 5)\n")
    oos = m[m.year.isin(UNCONSTRAINED)]
    print("Epochs no outline constrains " + ", ".join(map(str, UNCONSTRAINED)) + ":")
    print(f"  regional area error {reg.loc[UNCONSTRAINED, 'area_err_pct'].abs().max():.2f} % at worst, volume "
          f"{reg.loc[UNCONSTRAINED, 'volume_err_pct'].abs().max():.2f} % at worst")
    print(f"  per glacier-epoch median |area error| {oos.area_err_pct.abs().median():.2f} %, |volume error| "
          f"{oos.volume_err_pct.abs().median():.2f} %\n")
    report = products / "reports" / "calibration.csv"
    if report.exists():
        cal = pd.read_csv(report)
        print(f"Calibration report: fitted |dA| {cal.rel_diff_pct.abs().mean():.2f} % (mean over {len(cal)} outlines); "
              f"left out, predicted |dA| {cal.loo_rel_diff_pct.abs().mean():.2f} % (median "
              f"{cal.loo_rel_diff_pct.abs().median():.2f} %, worst {cal.loo_rel_diff_pct.abs().max():.2f} %)\n")
    print_shape(products, region)
    geodetic = region / "geodetic_mass_balance.csv"
    if geodetic.exists():
        from glacier_assets.science.skill import geodetic_balance
        from glacier_assets.steps.evaluation import simulated_geodetic_balance

        geo = pd.read_csv(geodetic).set_index("glacier_id")
        t = truth.set_index(["glacier_id", "year"])
        rows = []
        for path in sorted((products / "simulations").glob("*.nc")):
            g = path.stem
            a, b = int(geo.loc[g, "start"]), int(geo.loc[g, "end"])
            figures = simulated_geodetic_balance(path, a, b)
            sim, area = figures["simulated_mb_mwe"], figures["mean_area_km2"]
            true = geodetic_balance(t.loc[(g, a), "volume_km3"], t.loc[(g, b), "volume_km3"], t.loc[(g, a), "area_km2"],
                                    t.loc[(g, b), "area_km2"], b - a)
            rows.append({"sim": sim, "truth": true, "geodetic": geo.loc[g, "dmdtda_mwe"], "area": area})
        mb = pd.DataFrame(rows)
        w = mb.area / mb.area.sum()
        print(f"Mass balance 2000-2020 (m w.e./a, area-weighted): simulated {(w * mb.sim).sum():+.3f}, truth "
              f"{(w * mb.truth).sum():+.3f}, geodetic reference {(w * mb.geodetic).sum():+.3f}; per glacier RMSE vs "
              f"truth {np.sqrt(((mb.sim - mb.truth) ** 2).mean()):.3f}, vs the reference "
              f"{np.sqrt(((mb.sim - mb.geodetic) ** 2).mean()):.3f}\n")
    shifts = recovered_shifts(products, region)
    ch = shifts.dropna(subset=["model_change_m"])
    print("Recovered ELA shifts vs the truth's ELA offsets (period to period changes, m):")
    print(f"  correlation {ch.model_change_m.corr(ch.truth_change_m):.2f}, RMSE "
          f"{np.sqrt(((ch.model_change_m - ch.truth_change_m) ** 2).mean()):.0f} m, mean |model change| "
          f"{ch.model_change_m.abs().mean():.0f} m vs truth {ch.truth_change_m.abs().mean():.0f} m over {len(ch)} "
          f"period pairs; levels: model {shifts.model_shift_m.mean():+.0f} m "
          f"vs truth {shifts.truth_offset_m.mean():+.0f} m on average")


if __name__ == "__main__":
    main()
