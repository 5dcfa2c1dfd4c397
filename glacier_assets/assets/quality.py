"""Region-wide quality: the calibration report (area agreement) and the audit of every product."""

import dagster as dg
import numpy as np
import pandas as pd

from ..constants import (
    CALIBRATION_REPORT_RELPATH,
    EPOCHS,
    OUTLINE_TABLE_RELPATH,
    PRODUCT_AUDIT_RELPATH,
    REGION_LOCK_RELPATH,
    VALIDATION_REPORT_RELPATH,
    domain_relpath,
    mask_relpath,
    outline_relpath,
    regional_outline_relpath,
    simulation_relpath,
    thickness_relpath,
)
from ..inventory.reference import read_geodetic_table
from ..plots import markdown_image, save_png, validation_png
from ..resources import IGMRunner, ProductStore, RegionSource
from ..science.masks import glacier_code
from ..science.quality import GEODETIC_COLUMNS, area_gate, glaciers_above, validation_summary, validation_table
from ..steps.evaluation import simulated_geodetic_balance
from ..steps.regional import published_outline_table
from ..steps.reports import AUDIT_COLUMNS, REPORT_COLUMNS, audit_glacier, calibration_rows, domain_surface
from ..storage import atomic_path, file_lock, write_geoparquet
from ._metadata import markdown_table, metadata
from ._steps import glacier_states, state_metadata
from .inventory import INVENTORY, load_inventory
from .products import MASK, OUTLINE, THICKNESS, regional_outlines
from .rheology import region_references
from .simulation import igm_simulation


def geodetic_comparison(store: ProductStore, region: RegionSource, glaciers) -> pd.DataFrame | None:
    """For the `glaciers` with a simulation and a geodetic balance in the region spec: the
    geodetic balance and the simulated one over its period (`science.quality.GEODETIC_COLUMNS`);
    None when the spec names no geodetic balances."""
    spec = region.load()
    if spec.geodetic_mass_balance is None:
        return None
    table = read_geodetic_table(spec.geodetic_mass_balance.path).set_index("glacier_id")
    rows = []
    for gid in sorted(set(glaciers) & set(table.index)):
        sim = store.path(simulation_relpath(gid))
        if not sim.exists():
            continue
        ref = table.loc[gid]
        rows.append({"glacier_id": gid, "start": int(ref["start"]), "end": int(ref["end"]),
                     "geodetic_mb_mwe": float(ref["dmdtda_mwe"]),
                     **simulated_geodetic_balance(sim, int(ref["start"]), int(ref["end"]))})
    return pd.DataFrame(rows, columns=GEODETIC_COLUMNS)


def _write_csv(path, df: pd.DataFrame):
    with atomic_path(path, suffix=".csv") as tmp:
        df.to_csv(tmp, index=False)
    return path


@dg.asset(deps=[igm_simulation, INVENTORY], group_name="quality", kinds={"csv"})
def calibration_report(context: dg.AssetExecutionContext, store: ProductStore, region: RegionSource,
                       igm: IGMRunner):
    """Per glacier and outline, at the outline's own date: the ELA shift found (and a flag if it is
    implausible), simulated vs observed area, their relative difference, the IoU of simulated and
    observed masks (25 m), calibration iterations and status, the area predicted with the outline
    left out of the calibration, the volume, and the glacier's reference volume
    (`reports/calibration.csv`). Made from the glaciers whose products are complete and current;
    the others (failed, not simulated, inputs changed) are listed, not guessed."""
    with file_lock(store.path(REGION_LOCK_RELPATH)):
        inventory = load_inventory(store)
        state = glacier_states(store, region, igm, inventory)
        refs = region_references(region, inventory)
        rows = []
        for gid in state.current:
            rows.extend(calibration_rows(inventory[inventory["glacier_id"] == gid], store.path(simulation_relpath(gid)),
                                         refs.get(gid), domain_surface(store.path(domain_relpath(gid)))))
        report = pd.DataFrame(rows, columns=REPORT_COLUMNS)
        path = _write_csv(store.path(CALIBRATION_REPORT_RELPATH), report)
    gate = area_gate(report)
    warn = glaciers_above(report)
    per_glacier = report.groupby("glacier_id").agg(
        status=("glacier_status", "first"), mean_abs_diff_pct=("rel_diff_pct", lambda s: float(np.mean(np.abs(s)))),
        mean_iou=("iou", "mean"), mean_tongue_covered=("tongue_covered", "mean"),
        shape_flag=("shape_flag", lambda s: "; ".join(str(f) for f in s.dropna() if f)),
        reference_km3=("reference_volume_km3", "first")).round(3).reset_index()
    return dg.MaterializeResult(metadata={
        **metadata({"path": path}),
        "n_glaciers": int(report["glacier_id"].nunique()),
        **state_metadata(state),
        "regional_mean_abs_diff_pct": round(gate.mean_abs_diff_pct, 3),
        "worst_glaciers": dg.MetadataValue.json([{"glacier_id": g, "mean_abs_diff_pct": v} for g, v in gate.worst]),
        "glaciers_above_10pct": dg.MetadataValue.json(list(warn.index)),
        "n_flagged": int((per_glacier["status"].str.startswith("flagged")).sum()),
        "n_shape_flagged": int((per_glacier["shape_flag"] != "").sum()),
        "n_uncalibrated": int((per_glacier["status"] == "uncalibrated").sum()),
        "per_glacier": markdown_table(per_glacier.head(200)),
    })


@dg.asset(deps=[THICKNESS, MASK, OUTLINE, regional_outlines, INVENTORY], group_name="quality",
          kinds={"csv", "geoparquet"})
def product_audit(context: dg.AssetExecutionContext, store: ProductStore, region: RegionSource, igm: IGMRunner):
    """Every product of the glaciers with complete, current products checked, glacier x epoch
    (`reports/product_audit.csv`): thickness finite, >= 0, below a plausible maximum, zero off the
    glacier (the model domain's border); mask codes; mask pixel area vs outline polygon area;
    outline validity and CRS. Also gathers the regional outline files of all epochs into the
    published outline table the expectations run on."""
    with file_lock(store.path(REGION_LOCK_RELPATH)):
        inventory = load_inventory(store)
        state = glacier_states(store, region, igm, inventory)
        rows = []
        for gid in state.current:
            rows.extend(audit_glacier(gid, glacier_code(gid), {
                "simulation": store.path(simulation_relpath(gid)),
                "thickness": lambda y, g=gid: store.path(thickness_relpath(g, y)),
                "mask": lambda y, g=gid: store.path(mask_relpath(g, y)),
                "outline": lambda y, g=gid: store.path(outline_relpath(g, y)),
            }))
        audit = pd.DataFrame(rows, columns=AUDIT_COLUMNS)
        path = _write_csv(store.path(PRODUCT_AUDIT_RELPATH), audit)
        table = published_outline_table([store.path(regional_outline_relpath(y, "parquet")) for y in EPOCHS])
        table_path = write_geoparquet(store.path(OUTLINE_TABLE_RELPATH), table)
    present = audit[audit["outline_present"]]
    return dg.MaterializeResult(metadata={
        **metadata({"path": path, "outline_table": table_path}),
        "n_rows": len(audit),
        "n_missing_products": int((~audit["outline_present"]).sum()),
        "n_vanished": int(present["vanished"].sum()),
        "max_thickness_m": round(float(present["thickness_max_m"].max() if len(present) else 0), 2),
        "max_mask_outline_diff_pct": round(float(present["mask_outline_diff_pct"].max() if len(present) else 0), 6),
        "published_outline_rows": len(table),
        **state_metadata(state),
    })


@dg.asset(deps=[calibration_report], group_name="quality", kinds={"csv", "png"})
def validation_report(context: dg.AssetExecutionContext, store: ProductStore, region: RegionSource
                      ) -> dg.MaterializeResult:
    """How far to trust the products: per glacier and for the region, the area misfit where the
    outlines were fitted (in sample) beside the misfit of each outline predicted with it left out
    of the calibration (out of sample), the simulated volume against the reference volumes, and
    the simulated mass balance against geodetic ones where the spec gives them (a fit where the
    simulation was calibrated to them)
    (`reports/validation.csv`, `reports/validation.png`). The same figures go into the STAC
    collections."""
    report = pd.read_csv(store.path(CALIBRATION_REPORT_RELPATH))
    geodetic = geodetic_comparison(store, region, report["glacier_id"].unique())
    table = validation_table(report, geodetic)
    path = _write_csv(store.path(VALIDATION_REPORT_RELPATH), table)
    png = validation_png(table)
    plot = save_png(store.path(VALIDATION_REPORT_RELPATH).with_suffix(".png"), png)
    summary = validation_summary(report, geodetic)
    return dg.MaterializeResult(metadata={
        **metadata({"path": path, "plot_path": plot}),
        **{k: v for k, v in summary.items() if v is not None},
        "plot": dg.MetadataValue.md(markdown_image(png, "fit vs leave-one-out validation")),
        "per_glacier": markdown_table(table.round(3).head(200)),
    })
