"""Resources: where inputs and products live, and how IGM is launched."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal

import dagster as dg

from .constants import (
    ALBERS_LAT_1,
    ALBERS_LAT_2,
    ALBERS_LON_0,
    CATALOG_LIVE_LINK,
    CONSISTENCY_SCALE_M,
    MELT_DOWNVALLEY_M,
    RHEOLOGY_SAMPLE_GLACIERS,
    VALIDATION_SHARE,
    albers_crs,
)
from .igm_run.settings import COLD_ITERATIONS, FLOW_MAPPING, WARM_ITERATIONS
from .instance import REPO_ROOT
from .inventory.demo import ensure_demo_region
from .inventory.region import RegionSpec, load_region_spec
from .recovery import PARENT_PID_ENV


class IGMChildError(RuntimeError):
    """The IGM child process failed; the message is the cause it reported (or its exit status)."""


def project_path(p: str | Path) -> Path:
    """Absolute paths stay; relative ones are taken from $GLACIER_ASSETS_ROOT (default: the cwd,
    which `workspace.yaml` and the Makefile set to the repository root)."""
    p = Path(p)
    return p if p.is_absolute() else Path(os.environ.get("GLACIER_ASSETS_ROOT", os.getcwd())) / p


class ProductStore(dg.ConfigurableResource):
    """The folder that holds every product, laid out by `constants.*_relpath`."""

    root: str = "var/products"
    catalog_root: str = "catalog"  # where gated products are published with their STAC catalog (publication.py)
    stac_schemas: str = ""  # STAC extension schemas (<ext>/<version>/schema.json); default: the shared copy
    albers_lon_0: float = ALBERS_LON_0
    albers_lat_1: float = ALBERS_LAT_1
    albers_lat_2: float = ALBERS_LAT_2

    def path(self, relpath: str) -> Path:
        return project_path(self.root) / relpath

    def catalog_path(self, relpath: str = "") -> Path:
        """In the live catalog: `catalog/current`, a link to the latest complete version."""
        return project_path(self.catalog_root) / CATALOG_LIVE_LINK / relpath

    def stac_schemas_path(self) -> Path:
        return project_path(self.stac_schemas) if self.stac_schemas else REPO_ROOT.parent / "shared" / "stac-schemas"

    @property
    def albers(self) -> str:
        return albers_crs(self.albers_lon_0, self.albers_lat_1, self.albers_lat_2)


class RegionSource(dg.ConfigurableResource):
    """The region to model: a region YAML (see `inventory/region.py`) or, when `spec` is empty,
    the built-in demo region, generated on first use into `demo_dir`. `include` limits the run to
    some glacier ids."""

    spec: str = ""
    demo_dir: str = "var/demo_region"
    include: list[str] = []
    farinotti_table: str = ""  # Farinotti et al. 2019 volumes (HDF5); default: the shared sample data

    def farinotti_path(self) -> Path | None:
        if self.farinotti_table:
            return project_path(self.farinotti_table)
        default = REPO_ROOT.parent / "shared" / "data" / "oggm_rgi6_meta_farinotti_vol" / "rgi62_itmix_df.h5"
        return default if default.exists() else None

    def spec_path(self) -> Path:
        return project_path(self.spec) if self.spec else ensure_demo_region(project_path(self.demo_dir))

    def load(self) -> RegionSpec:
        return load_region_spec(self.spec_path())


class IGMRunner(dg.ConfigurableResource):
    """Launches `python -m glacier_assets.igm_run` through Dagster Pipes (a local subprocess; the
    same child runs in a GPU pod through `PipesK8sClient`). TensorFlow threads are bounded by
    `threads`. `mapping` is how IGM solves the ice flow (igm_run/settings.py): "identity" solves each
    cell's velocities; "network" is IGM's CNN emulator, and with `use_emulator` every glacier
    warm-starts from the shared pretrained one (`iceflow_emulator`)."""

    threads: int = 1
    seed: int = 0
    launcher: Literal["subprocess", "k8s"] = "subprocess"  # k8s: the child in its own GPU pod (PipesK8sClient)
    k8s_image: str = "glacier-assets:latest"
    k8s_namespace: str = "dagster"
    k8s_gpus: int = 1
    mapping: Literal["identity", "network"] = FLOW_MAPPING
    use_emulator: bool = True
    warm_iterations: int = WARM_ITERATIONS
    cold_iterations: int = COLD_ITERATIONS
    leave_one_out: bool = True  # predict every outline with it left out of the calibration (validation) ...
    validation_share: float = VALIDATION_SHARE  # ... of this share of the glaciers (science/quality.py)
    # each glacier's IGM mobility made consistent with the inversion's flux (igm_run/model.py, issue 25)
    flow_consistency: bool = True
    # melt beyond the outlines but for this reach down-valley (igm_run/settings.py: IGMSettings); None: off
    melt_downvalley_m: float | None = MELT_DOWNVALLEY_M
    # glaciers whose calibrated simulations correct the regional rheology (assets/rheology.py); 0: none
    rheology_sample: int = RHEOLOGY_SAMPLE_GLACIERS
    python: str = ""

    @property
    def needs_emulator(self) -> bool:
        """Whether simulations start from the shared trained emulator."""
        return self.mapping == "network" and self.use_emulator

    def emulator_fingerprint(self) -> str | None:
        """What the shared emulator's weights depend on (None when no simulation uses it)."""
        from .fingerprints import fingerprint
        from .igm_run.settings import software_versions

        if not self.needs_emulator:
            return None
        return fingerprint("iceflow_emulator", self.seed, self.cold_iterations, software_versions())

    def simulation_settings(self, rheology_factor: float) -> dict:
        """The settings a simulation's result depends on (part of its fingerprint), with the
        region's rheology factor; a validation share below 1 enters each glacier's fingerprint as
        whether that glacier validates (`fingerprints.glacier_settings`)."""
        from .igm_run.settings import software_versions

        return {"seed": self.seed, "mapping": self.mapping, "use_emulator": self.needs_emulator,
                "warm_iterations": self.warm_iterations, "cold_iterations": self.cold_iterations,
                "rheology_factor": rheology_factor, "leave_one_out": self.leave_one_out,
                **({"validation_share": self.validation_share} if self.validation_share < 1.0 else {}),
                **({"flow_consistency": True, "consistency_scale_m": CONSISTENCY_SCALE_M}
                   if self.flow_consistency else {}),
                **({"melt_downvalley_m": self.melt_downvalley_m} if self.melt_downvalley_m is not None else {}),
                "versions": software_versions()}

    def settings_extras(self, emulator_path: Path | None) -> dict:
        return {
            "threads": self.threads,
            "seed": self.seed,
            "mapping": self.mapping,
            "emulator_weights": str(emulator_path) if (self.needs_emulator and emulator_path) else None,
            "warm_iterations": self.warm_iterations,
            "cold_iterations": self.cold_iterations,
            "leave_one_out": self.leave_one_out,
            "validation_share": self.validation_share,
            "flow_consistency": self.flow_consistency,
            "melt_downvalley_m": self.melt_downvalley_m,
        }

    def run(self, context: dg.AssetExecutionContext, mode: str, extras: dict) -> dg.MaterializeResult:
        """Run the child; on failure raise `IGMChildError` with the cause the child reported."""
        try:
            return self._run(context, mode, extras)
        except Exception as exc:  # Pipes says only "failed with code N": the child wrote why
            error_file = Path(extras["error_path"]) if extras.get("error_path") else None
            if error_file and error_file.exists() and error_file.read_text().strip():
                raise IGMChildError(error_file.read_text().strip()) from exc
            raise IGMChildError(f"the IGM process failed ({exc})") from exc
        finally:
            if extras.get("error_path"):
                Path(extras["error_path"]).unlink(missing_ok=True)

    def _run(self, context: dg.AssetExecutionContext, mode: str, extras: dict) -> dg.MaterializeResult:
        env = {"PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
        if self.launcher == "k8s":
            from dagster_k8s import PipesK8sClient

            from .deploy import igm_pod_spec

            return PipesK8sClient(env=env).run(
                context=context, extras=extras, image=self.k8s_image, namespace=self.k8s_namespace,
                command=["python", "-m", "glacier_assets.igm_run", mode],
                base_pod_spec=igm_pod_spec(self.k8s_gpus)).get_materialize_result()
        # the child dies with this process (recovery.die_with_parent): no orphan IGM after a kill -9
        client = dg.PipesSubprocessClient(cwd=os.getcwd(), env={**env, PARENT_PID_ENV: str(os.getpid())})
        command = [self.python or sys.executable, "-m", "glacier_assets.igm_run", mode]
        return client.run(command=command, context=context, extras=extras).get_materialize_result()
