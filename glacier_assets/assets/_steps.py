"""What every per-glacier step shares: failures named and recorded, and the region's glacier states."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import geopandas as gpd

from ..errors import GlacierError
from ..ledger import RegionState, clear_failure, record_failure, region_state
from ..resources import IGMChildError, IGMRunner, ProductStore, RegionSource
from ..science.masks import glacier_code
from ..steps.inputs import expected_fingerprints

PLAIN = (GlacierError, IGMChildError, ValueError, FileNotFoundError)


def cause(exc: BaseException, glacier_id: str) -> str:
    """The problem in one line, without repeating the glacier ("glacier X: ..." prefixes go)."""
    text = exc.description if isinstance(exc, dg.Failure) else str(exc)
    text = (text or "").strip().splitlines()[0] if (text or "").strip() else type(exc).__name__
    text = re.sub(rf"^glacier {re.escape(glacier_id)}( \d{{4}})?: ", "", text)
    if not isinstance(exc, (*PLAIN, dg.Failure)):
        text = f"{type(exc).__name__}: {text}"
    return text


def failure_line(glacier_id: str, step: str, text: str, epoch: int | None = None) -> str:
    """What the console and the UI show: glacier, step, cause."""
    return f"{glacier_id}{f' {epoch}' if epoch else ''} [{step}]: {text}"


def note_failure(context: dg.AssetExecutionContext, store: ProductStore, glacier_id: str, step: str,
                 exc: BaseException, epoch: int | None = None) -> tuple[str, str]:
    """Record a glacier step's failure in the ledger; returns the cause and the line to show."""
    text = cause(exc, glacier_id)
    return text, note_cause(context, store, glacier_id, step, text, epoch)


def note_cause(context: dg.AssetExecutionContext, store: ProductStore, glacier_id: str, step: str,
               text: str, epoch: int | None = None) -> str:
    """note_failure with the cause already in one line (`cause`, e.g. made in a worker process)."""
    record_failure(store.path(""), glacier_id, step, text, epoch, context.run_id)
    return failure_line(glacier_id, step, text, epoch)


@contextmanager
def glacier_step(context: dg.AssetExecutionContext, store: ProductStore, glacier_id: str, step: str,
                 epoch: int | None = None) -> Iterator[None]:
    """Run one glacier's step: on any error, record it (ledger) and fail with a message that names
    the glacier, the step and the cause; on success, clear an earlier failure of the step."""
    try:
        yield
    except Exception as exc:
        text, line = note_failure(context, store, glacier_id, step, exc, epoch)
        raise dg.Failure(description=line, metadata={"glacier_id": glacier_id, "step": step, "cause": text}) from exc
    clear_failure(store.path(""), glacier_id, step, epoch)


def glacier_states(store: ProductStore, region: RegionSource, igm: IGMRunner,
                   inventory: gpd.GeoDataFrame) -> RegionState:
    """Every inventory glacier's state, judged against today's inputs (see ledger.py)."""
    from .rheology import read_rheology

    rheology = read_rheology(store)
    settings = igm.simulation_settings(float(rheology["factor"])) if rheology else None
    expected = expected_fingerprints(inventory, region.load(), igm.emulator_fingerprint(), settings)
    codes = {g: glacier_code(g) for g in inventory["glacier_id"].unique()}
    return region_state(store.path(""), codes, {g: e["simulation"] for g, e in expected.items()})


def state_metadata(state: RegionState) -> dict:
    return {
        "n_glaciers_current": len(state.current),
        "failed_glaciers": dg.MetadataValue.json([{"glacier_id": g, "reason": r}
                                                  for g, r in sorted(state.failed.items())]),
        "stale_glaciers": dg.MetadataValue.json(state.stale),
        "incomplete_glaciers": dg.MetadataValue.json(state.incomplete),
        "not_simulated": dg.MetadataValue.json(state.missing),
    }


def run_igm_batch(context, igm: IGMRunner, settings: dict, jobs: dict[str, dict], results: Path) -> dict[str, dict]:
    """One IGM child for all `jobs` (glacier -> its domain, output, targets, ...): each glacier's
    figures, or {"error": why}, as the child wrote them to `results` (removed after). A child
    that dies as a whole raises `IGMChildError`."""
    extras = {**settings, "results_path": str(results), "error_path": str(results.with_suffix(".error.txt")),
              "glaciers": [{"glacier_id": g, **{k: v for k, v in job.items() if k != "error_path"}}
                           for g, job in jobs.items()]}
    try:
        igm.run(context, "simulate-batch", extras)
        return json.loads(results.read_text())
    finally:
        results.unlink(missing_ok=True)
