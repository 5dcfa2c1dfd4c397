"""The Dagster code location: assets, jobs and resources. Nothing else lives here; loading it
changes nothing in the process's environment."""

from __future__ import annotations

import os
from typing import get_args

import dagster as dg

from .assets.inventory import outline_inventory
from .assets.products import epoch_products, regional_outlines
from .assets.publish import stac_catalog
from .assets.quality import calibration_report, product_audit, validation_report
from .assets.rheology import ice_rheology
from .assets.simulation import glacier_domain, iceflow_emulator, igm_simulation
from .checks import CHECKS
from .constants import RHEOLOGY_SAMPLE_GLACIERS, VALIDATION_SHARE
from .deploy import ExecutorName, SettingsError, executor
from .partitions import epoch_partitions, glacier_epoch_partitions, glacier_partitions
from .resources import IGMRunner, ProductStore, RegionSource

ASSETS = [outline_inventory, iceflow_emulator, ice_rheology, glacier_domain, igm_simulation, epoch_products,
          regional_outlines, calibration_report, validation_report, product_audit, stac_catalog]

simulate_glaciers = dg.define_asset_job(
    "simulate_glaciers", selection=[glacier_domain, igm_simulation], partitions_def=glacier_partitions,
    description="Model domain and IGM run, one run per glacier partition.")
glacier_epoch_products = dg.define_asset_job(
    "glacier_epoch_products", selection=dg.AssetSelection.assets(epoch_products),
    partitions_def=glacier_epoch_partitions,
    description="25 m thickness, masks and outlines; backfills batch them into ranged runs.")
regional_products = dg.define_asset_job(
    "regional_products", selection=[regional_outlines], partitions_def=epoch_partitions,
    description="One outline file per epoch (Albers).")
quality_and_publish = dg.define_asset_job(
    "quality_and_publish",
    selection=dg.AssetSelection.assets(calibration_report, validation_report, product_audit, stac_catalog),
    description="Calibration report, product audit and their checks; publishing runs only if the gates pass.")
JOBS = [simulate_glaciers, glacier_epoch_products, regional_products, quality_and_publish]


def _env(name: str, default):
    """A resource's str or int field from the environment the Dagster way: `dg.EnvVar(name)` where
    the variable is set (resolved when a run starts; the UI shows where the value comes from),
    else the field's default."""
    if not os.environ.get(name):
        return default
    return dg.EnvVar.int(name) if isinstance(default, int) else dg.EnvVar(name)


def _choice(name: str, field: str, resource: type[dg.ConfigurableResource]):
    """A resource's Literal field from $name, checked against the field's choices now: Dagster's
    EnvVar resolves only str and int fields (pydantic rejects it for a Literal)."""
    choices = get_args(resource.model_fields[field].annotation)
    value = os.environ.get(name) or resource.model_fields[field].default
    if value not in choices:
        raise SettingsError(f"{name}={value!r}: use one of {', '.join(choices)}")
    return value


def _share(name: str, default: float) -> float:
    """A share (0 < share <= 1) from $name, checked now (Dagster's EnvVar resolves only str and int)."""
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value <= 1.0:
        raise SettingsError(f"{name}={text!r}: use a share between 0 (exclusive) and 1, e.g. 0.1 for one glacier "
                            "in ten")
    return value


def resources() -> dict:
    """The resources, configured from GLACIER_* variables where set (README: "Settings" under scaling out)."""
    return {
        "store": ProductStore(root=_env("GLACIER_PRODUCTS", "var/products"),
                              catalog_root=_env("GLACIER_CATALOG", "catalog")),
        "region": RegionSource(
            spec=_env("GLACIER_REGION_SPEC", ""),
            include=[g for g in os.environ.get("GLACIER_INCLUDE", "").split(",") if g],  # a list: not an EnvVar
            farinotti_table=_env("GLACIER_FARINOTTI_TABLE", ""),
        ),
        "igm": IGMRunner(threads=_env("GLACIER_IGM_THREADS", 1),
                         launcher=_choice("GLACIER_IGM_LAUNCHER", "launcher", IGMRunner),
                         mapping=_choice("GLACIER_IGM_MAPPING", "mapping", IGMRunner),
                         leave_one_out=os.environ.get("GLACIER_LEAVE_ONE_OUT", "1") not in ("0", "false", "no"),
                         validation_share=_share("GLACIER_VALIDATION_SHARE", VALIDATION_SHARE),
                         flow_consistency=os.environ.get("GLACIER_FLOW_CONSISTENCY", "1") not in ("0", "false", "no"),
                         rheology_sample=int(os.environ.get("GLACIER_RHEOLOGY_SAMPLE", RHEOLOGY_SAMPLE_GLACIERS))),
    }


def build_definitions(executor_name: ExecutorName | None = None) -> dg.Definitions:
    return dg.Definitions(assets=ASSETS, asset_checks=CHECKS, jobs=JOBS, resources=resources(),
                          executor=executor(executor_name))


defs = build_definitions()


def resolved_resources(definitions: dg.Definitions | None = None,
                       keys: tuple[str, ...] = ("store", "region", "igm")) -> dict:
    """The resources of `definitions` (default: the code location's) with their settings resolved
    (EnvVar read now), for code that uses them outside a run: the main job, the CLI, benchmarks."""
    definitions = definitions or defs
    assert definitions.resources is not None  # ours always have resources
    with dg.build_resources({k: definitions.resources[k] for k in keys}) as built:
        return {k: getattr(built, k) for k in keys}


def dask_glacier_epoch_products():
    """The per-epoch products job on a Dask cluster, importable by any process (for execute_job)."""
    return build_definitions("dask").resolve_job_def("glacier_epoch_products")
