"""Mass-balance forcing from real monthly climate (HISTALP + ERA5 at Hintereisferner)."""

import numpy as np
import pandas as pd
import pytest

from glacier_assets.constants import END_YEAR, START_YEAR, TREND_SPINUP_START
from glacier_assets.inventory.examples import hef_region_yaml
from glacier_assets.inventory.forcing import (
    climate_profiles,
    ela_table_profiles,
    merge_monthly,
    pad_years,
    read_monthly_source,
)
from glacier_assets.inventory.region import ElaTableForcing, load_region_spec
from glacier_assets.science.massbalance import elevation_bins, equilibrium_line_altitude

HEF_LONLAT = (10.7584, 46.8003)


def test_climate_units_and_merge(shared_data, tmp_path):
    spec = load_region_spec(hef_region_yaml(shared_data, tmp_path))
    histalp, era5 = (read_monthly_source(s, *HEF_LONLAT)[0] for s in spec.forcing.sources)
    assert histalp.z_ref == pytest.approx(3160.0)  # HISTALP cell height
    assert 1500 < era5.z_ref < 3000  # ERA5 geopotential / g
    # ERA5 kelvin -> degC and m/day -> mm/month: July warmer than January, tens of mm a month
    jul = era5.temp_c[era5.month == 7].mean()
    jan = era5.temp_c[era5.month == 1].mean()
    assert -15 < jan < 0 < jul < 20
    assert 20 < era5.prcp_mm.mean() < 300
    merged, info = merge_monthly([histalp, era5])
    assert info["sources"] == 2 and info["merge_2_overlap_months"] > 200
    assert merged.year.min() <= START_YEAR and merged.year.max() == 2018
    # the extension is bias-corrected to HISTALP: same July mean over the overlap by construction
    padded, years = pad_years(merged, END_YEAR)
    assert years == [2019, 2020]
    assert np.count_nonzero(padded.year == 2020) == 12


def test_hef_profiles_put_the_reference_ela_at_the_median_elevation(shared_data, tmp_path):
    spec = load_region_spec(hef_region_yaml(shared_data, tmp_path))
    z = elevation_bins(2400, 3700)
    prof, info = climate_profiles(spec.forcing, *HEF_LONLAT, z, target_ela=3051.0)
    # the climate's own years before 1960 from TREND_SPINUP_START (HISTALP starts in October 1801)
    assert list(prof.years) == list(range(TREND_SPINUP_START, END_YEAR + 1)) and info.details["first_year"] == 1810
    # the spin-up climate before the table is the 1960s', whatever years the table holds before them
    sixties = (prof.years >= START_YEAR) & (prof.years < START_YEAR + 10)
    assert np.allclose(prof.spinup_profile(), prof.b[sixties].mean(axis=0))
    ref = (prof.years >= 1960) & (prof.years <= 1989)
    assert equilibrium_line_altitude(z, prof.b[ref].mean(axis=0)) == pytest.approx(3051.0, abs=5)
    assert info.details["padded_years"] == [2019, 2020]
    assert abs(info.details["temperature_bias_k"]) < 5
    # balance falls with elevation loss, and the 2003 heat wave stands out
    assert (np.diff(prof.profile(START_YEAR)[z < 3000]) > 0).all()
    assert prof.ela(2003) > prof.ela(2001) + 200


def test_ela_table(tmp_path):
    years = np.arange(1960, 2021)
    pd.DataFrame({"year": years, "ela": 5700.0, "grad_abl": 0.005, "grad_acc": 0.002, "acc_max": 0.5}).to_csv(
        tmp_path / "mb.csv", index=False)
    prof, info = ela_table_profiles(ElaTableForcing(tmp_path / "mb.csv"), elevation_bins(5000, 6000))
    assert prof.ela(1990) == pytest.approx(5700.0)
    pd.DataFrame({"year": years[:10], "ela": 5700.0, "grad_abl": 0.005, "grad_acc": 0.002, "acc_max": 0.5}).to_csv(
        tmp_path / "short.csv", index=False)
    with pytest.raises(ValueError, match="covers 1960-1969"):
        ela_table_profiles(ElaTableForcing(tmp_path / "short.csv"), elevation_bins(5000, 6000))
    # a gap is an error, not the previous year held through it (more cases: test_inputs.py)
    pd.DataFrame({"year": np.delete(years, [10, 11]), "ela": 5700.0, "grad_abl": 0.005, "grad_acc": 0.002,
                  "acc_max": 0.5}).to_csv(tmp_path / "gap.csv", index=False)
    with pytest.raises(ValueError, match="gap.csv: years missing: 1970-1971"):
        ela_table_profiles(ElaTableForcing(tmp_path / "gap.csv"), elevation_bins(5000, 6000))


# --- the monthly products people use, by their own names and units -----------------------------------

G = 9.80665


def _product_files(folder, preset: str, temp_c: np.ndarray, prcp_mm: np.ndarray, time: pd.DatetimeIndex,
                   height_m: float) -> dict:
    """A 2x2-cell file as the product ships it (names, units, coordinates): the same climate."""
    import xarray as xr

    days = time.days_in_month.to_numpy(float)[:, None, None]
    t = np.broadcast_to(temp_c[:, None, None], (len(time), 2, 2))
    p = np.broadcast_to(prcp_mm[:, None, None], (len(time), 2, 2))
    lat, lon = ("latitude", "longitude") if preset.startswith("era5") else ("lat", "lon")
    coords = {"time": time, lat: [46.5, 47.0], lon: [10.5, 11.0]}
    dims = ("time", lat, lon)
    kw = {}
    if preset == "cru_ts":  # CRU TS 4: tmp in degrees Celsius, pre in mm/month, no height grid
        data = {"tmp": (t, "degrees Celsius"), "pre": (p, "mm/month")}
    elif preset.startswith("era5"):  # K, m of water per day (monthly means), geopotential in its own file
        data = {"t2m": (t + 273.15, "K"), "tp": (p / 1000.0 / days, "m")}
        inv = xr.Dataset({"z": ((lat, lon), np.full((2, 2), height_m * G), {"units": "m**2 s**-2"})},
                         coords={lat: coords[lat], lon: coords[lon]})
        inv.to_netcdf(folder / f"{preset}_invariant.nc")
        kw["invariant_path"] = folder / f"{preset}_invariant.nc"
    elif preset == "w5e5":  # K, a flux in kg m-2 s-1, orography in m
        data = {"tas": (t + 273.15, "K"), "pr": (p / 86400.0 / days, "kg m-2 s-1")}
    else:  # HISTALP as OGGM ships it
        data = {"temp": (t, "degC"), "prcp": (p, "kg m-2")}
    ds = xr.Dataset({k: (dims, v, {"units": u}) for k, (v, u) in data.items()}, coords=coords)
    if preset in ("w5e5", "histalp"):
        ds[{"w5e5": "orog", "histalp": "hgt"}[preset]] = ((lat, lon), np.full((2, 2), height_m), {"units": "m"})
    ds.to_netcdf(folder / f"{preset}.nc")
    return {"path": folder / f"{preset}.nc", **kw}


@pytest.mark.parametrize("preset", ["cru_ts", "era5", "era5_land", "w5e5", "histalp"])
def test_every_preset_reads_the_same_climate(tmp_path, preset):
    from glacier_assets.inventory.region import ClimateSource

    time = pd.date_range("1901-01-01", "2020-12-01", freq="MS")
    rng = np.random.default_rng(1)
    temp = -5 + 10 * np.sin(2 * np.pi * (time.month.to_numpy() - 4) / 12) + rng.normal(0, 1, len(time))
    prcp = rng.uniform(20, 150, len(time))
    files = _product_files(tmp_path, preset, temp, prcp, time, 3160.0)
    for src in (ClimateSource(**files, preset=preset), ClimateSource(**files)):  # named, and detected
        series, var = read_monthly_source(src, 10.76, 46.8)
        np.testing.assert_allclose(series.temp_c, temp, atol=1e-4)
        np.testing.assert_allclose(series.prcp_mm, prcp, rtol=1e-5)
        assert var.preset == (preset if src.preset else {"era5_land": "era5"}.get(preset, preset))  # same names
        if preset == "cru_ts":
            assert np.isnan(series.z_ref)
        else:
            assert series.z_ref == pytest.approx(3160.0, abs=0.01)


def test_a_source_without_heights_is_calibrated_by_the_bias(tmp_path):
    """CRU TS ships no height grid: any reference height gives the same balance, since the
    temperature bias that puts the reference ELA at the target absorbs it."""
    from glacier_assets.inventory.forcing import NO_HEIGHT
    from glacier_assets.inventory.region import ClimateForcing, ClimateSource

    time = pd.date_range("1901-01-01", "2020-12-01", freq="MS")
    temp = -5 + 10 * np.sin(2 * np.pi * (time.month.to_numpy() - 4) / 12)
    prcp = np.full(len(time), 80.0)
    cru = ClimateSource(**_product_files(tmp_path, "cru_ts", temp, prcp, time, 0.0))
    hist = ClimateSource(**_product_files(tmp_path, "histalp", temp, prcp, time, 3160.0))
    z = elevation_bins(2400, 3700)
    without, info = climate_profiles(ClimateForcing((cru,)), 10.76, 46.8, z, target_ela=3051.0)
    with_height, _ = climate_profiles(ClimateForcing((hist,)), 10.76, 46.8, z, target_ela=3051.0)
    assert info.details["reference_elevation_m"] == NO_HEIGHT
    assert info.details["variables"] == "tmp, pre (cru_ts)"
    np.testing.assert_allclose(without.b, with_height.b, atol=1e-6)


def test_unknown_climate_variables_are_named(tmp_path):
    import xarray as xr

    from glacier_assets.inventory.forcing import check_climate_source
    from glacier_assets.inventory.region import ClimateSource

    xr.Dataset({"air": (("time", "lat", "lon"), np.zeros((1, 1, 1)))},
               coords={"time": pd.date_range("2000", periods=1), "lat": [0.0], "lon": [0.0]}).to_netcdf(tmp_path / "x.nc")
    with pytest.raises(ValueError, match=r"x.nc: no known temperature and precipitation variables .*cru_ts: tmp, pre"):
        check_climate_source(ClimateSource(tmp_path / "x.nc"))
