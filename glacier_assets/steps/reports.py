"""Region-wide reports: each glacier's calibration against its outlines (area, shape, balance),
and the audit of its published files at every epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import xarray as xr

from ..constants import (
    EPOCHS,
    GEOGRAPHIC_CRS,
    ICE_THRESHOLD_M,
    REFINE,
    THICKNESS_MAX_M,
    outline_model_time,
)
from ..science.domain import rasterize
from ..science.masks import glaciated_area_km2, volume_km3
from ..science.quality import iou
from ..science.resample import bilinear_refine, refined_thickness
from ..science.shape import outline_shape
from ..simulation_file import SimulationFile
from ..storage import read_raster

REPORT_COLUMNS = ["glacier_id", "role", "epoch", "obs_year", "model_time", "obs_area_km2", "sim_area_km2",
                  "rel_diff_pct", "iou", "d_ela_m", "shift_flag", "iterations", "status", "glacier_status",
                  "loo_area_km2", "loo_rel_diff_pct", "volume_km3", "reference_volume_km3", "reference_year",
                  "ceiling_iou", "tongue_covered", "z_terminus_m", "z_outline_min_m", "shape_flag"]


def domain_surface(path: Path) -> np.ndarray | None:
    """The surface elevation of a glacier's model domain (its DEM on the model grid), None if absent."""
    if not Path(path).exists():
        return None
    with xr.open_dataset(path) as dom:
        return dom["dem"].values


def calibration_rows(rows: gpd.GeoDataFrame, sim_path: Path, reference: tuple[float, int, str] | None,
                     dem: np.ndarray | None = None) -> list[dict]:
    """Simulated vs observed area and mask overlap (IoU, at 25 m) for every outline, at the
    outline's own model time (its year + 1), not at the nearest epoch; the area predicted for it
    when it was left out of the calibration; the volume, and the glacier's reference volume.
    Where the ice is (science/shape.py): the IoU's ceiling on the model grid, and, given the
    model grid's surface `dem`, the share of the outline's tongue (lowest fifth) under ice, the
    simulated terminus elevation against the outline's lowest point, and the shape flag."""


    gid = rows["glacier_id"].iloc[0]
    sim = SimulationFile(sim_path, gid).load()
    grid, thk, glacier_status = sim.grid, sim.outlines, sim.status
    calibration = {int(r["obs_year"]): r for r in sim.calibration}
    loo = {int(r["obs_year"]): r for r in sim.validation}
    fine = grid.refined(REFINE)
    fine_dem = None if dem is None else bilinear_refine(np.asarray(dem, "float64"), REFINE)
    out = []
    for _, r in rows.sort_values("year").iterrows():
        year = int(r["year"])
        t = outline_model_time(year)
        if t not in thk:
            continue
        sim_thk = refined_thickness(thk[t], REFINE)
        sim_mask = sim_thk >= ICE_THRESHOLD_M
        geom = gpd.GeoSeries([r.geometry], crs=GEOGRAPHIC_CRS).to_crs(grid.crs).iloc[0]
        obs_mask = rasterize([geom], fine)
        sim_area = glaciated_area_km2(sim_thk, fine.cell_area_m2)
        overlap = iou(sim_mask, obs_mask)
        where = outline_shape(sim_mask, obs_mask, rasterize([geom], grid), fine_dem, overlap)
        cal = calibration.get(year, {})
        out.append({
            "glacier_id": gid, "role": r["role"], "epoch": int(r["epoch"]), "obs_year": year, "model_time": t,
            "obs_area_km2": float(r["area_km2"]), "sim_area_km2": sim_area,
            "rel_diff_pct": 100.0 * (sim_area - r["area_km2"]) / r["area_km2"],
            "iou": overlap, "d_ela_m": cal.get("d_ela_m", np.nan),
            "shift_flag": cal.get("shift_flag", ""),
            "iterations": cal.get("iterations", 0), "status": cal.get("status", "uncalibrated"),
            "glacier_status": glacier_status,
            "loo_area_km2": loo.get(year, {}).get("predicted_area_km2", np.nan),
            "loo_rel_diff_pct": loo.get(year, {}).get("rel_diff_pct", np.nan),
            "volume_km3": volume_km3(thk[t], grid.cell_area_m2),
            "reference_volume_km3": np.nan if reference is None else reference[0],
            "reference_year": np.nan if reference is None else reference[1],
            **where,
        })
    return out


AUDIT_COLUMNS = ["glacier_id", "epoch", "outline_present", "vanished", "thickness_ok", "thickness_finite",
                 "thickness_min_m",
                 "thickness_max_m", "off_glacier_zero", "mask_codes_ok", "mask_area_km2", "outline_area_km2",
                 "mask_outline_diff_pct", "outline_valid", "outline_crs_ok", "problem"]


def _border_ring(shape: tuple[int, int]) -> np.ndarray:
    ring = np.zeros(shape, bool)
    ring[0, :] = ring[-1, :] = ring[:, 0] = ring[:, -1] = True
    return ring


def audit_glacier(glacier_id: str, code: int, paths: dict) -> list[dict]:
    """Sanity of one glacier's products at every epoch: thickness finite, >= 0, plausible, zero on
    the model domain's border (off the glacier); mask codes; mask vs outline area; outline
    geometry and CRS. `paths` maps "simulation" to a path and "thickness"/"mask"/"outline" to
    functions of the year. A file that is missing or cannot be read fails its row, with the file
    and the problem in `problem`."""
    rows = []
    sim_crs, border_ok = None, {}
    if Path(paths["simulation"]).exists():
        sim = SimulationFile(paths["simulation"], glacier_id).load()
        sim_crs, ring = sim.crs, _border_ring(sim.grid.shape)
        border_ok = {t: bool((thk[ring] == 0).all()) for t, thk in sim.epochs.items()}
    for year in EPOCHS:
        row: dict[str, Any] = dict.fromkeys(AUDIT_COLUMNS)
        row.update(glacier_id=glacier_id, epoch=year, off_glacier_zero=border_ok.get(year, False), problem="")
        try:
            _audit_epoch(row, year, code, sim_crs, paths)
        except _Unreadable as exc:  # a damaged file fails its glacier-epoch, named; never the audit
            row.update(outline_present=row["outline_present"] or False, thickness_ok=False, mask_codes_ok=False,
                       outline_valid=False, outline_crs_ok=False, problem=str(exc))
        rows.append(row)
    return rows


class _Unreadable(Exception):
    pass


def _read(kind: str, path: Path, reader):
    try:
        return reader(path)
    except Exception as exc:  # noqa: BLE001 - whatever the reader says, the file is the problem
        raise _Unreadable(f"{kind} {path.name}: cannot be read ({' '.join(str(exc).split())[:200]})") from None


def _audit_epoch(row: dict, year: int, code: int, sim_crs: str | None, paths: dict) -> None:

    outline_path = Path(paths["outline"](year))
    row["outline_present"] = outline_path.exists()
    if not row["outline_present"]:
        row["problem"] = f"outline {outline_path.name}: missing"
        return
    outline = _read("outline", outline_path, gpd.read_parquet)
    geom = outline.geometry.iloc[0]
    row["vanished"] = geom is None or geom.is_empty
    row["outline_crs_ok"] = row["vanished"] or (outline.crs is not None and outline.crs.to_string() == sim_crs)
    row["outline_valid"] = row["vanished"] or bool(geom.is_valid)
    row["outline_area_km2"] = 0.0 if row["vanished"] else geom.area / 1e6
    thk_path = Path(paths["thickness"](year))
    if thk_path.exists():
        data, _, nodata = _read("thickness", thk_path, read_raster)
        valid = data[data != nodata] if nodata is not None else data.ravel()
        row["thickness_finite"] = bool(np.isfinite(valid).all())
        row["thickness_min_m"] = float(valid.min()) if valid.size else 0.0
        row["thickness_max_m"] = float(valid.max()) if valid.size else 0.0
    else:
        row.update(thickness_finite=row["vanished"], thickness_min_m=0.0, thickness_max_m=0.0)
        if not row["vanished"]:
            row["problem"] = f"thickness {thk_path.name}: missing"
    mask_path = Path(paths["mask"](year))
    if mask_path.exists():
        mask, grid, _ = _read("mask", mask_path, read_raster)
        row["mask_codes_ok"] = set(np.unique(mask)) <= {0, code}
        row["mask_area_km2"] = float((mask != 0).sum() * grid.cell_area_m2 / 1e6)
    else:
        row.update(mask_codes_ok=row["vanished"], mask_area_km2=0.0)
        if not row["vanished"]:
            row["problem"] = f"mask {mask_path.name}: missing"
    m, o = row["mask_area_km2"], row["outline_area_km2"]
    row["mask_outline_diff_pct"] = 0.0 if m == o == 0 else 100.0 * abs(o - m) / max(m, 1e-12)
    row["thickness_ok"] = (row["thickness_finite"] and row["thickness_min_m"] >= 0
                           and row["thickness_max_m"] <= THICKNESS_MAX_M)


__all__ = ["AUDIT_COLUMNS", "REPORT_COLUMNS", "audit_glacier", "calibration_rows", "domain_surface"]
