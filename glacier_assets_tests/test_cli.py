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


@pytest.fixture()
def cli_env(tmp_path, demo_region):
    home = tmp_path / "dagster_home"
    home.mkdir()
    return {**os.environ, "DAGSTER_HOME": str(home), "GLACIER_REGION_SPEC": str(demo_region),
            "GLACIER_INCLUDE": ",".join(DEMO_PAIR), "GLACIER_PRODUCTS": str(tmp_path / "products")}


def test_cli_string_selections(cli_env, tmp_path):
    first = _materialize(cli_env, "--select", "outline_inventory")
    assert first.returncode == 0, first.stderr[-3000:]
    assert (tmp_path / "products" / "inventory" / "outlines.parquet").exists()
    # the selection syntax proper, through Dagster's antlr parser, on a glacier partition
    second = _materialize(cli_env, "--select", 'key:"glacier_domain"', "--partition", DEMO_PAIR[0])
    assert second.returncode == 0, second.stderr[-3000:]
    assert (tmp_path / "products" / "domains" / f"{DEMO_PAIR[0]}.nc").exists()
    with dg.DagsterInstance.from_config(cli_env["DAGSTER_HOME"]) as instance:
        assert instance.get_materialized_partitions(dg.AssetKey("glacier_domain")) == {DEMO_PAIR[0]}


def test_cli_names_a_bad_partition(cli_env):
    assert _materialize(cli_env, "--select", "outline_inventory").returncode == 0
    bad = _materialize(cli_env, "--select", "glacier_domain", "--partition", "RGI60-13.99999")
    assert bad.returncode != 0
    assert "RGI60-13.99999" in bad.stderr + bad.stdout
