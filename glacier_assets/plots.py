"""Figures for Dagster metadata: PNG files, and the same embedded as markdown images."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .storage import atomic_path  # noqa: E402


def area_volume_png(glacier_id: str, summary: pd.DataFrame, observed: dict[int, float]) -> bytes:
    """Simulated area (line) with the observed outline areas (points), and volume (dashed)."""
    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=90)
    ax.plot(summary["year"], summary["area_km2"], "o-", color="tab:blue", ms=3, label="simulated area")
    if observed:
        ax.plot(list(observed), list(observed.values()), "s", color="tab:red", ms=6, label="observed outlines")
    ax.set_xlabel("year")
    ax.set_ylabel("area (km²)")
    ax2 = ax.twinx()
    ax2.plot(summary["year"], summary["volume_km3"], "--", color="tab:gray", label="volume")
    ax2.set_ylabel("volume (km³)")
    ax.set_title(glacier_id)
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(lines, [ln.get_label() for ln in lines], fontsize=7, loc="lower left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def save_png(path: Path, png: bytes) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        tmp.write_bytes(png)
    return path


def markdown_image(png: bytes, alt: str) -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def thickness_panels_png(glacier_id: str, years: list[int], thickness: list, extent: tuple[float, ...]) -> bytes:
    """One small thickness map per epoch (model grid, shared colour scale)."""
    import numpy as np

    vmax = max(float(np.nanmax(t)) for t in thickness) or 1.0
    cols = 7
    rows = (len(years) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.5, rows * 1.6 + 0.4), dpi=70)
    im = None
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, year, thk in zip(axes.ravel(), years, thickness):
        im = ax.imshow(np.where(thk > 0, thk, np.nan), extent=extent, vmin=0, vmax=vmax, cmap="viridis")
        ax.set_title(str(year), fontsize=8)
    fig.suptitle(f"{glacier_id}: ice thickness (m)", fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6, pad=0.01)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def outline_map_png(title: str, outlines) -> bytes:
    """All glacier outlines of one epoch, in their (Albers) projection."""
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=80)
    if len(outlines):
        outlines.plot(ax=ax, facecolor="#9ecae1", edgecolor="#08519c", linewidth=0.5)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("Albers x (m)", fontsize=7)
    ax.set_ylabel("Albers y (m)", fontsize=7)
    ax.tick_params(labelsize=6)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def validation_png(table: pd.DataFrame) -> bytes:
    """Left: per glacier, the area misfit where the outline was fitted vs where it was left out
    (mean |%|). Middle: simulated volume against the reference volume, with the 1:1 line. Right,
    where there are geodetic balances: the simulated balance of their period against them (a fit
    where the simulation was calibrated to it, a validation where not)."""
    import numpy as np

    geo = table.dropna(subset=["geodetic_mb_mwe", "simulated_mb_mwe"]) if "geodetic_mb_mwe" in table else table.iloc[:0]
    ratios = [1.6, 1, 1] if len(geo) else [1.6, 1]
    fig, axes = plt.subplots(1, len(ratios), figsize=(10 + 3.5 * (len(ratios) - 2), 3.8), dpi=80,
                             gridspec_kw={"width_ratios": ratios})
    ax, bx = axes[0], axes[1]
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["fit_mean_abs_pct"], 0.4, label="fitted (in sample)", color="tab:blue")
    ax.bar(x + 0.2, table["loo_mean_abs_pct"].fillna(0), 0.4, label="left out (validation)", color="tab:orange")
    ax.set_xticks(x, [g.split(".")[-1] for g in table["glacier_id"]], rotation=90, fontsize=6)
    ax.set_ylabel("mean |A_sim − A_obs| / A_obs (%)", fontsize=8)
    ax.set_title("Area: calibration fit vs leave-one-out", fontsize=9)
    ax.legend(fontsize=7)
    ref = table.dropna(subset=["reference_volume_km3"])
    if len(ref):
        lim = [0, 1.1 * float(max(ref["reference_volume_km3"].max(), ref["volume_km3"].max()))]
        bx.plot(lim, lim, color="0.6", lw=0.8)
        bx.plot(ref["reference_volume_km3"], ref["volume_km3"], "o", color="tab:green", ms=4)
        bx.set_xlim(lim)
        bx.set_ylim(lim)
    bx.set_xlabel("reference volume (km³)", fontsize=8)
    bx.set_ylabel("simulated volume (km³)", fontsize=8)
    bx.set_title("Volume at the reference date", fontsize=9)
    if len(geo):
        cx = axes[2]
        lo = float(min(geo["geodetic_mb_mwe"].min(), geo["simulated_mb_mwe"].min())) - 0.1
        hi = float(max(geo["geodetic_mb_mwe"].max(), geo["simulated_mb_mwe"].max())) + 0.1
        cx.plot([lo, hi], [lo, hi], color="0.6", lw=0.8)
        fitted = geo["mb_calibration"].fillna("").astype(str) != "" if "mb_calibration" in geo else geo["glacier_id"] == ""
        for sel, label, marker in ((fitted, "calibrated to it (fit)", "o"), (~fitted, "compared only", "s")):
            if sel.any():
                cx.plot(geo.loc[sel, "geodetic_mb_mwe"], geo.loc[sel, "simulated_mb_mwe"], marker, color="tab:purple",
                        ms=4, label=label)
        cx.legend(fontsize=7)
        cx.set_xlim(lo, hi)
        cx.set_ylim(lo, hi)
        cx.set_xlabel("geodetic balance (m w.e. a⁻¹)", fontsize=8)
        cx.set_ylabel("simulated (m w.e. a⁻¹)", fontsize=8)
        cx.set_title("Mass balance of the geodetic period", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
