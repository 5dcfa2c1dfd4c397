"""The period solver on response functions whose root is known."""

import math

import pytest

from glacier_assets.science.calibration import converged, solve_period


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
    # 0.3 km2: 1 % is 0.003 km2 (< 1 pixel); 4 pixels of 625 m2 = 0.0025 km2 is the looser bound
    assert converged(0.3024, 0.3)
    assert not converged(0.31, 0.3)


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
