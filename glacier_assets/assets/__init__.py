"""Dagster assets, one module per part of the chain, each a thin wrapper over `steps`."""

import warnings

# Batched multi-partition backfills and partition mappings are marked beta/preview in Dagster 1.13.
warnings.filterwarnings("ignore", message=r".*is currently in (beta|preview)")
