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
from glacier_assets.inventory.outlines import build_inventory  # noqa: E402
from glacier_assets.inventory.reference import outline_areas, reference_volumes  # noqa: E402
from glacier_assets.inventory.region import load_region_spec  # noqa: E402
from glacier_assets.workflow import calibrate_rheology, glacier_rows, make_domain, simulation_inputs  # noqa: E402

FARINOTTI = SHARED / "oggm_rgi6_meta_farinotti_vol" / "rgi62_itmix_df.h5"


def oetztal_yaml(dest: Path) -> Path:
    data = SHARED / "oggm_oetztal"
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "region.yaml").write_text(f"""
name: oetztal
id_pattern: "^RGI50-\\\\d{{2}}\\\\.\\\\d{{5}}(_d\\\\d{{2}})?$"
outlines:
  - {{path: {data}/rgi_oetztal.shp, role: initial, year_column: BgnDate}}
dem: {{path: {data}/srtm_oetztal.tif}}
climate:
  sources:
    - {{path: {data}/HISTALP_oetztal.nc}}
  prcp_factor: 2.5
""")
    return dest / "region.yaml"


def hef_yaml(dest: Path) -> Path:
    """As glacier_assets_tests/conftest.py: hef_region_yaml (RGI6 outline, SRTM, HISTALP + ERA5)."""
    hef = SHARED / "oggm_hef"
    (dest / "region.yaml").write_text(f"""
name: hintereisferner
outlines:
  - {{path: {hef}/Hintereisferner_RGI6.shp, role: initial, year_column: BgnDate}}
dem: {{path: {hef}/hef_srtm.tif, year: 2000}}
climate:
  sources:
    - {{path: {hef}/histalp_merged_hef.nc, temperature: temp, precipitation: prcp, elevation: hgt}}
    - path: [{hef}/sel_era5_monthly_t2m_1979-2018.nc, {hef}/sel_era5_monthly_prcp_1979-2018.nc]
      temperature: t2m
      precipitation: tp
      geopotential: z
      invariant_path: {hef}/sel_era5_invariant.nc
  prcp_factor: 2.5
""")
    return dest / "region.yaml"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("region", choices=["hef", "oetztal"])
    p.add_argument("--work", type=Path)
    p.add_argument("--emulator", action="store_true", help="train the shared emulator too")
    args = p.parse_args()
    work = args.work or REPO / "var" / "study25" / args.region
    work.mkdir(parents=True, exist_ok=True)
    if args.region == "hef":
        spec_path = hef_yaml(work)
    else:
        spec_path = oetztal_yaml(work)
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
        from glacier_assets.igm_run.model import IGMSettings
        from glacier_assets.igm_run.simulate import train_emulator
        emu = REPO / "var" / "study25" / "iceflow_emulator.weights.h5"
        print(train_emulator(emu, IGMSettings(threads=2), log=lambda m: None))


if __name__ == "__main__":
    main()
