"""One environment holds IGM (hydra + omegaconf) and Dagster (antlr 4.13 selection parser).

hydra-core 1.3 pins antlr4-python3-runtime 4.9, which breaks Dagster's selection parser
(`TypeError: ord()`); hydra-core 1.4.0rc3 and omegaconf 2.4.1rc1 vendor their own antlr. These
tests fail if either side breaks; test_cli.py runs the real `dagster asset materialize --select`
and test_chain.py / test_hef.py real IGM runs in this same environment.
"""

import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import dagster as dg
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_pins():
    assert version("antlr4-python3-runtime").startswith("4.13")
    assert version("hydra-core") == "1.4.0rc3"
    assert version("omegaconf") == "2.4.1rc1"
    assert version("igm-model").startswith("3.2")


def test_dagster_selection_strings_parse():
    sel = dg.AssetSelection.from_string('key:"thickness_25m" or (kind:"netcdf" and group:"model")')
    assert "thickness_25m" in str(sel)


def test_hydra_composes_igm_configuration():
    import igm
    import igm.igm_run  # noqa: F401  IGM's own CLI module: registers its OmegaConf resolvers
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    conf = Path(igm.__file__).parent / "conf"
    with initialize_config_dir(config_dir=str(conf)):
        cfg = compose(config_name="config", overrides=["processes=iceflow"])
    assert cfg.core.folder_data == "data"
    assert cfg.processes.iceflow.method == "unified"
    assert OmegaConf.create({"a": 2, "b": "${a}"}).b == 2  # omegaconf's own (vendored) antlr grammar


def test_the_igm_child_drops_tensorflow_start_up_lines_and_keeps_the_rest():
    """The Abseil lines XLA writes at start-up (which TF_CPP_MIN_LOG_LEVEL does not silence) are
    dropped from the child's stderr; warnings, errors and a traceback at exit still come out."""
    import subprocess
    import sys

    code = "\n".join([
        "import os, sys",
        "from glacier_assets.igm_run.quiet import drop_native_chatter",
        "drop_native_chatter()",
        "os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n')",
        "os.write(2, b'I0000 00:00:1795664551.152858   30008 service.cc:146] XLA service initialized\\n')",
        "os.write(2, b'W0000 00:00:1795664551.152858   30008 cuda.cc:1] a C++ warning\\n')",
        "print('glacier G: a Python message', file=sys.stderr)",
        "raise RuntimeError('glacier G: the step failed')",
    ])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "XLA service" not in proc.stderr and "absl::InitializeLog" not in proc.stderr
    assert "a C++ warning" in proc.stderr and "glacier G: a Python message" in proc.stderr
    assert "Traceback" in proc.stderr and "RuntimeError: glacier G: the step failed" in proc.stderr


def test_the_lock_agrees_with_pyproject():
    """uv.lock is what both README commands install from; it must describe pyproject.toml as it is
    (`make lock` re-locks after a change). Offline: the check compares, it resolves nothing."""
    uv = ROOT / ".uv" / "bin" / "uv"
    uv_cmd = str(uv) if uv.exists() else shutil.which("uv")
    if uv_cmd is None:
        pytest.fail("no uv: `make test` installs it into .uv/")
    proc = subprocess.run([uv_cmd, "lock", "--check", "--offline"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"pyproject.toml and uv.lock disagree (run `make lock`):\n{proc.stderr}"


def test_the_lock_pins_a_dask_that_distributed_accepts():
    """distributed pins dask exactly; an unlocked resolver once paired dask 2026.11 with distributed
    2021.4 (ImportError in the Dask executor)."""
    from importlib.metadata import requires

    pin = [r for r in requires("distributed") if r.startswith("dask")]
    assert pin and version("dask") in pin[0], (version("dask"), pin)
    import dask.distributed  # noqa: F401


@pytest.mark.parametrize("module", ["stac_geoparquet", "dagster_dask", "odc.stac", "pystac"])
def test_each_product_library_imports_on_its_own(module):
    """A fresh interpreter imports it with nothing else imported first (stac-geoparquet 0.8.1-0.8.3
    needed pyarrow.fs imported before it)."""
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_the_catalog_imports_stac_geoparquet_leaving_logging_alone():
    """stac-geoparquet 0.8.0 configures the root logger at INFO on stdout when imported, which put
    every library's INFO lines on the main job's console; stac.py imports it with logging kept."""
    code = ("import logging; from glacier_assets.stac import stac_geoparquet_arrow; a = stac_geoparquet_arrow(); "
            "print(len(logging.getLogger().handlers), logging.getLogger().level, hasattr(a, 'to_parquet'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["0", str(30), "True"], proc.stdout
