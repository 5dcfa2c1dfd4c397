"""Glaciers packed into one IGM run (issue 11): each gets what its own run gives it."""

import json
import subprocess
import sys

import pytest

from glacier_assets.constants import EMULATOR_RELPATH, domain_relpath

from .conftest import DEMO_PAIR

pytestmark = pytest.mark.igm

# the same two glaciers alone and packed, plain 1930-1945 (a short emulator warm start for all), in
# a child process as Pipes runs IGM
CHILD = """
import json, sys
import numpy as np, xarray as xr
from glacier_assets.igm_run.model import IGMBatch, IGMGlacier, IGMSettings
from glacier_assets.science.resample import product_area_km2
a = json.loads(sys.argv[1])
settings = IGMSettings(threads=1, emulator_weights=a["emulator"], rheology_factor=a["factor"], warm_iterations=20)
domains = [xr.load_dataset(p) for p in a["domains"]]
alone = []
for d in domains:
    thk = IGMGlacier(d, settings).run(1930, 1945)[1945]
    alone.append({"volume": float(thk.sum()) * 1e-5, "area": product_area_km2(thk, 100.0)})
batch = IGMBatch(domains, settings)
saved = batch.run_batch(1930, 1945)
gutter_max = float(batch.state.thk.numpy()[::-1][batch.packing.labels() < 0].max())
packed = [{"volume": float(s[1945].sum()) * 1e-5, "area": product_area_km2(s[1945], 100.0),
           "series_volume": batch.last_series[k][1945][0]} for k, s in enumerate(saved)]
print(json.dumps({"alone": alone, "packed": packed, "runs": batch.runs, "tiles": len(batch.packing.tiles),
                  "gutter_max": gutter_max}))
"""


def test_a_packed_run_gives_each_glacier_its_own_run(demo_chain):
    products = demo_chain["products"]
    factor = json.loads((products / "reports" / "rheology.json").read_text())["factor"]
    args = {"domains": [str(products / domain_relpath(g)) for g in DEMO_PAIR],
            "emulator": str(products / EMULATOR_RELPATH), "factor": factor}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["tiles"] == 2 and out["runs"] == 1  # one simulation for both
    assert out["gutter_max"] == 0.0  # no ice between the tiles
    for alone, packed in zip(out["alone"], out["packed"]):
        assert packed["volume"] == pytest.approx(packed["series_volume"], rel=1e-4)  # per-tile figures
        # the same glacier: one emulator for both and the batch's time step are all that differ
        assert packed["volume"] == pytest.approx(alone["volume"], rel=0.03)
        assert packed["area"] == pytest.approx(alone["area"], rel=0.03)
