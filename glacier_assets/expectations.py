"""A Great Expectations (1.x) suite over the published outline attribute table, with Data Docs.

Run from a Dagster asset check; the HTML lands in `<products>/reports/data_docs/index.html`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .constants import EPOCHS


@dataclass(frozen=True)
class SuiteResult:
    success: bool
    evaluated: int
    failed: list[str]
    docs_index: Path


def run_outline_suite(table: pd.DataFrame, docs_dir: Path) -> SuiteResult:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    docs_dir.mkdir(parents=True, exist_ok=True)
    ctx.add_data_docs_site(site_name="glacier_assets", site_config={
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    })
    batch = ctx.data_sources.add_pandas("products").add_dataframe_asset("published_outlines") \
        .add_batch_definition_whole_dataframe("all_epochs")
    suite = ctx.suites.add(gx.ExpectationSuite(name="published_outlines"))
    e = gx.expectations
    for exp in (
        e.ExpectTableColumnsToMatchSet(column_set=["glacier_id", "year", "code", "area_km2"], exact_match=False),
        e.ExpectColumnValuesToNotBeNull(column="glacier_id"),
        e.ExpectColumnValuesToMatchRegex(column="glacier_id", regex=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
        e.ExpectColumnValuesToBeInSet(column="year", value_set=list(EPOCHS)),
        e.ExpectColumnValuesToBeBetween(column="area_km2", min_value=0, strict_min=True, max_value=2000),
        e.ExpectColumnValuesToBeBetween(column="code", min_value=1),
        e.ExpectCompoundColumnsToBeUnique(column_list=["glacier_id", "year"]),
        e.ExpectTableRowCountToBeBetween(min_value=1),
    ):
        suite.add_expectation(exp)
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name="published_outlines", data=batch, suite=suite))
    cp = ctx.checkpoints.add(gx.Checkpoint(
        name="published_outlines", validation_definitions=[vd],
        actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=["glacier_assets"])]))
    result = cp.run(batch_parameters={"dataframe": table[["glacier_id", "year", "code", "area_km2"]].copy()})
    run = next(iter(result.run_results.values()))
    failed = []
    for r in run.results:
        if not r.success:
            config = r.expectation_config
            assert config is not None  # a checkpoint's results carry their expectation
            failed.append(config.type)
    return SuiteResult(bool(result.success), len(run.results), failed, docs_dir / "index.html")
