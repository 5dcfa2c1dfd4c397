"""Claims on glaciers between main jobs over the same products, so that two runs started together
do the work once.

A main job claims each glacier it is about to simulate: an exclusive `flock` on
`status/claims/ID.lock`, held until the job ends, with the holder's pid written in it. A glacier
another job holds is left to that job; this one waits for it at the end of its own simulations
and then finds the glacier current (or, if the other job did not finish it, claims and runs it
itself). The kernel releases a claim when its holder dies, so a killed job never leaves one taken.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

CLAIMS_DIR = "status/claims"


class Claims:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.held: dict[str, IO] = {}

    def _path(self, glacier_id: str) -> Path:
        return self.folder / f"{glacier_id}.lock"

    def claim(self, glacier_ids: list[str]) -> dict[str, str]:
        """Claim what is free; returns the glaciers held by another job, with its pid."""
        self.folder.mkdir(parents=True, exist_ok=True)
        busy = {}
        for gid in glacier_ids:
            if gid in self.held:
                continue
            handle = open(self._path(gid), "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                busy[gid] = handle.read().strip() or "?"
                handle.close()
                continue
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            self.held[gid] = handle
        return busy

    def wait(self, glacier_ids: list[str]) -> None:
        """Block until no other job holds these glaciers (claiming none of them)."""
        for gid in glacier_ids:
            with open(self._path(gid), "a+") as handle:
                fcntl.flock(handle, fcntl.LOCK_SH)
                fcntl.flock(handle, fcntl.LOCK_UN)

    def release(self) -> None:
        for handle in self.held.values():
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
        self.held.clear()
