"""Per-partition metadata in a batched (ranged) run: Dagster's public call against the project's way.

    .venv/bin/python bench/partition_metadata.py [--glaciers 500 1000 2000]

A multi-asset of three assets over glacier x epoch partitions (the shape of `epoch_products`) runs
one ranged run over one epoch and attaches each partition's own metadata, either with the public
`context.add_asset_metadata(md, asset_key=, partition_key=)` once per asset and partition, or with
`assets/_metadata.add_partition_metadata` (all entries merged into the step's metadata at once,
through Dagster internals). Times the whole run on a temporary SQLite instance with the project's
bulk event settings (deploy.EVENT_BATCHING) and prints the cost per partition: the reason the
project keeps the private path (see its docstring).
"""


import argparse
import time

import dagster as dg

from glacier_assets.assets._metadata import add_partition_metadata
from glacier_assets.deploy import batch_event_writes

KEYS = [dg.AssetKey(k) for k in ("a", "b", "c")]


def job_for(public: bool, glaciers: list[str]):
    glacier = dg.DynamicPartitionsDefinition(name="glaciers")
    parts = dg.MultiPartitionsDefinition({"epoch": dg.StaticPartitionsDefinition(["2000"]), "glacier": glacier})

    @dg.multi_asset(specs=[dg.AssetSpec(k, partitions_def=parts) for k in KEYS], partitions_def=parts,
                    can_subset=True)
    def products(context: dg.AssetExecutionContext):
        entries = {(k, pk): {"path": f"/x/{pk}.tif", "area_km2": 1.0} for pk in context.partition_keys for k in KEYS}
        if public:
            for (key, pk), md in entries.items():
                context.add_asset_metadata(md, asset_key=key, partition_key=pk)
        else:
            add_partition_metadata(context, entries)
        for key in KEYS:
            yield dg.MaterializeResult(asset_key=key)

    return dg.Definitions(assets=[products], jobs=[dg.define_asset_job("j", selection=KEYS, partitions_def=parts)])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--glaciers", type=int, nargs="+", default=[500, 1000, 2000])
    args = p.parse_args()
    batch_event_writes()
    for n in args.glaciers:
        glaciers = [f"RGI60-13.{i:05d}" for i in range(1, n + 1)]
        for public in (False, True):
            with dg.instance_for_test() as instance:
                instance.add_dynamic_partitions("glaciers", glaciers)
                job = job_for(public, glaciers).resolve_job_def("j")
                t0 = time.perf_counter()
                job.execute_in_process(instance=instance, tags={
                    "dagster/asset_partition_range_start": f"2000|{glaciers[0]}",
                    "dagster/asset_partition_range_end": f"2000|{glaciers[-1]}"})
                secs = time.perf_counter() - t0
            print(f"{n} glaciers, {'public add_asset_metadata' if public else 'add_partition_metadata (internals)'}: "
                  f"{secs:.1f} s, {1000 * secs / n:.1f} ms per partition")


if __name__ == "__main__":
    main()
