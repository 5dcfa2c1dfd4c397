"""What the main job tells about the region's tables between its steps, as console lines: the
inventory's rejected, repaired and unmatched outlines (step 1) and the calibration report's area
gate, flagged glaciers and shape at the outline dates (step 5). Each yields (line, is_error) pairs,
which main_job.py prints as they come.
"""

from __future__ import annotations

from collections.abc import Iterator

from .constants import AREA_GATE_PCT, CALIBRATION_REPORT_RELPATH, MISSING_RELPATH, REJECTED_RELPATH, UNMATCHED_RELPATH

Note = tuple[str, bool]  # a line, and whether it goes to stderr


def inventory_notes(store, inventory, rejected, unknown: list[str]) -> Iterator[Note]:
    """The rejected rows (`rejected`, the first 10), the repaired ones, the `--include` ids not in
    the inventory, and the outlines matched by location to no glacier or missing."""
    import pandas as pd

    for r in rejected.head(10).itertuples():
        yield f"   REJECTED {r.glacier_id} ({r.source}): {r.reason}", True
    if len(rejected) > 10:
        yield f"   ... {len(rejected) - 10} more rejected rows in {store.path(REJECTED_RELPATH)}", True
    if "repair" in inventory.columns:
        for r in inventory[inventory["repair"].fillna("") != ""].head(10).itertuples():
            yield f"   repaired {r.glacier_id} ({r.source}, {r.year}): {r.repair}", False
    for g in unknown:
        yield f"   REJECTED {g} (--include): not in the inventory", True
    unmatched = pd.read_csv(store.path(UNMATCHED_RELPATH), dtype=str)
    missing = pd.read_csv(store.path(MISSING_RELPATH), dtype=str)
    if len(unmatched) or len(missing):
        yield (f"   outlines matched by location: {len(unmatched)} polygon(s) matched to no glacier "
               f"({store.path(UNMATCHED_RELPATH)}), {len(missing)} glacier-source pair(s) without an outline "
               f"({store.path(MISSING_RELPATH)})"), False


def report_notes(store) -> Iterator[Note]:
    """The calibration report, if there is one: the area gate, the glaciers flagged by their
    calibration, and where the ice is at the outline dates (science/shape.py)."""
    import pandas as pd

    from .science.quality import area_gate, shape_summary, validation_table

    path = store.path(CALIBRATION_REPORT_RELPATH)
    if not path.exists():
        return
    report = pd.read_csv(path)
    gate = area_gate(report)
    yield (f"   area agreement: mean |A_sim - A_obs| / A_obs = {gate.mean_abs_diff_pct:.2f} % over "
           f"{gate.n_comparisons} outlines (gate {AREA_GATE_PCT} %): {'PASSED' if gate.passed else 'FAILED'}"
           + (f"; {gate.note}" if gate.note else "")), False
    status = report.groupby("glacier_id")["glacier_status"].first()
    flagged = status[status.str.startswith("flagged")]
    if len(flagged):
        yield (f"   {len(flagged)} glacier(s) flagged (published, with the reason in {path.name}): "
               + "; ".join(f"{g} {s.removeprefix('flagged: ')}" for g, s in flagged.head(5).items())
               + (" ..." if len(flagged) > 5 else "")), False
    table = validation_table(report)
    fig = shape_summary(table)
    if fig["iou_median"] is None:
        return
    yield (f"   shape at the outline dates: IoU median {fig['iou_median']:.2f} (model-grid ceiling "
           f"{fig['ceiling_iou_median']:.2f}), lowest {fig['iou_min']:.2f}; tongues under ice: median "
           + ("n/a" if fig["tongue_covered_median"] is None else f"{fig['tongue_covered_median']:.2f}")), False
    odd = table[table["shape_flag"] != ""]
    if len(odd):
        yield (f"   {len(odd)} glacier(s) flagged for their shape (published, with the reason in {path.name}): "
               + "; ".join(f"{g} {f}" for g, f in zip(odd["glacier_id"].head(5), odd["shape_flag"].head(5)))
               + (" ..." if len(odd) > 5 else "")), False
