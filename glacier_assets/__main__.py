"""Command line: `python -m glacier_assets run` materializes the whole chain (the main job).

    python -m glacier_assets run [--region region.yaml] [--include ID ...] [--workers 2]
    python -m glacier_assets remove ID [ID ...]      # unpublish glaciers and forget their products
    python -m glacier_assets demo-region [DEST]      # only (re)generate the demo region's inputs
    python -m glacier_assets demo-region DEST --valley  # the valley twin (issue 25) from ../shared/data
    python -m glacier_assets ui [--port 3000]        # `dagster dev` on 127.0.0.1 over the same instance
    python -m glacier_assets evaluate ID [--thickness OBS.tif --year 2003] [--mass-balance WGMS.csv]
                                                     # a simulated glacier against observations

The runs go to the project's Dagster instance ($DAGSTER_HOME, default var/dagster_home), so the
UI (`make ui`) shows them. What the main job does, and skips, is in `main_job.py`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()  # the command's start, before Dagster's imports: the time the run reports


def _evaluate(args) -> int:
    from .constants import simulation_relpath
    from .steps.evaluation import evaluate_mass_balance, evaluate_thickness

    sim = Path(args.products) / simulation_relpath(args.glacier_id)
    if not sim.exists():
        print(f"{args.glacier_id}: no simulation at {sim}", file=sys.stderr)
        return 1
    if args.thickness:
        t = evaluate_thickness(sim, Path(args.thickness), args.year)
        print(f"thickness ({args.thickness}, model time {t['model_time']}): bias {t['bias_m']:+.1f} m, "
              f"RMSE {t['rmse_m']:.1f} m, mean observed {t['mean_observed_m']:.1f} m, simulated "
              f"{t['mean_simulated_m']:.1f} m, over {t['n']} cells of 25 m")
    if args.mass_balance:
        m = evaluate_mass_balance(sim, Path(args.mass_balance))
        print(f"mass balance ({args.mass_balance}, {m['first_year']}-{m['last_year']}, {m['n_years']} years): "
              f"bias {m['bias_mwe']:+.2f} m w.e./a, RMSE {m['rmse_mwe']:.2f}, correlation {m['correlation']:.2f}, "
              f"mean simulated {m['mean_simulated_mwe']:+.2f} vs observed {m['mean_observed_mwe']:+.2f} m w.e./a")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m glacier_assets")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="materialize the whole chain (the main job)")
    r.add_argument("--region", help="region YAML (default: the built-in demo region)")
    r.add_argument("--products", help="products folder (default var/products)")
    r.add_argument("--include", nargs="*", default=None, help="only these glacier ids")
    r.add_argument("--workers", type=int, default=2, help="IGM runs at a time (default 2)")
    rm = sub.add_parser("remove", help="unpublish glaciers from the catalog and forget their products")
    rm.add_argument("glacier_ids", nargs="+")
    rm.add_argument("--region", help="region YAML (default: the built-in demo region)")
    rm.add_argument("--products", help="products folder (default var/products)")
    d = sub.add_parser("demo-region", help="generate the demo region's inputs")
    d.add_argument("dest", nargs="?", default="var/demo_region")
    d.add_argument("--multi-inventory", action="store_true",
                   help="the variant whose 1970s, 1990 and 2020 outlines come from another inventory "
                        "(matched by location)")
    d.add_argument("--valley", action="store_true",
                   help="the valley twin: valley glaciers on the Oetztal's real terrain (needs the sample data "
                        "in ../shared/data or $GLACIER_SHARED_DATA)")
    u = sub.add_parser("ui", help="open the Dagster UI (dagster dev on 127.0.0.1) over the project's instance")
    u.add_argument("--port", type=int, default=3000)
    e = sub.add_parser("evaluate", help="compare a simulated glacier with observed thickness and mass balance")
    e.add_argument("glacier_id")
    e.add_argument("--products", default="var/products", help="products folder (default var/products)")
    e.add_argument("--thickness", help="observed or consensus thickness raster (GeoTIFF, any CRS)")
    e.add_argument("--year", type=int, default=2000, help="date of that thickness (default 2000)")
    e.add_argument("--mass-balance", help="WGMS mass-balance table (YEAR, ANNUAL_BALANCE in mm w.e.)")
    args = p.parse_args(argv)

    if args.cmd == "evaluate":
        return _evaluate(args)
    if args.cmd == "demo-region":
        from .inventory.demo import build_demo_region, ensure_demo_region
        from .inventory.demo_variant import build_multi_inventory_variant

        if args.valley:
            from .inventory.valley_twin import build_valley_twin

            shared = Path(os.environ.get("GLACIER_SHARED_DATA", Path.cwd().parent / "shared" / "data"))
            print(build_valley_twin(shared, Path(args.dest)))
        elif args.multi_inventory:
            print(build_multi_inventory_variant(ensure_demo_region(Path("var/demo_region")), Path(args.dest)))
        else:
            print(build_demo_region(Path(args.dest)))
        return 0
    from .deploy import SettingsError, batch_event_writes
    from .instance import ensure_dagster_home

    os.environ.setdefault("GLACIER_ASSETS_ROOT", os.getcwd())
    ensure_dagster_home()
    batch_event_writes()  # for the runs this process (and the webserver and daemon it starts) creates
    if args.cmd == "ui":  # supervised, so that a SIGTERM stops its webserver, daemon and code server too
        from .stopping import run_supervised

        dagster = str(Path(sys.executable).parent / "dagster")
        return run_supervised([dagster, "dev", "-h", "127.0.0.1", "-p", str(args.port), "-w", "workspace.yaml"])
    if args.region:
        os.environ["GLACIER_REGION_SPEC"] = str(Path(args.region).resolve())
    if args.products:
        os.environ["GLACIER_PRODUCTS"] = str(Path(args.products).resolve())
    try:
        if args.cmd == "remove":
            from .removal import remove_glaciers

            return remove_glaciers(args.glacier_ids)
        if args.include:
            os.environ["GLACIER_INCLUDE"] = ",".join(args.include)
        from .main_job import run_chain

        return run_chain(args.workers, args.include, STARTED)
    except SettingsError as exc:  # a bad GLACIER_* variable: its message, not a traceback
        print(f"settings: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
