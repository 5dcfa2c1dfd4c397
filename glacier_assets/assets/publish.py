"""Publishing: gated products are copied into the catalog folder. Nothing is published unless the
quality gates pass, and a failed publish leaves what was published before untouched."""

import shutil

import dagster as dg
import pandas as pd

from ..checks import audit_problems
from ..constants import (
    CALIBRATION_REPORT_RELPATH,
    EPOCHS,
    PRODUCT_AUDIT_RELPATH,
    regional_outline_relpath,
    thickness_relpath,
)
from ..resources import ProductStore
from ..science.quality import area_gate
from ..storage import SHAPEFILE_PARTS, atomic_path
from ._metadata import metadata
from .inventory import load_inventory
from .quality import calibration_report, product_audit


def _copy(src, dst) -> int:
    with atomic_path(dst, suffix=dst.suffix) as tmp:
        shutil.copyfile(src, tmp)
    return dst.stat().st_size


@dg.asset(deps=[calibration_report, product_audit], group_name="publish", kinds={"cog", "shapefile"})
def published_products(context: dg.AssetExecutionContext, store: ProductStore) -> dg.MaterializeResult:
    """The products that passed the gates, in the catalog folder: `thickness/YEAR/ID_YEAR.tif`
    and `outlines/YEAR.shp` (+ `.parquet`). Runs only after the blocking checks pass, and
    re-verifies the area gate and the product audit itself before copying anything."""
    report = pd.read_csv(store.path(CALIBRATION_REPORT_RELPATH))
    gate = area_gate(report)
    problems = {k: v for k, v in audit_problems(pd.read_csv(store.path(PRODUCT_AUDIT_RELPATH))).items() if v}
    if not gate.passed or problems:
        raise dg.Failure(
            description=(f"not published: area gate {'passed' if gate.passed else 'FAILED'} "
                         f"(mean {gate.mean_abs_diff_pct:.2f} %; worst {gate.worst}); audit problems {problems}"),
            metadata={"worst_glaciers": dg.MetadataValue.json(gate.worst)})
    glaciers = sorted(load_inventory(store)["glacier_id"].unique())
    n_files, n_bytes = 0, 0
    for year in EPOCHS:
        for gid in glaciers:
            src = store.path(thickness_relpath(gid, year))
            if src.exists():
                n_bytes += _copy(src, store.catalog_path(thickness_relpath(gid, year)))
                n_files += 1
        shp = store.path(regional_outline_relpath(year, "shp"))
        for part in [shp.with_suffix(s) for s in (*SHAPEFILE_PARTS, ".parquet")]:
            if part.exists():
                n_bytes += _copy(part, store.catalog_path(f"outlines/{year}{part.suffix}"))
                n_files += 1
    return dg.MaterializeResult(metadata={
        **metadata({"path": store.catalog_path()}),
        "n_files": n_files, "megabytes": round(n_bytes / 1e6, 2), "n_glaciers": len(glaciers),
        "regional_mean_abs_diff_pct": round(gate.mean_abs_diff_pct, 3),
    })
