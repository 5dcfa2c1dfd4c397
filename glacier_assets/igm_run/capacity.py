"""How many model cells one packed IGM grid may hold: from the device's free memory.

A packed grid's memory is the process's base (TensorFlow, IGM, the graph) plus a share per cell
(the state, the velocities on the vertical layers, the flow state and its optimizer moments, the
graph's intermediate arrays). Measured on CPU (`bench/batch_cost.py`, identity mapping): 0.94 GB
for a glacier alone of ~2,500 cells, 1.80 GB for 342,000 cells, i.e. ~2.5 kB per cell. On a GPU the
cells live in the device's memory and the base mostly in the host's, so the device's free memory
bounds the grid; on a CPU the host's available memory does, shared by the IGM children that run
at once, and since a bigger grid saves nothing on a CPU (docs/scaling.md) it is also capped at
`BATCH_CELLS`. A batch bigger than the figure is split into several grids (`batch.groups_by_size`),
never run out of memory.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..constants import BATCH_CELLS

CELL_BYTES = 2_500  # per model cell of a packed grid (measured on CPU; see above)
BASE_BYTES = 1_000_000_000  # the process without its grid (TensorFlow, IGM), on the host
MEMORY_SHARE = 0.6  # of the free memory a grid may plan on: TensorFlow's allocator needs headroom
MIN_CELLS = 10_000  # one large glacier's domain: a grid smaller than this is not worth planning


@dataclass(frozen=True)
class Capacity:
    max_cells: int
    why: str  # the device and the memory the figure comes from, for the log


def cells_that_fit(free_bytes: float, base_bytes: float = 0.0, share: float = MEMORY_SHARE,
                   cell_bytes: float = CELL_BYTES) -> int:
    """Model cells whose packed grid fits in `share` of `free_bytes` once `base_bytes` is taken;
    never below `MIN_CELLS` (a glacier bigger than any grid runs alone anyway)."""
    return max(MIN_CELLS, int((free_bytes * share - base_bytes) // cell_bytes))


def gpu_free_bytes(query: str | None = None) -> int | None:
    """The first GPU's free memory from `nvidia-smi` (or from `query`, its CSV output in MiB:
    "memory.free"), None without one."""
    if query is None:
        exe = shutil.which("nvidia-smi")
        if exe is None:
            return None
        try:
            query = subprocess.run([exe, "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
                                   capture_output=True, text=True, timeout=20, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            return None
    lines = [ln.strip() for ln in query.splitlines() if ln.strip()]
    try:
        return int(float(lines[0])) * 1024**2 if lines else None
    except ValueError:
        return None


def host_available_bytes(meminfo: str | None = None) -> int | None:
    """MemAvailable from /proc/meminfo (or from `meminfo`, its text), None where there is none."""
    if meminfo is None:
        path = Path("/proc/meminfo")
        if not path.exists():
            return None
        meminfo = path.read_text()
    for line in meminfo.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def packing_capacity(on_gpu: bool, children: int = 1, gpu_free: int | None = None,
                     host_free: int | None = None) -> Capacity:
    """The grid size for this process: on a GPU from its free memory (the whole device is this
    child's: one IGM run per GPU, the `gpu` pool), on a CPU from the host's available memory split
    between the `children` IGM processes that run at once, capped at `BATCH_CELLS`. The memory
    figures are read from the machine unless given."""
    if on_gpu:
        free = gpu_free if gpu_free is not None else gpu_free_bytes()
        if free is not None:
            return Capacity(cells_that_fit(free), f"GPU with {free / 1024**3:.1f} GiB free")
    free = host_free if host_free is not None else host_available_bytes()
    if free is None:
        return Capacity(BATCH_CELLS, "host memory unknown: the default")
    cells = min(BATCH_CELLS, cells_that_fit(free / max(1, children), BASE_BYTES))
    return Capacity(cells, f"CPU, {free / 1024**3:.1f} GiB available for {max(1, children)} IGM process(es)")
