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

from glacier_assets.deploy import batch_event_writes

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


def _wait_up(url: str, proc: subprocess.Popen, log: Path, seconds: float = 180) -> None:
    """Until `dagster dev` (or `ui`) at `url` answers; fails with its log's end if it exits first."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if requests.get(f"{url}/server_info", timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(1)
    pytest.fail(f"dagster dev did not start in {seconds:.0f} s")


@pytest.fixture(scope="module")
def webserver(tmp_path_factory, demo_chain):
    home = tmp_path_factory.mktemp("dev_home")
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    env = batch_event_writes({**os.environ, "DAGSTER_HOME": str(home), "GLACIER_PRODUCTS": str(demo_chain["products"]),
                              "GLACIER_REGION_SPEC": str(demo_chain["region"]), "GLACIER_INCLUDE": ",".join(DEMO_PAIR)})
    log = open(home / "dagster_dev.log", "w")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port),
                             "-w", "workspace.yaml"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_up(url, proc, home / "dagster_dev.log")
        yield {"url": url, "port": port, "home": home,
               "client": DagsterGraphQLClient("127.0.0.1", port_number=port)}
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, as a user stops it; its home is thrown away
        try:
            proc.wait(5)
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


LATEST_RUNS = """
query { runsOrError(limit: 30) { ... on Runs { results { runId status assetSelection { path } tags { key value } } } } }"""
BACKFILLS = """
query { partitionBackfillsOrError(limit: 10) { ... on PartitionBackfills { results { id status assetSelection { path } } } } }"""
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts" / "screenshots"


def _wait_asset_run(url: str, asset: str, partition: str | None, since: set[str], timeout: float = 300) -> str:
    """Wait for the first run launched after `since` that materializes `asset` (and `partition`)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        runs = _graphql(url, LATEST_RUNS, {})["runsOrError"]["results"]
        for r in runs:
            tags = {t["key"]: t["value"] for t in r["tags"]}
            if r["runId"] in since or [asset] not in [s["path"] for s in (r["assetSelection"] or [])]:
                continue
            if partition is not None and tags.get("dagster/partition") != partition:
                continue
            if r["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
                return r["status"]
        time.sleep(2)
    raise TimeoutError(f"no finished run of {asset} {partition}")


def _run_ids(url: str) -> set[str]:
    return {r["runId"] for r in _graphql(url, LATEST_RUNS, {})["runsOrError"]["results"]}


def test_browser_asset_graph_partition_run_picture_and_backfill(webserver):
    """Debian's Chromium through Playwright, clicking what a user clicks."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing (make test installs it)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    url = webserver["url"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})

        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        first = [True]

        def open_page(path: str) -> None:
            page.goto(f"{url}{path}", wait_until="networkidle")
            try:  # a fresh instance greets with a "Join the Dagster community" dialog, a moment later
                page.get_by_role("button", name="Skip").click(timeout=10_000 if first[0] else 1_500)
            except PlaywrightTimeout:
                pass
            first[0] = False

        # the asset graph
        open_page("/asset-groups")
        for group in ("inputs", "model", "products", "quality", "publish"):
            assert page.get_by_text(group, exact=True).first.is_visible()
        page.screenshot(path=str(ARTIFACTS / "01_asset_graph.png"))

        # the inventory (registers the glacier partitions), from its page
        before = _run_ids(url)
        open_page("/assets/outline_inventory")
        page.get_by_text("Materialize", exact=True).first.click()
        assert _wait_asset_run(url, "outline_inventory", None, before) == "SUCCESS"

        # one partition: regional outlines of 2020
        before = _run_ids(url)
        open_page("/assets/regional_outlines")
        page.get_by_role("button", name="Materialize…").first.click()
        page.locator(".dagster-dialog").get_by_text("Select a partition or create one").click()
        page.keyboard.type("2020")
        page.locator(".dagster-popover").get_by_text("2020", exact=True).first.click()
        page.keyboard.press("Escape")
        page.screenshot(path=str(ARTIFACTS / "02_launch_one_partition.png"))
        page.locator(".dagster-dialog").get_by_role("button", name="Launch 1 run").click()
        assert _wait_asset_run(url, "regional_outlines", "2020", before) == "SUCCESS"

        # its outline map shows in the asset's metadata (markdown, opened from the metadata table)
        open_page("/assets/regional_outlines")
        row = page.locator("tr", has_text="outline_map")
        row.get_by_text("Show Markdown").click()
        picture = page.locator("img[src^='data:image/']")  # a PNG or JPEG preview (plots.markdown_image)
        picture.first.wait_for(timeout=60_000)
        assert picture.count() >= 1
        page.wait_for_timeout(1000)  # let the dialog finish fading in
        page.screenshot(path=str(ARTIFACTS / "03_outline_map_in_metadata.png"), full_page=True)

        # a backfill of every glacier's domain
        open_page("/assets/glacier_domain")
        page.get_by_role("button", name="Materialize…").first.click()
        dialog = page.locator(".dagster-dialog")
        dialog.get_by_role("button", name="All", exact=True).click()
        dialog.get_by_role("button", name="Launch backfill").click()
        deadline, status = time.time() + 300, None
        while time.time() < deadline:
            backfills = _graphql(url, BACKFILLS, {})["partitionBackfillsOrError"]["results"]
            mine = [b for b in backfills if ["glacier_domain"] in [s["path"] for s in (b["assetSelection"] or [])]]
            status = mine[0]["status"] if mine else None
            if status in ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"):
                break
            time.sleep(3)
        open_page("/runs?tab=backfills")
        page.wait_for_timeout(2000)
        page.screenshot(path=str(ARTIFACTS / "04_backfill.png"))
        browser.close()
    assert status in ("COMPLETED", "COMPLETED_SUCCESS"), status


def test_ui_stops_on_sigterm_with_its_code_server_and_daemon(tmp_path):
    """`python -m glacier_assets ui` under SIGTERM (systemd, `timeout`, Kubernetes): within 10 s no
    process of it is left, `dagster dev`'s webserver, daemon and code servers included."""
    from glacier_assets.recovery import descendants
    from glacier_assets.stopping import alive

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    log = open(tmp_path / "ui.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "glacier_assets", "ui", "--port", str(port)], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_up(f"http://127.0.0.1:{port}", proc, tmp_path / "ui.log")
        family = [proc.pid, *descendants(proc.pid)]
        cmdlines = " ".join(Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace") for p in family
                            if Path(f"/proc/{p}/cmdline").exists())
        assert "dagster_webserver" in cmdlines and "_daemon" in cmdlines and "code-server" in cmdlines, cmdlines
        t0 = time.time()
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        while time.time() < t0 + 10 and any(alive(p) for p in family):
            time.sleep(0.1)
        assert not [p for p in family if alive(p)] and time.time() - t0 < 10, time.time() - t0
        assert proc.returncode == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
