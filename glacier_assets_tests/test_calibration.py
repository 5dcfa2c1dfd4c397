"""The period solver on response functions whose root is known."""

import math

import numpy as np
import pytest

from glacier_assets.science.calibration import TOL_PIXELS, converged, solve_period, solve_scalar


def glacier_like(root: float, obs: float, scale: float = 200.0):
    """Area falling smoothly with the ELA shift, equal to `obs` at `root`."""
    calls = []

    def evaluate(p: float):
        calls.append(p)
        return obs * math.exp(-(p - root) / scale), {"p": p}

    return evaluate, calls


@pytest.mark.parametrize("root", [-420.0, -35.0, 0.0, 80.0, 310.0])
def test_finds_the_root_within_tolerance(root):
    evaluate, calls = glacier_like(root, obs=5.0)
    fit = solve_period(evaluate, obs_km2=5.0, p0=0.0)
    assert fit.status == "converged"
    assert abs(fit.rel_diff_pct) <= 1.0
    assert fit.result == {"p": fit.p}
    assert fit.iterations == len(calls) <= 12
    # steps are capped at 150 m
    assert all(abs(b - a) <= 150.0 + 1e-9 for a, b in zip(calls, calls[1:]))


def test_small_glacier_pixel_tolerance():
    # 0.3 km2: 1 % is 0.003 km2; one 100 m model cell (16 pixels of 625 m2) = 0.01 km2 is the looser bound
    assert TOL_PIXELS * 625e-6 == pytest.approx(0.01)
    assert converged(0.3099, 0.3) and converged(0.2901, 0.3)
    assert not converged(0.3101, 0.3)


def test_unreachable_target_keeps_the_best_run_and_says_so():
    evaluate, calls = glacier_like(root=2000.0, obs=5.0)  # needs a shift far beyond the bounds
    fit = solve_period(evaluate, obs_km2=5.0, p0=0.0, bounds=(-600, 600))
    assert fit.status == "best"
    assert fit.p == 600.0  # pushed to the bound, the closest it can get
    assert fit.rel_diff_pct > 1.0
    assert fit.area_km2 == min((a for _, a in fit.history), key=lambda a: abs(a - 5.0))


def test_flat_response_is_flagged():
    fit = solve_period(lambda p: (4.0, None), obs_km2=5.0, max_iter=6)
    assert fit.status == "best" and fit.iterations <= 6


def test_starting_at_the_answer_costs_one_run():
    evaluate, calls = glacier_like(root=40.0, obs=2.0)
    fit = solve_period(evaluate, obs_km2=2.0, p0=40.0)
    assert fit.status == "converged" and len(calls) == 1


@pytest.mark.parametrize("slope", [0.4, -0.5])
def test_scalar_solver_either_direction_reuses_the_known_run(slope):
    """The geodetic calibration's solver: a balance rising or falling with the parameter."""
    calls = []

    def evaluate(x: float):
        calls.append(x)
        return -0.45 + slope * (x - 1.0) + 0.01 * (x - 1.0) ** 2, x

    fit = solve_scalar(evaluate, -0.30, 1.0, 1.2, tol=0.02, bounds=(0.5, 2.0), max_step=0.3, max_iter=4,
                       known=(1.0, -0.45, 1.0))
    assert fit.status == "converged" and abs(fit.value + 0.30) <= 0.02 and fit.result == fit.x
    assert 1.0 not in calls and len(calls) <= 3  # the known run is not made again
    assert all(abs(b - a) <= 0.3 + 1e-9 for a, b in zip([1.0, *calls], calls))


def test_scalar_solver_keeps_the_best_when_the_target_is_out_of_reach():
    fit = solve_scalar(lambda x: (0.1 * x, None), 5.0, 0.0, 0.5, tol=0.01, bounds=(-1.0, 1.0), max_step=1.0,
                       max_iter=4)
    assert fit.status == "best" and fit.x == 1.0 and fit.value == pytest.approx(0.1)


class _Slab:
    """A stand-in for IGMGlacier with the few methods the geodetic calibration calls: 1 km2 of
    ice (10 x 10 cells of 100 m) that thins by 0.3 m + 0.002 m per metre of ELA shift each year."""

    resolution = 100.0

    def __init__(self):
        self.runs, self.last_series = 0, {}

    def run(self, start, end, thk0=None, d_ela=0.0, keep=()):
        self.runs += 1
        thk, self.last_series = np.array(thk0, dtype=float), {}
        for year in range(int(start), int(end) + 1):
            self.last_series[year] = (float(thk.sum()) * 1e4 / 1e9, float(np.count_nonzero(thk >= 2)) * 1e-2)
            thk = thk - (0.3 + 0.002 * d_ela) if year < end else thk
        return {int(end): thk}

    def answer(self, run):
        """What a model answers a calibration's run request (igm_run/calibrate.py)."""
        saved = self.run(run.start, run.end, run.thk0, run.d_ela)
        return saved, self.last_series, []


def test_a_single_outline_glacier_gets_the_shift_after_it_from_the_geodetic_balance():
    """No outline after the geodetic period's start (one RGI outline, 2003): the shift after the
    outline, which nothing else constrains, is solved for the 2000-2020 balance; the years before
    the outline keep the area calibration's states."""
    from glacier_assets.igm_run.calibrate import Calibration, Period, calibrate_balance
    from glacier_assets.science.calibration import drive

    model, thk = _Slab(), np.full((10, 10), 50.0)
    before = {y: (0.05, 1.0) for y in range(1990, 2005)}  # 50 m on 1 km2, unchanged up to the outline (2004)
    model.run(2004, 2020, thk0=thk, d_ela=10.0)  # the area calibration carried its shift on after the outline
    cal = Calibration({2004: thk}, {**before, **model.last_series}, [], [Period(1930, 2004, None, [], d_ela=10.0)],
                       [])
    model.runs = 0
    new, record = drive(calibrate_balance("G", {2004: 1.0}, 100.0, cal, {"start": 2000, "end": 2020, "mwe": -0.5},
                                            lambda msg: None), model.answer)
    # 16 of the 20 years thin by 0.3 + 0.002 p m of ice: -0.5 m w.e./a needs p = 217.6 m
    assert record["parameter"] == "tail_shift_m" and record["from_year"] == 2004 and record["status"] == "converged"
    assert record["value"] == pytest.approx(217.6, abs=15) and abs(record["simulated_mwe"] + 0.5) <= 0.02
    assert record["uncalibrated_mwe"] == pytest.approx(-0.85 * 0.32 * 16 / 20, abs=1e-3)
    assert all(new.series[y] == before[y] for y in before) and set(new.series) == set(range(1990, 2021))
    assert model.runs == record["runs"] <= 2  # linear: one secant step lands on it
    assert "flag" not in record
    # a balance no shift within the bounds reaches: the best kept, and flagged beyond the error
    _, record = drive(calibrate_balance("G", {2004: 1.0}, 100.0, cal, {"start": 2000, "end": 2020, "mwe": -2.0,
                                                                          "err": 0.2}, lambda msg: None), model.answer)
    assert record["status"] == "best" and record["value"] == 600.0
    assert record["flag"].startswith("geodetic balance missed (-1.020 vs -2.000 +- 0.20 m w.e./a, tail_shift_m 600)")


class _Ramp:
    """A stand-in for IGM whose glacier thins everywhere by 0.3 m + 0.002 m per metre of ELA shift
    each year (before 1960 the spin-up's shift, `d_ela` plus the offset's trend `spinup_shift`), from
    a field of 1,600 cells of 2-120 m: its area shrinks smoothly as cells fall below 2 m."""

    def __init__(self):
        self.base = np.linspace(2.0, 120.0, 1600)[np.random.default_rng(1).permutation(1600)].reshape(40, 40)
        self.starts: list[int] = []

    def answer(self, run):
        from glacier_assets.science.massbalance import spinup_shift

        self.starts.append(run.start)
        thk, series = (self.base if run.thk0 is None else run.thk0).copy(), {}
        for year in range(run.start, run.end + 1):
            series[year] = (float(thk.sum()) * 1e4 / 1e9, float(np.count_nonzero(thk >= 2)) * 1e-2)
            if year < run.end:
                shift = run.d_ela + spinup_shift(year, run.spinup_offset)
                thk = np.maximum(thk - (0.3 + 0.002 * shift), 0.0)
        return {run.end: thk}, series, []


def test_a_balance_before_the_first_outline_sets_the_spinup_offset():
    """A balance period mostly before a glacier's only outline (HEF: WGMS 1960-2003, one 2003
    outline) is met by the spin-up's ELA offset, the shift to the outline solved again for each
    offset: the area at the outline still met, the 1960 glacier made larger for a more negative
    balance. The three cases by the outlines' model times and the period."""
    from glacier_assets.constants import SPINUP_START, TREND_SPINUP_START
    from glacier_assets.igm_run.calibrate import calibrate_balance, calibrate_outlines, glacier_runs
    from glacier_assets.science.calibration import drive, geodetic_parameter, spinup_start
    from glacier_assets.science.massbalance import spinup_shift

    assert geodetic_parameter([2004], 1960, 2004) == "spinup_offset_m"
    assert geodetic_parameter([2004], 2000, 2020) == "tail_shift_m"  # mostly after the only outline
    assert geodetic_parameter([1976, 1991, 2001, 2010], 2000, 2020) == "balance_gradient_factor"
    assert geodetic_parameter([1976, 2020], 2000, 2020) == "tail_shift_m"  # no outline within the period but the last

    model, obs = _Ramp(), 11.0
    cal = drive(calibrate_outlines("G", {2004: obs}, 100.0, 0.0, lambda msg: None, spinup_start=TREND_SPINUP_START),
                model.answer)
    assert cal.rows[0]["status"] == "converged" and cal.spinup_offset == 0.0
    new, record = drive(calibrate_balance("G", {2004: obs}, 100.0, cal, {"start": 1960, "end": 2004, "mwe": -0.6},
                                            lambda msg: None), model.answer)
    assert record["parameter"] == "spinup_offset_m" and record["from_year"] == TREND_SPINUP_START, record
    assert record["status"] == "converged" and abs(record["simulated_mwe"] + 0.6) <= 0.02, record
    # the thinning after 1960 is faster (the shift higher), the spin-up's slower: an offset below zero
    assert record["value"] < 0 and new.spinup_offset == pytest.approx(record["value"], abs=1e-4)
    assert new.periods[0].d_ela > cal.periods[0].d_ela
    assert new.rows[0]["status"] == "converged" and abs(new.rows[0]["rel_diff_pct"]) <= 1.0
    assert new.series[1960][0] > cal.series[1960][0]  # a larger 1960 glacier
    # the offset is a trend: twice its value 150 years before 1960, none from 1960
    assert spinup_shift(TREND_SPINUP_START, -50.0) == -100.0 and spinup_shift(1885, -50.0) == -50.0
    assert spinup_shift(1960, -50.0) == 0.0 and spinup_shift(1700, -50.0) == -100.0
    # a whole glacier's runs: such a glacier spins up from TREND_SPINUP_START, one without that balance
    # (or with a balance after its outline) from SPINUP_START
    model = _Ramp()
    cal, record, _ = drive(glacier_runs("G", {2004: obs}, 100.0, 0.0, lambda msg: None,
                                        {"start": 1960, "end": 2004, "mwe": -0.6}), model.answer)
    assert min(model.starts) == TREND_SPINUP_START and SPINUP_START not in model.starts
    assert cal.spinup_start == TREND_SPINUP_START
    assert record["from_year"] == TREND_SPINUP_START and record["status"] == "converged", record
    assert cal.rows[0]["start"] == TREND_SPINUP_START and cal.rows[0]["spinup"]
    assert spinup_start({2004: obs}, {"start": 2000, "end": 2020, "mwe": -0.6}) == SPINUP_START
    assert spinup_start({2004: obs}, None) == SPINUP_START


def test_nested_and_left_out_searches_start_from_the_nearest_known_shifts():
    """The geodetic calibration's nested searches start each period from the shifts expected at
    the new gradient factor (the line through the two nearest factors tried); a left-out outline's
    merged period starts from its two periods' shifts weighted by their lengths."""
    from glacier_assets.igm_run.calibrate import Period, merged_shift, shifts_guess

    tried = [(1.0, [10.0, 50.0, -20.0])]
    assert shifts_guess(tried, 1.3) == [10.0, 50.0, -20.0]  # one factor tried: its shifts
    tried.append((1.3, [10.0, 80.0, 10.0]))
    assert shifts_guess(tried, 1.15) == pytest.approx([10.0, 65.0, -5.0])  # between: interpolated
    assert shifts_guess(tried, 1.6) == pytest.approx([10.0, 110.0, 40.0])  # beyond: the line carried on
    tried.append((0.7, [10.0, 0.0, -70.0]))
    assert shifts_guess(tried, 0.8) == pytest.approx([10.0, 50.0 / 3, -160.0 / 3])  # the nearest two: 0.7, 1.0
    spinup, nxt = Period(1930, 1975, None, None, d_ela=-30.0), Period(1975, 1990, None, None, d_ela=30.0)
    assert merged_shift(spinup, nxt) == pytest.approx((-30.0 * 45 + 30.0 * 15) / 60)


def test_each_phase_counts_the_model_years_it_ran():
    """What a calibrated glacier costs, start-up aside, is its model years: each run's years are
    added to its phase as the runs pass through (`glacier_runs` tallies the spin-up, the later
    outlines, the geodetic balance and the leave-one-out), and the figures give them flat."""
    from glacier_assets.igm_run.calibrate import (
        Calibration,
        Period,
        TileRun,
        _counted,
        calibrate_balance,
        model_year_figures,
    )
    from glacier_assets.science.calibration import drive

    def runs():
        answers = [(yield TileRun(1930, 1975, None, 0.0)), (yield TileRun(1930, 1975, None, 60.0)),
                   (yield TileRun(1975, 1990, None, 60.0))]
        return answers

    years: dict = {}
    got = drive(_counted(runs(), years, lambda run: "spinup" if run.start == 1930 else "outlines"), lambda run: run.d_ela)
    assert got == [0.0, 60.0, 60.0]  # answers pass through to the generator, its value back out
    assert years == {"spinup": 90, "outlines": 15}
    model, thk = _Slab(), np.full((10, 10), 50.0)
    model.run(2004, 2020, thk0=thk, d_ela=10.0)
    cal = Calibration({2004: thk}, {**{y: (0.05, 1.0) for y in range(1990, 2005)}, **model.last_series}, [],
                       [Period(1930, 2004, None, [], d_ela=10.0)], [])
    model.runs = 0
    drive(_counted(calibrate_balance("G", {2004: 1.0}, 100.0, cal, {"start": 2000, "end": 2020, "mwe": -0.5},
                                       lambda msg: None), years, lambda run: "geodetic"), model.answer)
    assert model.runs >= 1 and years["geodetic"] == 16 * model.runs  # each run 2004-2020
    assert model_year_figures(years) == {"model_years": 105 + 16 * model.runs, "model_years_spinup": 90,
                                         "model_years_outlines": 15, "model_years_geodetic": 16 * model.runs,
                                         "model_years_validation": 0}


def test_only_a_balance_met_by_the_spinup_changes_a_simulations_fingerprint():
    """Since the spin-up offset, a glacier whose balance period lies before its first outline is
    simulated differently: its fingerprint says so, every other glacier's stays as it was."""
    from glacier_assets.fingerprints import fingerprint, simulation_fingerprint

    def before(targets, geodetic):  # the fingerprint as it was made before the spin-up offset
        return fingerprint("igm_simulation", "dom", None, {}, {str(k): v for k, v in targets.items()}, geodetic)

    wgms, hugonnet = {"start": 1960, "end": 2004, "mwe": -0.48}, {"start": 2000, "end": 2020, "mwe": -0.5}
    assert simulation_fingerprint("G", "dom", None, {}, {2004: 8.0}, wgms) != before({2004: 8.0}, wgms)
    assert simulation_fingerprint("G", "dom", None, {}, {2004: 8.0}, hugonnet) == before({2004: 8.0}, hugonnet)
    assert simulation_fingerprint("G", "dom", None, {}, {1976: 9.0, 2001: 8.0}, hugonnet) == \
        before({1976: 9.0, 2001: 8.0}, hugonnet)
