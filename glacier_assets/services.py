"""Real services started from the machine's packages on loopback: PostgreSQL for the deployment
tests and the benchmarks (`bench/region_scale.py`)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not versions:
        raise RuntimeError("PostgreSQL server binaries not found (.ci/run installs the `postgresql` package)")
    return versions[-1].parent


@contextmanager
def postgres_server():
    """A throw-away PostgreSQL cluster on 127.0.0.1 (run as the `postgres` user when we are root,
    since initdb refuses root). Yields connection settings."""
    bindir = postgres_bin()
    base = Path(tempfile.mkdtemp(prefix="glacier-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    data, log = base / "data", base / "server.log"
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True)  # noqa: E731
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "dagster", "--auth=trust", "-E", "UTF8")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "start",
            "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1")
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "dagster", "dagster")
        yield {"host": "127.0.0.1", "port": port, "user": "dagster", "password": "", "db": "dagster"}
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        time.sleep(0.5)
        shutil.rmtree(base, ignore_errors=True)
