"""Deployment settings in one place: which executor runs the steps, and how a step pod or the
IGM child pod asks Kubernetes for a GPU.

* GLACIER_EXECUTOR = multiprocess (default) | in_process | dask | k8s  (`ExecutorName`)
* IGMRunner.launcher = subprocess (default) | k8s  (env GLACIER_IGM_LAUNCHER)
* EVENT_BATCHING: how Dagster writes a batched run's per-partition events (see below)
"""

from __future__ import annotations

import os
from typing import Literal, cast, get_args

import dagster as dg

ExecutorName = Literal["multiprocess", "in_process", "dask", "k8s"]

GPU_RESOURCE = "nvidia.com/gpu"
PRODUCTS_VOLUME = {"name": "glacier-data", "persistent_volume_claim": {"claim_name": "glacier-data"}}
PRODUCTS_MOUNT = {"name": "glacier-data", "mount_path": "/data"}

# For the k8s_job_executor: the IGM step's pod asks for one GPU (and tolerates GPU nodes).
IGM_STEP_K8S_CONFIG = {
    "container_config": {"resources": {"limits": {GPU_RESOURCE: "1", "memory": "16Gi"},
                                       "requests": {"cpu": "2", "memory": "8Gi"}}},
    "pod_spec_config": {"tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]},
}


# A ranged run over 2,000 glaciers records 2,000 x 3 materializations and as many "planned"
# events; written one by one they cost ~10 ms each (bench/region_scale.py), more than the science.
# With these two Dagster settings a ranged run writes one planned event per asset (the partition
# range as a subset) and its materializations in bulk inserts (PostgreSQL; SQLite still writes them
# one by one). The price: if a batched run fails, its partitions show as missing, not failed, in the
# UI; the run's failure names the glaciers. They are read from the environment of every process
# that creates runs or executes steps (webserver, daemon, run workers): `python -m glacier_assets`
# (run, ui, remove) and the Makefile set them (unless set) for the processes they start, and deploy/
# passes them to the Kubernetes pods. Loading the code location sets nothing.
EVENT_BATCHING = {"DAGSTER_EVENT_BATCH_SIZE": "2000", "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"}


def batch_event_writes(environ=None) -> dict:
    """Apply EVENT_BATCHING to `environ` (default os.environ) where not already set; returns it."""
    environ = os.environ if environ is None else environ
    for key, value in EVENT_BATCHING.items():
        environ.setdefault(key, value)
    return environ


def igm_pod_spec(gpus: int = 1, cpu: str = "4", memory: str = "16Gi") -> dict:
    """Base pod spec for the IGM child under PipesK8sClient: GPU limit, the shared products volume."""
    return {
        "containers": [{
            "resources": {"limits": {GPU_RESOURCE: str(gpus), "memory": memory},
                          "requests": {"cpu": cpu, "memory": memory}},
            "volume_mounts": [PRODUCTS_MOUNT],
        }],
        "volumes": [PRODUCTS_VOLUME],
        "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
        "restart_policy": "Never",
    }


class SettingsError(ValueError):
    """A GLACIER_* setting the definitions cannot use: the message names the variable and what to set."""


def executor_name() -> ExecutorName:
    """$GLACIER_EXECUTOR, checked against the choices (default multiprocess)."""
    name = os.environ.get("GLACIER_EXECUTOR") or "multiprocess"
    if name not in get_args(ExecutorName):
        raise SettingsError(f"GLACIER_EXECUTOR={name!r}: use {', '.join(get_args(ExecutorName))}")
    return cast(ExecutorName, name)  # one of the choices, checked above


def executor(name: ExecutorName | None = None) -> dg.ExecutorDefinition | None:
    """The executor named (default: $GLACIER_EXECUTOR; None means Dagster's default, multiprocess)."""
    name = name or executor_name()
    if name == "dask":
        from dagster_dask import dask_executor

        return dask_executor
    if name == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    if name == "in_process":
        return dg.in_process_executor
    if name == "multiprocess":
        return None
    raise ValueError(f"executor {name!r}: use {', '.join(get_args(ExecutorName))}")
