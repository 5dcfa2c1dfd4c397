"""Mass-balance forcing from real monthly climate (HISTALP + ERA5 at Hintereisferner)."""

import numpy as np
import pandas as pd
import pytest

from glacier_assets.constants import END_YEAR, START_YEAR
from glacier_assets.inventory.forcing import (
    climate_profiles,
    ela_table_profiles,
    merge_monthly,
    pad_years,
    read_monthly_source,
)
from glacier_assets.inventory.region import ElaTableForcing, load_region_spec
from glacier_assets.science.massbalance import elevation_bins, equilibrium_line_altitude

from .conftest import hef_region_yaml

HEF_LONLAT = (10.7584, 46.8003)


def test_climate_units_and_merge(shared_data, tmp_path):
    spec = load_region_spec(hef_region_yaml(shared_data, tmp_path))
    histalp, era5 = (read_monthly_source(s, *HEF_LONLAT) for s in spec.forcing.sources)
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
    assert list(prof.years) == list(range(START_YEAR, END_YEAR + 1))
    ref = (prof.years >= 1960) & (prof.years <= 1989)
    assert equilibrium_line_altitude(z, prof.b[ref].mean(axis=0)) == pytest.approx(3051.0, abs=5)
    assert info.details["padded_years"] == [2019, 2020]
    assert abs(info.details["temperature_bias_k"]) < 5
    # balance falls with elevation loss, and the 2003 heat wave stands out
    assert (np.diff(prof.b[0][z < 3000]) > 0).all()
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
