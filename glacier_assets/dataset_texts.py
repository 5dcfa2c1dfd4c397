"""What the published catalog says of its dataset: title, description, citation, license,
providers, and a lineage that names what the run used.

The texts come from the region spec's optional `dataset` key; what it leaves out is a neutral
default naming the region. The built-in demo region's spec, and only it, carries the seed
dataset's texts (`SEED_TEXTS`: Guo et al. 2025, the Yangtze and Yellow River sources). The
lineage is written from the run itself: the forcing, the reference volumes the rheology was
calibrated to, the geodetic balances, and, on each thickness item, the dates of that glacier's
own outlines.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .constants import END_YEAR, SPINUP_START, START_YEAR

if TYPE_CHECKING:
    from .inventory.region import RegionSpec

SEED_CITATION = (
    "Guo, W., Wang, Z., Wu, X. (2025): Simulated thickness and area of glaciers in the source region of "
    "Yangtze and Yellow Rivers using IGM model (1960-2020). National Cryosphere Desert Data Center, "
    "CSTR 11738.11.NCDC.GLACIER.DB6957.2025. Reproduced and extended by glacier_assets."
)
PROCESSOR = {"name": "glacier_assets", "roles": ["processor"],
             "description": "IGM simulations calibrated to the outlines at their dates (this project)"}
METHOD = (
    f"The initial outline and the later (control) outlines, each at its own date -> 100 m UTM domain (DEM, "
    f"thickness inverted by mass conservation with a regional rheology calibrated to reference volumes) -> IGM "
    f"simulation from a {SPINUP_START} spin-up to {END_YEAR}, calibrated to each outline at its date (one ELA "
    f"shift per period) -> thickness bilinearly resampled to 25 m within the model's ice cells (>= 2 m), "
    f"cropped to the non-zero extent."
)


@dataclass(frozen=True)
class DatasetTexts:
    title: str
    description: str
    license: str = "other"  # an SPDX id, or "other"
    citation: str | None = None  # sci:citation; the IGM paper is cited beside it always
    providers: tuple[dict, ...] = (PROCESSOR,)  # STAC provider objects (name, roles, url, description)
    inputs: str = ""  # lineage: what this run used (forcing, reference volumes, geodetic balances)

    def thickness_lineage(self, outlines: str = "") -> str:
        return " ".join(t for t in (METHOD, self.inputs, outlines) if t)

    def digest(self) -> str:
        """Changes when any text does: a publication with other texts is a new publication."""
        return hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()[:16]


SEED_TEXTS = DatasetTexts(
    title=f"Glacier thickness and area, source regions of the Yangtze and Yellow Rivers, {START_YEAR}-{END_YEAR}",
    description=("Products of glacier_assets: IGM-simulated 25 m thickness and outlines every 5 years, published "
                 "only after the quality gates passed. " + SEED_CITATION),
    license="CC-BY-4.0",
    citation=SEED_CITATION,
    providers=(PROCESSOR, {"name": "National Cryosphere Desert Data Center", "roles": ["licensor"],
                           "url": "http://www.ncdc.ac.cn"}),
)


def neutral_texts(region_name: str) -> DatasetTexts:
    return DatasetTexts(
        title=f"Glacier thickness and area: {region_name}, {START_YEAR}-{END_YEAR}",
        description=(f"IGM-simulated 25 m ice thickness and outlines every 5 years of the glaciers of the region "
                     f"'{region_name}', made by glacier_assets and published only after the quality gates passed."),
    )


def dataset_texts(spec: RegionSpec, rheology: dict | None = None) -> DatasetTexts:
    """The texts of `spec`'s catalog: its `dataset` key over the neutral ones, with the lineage of
    what the run used."""
    base = neutral_texts(spec.name)
    own = spec.dataset
    if own is not None:
        base = dataclasses.replace(
            base, title=own.title or base.title, description=own.description or base.description,
            license=own.license or base.license, citation=own.citation or base.citation,
            providers=(PROCESSOR, *(p.stac() for p in own.providers)) if own.providers else base.providers)
    return dataclasses.replace(base, inputs=run_inputs(spec, rheology))


def run_inputs(spec: RegionSpec, rheology: dict | None) -> str:
    """One sentence each: the forcing, the reference volumes, the geodetic balances."""
    if spec.mass_balance is not None:
        forcing = f"Mass balance from the ELA table {Path(spec.mass_balance.path).name}."
    else:
        assert spec.climate is not None
        names = ", ".join(sorted({Path(p).name for s in spec.climate.sources
                                  for p in (s.path if isinstance(s.path, tuple) else (s.path,))}))
        presets = sorted({s.preset for s in spec.climate.sources if s.preset})
        c = spec.climate
        forcing = (f"Mass balance from monthly climate ({names}{'; ' + ', '.join(presets) if presets else ''}) by a "
                   f"degree-day model (ddf {c.ddf:g} mm w.e. d-1 K-1, precipitation factor {c.prcp_factor:g}, "
                   f"lapse rate {c.lapse_rate:g} K m-1).")
    sources = (rheology or {}).get("source") or []
    n = (rheology or {}).get("n_glaciers") or 0
    sample = len((rheology or {}).get("sample") or [])
    volumes = (f"Ice rheology calibrated to {n} reference volume{'s' if n != 1 else ''} ({', '.join(sources)})"
               + (f", then corrected so that {sample} glaciers' calibrated simulations carry their inverted volume."
                  if "sample_ratio" in (rheology or {}) else ".")
               if sources and n else "No reference volumes: IGM's default rheology.")
    geo = spec.geodetic_mass_balance
    geodetic = ("No geodetic mass balances." if geo is None else
                f"{'Calibrated to' if geo.calibrate else 'Compared with, not calibrated to,'} the geodetic mass "
                f"balances of {Path(geo.path).name}.")
    return " ".join((forcing, volumes, geodetic))


def outline_dates_text(outlines: Iterable[tuple[str, int]]) -> str:
    """A glacier's lineage sentence from its outlines' (role, year)."""
    rows = sorted(set(outlines))
    initial = sorted({y for r, y in rows if r == "initial"})
    controls = sorted({y for r, y in rows if r == "control"})
    first = f"initial outline {', '.join(map(str, initial))}" if initial else "no initial outline"
    steer = (f"calibrated to its outline{'s' if len(controls) > 1 else ''} of {', '.join(map(str, controls))}"
             if controls else "no later outline: calibrated to the initial outline only")
    return f"This glacier: {first}; {steer}."
