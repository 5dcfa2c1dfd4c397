"""Publishing a folder atomically, by versions.

The live catalog (`catalog/current`) is a relative symbolic link to one complete version beside
it, `catalog/versions/NNNNNN/`. A new publication starts from a copy of the live version made of
hard links (no data copied), changes only what changed there (every write replaces a file, so the
live version's files are never touched), is validated, and then the link is swapped with one rename:
a reader sees the previous complete catalog or the new complete one, never a mixture, never a
root that links to a missing file. A failed publication leaves the live version as it was.
Publications are serialized by a lock; the last `CATALOG_VERSIONS_KEPT` versions stay on disk so
a reader that started on an older one can finish.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .constants import CATALOG_VERSIONS_DIR, CATALOG_VERSIONS_KEPT
from .storage import file_lock, is_stale_temporary, stale_temporaries

UNVERSIONED = ("catalog.json", "items.parquet", "thickness", "outlines")  # a catalog from before versions


def versions_dir(root: Path) -> Path:
    return Path(root).parent / CATALOG_VERSIONS_DIR


def live_version(root: Path) -> Path | None:
    """The version the published link points at, or None before the first publication."""
    root = Path(root)
    return root.resolve() if root.is_symlink() and root.exists() else None


def _hardlink_tree(src: Path, dst: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(src):
        rel = Path(dirpath).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for name in filenames:
            os.link(Path(dirpath) / name, dst / rel / name)


def _adopt_unversioned(root: Path, vdir: Path) -> None:
    """A catalog published beside the link before versions existed becomes version 000000 (once)."""
    old = [root.parent / name for name in UNVERSIONED if (root.parent / name).exists()]
    if old and not root.exists():
        (vdir / "000000").mkdir(exist_ok=True)
        for p in old:
            os.rename(p, vdir / "000000" / p.name)
        _swap_link(root, vdir / "000000")


def _swap_link(root: Path, target: Path) -> None:
    tmp = root.parent / f".{root.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    os.symlink(os.path.relpath(target, root.parent), tmp)
    os.replace(tmp, root)


def _next_name(vdir: Path) -> str:
    numbers = [int(p.name) for p in vdir.iterdir() if p.name.isdigit()]
    return f"{max(numbers, default=0) + 1:06d}"


def _prune(vdir: Path, live: Path, keep: int) -> list[Path]:
    versions = sorted((p for p in vdir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    old = [p for p in versions[:-keep] if p.resolve() != live.resolve()] if keep > 0 else []
    for p in old:
        shutil.rmtree(p, ignore_errors=True)
    return old


@contextmanager
def new_version(root: Path, keep: int = CATALOG_VERSIONS_KEPT) -> Iterator[Path]:
    """Yield a staging folder holding a hard-linked copy of the live version; when the block
    ends without an exception the staging folder becomes the live version."""
    root = Path(root)
    vdir = versions_dir(root)
    vdir.mkdir(parents=True, exist_ok=True)
    with file_lock(vdir / ".lock"):
        _adopt_unversioned(root, vdir)
        stage = vdir / f".staging.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        live = live_version(root)
        try:
            if live is not None:
                _hardlink_tree(live, stage)
            else:
                stage.mkdir()
            yield stage
            final = vdir / _next_name(vdir)
            os.rename(stage, final)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        _swap_link(root, final)
        _prune(vdir, final, keep)


def leftovers(root: Path) -> list[Path]:
    """What a publication killed half-way leaves: its staging folder and an unswapped link."""
    root = Path(root)
    links = [p for p in root.parent.glob(f".{root.name}.*") if is_stale_temporary(p.name)]
    return links + stale_temporaries(versions_dir(root), recursive=False)
