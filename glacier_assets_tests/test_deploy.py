"""Production deployment, for real on loopback: the documented Postgres instance (queued runs,
`gpu` pool), per-epoch partitions executed by a Dask worker process; and the Kubernetes
configuration (run launcher, step executor, the IGM pod through PipesK8sClient) rendered and
checked."""

import importlib
import json
import os
import shutil
import subprocess

import dagster as dg
import pytest
import yaml

from glacier_assets.deploy import EVENT_BATCHING, GPU_RESOURCE, IGM_STEP_K8S_CONFIG, batch_event_writes, igm_pod_spec
from glacier_assets.services import postgres_bin, postgres_server

from .conftest import DEMO_PAIR, REPO, chain_definitions

DEPLOY = REPO / "deploy"


def test_event_batching_is_a_default_an_operator_can_override():
    env = batch_event_writes({"DAGSTER_EVENT_BATCH_SIZE": "0"})
    assert env["DAGSTER_EVENT_BATCH_SIZE"] == "0"  # set by the operator: kept
    assert env["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] == EVENT_BATCHING[
        "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"]
    assert int(batch_event_writes({})["DAGSTER_EVENT_BATCH_SIZE"]) >= 1000


def test_k8s_igm_pod_asks_for_a_gpu():
    from dagster_k8s.pipes import build_pod_body

    pod = build_pod_body(pod_name="dagster-igm-rgi60-13-90001", image="glacier-assets:1",
                         command=["python", "-m", "glacier_assets.igm_run", "simulate"],
                         env_vars={"DAGSTER_PIPES_CONTEXT": "x"}, base_pod_meta=None, base_pod_spec=igm_pod_spec(1))
    container = pod.spec.containers[0]
    assert container.resources.limits[GPU_RESOURCE] == "1"
    assert container.command == ["python", "-m", "glacier_assets.igm_run", "simulate"]
    assert container.volume_mounts[0].mount_path == "/data"
    assert pod.spec.volumes[0].persistent_volume_claim.claim_name == "glacier-data"
    assert pod.spec.restart_policy == "Never"
    assert pod.spec.tolerations[0].key == GPU_RESOURCE


def test_k8s_step_pod_for_igm_simulation_asks_for_a_gpu():
    from dagster_k8s.job import DagsterK8sJobConfig, UserDefinedDagsterK8sConfig, construct_dagster_k8s_job

    from glacier_assets.definitions import defs

    tags = defs.resolve_assets_def("igm_simulation").op.tags
    user_config = json.loads(tags["dagster-k8s/config"])  # Dagster stores dict tags as JSON
    assert user_config == IGM_STEP_K8S_CONFIG
    job = construct_dagster_k8s_job(
        job_config=DagsterK8sJobConfig(job_image="glacier-assets:1", dagster_home="/opt/dagster/home",
                                       instance_config_map="dagster-instance"),
        args=["dagster", "api", "execute_step"], job_name="igm-step", pod_name="igm-step",
        user_defined_k8s_config=UserDefinedDagsterK8sConfig.from_dict(user_config))
    container = job.spec.template.spec.containers[0]
    assert container.resources.limits[GPU_RESOURCE] == "1"


def _valid(schema: dict, config: dict) -> bool:
    """`config` against a configurable class's schema, through Dagster's public run-config check."""

    @dg.op(config_schema=schema)
    def probe():
        return None

    @dg.job
    def check():
        probe()

    return dg.validate_run_config(check, {"ops": {"probe": {"config": config}}}) is not None


def test_k8s_instance_and_executor_configs_validate(monkeypatch):
    """Each configurable part of the Kubernetes instance file against its class's schema, and the
    step pods' executor config against the k8s executor's (public APIs only; the PostgreSQL test
    below loads the plain instance file as a whole, for real)."""
    from dagster_k8s import K8sRunLauncher, k8s_job_executor
    from dagster_postgres import DagsterPostgresStorage

    for key, value in {"DAGSTER_PG_HOST": "db", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_USER": "u",
                       "DAGSTER_PG_PASSWORD": "p", "DAGSTER_PG_DB": "dagster"}.items():
        monkeypatch.setenv(key, value)  # the files read them (env: ...); gone after this test
    raw = yaml.safe_load((DEPLOY / "k8s" / "dagster.yaml").read_text())
    assert _valid(K8sRunLauncher.config_type(), raw["run_launcher"]["config"])
    assert _valid(DagsterPostgresStorage.config_type(), raw["storage"]["postgres"])
    with pytest.raises(dg.DagsterInvalidConfigError):  # the probe can fail
        _valid(K8sRunLauncher.config_type(), {**raw["run_launcher"]["config"], "job_namespace": 3})

    @dg.job(executor_def=k8s_job_executor)
    def on_k8s():
        pass

    step = {"job_namespace": "dagster", "max_concurrent": 4, "step_k8s_config": IGM_STEP_K8S_CONFIG}
    assert dg.validate_run_config(on_k8s, {"execution": {"config": step}})
    for folder in (DEPLOY / "k8s", DEPLOY):
        conf = yaml.safe_load((folder / "dagster.yaml").read_text())
        assert conf["run_coordinator"]["class"] == "QueuedRunCoordinator"
        assert importlib.import_module(conf["run_coordinator"]["module"]).QueuedRunCoordinator
        assert "postgres" in conf["storage"]


def _stop_log_tails(home) -> None:
    """Dagster's compute-log capture follows each step's log with `tail -F`; the Dask worker stopped
    with its cluster leaves those behind (two per run of the test below, found alive hours later)."""
    import psutil

    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == "tail" and any(str(home) in arg for arg in proc.info["cmdline"] or []):
            proc.kill()


@pytest.mark.igm
def test_postgres_instance_and_dask_worker_execute_partitions(demo_chain, tmp_path, monkeypatch):
    from distributed import Client, LocalCluster

    from glacier_assets.definitions import dask_glacier_epoch_products

    postgres_bin()  # fails clearly when the server package is missing
    products = tmp_path / "products"
    shutil.copytree(demo_chain["products"], products)
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    with postgres_server() as pg:
        env = {"DAGSTER_HOME": str(home), "DAGSTER_PG_HOST": pg["host"], "DAGSTER_PG_PORT": str(pg["port"]),
               "DAGSTER_PG_USER": pg["user"], "DAGSTER_PG_PASSWORD": pg["password"], "DAGSTER_PG_DB": pg["db"],
               "GLACIER_PRODUCTS": str(products), "GLACIER_CATALOG": str(tmp_path / "catalog"),
               "GLACIER_REGION_SPEC": str(demo_chain["region"]), "GLACIER_INCLUDE": ",".join(DEMO_PAIR)}
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        with dg.DagsterInstance.get() as instance:
            assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
            defs = chain_definitions(products, demo_chain["region"], DEMO_PAIR)
            dg.materialize([*defs.assets, *defs.asset_checks], selection=["outline_inventory"],
                           instance=instance, resources=defs.resources)
            with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                              dashboard_address=None) as cluster, Client(cluster) as client:
                worker_pids = set(client.run(os.getpid).values())
                keys = [f"1995|{g}" for g in DEMO_PAIR]
                result = dg.execute_job(
                    dg.reconstructable(dask_glacier_epoch_products), instance=instance,
                    run_config={"execution": {"config": {"cluster": {"existing": {"address": cluster.scheduler_address}}}}},
                    tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[1]})
                assert result.success
                step_pids = {e.pid for e in result.all_events if e.event_type_value == "STEP_START"}
                assert step_pids and step_pids <= worker_pids and os.getpid() not in step_pids
            _stop_log_tails(home)
            done = instance.get_materialized_partitions(dg.AssetKey("glacier_outline"))
            assert set(keys) <= done
            run = instance.get_run_by_id(result.run_id)
            assert run.tags["dagster/asset_partition_range_start"] == keys[0]
        # the run is in Postgres itself
        psql = shutil.which("psql") or str(postgres_bin() / "psql")
        out = subprocess.run([psql, "-h", pg["host"], "-p", str(pg["port"]), "-U", pg["user"], "-d", pg["db"], "-tAc",
                              f"select count(*) from runs where run_id = '{result.run_id}'"],
                             capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "1"
