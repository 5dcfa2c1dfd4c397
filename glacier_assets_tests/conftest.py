"""Shared fixtures: the real sample data in ../shared/data and a demo region built once; the
suite's two speeds, its environment, and the order its tests run in.

Two speeds: a test is `slow` when it runs IGM (marked `igm`, or using the `demo_chain` fixture,
which runs it), starts the webserver and a browser, or drives the `dagster` CLI in subprocesses.
`pytest -m "not slow"` (`make test-fast`) runs the rest; `pytest` (`make test`) runs everything.

The environment: the suite runs without the GLACIER_* variables of the shell it starts from
(they choose the products, region and IGM settings; GLACIER_SHARED_DATA stays), with a
DAGSTER_HOME of its own, so `make test` (which exports DAGSTER_HOME=var/dagster_home) never
writes into the project's instance, and with the bulk event-write settings the CLI sets for the
runs it starts (deploy.EVENT_BATCHING) from the start. A test that changes the working
directory, a GLACIER_* or a DAGSTER_* variable without restoring it (use `monkeypatch`) fails,
and the change is undone.

The order: `--test-order=reverse` runs the modules, and the tests in each, in reverse;
`--test-order=shuffle` (and `--test-order-seed=N` to repeat one) in a random order, module by
module. Modules marked `story` are steps of one scenario on shared state and keep their own
order. (Write the options with `=`: pytest reads this file's options only after it has found the
test folder, and a bare `reverse` would look like a path.)
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GLACIER_SHARED_DATA", REPO.parent / "shared" / "data"))
DEMO_PAIR = ("RGI60-13.90008", "RGI60-13.90010")  # the two smallest demo glaciers: short IGM runs

IGM_FIXTURES = {"demo_chain"}  # fixtures that run IGM: every test using them is an IGM test
SLOW_MODULES = {
    "test_webserver": "starts dagster-webserver, its daemon and a headless browser",
    "test_cli": "drives the `dagster` CLI in subprocesses, each importing the whole project",
}
STORY_MODULES = {  # steps of one scenario on a module's (or the session's) shared state, in file order
    "test_main_job": "one user's story: a crash, then concurrent runs, re-runs, a broken glacier, a removal",
    "test_stac": "republishes and finally removes a glacier from the catalog its first tests read",
    "test_webserver": "the browser test launches regional outlines over the per-epoch products the API "
                      "test materialized on the same webserver",
}
KEPT_ENV = {"GLACIER_SHARED_DATA"}
WATCHED_ENV = ("GLACIER_", "DAGSTER_")
_ENV = pytest.StashKey[tuple]()
CALL_REPORT = pytest.StashKey[pytest.TestReport]()  # each test's own outcome, for fixtures that need it


def pytest_addoption(parser):
    group = parser.getgroup("glacier_assets")
    group.addoption("--test-order", choices=("file", "reverse", "shuffle"), default="file",
                    help="run the modules and their tests in file order (default), in reverse, or shuffled "
                         "(modules marked `story` keep their order)")
    group.addoption("--test-order-seed", type=int, default=None, help="the seed of --test-order shuffle")


def pytest_configure(config):
    """The suite's own environment (see the module's docstring), undone at the end."""
    patch = pytest.MonkeyPatch()
    for key in list(os.environ):
        if key.startswith("GLACIER_") and key not in KEPT_ENV:
            patch.delenv(key)
    home = tempfile.mkdtemp(prefix="glacier-tests-dagster-home-")
    patch.setenv("DAGSTER_HOME", home)
    # Dagster's bulk event writes, as the CLI sets them for the runs it starts (deploy.py)
    from glacier_assets.deploy import EVENT_BATCHING

    for key, value in EVENT_BATCHING.items():
        if key not in os.environ:
            patch.setenv(key, value)
    config.stash[_ENV] = (patch, home)


def pytest_unconfigure(config):
    patch, home = config.stash.get(_ENV, (None, None))
    if patch is not None:
        patch.undo()
        shutil.rmtree(home, ignore_errors=True)


def _module(item) -> str:
    return item.module.__name__.rsplit(".", 1)[-1] if getattr(item, "module", None) else ""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark IGM, slow and story tests (before `-m` deselects by marker)."""
    for item in items:
        module = _module(item)
        if IGM_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.igm)
        if item.get_closest_marker("igm") or module in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        if module in STORY_MODULES:
            item.add_marker(pytest.mark.story)


@pytest.hookimpl(trylast=True, specname="pytest_collection_modifyitems")
def pytest_collection_modifyitems_in_order(config, items):
    """Reorder the selected tests, module by module (--test-order; after `-m` and `-k`)."""
    order = config.getoption("--test-order")
    if order == "file" or not items:
        return
    seed = config.getoption("--test-order-seed")
    seed = random.randrange(10_000) if seed is None else seed
    rng = random.Random(seed)
    modules: dict[str, list] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    groups = list(modules.values())
    for tests in groups:
        if not any(t.get_closest_marker("story") for t in tests):
            tests.reverse() if order == "reverse" else rng.shuffle(tests)
    groups.reverse() if order == "reverse" else rng.shuffle(groups)
    items[:] = [t for tests in groups for t in tests]
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"test order: {order}" + (f" --test-order-seed={seed}" if order == "shuffle" else ""))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[CALL_REPORT] = report
    return report


@pytest.fixture(autouse=True)
def _no_leaks(request):
    """Fail a test that leaves the working directory or a GLACIER_*/DAGSTER_* variable changed,
    and undo the change so the tests after it are not affected."""
    cwd = os.getcwd()
    env = {k: v for k, v in os.environ.items() if k.startswith(WATCHED_ENV)}
    yield
    now = {k: v for k, v in os.environ.items() if k.startswith(WATCHED_ENV)}
    changed = sorted(k for k in env.keys() | now.keys() if env.get(k) != now.get(k))
    for key in changed:
        if key in env:
            os.environ[key] = env[key]
        else:
            del os.environ[key]
    moved = os.getcwd() != cwd
    if moved:
        os.chdir(cwd)
    if changed or moved:
        pytest.fail(f"{request.node.nodeid} left the environment changed (use monkeypatch): "
                    + ", ".join([*changed, *(["the working directory"] if moved else [])]), pytrace=False)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    assert SHARED_DATA.exists(), f"sample data not found at {SHARED_DATA} (set GLACIER_SHARED_DATA)"
    return SHARED_DATA


@pytest.fixture(scope="session")
def demo_region(tmp_path_factory) -> Path:
    """The demo region built once per test session; returns its region.yaml."""
    from glacier_assets.inventory.demo import build_demo_region

    return build_demo_region(tmp_path_factory.mktemp("demo") / "region")


def chain_definitions(products: Path, region_spec: Path, include=(), leave_one_out: bool = True,
                      rheology_sample: int = 0):
    """The project's assets and jobs with resources pointing at a test products folder. The
    rheology is the inversion's unless `rheology_sample` glaciers' simulations correct it (each
    one more IGM run; test_rheology_sample.py tests it)."""
    import dagster as dg

    from glacier_assets.checks import CHECKS
    from glacier_assets.definitions import ASSETS, JOBS
    from glacier_assets.resources import IGMRunner, ProductStore, RegionSource

    return dg.Definitions(
        assets=ASSETS,
        asset_checks=CHECKS,
        jobs=JOBS,
        resources={
            "store": ProductStore(root=str(products), catalog_root=str(products.parent / "catalog")),
            "region": RegionSource(spec=str(region_spec), include=list(include)),
            "igm": IGMRunner(threads=1, leave_one_out=leave_one_out, rheology_sample=rheology_sample),
        },
    )


def range_tags(first: str, last: str) -> dict:
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


@pytest.fixture(scope="session")
def demo_chain(tmp_path_factory, demo_region):
    """The whole chain, for real, on two demo glaciers: inventory, rheology, domains, one ranged
    run of both glaciers' IGM simulations (one packed Pipes child), batched 25 m products,
    regional outlines, gates and publication."""
    import dagster as dg

    from glacier_assets.constants import EPOCHS

    root = tmp_path_factory.mktemp("chain")
    products = root / "products"
    defs = chain_definitions(products, demo_region, DEMO_PAIR)
    (root / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "dagster_home")) as instance:
        results = {}
        results["setup"] = dg.materialize([*defs.assets, *defs.asset_checks],
                                          selection=["outline_inventory", "iceflow_emulator", "ice_rheology"],
                                          instance=instance, resources=defs.resources)
        results["simulate"] = defs.resolve_job_def("simulate_glaciers").execute_in_process(  # one packed IGM run
            instance=instance, tags=range_tags(*DEMO_PAIR))
        job = defs.resolve_job_def("glacier_epoch_products")
        for year in EPOCHS:
            results[year] = job.execute_in_process(
                instance=instance, tags=range_tags(f"{year}|{DEMO_PAIR[0]}", f"{year}|{DEMO_PAIR[1]}"))
        results["regional"] = defs.resolve_job_def("regional_products").execute_in_process(
            instance=instance, tags=range_tags(str(EPOCHS[0]), str(EPOCHS[-1])))
        results["publish"] = defs.resolve_job_def("quality_and_publish").execute_in_process(
            instance=instance, raise_on_error=False)
        yield {"defs": defs, "instance": instance, "products": products, "results": results,
               "region": demo_region}


def remake_simulation(products: Path, glacier_id: str, change) -> None:
    """Rewrite a glacier's simulated thickness with `change(thk, years) -> thk` (as a re-run from the
    same inputs on another machine might), keeping its fingerprint, and drop its per-epoch
    products so the next products run makes them again from it."""
    import xarray as xr

    from glacier_assets.constants import EPOCHS, outline_relpath, simulation_relpath
    from glacier_assets.storage import write_netcdf

    path = products / simulation_relpath(glacier_id)
    with xr.open_dataset(path) as sim:
        sim = sim.load()
    sim["thk"] = (sim["thk"].dims, change(sim["thk"].values.copy(), [int(t) for t in sim["time"].values]),
                  sim["thk"].attrs)
    write_netcdf(path, sim)
    for year in EPOCHS:
        (products / outline_relpath(glacier_id, year)).unlink(missing_ok=True)
