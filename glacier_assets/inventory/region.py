"""A region spec: which outline files, DEM and forcing make up a region (YAML on disk).

```yaml
name: hintereisferner
id_pattern: "^RGI60-\\d{2}\\.\\d{5}$"      # optional; RGI6 by default
outlines:
  - path: Hintereisferner_RGI6.shp           # relative to this file
    role: initial                             # initial (the 1970s state) or control
    year_column: BgnDate                      # or `year: 1970`
    id_column: RGIId                          # optional: RGIId, FCGI_ID and GLIMSId are tried
dem: {path: hef_srtm.tif, year: 2000}         # surface DEM in any CRS, with its acquisition year
mass_balance: {path: mass_balance.csv}        # year, ela, grad_abl, grad_acc, acc_max
# or, instead of mass_balance, monthly climate merged source by source:
climate:
  sources:
    - {path: histalp_merged_hef.nc, temperature: temp, precipitation: prcp, elevation: hgt}
  reference_years: [1960, 1989]               # the mean ELA of these years sits at the median elevation
  ddf: 5.0                                    # degree-day factor, mm w.e. d-1 K-1
  prcp_factor: 2.5
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..constants import RGI6_ID_PATTERN


class RegionSpecError(ValueError):
    pass


@dataclass(frozen=True)
class OutlineSource:
    path: Path
    role: str  # "initial" | "control"
    year: int | None = None
    year_column: str | None = None
    id_column: str | None = None


@dataclass(frozen=True)
class DemSource:
    path: Path
    year: int = 2000


@dataclass(frozen=True)
class ElaTableForcing:
    path: Path


@dataclass(frozen=True)
class ClimateSource:
    path: Path | tuple[Path, ...]
    temperature: str
    precipitation: str
    elevation: str | None = None  # variable holding the grid-cell elevation (m)
    geopotential: str | None = None  # or geopotential (m2 s-2), divided by g
    invariant_path: Path | None = None  # file holding elevation/geopotential if not in `path`


@dataclass(frozen=True)
class ClimateForcing:
    sources: tuple[ClimateSource, ...]
    reference_years: tuple[int, int] = (1960, 1989)
    ddf: float = 5.0
    prcp_factor: float = 1.0
    lapse_rate: float = -0.0065


@dataclass(frozen=True)
class RegionSpec:
    name: str
    outlines: tuple[OutlineSource, ...]
    dem: DemSource
    forcing: ElaTableForcing | ClimateForcing
    id_pattern: str = RGI6_ID_PATTERN
    root: Path = field(default=Path("."))


def _path(root: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else (root / p).resolve()


def load_region_spec(path: str | Path) -> RegionSpec:
    path = Path(path).resolve()
    if not path.exists():
        raise RegionSpecError(f"region spec {path} does not exist")
    raw = yaml.safe_load(path.read_text()) or {}
    root = path.parent
    try:
        outlines = tuple(
            OutlineSource(
                path=_path(root, o["path"]),
                role=o.get("role", "initial"),
                year=o.get("year"),
                year_column=o.get("year_column"),
                id_column=o.get("id_column"),
            )
            for o in raw["outlines"]
        )
        dem = DemSource(_path(root, raw["dem"]["path"]), int(raw["dem"].get("year", 2000)))
    except KeyError as exc:
        raise RegionSpecError(f"region spec {path}: missing key {exc}") from exc
    for o in outlines:
        if o.role not in ("initial", "control"):
            raise RegionSpecError(f"region spec {path}: outline role must be initial or control, not {o.role!r}")
    if not any(o.role == "initial" for o in outlines):
        raise RegionSpecError(f"region spec {path}: no outline source with role 'initial'")
    if "mass_balance" in raw:
        forcing: ElaTableForcing | ClimateForcing = ElaTableForcing(_path(root, raw["mass_balance"]["path"]))
    elif "climate" in raw:
        c = raw["climate"]
        sources = []
        for s in c["sources"]:
            p = s["path"]
            sources.append(
                ClimateSource(
                    path=tuple(_path(root, q) for q in p) if isinstance(p, list) else _path(root, p),
                    temperature=s["temperature"],
                    precipitation=s["precipitation"],
                    elevation=s.get("elevation"),
                    geopotential=s.get("geopotential"),
                    invariant_path=_path(root, s["invariant_path"]) if s.get("invariant_path") else None,
                )
            )
        forcing = ClimateForcing(
            sources=tuple(sources),
            reference_years=tuple(c.get("reference_years", (1960, 1989))),
            ddf=float(c.get("ddf", 5.0)),
            prcp_factor=float(c.get("prcp_factor", 1.0)),
            lapse_rate=float(c.get("lapse_rate", -0.0065)),
        )
    else:
        raise RegionSpecError(f"region spec {path}: give either `mass_balance` or `climate`")
    return RegionSpec(
        name=str(raw.get("name", path.stem)),
        outlines=outlines,
        dem=dem,
        forcing=forcing,
        id_pattern=str(raw.get("id_pattern", RGI6_ID_PATTERN)),
        root=root,
    )
