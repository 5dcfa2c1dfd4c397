"""The figures (plots.py, map_furniture.py) on tiny inputs: the PNGs decode at their size, and what a reader of the
maps relies on holds: the graticule's labels are the degrees where their lines cross the frame,
the scale bar is a nice length, the colour bar spans the data, the outlines are drawn at their
dates, the reference volume sits at its outline's model time. No IGM."""

from __future__ import annotations

import io
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image
from pyproj import Transformer
from shapely.geometry import box

from glacier_assets import map_furniture, plots
from glacier_assets.constants import EPOCHS, GEOGRAPHIC_CRS, ICE_THRESHOLD_M, albers_crs

UTM46 = "EPSG:32646"
ALBERS = albers_crs()


def decoded(png: bytes, fig) -> Image.Image:
    img = Image.open(io.BytesIO(png))
    img.load()
    w, h = fig.get_size_inches()
    assert img.format == "PNG" and img.size == (round(w * plots.DPI), round(h * plots.DPI))
    return img


def texts(fig) -> list[str]:
    """Every text drawn on the figure: titles, labels, legend entries, the scale bar's."""
    from matplotlib.offsetbox import TextArea
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(lambda a: isinstance(a, (Text, TextArea)))]


def albers_box(lon: float, lat: float, half_m: float) -> tuple[float, float, float, float]:
    x, y = Transformer.from_crs(GEOGRAPHIC_CRS, ALBERS, always_xy=True).transform(lon, lat)
    return (x - half_m, y - half_m, x + half_m, y + half_m)


# --- furniture -----------------------------------------------------------------------------------


@pytest.mark.parametrize("limit, nice", [(2400.0, 2000.0), (1000.0, 1000.0), (999.0, 500.0), (730.0, 500.0),
                                         (0.3, 0.2), (61_000.0, 50_000.0), (150.0, 100.0)])
def test_a_scale_bar_is_the_largest_nice_length_that_fits(limit, nice):
    assert map_furniture.nice_length(limit) == pytest.approx(nice)
    with pytest.raises(ValueError):
        map_furniture.nice_length(0.0)


def test_lengths_and_degrees_are_labelled_as_on_a_map():
    assert map_furniture.length_label(500) == "500 m" and map_furniture.length_label(2000) == "2 km"
    assert map_furniture.length_label(2500) == "2.5 km"
    assert map_furniture.degree_label(91.25, 0.25, "lon") == "91.25°E"
    assert map_furniture.degree_label(33.4, 0.1, "lat") == "33.4°N"
    assert map_furniture.degree_label(-0.5, 0.5, "lon") == "0.5°W" and map_furniture.degree_label(-12.0, 1.0, "lat") == "12°S"
    assert map_furniture.degree_label(0.0, 0.1, "lon") == "0.0°"


def _degrees(label: str) -> float:
    value = float(re.match(r"([\d.]+)°", label).group(1))
    return -value if label.endswith(("W", "S")) else value


def test_the_graticule_labels_are_the_degrees_where_its_lines_cross_the_frame():
    bounds = albers_box(91.1, 33.4, 20_000.0)  # 40 km square around the demo region
    grat = map_furniture.graticule(bounds, ALBERS)
    inverse = Transformer.from_crs(ALBERS, GEOGRAPHIC_CRS, always_xy=True)
    corners = inverse.transform([bounds[0], bounds[2], bounds[0], bounds[2]], [bounds[1], bounds[1], bounds[3], bounds[3]])
    lon_lo, lon_hi, lat_lo, lat_hi = min(corners[0]), max(corners[0]), min(corners[1]), max(corners[1])
    assert grat["step"] == 0.1  # ~0.45 degrees across: lines every 0.1 degree
    assert len(grat["bottom"]) >= 3 and len(grat["left"]) >= 3
    for x, label in grat["bottom"] + grat["top"]:
        assert label.endswith("E") and lon_lo <= _degrees(label) <= lon_hi
        assert bounds[0] <= x <= bounds[2]
    for y, label in grat["left"] + grat["right"]:
        assert label.endswith("N") and lat_lo <= _degrees(label) <= lat_hi
        assert bounds[1] <= y <= bounds[3]
    for x, label in grat["bottom"]:  # at its position on the frame, the meridian's own longitude
        lon, _ = inverse.transform(x, bounds[1])
        assert lon == pytest.approx(_degrees(label), abs=1e-4)
    for y, label in grat["left"]:
        _, lat = inverse.transform(bounds[0], y)
        assert lat == pytest.approx(_degrees(label), abs=1e-4)
    # the demo region is 14 degrees west of the Albers central meridian: meridians lean, and converge to the north
    xs, ys = grat["meridians"][91.1]
    assert xs[-1] > xs[0] and ys[-1] > ys[0]


def test_a_strongly_rotated_graticule_is_still_labelled():
    """Ötztal (11 E) in the region's Albers (lon_0 105 E): meridians ~60 degrees from the map's up."""
    grat = map_furniture.graticule(albers_box(10.9, 46.8, 12_000.0), ALBERS)
    labels = [s for e in map_furniture.EDGES for _, s in grat[e]]
    assert sum(s.endswith("E") for s in labels) >= 2 and sum(s.endswith("N") for s in labels) >= 2
    for edge in map_furniture.EDGES:  # no two labels on top of each other
        pos = [p for p, _ in grat[edge]]
        assert all(b - a > 0.08 * 24_000 for a, b in zip(pos, pos[1:]))


def test_the_crs_is_named_as_a_caption_would():
    assert map_furniture.crs_label(UTM46) == "WGS 84 / UTM zone 46N (EPSG:32646)"
    label = map_furniture.crs_label(ALBERS)
    assert label.startswith("Albers equal-area conic") and "lon₀ 105°" in label and "25°" in label and "47°" in label


def test_the_hillshade_is_lit_from_the_north_west():
    rows, cols = np.mgrid[0:20, 0:20].astype(float)  # rows run north to south
    facing_nw = (rows + cols) * 50.0  # rises to the south-east
    shade_nw, shade_se = map_furniture.hillshade(facing_nw, 100.0), map_furniture.hillshade(-facing_nw, 100.0)
    assert shade_nw[10, 10] > 0.8 > 0.2 > shade_se[10, 10]


# --- per glacier: thickness maps ---------------------------------------------------------------------


def _dome(n: int = 80, peak: float = 57.3) -> np.ndarray:
    r, c = np.mgrid[0:n, 0:n]
    return np.clip(peak * (1 - ((r - n / 2) ** 2 + (c - n / 2) ** 2) / (n / 4) ** 2), 0, None)


EXTENT = (300_000.0, 302_000.0, 3_710_000.0, 3_712_000.0)  # 2 km square: 80 cells of 25 m, 20 of 100 m


def test_the_thickness_map_spans_the_data_and_names_its_outlines():
    thk = _dome()
    thinner = 0.5 * thk
    outline = box(300_500.0, 3_710_500.0, 301_500.0, 3_711_500.0)
    dem = 5000.0 + np.add.outer(np.arange(20.0), np.arange(20.0)) * 10.0
    panels = [("1960", thinner, None), ("1978 (outline 1977)", thk, outline)]
    fig = plots.thickness_map_figure("RGI60-13.99999", panels, dem, EXTENT, UTM46)
    maps = [ax for ax in fig.axes if len(ax.images) == 2]  # hillshade and thickness
    assert len(maps) == 2
    for ax in maps:  # one colour scale: 0 to the thickest ice of all panels
        assert ax.images[1].get_clim() == (0.0, pytest.approx(57.3))
        assert ax.images[0].get_cmap().name == "gray"
        assert ax.images[1].get_cmap().name == plots.THICKNESS_CMAP
    cbar = next(ax for ax in fig.axes if ax.get_ylabel() == "ice thickness (m)")
    assert cbar.get_ylim() == pytest.approx((0.0, 57.3))
    # the simulated glacier is the threshold's contour, the observed outline a red line, both in the legend
    contours = [c for ax in maps for c in ax.collections if hasattr(c, "levels")]
    assert [list(c.levels) for c in contours] == [[ICE_THRESHOLD_M]] * 2
    red = [ln for ln in maps[1].lines if ln.get_color() == plots.OBSERVED_COLOR]
    assert len(red) == 1 and np.allclose(red[0].get_xdata().min(), 300_500.0)
    assert not [ln for ln in maps[0].lines if ln.get_color() == plots.OBSERVED_COLOR]  # no outline in 1960
    words = texts(fig)
    assert "observed outline (its date)" in words and f"simulated glacier (thickness ≥ {ICE_THRESHOLD_M:g} m)" in words
    assert any("UTM zone 46N (EPSG:32646)" in t for t in words) and any("25 m grid" in t for t in words)
    # zoomed to the ice with a 500 m margin; a scale bar of at most a quarter of that width; axes in km
    x0, x1 = maps[0].get_xlim()
    assert (x0, x1) == (pytest.approx(300_000.0), pytest.approx(302_000.0))
    assert "500 m" in words
    assert maps[0].xaxis.get_major_formatter()(301_000.0, 0) == "301"
    assert maps[0].get_ylabel() == "northing (km)"
    decoded(plots.png_bytes(fig), fig)


def test_the_thickness_map_without_a_dem_or_ice():
    fig = plots.thickness_map_figure("g", [("2020", np.zeros((80, 80)), None)], None, EXTENT, UTM46)
    (ax,) = [ax for ax in fig.axes if ax.images]
    assert len(ax.images) == 1 and ax.images[0].get_clim() == (0.0, 1.0)
    assert not any("hillshade" in t for t in texts(fig))
    assert ax.get_xlim() == (pytest.approx(EXTENT[0]), pytest.approx(EXTENT[1]))  # nothing to zoom to
    decoded(plots.png_bytes(fig), fig)


def test_the_zoom_box_holds_the_ice_and_the_outlines_within_the_grid():
    ice = np.zeros((80, 80), bool)
    ice[30:40, 40:50] = True  # x 301,000-301,250, y 3,711,000-3,711,250
    assert map_furniture.zoom_box(EXTENT, [ice]) == pytest.approx((300_500.0, 301_750.0, 3_710_500.0, 3_711_750.0))
    far = box(301_800.0, 3_711_800.0, 301_900.0, 3_711_900.0)
    assert map_furniture.zoom_box(EXTENT, [ice, far]) == pytest.approx((300_500.0, 302_000.0, 3_710_500.0, 3_712_000.0))


# --- per glacier: area and volume ------------------------------------------------------------------


def test_the_area_volume_series_marks_observations_epochs_and_the_reference():
    years = list(EPOCHS) + [1978, 2002]
    series = pd.DataFrame({"year": years, "area_km2": np.linspace(2.0, 1.5, len(years)),
                           "volume_km3": np.linspace(0.1, 0.06, len(years))})
    observed = {1978: 1.9, 2002: 1.7}
    yearly = pd.Series(np.linspace(0.11, 0.05, 91), index=range(1930, 2021))
    fig = plots.area_volume_figure("RGI60-13.99999", series, observed, volume_series=yearly,
                                   reference=(0.08, 2002, "Farinotti et al. (2019) consensus"))
    area_ax, vol_ax = fig.axes[:2]
    points = [ln for ln in area_ax.lines if ln.get_marker() == "s"]
    assert len(points) == 1 and list(points[0].get_xdata()) == [1978, 2002]
    assert [t.get_text() for t in area_ax.texts] == ["1977", "2001"]  # the outlines' acquisition years
    (ref,) = [ln for ln in vol_ax.lines if ln.get_marker() == "D"]
    assert list(ref.get_xdata()) == [2002] and list(ref.get_ydata()) == [0.08]
    assert "reference volume (Farinotti et al. (2019) consensus, 2001)" in texts(fig)
    epochs_marked = [ln for ln in vol_ax.lines if ln.get_marker() == "o"]
    assert len(epochs_marked) == 1 and list(epochs_marked[0].get_xdata()) == list(EPOCHS)
    assert vol_ax.get_xlim() == (EPOCHS[0] - 2, EPOCHS[-1] + 2)  # no spin-up
    assert area_ax.get_ylabel() == "area (km²)" and vol_ax.get_ylabel() == "volume (km³)"
    decoded(plots.png_bytes(fig), fig)


# --- per epoch: regional outlines --------------------------------------------------------------------


def test_the_regional_map_is_zoomed_to_the_glaciers_with_a_graticule():
    x0, y0, _, _ = albers_box(91.1, 33.4, 0.0)
    table = gpd.GeoDataFrame({"glacier_id": ["RGI60-13.90001", "RGI60-13.90002"]},
                             geometry=[box(x0, y0, x0 + 3000, y0 + 2000), box(x0 + 12_000, y0 + 8000, x0 + 14_000, y0 + 9000)],
                             crs=ALBERS)
    fig = plots.outline_map_figure("Glacier outlines 2020: 2 glaciers, 8.00 km²", table)
    ax = fig.axes[0]
    (xmin, xmax), (ymin, ymax) = ax.get_xlim(), ax.get_ylim()
    assert xmin < x0 and xmax > x0 + 14_000 and ymin < y0 and ymax > y0 + 9000  # all glaciers in view...
    assert xmax - xmin < 20_000 and ymax - ymin < 20_000  # ...zoomed to them
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels and all(lab.endswith("E") and 91.0 <= _degrees(lab) <= 91.3 for lab in labels)
    assert all(t.get_text().endswith("N") for t in ax.get_yticklabels())
    words = texts(fig)
    assert ax.get_title() == "Glacier outlines 2020: 2 glaciers, 8.00 km²"
    assert "90001" in words and "90002" in words  # few glaciers: named
    assert "N" in words and any(w.endswith(" km") for w in words)  # north arrow, scale bar
    assert ax.get_xlabel().startswith("Albers equal-area conic")
    decoded(plots.png_bytes(fig), fig)
    empty = plots.outline_map_figure("Glacier outlines 2020: 0 glaciers", table.iloc[:0])
    assert "no glaciers" in texts(empty)
    decoded(plots.png_bytes(empty), empty)


def test_pngs_are_written_atomically_and_embedded(tmp_path):
    png = plots.outline_map_png("t", gpd.GeoDataFrame(geometry=[], crs=ALBERS))
    path = plots.save_png(tmp_path / "a" / "b.png", png)
    assert path.read_bytes() == png and [p.name for p in path.parent.iterdir()] == ["b.png"]
    assert plots.markdown_image(png, "alt").startswith("![alt](data:image/png;base64,iVBORw0KGgo")


# --- the call site: which states and outlines a glacier's figures show --------------------------------


def test_a_glaciers_figures_show_its_outlines_at_their_dates(tmp_path, monkeypatch):
    from glacier_assets.assets import simulation
    from glacier_assets.simulation_file import SimulationFile

    x = 300_050.0 + 100.0 * np.arange(24)
    y = 3_712_350.0 - 100.0 * np.arange(24)
    dome = np.clip(60.0 * (1 - ((np.arange(24)[:, None] - 12) ** 2 + (np.arange(24)[None] - 12) ** 2) / 49.0), 0, None)
    thk = np.stack([dome * (1 - 0.01 * i) for i in range(len(EPOCHS))]).astype("float32")
    yearly = {int(t): (v, 1.0, -0.5) for t, v in zip(np.arange(1930, 2021), np.linspace(0.1, 0.05, 91))}
    SimulationFile(tmp_path / "sim.nc").write(x, y, dict(zip(EPOCHS, thk)), {1978: thk[3], 2002: thk[8]}, yearly,
                                              {"crs": UTM46})
    dom = xr.Dataset({"dem": (("y", "x"), np.full((24, 24), 5000.0) + np.arange(24)[None] * 20.0)},
                     coords={"x": x, "y": y}, attrs={"dem_year": 2000})
    dom.to_netcdf(tmp_path / "dom.nc")
    to_lonlat = Transformer.from_crs(UTM46, GEOGRAPHIC_CRS, always_xy=True)
    square = box(*to_lonlat.transform(300_800.0, 3_710_800.0), *to_lonlat.transform(301_600.0, 3_711_600.0))
    rows = gpd.GeoDataFrame({"glacier_id": ["g", "g"], "role": ["initial", "control"], "year": [1977, 2001],
                             "area_km2": [0.64, 0.6]}, geometry=[square, square], crs=GEOGRAPHIC_CRS)
    seen = {}
    monkeypatch.setattr(simulation, "thickness_map_png", lambda gid, panels, dem, extent, crs, **kw: seen.update(
        panels=panels, dem=dem, extent=extent, crs=crs, **kw) or b"maps")
    monkeypatch.setattr(simulation, "area_volume_png", lambda gid, series, observed, **kw: seen.update(
        series=series, observed=observed, **kw) or b"series")
    assert simulation.glacier_figures("g", SimulationFile(tmp_path / "sim.nc").load(), tmp_path / "dom.nc", rows,
                                      (0.05, 2000, "Farinotti et al. (2019) consensus")) == (b"series", b"maps")
    # the first epoch, each outline at its model time, the last epoch
    assert [p[0] for p in seen["panels"]] == ["1960", "1978 (outline 1977)", "2002 (outline 2001)", "2020"]
    assert seen["panels"][0][2] is None and seen["panels"][3][2] is None
    b = seen["panels"][1][2].bounds  # the outline, in the grid's CRS
    assert b == pytest.approx((300_800.0, 3_710_800.0, 301_600.0, 3_711_600.0), abs=25.0)  # a lon/lat box in UTM
    assert seen["panels"][1][1].shape == (96, 96)  # the 25 m product grid
    assert seen["extent"] == (300_000.0, 302_400.0, 3_710_000.0, 3_712_400.0) and seen["crs"] == UTM46
    assert seen["dem"].shape == (24, 24) and seen["dem_label"] == "DEM of 2000"
    # the reference of 2000 belongs to the outline of 2001: compared at 2002, as the validation does
    assert seen["reference"] == (0.05, 2002, "Farinotti et al. (2019) consensus")
    assert seen["observed"] == {1978: 0.64, 2002: 0.6}
    assert set(seen["series"]["year"]) == set(EPOCHS) | {1978, 2002}
    assert seen["volume_series"].index[0] == 1930


@pytest.mark.parametrize("n, grid", [(1, (1, 1)), (3, (1, 3)), (4, (2, 2)), (5, (2, 3)), (6, (2, 3))])
def test_every_column_of_thickness_panels_has_labelled_km(n, grid):
    panels = [(str(1960 + 5 * i), _dome(), None) for i in range(n)]
    fig = plots.thickness_map_figure("g", panels, None, EXTENT, UTM46)
    maps = [ax for ax in fig.axes if ax.images]
    assert len(maps) == n and maps[0].get_subplotspec().get_gridspec().get_geometry() == grid
    fig.canvas.draw()
    labelled = {round(ax.get_position().x0, 3) for ax in maps if any(t.get_text() for t in ax.get_xticklabels())}
    assert len(labelled) == min(n, grid[1])  # one per column


def test_the_north_arrow_goes_where_no_glacier_is():
    bounds = (0.0, 0.0, 10_000.0, 10_000.0)
    top_right = box(8_500, 7_500, 10_000, 9_000)
    assert map_furniture.emptiest_spot([top_right], bounds) == map_furniture.NORTH_ARROW_SPOTS[1]  # top left
    assert map_furniture.emptiest_spot([box(0, 0, 1, 1)], bounds) == map_furniture.NORTH_ARROW_SPOTS[0]  # all free: top right
    assert map_furniture.emptiest_spot([top_right, box(0, 7_500, 1_500, 9_000)], bounds) == map_furniture.NORTH_ARROW_SPOTS[2]
