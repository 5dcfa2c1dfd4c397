"""A sign of life from inside a glacier's simulation.

The IGM child's log lines (spin-up, each calibration trial, outline n of m, geodetic, validation)
go to the run's event log through Dagster Pipes, as before. `Progress` also keeps the latest line,
with its time, in a small JSON file that the main job reads to show a progress line on the
console (`read_progress`), and `tick(model_year)`, called at every IGM time step, says "still
running" with the model year whenever `QUIET_S` seconds passed without a line: a long trial on a
large glacier never goes quiet, in the UI or on the console.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

QUIET_S = 30.0  # the longest the child stays silent while it runs


class Progress:
    """A log function (`progress(line)`) that also records the line and can tick."""

    def __init__(self, log: Callable[[str], None], path: str | Path | None = None, quiet_s: float = QUIET_S):
        self.log, self.path, self.quiet_s = log, Path(path) if path else None, quiet_s
        self.started = self.last = time.monotonic()
        self.line = ""

    def __call__(self, line: str) -> None:
        self.log(line)
        self.line, self.last = line, time.monotonic()
        self._record(line)

    def tick(self, model_year: float) -> None:
        if time.monotonic() - self.last >= self.quiet_s:
            head = self.line.split(" -> ")[0] if self.line else "IGM"
            self(f"{head} ... still running, model year {model_year:.0f}")
            self.line = head  # the next tick repeats the phase, not the tick

    def _record(self, line: str) -> None:
        if self.path is None:
            return
        from ..storage import atomic_path

        record = {"line": line, "time": time.time(), "running_s": round(time.monotonic() - self.started)}
        try:
            with atomic_path(self.path, suffix=".json") as tmp:
                tmp.write_text(json.dumps(record))
        except OSError:  # a sign of life must never fail the simulation
            pass


def read_progress(folder: Path, since: float) -> dict[str, dict]:
    """The progress records in `folder` written after `since` (epoch seconds), by file stem."""
    out = {}
    for path in sorted(Path(folder).glob("*.json")):
        try:
            if path.stat().st_mtime >= since:
                out[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return out
