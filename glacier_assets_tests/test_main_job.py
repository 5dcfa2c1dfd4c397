"""The main job as a user runs it (`python -m glacier_assets run`), on two small demo glaciers A
and B, through one story: a kill -9 mid-run, two main jobs at once, a re-run with nothing
changed, one glacier's outline changed, one glacier broken plus a rejected inventory row, and an
explicit removal. Nothing published is lost on the way, and every failure is named."""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import geopandas as gpd
import pytest
import yaml

from glacier_assets.constants import EPOCHS, simulation_relpath
from glacier_assets.recovery import descendants
from glacier_assets.stac import all_item_paths, catalog_json_paths, validate_objects
from glacier_assets.stopping import alive

from .conftest import CALL_REPORT, DEMO_PAIR, REPO

pytestmark = pytest.mark.igm
A, B = DEMO_PAIR
SCHEMAS = REPO.parent / "shared" / "stac-schemas"


@pytest.fixture(scope="module")
def user(tmp_path_factory, demo_region):
    root = tmp_path_factory.mktemp("user")
    shutil.copytree(demo_region.parent, root / "region", ignore=shutil.ignore_patterns("truth"))
    # these tests are about runs, crashes and re-runs, not skill (test_chain.py): the outlines'
    # calibration only, without its validation and the geodetic balances, to keep them short
    spec = yaml.safe_load((root / "region" / "region.yaml").read_text())
    spec.pop("geodetic_mass_balance")
    (root / "region" / "region.yaml").write_text(yaml.safe_dump(spec))
    env = {**os.environ, "GLACIER_ASSETS_ROOT": str(root), "DAGSTER_HOME": str(root / "home"),
           "GLACIER_IGM_THREADS": "1", "GLACIER_LEAVE_ONE_OUT": "0", "GLACIER_RHEOLOGY_SAMPLE": "0"}
    for k in ("GLACIER_PRODUCTS", "GLACIER_CATALOG", "GLACIER_INCLUDE", "GLACIER_REGION_SPEC"):
        env.pop(k, None)
    return {"root": root, "env": env, "region": root / "region" / "region.yaml",
            "products": root / "var" / "products", "catalog": root / "catalog" / "current", "home": root / "home",
            "steps": []}


@pytest.fixture
def step(request, user):
    """The tests are the steps of one story (test_N is step N; conftest.py keeps them in order),
    each starting from what the one before left: a step whose predecessors did not all pass is
    skipped and says why, instead of failing on state it never got. Passing, it is recorded."""
    n = int(request.node.name.split("_")[1])
    if user["steps"] != list(range(1, n)):
        pytest.skip(f"step {n} of the story needs steps 1-{n - 1} to have passed first, in this session "
                    f"(passed: {user['steps'] or 'none'}); run the whole module")
    yield n
    if request.node.stash.get(CALL_REPORT, None) is not None and request.node.stash[CALL_REPORT].passed:
        user["steps"].append(n)


def _cmd(user, *args) -> list[str]:
    return [sys.executable, "-m", "glacier_assets", *args, "--region", str(user["region"])]


def _run(user, *args) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(user, *args), env=user["env"], cwd=user["root"], capture_output=True, text=True,
                          timeout=900)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _digests(catalog: Path, glacier_id: str) -> dict:
    return {p.relative_to(catalog.resolve()): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in catalog.resolve().rglob(f"{glacier_id}_*")}


def _published_rows(catalog: Path, year: int) -> list[str]:
    return sorted(gpd.read_parquet(catalog / "outlines" / str(year) / f"{year}.parquet").glacier_id)


def _move_outline(user, year: int, glacier_id: str, change):
    path = user["region"].parent / f"outlines_{year}.shp"
    g = gpd.read_file(path)
    i = g.index[g.RGIId == glacier_id][0]
    g.loc[i, "geometry"] = change(gpd.GeoSeries([g.loc[i, "geometry"]], crs=g.crs)).iloc[0]
    g.to_file(path)


def _wait_for_igm(proc: subprocess.Popen) -> None:
    """Until the main job's IGM child has run for 3 s."""
    deadline, igm = time.time() + 400, []
    while time.time() < deadline and not igm:
        igm = [c for c in descendants(proc.pid) if "glacier_assets.igm_run simulate" in _cmdline(c)]
        assert proc.poll() is None, "the main job ended before its IGM run started"
        time.sleep(0.5)
    assert igm, "no IGM simulation started"
    time.sleep(3)


def test_1_kill_9_mid_run_leaves_no_orphan(user, step):
    proc = subprocess.Popen(_cmd(user, "run", "--include", A, "--workers", "1"), env=user["env"], cwd=user["root"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_igm(proc)
    family = descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(alive(p) for p in family):
        time.sleep(0.3)
    assert not [p for p in family if alive(p)], [_cmdline(p) for p in family if alive(p)]  # no orphan IGM
    with dg.DagsterInstance.from_config(str(user["home"])) as instance:
        assert any(r.status == dg.DagsterRunStatus.STARTED for r in instance.get_runs())  # what the crash left


def test_2_two_main_jobs_at_once_after_the_crash_lose_nothing(user, step):
    procs = [subprocess.Popen(_cmd(user, "run", "--include", g, "--workers", "1"), env=user["env"], cwd=user["root"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for g in (A, B)]
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, out[-3000:] + err[-3000:]
    assert "recovered: marked 1 run(s) of a dead process as failed" in outs[0][0] + outs[1][0]
    for out, err in outs:  # a quiet console: the progress lines, the runs' own INFO lines only in the event log
        assert " - dagster - INFO - " not in out + err, (out + err)[-3000:]
    # the gate lines say where the ice is, beside the area (issue 25)
    assert "shape at the outline dates: IoU median" in outs[0][0] + outs[1][0]
    with dg.DagsterInstance.from_config(str(user["home"])) as instance:
        assert not [r for r in instance.get_runs() if r.status == dg.DagsterRunStatus.STARTED]
        assert instance.event_log_storage.get_concurrency_info("gpu").active_slot_count == 0
    catalog = user["catalog"]
    assert len(_digests(catalog, A)) == len(_digests(catalog, B)) == 2 * len(EPOCHS)  # COG + item per epoch
    for year in (1970, 2020):
        assert _published_rows(catalog, year) == [A, B]
    assert validate_objects(catalog_json_paths(catalog) + all_item_paths(catalog), SCHEMAS) == []


def test_3_nothing_changed_nothing_redone(user, step):
    with dg.DagsterInstance.from_config(str(user["home"])) as instance:
        runs_before = len(instance.get_runs())
    live = user["catalog"].resolve()
    res = _run(user, "run", "--include", A, B)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "2/5 domains and calibrated IGM simulations: 0 to run, 2 unchanged" in res.stdout
    assert "0 glacier-epochs to make" in res.stdout and "unchanged since the last publication" in res.stdout
    with dg.DagsterInstance.from_config(str(user["home"])) as instance:
        assert len(instance.get_runs()) == runs_before  # not one Dagster run launched
    assert user["catalog"].resolve() == live


def test_4_one_changed_outline_reruns_that_glacier_only(user, step):
    sim_a = user["products"] / simulation_relpath(A)
    a_before, a_items = sim_a.stat().st_mtime_ns, _digests(user["catalog"], A)
    b_items = _digests(user["catalog"], B)
    _move_outline(user, 2010, B, lambda s: s.to_crs(32646).buffer(15).to_crs(s.crs))
    res = _run(user, "run", "--include", A, B)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "1 to run, 1 unchanged" in res.stdout and "] 1/1, 0 failed" in res.stdout and f"{B} ok" in res.stdout
    assert sim_a.stat().st_mtime_ns == a_before and _digests(user["catalog"], A) == a_items
    assert _digests(user["catalog"], B) != b_items


def test_5_a_broken_glacier_and_a_bad_row_are_named_the_rest_is_kept(user, step):
    before = {g: _digests(user["catalog"], g) for g in (A, B)}
    _move_outline(user, 2020, A, lambda s: s.translate(xoff=3.0, yoff=3.0))  # an outline in the wrong place
    path = user["region"].parent / "outlines_1990.shp"
    g = gpd.read_file(path)
    bad = g.iloc[[0]].copy()
    bad["RGIId"] = "RGI60-13.9x001"
    gpd.GeoDataFrame(gpd.pd.concat([g, bad]), crs=g.crs).to_file(path)
    res = _run(user, "run", "--include", A, B)
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-3000:]
    assert f"{A} glacier_domain: its outlines span" in res.stderr and "wrong place or CRS" in res.stderr
    assert "REJECTED RGI60-13.9x001 (outlines_1990.shp)" in res.stderr and "1 inventory row(s) rejected" in res.stderr
    catalog = user["catalog"]
    # B is unchanged: not re-run; A failed: its earlier products stay published, and it is listed as failed
    assert {g: _digests(catalog, g) for g in (A, B)} == before
    assert _published_rows(catalog, 2020) == [A, B]
    import json

    collection = json.loads((catalog / "thickness" / "collection.json").read_text())
    assert collection["summaries"]["failed_glacier_id"] == [A]
    assert "glacier_domain" in collection["glacier_assets:failed_glaciers"][0]["reason"]


def test_6_removal_is_explicit(user, step):
    res = subprocess.run([sys.executable, "-m", "glacier_assets", "remove", A], env=user["env"], cwd=user["root"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    catalog = user["catalog"]
    assert _digests(catalog, A) == {} and len(_digests(catalog, B)) == 2 * len(EPOCHS)
    assert _published_rows(catalog, 2020) == [B]
    assert validate_objects(catalog_json_paths(catalog) + all_item_paths(catalog), SCHEMAS) == []


def _stop_during_igm(user, sig: int) -> tuple[int, str, str, float, list[str]]:
    """Start a run over B, wait for its IGM child, send `sig` as `timeout`/systemd (SIGTERM to the
    main process) or a terminal's Ctrl-C (SIGINT to the whole foreground process group) would.
    Returns the exit status, stdout, stderr, the seconds until every process of the job was gone,
    and the command lines of any still alive after 10 s."""
    proc = subprocess.Popen(_cmd(user, "run", "--include", B, "--workers", "1"), env=user["env"], cwd=user["root"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for_igm(proc)
    family = [proc.pid, *descendants(proc.pid)]
    t0 = time.time()
    if sig == signal.SIGINT:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, sig)
    out, err = proc.communicate(timeout=60)
    while time.time() < t0 + 10 and any(alive(p) for p in family):
        time.sleep(0.1)
    return proc.returncode, out, err, time.time() - t0, [_cmdline(p) for p in family if alive(p)]


def _assert_stopped_cleanly(user, code, out, err, seconds, survivors, sig, b_items):
    assert code == 128 + sig, out[-2000:] + err[-2000:]
    assert survivors == [] and seconds < 10, (seconds, survivors)
    assert "Traceback" not in out + err and "KeyboardInterrupt" not in out + err, err[-3000:]
    assert "ERROR" not in out + err, err[-3000:]
    name = signal.Signals(sig).name
    assert f"Stopped by {name} after" in err and "finished 0 of 1 glacier simulations" in err, err
    assert "Run the same command again to resume" in err
    said = [ln for ln in err.strip().splitlines() if ln.strip() and "REJECTED" not in ln and "row(s) rejected" not in ln]
    assert len(said) == 1 and said[0].startswith(f"Stopped by {name}"), err  # one line beside step 1's rejections
    with dg.DagsterInstance.from_config(str(user["home"])) as instance:
        run = instance.get_runs(limit=1)[0]
        assert run.job_name == "simulate_glaciers" and run.status == dg.DagsterRunStatus.CANCELED
        assert not [r for r in instance.get_runs() if not r.is_finished]
        assert instance.event_log_storage.get_concurrency_info("gpu").active_slot_count == 0
    assert _digests(user["catalog"], B) == b_items  # nothing published is lost


def test_7_sigterm_stops_every_process_and_cancels_the_runs(user, step):
    path = user["region"].parent / "outlines_1990.shp"  # the user mends step 5's rejected row first
    g = gpd.read_file(path)
    g[g.RGIId != "RGI60-13.9x001"].to_file(path)
    b_items = _digests(user["catalog"], B)
    _move_outline(user, 2010, B, lambda s: s.to_crs(32646).buffer(-15).to_crs(s.crs))
    _assert_stopped_cleanly(user, *_stop_during_igm(user, signal.SIGTERM), signal.SIGTERM, b_items)


def test_8_ctrl_c_stops_as_quietly_and_two_re_runs_resume_doing_the_work_once(user, step):
    """After the Ctrl-C, two runs over the same glacier started 1 s apart: one claims and simulates
    it, the other says so, waits, and finds it made (once 195 s each, both simulating)."""
    b_items = _digests(user["catalog"], B)
    _assert_stopped_cleanly(user, *_stop_during_igm(user, signal.SIGINT), signal.SIGINT, b_items)
    with dg.DagsterInstance.from_config(str(user["home"])) as instance:
        sims_before = len(instance.get_runs(filters=dg.RunsFilter(job_name="simulate_glaciers")))
    procs = []
    for _ in range(2):
        procs.append(subprocess.Popen(_cmd(user, "run", "--include", B), env=user["env"], cwd=user["root"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        time.sleep(1)
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, out[-3000:] + err[-3000:]
    waited = [out for out, _ in outs if "claimed by another run of the main job" in out]
    worked = [out for out, _ in outs if "claimed by another run of the main job" not in out]
    assert len(waited) == len(worked) == 1, [o for o, _ in outs]
    assert "1 to run, 0 unchanged" in worked[0] and f"{B} ok" in worked[0]
    assert "the other run made 1 of them" in waited[0] and "0 glacier-epochs to make" in waited[0], waited[0]
    with dg.DagsterInstance.from_config(str(user["home"])) as instance:
        assert len(instance.get_runs(filters=dg.RunsFilter(job_name="simulate_glaciers"))) == sims_before + 1
    assert _digests(user["catalog"], B) != b_items


def test_9_damaged_products_are_found_and_remade_only_they(user, step):
    """A thickness COG truncated to 100 bytes, a mask deleted: the re-run remakes those two
    glacier-epochs, says so, and exits 0; the published catalog (its own copies) is untouched."""
    from glacier_assets.constants import mask_relpath, thickness_relpath

    products, b_items = user["products"], _digests(user["catalog"], B)
    cog = products / thickness_relpath(B, 1990)
    whole = cog.read_bytes()
    cog.write_bytes(whole[:100])
    (products / mask_relpath(B, 2000)).unlink()
    untouched = (products / thickness_relpath(B, 2010)).stat().st_mtime_ns
    res = _run(user, "run", "--include", B)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "2 glacier-epochs to make" in res.stdout, res.stdout
    assert "remaking 2 damaged product(s)" in res.stdout and f"{B} 1990: thickness {cog.name}: 100 bytes" in res.stdout
    assert f"{B} 2000: mask {B}_2000.tif: missing" in res.stdout
    assert cog.read_bytes() == whole and (products / mask_relpath(B, 2000)).exists()
    assert (products / thickness_relpath(B, 2010)).stat().st_mtime_ns == untouched  # only they
    assert _digests(user["catalog"], B) == b_items
