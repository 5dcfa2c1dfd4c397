"""Dagster assets, one module per part of the chain, each a thin wrapper over `workflow`."""
