"""Reading and validating real inventories (RGI6, CGI2) and the demo region."""

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from shapely.affinity import translate

from glacier_assets.constants import CONTROL_EPOCHS, GEOGRAPHIC_CRS
from glacier_assets.inventory import demo_massif, demo_truth
from glacier_assets.inventory.ids import InvalidGlacierId, validate_glacier_id
from glacier_assets.inventory.outlines import build_inventory, nearest_epoch, read_outline_source
from glacier_assets.inventory.region import OutlineSource, RegionSpecError, load_region_spec
from glacier_assets.schemas import inventory_schema

CGI2_PATTERN = r"^5[A-Z]\d{3}[A-Z]\d{4}$"


def test_glacier_ids():
    assert validate_glacier_id("RGI60-13.01234") == "RGI60-13.01234"
    for bad in ("RGI60-13.1234", "RGI60-13.01234/../x", "../etc/passwd", "RGI60-13.01234|1990", "", None, 42):
        with pytest.raises(InvalidGlacierId, match="glacier id"):
            validate_glacier_id(bad)
    assert validate_glacier_id("5K441M0100", CGI2_PATTERN) == "5K441M0100"
    with pytest.raises(InvalidGlacierId, match="5K441M0100"):
        validate_glacier_id("5K441M0100")


def test_rgi6_hintereisferner(shared_data):
    src = OutlineSource(shared_data / "oggm_hef" / "Hintereisferner_RGI6.shp", "initial", year_column="BgnDate")
    table, rejected = read_outline_source(src, r"^RGI60-\d{2}\.\d{5}$")
    assert rejected == []
    row = table.iloc[0]
    assert row.glacier_id == "RGI60-11.00897" and row.year == 2003 and row.epoch == 2005
    assert table.crs.to_string() == GEOGRAPHIC_CRS
    assert row.area_km2 == pytest.approx(8.036, rel=0.01)  # RGI's own area figure


def test_cgi2_albers_outlines_read_validated_reprojected(shared_data):
    path = shared_data / "oggm_cgi2" / "cgi2.shp"
    raw = gpd.read_file(path)
    assert "Albers" in raw.crs.to_wkt()
    # with the default RGI pattern every CGI code is rejected, by name
    table, rejected = read_outline_source(OutlineSource(path, "control"), r"^RGI60-\d{2}\.\d{5}$")
    assert table.empty and len(rejected) == len(raw)
    assert {r.glacier_id for r in rejected} == set(raw["FCGI_ID"])
    assert all("does not match the id pattern" in r.reason for r in rejected)
    # with the CGI pattern configured they pass, reprojected to EPSG:4326, dated from Rep_Date
    table, rejected = read_outline_source(OutlineSource(path, "control"), CGI2_PATTERN)
    assert rejected == [] and len(table) == len(raw)
    merged = table.merge(raw[["FCGI_ID", "Glc_Area", "Glc_Long", "Glc_Lati", "Rep_Date"]],
                         left_on="glacier_id", right_on="FCGI_ID")
    np.testing.assert_allclose(merged["area_km2"], merged["Glc_Area"] / 1e6, rtol=0.01)
    cent = gpd.GeoSeries(merged.geometry, crs=GEOGRAPHIC_CRS).representative_point()
    np.testing.assert_allclose(cent.x, merged["Glc_Long"], atol=0.05)
    np.testing.assert_allclose(cent.y, merged["Glc_Lati"], atol=0.05)
    assert set(merged["year"]) <= set(range(2004, 2011))
    tanggula = merged[merged.glacier_id == "5K441M0100"].iloc[0]
    assert tanggula.area_km2 == pytest.approx(0.97, abs=0.02)


def test_one_bad_glacier_is_named_and_the_others_pass(shared_data, tmp_path):
    hef = gpd.read_file(shared_data / "oggm_hef" / "Hintereisferner_RGI6.shp")
    rows = []
    for i, gid in enumerate(["RGI60-11.00897", "../../etc/passwd", "RGI60-11.0089", "RGI60-11.00900"]):
        r = hef.iloc[0].copy()
        r["RGIId"] = gid
        r["geometry"] = translate(r.geometry, xoff=0.1 * i)
        rows.append(r)
    bad_geom = hef.iloc[0].copy()
    bad_geom["RGIId"], bad_geom["geometry"] = "RGI60-11.00901", None
    rows.append(bad_geom)
    gpd.GeoDataFrame(rows, crs=hef.crs).to_file(tmp_path / "mixed.shp")
    inv, rejected = build_inventory((OutlineSource(tmp_path / "mixed.shp", "initial", year=1970),),
                                    r"^RGI60-\d{2}\.\d{5}$")[:2]
    assert sorted(inv["glacier_id"]) == ["RGI60-11.00897", "RGI60-11.00900"]
    reasons = {r.glacier_id: r.reason for r in rejected}
    assert set(reasons) == {"../../etc/passwd", "RGI60-11.0089", "RGI60-11.00901"}
    assert "empty" in reasons["RGI60-11.00901"]


def test_region_spec_errors(tmp_path):
    """The spec file itself; bad keys, values and files in it: test_inputs.py."""
    with pytest.raises(RegionSpecError, match=r"region spec .*nope.yaml: file does not exist"):
        load_region_spec(tmp_path / "nope.yaml")
    (tmp_path / "r.yaml").write_text("- outlines\n")
    with pytest.raises(RegionSpecError, match=r"region spec .*r.yaml: expected keys \(outlines, dem, ...\), not a list"):
        load_region_spec(tmp_path / "r.yaml")


def test_nearest_epoch():
    assert nearest_epoch(1972) == 1970 and nearest_epoch(2003) == 2005 and nearest_epoch(1955) == 1960


def test_demo_region(demo_region):
    spec = load_region_spec(demo_region)
    inv, rejected = build_inventory(spec.outlines, spec.id_pattern)[:2]
    assert rejected == []
    inventory_schema(spec.id_pattern).validate(inv, lazy=True)
    assert (inv["repair"] == "").all()  # the demo's outlines are valid as they are
    initial = inv[inv.role == "initial"]
    assert len(initial) >= 10
    # acquisition dates as real inventories have them: the 1970s inventory per glacier, controls near
    # 1990/2000/2010/2020, each glacier on its own dates (calibration compares at each date)
    assert initial.year.between(1972, 1977).all() and initial.year.nunique() > 1
    assert initial.area_km2.min() < 0.6 and initial.area_km2.max() > 25
    assert initial.area_km2.max() < 40
    # every glacier has its four control outlines
    controls = inv[inv.role == "control"]
    files = [f"outlines_{y}.shp" for y in CONTROL_EPOCHS]
    assert (controls.groupby("glacier_id").source.apply(sorted) == pd.Series([files] * len(initial),
            index=sorted(initial.glacier_id))).all()
    nominal = controls.source.str.extract(r"(\d{4})")[0].astype(int)
    assert (controls.year - nominal).abs().max() <= 3 and (controls.year != nominal).any()
    # at real coordinates in the Geladandong area, UTM zone 46N
    cent = initial.geometry.representative_point()
    assert cent.x.between(90.8, 91.4).all() and cent.y.between(33.2, 33.7).all()
    with rasterio.open(spec.dem.path) as dem:
        assert dem.crs.to_epsg() == 32646
        z = dem.read(1)
    assert 4800 < z.min() < 5100 and 6500 < z.max() < 6700
    truth = pd.read_csv(demo_region.parent / "truth" / "truth.csv")
    assert set(truth.glacier_id) == set(initial.glacier_id)
    # the hidden truth shrinks after 1990 under the warming forcing
    tot = truth.groupby("year").area_km2.sum()
    assert tot[2020] < tot[1990]
    params = json.loads((demo_region.parent / "truth" / "params.json").read_text())
    assert len(params["mountains"]) == len(initial)
    assert params["balance_law"]["abl_curvature_m"] > 0 and params["dem_noise_m"] > 0  # not the model's own law
    # reference volumes made the way real ones are: the truth at the ~2000 outline's date, +-20 % per
    # glacier, unbiased regionally (the model calibrates to these, never to the truth)
    refs = pd.read_csv(demo_region.parent / "reference_volumes.csv")
    true = pd.read_csv(demo_region.parent / "truth" / "outlines.csv").query("epoch == 2000").set_index("glacier_id")
    err = refs.set_index("glacier_id").volume_km3 / true.volume_km3 - 1
    assert set(refs.year) <= set(true.obs_year) and err.abs().max() > 0.1 and 0.05 < err.std() < 0.4
    assert refs.volume_km3.sum() == pytest.approx(true.volume_km3.sum(), rel=1e-4)


def test_demo_generation_is_deterministic():
    a, b = demo_massif.public_forcing(), demo_massif.public_forcing()
    pd.testing.assert_frame_equal(a, b)
    grid = demo_massif.demo_grid(100.0)
    np.testing.assert_array_equal(demo_massif.demo_bed(grid), demo_massif.demo_bed(grid))
    m = demo_massif.DEMO_MOUNTAINS[7]
    _, _, s1 = demo_truth.simulate_truth(m, a)
    _, _, s2 = demo_truth.simulate_truth(m, a)
    np.testing.assert_array_equal(s1[2020], s2[2020])


def test_a_row_that_breaks_a_per_row_rule_is_rejected_with_its_column_and_value(shared_data, tmp_path):
    """An outline dated 2035 and one dated 1850 (outside the years the model can use): each row is
    rejected with its glacier, file, column and value, the control of the glacier that lost its
    initial outline too, and the rest of the region goes on; the schema then holds."""
    hef = gpd.read_file(shared_data / "oggm_hef" / "Hintereisferner_RGI6.shp")

    def outlines(name, rows):
        gdf = gpd.GeoDataFrame([hef.iloc[0].copy() for _ in rows], crs=hef.crs).reset_index(drop=True)
        gdf["RGIId"] = [g for g, _ in rows]
        gdf["BgnDate"] = [d for _, d in rows]
        gdf["geometry"] = [translate(geom, xoff=0.1 * i) for i, geom in enumerate(gdf.geometry)]
        gdf.to_file(tmp_path / name)
        return OutlineSource(tmp_path / name, "initial" if "1970s" in name else "control", year_column="BgnDate")

    sources = (outlines("1970s.shp", [("RGI60-11.00897", "19710801"), ("RGI60-11.00900", "20350801"),
                                      ("RGI60-11.00901", "18500801")]),
               outlines("controls.shp", [("RGI60-11.00897", "20030801"), ("RGI60-11.00901", "20030801")]))
    inv, rejected = build_inventory(sources, r"^RGI60-\d{2}\.\d{5}$")[:2]
    assert list(inv["glacier_id"]) == ["RGI60-11.00897"] * 2 and sorted(inv["year"]) == [1971, 2003]
    by = {(r.glacier_id, r.source): r for r in rejected}
    assert set(by) == {("RGI60-11.00900", "1970s.shp"), ("RGI60-11.00901", "1970s.shp"),
                       ("RGI60-11.00901", "controls.shp")}
    assert (by["RGI60-11.00900", "1970s.shp"].column, by["RGI60-11.00900", "1970s.shp"].value) == ("year", "2035")
    assert (by["RGI60-11.00901", "1970s.shp"].column, by["RGI60-11.00901", "1970s.shp"].value) == ("year", "1850")
    assert "year 2035 breaks in_range(1900, 2030)" in by["RGI60-11.00900", "1970s.shp"].reason
    assert by["RGI60-11.00901", "controls.shp"].reason == "control outline without an initial outline"
    inventory_schema(r"^RGI60-\d{2}\.\d{5}$").validate(pd.DataFrame(inv.drop(columns="geometry")), lazy=True)
