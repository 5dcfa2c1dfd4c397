"""Mass-balance forcing for one glacier, from an ELA table or monthly climate NetCDF files."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from ..constants import END_YEAR, START_YEAR, TREND_SPINUP_START
from ..science.massbalance import (
    BalanceProfiles,
    MonthlySeries,
    TemperatureIndexParams,
    bias_for_ela,
    profiles_from_ela,
    profiles_from_monthly_climate,
)

if TYPE_CHECKING:
    from .region import ClimateForcing, ClimateSource, ElaTableForcing

GEOPOTENTIAL_G = 9.80665
ELA_COLUMNS = ("year", "ela", "grad_abl", "grad_acc", "acc_max")
TEMPERATURE_OFFSET_C = {"degc": 0.0, "deg_c": 0.0, "°c": 0.0, "celsius": 0.0, "degree_celsius": 0.0, "degrees_c": 0.0,
                        "degrees celsius": 0.0, "degrees_celsius": 0.0, "degree celsius": 0.0,
                        "k": -273.15, "kelvin": -273.15}  # units (lower case) -> offset to degC
PRECIPITATION_MM_PER_MONTH = ("kg m-2", "kg m**-2", "mm", "mm/month", "mm month-1")  # monthly totals (CRU, HISTALP)
PRECIPITATION_M_PER_DAY = ("m",)  # ERA5 / ERA5-Land monthly means: metres of water per day
PRECIPITATION_PER_SECOND = ("kg m-2 s-1", "kg m**-2 s**-1", "kg/m2/s", "mm s-1", "mm/s")  # W5E5, CMIP: a flux
PRECIPITATION_UNITS = PRECIPITATION_MM_PER_MONTH + PRECIPITATION_M_PER_DAY + PRECIPITATION_PER_SECOND
LAT_NAMES, LON_NAMES = ("lat", "latitude"), ("lon", "longitude")

# Variable names of the monthly products people use (units are read from the files). A source
# names its `preset`, or gives its own names, or neither: the first preset whose temperature and
# precipitation are in the files is taken. The height variable is optional.
CLIMATE_PRESETS = {
    "cru_ts": {"temperature": "tmp", "precipitation": "pre"},  # CRU TS 4: degC, mm/month; no height grid
    "era5": {"temperature": "t2m", "precipitation": "tp", "geopotential": "z"},  # K, m/day; z in the invariant file
    "era5_land": {"temperature": "t2m", "precipitation": "tp", "geopotential": "z"},
    "w5e5": {"temperature": "tas", "precipitation": "pr", "elevation": "orog"},  # K, kg m-2 s-1
    "histalp": {"temperature": "temp", "precipitation": "prcp", "elevation": "hgt"},  # degC, kg m-2 per month
}
NO_HEIGHT = "none: the temperature bias absorbs the reference height"


@dataclass
class ForcingInfo:
    kind: str
    details: dict = field(default_factory=dict)


def _spans(numbers) -> str:
    """Sorted whole numbers written compactly: `1971-1973, 1980`."""
    numbers = sorted(int(n) for n in numbers)
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _rows(lines: pd.Series) -> str:
    return f"row {_spans(lines)}" if len(lines) == 1 else f"rows {_spans(lines)}"


def read_ela_table(path: str | Path) -> pd.DataFrame:
    """The ELA table (CSV: year, ela, grad_abl, grad_acc, acc_max), sorted by year, checked: every
    cell a finite number, whole years, no year twice and none missing from START_YEAR to END_YEAR.
    Rows in errors are the CSV's line numbers (the header is line 1); all problems are listed."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"mass-balance table {path}: not a readable CSV table: {exc}") from None
    if missing := [c for c in ELA_COLUMNS if c not in raw.columns]:
        raise ValueError(f"mass-balance table {path}: missing columns {missing} (it has {list(raw.columns)})")
    if raw.empty:
        raise ValueError(f"mass-balance table {path}: no rows")
    line = pd.Series(raw.index + 2, index=raw.index)
    table = pd.DataFrame(index=raw.index)
    problems = []
    for col in ELA_COLUMNS:
        text = raw[col].fillna("").str.strip()
        table[col] = pd.to_numeric(text, errors="coerce")
        empty = text.eq("") | text.str.lower().eq("nan")
        bad = ~np.isfinite(table[col]) & ~empty
        if col == "year":
            bad |= np.isfinite(table[col]) & (table[col] % 1 != 0)
        if empty.any():
            problems.append(f"column {col!r} is empty or NaN on {_rows(line[empty])}")
        if bad.any():
            values = ", ".join(repr(v) for v in dict.fromkeys(text[bad]))
            kind = "a whole number" if col == "year" else "a finite number"
            problems.append(f"column {col!r} is not {kind} on {_rows(line[bad])}: {values}")
    if not problems:
        years = table["year"].astype(int)
        twice = years[years.duplicated(keep=False)]
        if len(twice):
            problems.append("duplicate years: " + ", ".join(
                f"{y} ({_rows(line[twice.index[twice == y]])})" for y in sorted(set(twice))))
        if gaps := sorted(set(range(years.min(), years.max() + 1)) - set(years)):
            problems.append(f"years missing: {_spans(gaps)}")
        if years.min() > START_YEAR or years.max() < END_YEAR:
            problems.append(f"covers {years.min()}-{years.max()}, not {START_YEAR}-{END_YEAR}")
    if problems:
        raise ValueError(f"mass-balance table {path}: " + "; ".join(problems))
    return table.astype({"year": int}).sort_values("year").reset_index(drop=True)


def ela_table_profiles(forcing: ElaTableForcing, z: np.ndarray) -> tuple[BalanceProfiles, ForcingInfo]:
    table = read_ela_table(forcing.path)
    prof = profiles_from_ela(table["year"].to_numpy(), table["ela"].to_numpy(), table["grad_abl"].to_numpy(),
                             table["grad_acc"].to_numpy(), table["acc_max"].to_numpy(), z)
    return prof, ForcingInfo("ela_table", {"source": str(forcing.path)})


def _coord(da: xr.DataArray, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in da.coords or n in da.dims), None)


def _variable(files: dict[Path, xr.Dataset], name: str, what: str, dims: tuple[tuple[str, ...], ...],
              units: tuple[str, ...] | None = None) -> xr.DataArray:
    """The variable `name` (the source's `what`) from the first of `files` holding it, checked to
    have the coordinates `dims` (each a tuple of accepted names) and, if given, one of `units`."""
    for path, ds in files.items():
        if name not in ds:
            continue
        da = ds[name]
        for names in dims:
            if _coord(da, names) is None:
                raise ValueError(f"climate file {path}: {what} variable {name!r} has none of the "
                                 f"coordinates {names} (it has {list(da.dims)})")
        if units is not None and da.attrs.get("units", "").lower() not in units:
            raise ValueError(f"climate file {path}: {what} variable {name!r} has unknown units "
                             f"{da.attrs.get('units')!r} (known: {', '.join(units)})")
        return da
    has = sorted(str(v) for ds in files.values() for v in ds.data_vars)
    where = f"file {next(iter(files))}" if len(files) == 1 else f"files {', '.join(map(str, files))}"
    raise ValueError(f"climate {where}: no {what} variable {name!r} (variables: {', '.join(has)})")


def _open(path: Path, stack: ExitStack) -> xr.Dataset:
    try:
        return stack.enter_context(xr.open_dataset(path))
    except (OSError, ValueError) as exc:
        raise ValueError(f"climate file {path}: cannot be opened: {exc}") from None


@dataclass(frozen=True)
class ClimateVariables:
    """The names a source's variables go by: given in the spec, from its preset, or detected."""
    temperature: str
    precipitation: str
    height: str | None  # elevation (m) or geopotential (m2 s-2), if the source has one
    geopotential: bool
    preset: str | None

    def describe(self) -> str:
        height = f", {'geopotential' if self.geopotential else 'elevation'} {self.height}" if self.height else ""
        return f"{self.temperature}, {self.precipitation}{height}" + (f" ({self.preset})" if self.preset else "")


def climate_variables(src: ClimateSource, names: set[str]) -> ClimateVariables:
    """Which variables of the source to read, given the variable `names` in its files."""
    preset: str | None = src.preset
    if preset is None and (src.temperature is None or src.precipitation is None):
        preset = next((k for k, v in CLIMATE_PRESETS.items()
                       if v["temperature"] in names and v["precipitation"] in names), None)
        if preset is None:
            known = "; ".join(f"{k}: {v['temperature']}, {v['precipitation']}" for k, v in CLIMATE_PRESETS.items())
            raise ValueError(f"no known temperature and precipitation variables (presets: {known}; "
                             f"the files have {', '.join(sorted(names))}): give `temperature` and `precipitation`")
    defaults = CLIMATE_PRESETS.get(preset, {}) if preset is not None else {}
    if src.elevation or src.geopotential:
        height, geopotential = src.elevation or src.geopotential, src.geopotential is not None
    else:
        height = next((defaults[k] for k in ("elevation", "geopotential") if defaults.get(k) in names), None)
        geopotential = height is not None and height == defaults.get("geopotential")
    return ClimateVariables(src.temperature or defaults["temperature"], src.precipitation or defaults["precipitation"],
                            height, geopotential, preset)


@contextmanager
def open_climate_source(
    src: ClimateSource,
) -> Iterator[tuple[xr.DataArray, xr.DataArray, xr.DataArray | None, ClimateVariables]]:
    """The source's temperature, precipitation and height (elevation or geopotential, None if it
    has none) variables, lazily, and their names, checked: every file opens, each variable is
    there (the height in `invariant_path` if given) on lat/lon coordinates, and the temperature
    and precipitation units are known."""
    with ExitStack() as stack:
        files = {p: _open(p, stack) for p in (src.path if isinstance(src.path, tuple) else (src.path,))}
        inv = {src.invariant_path: _open(src.invariant_path, stack)} if src.invariant_path else files
        names = {str(v) for ds in (*files.values(), *inv.values()) for v in ds.data_vars}
        try:
            var = climate_variables(src, names)
        except ValueError as exc:
            raise ValueError(f"climate file {next(iter(files))}: {exc}") from None
        grid = (LAT_NAMES, LON_NAMES)
        t = _variable(files, var.temperature, "temperature", (("time",), *grid), tuple(TEMPERATURE_OFFSET_C))
        p = _variable(files, var.precipitation, "precipitation", (("time",), *grid), PRECIPITATION_UNITS)
        z_kind = "geopotential" if var.geopotential else "elevation"
        z = _variable(inv, var.height, z_kind, grid) if var.height else None
        yield t, p, z, var


def check_climate_source(src: ClimateSource) -> None:
    """Raise a ValueError naming the file and the variable if the source cannot be read."""
    with open_climate_source(src):
        pass


def _nearest(da: xr.DataArray, lon: float, lat: float) -> xr.DataArray:
    return da.sel({_coord(da, LAT_NAMES): lat, _coord(da, LON_NAMES): lon}, method="nearest")


def read_monthly_source(src: ClimateSource, lon: float, lat: float) -> tuple[MonthlySeries, ClimateVariables]:
    """Temperature (degC), precipitation (mm/month) and reference elevation (NaN for a source
    without a height grid) at the grid cell nearest to (lon, lat), and the variables read. Units
    are read from the variables' `units` attributes."""
    with open_climate_source(src) as (t, p, z, var):
        t_offset = TEMPERATURE_OFFSET_C[t.attrs["units"].lower()]
        p_units = p.attrs["units"].lower()
        t, p = xr.align(_nearest(t, lon, lat).load(), _nearest(p, lon, lat).load(), join="inner")
        z_ref = float(_nearest(z.squeeze(drop=True), lon, lat)) if z is not None else float("nan")
    if var.geopotential:
        z_ref /= GEOPOTENTIAL_G
    time = pd.DatetimeIndex(t["time"].values)
    days = time.days_in_month.to_numpy(float)
    temp = t.values.astype(float) + t_offset
    per_month = 1000.0 * days if p_units in PRECIPITATION_M_PER_DAY else 86400.0 * days \
        if p_units in PRECIPITATION_PER_SECOND else 1.0
    prcp = p.values.astype(float) * per_month
    ok = np.isfinite(temp) & np.isfinite(prcp)
    series = MonthlySeries(time.year.to_numpy()[ok], time.month.to_numpy()[ok], days[ok], temp[ok], prcp[ok], z_ref)
    return series, var


def merge_monthly(series: list[MonthlySeries]) -> tuple[MonthlySeries, dict]:
    """The first source is the reference; each later one extends it after its last month with
    monthly anomalies relative to the overlap (additive for temperature, multiplicative for
    precipitation), and both are moved to the reference's elevation by the overlap means."""
    ref = series[0]
    info: dict = {"sources": 1}
    for nxt in series[1:]:
        key_ref = ref.year * 12 + ref.month
        key_nxt = nxt.year * 12 + nxt.month
        overlap = np.isin(key_nxt, key_ref)
        if not overlap.any():
            raise ValueError("climate sources do not overlap: cannot merge them")
        dt, fp = np.zeros(12), np.ones(12)
        for mth in range(1, 13):
            a = overlap & (nxt.month == mth)
            b = np.isin(key_ref, key_nxt[a])
            dt[mth - 1] = ref.temp_c[b].mean() - nxt.temp_c[a].mean()
            fp[mth - 1] = ref.prcp_mm[b].sum() / max(nxt.prcp_mm[a].sum(), 1e-9)
        after = key_nxt > key_ref.max()
        idx = nxt.month[after] - 1
        ref = MonthlySeries(
            np.concatenate([ref.year, nxt.year[after]]),
            np.concatenate([ref.month, nxt.month[after]]),
            np.concatenate([ref.days, nxt.days[after]]),
            np.concatenate([ref.temp_c, nxt.temp_c[after] + dt[idx]]),
            np.concatenate([ref.prcp_mm, nxt.prcp_mm[after] * fp[idx]]),
            ref.z_ref,
        )
        info["sources"] += 1
        info[f"merge_{info['sources']}_overlap_months"] = int(overlap.sum())
    return ref, info


def pad_years(s: MonthlySeries, last_year: int, window: int = 10) -> tuple[MonthlySeries, list[int]]:
    """Fill whole years after the series' end with the monthly climatology of its last `window` years."""
    complete = [y for y in np.unique(s.year) if np.count_nonzero(s.year == y) == 12]
    end = max(complete)
    padded = list(range(end + 1, last_year + 1))
    if not padded:
        return s, []
    base = (s.year > end - window) & (s.year <= end)
    clim_t = np.array([s.temp_c[base & (s.month == m)].mean() for m in range(1, 13)])
    clim_p = np.array([s.prcp_mm[base & (s.month == m)].mean() for m in range(1, 13)])
    keep = s.year <= end
    years = np.repeat(padded, 12)
    months = np.tile(np.arange(1, 13), len(padded))
    days = pd.DatetimeIndex([f"{y}-{m:02d}-01" for y, m in zip(years, months)]).days_in_month.to_numpy(float)
    return MonthlySeries(
        np.concatenate([s.year[keep], years]), np.concatenate([s.month[keep], months]),
        np.concatenate([s.days[keep], days]), np.concatenate([s.temp_c[keep], clim_t[months - 1]]),
        np.concatenate([s.prcp_mm[keep], clim_p[months - 1]]), s.z_ref,
    ), padded


def climate_profiles(
    forcing: ClimateForcing, lon: float, lat: float, z: np.ndarray, target_ela: float
) -> tuple[BalanceProfiles, ForcingInfo]:
    """Temperature-index balance profiles, with the temperature bias that puts the mean ELA of the
    reference years at `target_ela` (the median elevation of the initial outline). The table starts
    with the climate's first whole year from `TREND_SPINUP_START` on: a spin-up runs the climate's own
    years before 1960 where it has them (HISTALP from 1801, CRU from 1901), as OGGM's historical
    runs do; before them the spin-up climate (`BalanceProfiles.spinup_profile`)."""
    read = [read_monthly_source(s, lon, lat) for s in forcing.sources]
    merged, info = merge_monthly([series for series, _ in read])
    if not np.isfinite(merged.z_ref):  # any reference height works: the bias below absorbs it
        merged = dataclasses.replace(merged, z_ref=float(target_ela))
    merged, padded = pad_years(merged, END_YEAR)
    if merged.year.min() > START_YEAR:
        raise ValueError(f"climate starts in {merged.year.min()}, after {START_YEAR}")
    params = TemperatureIndexParams(ddf_mm_per_day_k=forcing.ddf, prcp_factor=forcing.prcp_factor,
                                    lapse_k_per_m=forcing.lapse_rate)
    series = merged.between(TREND_SPINUP_START, END_YEAR)
    bias = bias_for_ela(series, z, params, target_ela=target_ela, ref_years=forcing.reference_years)
    prof = profiles_from_monthly_climate(series, z, params, bias_k=bias)
    has_height = np.isfinite(read[0][0].z_ref)
    info.update({"temperature_bias_k": round(bias, 3),
                 "reference_elevation_m": round(merged.z_ref, 1) if has_height else NO_HEIGHT,
                 "variables": "; ".join(var.describe() for _, var in read),
                 "padded_years": padded, "target_ela_m": round(target_ela, 1), "first_year": int(prof.years[0])})
    return prof, ForcingInfo("monthly_climate", info)
