"""The per-glacier, per-epoch products on tiny rasters, without IGM: the 25 m thickness, the mask,
the outline, all three in one go, and the audit of a glacier's products (steps/epoch.py, steps/reports.py).

The simulations are tiny NetCDFs in write_simulation's layout (tiny.py). Their figures are worked
out by hand: a slab of ice 100 m thick on n x n model cells of 100 m, refined bilinearly to 25 m
within the model's ice cells (science/resample.py), covers its own 4n x 4n fine cells; towards the
ice-free neighbours the thickness falls to 100 m x 7/8 and x 5/8 in the outer two fine rows (a
corner: 100 m x (5/8)^2 = 39.0625 m). Ice thinner than 2 m is no glacier on the model grid: no
product at all.
"""

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from glacier_assets.constants import EPOCHS, MASK_NODATA, THICKNESS_NODATA
from glacier_assets.errors import GlacierError
from glacier_assets.science.grids import Grid
from glacier_assets.steps.epoch import make_epoch_products, make_mask, make_outline, make_thickness, read_thickness
from glacier_assets.steps.reports import AUDIT_COLUMNS, audit_glacier
from glacier_assets.storage import read_parquet_metadata, read_raster, write_cog

from .tiny import (
    A_CODE,
    B_CODE,
    CELL_KM2,
    UTM,
    X0,
    Y0,
    A,
    model_grid,
    slab,
    write_fake_simulation,
)

SLAB_KM2 = 16 * 16 * CELL_KM2  # 4 x 4 model cells: 0.16 km2
SLAB_KM3 = 100 * (2 * (5 / 8 + 7 / 8) + 12) ** 2 * 625 / 1e9  # each axis's weights 5/8, 7/8, 1 x 12, 7/8, 5/8


def _ring() -> np.ndarray:
    """6 x 6 model cells of 100 m ice with a 2 x 2 hole in the middle."""
    thk = slab(12, 3, 9)
    thk[5:7, 5:7] = 0.0
    return thk


@pytest.fixture
def sim(tmp_path):
    """Epochs: 2000 a 4 x 4 slab, 2010 the ring, 1990 ice 1.5 m thick (under the threshold), the
    others none."""
    return write_fake_simulation(tmp_path / "sim.nc", model_grid(),
                                 {2000: slab(), 2010: _ring(), 1990: slab(thickness=1.5)})


def test_thickness_is_bilinear_at_25m_cropped_and_a_cog(sim, tmp_path):
    out = tmp_path / "thk.tif"
    figures = make_thickness(sim, A, 2000, out)
    assert figures == {"path": str(out), "vanished": False, "crs": UTM, "shape": [16, 16], "resolution_m": 25.0,
                       "area_km2": pytest.approx(SLAB_KM2), "volume_km3": pytest.approx(SLAB_KM3, abs=1e-6),  # rounded
                       "max_thickness_m": 100.0}
    assert cog_validate(str(out))[0]
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 32646 and src.nodata == THICKNESS_NODATA and src.dtypes[0] == "float32"
        # the crop is the slab's own cells, from its edge at (X0, Y0 + 400)
        assert (src.transform.c, src.transform.f, src.transform.a) == (X0, Y0 + 400.0, 25.0)
        data = src.read(1)
    assert data[0, 0] == data[-1, -1] == pytest.approx(39.0625)  # a corner: 100 m x (5/8)^2
    assert data[0, 8] == pytest.approx(62.5) and data[1, 8] == pytest.approx(87.5)  # an edge: 100 m x 5/8, 7/8
    assert (data[2:14, 2:14] == 100.0).all()
    thk, grid = read_thickness(out)
    assert grid == Grid(UTM, X0, Y0 + 400.0, 25.0, 16, 16) and thk.sum() * 625 / 1e9 == pytest.approx(SLAB_KM3)


def test_a_glacier_without_ice_gets_no_thickness_file_and_bad_simulations_are_named(sim, tmp_path):
    out = tmp_path / "thk.tif"
    make_thickness(sim, A, 2000, out)
    assert make_thickness(sim, A, 1960, out) == {"path": None, "vanished": True, "area_km2": 0.0, "volume_km3": 0.0}
    assert not out.exists()  # the earlier epoch's file is not left standing for this one
    # ice thinner than 2 m: no glacier on the model grid, so none on the product grid either
    make_thickness(sim, A, 2000, out)
    thin = make_thickness(sim, A, 1990, out)
    assert thin == {"path": None, "vanished": True, "area_km2": 0.0, "volume_km3": 0.0} and not out.exists()
    with pytest.raises(GlacierError, match=rf"glacier {A}: no simulation at .*nowhere.nc \(materialize igm_simulation"):
        make_thickness(tmp_path / "nowhere.nc", A, 2000, out)
    with pytest.raises(GlacierError, match=rf"glacier {A}: the simulation has no thickness for 2003"):
        make_thickness(sim, A, 2003, out)
    holed = slab()
    holed[5, 5] = np.nan
    bad = write_fake_simulation(tmp_path / "nan.nc", model_grid(), {2000: holed})
    with pytest.raises(GlacierError, match=rf"glacier {A}: simulated thickness for 2000 has non-finite values"):
        make_thickness(bad, A, 2000, out)


def test_the_mask_carries_the_code_where_the_ice_is_2m_or_more(sim, tmp_path):
    make_thickness(sim, A, 2000, tmp_path / "thk.tif")
    figures = make_mask(tmp_path / "thk.tif", A, A_CODE, tmp_path / "mask.tif")
    assert figures == {"path": str(tmp_path / "mask.tif"), "vanished": False, "crs": UTM, "shape": [16, 16],
                       "code": A_CODE, "area_km2": pytest.approx(SLAB_KM2)}
    mask, grid, nodata = read_raster(tmp_path / "mask.tif")
    assert mask.dtype == np.int32 and nodata == MASK_NODATA and grid.res == 25.0
    assert (mask == A_CODE).all() and (mask != 0).sum() == 256
    # thickness below 2 m everywhere, or none at all: no mask, and an older one is removed
    thin = np.where(read_thickness(tmp_path / "thk.tif")[0] > 0, 1.5, 0.0).astype("float32")
    write_cog(tmp_path / "thin.tif", thin, read_thickness(tmp_path / "thk.tif")[1], THICKNESS_NODATA, "float32")
    assert make_mask(tmp_path / "thin.tif", A, A_CODE, tmp_path / "mask.tif") == {
        "path": None, "vanished": True, "area_km2": 0.0, "code": A_CODE}
    assert not (tmp_path / "mask.tif").exists()
    assert make_mask(None, A, A_CODE, tmp_path / "mask.tif")["vanished"] is True


def test_the_outline_is_the_mask_vectorized_with_its_hole(sim, tmp_path):
    make_thickness(sim, A, 2010, tmp_path / "thk.tif")
    make_mask(tmp_path / "thk.tif", A, A_CODE, tmp_path / "mask.tif")
    figures = make_outline(tmp_path / "mask.tif", A, 2010, tmp_path / "outline.parquet", "fp-2010")
    # 6 x 6 model cells: 24 x 24 fine cells less the hole's 8 x 8
    assert figures == {"path": str(tmp_path / "outline.parquet"), "vanished": False, "crs": UTM,
                       "area_km2": pytest.approx((24 * 24 - 8 * 8) * CELL_KM2), "n_polygons": 1, "n_holes": 1}
    table = gpd.read_parquet(tmp_path / "outline.parquet")
    assert table.crs.to_epsg() == 32646 and len(table) == 1
    row = table.iloc[0]
    assert (row["glacier_id"], row["year"], row["code"]) == (A, 2010, A_CODE)
    assert row["area_km2"] == pytest.approx(row.geometry.area / 1e6)
    mask, _, _ = read_raster(tmp_path / "mask.tif")
    assert row.geometry.area == (mask != 0).sum() * 625.0  # pixel edges: the polygon's area is the pixels'
    # the 200 m hole (model cells 5-6) is kept whole: the ice does not spread into it
    (hole,) = row.geometry.geoms[0].interiors
    assert hole.bounds == (X0 + 100.0, Y0 + 100.0, X0 + 300.0, Y0 + 300.0)
    assert read_parquet_metadata(tmp_path / "outline.parquet") == {"fingerprint": "fp-2010", "vanished": False}


def test_a_vanished_glacier_gets_an_empty_outline_and_a_two_glacier_mask_is_refused(tmp_path):
    figures = make_outline(None, A, 1990, tmp_path / "outline.parquet", "fp")
    assert figures == {"path": str(tmp_path / "outline.parquet"), "vanished": True, "area_km2": 0.0}
    table = gpd.read_parquet(tmp_path / "outline.parquet")
    assert len(table) == 1 and table.geometry.iloc[0] is None and table["code"].iloc[0] == 0
    assert table.crs.to_epsg() == 4326
    assert read_parquet_metadata(tmp_path / "outline.parquet") == {"fingerprint": "fp", "vanished": True}
    two = np.zeros((8, 8), "int32")
    two[1:3, 1:3], two[5:7, 5:7] = A_CODE, B_CODE
    write_cog(tmp_path / "two.tif", two, Grid(UTM, X0, Y0, 25.0, 8, 8), MASK_NODATA, "int32")
    with pytest.raises(GlacierError, match=rf"glacier {A} 2000: mask holds codes \[{A_CODE}, {B_CODE}\], expected one"):
        make_outline(tmp_path / "two.tif", A, 2000, tmp_path / "o.parquet")


@pytest.mark.parametrize("year", [2010, 1990, 1960])  # ring with a hole, thin ice, no ice
def test_the_products_in_one_go_equal_the_three_steps(sim, tmp_path, year):
    one = tmp_path / "one"
    steps = tmp_path / "steps"
    together = make_epoch_products(sim, A, year, A_CODE, one / "t.tif", one / "m.tif", one / "o.parquet", "fp")
    apart = (make_thickness(sim, A, year, steps / "t.tif"),)
    apart += (make_mask(steps / "t.tif" if (steps / "t.tif").exists() else None, A, A_CODE, steps / "m.tif"),)
    apart += (make_outline(steps / "m.tif" if (steps / "m.tif").exists() else None, A, year, steps / "o.parquet",
                           "fp"),)
    for a, b in zip(together, apart):
        assert {k: v for k, v in a.items() if k != "path"} == {k: v for k, v in b.items() if k != "path"}
    for name in ("t.tif", "m.tif"):
        assert (one / name).exists() == (steps / name).exists()
        if (one / name).exists():
            (x, gx, _), (y, gy, _) = read_raster(one / name), read_raster(steps / name)
            assert gx == gy and np.array_equal(x, y)
    o1, o2 = gpd.read_parquet(one / "o.parquet"), gpd.read_parquet(steps / "o.parquet")
    assert o1.crs == o2.crs and o1.drop(columns="geometry").equals(o2.drop(columns="geometry"))
    assert o1.geometry.iloc[0] == o2.geometry.iloc[0] or (o1.geometry.iloc[0] is None and o2.geometry.iloc[0] is None)
    together_meta = read_parquet_metadata(one / "o.parquet")
    files = together_meta.pop("files")  # the thickness and mask as written, for a later run's integrity check
    assert together_meta == read_parquet_metadata(steps / "o.parquet")
    assert sorted(files) == sorted(n for n, f in (("thickness", "t.tif"), ("mask", "m.tif")) if (one / f).exists())


def _products(tmp_path, sim, code=A_CODE):
    folder = tmp_path / "products"
    paths = {"simulation": sim, "thickness": lambda y: folder / f"t{y}.tif", "mask": lambda y: folder / f"m{y}.tif",
             "outline": lambda y: folder / f"o{y}.parquet"}
    for year in EPOCHS:
        make_epoch_products(sim, A, year, code, paths["thickness"](year), paths["mask"](year), paths["outline"](year))
    return paths


def test_the_audit_passes_good_products_and_names_each_fault(tmp_path):
    border = slab()
    border[0, :] = 5.0  # ice on the model domain's border in 2020
    sim = write_fake_simulation(tmp_path / "sim.nc", model_grid(),
                                {**{y: slab() for y in EPOCHS}, 1990: slab(thickness=1.5), 2020: border})
    paths = _products(tmp_path, sim)
    rows = {r["epoch"]: r for r in audit_glacier(A, A_CODE, paths)}
    assert sorted(rows) == list(EPOCHS) and all(list(r) == AUDIT_COLUMNS for r in rows.values())
    good = rows[2000]
    assert good == {"glacier_id": A, "epoch": 2000, "outline_present": True, "vanished": False,
                    "thickness_ok": True, "thickness_finite": True, "thickness_min_m": 39.0625,
                    "thickness_max_m": 100.0, "off_glacier_zero": True, "mask_codes_ok": True,
                    "mask_area_km2": pytest.approx(SLAB_KM2), "outline_area_km2": pytest.approx(SLAB_KM2),
                    "mask_outline_diff_pct": 0.0, "outline_valid": True, "outline_crs_ok": True, "problem": ""}
    assert rows[2020]["off_glacier_zero"] is False and rows[2015]["off_glacier_zero"] is True
    thin = rows[1990]  # ice under 2 m: no glacier, no thickness or mask, an empty outline
    assert thin["vanished"] and thin["outline_present"] and thin["problem"] == ""
    assert thin["mask_area_km2"] == thin["outline_area_km2"] == 0.0 and thin["mask_outline_diff_pct"] == 0.0
    # faults: negative thickness, a missing outline, a mask with another glacier's code
    data = np.full((4, 4), 10.0, "float32")
    data[0, 0] = -5.0
    write_cog(paths["thickness"](1980), data, Grid(UTM, X0, Y0, 25.0, 4, 4), THICKNESS_NODATA, "float32")
    paths["outline"](1975).unlink()
    shrunk = gpd.read_parquet(paths["outline"](1985))
    shrunk["geometry"] = shrunk.geometry.scale(0.5, 0.5)  # a quarter of the mask's area
    shrunk.to_parquet(paths["outline"](1985))
    rows = {r["epoch"]: r for r in audit_glacier(A, B_CODE, paths)}
    assert rows[1985]["outline_area_km2"] == pytest.approx(SLAB_KM2 / 4)
    assert rows[1985]["mask_outline_diff_pct"] == pytest.approx(75.0)
    assert rows[1980]["thickness_ok"] is False and rows[1980]["thickness_min_m"] == -5.0
    assert rows[1975]["outline_present"] is False and rows[1975]["mask_codes_ok"] is None
    assert rows[2000]["mask_codes_ok"] is False and rows[2000]["thickness_ok"] is True


def test_the_audit_checks_the_outline_crs_against_the_simulation(tmp_path):
    sim = write_fake_simulation(tmp_path / "sim.nc", model_grid(), {y: slab() for y in EPOCHS})
    paths = _products(tmp_path, sim)
    outline = gpd.read_parquet(paths["outline"](2000))
    outline.to_crs("EPSG:32645").to_parquet(paths["outline"](2000))  # the neighbouring UTM zone
    rows = {r["epoch"]: r for r in audit_glacier(A, A_CODE, paths)}
    assert rows[2000]["outline_crs_ok"] is False and rows[1995]["outline_crs_ok"] is True
    # without its simulation, nothing can be said of the border or the CRS
    sim.unlink()
    rows = {r["epoch"]: r for r in audit_glacier(A, A_CODE, paths)}
    assert rows[1995]["off_glacier_zero"] is False and rows[1995]["outline_crs_ok"] is False


def test_a_damaged_product_is_found_named_and_not_current(tmp_path):
    """ledger.product_problems: a thickness COG truncated to 100 bytes, a mask deleted, a mask
    rewritten with other content: each is named with its file and problem, and the glacier-epoch
    is no longer current (the main job remakes it; the audit never sees it as whole)."""
    from glacier_assets.ledger import product_problems, products_current

    sim = write_fake_simulation(tmp_path / "sim.nc", model_grid(), {y: slab() for y in EPOCHS})
    root = tmp_path / "root"
    from glacier_assets.constants import mask_relpath, outline_relpath, thickness_relpath
    from glacier_assets.fingerprints import product_fingerprint

    for year in (1990, 2000, 2010):
        make_epoch_products(sim, A, year, A_CODE, root / thickness_relpath(A, year), root / mask_relpath(A, year),
                            root / outline_relpath(A, year), product_fingerprint("fp-sim", year, A_CODE))
    meta = {y: read_parquet_metadata(root / outline_relpath(A, y)) for y in (1990, 2000, 2010)}
    assert all(product_problems(root, A, y, meta[y]) == [] and products_current(root, A, y, "fp-sim", A_CODE)
               for y in meta)
    cog = root / thickness_relpath(A, 1990)
    cog.write_bytes(cog.read_bytes()[:100])
    (root / mask_relpath(A, 2000)).unlink()
    mask, grid, _ = read_raster(root / mask_relpath(A, 2010))
    mask[0, 0] = 0  # same size, other content
    write_cog(root / mask_relpath(A, 2010), mask, grid, MASK_NODATA, "int32")
    assert product_problems(root, A, 1990, meta[1990]) == [
        f"thickness {cog.name}: 100 bytes where {meta[1990]['files']['thickness']['size']} were written "
        "(truncated or replaced)"]
    assert product_problems(root, A, 2000, meta[2000]) == [f"mask {A}_2000.tif: missing"]
    problems = product_problems(root, A, 2010, meta[2010])
    assert problems in ([f"mask {A}_2010.tif: content changed since it was written (checksum differs)"],
                        [f"mask {A}_2010.tif: {(root / mask_relpath(A, 2010)).stat().st_size} bytes where "
                         f"{meta[2010]['files']['mask']['size']} were written (truncated or replaced)"])
    assert not any(products_current(root, A, y, "fp-sim", A_CODE) for y in meta)


def test_the_audit_names_an_unreadable_file_and_goes_on(tmp_path):
    """A truncated COG or outline fails its own glacier-epoch with the file and the problem; the
    audit itself never fails on it (it once failed the whole publication, naming a bare file)."""
    from glacier_assets.checks import audit_failed_glaciers

    sim = write_fake_simulation(tmp_path / "sim.nc", model_grid(), {y: slab() for y in EPOCHS})
    paths = _products(tmp_path, sim)
    thk = paths["thickness"](1990)
    thk.write_bytes(thk.read_bytes()[:100])
    outline = paths["outline"](2000)
    outline.write_bytes(b"not parquet")
    rows = audit_glacier(A, A_CODE, paths)
    by_year = {r["epoch"]: r for r in rows}
    assert by_year[1990]["problem"].startswith(f"thickness {thk.name}: cannot be read (")
    assert by_year[1990]["thickness_ok"] is False
    assert by_year[2000]["problem"].startswith(f"outline {outline.name}: cannot be read (")
    assert all(by_year[y]["problem"] == "" for y in EPOCHS if y not in (1990, 2000))
    import pandas as pd

    why = audit_failed_glaciers(pd.DataFrame(rows))
    assert list(why) == [A] and why[A].startswith(f"product_audit 1990: thickness {thk.name}: cannot be read")
    assert why[A].endswith("(+1 more epochs)")
