"""Quality figures: overlap of masks, the regional area gate, per-glacier warnings."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..constants import AREA_GATE_PCT, GLACIER_WARN_PCT


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    a, b = a.astype(bool), b.astype(bool)
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else float(np.count_nonzero(a & b) / union)


@dataclass(frozen=True)
class GateResult:
    passed: bool
    mean_abs_diff_pct: float
    n_comparisons: int
    n_glaciers: int
    worst: list[tuple[str, float]]  # glacier, its mean |diff| % over the check epochs
    note: str = ""


def per_glacier_abs_diff(report: pd.DataFrame) -> pd.Series:
    """Each glacier's mean |A_sim - A_obs| / A_obs (%) over its outlines, worst first."""
    return report.assign(a=report["rel_diff_pct"].abs()).groupby("glacier_id")["a"].mean().sort_values(ascending=False)


def area_gate(report: pd.DataFrame, limit_pct: float = AREA_GATE_PCT, n_worst: int = 5) -> GateResult:
    """The dataset's promise: the mean of |A_sim - A_obs| / A_obs over every glacier and outline
    (the initial one and the controls, each at its own date) stays within `limit_pct`.

    A gate with nothing to compare fails, and so does one where a glacier ran uncalibrated:
    an unmeasured region is not a region that passed. Flagged glaciers count with their misfit."""
    if report.empty:
        return GateResult(False, float("nan"), 0, 0, [],
                          note="no simulated glacier has an outline to compare with: nothing was checked")
    uncalibrated = sorted(report.loc[report["glacier_status"] == "uncalibrated", "glacier_id"].unique())
    mean = float(report["rel_diff_pct"].abs().mean())
    worst = per_glacier_abs_diff(report).head(n_worst)
    note = (f"{len(uncalibrated)} glacier(s) ran uncalibrated: {', '.join(uncalibrated[:10])}"
            if uncalibrated else "")
    return GateResult(mean <= limit_pct and not uncalibrated, mean, len(report), report["glacier_id"].nunique(),
                      [(g, round(float(v), 3)) for g, v in worst.items()], note=note)


def in_validation_sample(glacier_id: str, share: float) -> bool:
    """Whether a glacier is among the `share` (0-1) of glaciers validated by leave-one-out: its id
    hashed to a number in [0, 1) below `share`. The same glaciers whatever the run or the region's
    other glaciers, a random sample of any region's glaciers, and a larger share keeps the
    glaciers of a smaller one."""
    if share >= 1.0:
        return True
    u = int.from_bytes(hashlib.sha256(glacier_id.encode()).digest()[:8], "big") / 2.0**64
    return u < share


def validated(glacier_id: str, leave_one_out: bool, share: float) -> bool:
    """Whether a glacier's calibration is validated by leave-one-out: it is on (`leave_one_out`)
    and the glacier is in the validation sample of `share`. The IGM run and the simulation's
    fingerprint both ask this, so they agree."""
    return bool(leave_one_out) and in_validation_sample(glacier_id, share)


def glaciers_above(report: pd.DataFrame, limit_pct: float = GLACIER_WARN_PCT) -> pd.Series:
    """Glaciers whose mean |diff| over their outlines exceeds `limit_pct` (worst first)."""
    per = per_glacier_abs_diff(report)
    return per[per > limit_pct]


def _nearest_reference_row(rows: pd.DataFrame) -> pd.Series:
    return rows.iloc[int(np.argmin(np.abs(rows["obs_year"].to_numpy() - rows["reference_year"].to_numpy())))]


# mb_calibration: how the glacier's balance was calibrated to the geodetic one ("" when only compared)
GEODETIC_COLUMNS = ["glacier_id", "start", "end", "geodetic_mb_mwe", "simulated_mb_mwe", "mean_area_km2",
                    "mb_calibration"]


SHAPE_COLUMNS = ["iou", "ceiling_iou", "tongue_covered", "shape_flag"]


def _mean(values: pd.Series) -> float:
    values = pd.to_numeric(values, errors="coerce").dropna()
    return float(values.mean()) if len(values) else float("nan")


def shape_figures(rows: pd.DataFrame) -> dict:
    """One glacier's shape over its outlines (calibration report rows): the mean IoU, its mean
    ceiling on the model grid, the mean share of the outlines' tongues under ice, and the shape
    flags of its outline dates ("2003: IoU 0.62 < 0.70"; "" when none)."""
    flags = rows["shape_flag"].fillna("").astype(str)
    return {"iou": _mean(rows["iou"]), "ceiling_iou": _mean(rows["ceiling_iou"]),
            "tongue_covered": _mean(rows["tongue_covered"]),
            "shape_flag": "; ".join(f"{int(y)}: {f}" for y, f in zip(rows["obs_year"], flags) if f)}


def shape_summary(table: pd.DataFrame) -> dict:
    """The region's shape figures from `validation_table`: median and lowest IoU, the median
    ceiling, the median tongue coverage, and how many glaciers are flagged for their shape."""
    def fig(col: str, how: str) -> float | None:
        v = pd.to_numeric(table[col], errors="coerce").dropna()
        return round(float(getattr(v, how)()), 3) if len(v) else None

    return {"iou_median": fig("iou", "median"), "iou_min": fig("iou", "min"),
            "ceiling_iou_median": fig("ceiling_iou", "median"),
            "tongue_covered_median": fig("tongue_covered", "median"),
            "n_shape_flagged": int((table["shape_flag"].fillna("").astype(str) != "").sum())}


def validation_table(report: pd.DataFrame, geodetic: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per glacier, from the calibration report: the in-sample area misfit (mean |%| over its
    outlines), the out-of-sample one (each outline predicted with it left out of the
    calibration), and the simulated volume at the reference volume's outline against it; with
    `geodetic` (`GEODETIC_COLUMNS`), the simulated mass balance of the geodetic period against
    the geodetic one and how it was calibrated to it (if it was: then it is a fit, not a
    validation)."""
    out = []
    for gid, rows in report.groupby("glacier_id"):
        loo = rows["loo_rel_diff_pct"].dropna()
        row = {"glacier_id": gid, "status": rows["glacier_status"].iloc[0], "n_outlines": len(rows),
               "fit_mean_abs_pct": float(rows["rel_diff_pct"].abs().mean()),
               "loo_mean_abs_pct": float(loo.abs().mean()) if len(loo) else np.nan, "n_loo": len(loo),
               "volume_km3": np.nan, "reference_volume_km3": np.nan, "volume_vs_reference_pct": np.nan}
        if rows["reference_volume_km3"].notna().any():
            ref = _nearest_reference_row(rows)
            row.update(volume_km3=float(ref["volume_km3"]), reference_volume_km3=float(ref["reference_volume_km3"]),
                       volume_vs_reference_pct=100.0 * (ref["volume_km3"] / ref["reference_volume_km3"] - 1.0))
        row.update(shape_figures(rows))
        out.append(row)
    table = pd.DataFrame(out, columns=["glacier_id", "status", "n_outlines", "fit_mean_abs_pct", "loo_mean_abs_pct",
                                       "n_loo", "volume_km3", "reference_volume_km3", "volume_vs_reference_pct",
                                       *SHAPE_COLUMNS])
    geo = geodetic if geodetic is not None else pd.DataFrame(columns=GEODETIC_COLUMNS)
    table = table.merge(geo[["glacier_id", "geodetic_mb_mwe", "simulated_mb_mwe", "mb_calibration"]],
                        on="glacier_id", how="left")
    return table.assign(mb_diff_mwe=table["simulated_mb_mwe"] - table["geodetic_mb_mwe"])


def geodetic_summary(geodetic: pd.DataFrame | None) -> dict:
    """The region's geodetic figures: its area-weighted mean balance, geodetic and simulated, the
    difference (simulated - geodetic), the per-glacier RMSE (m w.e. a-1), and how many glaciers
    were calibrated to theirs (for those the figures are a fit)."""
    geo = geodetic if geodetic is not None else pd.DataFrame(columns=GEODETIC_COLUMNS)
    geo = geo.dropna(subset=["geodetic_mb_mwe", "simulated_mb_mwe", "mean_area_km2"])
    if geo.empty:
        return {"n_geodetic": 0}
    w = geo["mean_area_km2"] / geo["mean_area_km2"].sum()
    obs, sim = float((w * geo["geodetic_mb_mwe"]).sum()), float((w * geo["simulated_mb_mwe"]).sum())
    diff = geo["simulated_mb_mwe"] - geo["geodetic_mb_mwe"]
    return {"n_geodetic": int(len(geo)), "geodetic_period": f"{int(geo['start'].min())}-{int(geo['end'].max())}",
            "geodetic_mb_mwe": round(obs, 3), "simulated_mb_mwe": round(sim, 3), "mb_diff_mwe": round(sim - obs, 3),
            "mb_rmse_mwe": round(float(np.sqrt((diff ** 2).mean())), 3),
            "n_geodetic_calibrated": int((geo["mb_calibration"].fillna("") != "").sum())}


def validation_summary(report: pd.DataFrame, geodetic: pd.DataFrame | None = None) -> dict:
    """The regional figures: in-sample fit vs leave-one-out validation of the areas (mean |%| over
    outlines), the regional volume against the summed reference volumes, and the geodetic
    figures (`geodetic_summary`)."""
    table = validation_table(report)
    loo = report["loo_rel_diff_pct"].dropna()
    with_ref = table.dropna(subset=["reference_volume_km3"])
    vol, ref = float(with_ref["volume_km3"].sum()), float(with_ref["reference_volume_km3"].sum())
    return {
        "n_glaciers": int(len(table)), "n_outlines": int(len(report)), "n_left_out": int(len(loo)),
        "n_glaciers_validated": int((table["n_loo"] > 0).sum()),
        "area_fit_mean_abs_pct": round(float(report["rel_diff_pct"].abs().mean()), 3) if len(report) else None,
        "area_loo_mean_abs_pct": round(float(loo.abs().mean()), 3) if len(loo) else None,
        "area_loo_median_abs_pct": round(float(loo.abs().median()), 3) if len(loo) else None,
        "n_with_reference_volume": int(len(with_ref)),
        "volume_km3": round(vol, 5), "reference_volume_km3": round(ref, 5),
        "volume_vs_reference_pct": round(100.0 * (vol / ref - 1.0), 2) if ref > 0 else None,
        **shape_summary(table),
        **geodetic_summary(geodetic),
    }
