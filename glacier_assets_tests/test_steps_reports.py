"""What the region-wide reports are made of, from tiny simulation files without IGM: the rows of
the calibration report, a simulation's area and volume by epoch, its thickness at a date, and its
thickness and mass balance against observations (steps/reports.py, steps/evaluation.py).

The products of a slab of ice on n x n model cells of 100 m cover (4n + 4)^2 - 4 cells of 25 m
(see test_steps_products.py): 396 cells for 4 x 4, 252 for 3 x 3.
"""

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from shapely.geometry import box

from glacier_assets.constants import EPOCHS, GEOGRAPHIC_CRS
from glacier_assets.science.grids import Grid
from glacier_assets.simulation_file import SimulationFile
from glacier_assets.steps.evaluation import (
    evaluate_mass_balance,
    evaluate_thickness,
    read_wgms_balance,
    simulated_geodetic_balance,
    simulated_mass_balance,
    simulated_thickness_at,
)
from glacier_assets.steps.reports import REPORT_COLUMNS, calibration_rows

from .tiny import CELL_KM2, UTM, X0, Y0, A, model_grid, slab, write_fake_simulation


def _rows(*outlines):
    """Inventory rows of A: (role, year, epoch, area, (xmin, ymin, xmax, ymax) in UTM)."""
    geoms = gpd.GeoSeries([box(*b) for *_, b in outlines], crs=UTM).to_crs(GEOGRAPHIC_CRS)
    return gpd.GeoDataFrame([{"glacier_id": A, "role": r, "year": y, "epoch": e, "area_km2": a}
                             for r, y, e, a, _ in outlines], geometry=list(geoms), crs=GEOGRAPHIC_CRS)


def test_calibration_rows_compare_each_outline_at_its_own_model_time(tmp_path):
    # the ice at 1975 (4 x 4 cells, 256 product cells): the initial outline, 50 m longer to the south,
    # holds them and 32 more; at 2001, 3 x 3 cells (144), the control outline 50 m longer again
    late = slab(thickness=50.0)
    late[4, :] = 0.0
    late[:, 4] = 0.0
    calibration = [{"obs_year": 1974, "d_ela_m": -35.0, "iterations": 4, "status": "converged", "shift_flag": ""},
                   {"obs_year": 2000, "d_ela_m": 20.0, "iterations": 6, "status": "converged",
                    "shift_flag": "jump +250 m beyond +-200 m"}]
    validation = [{"obs_year": 2000, "predicted_area_km2": 0.17, "rel_diff_pct": 6.25}]
    sim = write_fake_simulation(tmp_path / "sim.nc", model_grid(), {y: slab() for y in EPOCHS},
                                outline_thk={1975: slab(), 2001: late}, calibration=calibration,
                                validation=validation, status="flagged: implausible shift at 2000")
    rows = _rows(("control", 2010, 2010, 0.1, (X0, Y0, X0 + 300, Y0 + 300)),  # no thickness saved at 2011
                 ("control", 2000, 2000, 0.16, (X0 + 100, Y0 - 50, X0 + 400, Y0 + 300)),
                 ("initial", 1974, 1970, 0.18, (X0, Y0 - 50, X0 + 400, Y0 + 400)))
    out = calibration_rows(rows, sim, (0.02, 2000, "table"))
    assert [list(r) for r in out] == [REPORT_COLUMNS] * 2
    first, second = out
    shape = {k: first.pop(k) for k in ("ceiling_iou", "tongue_covered", "z_terminus_m", "z_outline_min_m", "shape_flag")}
    assert 0.6 < shape["ceiling_iou"] <= 1.0 and shape["shape_flag"] == ""
    assert all(np.isnan(shape[k]) for k in ("tongue_covered", "z_terminus_m", "z_outline_min_m"))  # no DEM given
    assert first == {
        "glacier_id": A, "role": "initial", "epoch": 1970, "obs_year": 1974, "model_time": 1975,
        "obs_area_km2": 0.18, "sim_area_km2": pytest.approx(256 * CELL_KM2),
        "rel_diff_pct": pytest.approx(100 * (0.16 - 0.18) / 0.18), "iou": pytest.approx(256 / 288), "d_ela_m": -35.0, "shift_flag": "", "iterations": 4, "status": "converged",
        "glacier_status": "flagged: implausible shift at 2000", "loo_area_km2": pytest.approx(np.nan, nan_ok=True),
        "loo_rel_diff_pct": pytest.approx(np.nan, nan_ok=True), "volume_km3": pytest.approx(0.016),
        "reference_volume_km3": 0.02, "reference_year": 2000}
    assert second["model_time"] == 2001 and second["sim_area_km2"] == pytest.approx(144 * CELL_KM2)
    assert second["rel_diff_pct"] == pytest.approx(100 * (144 * CELL_KM2 - 0.16) / 0.16)
    assert second["iou"] == pytest.approx(144 / 168) and second["volume_km3"] == pytest.approx(9 * 0.01 * 0.05)
    assert (second["d_ela_m"], second["iterations"], second["shift_flag"]) == (20.0, 6, "jump +250 m beyond +-200 m")
    assert (second["loo_area_km2"], second["loo_rel_diff_pct"]) == (0.17, 6.25)
    # no reference volume, no calibration record: NaN and "uncalibrated", not a guess
    bare = write_fake_simulation(tmp_path / "bare.nc", model_grid(), {}, outline_thk={1975: slab()},
                                 status="uncalibrated")
    (row,) = calibration_rows(rows, bare, None)
    assert np.isnan(row["reference_volume_km3"]) and np.isnan(row["d_ela_m"])
    assert (row["status"], row["glacier_status"], row["iterations"]) == ("uncalibrated", "uncalibrated", 0)


def test_calibration_rows_see_a_glacier_that_lost_its_tongue(tmp_path):
    """The outline runs 400 m further down-valley (south, 100 m lower a cell) than the simulated
    ice: half of it is covered, none of its tongue, and the ice ends far above the outline's end."""
    grid = model_grid()
    dem = np.repeat(3500.0 - 100.0 * np.arange(12), 12).reshape(12, 12)  # row 0 is the north
    sim = write_fake_simulation(tmp_path / "sim.nc", grid, {}, outline_thk={2004: slab()}, status="calibrated")
    (row,) = calibration_rows(_rows(("initial", 2003, 2000, 0.32, (X0, Y0 - 400, X0 + 400, Y0 + 400))), sim, None, dem)
    assert 0.4 < row["iou"] < 0.55 and row["ceiling_iou"] == 1.0
    assert row["tongue_covered"] == 0.0
    # the ice ends ~400 m higher up
    assert -400.0 <= row["z_outline_min_m"] - row["z_terminus_m"] <= -300.0
    assert row["shape_flag"] == f"IoU {row['iou']:.2f} < 0.70, tongue covered 0.00 < 0.50"


def test_simulation_summary_counts_area_as_the_products_do(tmp_path):
    grid = model_grid()
    thk = {y: slab() if y < 2000 else slab(12, 5, 8) if y < 2020 else np.zeros(grid.shape) for y in EPOCHS}
    summary = SimulationFile(write_fake_simulation(tmp_path / "sim.nc", grid, thk)).load().summary().set_index("year")
    assert list(summary.index) == list(EPOCHS)
    assert summary.loc[1960, "area_km2"] == pytest.approx(256 * CELL_KM2)
    assert summary.loc[2000, "area_km2"] == pytest.approx(144 * CELL_KM2)
    assert summary.loc[1995, "volume_km3"] == pytest.approx(0.016)
    assert summary.loc[2015, "volume_km3"] == pytest.approx(0.009)
    assert summary.loc[2020, "area_km2"] == summary.loc[2020, "volume_km3"] == 0.0


def test_the_thickness_at_a_date_is_the_nearest_saved_one_at_25m(tmp_path):
    sim = write_fake_simulation(tmp_path / "sim.nc", model_grid(), {2000: slab(), 2005: slab(thickness=60.0)},
                                outline_thk={2001: slab(thickness=80.0)})
    thk, grid, when = simulated_thickness_at(sim, 2001)
    assert when == 2001 and thk.max() == 80.0
    assert grid == Grid(UTM, X0 - 400.0, Y0 + 800.0, 25.0, 48, 48) and thk.shape == (48, 48)
    assert simulated_thickness_at(sim, 2003)[2] == 2001  # a tie goes to the earlier time
    assert simulated_thickness_at(sim, 2004)[2] == 2005 and simulated_thickness_at(sim, 2004)[0].max() == 60.0
    assert simulated_thickness_at(sim, 1900)[2] == 1960


def test_thickness_against_an_observed_raster_in_its_own_grid(tmp_path):
    sim = write_fake_simulation(tmp_path / "sim.nc", model_grid(), {2000: slab()})
    thk, grid, _ = simulated_thickness_at(sim, 2000)
    observed = np.where(thk >= 20.0, thk - 10.0, -9999.0).astype("float32")  # 10 m thinner where it is thick
    with rasterio.open(tmp_path / "obs.tif", "w", driver="GTiff", width=grid.width, height=grid.height, count=1,
                       dtype="float32", crs=UTM, transform=grid.transform, nodata=-9999.0) as dst:
        dst.write(observed, 1)
    skill = evaluate_thickness(sim, tmp_path / "obs.tif", 2000)
    assert skill["n"] == int((thk >= 20.0).sum()) and skill["model_time"] == 2000
    assert skill["bias_m"] == pytest.approx(10.0) and skill["rmse_m"] == pytest.approx(10.0)
    assert skill["mean_simulated_m"] - skill["mean_observed_m"] == pytest.approx(10.0)


def test_the_geodetic_balance_and_its_calibration_from_the_yearly_series(tmp_path):
    series = {2000: (1.0, 10.0, -0.4), 2010: (0.95, 9.6, -0.5), 2020: (0.9, 9.0, np.nan)}
    record = {"parameter": "balance_gradient_factor", "value": 1.153, "from_year": 2000, "status": "converged"}
    sim = write_fake_simulation(tmp_path / "sim.nc", model_grid(), {}, series=series, geodetic=record)
    out = simulated_geodetic_balance(sim, 2000, 2020)
    # 0.1 km3 of ice over a mean 9.5 km2 in 20 years, at 850 kg m-3
    assert out["simulated_mb_mwe"] == pytest.approx(-0.1 / 9.5 * 1e3 * 0.85 / 20)
    assert out["mean_area_km2"] == 9.5 and out["mb_calibration"] == "balance_gradient_factor 1.153 from 2000, converged"
    outside = simulated_geodetic_balance(write_fake_simulation(tmp_path / "b.nc", model_grid(), {}, series=series),
                                         1990, 2020)
    assert np.isnan(outside["simulated_mb_mwe"]) and np.isnan(outside["mean_area_km2"])
    assert outside["mb_calibration"] == ""


def test_annual_balance_against_a_wgms_table(tmp_path):
    years = range(2000, 2006)
    obs = [-400.0, -650.0, 120.0, -900.0, np.nan, -300.0]  # mm w.e.; 2004 not measured
    series = {y: (1.0, 1.0, (o / 1000 + 0.1) if y < 2005 else np.nan) for y, o in zip(years, obs)}
    sim = write_fake_simulation(tmp_path / "sim.nc", model_grid(), {}, series=series)
    assert list(simulated_mass_balance(sim).index) == [2000, 2001, 2002, 2003]  # none simulated for 2004-2005
    wgms_table = pd.DataFrame({"YEAR": list(years), "ANNUAL_BALANCE": obs, "WGMS_ID": 491})
    wgms_table.to_csv(tmp_path / "wgms.csv", index=False)
    wgms = read_wgms_balance(tmp_path / "wgms.csv")
    assert wgms.to_dict() == {2000: -0.4, 2001: -0.65, 2002: 0.12, 2003: -0.9, 2005: -0.3}
    skill = evaluate_mass_balance(sim, tmp_path / "wgms.csv")
    assert (skill["n_years"], skill["first_year"], skill["last_year"]) == (4, 2000, 2003)
    assert skill["bias_mwe"] == pytest.approx(0.1) and skill["rmse_mwe"] == pytest.approx(0.1)
    assert skill["correlation"] == pytest.approx(1.0)
    pd.DataFrame({"YEAR": [2000], "BALANCE": [1.0]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match=r"bad.csv: not a WGMS mass-balance table \(no ANNUAL_BALANCE column\)"):
        read_wgms_balance(tmp_path / "bad.csv")


def test_calibration_records_are_read_back_as_written(tmp_path):
    """The JSON the calibration writes into the simulation is what the report rows read."""
    calibration = [{"obs_year": 1974, "d_ela_m": 12.5, "iterations": 3, "status": "tolerance missed", "shift_flag": ""}]
    sim = write_fake_simulation(tmp_path / "sim.nc", model_grid(), {}, outline_thk={1975: slab()},
                                calibration=calibration, status="flagged: tolerance missed at 1974 (+3.10 %)")
    with xr.open_dataset(sim) as ds:
        assert json.loads(ds.attrs["calibration"]) == calibration
    (row,) = calibration_rows(_rows(("initial", 1974, 1970, 0.25, (X0 - 50, Y0 - 50, X0 + 450, Y0 + 450))), sim, None)
    assert (row["status"], row["d_ela_m"], row["iterations"]) == ("tolerance missed", 12.5, 3)
    assert row["glacier_status"] == "flagged: tolerance missed at 1974 (+3.10 %)"


def test_a_sign_of_life_when_a_glacier_runs_long(tmp_path):
    """igm_run/progress.py: every line goes to the run log and to the progress file the main job
    reads; a tick says 'still running' with the model year when the child was quiet too long."""
    import time

    from glacier_assets.igm_run.progress import Progress, read_progress

    lines: list[str] = []
    progress = Progress(lines.append, tmp_path / "progress" / "run1.json", quiet_s=0.05)
    progress("G: calibrating 1960-1990, trial 2: d_ela +10.0 m -> area 1.2 km2")
    progress.tick(1971.0)  # not quiet long enough yet
    assert lines == ["G: calibrating 1960-1990, trial 2: d_ela +10.0 m -> area 1.2 km2"]
    time.sleep(0.06)
    progress.tick(1972.4)
    time.sleep(0.06)
    progress.tick(1975.0)
    assert lines[1:] == ["G: calibrating 1960-1990, trial 2: d_ela +10.0 m ... still running, model year 1972",
                         "G: calibrating 1960-1990, trial 2: d_ela +10.0 m ... still running, model year 1975"]
    found = read_progress(tmp_path / "progress", since=time.time() - 60)
    assert list(found) == ["run1"] and found["run1"]["line"] == lines[-1]
    assert read_progress(tmp_path / "progress", since=time.time() + 60) == {}
