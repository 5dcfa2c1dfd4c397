"""Per-partition metadata in a batched (ranged) run, two public ways, timed.

    .venv/bin/python bench/partition_metadata.py [--glaciers 500 1000 2000] [--modes events public]

A multi-asset of three assets over glacier x epoch partitions (the shape of `epoch_products`) runs
one ranged run over one epoch and records each partition's own metadata, either as one
`AssetMaterialization` event per asset and partition (what `epoch_products` does), or with
`context.add_asset_metadata(md, asset_key=, partition_key=)` per asset and partition and one
result per asset for the range (each call checks the key against the whole range and copies all
entries so far: quadratic). Times the whole run on a temporary SQLite instance with the project's
bulk event settings (deploy.EVENT_BATCHING) and prints the cost per partition.

Measured (2 cores, loaded by another benchmark, 500 glaciers): events 68 ms per partition, the
public call 87 ms; the earlier private path (merging into Dagster's step metadata accumulator,
removed in issue 12) 49 ms.
"""


import argparse
import time

import dagster as dg

from glacier_assets.deploy import batch_event_writes

KEYS = [dg.AssetKey(k) for k in ("a", "b", "c")]
MODES = {"events": "an AssetMaterialization per partition", "public": "public add_asset_metadata"}


def job_for(mode: str, glaciers: list[str]):
    glacier = dg.DynamicPartitionsDefinition(name="glaciers")
    parts = dg.MultiPartitionsDefinition({"epoch": dg.StaticPartitionsDefinition(["2000"]), "glacier": glacier})

    @dg.multi_asset(specs=[dg.AssetSpec(k, partitions_def=parts, skippable=True) for k in KEYS],
                    partitions_def=parts, can_subset=True)
    def products(context: dg.AssetExecutionContext):
        entries = {(k, pk): {"path": f"/x/{pk}.tif", "area_km2": 1.0} for pk in context.partition_keys for k in KEYS}
        if mode == "events":  # one materialization event per partition, no range result
            for (key, pk), md in entries.items():
                yield dg.AssetMaterialization(key, partition=pk, metadata=md)
            return
        for (key, pk), md in entries.items():
            context.add_asset_metadata(md, asset_key=key, partition_key=pk)
        for key in KEYS:
            yield dg.MaterializeResult(asset_key=key)

    return dg.Definitions(assets=[products], jobs=[dg.define_asset_job("j", selection=KEYS, partitions_def=parts)])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--glaciers", type=int, nargs="+", default=[500, 1000, 2000])
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    args = p.parse_args()
    batch_event_writes()
    for n in args.glaciers:
        glaciers = [f"RGI60-13.{i:05d}" for i in range(1, n + 1)]
        for mode in args.modes:
            with dg.instance_for_test() as instance:
                instance.add_dynamic_partitions("glaciers", glaciers)
                job = job_for(mode, glaciers).resolve_job_def("j")
                t0 = time.perf_counter()
                job.execute_in_process(instance=instance, tags={
                    "dagster/asset_partition_range_start": f"2000|{glaciers[0]}",
                    "dagster/asset_partition_range_end": f"2000|{glaciers[-1]}"})
                secs = time.perf_counter() - t0
                done = len(instance.get_materialized_partitions(KEYS[0]))
                md = instance.get_latest_materialization_event(KEYS[0]).asset_materialization.metadata
            print(f"{n} glaciers, {MODES[mode]}: {secs:.1f} s, {1000 * secs / n:.1f} ms per partition "
                  f"({done} partitions materialized, last with {sorted(md)})")


if __name__ == "__main__":
    main()
