"""The valley twin (issue 25): valley glaciers on the Oetztal's real terrain, a truth from another
flow model, in the files every region has. Built here for Hintereisferner's valley alone, with a
shorter spin-up than the bench's twin."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from glacier_assets.inventory.region import load_region_spec
from glacier_assets.inventory.valley_twin import build_valley_twin
from glacier_assets.science.shape import glacier_length, path_distances

pytestmark = pytest.mark.slow  # ~30 s of shallow-ice model


@pytest.fixture(scope="module")
def twin(shared_data, tmp_path_factory):
    return build_valley_twin(shared_data, tmp_path_factory.mktemp("valley") / "twin",
                             glaciers=("RGI50-11.00897",), spinup_years=150)


def test_the_twin_is_a_region_like_any_other(twin):
    spec = load_region_spec(twin)
    assert len(spec.outlines) == 5
    outlines = gpd.read_file(twin.parent / "outlines_2000.shp")
    assert list(outlines.RGIId) == ["RGI60-11.90001"] and outlines.Name[0] == "Twin of Hintereisferner"
    assert pd.read_csv(twin.parent / "reference_volumes.csv").volume_km3.iloc[0] > 0


def test_its_truth_is_a_valley_glacier_that_retreats(twin):
    """A tongue down the Rofental in 1960 that is shorter in 2020, as the record's glacier was."""
    with xr.open_dataset(twin.parent / "truth" / "thickness.nc") as truth:
        thk = truth.thk.sel(glacier_id="RGI60-11.90001")
        h1960, h2020, bed = thk.sel(time=1960).values, thk.sel(time=2020).values, truth.bed.values
    ice = h1960 >= 2
    head = np.unravel_index(np.argmax(np.where(ice, bed, -np.inf)), bed.shape)
    dist = path_distances(np.ones_like(ice), head, 100.0)
    length_1960 = glacier_length(ice, ice, bed, dist)
    assert length_1960 > 5000  # from the head under the Weisskugel to a tongue, not a blob in the basin
    assert bed[ice].min() < 2600
    assert glacier_length(h2020 >= 2, ice, bed, dist) < length_1960 - 200
    truth = pd.read_csv(twin.parent / "truth" / "truth.csv").set_index("year")
    assert truth.volume_km3[2020] < 0.8 * truth.volume_km3[1960]
