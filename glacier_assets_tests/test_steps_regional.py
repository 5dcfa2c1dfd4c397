"""The regional outline files on tiny geometries, without IGM: the glaciers' outline files read
together, one epoch's mosaic in Albers (shapefile and GeoParquet), its figures, and the published
outline table of all epochs (steps/regional.py).

Two glaciers' simulated ice (tiny.py): B a slab of 4 x 4 model cells east of x = X0 + 400, A one
of 4 x 5 west of it that reaches one model cell over that edge. The products stay within each
model's ice cells (see test_steps_products.py): A's outline holds 320 cells of 25 m, B's 256,
and both hold the 4 x 16 cells of the model cell column they share, 0.04 km2.
"""

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box

from glacier_assets.constants import GEOGRAPHIC_CRS, albers_crs
from glacier_assets.steps.epoch import OUTLINE_COLUMNS, make_epoch_products, make_outline
from glacier_assets.steps.regional import make_regional_outlines, published_outline_table, read_outline_files
from glacier_assets.storage import read_parquet_metadata

from .tiny import (
    A_CODE,
    B_CODE,
    CELL_KM2,
    UTM,
    X0,
    Y0,
    A,
    B,
    model_grid,
    slab,
    write_fake_simulation,
)

A_KM2, B_KM2, TWICE_KM2 = 320 * CELL_KM2, 256 * CELL_KM2, 64 * CELL_KM2
C = "RGI60-13.00003"


@pytest.fixture
def outlines(tmp_path):
    """Outline files of 2000: A's slab from (X0, Y0) to X0 + 500, B's from (X0 + 400, Y0), C vanished."""
    paths = {}
    reaching = slab()
    reaching[4:8, 8] = 100.0  # one model cell column beyond x = X0 + 400
    for gid, code, x0, thk in ((A, A_CODE, X0 - 400.0, reaching), (B, B_CODE, X0, slab())):
        sim = write_fake_simulation(tmp_path / f"{gid}.nc", model_grid(x0=x0), {2000: thk}, glacier_id=gid)
        paths[gid] = tmp_path / f"{gid}_2000.parquet"
        make_epoch_products(sim, gid, 2000, code, tmp_path / f"{gid}.tif", tmp_path / f"{gid}_m.tif", paths[gid])
    paths[C] = tmp_path / f"{C}_2000.parquet"
    make_outline(None, C, 2000, paths[C])
    return paths


def _initial(crs=GEOGRAPHIC_CRS):
    """The initial outlines: the slabs' own squares, touching along x = X0 + 400."""
    squares = gpd.GeoSeries([box(X0, Y0, X0 + 400, Y0 + 400), box(X0 + 400, Y0, X0 + 800, Y0 + 400)], crs=UTM)
    return dict(zip([A, B], squares.to_crs(crs)))


def test_outline_files_are_read_one_frame_per_crs_as_geopandas_reads_them(outlines, tmp_path):
    # a fourth glacier in the neighbouring UTM zone, and a fifth with an extra column
    other = gpd.read_parquet(outlines[A]).to_crs("EPSG:32645").assign(glacier_id="RGI60-13.00004")
    other.to_parquet(tmp_path / "other.parquet")
    extra = gpd.read_parquet(outlines[B]).assign(glacier_id="RGI60-13.00005", note="extra")
    extra.to_parquet(tmp_path / "extra.parquet")
    paths = [outlines[A], tmp_path / "other.parquet", outlines[B], outlines[C], tmp_path / "extra.parquet"]
    frames = read_outline_files(paths)
    assert [f.crs.to_epsg() for f in frames] == [32646, 32645, 4326]  # in the order of each CRS's first file
    assert list(frames[0]["glacier_id"]) == [A, B, "RGI60-13.00005"]  # the extra column's file joins its CRS
    assert frames[0]["note"].isna().tolist() == [True, True, False]
    expected = pd.concat([gpd.read_parquet(p) for p in (outlines[A], outlines[B])], ignore_index=True)
    for col in OUTLINE_COLUMNS[:-1]:
        assert frames[0][col].iloc[:2].tolist() == expected[col].tolist()
    assert all(a.equals(b) for a, b in zip(frames[0].geometry.iloc[:2], expected.geometry))
    assert frames[1]["glacier_id"].tolist() == ["RGI60-13.00004"]
    assert frames[2]["glacier_id"].tolist() == [C] and frames[2].geometry.iloc[0] is None
    assert read_outline_files([]) == []


def test_one_epoch_in_albers_a_mosaic_without_the_vanished_glacier(outlines, tmp_path):
    shp, parquet = tmp_path / "regional" / "2000.shp", tmp_path / "regional" / "2000.parquet"
    figures = make_regional_outlines(list(outlines.values()), 2000, albers_crs(), shp, parquet, _initial(), "fp-r")
    table = figures.pop("table")
    assert figures == {"path": str(shp), "geoparquet": str(parquet), "crs": albers_crs(), "n_glaciers": 2,
                       "area_km2": pytest.approx(A_KM2 + B_KM2 - TWICE_KM2, rel=2e-3),  # nothing lost
                       "overlapping_pairs": 0, "overlap_area_km2": 0.0,  # nothing counted twice
                       "mosaicked_overlap_km2": pytest.approx(TWICE_KM2, rel=2e-3)}
    # the strip goes to the glacier whose initial outline is nearer: each keeps its side of the edge
    # (256 cells each)
    assert list(table["glacier_id"]) == [A, B] and (table["year"] == 2000).all()
    assert table["area_km2"].tolist() == pytest.approx([256 * CELL_KM2] * 2, abs=3 * CELL_KM2)
    stored = gpd.read_parquet(parquet)
    assert stored.crs.equals(table.crs) and stored.crs.to_proj4().startswith("+proj=aea")
    assert stored["area_km2"].tolist() == pytest.approx((stored.geometry.area / 1e6).tolist())
    assert read_parquet_metadata(parquet) == {"fingerprint": "fp-r"}
    from_shp = gpd.read_file(shp)
    assert list(from_shp["glacier_id"]) == [A, B] and from_shp.crs.to_proj4().startswith("+proj=aea")
    assert from_shp.geometry.area.sum() / 1e6 == pytest.approx(stored["area_km2"].sum(), rel=1e-9)


def test_without_initial_outlines_the_overlap_is_kept_and_counted(outlines, tmp_path):
    figures = make_regional_outlines([outlines[A], outlines[B]], 2000, albers_crs(), tmp_path / "r.shp",
                                     tmp_path / "r.parquet")
    assert figures["n_glaciers"] == 2 and figures["overlapping_pairs"] == 1
    assert figures["overlap_area_km2"] == pytest.approx(TWICE_KM2, rel=2e-3)
    assert figures["area_km2"] == pytest.approx(A_KM2 + B_KM2, rel=2e-3)
    assert read_parquet_metadata(tmp_path / "r.parquet") == {}


def test_an_epoch_where_every_glacier_vanished_makes_empty_files(outlines, tmp_path):
    figures = make_regional_outlines([outlines[C]], 2000, albers_crs(), tmp_path / "r.shp", tmp_path / "r.parquet",
                                     _initial())
    assert figures["n_glaciers"] == 0 and figures["area_km2"] == 0.0 and len(figures["table"]) == 0
    assert len(gpd.read_parquet(tmp_path / "r.parquet")) == 0


def test_the_published_table_gathers_every_epochs_file(outlines, tmp_path):
    files = []
    for year in (1990, 2000):
        files.append(tmp_path / f"{year}.parquet")
        make_regional_outlines(list(outlines.values()), year, albers_crs(), tmp_path / f"{year}.shp", files[-1],
                               _initial())
    table = published_outline_table([*files, tmp_path / "2010.parquet"])  # 2010 not made: left out
    assert len(table) == 4 and table.crs.to_proj4().startswith("+proj=aea")
    assert sorted(zip(table["year"], table["glacier_id"])) == [(1990, A), (1990, B), (2000, A), (2000, B)]
    empty = published_outline_table([tmp_path / "2010.parquet"])
    assert len(empty) == 0 and list(empty.columns) == OUTLINE_COLUMNS
