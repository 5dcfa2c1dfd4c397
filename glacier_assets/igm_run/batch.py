"""Many glaciers simulated and calibrated in one packed IGM run (`IGMBatch`).

Each glacier's calibration is the same generator of runs as when it runs alone
(`calibrate.glacier_runs`): the spin-up onto its first outline, a shift per later outline, its
geodetic balance, the leave-one-out predictions. Here they advance side by side: every round is
one IGM run of the packed grid in which each glacier still calibrating runs the trial its own
root finder asked for, on its own calendar (its period's years), and gets its answer back; a
glacier whose calibration is done holds no ice until the batch is done. One TensorFlow graph and
one ice-flow start-up serve the whole batch; each glacier's run starts from its own flow state
(`IGMBatch.run_tiles`). A glacier whose calibration fails is named and dropped; the others go on.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import xarray as xr

from ..constants import BATCH_CELLS, END_YEAR, MODELS_PER_PROCESS, SPINUP_START
from ..science.packing import GUTTER_CELLS, model_shape
from .calibrate import glacier_runs, model_year_figures
from .capacity import packing_capacity
from .glacier import ModelPool, model_key
from .model import IGMBatch
from .settings import IGMSettings, Log, configure_tensorflow, validates
from .simulate import flow_figures, simulate_glacier, write_simulation


def run_packed(model: IGMBatch, runs: dict[int, Any]) -> tuple[dict[int, Any], dict[int, str], int]:
    """Answer many tiles' generators of runs side by side, one batch run per round. Returns what
    each generator returned, the error of each that raised, and the number of rounds."""
    pending, results, errors = {}, {}, {}

    def advance(k: int, answer=None) -> None:
        try:
            pending[k] = runs[k].send(answer)
        except StopIteration as done:
            results[k] = done.value
            pending.pop(k, None)
        except Exception as exc:  # one glacier's failure is its own
            errors[k] = str(exc) or type(exc).__name__
            pending.pop(k, None)

    for k in runs:
        advance(k)
    rounds = 0
    while pending:
        answers = model.run_tiles(dict(pending))
        rounds += 1
        for k, answer in answers.items():
            advance(k, answer)
    return results, errors, rounds


def simulate_batch(domain_paths: list[Path], out_paths: list[Path], settings: IGMSettings,
                   targets: list[dict[int, float]], geodetic: list[dict | None] | None = None,
                   fingerprints: list[str | None] | None = None, log: Log = print) -> list[dict]:
    """`simulate.simulate_glacier` for many calibrated glaciers at once: their domains packed into
    one IGM model, their calibrations run side by side, each glacier's NetCDF written as its own
    run would write it. Returns per glacier its figures, or {"error": why} if it failed."""
    t0 = time.perf_counter()
    domains = [xr.load_dataset(p) for p in domain_paths]
    n = len(domains)
    geodetic = geodetic or [None] * n
    fingerprints = fingerprints or [None] * n
    ids = [d.attrs["glacier_id"] for d in domains]
    if not all(targets):
        raise ValueError("a packed batch calibrates its glaciers: every glacier needs outlines "
                         f"({', '.join(g for g, t in zip(ids, targets) if not t)} has none)")
    model = IGMBatch(domains, settings)
    model.on_step = getattr(log, "tick", None)  # igm_run/progress.py
    log(f"batch of {n} glaciers: IGM on a packed {model.packing.shape[0]}x{model.packing.shape[1]} grid "
        f"({model.packing.fill_fraction:.0%} glacier domains), {SPINUP_START}-{END_YEAR}")
    targets = [{int(t): float(a) for t, a in tg.items()} for tg in targets]
    years: list[dict] = [{} for _ in range(n)]
    runs = {k: glacier_runs(ids[k], targets[k], model.resolution, model.balanced_shift(k), log, geodetic[k],
                            validates(settings, ids[k]), years[k]) for k in range(n)}
    results, errors, rounds = run_packed(model, runs)
    runtime = time.perf_counter() - t0
    log(f"batch of {n} glaciers: {rounds} packed runs, {runtime:.1f} s")
    out = []
    for k in range(n):
        if k in errors:
            log(f"{ids[k]}: FAILED in the batch: {errors[k]}")
            out.append({"error": f"glacier {ids[k]}: {errors[k]}"})
            continue
        figures = {"runtime_s": round(runtime / n, 2), "batch_size": n, "batch_runtime_s": round(runtime, 2),
                   "model_runs": rounds, **model_year_figures(years[k]), **flow_figures(model, k)}
        try:
            cal, geodetic_fit, validation = results[k]
            out.append(write_simulation(out_paths[k], domains[k], targets[k], cal, geodetic_fit, validation, settings,
                                        model, figures, fingerprints[k]))
        except Exception as exc:
            out.append({"error": str(exc)})
    return out


def groups_by_size(cells: dict[str, int], max_cells: int = BATCH_CELLS) -> list[list[str]]:
    """Glaciers grouped into packed grids of at most `max_cells` cells (gutters counted), largest
    first, so glaciers of similar size (and so similar speed and time step) share a grid; a
    glacier bigger than that runs alone."""
    groups: list[list[str]] = []
    size = 0
    for gid in sorted(cells, key=lambda g: (-cells[g], g)):
        if not groups or size + cells[gid] > max_cells:
            groups.append([])
            size = 0
        groups[-1].append(gid)
        size += cells[gid]
    return groups


def simulate_glaciers(glaciers: list[dict], settings: IGMSettings, log: Log = print,
                      max_cells: int | None = None, per_process: int = MODELS_PER_PROCESS) -> dict[str, dict]:
    """Many glaciers' calibrated simulations in one process (one import and TensorFlow start-up).
    With the identity mapping they are packed into grids of at most `max_cells` cells (by default
    what the device's free memory holds, `capacity.packing_capacity`) by `groups_by_size`, each
    grid one `simulate_batch`; with the network emulator, whose answers depend on the glaciers it
    serves, each runs alone in turn, sorted by model grid so that one model serves each grid
    (`ModelPool`; with more than `per_process` models to build, in fresh processes of at most that
    many, `processes_by_model`, `_alone_in_process`). `glaciers` are dicts with glacier_id, domain, output,
    targets, geodetic and fingerprint. A glacier with nothing to calibrate to, or whose grid fails
    as a whole, runs alone. Returns per glacier its figures or {"error": why}."""
    if max_cells is None and settings.mapping == "identity" and len(glaciers) > 1:
        device = configure_tensorflow(settings.threads, settings.seed)
        capacity = packing_capacity(device.startswith("GPU"), children=(os.cpu_count() or 1) // settings.threads)
        max_cells = capacity.max_cells
        log(f"packed grids of at most {max_cells:,} cells ({capacity.why})")
    by_id = {g["glacier_id"]: g for g in glaciers}
    shapes: dict[str, tuple[int, int]] = {}
    out: dict[str, dict] = {}
    for gid in by_id:
        try:
            with xr.open_dataset(by_id[gid]["domain"]) as d:
                shapes[gid] = (d.sizes["y"], d.sizes["x"])
        except Exception as exc:
            out[gid] = {"error": _why(gid, exc)}
    cells = {g: (ny + GUTTER_CELLS) * (nx + GUTTER_CELLS) for g, (ny, nx) in shapes.items()}
    # one emulator shared by different glaciers changes their answers: with it, each runs alone
    packable = {g: c for g, c in cells.items() if by_id[g].get("targets") and settings.mapping == "identity"}
    groups = groups_by_size(packable, max_cells or BATCH_CELLS)
    alone = [[g] for g in cells if g not in packable] + [grp for grp in groups if len(grp) == 1]
    for grp in [grp for grp in groups if len(grp) > 1]:
        jobs = [by_id[g] for g in grp]
        try:
            figures = simulate_batch([Path(j["domain"]) for j in jobs], [Path(j["output"]) for j in jobs], settings,
                                     [j["targets"] for j in jobs], [j.get("geodetic") for j in jobs],
                                     [j.get("fingerprint") for j in jobs], log)
            out.update(zip(grp, figures))
        except Exception as exc:  # the grid as a whole: its glaciers run alone
            log(f"packed run of {len(grp)} glaciers failed ({exc}); running them one by one")
            alone += [[g] for g in grp]
    # glaciers of one model grid one after another, so that they share its model (`ModelPool`)
    solo = sorted((by_id[g] for (g,) in alone), key=lambda j: (model_shape(shapes[j["glacier_id"]]), j["glacier_id"]))
    chunks = processes_by_model([model_key(j["glacier_id"], shapes[j["glacier_id"]], settings) for j in solo],
                                per_process)
    if len(chunks) == 1:
        out.update(_alone(solo, settings, log))
    else:  # bounded memory: fresh processes that build at most `per_process` models
        for first, stop in chunks:
            out.update(_alone_in_process(solo[first:stop], settings, log))
    return {g: {**out[g], "process_glaciers": len(glaciers)} if "error" not in out[g] else out[g] for g in out}


def processes_by_model(models: list[Hashable], per_process: int = MODELS_PER_PROCESS) -> list[tuple[int, int]]:
    """Consecutive glaciers, each with the key of the model it runs on (`model.model_key`: its
    grid's when models are re-used, else its own; sorted, so that a model's glaciers follow one
    another), split into processes that each build at most `per_process` models: (first, stop)
    index ranges."""
    chunks: list[tuple[int, int]] = []
    first, seen = 0, set[Hashable]()
    for k, model in enumerate(models):
        if model not in seen and len(seen) == per_process:
            chunks.append((first, k))
            first, seen = k, set()
        seen.add(model)
    if models:
        chunks.append((first, len(models)))
    return chunks


def _alone(jobs: list[dict], settings: IGMSettings, log: Log,
           report: Callable[[str, Any], None] = lambda kind, payload: None) -> dict[str, dict]:
    """Each glacier simulated alone in turn, in this process, glaciers of one grid by one model;
    `report("start", glacier)` before each and `report("result", {glacier: result})` after."""
    out = {}
    pool = ModelPool()
    for j in jobs:
        gid = j["glacier_id"]
        report("start", gid)
        try:
            out[gid] = simulate_glacier(Path(j["domain"]), Path(j["output"]), settings, log, targets=j.get("targets"),
                                        fingerprint=j.get("fingerprint"), geodetic=j.get("geodetic"), pool=pool)
        except Exception as exc:
            out[gid] = {"error": _why(gid, exc)}
        report("result", {gid: out[gid]})
    return out


def _alone_worker(jobs: list[dict], settings: IGMSettings, messages, parent: int) -> None:
    from ..recovery import die_with_parent

    die_with_parent(parent)  # never outlive the IGM child that started it
    configure_tensorflow(settings.threads, settings.seed)
    from .progress import Progress

    _alone(jobs, settings, Progress(lambda line: messages.put(("log", line))),  # ticks too, through the parent
           lambda kind, payload: messages.put((kind, payload)))
    messages.put(("done", None))


def _alone_in_process(jobs: list[dict], settings: IGMSettings, log: Log) -> dict[str, dict]:
    """`_alone` in a fresh process that streams its log lines and each glacier's result back.
    TensorFlow keeps every IGM model's compiled functions until its process ends (~0.1-0.2 GB per
    model, measured), so a child that runs many glaciers runs them in processes that build at most
    `MODELS_PER_PROCESS` models (`processes_by_model`). If that process dies, the glacier it was
    running is named with its exit code and the ones after it are not run."""
    ctx = multiprocessing.get_context("spawn")
    messages = ctx.Queue()
    proc = ctx.Process(target=_alone_worker, args=(jobs, settings, messages, os.getpid()), daemon=True)
    proc.start()
    out: dict[str, dict] = {}
    running = None
    try:
        while True:
            try:
                kind, payload = messages.get(timeout=2.0)
            except queue.Empty:
                if proc.is_alive():
                    continue
                proc.join()
                died = f"the IGM process died (exit code {proc.exitcode})"
                where = f"while running {running}" if running else "while starting"
                for gid in (j["glacier_id"] for j in jobs if j["glacier_id"] not in out):
                    why = f"{died} while running it" if gid == running else f"not run: {died} {where}"
                    out[gid] = {"error": f"glacier {gid}: {why}"}
                return out
            if kind == "log":
                log(payload)
            elif kind == "start":
                running = payload
            elif kind == "result":
                out.update(payload)
            else:
                return out
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()


def error_line(exc: BaseException) -> str:
    """An IGM child's failure in one line (the type named unless it is a plain Runtime/ValueError):
    what a child alone leaves for the Dagster step, and each failed glacier's of a batch."""
    text = str(exc).strip() or type(exc).__name__
    if not isinstance(exc, (RuntimeError, ValueError)):
        text = f"{type(exc).__name__}: {text}"
    return text.splitlines()[0][:2000]


def _why(gid: str, exc: BaseException) -> str:
    return f"glacier {gid}: {error_line(exc)}"
