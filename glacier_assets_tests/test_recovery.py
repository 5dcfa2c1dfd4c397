"""Crashes and partial work, without IGM: a killed writer, a killed run holding a `gpu` slot, a
child whose parent dies, a publication that fails half-way, and the glacier states the
region-wide steps are made from."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import geopandas as gpd
import numpy as np
import pytest
import xarray as xr
from shapely.geometry import box

from glacier_assets.constants import EPOCHS, mask_relpath, outline_relpath, simulation_relpath, thickness_relpath
from glacier_assets.fingerprints import file_record, product_fingerprint
from glacier_assets.ledger import read_failures, record_failure, region_state
from glacier_assets.publication import leftovers, live_version, new_version, versions_dir
from glacier_assets.recovery import descendants, process_tag, recover
from glacier_assets.storage import atomic_path, stale_temporaries, write_geoparquet, write_netcdf

PY = sys.executable


def _wait(predicate, timeout=60.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise TimeoutError(what)


def test_a_writer_killed_mid_write_leaves_the_product_whole(tmp_path):
    target = tmp_path / "products" / "thickness" / "2000" / "X_2000.tif"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"the published product")
    script = textwrap.dedent(f"""
        import os, signal
        from glacier_assets.storage import atomic_path
        with atomic_path({str(target)!r}) as tmp:
            tmp.write_bytes(b"half a new produ")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert subprocess.run([PY, "-c", script]).returncode == -signal.SIGKILL
    assert target.read_bytes() == b"the published product"  # never half a file at the product's path
    stale = stale_temporaries(tmp_path / "products")
    assert len(stale) == 1 and stale[0].name.startswith(".X_2000.tif.") and stale[0].parent == target.parent
    # an exception inside the block leaves neither the temporary nor a changed product
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"x")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"the published product"
    assert stale_temporaries(tmp_path / "products") == stale  # only the dead writer's one


def test_a_child_dies_with_its_parent(tmp_path):
    pidfile = tmp_path / "child.pid"
    parent = textwrap.dedent(f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c",
            "import os, time; from glacier_assets.recovery import die_with_parent; "
            "die_with_parent(int(os.environ['P'])); open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(120)"],
            env={{**os.environ, "P": str(os.getpid())}})
        time.sleep(120)
    """)
    proc = subprocess.Popen([PY, "-c", parent])
    _wait(lambda: pidfile.exists() and pidfile.read_text(), what="child started")
    child = int(pidfile.read_text())
    assert descendants(proc.pid) == [child]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _wait(lambda: not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2],
          timeout=10, what="the child to die with its parent")


JOB = textwrap.dedent("""
    import time, dagster as dg
    from glacier_assets.recovery import process_tag

    @dg.op(pool="gpu")
    def hold_a_gpu_slot():
        time.sleep(300)

    @dg.job
    def busy():
        hold_a_gpu_slot()

    if __name__ == "__main__":
        with dg.DagsterInstance.get() as instance:
            dg.execute_job(dg.reconstructable(busy), instance=instance, tags=process_tag(),
                           run_config={"execution": {"config": {"in_process": {}}}})
""")


def test_a_killed_run_is_marked_failed_and_its_gpu_slot_freed(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("concurrency:\n  pools:\n    default_limit: 1\ntelemetry:\n  enabled: false\n")
    (tmp_path / "busy.py").write_text(JOB)
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    proc = subprocess.Popen([PY, "busy.py"], cwd=tmp_path, env=env)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        _wait(lambda: instance.event_log_storage.get_concurrency_info("gpu").active_slot_count == 1,
              timeout=120, what="the run to claim the gpu slot")
        os.kill(proc.pid, signal.SIGKILL)  # the main job killed with -9
        proc.wait()
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.STARTED  # what a crash leaves behind
        products = tmp_path / "products"
        leftover = products / "x" / f".a.tif.{proc.pid}.abcd1234.tif"
        leftover.parent.mkdir(parents=True)
        leftover.write_bytes(b"")
        rec = recover(instance, [products])
        assert rec.failed_runs == [run.run_id] and rec.freed_slot_runs == [run.run_id]
        assert rec.temporaries == [leftover] and not leftover.exists()
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.event_log_storage.get_concurrency_info("gpu").active_slot_count == 0
        assert rec.lines()[0].startswith("marked 1 run(s) of a dead process as failed")
        # a live process's runs are left alone
        assert recover(instance, [products]).failed_runs == []
    assert process_tag()["glacier_assets/process"].split(":")[1] == str(os.getpid())


def test_a_publication_goes_live_whole_or_not_at_all(tmp_path):
    folder = tmp_path / "catalog"
    folder.mkdir()
    (folder / "README.md").write_text("kept")
    (folder / "catalog.json").write_text("{}")  # a catalog published before versions is adopted
    (folder / "thickness").mkdir()
    (folder / "thickness" / "old.json").write_text("{}")
    root = folder / "current"
    with new_version(root) as stage:
        assert (stage / "thickness" / "old.json").exists() and not (stage / "README.md").exists()
        (stage / "catalog.json").write_text(json.dumps({"v": 1}))
    first = live_version(root)
    assert root.is_symlink() and json.loads((root / "catalog.json").read_text()) == {"v": 1}
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "current", "versions"]
    with pytest.raises(RuntimeError):
        with new_version(root) as stage:
            (stage / "catalog.json").unlink()  # the hard link goes, the live file stays
            (stage / "half.json").write_text("{")
            raise RuntimeError("validation failed")
    assert live_version(root) == first and json.loads((root / "catalog.json").read_text()) == {"v": 1}
    assert not (root / "half.json").exists() and leftovers(root) == []
    for v in range(2, 6):
        with new_version(root) as stage:
            (stage / "catalog.json").write_text(json.dumps({"v": v}))
    assert json.loads((root / "catalog.json").read_text()) == {"v": 5}
    kept = sorted(p.name for p in versions_dir(root).iterdir() if p.name.isdigit())
    assert len(kept) == 3 and live_version(root).name == kept[-1]
    # files that did not change are the same file in every version (hard links), not copies
    old = Path("thickness") / "old.json"
    assert (versions_dir(root) / kept[0] / old).stat().st_ino == (root / old).stat().st_ino


def _glacier(root: Path, gid: str, sim_fp: str, code: int, epochs=EPOCHS):
    ds = xr.Dataset({"thk": (("time", "y", "x"), np.zeros((len(EPOCHS), 2, 2)))},
                    coords={"time": list(EPOCHS)}, attrs={"fingerprint": sim_fp})
    write_netcdf(root / simulation_relpath(gid), ds)
    for year in epochs:  # an outline and the thickness and mask it records as written
        paths = {k: root / f(gid, year) for k, f in (("thickness", thickness_relpath), ("mask", mask_relpath))}
        for path in paths.values():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"a product")
        gdf = gpd.GeoDataFrame({"glacier_id": [gid]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:32646")
        write_geoparquet(root / outline_relpath(gid, year), gdf, {"fingerprint": product_fingerprint(sim_fp, year, code),
                                                                  "files": {k: file_record(p) for k, p in paths.items()}})


def test_glacier_states(tmp_path):
    codes = {f"RGI60-13.9000{i}": 1390000 + i for i in range(1, 6)}
    g1, g2, g3, g4, g5 = codes
    _glacier(tmp_path, g1, "a", codes[g1])  # current
    _glacier(tmp_path, g2, "b", codes[g2])  # made from inputs that changed since
    _glacier(tmp_path, g3, "c", codes[g3], EPOCHS[:-1])  # one epoch's products missing
    _glacier(tmp_path, g4, "d", codes[g4])  # current, but its last attempt failed
    record_failure(tmp_path, g4, "glacier_domain", "the DEM does not cover it")
    state = region_state(tmp_path, codes, {g1: "a", g2: "b-new", g3: "c", g4: "d", g5: "e"})
    assert state.current == [g1] and state.stale == [g2] and state.incomplete == [g3] and state.missing == [g5]
    assert state.failed == {g4: "glacier_domain: the DEM does not cover it"}
    # what else lies under status/failures is not a record: a batch child's outcomes (measured: the
    # main job crashed with KeyError 'glacier_id' when it read one while the other ranged run was
    # still running), a record being written, a broken file
    batches = tmp_path / "status/failures/.batches"
    batches.mkdir(parents=True)
    (batches / f"{g1}..{g3}.json").write_text(json.dumps({g1: {"calibration_status": "calibrated"}}))
    (tmp_path / "status/failures" / g4 / ".glacier_domain.json.tmp.json").write_text("{}")
    (tmp_path / "status/failures" / g4 / "other.json").write_text("[1, 2]")
    assert list(read_failures(tmp_path)) == [g4] and len(read_failures(tmp_path)[g4]) == 1
    assert region_state(tmp_path, codes, {g1: "a"}).failed == {g4: "glacier_domain: the DEM does not cover it"}
    assert set(state.simulations) == {g1}
    before = state.publication_fingerprint("albers", "1")
    record_failure(tmp_path, g5, "igm_simulation", "boom")
    assert region_state(tmp_path, codes, {g1: "a"}).publication_fingerprint("albers", "1") != before
