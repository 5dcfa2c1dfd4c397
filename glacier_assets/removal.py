"""Removing glaciers (`python -m glacier_assets remove ID ...`), an explicit act: a publication
never drops a glacier on its own. The new catalog version goes through the catalog's one publish
path (assets/publish.py: write_version), as every publication does."""

from __future__ import annotations

import json
import sys
from importlib.metadata import version

from .constants import (
    EPOCHS,
    REGION_LOCK_RELPATH,
    domain_relpath,
    mask_relpath,
    outline_relpath,
    plot_relpath,
    simulation_relpath,
    thickness_plot_relpath,
    thickness_relpath,
)


def remove_glaciers(ids: list[str], store=None, instance=None) -> int:
    """Unpublish glaciers and forget their products: a new catalog version without their items
    and outline rows, their work-area products and failure records deleted, their partitions
    dropped. A glacier still in the region's outline files comes back at the next full run."""
    import dagster as dg

    from .assets.publish import (
        InvalidCatalog,
        publication_record,
        published_glaciers,
        write_publication_record,
        write_version,
    )
    from .definitions import resolved_resources
    from .ledger import clear_glacier
    from .partitions import GLACIERS
    from .publication import live_version
    from .storage import file_lock

    store = store or resolved_resources(keys=("store",))["store"]
    root = store.catalog_path()
    with file_lock(store.path(REGION_LOCK_RELPATH)):
        live = live_version(root)
        in_catalog = set(published_glaciers(root)) if live else set()
        if live is not None and in_catalog & set(ids):
            record = publication_record(store)
            extent = json.loads((live / "thickness" / "collection.json").read_text())["extent"]["spatial"]["bbox"][0]
            try:  # each removed glacier's items go; its outline rows leave every epoch's file
                write_version(store, {g: [] for g in ids}, {y: (None, None) for y in EPOCHS}, {},
                              version("glacier_assets"), region_bbox=extent,
                              failed={g: r for g, r in record.get("failed", {}).items() if g not in ids})
            except InvalidCatalog as exc:
                print(f"not removed: the catalog would be invalid: {exc.problems[:3]}", file=sys.stderr)
                raise SystemExit(1) from None
            record["fingerprint"] = ""  # the next run publishes again
            write_publication_record(store, record)
        for g in ids:
            paths = [store.path(domain_relpath(g)), store.path(simulation_relpath(g)), store.path(plot_relpath(g)),
                     store.path(thickness_plot_relpath(g))]
            paths += [store.path(f(g, y)) for y in EPOCHS for f in (thickness_relpath, mask_relpath, outline_relpath)]
            for p in paths:
                p.unlink(missing_ok=True)
            clear_glacier(store.path(""), g)
    instance = instance or dg.DagsterInstance.get()
    for g in set(ids) & set(instance.get_dynamic_partitions(GLACIERS)):
        instance.delete_dynamic_partition(GLACIERS, g)
    for g in ids:
        where = "unpublished from " + str(root) + " and " if g in in_catalog else ""
        print(f"{g}: {where}its products removed")
    live = live_version(root)
    if live is not None:
        print(f"catalog: version {live.name}")
    return 0
