"""Glaciers packed into one IGM run and calibrated side by side (igm_run/batch.py): each gets the
answers its own run gives it."""

import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from glacier_assets.constants import EMULATOR_RELPATH, EPOCHS, domain_relpath, simulation_relpath
from glacier_assets.igm_run.batch import groups_by_size, processes_by_model
from glacier_assets.igm_run.glacier import model_key
from glacier_assets.igm_run.settings import IGMSettings
from glacier_assets.inventory.region import load_region_spec
from glacier_assets.science.calibration import TOL_PCT
from glacier_assets.science.packing import model_shape
from glacier_assets.science.resample import product_area_km2
from glacier_assets.steps.inputs import geodetic_targets

from .conftest import DEMO_PAIR

CHILD = """
import json, sys
from pathlib import Path
from glacier_assets.igm_run.batch import simulate_glaciers
from glacier_assets.igm_run.simulate import simulate_glacier
from glacier_assets.constants import MELT_DOWNVALLEY_M
from glacier_assets.igm_run.settings import IGMSettings
from glacier_assets.igm_run.progress import Progress
a = json.loads(sys.argv[1])
settings = IGMSettings(threads=1, rheology_factor=a["factor"], leave_one_out=False, mapping="identity",
                       flow_consistency=True, melt_downvalley_m=MELT_DOWNVALLEY_M)  # IGMRunner's defaults
lines = []
for g in a["glaciers"]:  # a sign of life at every time step (quiet_s=0), recorded beside the run
    simulate_glacier(Path(g["domain"]), Path(g["alone"]), settings, Progress(lines.append, a["progress"], quiet_s=0),
                     targets=g["targets"], geodetic=g["geodetic"])
print(json.dumps(lines))
print(json.dumps(simulate_glaciers(a["glaciers"], settings, lambda m: None)))
"""


def _epochs(sim: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    thk = sim["thk"].values
    return (np.array([product_area_km2(t, 100.0) for t in thk]), thk.sum(axis=(1, 2)) * 1e-5)


@pytest.mark.igm
def test_glaciers_packed_together_get_the_answers_they_get_alone(demo_chain, tmp_path):
    """The demo pair with IGM's identity mapping (each cell's velocities solved): each glacier
    calibrated alone, then both side by side in one packed grid (`simulate_glaciers`, what the
    `simulate-batch` child runs). The same outlines met in the same form, and through time the
    areas agree within the calibration's tolerance and the volumes within 3 % (measured: 0.5 % and
    1.8 %; a plain run packed differs from its run alone by ~1e-5 until 2000 and 0.1 % by 2020, and
    the rest is the root finders landing elsewhere within the tolerance). The network emulator
    does not pack this way (docs/scaling.md), so with it each glacier of a batch runs alone."""
    products = demo_chain["products"]
    chain = {g: xr.load_dataset(products / simulation_relpath(g)) for g in DEMO_PAIR}
    geo = geodetic_targets(load_region_spec(demo_chain["region"]))
    glaciers = [{"glacier_id": g, "domain": str(products / domain_relpath(g)), "output": str(tmp_path / f"packed_{g}.nc"),
                 "alone": str(tmp_path / f"alone_{g}.nc"), "geodetic": geo[g],
                 "targets": {str(r["time"]): r["obs_area_km2"] for r in json.loads(chain[g].attrs["calibration"])}}
                for g in DEMO_PAIR]
    args = {"glaciers": glaciers, "factor": float(chain[DEMO_PAIR[0]].attrs["rheology_factor"]),
            "progress": str(tmp_path / "progress.json")}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [figures[g]["batch_size"] for g in DEMO_PAIR] == [2, 2], figures
    lines = json.loads(proc.stdout.strip().splitlines()[-2])  # igm_run/progress.py: phases, trials, model years
    ticks = [ln for ln in lines if "still running, model year" in ln]
    assert any(f"{DEMO_PAIR[0]}: calibrating" in ln for ln in ticks) and len(ticks) > 100, lines[:20]
    assert json.loads((tmp_path / "progress.json").read_text())["line"] == lines[-1]
    for g in DEMO_PAIR:
        packed, alone = xr.load_dataset(tmp_path / f"packed_{g}.nc"), xr.load_dataset(tmp_path / f"alone_{g}.nc")
        assert packed.attrs["iceflow_mapping"] == alone.attrs["iceflow_mapping"] == "identity"
        rows, rows_alone = json.loads(packed.attrs["calibration"]), json.loads(alone.attrs["calibration"])
        assert [r["time"] for r in rows] == [r["time"] for r in rows_alone]
        assert [r["status"] for r in rows] == [r["status"] for r in rows_alone]
        fit, fit_alone = json.loads(packed.attrs["geodetic_calibration"]), json.loads(alone.attrs["geodetic_calibration"])
        # the balance search stops converged (within 0.02 m w.e./a) or keeps the best of its trials:
        # which of the two is where the root finders land, within the area tolerance
        assert fit["status"] == fit_alone["status"] or {fit["status"], fit_alone["status"]} <= {"converged", "best"}
        assert set(packed.variables) == set(alone.variables) and list(packed["time"].values) == list(EPOCHS)
        (area, volume), (area_alone, volume_alone) = _epochs(packed), _epochs(alone)
        tolerance = np.maximum(TOL_PCT / 100 * area_alone, 0.04)  # four 100 m model cells of 0.01 km2
        assert (np.abs(area - area_alone) <= tolerance).all(), (g, area, area_alone)
        # a shift that jumps (flagged) hands the next period a glacier out of balance, and where the root
        # finders land within the area tolerance then shows in the volume: measured 7.4 % by 2015 on
        # RGI60-13.90010 after its +280 m jump at 2009, against 1.8 % on a glacier without a jump
        jumped = "implausible shift" in packed.attrs["calibration_status"]
        assert np.abs(volume / volume_alone - 1).max() <= (0.1 if jumped else 0.03), (g, volume, volume_alone)


FRESH = """
import json, resource, sys
from glacier_assets.igm_run.batch import simulate_glaciers
from glacier_assets.igm_run.settings import IGMSettings
a = json.loads(sys.argv[1])
lines = []
out = simulate_glaciers(a["glaciers"], IGMSettings(threads=1, emulator_weights=a["emulator"]), lines.append, per_process=1)
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"out": out, "lines": lines, "cpu_self": me.ru_utime, "cpu_children": kids.ru_utime}))
"""


@pytest.mark.igm
def test_glaciers_beyond_one_process_run_in_fresh_ones_and_a_bad_one_is_named(demo_chain, tmp_path):
    """TensorFlow never frees an IGM model's compiled functions (~0.1-0.2 GB per model), so a
    child whose glaciers need more model grids than `per_process` runs them in fresh processes of
    that many: here one each (the pair's domains are of different grids). Their log lines come back to the child's log, the work is done in the processes
    (their CPU time, not the child's), a glacier failing in one is named with its cause and the
    other is simulated."""
    products = demo_chain["products"]
    good, bad = DEMO_PAIR[0], "RGI60-13.99999"
    broken = tmp_path / "broken.nc"
    other = xr.load_dataset(products / domain_relpath(DEMO_PAIR[1]))
    assert model_shape(other["thk"].shape) != model_shape(xr.load_dataset(products / domain_relpath(good))["thk"].shape)
    other.drop_vars("slope").assign_attrs(glacier_id=bad).to_netcdf(broken)
    glaciers = [{"glacier_id": good, "domain": str(products / domain_relpath(good)), "output": str(tmp_path / "a.nc")},
                {"glacier_id": bad, "domain": str(broken), "output": str(tmp_path / "b.nc")}]
    args = {"glaciers": glaciers, "emulator": str(products / EMULATOR_RELPATH)}
    proc = subprocess.run([sys.executable, "-c", FRESH, json.dumps(args)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "error" not in res["out"][good] and res["out"][good]["calibration_status"] == "uncalibrated"
    assert xr.load_dataset(tmp_path / "a.nc")["thk"].shape[0] == len(EPOCHS)
    assert res["out"][bad]["error"].startswith(f"glacier {bad}: ") and "slope" in res["out"][bad]["error"]
    assert not (tmp_path / "b.nc").exists()
    assert any(line.startswith(f"{good}: IGM on ") for line in res["lines"])  # streamed back from its process
    assert res["cpu_children"] > 5 * max(res["cpu_self"], 1.0), res  # the IGM work ran in the fresh processes


RETARGET = """
import json, sys
import xarray as xr
from glacier_assets.igm_run.glacier import IGMGlacier, ModelPool
from glacier_assets.igm_run.settings import IGMSettings
a = json.loads(sys.argv[1])
settings = IGMSettings(threads=1, emulator_weights=a["emulator"])
glacier = xr.load_dataset(a["domain"])
other = glacier.copy(deep=True)  # another glacier of the same grid: thinner ice on a higher bed
other["thk"] = other["thk"] * 0.6
other["topg"] = other["topg"] + 50.0

def series(model):
    model.run(1930, 1945, d_ela=model.balanced_shift())
    return {str(y): list(v) for y, v in model.last_series[0].items()}

fresh = IGMGlacier(glacier, settings)
pool = ModelPool()
first = pool.model(other, settings)
series(first)
again = pool.model(glacier, settings)
print(json.dumps({"fresh": series(fresh), "again": series(again), "same_model": again is first,
                  "retargeted": again.retargeted, "reused": pool.reused, "grid": list(again.packing.shape),
                  "startup": [fresh.startup_s, again.startup_s]}))
"""


@pytest.mark.igm
def test_a_model_retargeted_to_another_glacier_gives_what_a_fresh_one_gives(demo_chain):
    """A process keeps one IGM model per grid (`ModelPool`) and re-targets it to each glacier of
    that grid, so IGM's TensorFlow functions are built once (~10 s of each glacier's start-up).
    A re-targeted model must carry nothing of the glacier before: its run is the same, bit for
    bit, as a fresh model's, and it starts faster."""
    products = demo_chain["products"]
    args = {"domain": str(products / domain_relpath(DEMO_PAIR[0])), "emulator": str(products / EMULATOR_RELPATH)}
    proc = subprocess.run([sys.executable, "-c", RETARGET, json.dumps(args)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["same_model"] and res["retargeted"] and res["reused"] == 1
    shape = xr.load_dataset(products / domain_relpath(DEMO_PAIR[0]))["thk"].shape
    assert tuple(res["grid"]) == model_shape(shape)
    assert res["again"] == res["fresh"] and len(res["fresh"]) == 16, res
    assert res["startup"][1] < res["startup"][0], res["startup"]


def test_glaciers_sorted_by_grid_go_to_processes_of_at_most_n_grids():
    grids = [(40, 40)] * 3 + [(48, 48)] * 2 + [(64, 56)] + [(96, 96)] * 4
    assert processes_by_model(grids, 2) == [(0, 5), (5, 10)]  # a process per two grids, however many glaciers
    assert processes_by_model(grids, 10) == [(0, 10)]
    assert processes_by_model(grids, 1) == [(0, 3), (3, 5), (5, 6), (6, 10)]
    assert processes_by_model([], 3) == []
    # a model that is not re-used (the identity mapping, a cold start) is one per glacier: at
    # most `per_process` glaciers per process, whatever their grids
    cold = IGMSettings(mapping="identity")
    keys = [model_key(f"G{k}", (40, 40), cold) for k in range(5)]
    assert processes_by_model(keys, 2) == [(0, 2), (2, 4), (4, 5)]
    warm = IGMSettings(emulator_weights="shared.weights.h5")
    assert {model_key(f"G{k}", (40, 40), warm) for k in range(5)} == {(40, 40)}


def test_glaciers_are_grouped_by_size_into_grids_that_fit():
    cells = {"a": 900, "b": 100, "c": 500, "d": 450, "e": 2000, "f": 90}
    groups = groups_by_size(cells, max_cells=1000)
    assert groups == [["e"], ["a"], ["c", "d"], ["b", "f"]]  # largest first, similar sizes together
    assert all(sum(cells[g] for g in grp) <= 1000 for grp in groups if len(grp) > 1)
    assert sorted(g for grp in groups for g in grp) == sorted(cells)


def test_the_packed_grid_size_comes_from_the_devices_free_memory(monkeypatch):
    """A GPU's grid is sized by its free memory (nvidia-smi's figure), a CPU's by the host's
    available memory shared by the IGM processes at once and capped at BATCH_CELLS; a machine
    that says nothing gets the default."""
    from glacier_assets.constants import BATCH_CELLS
    from glacier_assets.igm_run.capacity import (
        CELL_BYTES,
        MEMORY_SHARE,
        MIN_CELLS,
        cells_that_fit,
        gpu_free_bytes,
        host_available_bytes,
        packing_capacity,
    )

    h200 = gpu_free_bytes("143000\n")  # MiB, as `nvidia-smi --query-gpu=memory.free` prints it
    assert h200 == 143000 * 1024**2
    gpu = packing_capacity(True, gpu_free=h200)
    assert gpu.max_cells == int(h200 * MEMORY_SHARE // CELL_BYTES) > 30 * BATCH_CELLS  # ~36 M cells: a region
    assert "GPU" in gpu.why and packing_capacity(True, gpu_free=40 * 1024**3).max_cells < gpu.max_cells
    assert gpu_free_bytes("") is None and gpu_free_bytes("[N/A]\n") is None
    meminfo = "MemTotal:       24000000 kB\nMemAvailable:   20000000 kB\n"
    assert host_available_bytes(meminfo) == 20000000 * 1024
    assert packing_capacity(False, children=2, host_free=host_available_bytes(meminfo)).max_cells == BATCH_CELLS
    small = packing_capacity(False, children=2, host_free=3 * 1024**3)  # 1.5 GiB each, 1 GB of it the process
    assert MIN_CELLS <= small.max_cells < BATCH_CELLS and "2 IGM process" in small.why
    assert cells_that_fit(0) == MIN_CELLS  # never nothing: a grid that does not fit is split down to one glacier
    monkeypatch.setattr("glacier_assets.igm_run.capacity.shutil.which", lambda name: None)  # a machine without nvidia-smi
    assert packing_capacity(True, gpu_free=None, host_free=None).max_cells <= BATCH_CELLS  # no GPU found: the host
