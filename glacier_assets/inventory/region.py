"""A region spec: which outline files, DEM and forcing make up a region (YAML on disk). Every key,
its default and the climate units understood: docs/region_spec.md; example specs:
`inventory/examples.py` (Hintereisferner, the Oetztal) and README's "Your own region".

`load_region_spec` checks all of it before anything runs: unknown keys (with the closest valid
key), values, that every file exists, that the ELA table is complete and that the climate
variables are there. Each problem is a `RegionSpecError` naming the spec, the key and the file.
The classes can also be built directly (tests); then paths are taken as given and not checked.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass
from pydantic_core import ErrorDetails

from ..constants import END_YEAR, MIN_DEM_MARGIN_M, REFERENCE_VOLUME_YEAR, RGI6_ID_PATTERN, START_YEAR
from .forcing import check_climate_source, read_ela_table
from .outlines import check_outline_source
from .reference import read_geodetic_table, read_reference_table, read_rgi6_outlines
from .selection import read_basins

_STRICT = ConfigDict(extra="forbid")
SHAPEFILE_COMPANIONS = (".shx", ".dbf", ".prj")


class RegionSpecError(ValueError):
    pass


def _root(info: ValidationInfo) -> Path | None:
    """The spec's folder while `load_region_spec` validates; None for classes built directly."""
    return (info.context or {}).get("root")


def _file(value: Path, info: ValidationInfo) -> Path:
    """`value` resolved against the spec's folder and checked to exist (only while loading a spec)."""
    root = _root(info)
    if root is None:
        return value
    path = value if value.is_absolute() else (root / value).resolve()
    if not path.exists():
        raise ValueError(f"file not found: {path}")
    return path


def _files(value: Path | tuple[Path, ...], info: ValidationInfo) -> Path | tuple[Path, ...]:
    """`_file` for a path or each of a tuple of paths (tiles, a climate source's files)."""
    return tuple(_file(p, info) for p in value) if isinstance(value, tuple) else _file(value, info)


def _vector_file(value: Path, info: ValidationInfo) -> Path:
    """`_file`, and a shapefile's companions found too."""
    path = _file(value, info)
    if _root(info) and path.suffix.lower() == ".shp":
        missing = [ext for ext in SHAPEFILE_COMPANIONS
                   if not (path.with_suffix(ext).exists() or path.with_suffix(ext.upper()).exists())]
        if missing:
            raise ValueError(f"shapefile {path} lacks its {', '.join(missing)} file(s)")
    return path


def _file_read_by_check(value: Path, info: ValidationInfo, check) -> Path:
    """The file resolved and found (`_file`) and, while a spec loads, read by `check`, which
    raises on a bad table."""
    path = _file(value, info)
    if _root(info):
        check(path)
    return path


def _file_read_by(check):
    """A `path` validator: `_file_read_by_check`."""
    def validate(value: Path, info: ValidationInfo) -> Path:
        return _file_read_by_check(value, info, check)

    return field_validator("path")(validate)


@dataclass(frozen=True, config=_STRICT)
class OutlineSource:
    path: Path
    role: Literal["initial", "control"] = "initial"
    year: int | None = None
    year_column: str | None = None
    id_column: str | None = None
    match: Literal["id", "location"] = "id"  # by the glacier id, or split between the glaciers by location
    min_piece_km2: float = Field(default=0.01, ge=0)  # location: least overlap and least share a glacier gets

    _outline_file = field_validator("path")(_vector_file)

    @model_validator(mode="after")
    def _columns(self, info: ValidationInfo) -> OutlineSource:
        if self.year is not None and self.year_column is not None:
            raise ValueError("give `year` or `year_column`, not both")
        if _root(info):
            check_outline_source(self)
        return self


@dataclass(frozen=True, config=_STRICT)
class BasinSelection:
    """Basin polygons (any CRS); with `names`, only the polygons whose `column` holds them."""
    path: Path
    column: str | None = None
    names: tuple[str, ...] = ()

    _basin_file = field_validator("path")(_vector_file)

    @model_validator(mode="after")
    def _names(self, info: ValidationInfo) -> BasinSelection:
        if self.names and self.column is None:
            raise ValueError("`names` needs the `column` that holds them")
        if _root(info):
            read_basins(self)
        return self


@dataclass(frozen=True, config=_STRICT)
class Selection:
    """Which glaciers of the reference inventory make up the region (all criteria must hold)."""
    basins: BasinSelection | None = None
    bbox: tuple[float, float, float, float] | None = None  # west, south, east, north (degrees)
    min_area_km2: float = Field(default=0.0, ge=0)

    @field_validator("bbox")
    @classmethod
    def _box(cls, value):
        if value is not None and not (-180 <= value[0] < value[2] <= 180 and -90 <= value[1] < value[3] <= 90):
            raise ValueError(f"must be [west, south, east, north] in degrees, not {list(value)}")
        return value


@dataclass(frozen=True, config=_STRICT)
class DemSource:
    path: Path | tuple[Path, ...]  # one raster (GeoTIFF, VRT, ...) or several tiles
    year: int = 2000
    # the model domain's border; default steps.domain.domain_border_cells
    margin_m: float | None = Field(default=None, gt=0)
    min_margin_m: float = Field(default=MIN_DEM_MARGIN_M, ge=0)  # the DEM must cover the outlines and this around them

    _dem_files = field_validator("path")(_files)

    @property
    def paths(self) -> tuple[Path, ...]:
        return self.path if isinstance(self.path, tuple) else (self.path,)


@dataclass(frozen=True, config=_STRICT)
class ElaTableForcing:
    path: Path

    _table = _file_read_by(read_ela_table)


@dataclass(frozen=True, config=_STRICT)
class ClimateSource:
    path: Path | tuple[Path, ...]
    preset: Literal["cru_ts", "era5", "era5_land", "w5e5", "histalp"] | None = None  # variable names (forcing.py)
    temperature: str | None = None  # variable names, if not the preset's (detected when neither is given)
    precipitation: str | None = None
    elevation: str | None = None  # variable holding the grid-cell elevation (m), if any
    geopotential: str | None = None  # or geopotential (m2 s-2), divided by g
    invariant_path: Path | None = None  # file holding elevation/geopotential if not in `path`

    _climate_files = field_validator("path")(_files)

    @field_validator("invariant_path")
    @classmethod
    def _invariant_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _file(value, info)

    @model_validator(mode="after")
    def _variables(self, info: ValidationInfo) -> ClimateSource:
        if self.elevation is not None and self.geopotential is not None:
            raise ValueError("give `elevation` or `geopotential`, not both")
        if _root(info):
            check_climate_source(self)
        return self


@dataclass(frozen=True, config=_STRICT)
class ClimateForcing:
    sources: tuple[ClimateSource, ...] = Field(min_length=1)
    reference_years: tuple[int, int] = (1960, 1989)
    ddf: float = Field(default=5.0, gt=0)
    prcp_factor: float = Field(default=1.0, gt=0)
    lapse_rate: float = -0.0065

    @field_validator("reference_years")
    @classmethod
    def _within_run(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not START_YEAR <= value[0] <= value[1] <= END_YEAR:
            raise ValueError(f"must be [first, last] within {START_YEAR}-{END_YEAR}, not {list(value)}")
        return value


@dataclass(frozen=True, config=_STRICT)
class ReferenceVolumes:
    """Reference ice volumes: a table at `path` (CSV: `glacier_id`, `volume_km3`, optional `year`
    of the outline they belong to, else `year`), or the RGI6 outlines around the region
    (`rgi6_outlines`), by which a glacier of any id scheme finds the Farinotti volumes of the RGI6
    glaciers it overlaps (`inventory/reference.py: located_farinotti`)."""
    path: Path | None = None
    year: int = REFERENCE_VOLUME_YEAR
    rgi6_outlines: Path | None = None

    @field_validator("path")
    @classmethod
    def _table(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _file_read_by_check(value, info, read_reference_table)

    @field_validator("rgi6_outlines")
    @classmethod
    def _rgi6(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        path = _vector_file(value, info)
        if _root(info):
            read_rgi6_outlines(path)
        return path

    @model_validator(mode="after")
    def _one(self) -> ReferenceVolumes:
        if (self.path is None) == (self.rgi6_outlines is None):
            raise ValueError("give either `path` (a table of volumes) or `rgi6_outlines`")
        return self


@dataclass(frozen=True, config=_STRICT)
class GeodeticMassBalance:
    """Geodetic mass balances (CSV: `glacier_id`, `start`, `end`, `dmdtda_mwe`[, `err_mwe`]). With
    `calibrate` (the default) each glacier's simulated balance of the period is calibrated to its
    own (igm_run/calibrate.py::calibrate_balance); without, they only validate it."""
    path: Path
    calibrate: bool = True

    _table = _file_read_by(read_geodetic_table)


@dataclass(frozen=True, config=_STRICT)
class DatasetProvider:
    name: str
    roles: tuple[Literal["licensor", "producer", "processor", "host"], ...] = ("producer",)
    url: str | None = None
    description: str | None = None

    def stac(self) -> dict:
        optional = {"url": self.url, "description": self.description}
        return {"name": self.name, "roles": list(self.roles), **{k: v for k, v in optional.items() if v}}


@dataclass(frozen=True, config=_STRICT)
class DatasetDescription:
    """The published catalog's texts (dataset_texts.py); what is left out gets a neutral default."""
    title: str | None = None
    description: str | None = None
    citation: str | None = None
    license: str | None = None
    providers: tuple[DatasetProvider, ...] = ()


class RegionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    outlines: tuple[OutlineSource, ...]
    dem: DemSource
    mass_balance: ElaTableForcing | None = None
    climate: ClimateForcing | None = None
    reference_volumes: ReferenceVolumes | None = None
    geodetic_mass_balance: GeodeticMassBalance | None = None
    selection: Selection | None = None
    id_pattern: str = RGI6_ID_PATTERN
    dataset: DatasetDescription | None = None
    _root: Path = PrivateAttr(Path("."))

    @property
    def forcing(self) -> ElaTableForcing | ClimateForcing:
        forcing = self.mass_balance or self.climate
        assert forcing is not None  # _complete requires exactly one of them
        return forcing

    @property
    def root(self) -> Path:
        """The spec's folder, against which its relative paths were resolved."""
        return self._root

    @field_validator("id_pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _complete(self, info: ValidationInfo) -> RegionSpec:
        if (self.mass_balance is None) == (self.climate is None):
            found = "both" if self.mass_balance else "neither"
            raise ValueError(f"give exactly one of `mass_balance` (an ELA table) or `climate` (monthly "
                             f"climate files); found {found}")
        if not any(o.role == "initial" for o in self.outlines):
            raise ValueError("no outline source with role 'initial'")
        if not any(o.match == "id" for o in self.outlines):
            raise ValueError("no outline source matched by id: the first one names the region's glaciers")
        self._root = _root(info) or Path(".")
        return self


_SECTIONS = {  # where a key sits (list indices left out) -> the class that lists its valid keys
    (): RegionSpec,
    ("outlines",): OutlineSource,
    ("dem",): DemSource,
    ("mass_balance",): ElaTableForcing,
    ("climate",): ClimateForcing,
    ("climate", "sources"): ClimateSource,
    ("reference_volumes",): ReferenceVolumes,
    ("geodetic_mass_balance",): GeodeticMassBalance,
    ("selection",): Selection,
    ("selection", "basins"): BasinSelection,
    ("dataset",): DatasetDescription,
    ("dataset", "providers"): DatasetProvider,
}


def _where(loc: tuple) -> str:
    """A key path as the user writes it, e.g. `outlines[0].year_column` (pydantic's union tags left out)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isidentifier():
            out += f".{part}" if out else part
    return out


def _problem(err: ErrorDetails) -> str:
    loc, kind = tuple(err["loc"]), err["type"]
    key, where = loc[-1] if loc else "", _where(loc[:-1])
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        section = _SECTIONS[tuple(p for p in loc[:-1] if isinstance(p, str))]
        valid = list(section.model_fields) if section is RegionSpec else [f.name for f in dataclasses.fields(section)]
        close = difflib.get_close_matches(str(key), valid, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(valid)}"
        return f"unknown key {key!r} in {where or 'the top level'} ({hint})"
    if kind in ("missing", "missing_argument") and isinstance(key, str):
        return f"missing key {key!r} in {where or 'the top level'}"
    message = str(err["ctx"]["error"]) if kind == "value_error" else f"{err['msg']} (got {err['input']!r})"
    return f"{_where(loc)}: {message}" if loc else message


def load_region_spec(path: str | Path) -> RegionSpec:
    """The region spec at `path`, checked (see the module docstring); a `RegionSpecError` lists
    every problem found."""
    path = Path(path).resolve()
    if not path.exists():
        raise RegionSpecError(f"region spec {path}: file does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise RegionSpecError(f"region spec {path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise RegionSpecError(f"region spec {path}: expected keys (outlines, dem, ...), not a {type(raw).__name__}")
    try:
        return RegionSpec.model_validate({"name": path.stem, **raw}, context={"root": path.parent})
    except ValidationError as exc:
        problems = [_problem(e) for e in exc.errors()]
        raise RegionSpecError(f"region spec {path}: " + "; ".join(problems)) from None
