"""One glacier's simulation file, the one owner of its layout: the NetCDF `igm_run/simulate.py`
writes and every later step reads (products, reports, figures, the catalog, the main job's and
the ledger's "is it current?").

Layout: `thk` (time, y, x) at the epochs 1960-2020 and `thk_outline` (outline_time, y, x) at
the outlines' model times (outline year + 1), both in metres on the model grid (`x`, `y`, the
CRS in the `crs` attribute); `volume_series`, `area_series`, `mass_balance` by year; and
attributes: `glacier_id`, `fingerprint`, `calibration` and `validation` (JSON rows),
`calibration_status`, `rheology_factor`, `version_*` and the run's figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .constants import EPOCHS
from .errors import GlacierError
from .science.grids import Grid
from .science.masks import volume_km3
from .science.resample import product_area_km2
from .storage import netcdf_attrs, write_netcdf


class SimulationFile:
    def __init__(self, path: str | Path, glacier_id: str | None = None):
        self.path = Path(path)
        self.glacier_id = glacier_id

    def exists(self) -> bool:
        return self.path.exists()

    def write(self, x: np.ndarray, y: np.ndarray, epochs: dict[int, np.ndarray], outlines: dict[int, np.ndarray],
              yearly: dict[int, tuple[float, float, float]], attrs: dict) -> Path:
        """The whole file, atomically: the thickness at every epoch (`epochs`, all of `EPOCHS`) and
        at the outlines' model times (`outlines`), north-up on the grid `x`, `y`; the yearly
        (volume km3, model-grid area km2, balance m w.e.) by year; `attrs` (with `crs`; JSON
        values already encoded)."""
        shape = (len(y), len(x))
        missing = sorted(set(EPOCHS) - set(epochs))
        if missing:
            raise ValueError(f"{self.path}: no thickness for {missing}")
        thk = np.stack([np.asarray(epochs[t], "float32") for t in EPOCHS])
        times = sorted(outlines)
        thk_obs = (np.stack([np.asarray(outlines[t], "float32") for t in times]) if times
                   else np.zeros((0, *shape), "float32"))
        years = np.array(sorted(yearly), dtype="int32")
        column = lambda k: np.array([yearly[t][k] for t in years], "float64")  # noqa: E731
        ds = xr.Dataset(
            {"thk": (("time", "y", "x"), thk, {"long_name": "ice thickness", "units": "m"}),
             "thk_outline": (("outline_time", "y", "x"), thk_obs,
                             {"long_name": "ice thickness at the outlines' model times (outline year + 1)",
                              "units": "m"}),
             "volume_series": (("year",), column(0), {"long_name": "ice volume at the start of each year",
                                                      "units": "km3"}),
             "area_series": (("year",), column(1), {"long_name": "model-grid area with thickness >= 2 m",
                                                    "units": "km2"}),
             "mass_balance": (("year",), column(2),
                              {"long_name": "glacier-wide mass balance of the balance year starting then",
                               "units": "m w.e. a-1"})},
            coords={"time": ("time", np.array(EPOCHS, dtype="int32"), {"units": "year"}),
                    "outline_time": ("outline_time", np.array(times, dtype="int32"), {"units": "year"}),
                    "year": ("year", years, {"units": "year"}),
                    "x": ("x", np.asarray(x), {"units": "m"}), "y": ("y", np.asarray(y), {"units": "m"})},
            attrs=attrs,
        )
        return write_netcdf(self.path, ds)

    def attrs(self) -> dict:
        """The global attributes, without reading the data ({} if there is no file)."""
        return netcdf_attrs(self.path)

    def fingerprint(self) -> str | None:
        """What the simulation was made from (`fingerprints.simulation_fingerprint`); None if absent."""
        return self.attrs().get("fingerprint")

    def _name(self) -> str:
        return self.glacier_id or self.path.stem

    def thickness(self, year: int) -> tuple[np.ndarray, Grid]:
        """The thickness at epoch `year` (m, float64, fill values NaN) and the model grid, read with
        netCDF4 directly (xarray's open_dataset costs ~7 ms a file, more than the rest of an
        epoch's products). A `GlacierError` if the file, the epoch or finite values are missing."""
        import netCDF4

        gid = self._name()
        if not self.exists():
            raise GlacierError(f"glacier {gid}: no simulation at {self.path} (materialize igm_simulation first)")
        with netCDF4.Dataset(str(self.path)) as sim:
            times = [int(t) for t in np.asarray(sim.variables["time"][:])]
            if year not in times:
                raise GlacierError(f"glacier {gid}: the simulation has no thickness for {year}")
            thk = np.ma.filled(sim.variables["thk"][times.index(year)].astype("float64"), np.nan)
            grid = Grid.from_xy(sim.getncattr("crs"), np.asarray(sim.variables["x"][:]),
                                np.asarray(sim.variables["y"][:]))
        if not np.isfinite(thk).all():
            raise GlacierError(f"glacier {gid}: simulated thickness for {year} has non-finite values")
        return thk, grid

    def load(self) -> SimulationState:
        """The whole file in memory: grid, states, yearly series and attributes."""
        with xr.open_dataset(self.path) as sim:
            grid = Grid.from_xy(sim.attrs["crs"], sim["x"].values, sim["y"].values)
            epochs = {int(t): sim["thk"].sel(time=t).values for t in sim["time"].values}
            outlines = ({int(t): sim["thk_outline"].sel(outline_time=t).values for t in sim["outline_time"].values}
                        if "outline_time" in sim.dims else {})
            yearly = pd.DataFrame({"volume_km3": sim["volume_series"].values, "area_km2": sim["area_series"].values,
                                   "mass_balance_mwe": sim["mass_balance"].values},
                                  index=sim["year"].values.astype(int)) if "volume_series" in sim else None
            return SimulationState(grid, epochs, outlines, yearly, dict(sim.attrs))


class SimulationState:
    """A simulation file's contents: the model `grid`, the thickness at each epoch and at each
    outline's model time (north-up, m), the yearly series (a DataFrame by year: volume_km3,
    area_km2, mass_balance_mwe; None in a file without them) and the attributes, the JSON ones
    decoded on demand."""

    def __init__(self, grid: Grid, epochs: dict[int, np.ndarray], outlines: dict[int, np.ndarray],
                 yearly: pd.DataFrame | None, attrs: dict):
        self.grid, self.epochs, self.outlines, self.yearly, self.attrs = grid, epochs, outlines, yearly, attrs

    def summary(self) -> pd.DataFrame:
        """Area (the published recipe: bilinear to 25 m within the model's ice cells, >= 2 m) and
        volume at each epoch."""
        return states_summary(self.epochs, self.grid.res)

    @property
    def states(self) -> dict[int, np.ndarray]:
        """Every saved thickness by model time: the epochs and the outlines' times."""
        return {**self.epochs, **self.outlines}

    @property
    def crs(self) -> str:
        return self.attrs["crs"]

    @property
    def calibration(self) -> list[dict]:
        return json.loads(self.attrs.get("calibration", "[]"))

    @property
    def validation(self) -> list[dict]:
        return json.loads(self.attrs.get("validation", "[]"))

    @property
    def status(self) -> str:
        return self.attrs.get("calibration_status", "uncalibrated")

    @property
    def geodetic_calibration(self) -> dict:
        return json.loads(self.attrs.get("geodetic_calibration") or "{}")

    def series(self) -> dict[int, tuple[float, float]]:
        """(volume km3, area km2) by year, as the calibration keeps them."""
        if self.yearly is None:
            return {}
        return {int(t): (float(v), float(a)) for t, v, a in
                zip(self.yearly.index, self.yearly["volume_km3"], self.yearly["area_km2"], strict=True)}


def states_summary(states: dict[int, np.ndarray], res: float) -> pd.DataFrame:
    """Area (the published recipe: bilinear to 25 m within the model's ice cells, >= 2 m) and volume
    of each thickness state on the model grid (`res` m), by year."""
    return pd.DataFrame([{"year": int(t), "area_km2": product_area_km2(thk, res),
                          "volume_km3": volume_km3(thk, res * res)} for t, thk in sorted(states.items())])
