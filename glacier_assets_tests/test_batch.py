"""Glaciers packed into one IGM run and calibrated side by side (igm_run/batch.py): each gets the
answers its own run gives it."""

import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from glacier_assets.constants import EMULATOR_RELPATH, EPOCHS, domain_relpath, simulation_relpath
from glacier_assets.inventory.region import load_region_spec
from glacier_assets.science.resample import product_area_km2
from glacier_assets.workflow import geodetic_targets

from .conftest import DEMO_PAIR

pytestmark = pytest.mark.igm

CHILD = """
import json, sys
from pathlib import Path
from glacier_assets.igm_run.batch import simulate_batch
from glacier_assets.igm_run.model import IGMSettings
a = json.loads(sys.argv[1])
settings = IGMSettings(threads=1, emulator_weights=a["emulator"], rheology_factor=a["factor"], leave_one_out=False)
out = simulate_batch([Path(p) for p in a["domains"]], [Path(p) for p in a["outputs"]], settings,
                     [{int(t): v for t, v in tg.items()} for tg in a["targets"]], a["geodetic"], log=lambda m: None)
print(json.dumps(out))
"""


def _epochs(sim: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    thk = sim["thk"].values
    return (np.array([product_area_km2(t, 100.0) for t in thk]), thk.sum(axis=(1, 2)) * 1e-5)


def test_a_packed_calibration_gives_the_answers_of_a_glacier_alone(demo_chain, tmp_path):
    """Two copies of a demo glacier calibrated side by side in one packed run (every round one
    IGM run of both tiles) against its own calibration by the chain (a Pipes child): the
    machinery - packing, per-tile runs and calendars, the search generators advanced together,
    the emulator rewound per round, each glacier's file - changes nothing that matters. (Packing
    *different* glaciers shares one emulator between them, which moves their volumes by several
    per cent: README, "Many glaciers in one IGM run".)"""
    products = demo_chain["products"]
    gid = DEMO_PAIR[1]
    alone = xr.load_dataset(products / simulation_relpath(gid))
    geo = geodetic_targets(load_region_spec(demo_chain["region"]))
    targets = {str(r["time"]): r["obs_area_km2"] for r in json.loads(alone.attrs["calibration"])}
    args = {"domains": [str(products / domain_relpath(gid))] * 2,
            "outputs": [str(tmp_path / "a.nc"), str(tmp_path / "b.nc")],
            "emulator": str(products / EMULATOR_RELPATH), "factor": float(alone.attrs["rheology_factor"]),
            "targets": [targets, targets], "geodetic": [geo[gid], geo[gid]]}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [f["batch_size"] for f in figures] == [2, 2] and figures[0]["calibration_status"] == "calibrated"
    for name in ("a.nc", "b.nc"):
        packed = xr.load_dataset(tmp_path / name)
        rows, rows_alone = json.loads(packed.attrs["calibration"]), json.loads(alone.attrs["calibration"])
        # the same outlines met within the same tolerance, in the same form
        assert [r["time"] for r in rows] == [r["time"] for r in rows_alone]
        assert all(r["status"] == "converged" and abs(r["rel_diff_pct"]) <= 1.0 for r in rows), rows
        fit, fit_alone = json.loads(packed.attrs["geodetic_calibration"]), json.loads(alone.attrs["geodetic_calibration"])
        assert fit["status"] == fit_alone["status"] == "converged"
        assert abs(fit["simulated_mwe"] - fit["geodetic_mwe"]) <= 0.02
        assert json.loads(packed.attrs["validation"]) == []  # the leave-one-out is left out here, to keep it short
        assert set(packed.variables) == set(alone.variables) and list(packed["time"].values) == list(EPOCHS)
        # the same glacier through time: measured 0.25 % in area and 1 % in volume at worst
        (area, volume), (area_alone, volume_alone) = _epochs(packed), _epochs(alone)
        assert np.abs(area / area_alone - 1).max() <= 0.02, (area, area_alone)
        assert np.abs(volume / volume_alone - 1).max() <= 0.03, (volume, volume_alone)
