"""Partitions: glaciers (dynamic, registered from the inventory) x epochs (static, from constants)."""

from __future__ import annotations

import dagster as dg

from .constants import EPOCHS

GLACIERS = "glaciers"
glacier_partitions = dg.DynamicPartitionsDefinition(name=GLACIERS)
epoch_partitions = dg.StaticPartitionsDefinition([str(y) for y in EPOCHS])
glacier_epoch_partitions = dg.MultiPartitionsDefinition({"epoch": epoch_partitions, "glacier": glacier_partitions})


def split_key(key: str | dg.MultiPartitionKey) -> tuple[str, int]:
    """(glacier id, epoch year) of a glacier x epoch key such as `1990|RGI60-13.90001`."""
    dims = key.keys_by_dimension if isinstance(key, dg.MultiPartitionKey) else dict(
        zip(("epoch", "glacier"), str(key).split("|"))
    )
    return dims["glacier"], int(dims["epoch"])


def register_glaciers(instance: dg.DagsterInstance, glacier_ids: list[str]) -> list[str]:
    """Add the glaciers not yet registered (idempotent); return those added."""
    known = set(instance.get_dynamic_partitions(GLACIERS))
    new = sorted(set(glacier_ids) - known)
    if new:
        instance.add_dynamic_partitions(GLACIERS, new)
    return new
