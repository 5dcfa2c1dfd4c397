"""Turning the steps' plain dicts into Dagster metadata."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import dagster as dg
import pandas as pd


def metadata(figures: Mapping) -> dict:
    """Paths become path metadata, lists and dicts JSON, None is dropped."""
    out: dict = {}
    for key, value in figures.items():
        if value is None:
            continue
        if key == "path" or key.endswith("_path") or key in ("geoparquet", "items_parquet", "outline_table"):
            out[key] = dg.MetadataValue.path(str(value))
        elif isinstance(value, (list, dict, tuple)):
            out[key] = dg.MetadataValue.json(value if not isinstance(value, tuple) else list(value))
        else:
            out[key] = value
    return out


def markdown_table(df: pd.DataFrame) -> dg.MetadataValue:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return dg.MetadataValue.md("\n".join(lines))


def failure(what: str, problems: Iterable[str]) -> dg.Failure:
    problems = list(problems)
    return dg.Failure(
        description=f"{what}: {len(problems)} failed: " + "; ".join(problems[:20]),
        metadata={"failures": dg.MetadataValue.json(problems)},
    )
