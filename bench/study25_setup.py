"""Issue 25 study: build a real region's domains, its rheology factor and the shared emulator
outside Dagster, into a work folder (default var/study25/<region>).

    .venv/bin/python bench/study25_setup.py hef|oetztal [--work DIR] [--res 100]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data"

from glacier_assets.constants import REFERENCE_VOLUME_YEAR  # noqa: E402
from glacier_assets.inventory.examples import hef_region_yaml, oetztal_region_yaml  # noqa: E402
from glacier_assets.inventory.outlines import build_inventory  # noqa: E402
from glacier_assets.inventory.reference import outline_areas, reference_volumes  # noqa: E402
from glacier_assets.inventory.region import load_region_spec  # noqa: E402
from glacier_assets.steps.domain import glacier_rows, make_domain  # noqa: E402
from glacier_assets.steps.inputs import simulation_inputs  # noqa: E402
from glacier_assets.steps.rheology import calibrate_rheology  # noqa: E402

FARINOTTI = SHARED / "oggm_rgi6_meta_farinotti_vol" / "rgi62_itmix_df.h5"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("region", choices=["hef", "oetztal"])
    p.add_argument("--work", type=Path)
    p.add_argument("--emulator", action="store_true", help="train the shared emulator too")
    args = p.parse_args()
    work = args.work or REPO / "var" / "study25" / args.region
    work.mkdir(parents=True, exist_ok=True)
    if args.region == "hef":
        spec_path = hef_region_yaml(SHARED, work)
    else:
        spec_path = oetztal_region_yaml(SHARED, work)
    spec = load_region_spec(spec_path)
    inv = build_inventory(spec.outlines, spec.id_pattern).outlines
    inv.to_parquet(work / "inventory.parquet")
    gids = sorted(inv["glacier_id"].unique())
    refs = reference_volumes(spec.reference_volumes, FARINOTTI, gids, REFERENCE_VOLUME_YEAR,
                             outline_areas(inv, REFERENCE_VOLUME_YEAR))
    rheo = calibrate_rheology(inv, spec, refs)
    (work / "rheology.json").write_text(json.dumps(rheo, indent=1))
    print("rheology factor", rheo["factor"], "from", rheo["n_glaciers"], "glaciers")
    (work / "domains").mkdir(exist_ok=True)
    targets = {}
    for gid in gids:
        make_domain(gid, inv, spec, work / "domains" / f"{gid}.nc")
        t, _ = simulation_inputs(glacier_rows(inv, gid), {}, gid)
        targets[gid] = t
    (work / "targets.json").write_text(json.dumps(targets, indent=1))
    print(len(gids), "domains;", targets if len(gids) < 3 else "")
    if args.emulator:
        from glacier_assets.igm_run.emulator import train_emulator
        from glacier_assets.igm_run.settings import IGMSettings
        emu = REPO / "var" / "study25" / "iceflow_emulator.weights.h5"
        print(train_emulator(emu, IGMSettings(threads=2), log=lambda m: None))


if __name__ == "__main__":
    main()
