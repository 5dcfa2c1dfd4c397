"""Quality figures: overlap of masks, the regional area gate, per-glacier warnings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..constants import AREA_CHECK_EPOCHS, AREA_GATE_PCT, GLACIER_WARN_PCT


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


def per_glacier_abs_diff(report: pd.DataFrame, epochs: tuple[int, ...] = AREA_CHECK_EPOCHS) -> pd.Series:
    rows = report[report["epoch"].isin(epochs)]
    return rows.assign(a=rows["rel_diff_pct"].abs()).groupby("glacier_id")["a"].mean().sort_values(ascending=False)


def area_gate(report: pd.DataFrame, limit_pct: float = AREA_GATE_PCT,
              epochs: tuple[int, ...] = AREA_CHECK_EPOCHS, n_worst: int = 5) -> GateResult:
    """The dataset's promise: the mean of |A_sim - A_obs| / A_obs over every glacier and control
    epoch (1970, 1990, 2000, 2010, 2020) stays within `limit_pct`."""
    rows = report[report["epoch"].isin(epochs)]
    if rows.empty:  # e.g. a single-date inventory: runs uncalibrated, nothing to compare
        return GateResult(True, float("nan"), 0, 0, [],
                          note="no outline at a control epoch: nothing to compare (uncalibrated region)")
    mean = float(rows["rel_diff_pct"].abs().mean())
    worst = per_glacier_abs_diff(report, epochs).head(n_worst)
    return GateResult(mean <= limit_pct, mean, len(rows), rows["glacier_id"].nunique(),
                      [(g, round(float(v), 3)) for g, v in worst.items()])


def glaciers_above(report: pd.DataFrame, limit_pct: float = GLACIER_WARN_PCT,
                   epochs: tuple[int, ...] = AREA_CHECK_EPOCHS) -> pd.Series:
    """Glaciers whose mean |diff| over the check epochs exceeds `limit_pct` (worst first)."""
    per = per_glacier_abs_diff(report, epochs)
    return per[per > limit_pct]
