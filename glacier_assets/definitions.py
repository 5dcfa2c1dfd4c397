"""The Dagster code location: assets, jobs and resources. Nothing else lives here."""

from __future__ import annotations

import os

import dagster as dg

from .assets.inventory import outline_inventory
from .assets.products import epoch_products, regional_outlines
from .assets.publish import stac_catalog
from .assets.quality import calibration_report, product_audit, validation_report
from .assets.rheology import ice_rheology
from .assets.simulation import glacier_domain, iceflow_emulator, igm_simulation
from .checks import CHECKS
from .deploy import batch_event_writes, executor
from .igm_run.model import FLOW_MAPPING
from .partitions import epoch_partitions, glacier_epoch_partitions, glacier_partitions
from .resources import IGMRunner, ProductStore, RegionSource

batch_event_writes()  # bulk event writes for batched runs, in every process that loads this code

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


def resources() -> dict:
    return {
        "store": ProductStore(root=os.environ.get("GLACIER_PRODUCTS", "var/products"),
                              catalog_root=os.environ.get("GLACIER_CATALOG", "catalog")),
        "region": RegionSource(
            spec=os.environ.get("GLACIER_REGION_SPEC", ""),
            include=[g for g in os.environ.get("GLACIER_INCLUDE", "").split(",") if g],
            farinotti_table=os.environ.get("GLACIER_FARINOTTI_TABLE", ""),
        ),
        "igm": IGMRunner(threads=int(os.environ.get("GLACIER_IGM_THREADS", "1")),
                         launcher=os.environ.get("GLACIER_IGM_LAUNCHER", "subprocess"),
                         mapping=os.environ.get("GLACIER_IGM_MAPPING", FLOW_MAPPING),
                         leave_one_out=os.environ.get("GLACIER_LEAVE_ONE_OUT", "1") not in ("0", "false", "no")),
    }


def build_definitions(executor_name: str | None = None) -> dg.Definitions:
    return dg.Definitions(assets=ASSETS, asset_checks=CHECKS, jobs=JOBS, resources=resources(),
                          executor=executor(executor_name))


defs = build_definitions()


def dask_glacier_epoch_products():
    """The per-epoch products job on a Dask cluster, importable by any process (for execute_job)."""
    return build_definitions("dask").resolve_job_def("glacier_epoch_products")
