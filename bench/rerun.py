"""Re-runs and crash recovery of the main job (`python -m glacier_assets run`) on the demo region.

    .venv/bin/python bench/rerun.py [--workers 2] [--include ID ...]

In a fresh folder and Dagster instance, times:
  1. the first main job (everything made);
  2. the same main job again with nothing changed (the goal: <= 10 % of the first);
  3. after one glacier's 2010 control outline grew by 15 m (only that glacier is re-run);
  4. two simulations deleted, a main job killed with SIGKILL while it re-makes them, then the next one:
     how long its start-up recovery takes, whether any IGM process outlived the kill, and the
     time to finish the interrupted work.
Prints the figures.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd

from glacier_assets.recovery import descendants

REPO = Path(__file__).resolve().parents[1]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--include", nargs="*", default=[], help="only these glaciers (default: the whole demo region)")
    p.add_argument("--changed", default="RGI60-13.90008", help="the glacier whose outline is changed in step 3")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-rerun-") as tmp:
        tmp = Path(tmp)
        from glacier_assets.inventory.demo import build_demo_region

        region = build_demo_region(tmp / "region")
        env = {**os.environ, "DAGSTER_HOME": str(tmp / "home"), "GLACIER_ASSETS_ROOT": str(tmp)}
        for k in ("GLACIER_PRODUCTS", "GLACIER_CATALOG", "GLACIER_INCLUDE", "GLACIER_REGION_SPEC"):
            env.pop(k, None)
        shutil.copy(REPO / "dagster.yaml", tmp / "dagster.yaml")
        cmd = [sys.executable, "-m", "glacier_assets", "run", "--region", str(region), "--workers", str(args.workers)]
        cmd += ["--include", *args.include] if args.include else []

        def run(label: str) -> tuple[float, str]:
            t0 = time.perf_counter()
            res = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
            secs = time.perf_counter() - t0
            if res.returncode != 0:
                print(res.stdout[-3000:], res.stderr[-3000:])
                raise SystemExit(f"{label}: the main job failed")
            return secs, res.stdout

        first, _ = run("first")
        print(f"1. first main job: {first:.0f} s")
        again, out = run("again")
        print(f"2. again, nothing changed: {again:.1f} s = {100 * again / first:.1f} % of the first "
              f"({re.search(r'2/5 .*', out).group(0).strip()})")
        shp = region.parent / "outlines_2010.shp"
        g = gpd.read_file(shp)
        i = g.index[g.RGIId == args.changed][0]
        grown = gpd.GeoSeries([g.loc[i, "geometry"]], crs=g.crs).to_crs(32646).buffer(15).to_crs(g.crs)
        g.loc[i, "geometry"] = grown.iloc[0]
        g.to_file(shp)
        changed, out = run("changed")
        rerun = re.findall(r"\] \d+/\d+ (\S+) ok", out)
        print(f"3. one glacier's 2010 outline +15 m: {changed:.0f} s, re-simulated: {', '.join(rerun) or 'none'}")

        for sim in sorted((tmp / "var" / "products" / "simulations").glob("*.nc"))[:2]:
            sim.unlink()  # two glaciers to simulate again: work to interrupt
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not [c for c in descendants(proc.pid) if "igm_run simulate" in _cmdline(c)]:
            if proc.poll() is not None:
                raise SystemExit("the main job ended before an IGM run started")
            time.sleep(0.5)
        time.sleep(5)
        family = descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(5)
        orphans = [c for c in family
                   if Path(f"/proc/{c}").exists() and " Z " not in Path(f"/proc/{c}/stat").read_text()]
        t0 = time.perf_counter()
        res = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        recovered, lines = None, []
        for line in res.stdout:
            lines.append(line)
            if recovered is None and line.startswith("1/5"):
                recovered = time.perf_counter() - t0
        res.wait()
        total = time.perf_counter() - t0
        recovery = " ".join(ln.strip() for ln in lines if ln.startswith("recovered:")) or "nothing to recover"
        print(f"4. kill -9 during an IGM run: {len(orphans)} process(es) outlived it; the next main job started "
              f"work after {recovered:.1f} s ({recovery}) and finished in {total:.0f} s (exit {res.returncode})")


if __name__ == "__main__":
    main()
