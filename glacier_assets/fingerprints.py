"""Fingerprints: what a product was made from, so a step whose inputs, parameters and code did not
change is not done again.

A fingerprint is a short SHA-256 of a canonical JSON of everything a step's output depends on:
the step's code version (`constants.CODE_VERSIONS`), its parameters, the fingerprints of the
products it reads and the checksums of the input files. Each product stores its own (NetCDF
attribute, Parquet schema metadata, a JSON beside the emulator's weights) and the assets return
it as the Dagster data version. A step is current when the stored fingerprint equals the one
computed from its inputs now.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from .constants import CODE_VERSIONS
from .storage import SHAPEFILE_PARTS


def fingerprint(step: str, *parts) -> str:
    """Fingerprint of one step's output from `parts` (anything JSON can hold; Paths as text)."""
    payload = json.dumps([step, CODE_VERSIONS[step], *parts], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


@lru_cache(maxsize=4096)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:20]


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's content (cached per path, size and modification time); for a
    shapefile, of its companions too. A missing file digests to "missing"."""
    path = Path(path)
    parts = [path.with_suffix(s) for s in SHAPEFILE_PARTS] if path.suffix.lower() == ".shp" else [path]
    out = []
    for p in parts:
        try:
            st = p.stat()
        except FileNotFoundError:
            out.append("missing" if p == path else "")
            continue
        out.append(_digest(str(p), st.st_size, st.st_mtime_ns))
    return out[0] if len(out) == 1 else hashlib.sha256("|".join(out).encode()).hexdigest()[:20]


def file_record(path: str | Path) -> dict:
    """What a product file was when it was made (size, modification time, checksum), recorded
    beside its fingerprint so that a later run can tell it was damaged (`file_problem`)."""
    st = Path(path).stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": _digest(str(path), st.st_size, st.st_mtime_ns)}


def file_problem(path: str | Path, record: dict) -> str | None:
    """None while the file is as recorded; else what is wrong: missing, another size (truncated or
    replaced), or other content (checksum; only read when the modification time moved)."""
    try:
        st = Path(path).stat()
    except FileNotFoundError:
        return "missing"
    if st.st_size != record["size"]:
        return f"{st.st_size} bytes where {record['size']} were written (truncated or replaced)"
    if st.st_mtime_ns == record.get("mtime_ns"):
        return None
    if _digest(str(path), st.st_size, st.st_mtime_ns) != record["sha256"]:
        return "content changed since it was written (checksum differs)"
    return None


def input_parts(obj):
    """A region-spec object (dataclass or pydantic model, lists of them, paths) as JSON-able
    parts, every file replaced by its name and content checksum."""
    if isinstance(obj, Path):
        return {"file": obj.name, "sha256": file_digest(obj)}
    if isinstance(obj, (list, tuple)):
        return [input_parts(o) for o in obj]
    fields = getattr(obj, "__dataclass_fields__", None) or getattr(type(obj), "model_fields", None)
    if fields:
        return {k: input_parts(getattr(obj, k)) for k in fields}
    return obj


def simulation_fingerprint(glacier_id: str, domain_fp: str, emulator_fp: str | None, settings: dict,
                           targets: dict, geodetic: dict | None = None) -> str:
    """A glacier's simulation: its domain, the emulator, the settings (`IGMRunner.simulation_settings`)
    and what it is calibrated to. A validation share below 1 enters as whether this glacier is
    validated (`glacier_settings`), so changing the share re-runs only the glaciers it adds or drops.
    A balance met by the spin-up's offset (a period before the first outline, calibrated so since
    issue 25) names it and the spin-up's start (a trend from `TREND_SPINUP_START` since), so only
    those glaciers' earlier results are stale."""
    from .constants import TREND_SPINUP_START
    from .science.calibration import spinup_start

    if geodetic and spinup_start(targets, geodetic) == TREND_SPINUP_START:
        geodetic = {**geodetic, "parameter": "spinup_offset_m", "spinup_start": TREND_SPINUP_START}
    return fingerprint("igm_simulation", domain_fp, emulator_fp, glacier_settings(settings, glacier_id),
                       {str(k): round(float(v), 6) for k, v in targets.items()}, *([geodetic] if geodetic else []))


def glacier_settings(settings: dict, glacier_id: str) -> dict:
    """The region's simulation settings as one glacier's result depends on them: a
    `validation_share` replaced by whether the glacier is in the sample (its `leave_one_out`); at
    a share of 1 every glacier validates, with the fingerprint it had before shares existed."""
    from .science.quality import validated

    if "validation_share" not in settings:
        return settings
    out = {k: v for k, v in settings.items() if k != "validation_share"}
    out["leave_one_out"] = validated(glacier_id, settings.get("leave_one_out", True),
                                     float(settings["validation_share"]))
    return out


def product_fingerprint(simulation_fp: str, year: int, code: int) -> str:
    """Of one glacier's thickness, mask and outline at one epoch (written into the outline)."""
    return fingerprint("glacier_products", simulation_fp, int(year), int(code))


def regional_fingerprint(year: int, crs: str, products: list[tuple]) -> str:
    """Of one epoch's regional outline file, from the (glacier, outline file checksum, initial
    outline's checksum) it holds."""
    return fingerprint("regional_outlines", int(year), crs, sorted(products))
