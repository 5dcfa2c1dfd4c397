"""The command-line front door: `dagster asset materialize --select ... --partition ...`.

This is the call igm's hydra-core 1.3 (antlr 4.9) breaks with `TypeError: ord()`; it runs here
in the same environment that test_chain.py and test_hef.py use for real IGM runs."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from .conftest import DEMO_PAIR

DAGSTER = str(Path(sys.executable).parent / "dagster")


def _materialize(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([DAGSTER, "asset", "materialize", "-m", "glacier_assets.definitions", "-a", "defs", *args],
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory, demo_region):
    """A Dagster home and products folder where the CLI has materialized the inventory."""
    root = tmp_path_factory.mktemp("cli")
    (root / "dagster_home").mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(root / "dagster_home"), "GLACIER_REGION_SPEC": str(demo_region),
           "GLACIER_INCLUDE": ",".join(DEMO_PAIR), "GLACIER_PRODUCTS": str(root / "products")}
    first = _materialize(env, "--select", "outline_inventory")
    assert first.returncode == 0, first.stderr[-3000:]
    return env


def test_cli_string_selections(cli_env):
    products = Path(cli_env["GLACIER_PRODUCTS"])
    assert (products / "inventory" / "outlines.parquet").exists()
    # the selection syntax proper, through Dagster's antlr parser, on a glacier partition
    second = _materialize(cli_env, "--select", 'key:"glacier_domain"', "--partition", DEMO_PAIR[0])
    assert second.returncode == 0, second.stderr[-3000:]
    assert (products / "domains" / f"{DEMO_PAIR[0]}.nc").exists()
    with dg.DagsterInstance.from_config(cli_env["DAGSTER_HOME"]) as instance:
        assert instance.get_materialized_partitions(dg.AssetKey("glacier_domain")) == {DEMO_PAIR[0]}


def test_cli_names_a_bad_partition(cli_env):
    bad = _materialize(cli_env, "--select", "glacier_domain", "--partition", "RGI60-13.99999")
    assert bad.returncode != 0
    assert "RGI60-13.99999" in bad.stderr + bad.stdout


@pytest.mark.parametrize("variable, value, says", [
    ("GLACIER_VALIDATION_SHARE", "10%", "use a share between 0 (exclusive) and 1"),
    ("GLACIER_IGM_MAPPING", "fast", "use one of identity, network"),
    ("GLACIER_EXECUTOR", "slurm", "use multiprocess, in_process, dask, k8s"),
])
def test_a_bad_setting_is_named_without_a_traceback(tmp_path, variable, value, says):
    """`python -m glacier_assets run` with a GLACIER_* variable it cannot use says which and what
    to set, exits 2 and runs nothing."""
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home"), "GLACIER_ASSETS_ROOT": str(tmp_path),
           "GLACIER_PRODUCTS": str(tmp_path / "products"), variable: value}
    run = subprocess.run([sys.executable, "-m", "glacier_assets", "run"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr[-3000:]
    assert run.stderr.strip() == f"settings: {variable}={value!r}: {says}" + \
        (", e.g. 0.1 for one glacier in ten" if "share" in says else "")
    assert "Traceback" not in run.stderr and not (tmp_path / "products").exists()
