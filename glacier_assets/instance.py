"""The project-local Dagster instance: $DAGSTER_HOME defaults to var/dagster_home."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def ensure_dagster_home(root: Path | None = None) -> Path:
    """Set $DAGSTER_HOME (unless set), create it, and keep its dagster.yaml in step with the
    repository's `dagster.yaml` (the one source of the instance settings)."""
    root = root or Path(os.environ.get("GLACIER_ASSETS_ROOT", os.getcwd()))
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(root / "var" / "dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    src = root / "dagster.yaml"
    if not src.exists():
        src = REPO_ROOT / "dagster.yaml"
    dst = home / "dagster.yaml"
    if src.exists() and (not dst.exists() or dst.read_text() != src.read_text()):
        shutil.copyfile(src, dst)
    return home
