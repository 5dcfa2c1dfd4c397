"""Asset checks. The blocking ERROR checks gate publishing: a failure stops `stac_catalog`
in the same run, and `stac_catalog` re-verifies the same figures itself."""

import dagster as dg
import geopandas as gpd
import pandas as pd

from .assets.inventory import INVENTORY, load_inventory
from .assets.quality import calibration_report, product_audit
from .constants import (
    AREA_GATE_PCT,
    CALIBRATION_REPORT_RELPATH,
    DATA_DOCS_RELPATH,
    GLACIER_WARN_PCT,
    MASK_OUTLINE_TOLERANCE_PCT,
    OUTLINE_TABLE_RELPATH,
    PRODUCT_AUDIT_RELPATH,
    SHAPE_FLAG_IOU,
    SHAPE_FLAG_TONGUE,
    THICKNESS_MAX_M,
)
from .expectations import run_outline_suite
from .resources import ProductStore, RegionSource
from .schemas import inventory_schema, published_outline_schema
from .science.quality import area_gate, glaciers_above, shape_summary, validation_table
from .science.vectorize import overlaps

ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN


def _failing_rows(audit: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The audit's rows (glacier x epoch) each check fails."""
    present = audit[audit["outline_present"]]
    return {
        "missing": audit[~audit["outline_present"]],
        "thickness": present[~(present["thickness_ok"].astype(bool) & present["off_glacier_zero"].astype(bool))],
        "consistency": present[(present["mask_outline_diff_pct"] > MASK_OUTLINE_TOLERANCE_PCT)
                               | ~present["mask_codes_ok"].astype(bool)],
        "outline": present[~(present["outline_valid"].astype(bool) & present["outline_crs_ok"].astype(bool))],
    }


def _problem(row) -> str:
    """The file to blame and its problem (`steps.reports.audit_glacier`), or ""."""
    p = getattr(row, "problem", "")
    return p if isinstance(p, str) else ""


def audit_problems(audit: pd.DataFrame) -> dict[str, list[str]]:
    """The audit's failures by check, each naming glacier and epoch, and the file and its problem
    where a file is to blame."""
    return {kind: [f"{r.glacier_id} {r.epoch}" + (f": {_problem(r)}" if _problem(r) else "") for r in rows.itertuples()]
            for kind, rows in _failing_rows(audit).items()}


def audit_failed_glaciers(audit: pd.DataFrame) -> dict[str, str]:
    """Glacier -> why the audit failed it (its first failed epoch, and how many more): these
    glaciers' items are not published; the others are."""
    out: dict[str, dict[int, str]] = {}
    for kind, rows in _failing_rows(audit).items():
        for r in rows.itertuples():
            out.setdefault(r.glacier_id, {}).setdefault(r.epoch, f"{r.epoch}: {_problem(r) or f'{kind} check failed'}")
    return {g: f"product_audit {next(iter(v.values()))}" + (f" (+{len(v) - 1} more epochs)" if len(v) > 1 else "")
            for g, v in out.items()}


def overlap_problems(table: gpd.GeoDataFrame) -> tuple[list[str], float]:
    """The epochs of the published outline table where glaciers overlap, one line each, and the
    area (km2) counted twice over all epochs."""
    problems, twice = [], 0.0
    for year, rows in table.groupby("year"):
        n_pairs, km2 = overlaps(rows.geometry.reset_index(drop=True))
        twice += km2
        if n_pairs:
            problems.append(f"{year}: {n_pairs} pair(s) of glaciers overlap, {km2:.4f} km2 counted twice")
    return problems, twice


@dg.asset_check(asset=calibration_report, blocking=True,
                description="Regional mean |A_sim - A_obs| / A_obs over every outline, at its date, "
                            f"<= {AREA_GATE_PCT} %; fails when nothing was compared or a glacier ran uncalibrated")
def area_agreement_gate(store: ProductStore) -> dg.AssetCheckResult:
    report = pd.read_csv(store.path(CALIBRATION_REPORT_RELPATH))
    gate = area_gate(report)
    return dg.AssetCheckResult(passed=gate.passed, severity=ERROR, metadata={
        "regional_mean_abs_diff_pct": round(gate.mean_abs_diff_pct, 3), "limit_pct": AREA_GATE_PCT,
        "n_comparisons": gate.n_comparisons, "n_glaciers": gate.n_glaciers,
        "worst_glaciers": dg.MetadataValue.json([{"glacier_id": g, "mean_abs_diff_pct": v} for g, v in gate.worst]),
        **({"note": gate.note} if gate.note else {}),
    })


@dg.asset_check(asset=calibration_report, description=f"No single glacier above {GLACIER_WARN_PCT} % area difference")
def glacier_area_warning(store: ProductStore) -> dg.AssetCheckResult:
    above = glaciers_above(pd.read_csv(store.path(CALIBRATION_REPORT_RELPATH)))
    return dg.AssetCheckResult(passed=above.empty, severity=WARN, metadata={
        "glaciers": dg.MetadataValue.json({g: round(float(v), 2) for g, v in above.items()})})


@dg.asset_check(asset=calibration_report, description=f"No glacier's ice in the wrong place at an outline date "
                                                    f"(IoU < {SHAPE_FLAG_IOU}, tongue covered < {SHAPE_FLAG_TONGUE})")
def glacier_shape_warning(store: ProductStore) -> dg.AssetCheckResult:
    """Where the simulated ice is (science/shape.py): the region's figures, and the glaciers
    flagged for their shape with the reason. A warning: they are published, flagged."""
    table = validation_table(pd.read_csv(store.path(CALIBRATION_REPORT_RELPATH)))
    flagged = table[table["shape_flag"] != ""]
    return dg.AssetCheckResult(passed=flagged.empty, severity=WARN, metadata={
        **{k: v for k, v in shape_summary(table).items() if v is not None},
        "glaciers": dg.MetadataValue.json(dict(zip(flagged["glacier_id"], flagged["shape_flag"])))})


def _audit_check(kind: str, description: str):
    # not blocking: a glacier that fails it is left out of the publication (stac_catalog), the others publish
    @dg.asset_check(asset=product_audit, name=f"{kind}_check", blocking=False, description=description)
    def _check(store: ProductStore) -> dg.AssetCheckResult:
        problems = audit_problems(pd.read_csv(store.path(PRODUCT_AUDIT_RELPATH)))[kind]
        return dg.AssetCheckResult(passed=not problems, severity=ERROR, metadata={
            "n_failed": len(problems), "failed": dg.MetadataValue.json(problems[:100])})

    return _check


thickness_sanity = _audit_check(
    "thickness", f"Thickness finite, >= 0, <= {THICKNESS_MAX_M:.0f} m, zero off the glacier (domain border)")
mask_outline_consistency = _audit_check(
    "consistency", f"Outline polygon area equals the mask's pixel area within {MASK_OUTLINE_TOLERANCE_PCT} %")
outline_validity = _audit_check("outline", "Outline geometries valid and in the simulation's CRS")
products_complete = _audit_check("missing", "Every glacier has its products at every epoch")


@dg.asset_check(asset=product_audit, blocking=True,
                description="Published outline table: pandera schema; valid geometries, Albers CRS, unique ids")
def published_outlines_schema(store: ProductStore) -> dg.AssetCheckResult:
    import pandera.errors

    table = gpd.read_parquet(store.path(OUTLINE_TABLE_RELPATH))
    problems = []
    try:
        published_outline_schema().validate(pd.DataFrame(table.drop(columns="geometry")), lazy=True)
    except pandera.errors.SchemaErrors as exc:
        problems += [f"{r.column}: {r.check} ({r.failure_case})" for r in exc.failure_cases.head(20).itertuples()]
    if not table.empty:
        if not table.geometry.is_valid.all():
            problems.append(f"{int((~table.geometry.is_valid).sum())} invalid geometries")
        if table.crs is None or table.crs.to_dict().get("proj") != "aea":
            problems.append(f"CRS is {table.crs}, not Albers equal-area")
    return dg.AssetCheckResult(passed=not problems, severity=ERROR, metadata={
        "rows": len(table), "problems": dg.MetadataValue.json(problems)})


@dg.asset_check(asset=product_audit, blocking=True,
                description="Great Expectations suite over the published outline attribute table (Data Docs)")
def published_outlines_expectations(store: ProductStore) -> dg.AssetCheckResult:
    table = gpd.read_parquet(store.path(OUTLINE_TABLE_RELPATH))
    result = run_outline_suite(pd.DataFrame(table.drop(columns="geometry")), store.path(DATA_DOCS_RELPATH))
    return dg.AssetCheckResult(passed=result.success, severity=ERROR, metadata={
        "expectations": result.evaluated, "failed": dg.MetadataValue.json(result.failed),
        "data_docs": dg.MetadataValue.path(str(result.docs_index))})


@dg.asset_check(asset=product_audit, blocking=True,
                description="No two glaciers' outlines overlap in a regional file (area counted twice)")
def regional_outlines_contiguous(store: ProductStore) -> dg.AssetCheckResult:
    problems, twice = overlap_problems(gpd.read_parquet(store.path(OUTLINE_TABLE_RELPATH)))
    return dg.AssetCheckResult(passed=not problems, severity=ERROR, metadata={
        "overlap_area_km2": round(twice, 5), "problems": dg.MetadataValue.json(problems)})


@dg.asset_check(asset=INVENTORY, blocking=True, description="Pandera schema of the outline inventory")
def inventory_table_schema(store: ProductStore, region: RegionSource) -> dg.AssetCheckResult:
    import pandera.errors

    table = pd.DataFrame(load_inventory(store).drop(columns="geometry"))
    try:
        inventory_schema(region.load().id_pattern).validate(table, lazy=True)
        problems = []
    except pandera.errors.SchemaErrors as exc:
        problems = [f"{r.column}: {r.check} ({r.failure_case})" for r in exc.failure_cases.head(20).itertuples()]
    return dg.AssetCheckResult(passed=not problems, severity=ERROR, metadata={
        "rows": len(table), "problems": dg.MetadataValue.json(problems)})


CHECKS = [area_agreement_gate, glacier_area_warning, glacier_shape_warning, thickness_sanity,
          mask_outline_consistency, outline_validity, products_complete, published_outlines_schema,
          published_outlines_expectations, regional_outlines_contiguous, inventory_table_schema]
