"""Deployment settings in one place: which executor runs the steps, and how a step pod or the
IGM child pod asks Kubernetes for a GPU.

* GLACIER_EXECUTOR = multiprocess (default) | in_process | dask | k8s
* IGMRunner.launcher = subprocess (default) | k8s  (env GLACIER_IGM_LAUNCHER)
"""

from __future__ import annotations

import os

import dagster as dg

GPU_RESOURCE = "nvidia.com/gpu"
PRODUCTS_VOLUME = {"name": "glacier-data", "persistent_volume_claim": {"claim_name": "glacier-data"}}
PRODUCTS_MOUNT = {"name": "glacier-data", "mount_path": "/data"}

# For the k8s_job_executor: the IGM step's pod asks for one GPU (and tolerates GPU nodes).
IGM_STEP_K8S_CONFIG = {
    "container_config": {"resources": {"limits": {GPU_RESOURCE: "1", "memory": "16Gi"},
                                       "requests": {"cpu": "2", "memory": "8Gi"}}},
    "pod_spec_config": {"tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]},
}


def igm_pod_spec(gpus: int = 1, cpu: str = "4", memory: str = "16Gi") -> dict:
    """Base pod spec for the IGM child under PipesK8sClient: GPU limit, the shared products volume."""
    return {
        "containers": [{
            "resources": {"limits": {GPU_RESOURCE: str(gpus), "memory": memory}, "requests": {"cpu": cpu, "memory": memory}},
            "volume_mounts": [PRODUCTS_MOUNT],
        }],
        "volumes": [PRODUCTS_VOLUME],
        "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
        "restart_policy": "Never",
    }


def executor(name: str | None = None) -> dg.ExecutorDefinition | None:
    """The executor named (default: $GLACIER_EXECUTOR; None means Dagster's default, multiprocess)."""
    name = name or os.environ.get("GLACIER_EXECUTOR", "multiprocess")
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
    raise ValueError(f"GLACIER_EXECUTOR={name!r}: use multiprocess, in_process, dask or k8s")
