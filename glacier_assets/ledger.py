"""What happened to each glacier: the failure of its last attempt at a step, and whether its
products are complete and made from its current inputs.

A failed step leaves a small JSON record (`status/failures/ID/STEP[_YEAR].json`: step, epoch,
message, run, time); the step's next success removes it. One file per glacier, step and epoch, so
concurrent runs never write the same record. The region-wide steps (regional outlines, reports,
publication) are made from the glaciers that are *current*: every epoch's products exist and come
from a simulation of the glacier's current inputs, and no failure is recorded. The others are
listed by state, never dropped silently.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from .constants import EPOCHS, FAILURES_DIR, mask_relpath, outline_relpath, simulation_relpath, thickness_relpath
from .fingerprints import file_digest, file_problem, fingerprint, product_fingerprint
from .simulation_file import SimulationFile
from .storage import atomic_path, read_parquet_metadata


def _record_path(root: Path, glacier_id: str, step: str, epoch: int | None) -> Path:
    return Path(root) / FAILURES_DIR / glacier_id / (f"{step}_{epoch}.json" if epoch else f"{step}.json")


def record_failure(root: Path, glacier_id: str, step: str, message: str, epoch: int | None = None,
                   run_id: str | None = None) -> None:
    path = _record_path(root, glacier_id, step, epoch)
    record = {"glacier_id": glacier_id, "step": step, "epoch": epoch, "message": message, "run_id": run_id,
              "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(record))


def clear_failure(root: Path, glacier_id: str, step: str, epoch: int | None = None) -> None:
    _record_path(root, glacier_id, step, epoch).unlink(missing_ok=True)


def clear_glacier(root: Path, glacier_id: str) -> None:
    folder = Path(root) / FAILURES_DIR / glacier_id
    for p in folder.glob("*.json") if folder.exists() else []:
        p.unlink(missing_ok=True)


def read_failures(root: Path) -> dict[str, list[dict]]:
    """Glacier id -> its failure records (oldest first). Only `ID/STEP[_YEAR].json` files are
    records: a dot-named folder (a batch child's outcomes, `.batches/`) or file (one being written
    atomically) is not, nor is a file that is not a whole record."""
    out: dict[str, list[dict]] = {}
    base = Path(root) / FAILURES_DIR
    folders = sorted(f for f in base.iterdir() if f.is_dir() and not f.name.startswith(".")) if base.exists() else []
    for p in (p for folder in folders for p in sorted(folder.glob("*.json")) if not p.name.startswith(".")):
        try:
            rec = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(rec, dict) and {"glacier_id", "step", "message", "time"} <= rec.keys():
            out.setdefault(rec["glacier_id"], []).append(rec)
    return {g: sorted(r, key=lambda x: x["time"]) for g, r in out.items()}


def describe_failures(records: list[dict]) -> str:
    """One line: the steps that failed and the first cause, e.g. `igm_simulation: ...`."""
    first = records[0]
    where = first["step"] + (f" {first['epoch']}" if first.get("epoch") else "")
    more = f" (+{len(records) - 1} more)" if len(records) > 1 else ""
    return f"{where}: {first['message']}{more}"


def failures_at(root: Path, glaciers: list[str], steps: tuple[str, ...]) -> dict[str, str]:
    """Of `glaciers`, in their order, those with a failure recorded at one of `steps`, each with
    its line (describe_failures over all its records)."""
    records = read_failures(root)
    return {g: describe_failures(records[g]) for g in glaciers if any(r["step"] in steps for r in records.get(g, []))}


def product_problems(root: Path, glacier_id: str, year: int, meta: dict) -> list[str]:
    """What is wrong with a glacier-epoch's thickness and mask against what its outline's metadata
    (`meta`) recorded when they were made: missing, truncated, or changed. Products made before
    the record existed are checked for presence only."""
    root = Path(root)
    if meta.get("vanished"):
        return []
    out = []
    for name, relpath in (("thickness", thickness_relpath), ("mask", mask_relpath)):
        path = root / relpath(glacier_id, year)
        record = meta.get("files", {}).get(name)
        problem = file_problem(path, record) if record else (None if path.exists() else "missing")
        if problem:
            out.append(f"{name} {path.name}: {problem}")
    return out


def epoch_products_made(root: Path, glacier_id: str, year: int, product_fp: str) -> tuple[bool, list[str]]:
    """Whether a glacier-epoch's products were made with the fingerprint `product_fp`, and what is
    damaged: an outline that cannot be read, a thickness or mask missing, truncated or changed."""
    path = Path(root) / outline_relpath(glacier_id, year)
    meta = read_parquet_metadata(path)
    if not meta:
        return False, [f"outline {path.name}: cannot be read"] if path.exists() else []
    if meta.get("fingerprint") != product_fp:
        return False, []
    return True, product_problems(root, glacier_id, year, meta)


def products_current(root: Path, glacier_id: str, year: int, simulation_fp: str, code: int) -> bool:
    """Whether the glacier-epoch's three products were made from this simulation and are whole."""
    made, damaged = epoch_products_made(root, glacier_id, year, product_fingerprint(simulation_fp, year, code))
    return made and not damaged


def glacier_products_state(root: Path, glacier_id: str, code: int, expected_simulation_fp: str | None) -> str:
    """"current", "stale" (complete, from older inputs), "incomplete" (an epoch's products missing,
    damaged or from an older simulation) or "missing"."""
    root = Path(root)
    sim_fp = SimulationFile(root / simulation_relpath(glacier_id)).fingerprint()
    if sim_fp is None:
        return "missing"
    for year in EPOCHS:
        if not products_current(root, glacier_id, year, sim_fp, code):
            return "incomplete"
    return "current" if sim_fp == expected_simulation_fp else "stale"


@dataclass
class RegionState:
    """The region's glaciers by state. `current` make the region-wide products."""

    current: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # glacier -> "step: cause" of its last failure
    stale: list[str] = field(default_factory=list)  # products made from inputs that changed since
    incomplete: list[str] = field(default_factory=list)  # simulated, some epoch's products missing
    missing: list[str] = field(default_factory=list)  # not simulated yet
    simulations: dict[str, str] = field(default_factory=dict)  # current glacier -> checksum of its simulation

    def summary(self) -> dict:
        return {"current": len(self.current), "failed": sorted(self.failed), "stale": self.stale,
                "incomplete": self.incomplete, "not_simulated": self.missing}

    def publication_fingerprint(self, *settings) -> str:
        """What a publication of this state holds: the current glaciers' simulations, the others'
        states (they are listed in the catalog), and `settings` (projection, package version)."""
        return fingerprint("stac_catalog", sorted(self.simulations.items()), sorted(self.failed.items()),
                           self.stale, self.incomplete, self.missing, *settings)


def region_state(root: Path, codes: dict[str, int], expected: dict[str, str | None]) -> RegionState:
    """State of every glacier in `codes` (glacier -> mask code); `expected` maps a glacier to the
    fingerprint its simulation would have from today's inputs."""
    failures = read_failures(root)
    state = RegionState()
    for gid in sorted(codes):
        if gid in failures:
            state.failed[gid] = describe_failures(failures[gid])
            continue
        s = glacier_products_state(root, gid, codes[gid], expected.get(gid))
        {"current": state.current, "stale": state.stale, "incomplete": state.incomplete,
         "missing": state.missing}[s].append(gid)
        if s == "current":
            state.simulations[gid] = file_digest(Path(root) / simulation_relpath(gid))
    return state
