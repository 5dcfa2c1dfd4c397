"""Map furniture for the project's figures: scale bar, graticule, north arrow, CRS names, the
hillshade under a thickness map, and the frame a glacier is zoomed to. Plain functions on axes,
bounds and CRSs; `plots.py` draws the figures with them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.colors import LightSource
from matplotlib.path import Path as MplPath
from matplotlib.ticker import FuncFormatter, MaxNLocator

from .constants import GEOGRAPHIC_CRS

SCALE_FRACTION = 0.25  # a scale bar is at most this share of the map's width
NICE_STEPS = (1.0, 2.0, 5.0)
GRATICULE_STEPS_DEG = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0)
EDGES = ("bottom", "top", "left", "right")
NORTH_ARROW_SPOTS = ((0.93, 0.83), (0.07, 0.83), (0.93, 0.17))  # axes fractions: top right, top left, bottom right


def nice_length(limit: float) -> float:
    """The largest 1, 2 or 5 x 10^k not above `limit` (> 0): a scale bar's length."""
    if not limit > 0:
        raise ValueError(f"a scale bar needs a positive length, not {limit}")
    power = 10.0 ** math.floor(math.log10(limit))
    return max(s * power for s in NICE_STEPS if s * power <= limit * (1 + 1e-9))


def length_label(metres: float) -> str:
    return f"{metres / 1000:g} km" if metres >= 1000 else f"{metres:g} m"


def scale_bar(ax, width_m: float, *, fraction: float = SCALE_FRACTION, units_per_m: float = 1.0,
              loc: str = "lower left") -> float:
    """A black-and-white scale bar of a nice length (at most `fraction` of `width_m`, the map's
    width in metres) on `ax`, whose data units are `units_per_m` per metre. Returns its length (m)."""
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    length = nice_length(fraction * width_m)
    ylim = ax.get_ylim()
    bar = AnchoredSizeBar(ax.transData, length * units_per_m, length_label(length), loc, pad=0.35, sep=3,
                          frameon=True, size_vertical=abs(ylim[1] - ylim[0]) * 0.012, color="black",
                          fontproperties={"size": 7})
    bar.patch.set(facecolor="white", alpha=0.8, edgecolor="none")
    ax.add_artist(bar)
    return length


def crs_label(crs) -> str:
    """A CRS named as a figure caption would: its name and EPSG code; an Albers conic with its
    parameters."""
    from pyproj import CRS

    c = CRS.from_user_input(crs)
    op = c.coordinate_operation
    if op is not None and op.method_name.lower().startswith("albers"):
        p = {q.name.lower(): q.value for q in op.params}
        lon0 = p.get("longitude of false origin", p.get("longitude of natural origin", 0.0))
        lat1 = p.get("latitude of 1st standard parallel", 0.0)
        lat2 = p.get("latitude of 2nd standard parallel", 0.0)
        datum = "WGS 84" if c.datum is not None and "1984" in c.datum.name else (c.datum.name if c.datum else "")
        return f"Albers equal-area conic (lon₀ {lon0:g}°, standard parallels {lat1:g}° and {lat2:g}°), {datum}"
    epsg = c.to_epsg()
    return f"{c.name} (EPSG:{epsg})" if epsg else c.name


def _step_decimals(step: float) -> int:
    for d in range(0, 6):
        if abs(round(step, d) - step) < 1e-9:
            return d
    return 6


def degree_label(value: float, step: float, axis: str) -> str:
    """91.25°E, 33.4°N, 0°: as many decimals as the graticule's step needs."""
    d = _step_decimals(step)
    text = f"{abs(value):.{d}f}°"
    if round(value, d) == 0:
        return text
    return text + (("E" if value > 0 else "W") if axis == "lon" else ("N" if value > 0 else "S"))


def _crossings(xs: np.ndarray, ys: np.ndarray, at: float, along: str) -> list[float]:
    """Where a polyline (xs, ys) crosses x = at (along="x") or y = at (along="y"): the other coordinate."""
    a, b = (xs, ys) if along == "x" else (ys, xs)
    out = []
    for i in range(len(a) - 1):
        if (a[i] - at) * (a[i + 1] - at) <= 0 and a[i] != a[i + 1]:
            t = (at - a[i]) / (a[i + 1] - a[i])
            out.append(float(b[i] + t * (b[i + 1] - b[i])))
    return out


def graticule(bounds: tuple[float, float, float, float], crs, target_lines: int = 5) -> dict:
    """Meridians and parallels of a nice step (`GRATICULE_STEPS_DEG`) over a projected box
    `bounds` (xmin, ymin, xmax, ymax in `crs`): at most about `target_lines` across its wider
    side. Returns {"step", "meridians": {lon: (xs, ys)}, "parallels": {lat: (xs, ys)}, and per
    edge of the box ("bottom", "top", "left", "right") its labels [(position along the edge,
    label)]}: meridians on the bottom and top edges, parallels on the left and right ones; where
    the graticule is so rotated (a conic far from its central meridian) that fewer than two
    meridians (parallels) are labelled so, also where they cross the other edges. Labels closer
    than 8 % of an edge to one before are left out."""
    from pyproj import Transformer

    xmin, ymin, xmax, ymax = bounds
    inverse = Transformer.from_crs(crs, GEOGRAPHIC_CRS, always_xy=True)
    forward = Transformer.from_crs(GEOGRAPHIC_CRS, crs, always_xy=True)
    t = np.linspace(0.0, 1.0, 41)
    width, height = xmax - xmin, ymax - ymin
    edge_x = np.concatenate([xmin + t * width, np.full_like(t, xmax), xmax - t * width, np.full_like(t, xmin)])
    edge_y = np.concatenate([np.full_like(t, ymin), ymin + t * height, np.full_like(t, ymax), ymax - t * height])
    lon, lat = inverse.transform(edge_x, edge_y)
    lon0, lon1, lat0, lat1 = float(np.min(lon)), float(np.max(lon)), float(np.min(lat)), float(np.max(lat))
    span = max(lon1 - lon0, lat1 - lat0)
    step = next((s for s in GRATICULE_STEPS_DEG if span / s <= target_lines + 1), GRATICULE_STEPS_DEG[-1])
    lons = np.arange(math.floor(lon0 / step), math.ceil(lon1 / step) + 1) * step
    lats = np.arange(math.floor(lat0 / step), math.ceil(lat1 / step) + 1) * step
    lats = lats[(lats > -90) & (lats < 90)]
    dense_lat = np.linspace(max(lat0 - step, -89.9), min(lat1 + step, 89.9), 200)
    dense_lon = np.linspace(lon0 - step, lon1 + step, 200)
    out: dict[str, Any] = {"step": step, "meridians": {}, "parallels": {}, **{e: [] for e in EDGES}}
    for value in lons:
        xs, ys = forward.transform(np.full_like(dense_lat, value), dense_lat)
        out["meridians"][round(float(value), 6)] = (np.asarray(xs), np.asarray(ys))
    for value in lats:
        xs, ys = forward.transform(dense_lon, np.full_like(dense_lon, value))
        out["parallels"][round(float(value), 6)] = (np.asarray(xs), np.asarray(ys))
    edges = {"bottom": (ymin, "y", xmin, xmax), "top": (ymax, "y", xmin, xmax),
             "left": (xmin, "x", ymin, ymax), "right": (xmax, "x", ymin, ymax)}

    def label(kind: str, names: tuple[str, ...]) -> int:
        lines, axis = (out["meridians"], "lon") if kind == "meridians" else (out["parallels"], "lat")
        count = 0
        for edge in names:
            at, along, lo, hi = edges[edge]
            for value, (xs, ys) in lines.items():
                for pos in _crossings(xs, ys, at, along):
                    if lo <= pos <= hi and all(abs(pos - p) > 0.08 * (hi - lo) for p, _ in out[edge]):
                        out[edge].append((pos, degree_label(value, step, axis)))
                        count += 1
        return count

    if label("meridians", ("bottom", "top")) < 2:
        label("meridians", ("left", "right"))
    if label("parallels", ("left", "right")) < 2:
        label("parallels", ("bottom", "top"))
    for edge in EDGES:
        out[edge].sort()
    return out


def north_arrow(ax, bounds: tuple[float, float, float, float], crs,
                at: tuple[float, float] = NORTH_ARROW_SPOTS[0]) -> float:
    """An arrow pointing to true north at the map's centre (meridians converge in a conic
    projection), drawn at `at` (axes fraction). Returns its angle from the map's up, degrees
    clockwise."""
    from pyproj import Transformer

    xmin, ymin, xmax, ymax = bounds
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    lon, lat = Transformer.from_crs(crs, GEOGRAPHIC_CRS, always_xy=True).transform(cx, cy)
    nx, ny = Transformer.from_crs(GEOGRAPHIC_CRS, crs, always_xy=True).transform(lon, min(lat + 0.01, 89.99))
    angle = math.atan2(nx - cx, ny - cy)
    (x0, y0), r = at, 0.07
    dx, dy = r * math.sin(angle), r * math.cos(angle)
    ax.annotate("", xy=(x0 + dx / 2, y0 + dy / 2), xytext=(x0 - dx / 2, y0 - dy / 2), xycoords="axes fraction",
                arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.2})
    ax.text(x0 + 0.75 * dx, y0 + 0.75 * dy, "N", transform=ax.transAxes, ha="center", va="center",
            fontsize=8, fontweight="bold")
    return math.degrees(angle)


def km_axes(ax, *, xlabel: bool, ylabel: bool) -> None:
    fmt = FuncFormatter(lambda v, _: f"{v / 1000:g}")
    ax.xaxis.set_major_formatter(fmt)
    ax.yaxis.set_major_formatter(fmt)
    ax.xaxis.set_major_locator(MaxNLocator(3))
    ax.yaxis.set_major_locator(MaxNLocator(3))
    ax.tick_params(labelsize=7)
    if xlabel:
        ax.set_xlabel("easting (km)", fontsize=7)
    if ylabel:
        ax.set_ylabel("northing (km)", fontsize=7)


def polygons(geom):
    if geom is None or geom.is_empty:
        return []
    if geom.geom_type == "Polygon":
        return [geom]
    return [g for part in getattr(geom, "geoms", []) for g in polygons(part)]


def rings(geom):
    for poly in polygons(geom):
        yield np.asarray(poly.exterior.coords)
        for ring in poly.interiors:
            yield np.asarray(ring.coords)


def geometry_path(geom) -> MplPath | None:
    """One compound path of a (multi)polygon, holes included (even-odd filling)."""
    verts, codes = [], []
    for ring in rings(geom):
        if len(ring) < 3:
            continue
        verts.append(ring)
        codes.append(np.r_[MplPath.MOVETO, np.full(len(ring) - 2, MplPath.LINETO), MplPath.CLOSEPOLY])
    return MplPath(np.concatenate(verts), np.concatenate(codes).astype(np.uint8)) if verts else None


def hillshade(dem: np.ndarray, res: float) -> np.ndarray:
    """Hillshade (0..1) of a north-up DEM (rows north to south), lit from the north-west at 45°."""
    dem = np.asarray(dem, dtype="float64")
    filled = np.where(np.isfinite(dem), dem, np.nanmean(dem) if np.isfinite(dem).any() else 0.0)
    return LightSource(azdeg=315, altdeg=45).hillshade(filled, vert_exag=1.0, dx=res, dy=res)


def zoom_box(extent: tuple[float, float, float, float], masks_and_geoms, margin_m: float = 500.0,
             margin_fraction: float = 0.15) -> tuple[float, float, float, float]:
    """(xmin, xmax, ymin, ymax) around the ice and the outlines, with a margin, within `extent`."""
    xmin, xmax, ymin, ymax = extent
    boxes = []
    for item in masks_and_geoms:
        if isinstance(item, np.ndarray):
            rows, cols = np.nonzero(item)
            if len(rows):
                ny, nx = item.shape
                dx, dy = (xmax - xmin) / nx, (ymax - ymin) / ny
                boxes.append((xmin + cols.min() * dx, xmin + (cols.max() + 1) * dx,
                              ymax - (rows.max() + 1) * dy, ymax - rows.min() * dy))
        elif item is not None and not item.is_empty:
            b = item.bounds
            boxes.append((b[0], b[2], b[1], b[3]))
    if not boxes:
        return extent
    x0, x1 = min(b[0] for b in boxes), max(b[1] for b in boxes)
    y0, y1 = min(b[2] for b in boxes), max(b[3] for b in boxes)
    m = max(margin_m, margin_fraction * max(x1 - x0, y1 - y0))
    return max(xmin, x0 - m), min(xmax, x1 + m), max(ymin, y0 - m), min(ymax, y1 + m)


def emptiest_spot(geoms, bounds: tuple[float, float, float, float], half: float = 0.08) -> tuple[float, float]:
    """Of NORTH_ARROW_SPOTS, the one whose square (2 x `half` of the map's width and height)
    covers the least glacier area, so the north arrow hides no glacier if it can help it."""
    import shapely

    xmin, ymin, xmax, ymax = bounds
    w, h = xmax - xmin, ymax - ymin

    def covered(spot: tuple[float, float]) -> float:
        x, y = xmin + spot[0] * w, ymin + spot[1] * h
        square = shapely.box(x - half * w, y - half * h, x + half * w, y + half * h)
        return float(shapely.area(shapely.intersection(np.asarray(geoms, dtype=object), square)).sum())

    return min(NORTH_ARROW_SPOTS, key=covered)


def frame_labels(ax, grat: dict) -> None:
    """The graticule's labels as ticks on the four sides of the map frame."""
    top, right = ax.secondary_xaxis("top"), ax.secondary_yaxis("right")
    for axis, edge in ((ax.xaxis, "bottom"), (top.xaxis, "top"), (ax.yaxis, "left"), (right.yaxis, "right")):
        axis.set_ticks([p for p, _ in grat[edge]], [s for _, s in grat[edge]])
    for a in (ax, top, right):
        a.tick_params(labelsize=6.5, direction="out", length=3)
    for labels in (ax.get_yticklabels(), right.get_yticklabels()):
        for text in labels:
            text.set(rotation=90, verticalalignment="center")
