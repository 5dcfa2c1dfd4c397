"""Issue 25: each glacier's IGM mobility made consistent with the inversion's flux
(`IGMSettings.flow_consistency`, igm_run/settings.py and model.py)."""

import numpy as np
import pytest

from glacier_assets.constants import CONSISTENCY_SCALE_M
from glacier_assets.igm_run.emulator import reference_icecap
from glacier_assets.igm_run.glacier import IGMGlacier
from glacier_assets.igm_run.settings import IGMSettings
from glacier_assets.science.inversion import flux_consistency

pytestmark = pytest.mark.igm


def test_the_mobility_is_the_measured_flux_ratio_and_then_carries_the_flux():
    """The mobility is a field: the ratio of the inversion's flux to IGM's on the first guess,
    smoothed (`flux_consistency_field`); IGM's rate factor is the settings' times it, and on the
    first guess IGM then carries the inversion's flux."""
    domain = reference_icecap(n=40)
    settings = IGMSettings(mapping="identity", cold_iterations=300, flow_consistency=True)
    assert settings.consistency_scale_m == CONSISTENCY_SCALE_M
    model = IGMGlacier(domain, settings)
    model.run(1960, 1961)
    ratio, field = model.flux_ratios[0], np.asarray(model.mobility[0])
    outline = domain["outline_initial"].values > 0
    assert np.isfinite(ratio) and field.shape == outline.shape
    assert np.median(field[outline]) == pytest.approx(ratio, rel=0.5)  # the field varies about the one ratio
    rows, cols = model.packing.tiles[0].slices
    arrhenius = model.state.arrhenius.numpy()[::-1][rows, cols]
    a0 = float(model.cfg.processes.iceflow.physics.viscosity.arrhenius)
    np.testing.assert_allclose(arrhenius, a0 * field, rtol=1e-5)
    # on the first guess, IGM's flux with that mobility is the inversion's (within the solver's accuracy)
    fresh = IGMGlacier(domain, settings)
    fresh.mobility[0] = field
    fresh._set_mobility()
    fresh._init_iceflow()
    from igm.processes.iceflow.unified.evaluator import evaluate_iceflow

    evaluate_iceflow(fresh.cfg, fresh.state)
    again = flux_consistency(domain["flux_initial"].values, domain["thk"].values, fresh._tile_speed(0), outline)
    assert again == pytest.approx(1.0, abs=0.25)


def test_off_by_default_the_fields_are_the_settings_values():
    model = IGMGlacier(reference_icecap(n=30), IGMSettings(mapping="identity", cold_iterations=10))
    phys = model.cfg.processes.iceflow.physics
    assert np.allclose(model.state.arrhenius.numpy(), float(phys.viscosity.arrhenius))
    assert np.allclose(model.state.tau_ref.numpy(), float(phys.sliding.tau_ref))
    assert not model.settings.flow_consistency
