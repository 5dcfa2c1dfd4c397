"""Both front doors through a real `dagster dev` (webserver + daemon) on 127.0.0.1: a run for one
partition launched as the UI launches it, and a backfill over glaciers x epochs that the daemon
batches into ranged runs instead of one run per partition."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import requests
from dagster_graphql import DagsterGraphQLClient

from .conftest import DEMO_PAIR, REPO

pytestmark = pytest.mark.igm

BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
BACKFILL_STATUS = """
query($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } } }"""
RUNS = """
query($tag: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $tag}]}) {
    ... on Runs { results { runId status tags { key value } } }
  }
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def webserver(tmp_path_factory, demo_chain):
    home = tmp_path_factory.mktemp("dev_home")
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "GLACIER_PRODUCTS": str(demo_chain["products"]),
           "GLACIER_REGION_SPEC": str(demo_chain["region"]), "GLACIER_INCLUDE": ",".join(DEMO_PAIR)}
    log = open(home / "dagster_dev.log", "w")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port),
                             "-w", "workspace.yaml"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if requests.get(f"{url}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None, (home / "dagster_dev.log").read_text()[-3000:]
            time.sleep(1)
        else:
            pytest.fail("dagster dev did not start in 180 s")
        yield {"url": url, "port": port, "home": home,
               "client": DagsterGraphQLClient("127.0.0.1", port_number=port)}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _wait_run(client: DagsterGraphQLClient, run_id: str, timeout: float = 300) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = client.get_run_status(run_id).value
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(2)
    raise TimeoutError(run_id)


def _graphql(url: str, query: str, variables: dict) -> dict:
    r = requests.post(f"{url}/graphql", json={"query": query, "variables": variables}, timeout=30)
    r.raise_for_status()
    body = r.json()
    assert "errors" not in body, body
    return body["data"]


def test_ui_run_for_one_partition_then_batched_backfill(webserver):
    client, url = webserver["client"], webserver["url"]
    # register the glaciers in this instance, as a user would by materializing the inventory
    run = client.submit_job_execution("__ASSET_JOB", asset_selection=["outline_inventory"])
    assert _wait_run(client, run) == "SUCCESS"
    # one partition, launched like the UI's "Materialize" on a partition
    key = f"2000|{DEMO_PAIR[0]}"
    run = client.submit_job_execution("glacier_epoch_products", tags={"dagster/partition": key})
    assert _wait_run(client, run) == "SUCCESS"
    # a backfill over 2 glaciers x 2 epochs of the three per-epoch products
    keys = [f"{y}|{g}" for y in (2005, 2010) for g in DEMO_PAIR]
    params = {"assetSelection": [{"path": [k]} for k in ("thickness_25m", "glacier_mask", "glacier_outline")],
              "partitionNames": keys, "fromFailure": False}
    launched = _graphql(url, BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]
    deadline = time.time() + 300
    while time.time() < deadline:
        status = _graphql(url, BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]["status"]
        if status in ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"):
            break
        time.sleep(3)
    runs = _graphql(url, RUNS, {"tag": backfill_id})["runsOrError"]["results"]
    assert runs and all(r["status"] == "SUCCESS" for r in runs), runs
    assert len(runs) < len(keys)  # batched: ranged runs, not one run per partition
    assert status in ("COMPLETED", "COMPLETED_SUCCESS"), status
    with dg.DagsterInstance.from_config(str(webserver["home"])) as instance:
        done = instance.get_materialized_partitions(dg.AssetKey("glacier_outline"))
    assert set(keys) | {key} <= done
