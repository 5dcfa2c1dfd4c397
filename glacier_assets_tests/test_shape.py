"""Where the simulated ice is (issue 25): shape figures on tiny masks, the report's rows and the
region's summary."""

import numpy as np
import pandas as pd
import pytest

from glacier_assets.science.quality import shape_summary, validation_table
from glacier_assets.science.shape import (
    glacier_length,
    grid_ceiling,
    lowest_elevation,
    lowest_fifth,
    main_body,
    path_distances,
    shape_flag,
    terminus_elevation,
    tongue_coverage,
)


def _valley():
    """A glacier 10 cells long (rows 0-9) and 2 wide, on a surface falling 100 m a row."""
    obs = np.zeros((12, 4), bool)
    obs[0:10, 1:3] = True
    dem = np.repeat(3500.0 - 100.0 * np.arange(12), 4).reshape(12, 4)
    return obs, dem


def test_the_tongue_is_the_lowest_fifth_by_elevation():
    obs, dem = _valley()
    low = lowest_fifth(obs, dem)
    assert low.sum() == 4 and low[8:10, 1:3].all()  # the lowest two rows of the outline
    assert not lowest_fifth(np.zeros_like(obs), dem).any()


def test_a_glacier_that_lost_its_tongue():
    obs, dem = _valley()
    ice = obs.copy()
    ice[7:, :] = False  # the simulated glacier ends three rows short
    ice[0:2, 3] = True  # and spreads beside its upper basin
    assert tongue_coverage(ice, obs, dem) == 0.0
    assert tongue_coverage(obs, obs, dem) == 1.0
    half = obs.copy()
    half[9, :] = False
    assert tongue_coverage(half, obs, dem) == 0.5
    assert np.isnan(tongue_coverage(ice, np.zeros_like(obs), dem))
    assert terminus_elevation(ice, obs, dem) == 2900.0 and lowest_elevation(obs, dem) == 2600.0
    # a detached patch of ice down-valley is not the glacier's terminus
    ice[11, 0] = True
    assert main_body(ice, obs)[11, 0] == np.False_ and terminus_elevation(ice, obs, dem) == 2900.0
    assert np.isnan(terminus_elevation(np.zeros_like(obs), obs, dem))


def test_the_model_grid_s_ceiling():
    coarse = np.array([[True, False], [False, False]])
    fine = np.zeros((4, 4), bool)
    fine[0:2, 0:3] = True  # the outline reaches half a coarse cell further than the grid can
    assert grid_ceiling(coarse, fine) == pytest.approx(4 / 6)
    assert grid_ceiling(coarse, np.kron(coarse, np.ones((2, 2), bool))) == 1.0


def test_shape_flags_name_what_is_wrong():
    assert shape_flag(0.85, 0.9) == ""
    assert shape_flag(0.62, 0.9) == "IoU 0.62 < 0.70"
    assert shape_flag(0.8, 0.3) == "tongue covered 0.30 < 0.50"
    assert shape_flag(0.6, 0.2) == "IoU 0.60 < 0.70, tongue covered 0.20 < 0.50"
    assert shape_flag(float("nan"), float("nan")) == ""
    assert shape_flag(0.8, 0.4995) == "tongue covered 0.49 < 0.50"  # never "0.50 < 0.50"


def test_the_region_s_shape_from_the_report():
    report = pd.DataFrame({
        "glacier_id": ["A", "A", "B"], "obs_year": [1975, 2001, 2003], "glacier_status": "calibrated",
        "rel_diff_pct": [0.1, -0.2, 0.3], "loo_rel_diff_pct": np.nan, "reference_volume_km3": np.nan,
        "volume_km3": 1.0, "iou": [0.9, 0.8, 0.6], "ceiling_iou": [0.95, 0.93, 0.9],
        "tongue_covered": [1.0, 0.9, 0.3], "shape_flag": ["", np.nan, "IoU 0.60 < 0.70, tongue covered 0.30 < 0.50"]})
    table = validation_table(report).set_index("glacier_id")
    assert table.loc["A", "iou"] == pytest.approx(0.85) and table.loc["A", "tongue_covered"] == pytest.approx(0.95)
    assert table.loc["A", "shape_flag"] == "" and table.loc["B", "shape_flag"].startswith("2003: IoU 0.60")
    summary = shape_summary(validation_table(report))
    assert summary == {"iou_median": 0.725, "iou_min": 0.6, "ceiling_iou_median": 0.92,
                       "tongue_covered_median": 0.625, "n_shape_flagged": 1}


def test_a_glacier_s_length_follows_its_valley_round_the_bend():
    """An L-shaped valley: 5 cells east, then 4 cells south; the length is the path's, not the
    straight line's, and a glacier whose tongue melts back is shorter."""
    valley = np.zeros((6, 7), bool)
    valley[1, 1:6] = True
    valley[1:6, 5] = True
    dist = path_distances(valley, (1, 1), 100.0)
    assert dist[1, 4] == pytest.approx(300.0)
    assert dist[5, 5] == pytest.approx(300.0 + 100.0 * np.sqrt(2) + 300.0)  # one diagonal step round the bend
    assert np.isinf(dist[0, 0]) and np.isinf(dist[5, 0])
    bed = 3500.0 - dist.clip(max=1e4)  # falling along the valley
    assert glacier_length(valley, valley, bed, dist) == pytest.approx(dist[5, 5])
    shorter = valley.copy()
    shorter[3:, 5] = False
    assert glacier_length(shorter, valley, bed, dist) == pytest.approx(dist[2, 5])
    assert np.isnan(glacier_length(np.zeros_like(valley), valley, bed, dist))
