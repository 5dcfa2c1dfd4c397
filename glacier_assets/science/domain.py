"""A glacier's model domain on the 100 m UTM grid: bed, initial ice, where ice may grow, forcing.

Bed: the DEM is a surface (e.g. SRTM, 2000), so the bed is DEM minus the thickness inverted by
mass conservation (science/inversion.py) on the outline nearest in time to the DEM. Initial state
of the spin-up: the thickness inverted on the initial (1970s) outline, on that bed. Both depend on
the regional rheology factor: the domain keeps their ingredients (flux, slope, outlines) and
`with_rheology` makes bed and initial ice for a factor. Snow may accumulate only within
`ICE_ALLOWED_BUFFER_M` (0) of the union of the glacier's own outlines, never on other glaciers'
initial outlines; elsewhere positive balance is replaced by strong melt (IGM's `smb.simple`
convention), so ice reaches beyond the outlines only by flowing there.
"""

from __future__ import annotations

import numpy as np
import rasterio.features
import xarray as xr
from scipy.ndimage import binary_dilation

from ..constants import ICE_ALLOWED_BUFFER_M
from .grids import Grid
from .inversion import apparent_flux, thickness_from_flux
from .massbalance import BalanceProfiles
from .thickness import match_product_area, surface_slope_rad


def rasterize(geoms, grid: Grid) -> np.ndarray:
    """Boolean mask of cells whose centre lies inside any of `geoms` (in the grid's CRS)."""
    geoms = [g for g in geoms if g is not None and not g.is_empty]
    if not geoms:
        return np.zeros(grid.shape, dtype=bool)
    return rasterio.features.rasterize(
        [(g, 1) for g in geoms], out_shape=grid.shape, transform=grid.transform, fill=0, dtype="uint8"
    ).astype(bool)


def allowed_ice_mask(own: np.ndarray, others: np.ndarray, res: float,
                     buffer_m: float = ICE_ALLOWED_BUFFER_M) -> np.ndarray:
    cells = int(round(buffer_m / res))
    grown = binary_dilation(own, iterations=cells) if cells > 0 else own.copy()
    return (grown & ~others) | own


def melt_mask(icemask: np.ndarray, dem: np.ndarray, res: float, margin_m: float, downvalley_m: float,
              quantile: float = 0.2) -> np.ndarray:
    """Where the balance is forced strongly negative whatever its sign (issue 25, IGM's `include_icemask`
    practice taken further): everywhere but the cells where ice may accumulate (`icemask`: the union of
    the glacier's own outlines), `margin_m` around them, and, down-valley, cells within `downvalley_m`
    of them lower than their lowest `quantile` by elevation (where a tongue was longer before its
    outline's date). Ice then neither spreads up side slopes nor over divides into neighbours' basins."""
    own = np.asarray(icemask) > 0.5
    if not own.any():
        return np.zeros(own.shape, dtype=bool)
    keep = binary_dilation(own, iterations=int(round(margin_m / res))) if margin_m >= res else own.copy()
    if downvalley_m >= res:
        low = float(np.quantile(dem[own], quantile))
        keep |= binary_dilation(own, iterations=int(round(downvalley_m / res))) & (dem <= low)
    return ~keep


def build_domain(
    glacier_id: str,
    grid: Grid,
    dem: np.ndarray,
    initial_outline: np.ndarray,
    bed_outline: np.ndarray,
    allowed: np.ndarray,
    profiles: BalanceProfiles,
    attrs: dict | None = None,
    initial_area_km2: float | None = None,
) -> xr.Dataset:
    """The domain as an xarray Dataset (y north to south), ready to be written as NetCDF, with bed
    and initial ice for the default rheology (factor 1). With `initial_area_km2` (the initial
    outline's area) the initial ice is matched to it."""
    if np.isnan(dem).any():
        raise ValueError(f"glacier {glacier_id}: the DEM does not cover the whole model domain")
    balance = np.interp(dem, profiles.z, profiles.mean_profile())
    slope = surface_slope_rad(dem, grid.res, 2)
    dims = ("y", "x")
    ds = xr.Dataset(
        {
            "dem": (dims, dem.astype("float32"), {"long_name": "surface DEM", "units": "m"}),
            "icemask": (dims, allowed.astype("float32"), {"long_name": "cells where ice may accumulate"}),
            "outline_initial": (dims, initial_outline.astype("uint8"), {"long_name": "initial outline mask"}),
            "outline_bed": (dims, bed_outline.astype("uint8"), {"long_name": "outline nearest the DEM's date"}),
            "slope": (dims, slope.astype("float32"), {"long_name": "surface slope of the DEM", "units": "rad"}),
            "flux_initial": (dims, apparent_flux(dem, initial_outline, balance, grid.res).astype("float32"),
                             {"long_name": "apparent-balance ice flux on the initial outline", "units": "m2 a-1"}),
            "flux_bed": (dims, apparent_flux(dem, bed_outline, balance, grid.res).astype("float32"),
                         {"long_name": "apparent-balance ice flux on the DEM-date outline", "units": "m2 a-1"}),
            "mb_profile": (("mb_year", "mb_z"), profiles.b.astype("float64"),
                           {"long_name": "annual surface mass balance profile", "units": "m ice eq. a-1"}),
        },
        coords={
            "x": ("x", grid.x, {"units": "m", "standard_name": "projection_x_coordinate"}),
            "y": ("y", grid.y, {"units": "m", "standard_name": "projection_y_coordinate"}),
            "mb_year": ("mb_year", profiles.years.astype("int32")),
            "mb_z": ("mb_z", profiles.z, {"units": "m"}),
        },
        attrs={"glacier_id": glacier_id, "crs": grid.crs, "resolution_m": grid.res, **(attrs or {}),
               **({"initial_area_km2": float(initial_area_km2)} if initial_area_km2 else {})},
    )
    return with_rheology(ds, 1.0)


def with_rheology(ds: xr.Dataset, factor: float) -> xr.Dataset:
    """The domain with bed (`topg`) and initial ice (`thk`) inverted for rheology `factor`."""
    res = float(ds.attrs["resolution_m"])
    slope = ds["slope"].values.astype("float64")
    h_bed = thickness_from_flux(ds["flux_bed"].values, slope, ds["outline_bed"].values > 0, factor)
    thk = thickness_from_flux(ds["flux_initial"].values, slope, ds["outline_initial"].values > 0, factor)
    if ds.attrs.get("initial_area_km2"):
        thk = match_product_area(thk, res, float(ds.attrs["initial_area_km2"]))
    dims = ("y", "x")
    return ds.assign(
        topg=(dims, (ds["dem"].values - h_bed).astype("float32"), {"long_name": "bed elevation", "units": "m"}),
        thk=(dims, thk.astype("float32"), {"long_name": "initial ice thickness (inverted)", "units": "m"}),
    ).assign_attrs(rheology_factor=float(factor))


def domain_profiles(ds: xr.Dataset) -> BalanceProfiles:
    return BalanceProfiles(ds["mb_year"].values.astype(int), ds["mb_z"].values.astype("float64"),
                           ds["mb_profile"].values.astype("float64"))
