"""Bad input is caught when the region spec is loaded, and the error names the file, the key or
column, the rows or years, and the problem; repaired outlines are kept and listed."""

import shutil

import geopandas as gpd
import pandas as pd
import pytest
import shapely
import xarray as xr
import yaml
from shapely.geometry import GeometryCollection, LineString, Polygon

from glacier_assets.constants import albers_crs
from glacier_assets.inventory.examples import hef_region_yaml
from glacier_assets.inventory.outlines import build_inventory
from glacier_assets.inventory.region import OutlineSource, RegionSpecError, load_region_spec

RGI6 = r"^RGI60-\d{2}\.\d{5}$"


@pytest.fixture
def demo(tmp_path, demo_region):
    """A private copy of the demo region; returns its region.yaml."""
    shutil.copytree(demo_region.parent, tmp_path / "demo", ignore=shutil.ignore_patterns("truth"))
    return tmp_path / "demo" / "region.yaml"


@pytest.fixture
def hef(tmp_path, shared_data):
    return hef_region_yaml(shared_data, tmp_path / "hef")


def edit(spec, change):
    """Apply `change` to the spec's YAML content (a dict) and write it back."""
    raw = yaml.safe_load(spec.read_text())
    change(raw)
    spec.write_text(yaml.safe_dump(raw, sort_keys=False))


def error(spec) -> str:
    with pytest.raises(RegionSpecError) as exc:
        load_region_spec(spec)
    message = str(exc.value)
    assert message.startswith(f"region spec {spec}: ")
    return message


def test_good_specs_load(demo, hef):
    assert load_region_spec(demo).forcing.path.name == "mass_balance.csv"
    assert len(load_region_spec(hef).forcing.sources) == 2


# --- keys ----------------------------------------------------------------------------------------


def test_misspelled_key_in_an_outline_entry(demo):
    edit(demo, lambda r: r["outlines"][0].update(year_colum=r["outlines"][0].pop("year_column")))
    assert "unknown key 'year_colum' in outlines[0] (did you mean 'year_column'?)" in error(demo)


def test_misspelled_key_at_the_top_level(demo):
    edit(demo, lambda r: r.update(id_patern=RGI6))
    assert "unknown key 'id_patern' in the top level (did you mean 'id_pattern'?)" in error(demo)


def test_misspelled_keys_inside_climate(hef):
    def change(r):
        r["climate"]["prcp_factr"] = r["climate"].pop("prcp_factor")
        r["climate"]["sources"][1]["invariant_pth"] = r["climate"]["sources"][1].pop("invariant_path")

    edit(hef, change)
    message = error(hef)
    assert "unknown key 'prcp_factr' in climate (did you mean 'prcp_factor'?)" in message
    assert "unknown key 'invariant_pth' in climate.sources[1] (did you mean 'invariant_path'?)" in message


def test_unknown_key_without_a_close_match_lists_the_valid_keys(demo):
    edit(demo, lambda r: r["dem"].update(resolution=30))
    assert "unknown key 'resolution' in dem (valid keys: path, year, margin_m, min_margin_m)" in error(demo)


def test_unknown_role(demo):
    edit(demo, lambda r: r["outlines"][1].update(role="controll"))
    message = error(demo)
    assert "outlines[1].role:" in message and "'initial' or 'control'" in message and "'controll'" in message


def test_no_initial_outline(demo):
    edit(demo, lambda r: [o.update(role="control") for o in r["outlines"]])
    assert "no outline source with role 'initial'" in error(demo)


def test_both_forcings(demo, hef):
    climate = yaml.safe_load(hef.read_text())["climate"]
    edit(demo, lambda r: r.update(climate=climate))
    message = error(demo)
    assert "give exactly one of `mass_balance` (an ELA table) or `climate`" in message and "found both" in message


def test_no_forcing(demo):
    edit(demo, lambda r: r.pop("mass_balance"))
    assert "found neither" in error(demo)


def test_bad_id_pattern(demo):
    edit(demo, lambda r: r.update(id_pattern="^RGI60-(\\d{2}"))
    assert "id_pattern: not a valid regular expression: missing ), unterminated subpattern" in error(demo)


def test_year_column_not_in_the_outline_file(demo):
    edit(demo, lambda r: r["outlines"][2].update(year_column="BgnDat"))
    message = error(demo)
    assert "outlines[2]: outline file" in message and "outlines_2000.shp: no year column 'BgnDat'" in message
    assert "BgnDate" in message  # the columns the file has


# --- files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("key, change", [
    ("outlines[1].path", lambda r: r["outlines"][1].update(path="outlines_199.shp")),
    ("dem.path", lambda r: r["dem"].update(path="dem_srtm.tif")),
    ("mass_balance.path", lambda r: r["mass_balance"].update(path="mb.csv")),
])
def test_missing_file(demo, key, change):
    edit(demo, change)
    missing = {"outlines[1].path": "outlines_199.shp", "dem.path": "dem_srtm.tif", "mass_balance.path": "mb.csv"}
    assert f"{key}: file not found: {demo.parent / missing[key]}" in error(demo)


def test_missing_climate_file(hef, shared_data):
    edit(hef, lambda r: r["climate"]["sources"][1].update(invariant_path="era5_invariant.nc"))
    assert f"climate.sources[1].invariant_path: file not found: {hef.parent / 'era5_invariant.nc'}" in error(hef)


def test_shapefile_without_its_dbf(demo):
    (demo.parent / "outlines_2010.dbf").unlink()
    assert f"outlines[3].path: shapefile {demo.parent / 'outlines_2010.shp'} lacks its .dbf file(s)" in error(demo)


# --- the mass-balance table ----------------------------------------------------------------------


def edit_table(demo, change):
    path = demo.parent / "mass_balance.csv"
    table = pd.read_csv(path)
    change(table).to_csv(path, index=False)
    return table


def line(table, year):
    """The CSV line of `year` as the user sees it (the header is line 1)."""
    return int(table.index[table["year"] == year][0]) + 2


def test_mass_balance_non_numeric_value(demo):
    def change(t):
        t["ela"] = t["ela"].astype(object)
        t.loc[t["year"] == 1975, "ela"] = "57OO"
        return t

    table = edit_table(demo, change)
    message = error(demo)
    assert f"mass_balance.path: mass-balance table {demo.parent / 'mass_balance.csv'}:" in message
    assert f"column 'ela' is not a finite number on row {line(table, 1975)}: '57OO'" in message


def test_mass_balance_nan(demo):
    def change(t):
        t.loc[t["year"].isin([1980, 1981]), "grad_abl"] = float("nan")
        return t

    table = edit_table(demo, change)
    rows = f"{line(table, 1980)}-{line(table, 1981)}"
    assert f"mass_balance.csv: column 'grad_abl' is empty or NaN on rows {rows}" in error(demo)


def test_mass_balance_gap(demo):
    edit_table(demo, lambda t: t[~t["year"].isin([1971, 1972, 1973, 1990])])
    assert "mass_balance.csv: years missing: 1971-1973, 1990" in error(demo)


def test_mass_balance_duplicate_year(demo):
    table = edit_table(demo, lambda t: pd.concat([t, t[t["year"] == 1985]], ignore_index=True))
    assert f"mass_balance.csv: duplicate years: 1985 (rows {line(table, 1985)}, {len(table) + 2})" in error(demo)


def test_mass_balance_short(demo):
    edit_table(demo, lambda t: t[t["year"] >= 1965])
    assert "mass_balance.csv: covers 1965-2020, not 1960-2020" in error(demo)


def test_mass_balance_missing_column(demo):
    edit_table(demo, lambda t: t.drop(columns="acc_max"))
    assert "mass_balance.csv: missing columns ['acc_max']" in error(demo)


# --- climate files -------------------------------------------------------------------------------


def test_climate_variable_missing(hef, shared_data):
    edit(hef, lambda r: r["climate"]["sources"][0].update(temperature="tmp"))
    message = error(hef)
    assert (f"climate.sources[0]: climate file {shared_data / 'oggm_hef' / 'histalp_merged_hef.nc'}: "
            "no temperature variable 'tmp' (variables: hgt, prcp, temp)") in message


def test_geopotential_missing_from_the_invariant_file(hef, shared_data):
    edit(hef, lambda r: r["climate"]["sources"][1].update(geopotential="zz"))
    assert (f"climate.sources[1]: climate file {shared_data / 'oggm_hef' / 'sel_era5_invariant.nc'}: "
            "no geopotential variable 'zz'") in error(hef)


def test_elevation_and_geopotential_both_given(hef):
    edit(hef, lambda r: r["climate"]["sources"][0].update(geopotential="z"))
    assert "climate.sources[0]: give `elevation` or `geopotential`, not both" in error(hef)


def test_unknown_precipitation_units(hef, shared_data):
    odd = hef.parent / "histalp_mm_per_day.nc"
    with xr.open_dataset(shared_data / "oggm_hef" / "histalp_merged_hef.nc") as ds:
        ds["prcp"].attrs["units"] = "mm/day"
        ds.to_netcdf(odd)
    edit(hef, lambda r: r["climate"]["sources"][0].update(path=str(odd)))
    assert f"climate file {odd}: precipitation variable 'prcp' has unknown units 'mm/day'" in error(hef)


# --- repaired outlines ---------------------------------------------------------------------------


def test_self_intersecting_outline_is_repaired_and_listed(tmp_path):
    square = Polygon([(10.70, 46.70), (10.72, 46.70), (10.72, 46.72), (10.70, 46.72)])
    bow_tie = Polygon([(10.75, 46.79), (10.79, 46.83), (10.79, 46.79), (10.75, 46.80)])  # lobes of unequal size
    with_line = GeometryCollection([square, LineString([(10.72, 46.72), (10.73, 46.73)])])
    gpd.GeoDataFrame({"RGIId": ["RGI60-11.00001", "RGI60-11.00002", "RGI60-11.00003"]},
                     geometry=[square, bow_tie, with_line], crs="EPSG:4326").to_file(tmp_path / "o.gpkg")
    inv, rejected = build_inventory((OutlineSource(tmp_path / "o.gpkg", "initial", year=1970),), RGI6)[:2]
    assert rejected == []
    repair = dict(zip(inv["glacier_id"], inv["repair"]))
    assert repair["RGI60-11.00001"] == ""
    fixed = shapely.make_valid(bow_tie)
    pct = 100 * (fixed.area - bow_tie.area) / bow_tie.area
    assert repair["RGI60-11.00002"] == (f"invalid geometry ({shapely.is_valid_reason(bow_tie)}) made valid: "
                                        f"area {pct:+.1f} %")
    assert repair["RGI60-11.00003"] == "non-polygonal parts dropped (LineString): area unchanged"
    # the area is the repaired outline's
    area = inv.set_index("glacier_id").loc["RGI60-11.00002", "area_km2"]
    assert area == pytest.approx(gpd.GeoSeries([fixed], crs="EPSG:4326").to_crs(albers_crs()).area[0] / 1e6)


def test_real_invalid_rings_are_listed(shared_data):
    src = OutlineSource(shared_data / "oggm_oetztal" / "rgi_oetztal.shp", "initial", year_column="BgnDate")
    inv, rejected = build_inventory((src,), r"^RGI50-\d{2}\.\d{5}(_d\d{2})?$")[:2]
    assert rejected == [] and len(inv) == 20
    repaired = inv.loc[inv["repair"] != "", ["glacier_id", "repair"]]
    assert list(repaired["glacier_id"]) == ["RGI50-11.00648", "RGI50-11.00887", "RGI50-11.00958"]
    assert repaired["repair"].str.fullmatch(
        r"invalid geometry \(Ring Self-intersection\[[\d. ]+\]\) made valid: area unchanged").all()
