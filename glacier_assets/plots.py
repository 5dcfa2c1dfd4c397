"""Figures for papers and for Dagster metadata: PNG files beside the products, and the same
embedded as markdown images.

Plain functions: arrays, geometries and tables in, PNG bytes out (each `*_png` has a `*_figure`
twin that returns the matplotlib Figure, for tests). Rendered with the non-interactive Agg
backend on `matplotlib.figure.Figure` objects (no pyplot state: safe in threads, nothing to
close). No basemap tiles: the maps are georeferenced by their own frame, projected kilometres
with the CRS named, or a longitude/latitude graticule computed with pyproj, and a scale bar
(`map_furniture.py`).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import patheffects  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .constants import (  # noqa: E402
    EPOCHS,
    ICE_THRESHOLD_M,
    OUTLINE_TIME_OFFSET_YEARS,
    SHAPE_FLAG_IOU,
    SHAPE_FLAG_TONGUE,
)
from .map_furniture import (  # noqa: E402
    crs_label,
    emptiest_spot,
    frame_labels,
    geometry_path,
    graticule,
    hillshade,
    km_axes,
    north_arrow,
    rings,
    scale_bar,
    zoom_box,
)
from .storage import atomic_path  # noqa: E402

DPI = 100  # PNG resolution: ~1,000 px wide maps, sharp in the Dagster UI and in a paper draft
THICKNESS_CMAP = "viridis"  # perceptually uniform, readable in grey scale and with colour-vision deficiency
OBSERVED_COLOR = "#e31a1c"  # observed outlines (red)
SIMULATED_COLOR = "white"  # the simulated glacier's outline (white on a dark halo, dashed)
REFERENCE_COLOR = "#ff7f00"  # the reference volume (orange)
GLACIER_FILL, GLACIER_EDGE = "#9ecae1", "#08306b"  # regional outline map
PREVIEW_WIDTH = 720  # px: the figures' previews in Dagster metadata (markdown_image)
PREVIEW_QUALITY = 85  # JPEG quality of those previews
LABELLED_GLACIERS = 30  # a regional map names its glaciers (the id after the dot) up to this many


# --- output -----------------------------------------------------------------------------------------


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def save_png(path: Path, png: bytes) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        tmp.write_bytes(png)
    return path


def markdown_image(png: bytes, alt: str, max_width: int = PREVIEW_WIDTH) -> str:
    """The figure inline in Markdown metadata, as a preview at most `max_width` pixels wide (PNG,
    or JPEG where that is smaller: a hillshade): Dagster keeps every event's metadata, and the
    full PNG (0.2-0.6 MB for a thickness map) is beside the products anyway."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as opened:
        img = opened.convert("RGB")
        if img.width > max_width:
            img = img.resize((max_width, round(img.height * max_width / img.width)), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            img.save(buf, format="PNG", optimize=True)
            png = buf.getvalue()
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=PREVIEW_QUALITY)
    kind, data = ("jpeg", buf.getvalue()) if len(buf.getvalue()) < len(png) else ("png", png)
    return f"![{alt}](data:image/{kind};base64,{base64.b64encode(data).decode()})"


# --- per glacier: thickness on a hillshade ------------------------------------------------------------


def thickness_map_figure(glacier_id: str, panels: list[tuple], dem: np.ndarray | None,
                         extent: tuple[float, float, float, float], crs: str, *, threshold: float = ICE_THRESHOLD_M,
                         dem_label: str = "DEM") -> Figure:
    """Simulated ice thickness on a hillshade of the DEM, one panel per (title, thickness,
    observed outline or None) of `panels` (thickness on the product grid, outline a shapely
    geometry in `crs`), all over `extent` (xmin, xmax, ymin, ymax in `crs`, as `dem`), zoomed
    to the ice: thickness >= `threshold` in a perceptual colour map with one labelled colour bar
    (0 to the panels' largest thickness), the simulated glacier's outline (the `threshold`
    contour) and the observed outline in distinct styles with a legend, a scale bar, axes in
    projected km, the CRS and grid named. Without a `dem`, a plain light background."""
    if not panels:
        raise ValueError("a thickness map needs at least one panel")
    xmin, xmax, ymin, ymax = extent
    thks = [np.asarray(p[1], dtype="float64") for p in panels]
    vmax = max((float(np.nanmax(t)) for t in thks if np.isfinite(t).any()), default=0.0)
    box = zoom_box(extent, [t >= threshold for t in thks] + [p[2] for p in panels])
    bw, bh = box[1] - box[0], box[3] - box[2]
    n = len(panels)
    cols = 2 if n == 4 else min(n, 3)
    rows = -(-n // cols)
    panel_w = 2.9
    panel_h = min(max(panel_w * bh / bw, 1.4), 4.2)
    fig = Figure(figsize=(cols * panel_w + 1.0, rows * (panel_h + 0.3) + 1.1), layout="compressed")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    shade = None if dem is None else hillshade(dem, (xmax - xmin) / np.asarray(dem).shape[1])
    im = None
    halo = [patheffects.withStroke(linewidth=2.4, foreground="black")]
    for i, ax in enumerate(axes.ravel()):
        if i >= n:
            ax.set_axis_off()
            continue
        title, thk, observed = panels[i][0], thks[i], panels[i][2]
        if shade is not None:
            ax.imshow(shade, extent=extent, cmap="gray", vmin=0, vmax=1, interpolation="bilinear")
        else:
            ax.set_facecolor("0.93")
        ny, nx = thk.shape
        shown = np.ma.masked_where(~(thk >= threshold), thk)
        im = ax.imshow(shown, extent=extent, cmap=THICKNESS_CMAP, vmin=0.0, vmax=vmax or 1.0,
                       interpolation="nearest")
        if (thk >= threshold).any() and (thk < threshold).any():
            xs = xmin + (np.arange(nx) + 0.5) * (xmax - xmin) / nx
            ys = ymax - (np.arange(ny) + 0.5) * (ymax - ymin) / ny
            cs = ax.contour(xs, ys, np.nan_to_num(thk), levels=[threshold], colors=SIMULATED_COLOR,
                            linewidths=1.0, linestyles=[(0, (3, 1.5))])
            cs.set(path_effects=halo)
        for ring in rings(observed):
            ax.plot(ring[:, 0], ring[:, 1], color=OBSERVED_COLOR, lw=1.3, solid_joinstyle="round")
        ax.set_xlim(box[0], box[1])
        ax.set_ylim(box[2], box[3])
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=8.5)
        km_axes(ax, xlabel=i + cols >= n, ylabel=i % cols == 0)
        if i + cols >= n:  # the lowest panel of its column: its km ticks labelled (sharex hides them above a blank)
            ax.tick_params(labelbottom=True)
    scale_bar(axes[0, 0], bw)
    assert im is not None  # there is at least one panel
    cbar = fig.colorbar(im, ax=axes, shrink=0.9 if rows > 1 else 1.0, pad=0.015, aspect=25 * rows)
    cbar.set_label("ice thickness (m)", fontsize=8)
    cbar.ax.tick_params(labelsize=7)
    handles = [Line2D([], [], color=OBSERVED_COLOR, lw=1.3, label="observed outline (its date)"),
               Line2D([], [], color=SIMULATED_COLOR, lw=1.0, ls=(0, (3, 1.5)), path_effects=halo,
                      label=f"simulated glacier (thickness ≥ {threshold:g} m)")]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=7.5, frameon=False, handlelength=3,
               title=f"map: {crs_label(crs)}", title_fontsize=7)
    grid_m = (xmax - xmin) / thks[0].shape[1]
    background = f" on a hillshade of the {dem_label}" if shade is not None else ""
    fig.suptitle(f"{glacier_id}: simulated ice thickness ({grid_m:g} m grid){background}", fontsize=9.5)
    return fig


def thickness_map_png(glacier_id: str, panels: list[tuple], dem: np.ndarray | None,
                      extent: tuple[float, float, float, float], crs: str, **options) -> bytes:
    return png_bytes(thickness_map_figure(glacier_id, panels, dem, extent, crs, **options))


# --- per glacier: area and volume series -----------------------------------------------------------


def area_volume_figure(glacier_id: str, series: pd.DataFrame, observed: dict[int, float], *,
                       volume_series: pd.Series | None = None, reference: tuple[float, int, str] | None = None,
                       epochs: tuple[int, ...] = EPOCHS) -> Figure:
    """Two panels over the years: the simulated area (top) and volume (bottom), `series`
    (`year`, `area_km2`, `volume_km3`: the epochs and any other saved times), the epochs marked;
    the observed outline areas (`observed`: model time -> km2) as points labelled with their
    acquisition year (model time - 1); the yearly volume (`volume_series`, year -> km3) as a
    line; the reference volume (`reference`: km3, model time, source) as a point."""
    series = series.sort_values("year")
    fig = Figure(figsize=(6.6, 5.0))
    ax, vx = fig.subplots(2, 1, sharex=True, gridspec_kw={"hspace": 0.08})
    at_epochs = series[series["year"].isin(epochs)]
    for a in (ax, vx):
        for e in epochs:
            a.axvline(e, color="0.88", lw=0.6, zorder=0)
        a.tick_params(labelsize=7)
        a.grid(False)
    ax.plot(series["year"], series["area_km2"], "-", color="tab:blue", lw=1.2, zorder=2)
    ax.plot(at_epochs["year"], at_epochs["area_km2"], "o", color="tab:blue", ms=3.5, zorder=3)
    ax.plot([], [], "o-", color="tab:blue", ms=3.5, lw=1.2,
            label=f"simulated at the epochs (25 m product, thickness ≥ {ICE_THRESHOLD_M:g} m)")
    if observed:
        times = sorted(observed)
        ax.plot(times, [observed[t] for t in times], "s", mfc=OBSERVED_COLOR, mec="black", mew=0.5, ms=5.5, zorder=4,
                label="observed outlines (acquisition year)")
        for t in times:
            ax.annotate(str(t - OUTLINE_TIME_OFFSET_YEARS), (t, observed[t]), xytext=(0, 6), textcoords="offset points",
                        ha="center", fontsize=6.5, color=OBSERVED_COLOR)
    ax.set_ylabel("area (km²)", fontsize=8)
    ax.legend(fontsize=6.5, loc="best", frameon=False)
    ax.set_title(f"{glacier_id}: simulated area and volume", fontsize=9.5)
    if volume_series is not None and len(volume_series):
        vs = volume_series[(volume_series.index >= min(epochs) - 2) & (volume_series.index <= max(epochs) + 2)]
        vx.plot(vs.index, vs.values, "-", color="0.45", lw=0.9, zorder=2, label="simulated, yearly")
    else:
        vx.plot(series["year"], series["volume_km3"], "-", color="0.45", lw=0.9, zorder=2)
    vx.plot(at_epochs["year"], at_epochs["volume_km3"], "o", color="0.2", ms=3.5, zorder=3,
            label="simulated at the epochs")
    if reference is not None:
        vol, t, source = reference
        vx.plot([t], [vol], "D", mfc=REFERENCE_COLOR, mec="black", mew=0.5, ms=6, zorder=4,
                label=f"reference volume ({source}, {t - OUTLINE_TIME_OFFSET_YEARS})")
    vx.set_ylabel("volume (km³)", fontsize=8)
    vx.set_xlabel("year", fontsize=8)
    vx.legend(fontsize=6.5, loc="best", frameon=False)
    vx.set_xlim(min(epochs) - 2, max(epochs) + 2)
    vx.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    for a in (ax, vx):  # room above the highest point for its year
        lo, hi = a.get_ylim()
        a.set_ylim(lo, hi + 0.06 * (hi - lo))
    fig.subplots_adjust(left=0.11, right=0.97, top=0.93, bottom=0.1)
    return fig


def area_volume_png(glacier_id: str, series: pd.DataFrame, observed: dict[int, float], **options) -> bytes:
    return png_bytes(area_volume_figure(glacier_id, series, observed, **options))


# --- per epoch: the regional outline map ----------------------------------------------------------


def outline_map_figure(title: str, outlines, crs=None, *, margin_fraction: float = 0.06) -> Figure:
    """All glacier outlines of one epoch (a GeoDataFrame in a projected CRS, the regional
    Albers one), filled, zoomed to their extent with a margin; a longitude/latitude graticule
    labelled in degrees on the frame, a scale bar, a north arrow, the CRS named."""
    import shapely

    crs = crs if crs is not None else outlines.crs
    fig = Figure(figsize=(6.8, 6.2), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=9.5, pad=16)
    geoms = [g for g in (outlines.geometry if len(outlines) else []) if g is not None and not g.is_empty]
    if not geoms:
        ax.text(0.5, 0.5, "no glaciers", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return fig
    x0, y0, x1, y1 = shapely.total_bounds(np.asarray(geoms, dtype=object))
    side = max(x1 - x0, y1 - y0, 2000.0)
    m = margin_fraction * side
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half_w, half_h = (x1 - x0) / 2 + m, (y1 - y0) / 2 + m
    half_w, half_h = max(half_w, 0.55 * half_h, 1000.0), max(half_h, 0.55 * half_w, 1000.0)  # not a sliver
    bounds = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
    simple = shapely.simplify(np.asarray(geoms, dtype=object), side / 3000.0, preserve_topology=True)
    paths = [p for p in (geometry_path(g) for g in simple) if p is not None]
    edge = 0.5 if len(paths) <= 200 else 0.15  # many small glaciers: thin edges, or the fill vanishes under them
    ax.add_collection(PathCollection(paths, facecolor=GLACIER_FILL, edgecolor=GLACIER_EDGE, linewidth=edge, zorder=3))
    grat = graticule(bounds, crs)
    for lines in (grat["meridians"], grat["parallels"]):
        for xs, ys in lines.values():
            ax.plot(xs, ys, color="0.55", lw=0.5, ls=(0, (4, 3)), zorder=1)
    ax.set_xlim(bounds[0], bounds[2])
    ax.set_ylim(bounds[1], bounds[3])
    ax.set_aspect("equal")
    frame_labels(ax, grat)
    if len(geoms) <= LABELLED_GLACIERS and "glacier_id" in outlines:
        for gid, geom in zip(outlines["glacier_id"], outlines.geometry):
            if geom is not None and not geom.is_empty:
                p = geom.representative_point()
                ax.text(p.x, p.y, str(gid).rsplit(".", 1)[-1], fontsize=5.5, ha="center", va="center", zorder=4,
                        color="black", path_effects=[patheffects.withStroke(linewidth=1.5, foreground="white")])
    scale_bar(ax, bounds[2] - bounds[0])
    north_arrow(ax, bounds, crs, at=emptiest_spot(simple, bounds))
    ax.set_xlabel(crs_label(crs), fontsize=6.5, color="0.3")
    return fig


def outline_map_png(title: str, outlines, crs=None) -> bytes:
    return png_bytes(outline_map_figure(title, outlines, crs))


# --- region: validation -------------------------------------------------------------------------


def _shape_panel(ax, table: pd.DataFrame, x: np.ndarray) -> None:
    """Per glacier at its outline dates: IoU (bars) under its model-grid ceiling (ticks), the share
    of the outlines' tongues under ice (dots), and the flag thresholds."""
    ax.bar(x, table["iou"], 0.6, color="tab:blue", label="IoU")
    ax.plot(x, table["ceiling_iou"], "_", color="k", ms=8, label="IoU ceiling (100 m grid)")
    ax.plot(x, table["tongue_covered"], "o", color="tab:red", ms=4, label="tongue (lowest fifth) under ice")
    ax.axhline(SHAPE_FLAG_IOU, color="tab:blue", lw=0.8, ls="--")
    ax.axhline(SHAPE_FLAG_TONGUE, color="tab:red", lw=0.8, ls="--")
    ax.set_xticks(x, [g.split(".")[-1] for g in table["glacier_id"]], rotation=90, fontsize=6)
    ax.set_ylim(0, 1.3)  # room above the bars for the legend
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.set_ylabel("share", fontsize=8)
    ax.set_title("Shape at the outline dates (flagged below the dashes)", fontsize=9)
    ax.legend(fontsize=6, loc="upper center", ncol=3, frameon=False)


def validation_png(table: pd.DataFrame) -> bytes:
    """Left: per glacier, the area misfit where the outline was fitted vs where it was left out
    (mean |%|). Next: where the ice is (IoU against its ceiling, tongues covered). Then:
    simulated volume against the reference volume, with the 1:1 line. Right,
    where there are geodetic balances: the simulated balance of their period against them (a fit
    where the simulation was calibrated to it, a validation where not)."""
    geo = table.dropna(subset=["geodetic_mb_mwe", "simulated_mb_mwe"]) if "geodetic_mb_mwe" in table else table.iloc[:0]
    ratios = [1.6, 1.6, 1, 1] if len(geo) else [1.6, 1.6, 1]
    fig = Figure(figsize=(10 + 3.5 * (len(ratios) - 2), 3.8))
    axes = fig.subplots(1, len(ratios), gridspec_kw={"width_ratios": ratios})
    ax, sx, bx = axes[0], axes[1], axes[2]
    x = np.arange(len(table))
    _shape_panel(sx, table, x)
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
        cx = axes[3]
        lo = float(min(geo["geodetic_mb_mwe"].min(), geo["simulated_mb_mwe"].min())) - 0.1
        hi = float(max(geo["geodetic_mb_mwe"].max(), geo["simulated_mb_mwe"].max())) + 0.1
        cx.plot([lo, hi], [lo, hi], color="0.6", lw=0.8)
        if "mb_calibration" in geo:
            fitted = geo["mb_calibration"].fillna("").astype(str) != ""
        else:
            fitted = geo["glacier_id"] == ""
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
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()
