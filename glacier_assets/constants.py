"""The one source of truth for the dataset's rules: epochs, thresholds, grids, projections, naming.

Every module imports these names; nothing else in the package spells an epoch, a threshold or a
CRS literally. The values follow the published dataset description (`../shared/seed/`).
"""

from __future__ import annotations

import re

# --- time ---------------------------------------------------------------------------------------
START_YEAR = 1960
END_YEAR = 2020
SAVE_EVERY_YEARS = 5
EPOCHS: tuple[int, ...] = tuple(range(START_YEAR, END_YEAR + 1, SAVE_EVERY_YEARS))
INITIAL_EPOCH = 1970  # the 1970s inventory is the initial state
CONTROL_EPOCHS: tuple[int, ...] = (1990, 2000, 2010, 2020)  # outlines that steer the model
# The simulation starts SPINUP_YEARS before START_YEAR (longer than the response time of the
# region's glaciers, ~10-30 years), so the 1960 state is the model's own, not the first guess.
SPINUP_YEARS = 30
SPINUP_START = START_YEAR - SPINUP_YEARS
# A glacier whose balance record before its first outline sets its spin-up (the calibration's
# "spinup_offset_m" case) spins up for TREND_SPINUP_YEARS under a climate that warms linearly to
# 1960 (`massbalance.spinup_shift`): a glacier that was larger a century before and still retreats
# in 1960, as Alpine glaciers did after the Little Ice Age (Hintereisferner's length record).
TREND_SPINUP_YEARS = 150
TREND_SPINUP_START = START_YEAR - TREND_SPINUP_YEARS
SPINUP_CLIMATE_YEARS = 10  # before the forcing starts: the mean balance profile of its first years
# An outline dated in year Y (a late-summer image) is compared with the model state at the end of
# that balance year, t = Y + 1 (OGGM's `rgi_date + 1`).
OUTLINE_TIME_OFFSET_YEARS = 1


REFERENCE_VOLUME_YEAR = 2000  # a reference volume without a year (Farinotti 2019: the RGI6 date, ~2000)
RHEOLOGY_FACTOR_STEP = 0.02  # the regional factor is kept on a 2 % log grid, so re-runs stay incremental
# The inverted volume is not the simulated one: the calibrated simulations of this many glaciers
# (spread over the references' volume) measure the ratio, and the factor is corrected by it
# (steps/rheology.py: dynamic_factor; 0: the inversion's factor as it is)
RHEOLOGY_SAMPLE_GLACIERS = 3


def outline_model_time(year: int) -> int:
    """The model time (start of a year) an outline of `year` is compared with."""
    return int(year) + OUTLINE_TIME_OFFSET_YEARS

# --- grids and thresholds -----------------------------------------------------------------------
MODEL_RESOLUTION_M = 100.0  # IGM grid
PRODUCT_RESOLUTION_M = 25.0  # published thickness
REFINE = int(round(MODEL_RESOLUTION_M / PRODUCT_RESOLUTION_M))  # product cells per model cell, each way
ICE_THRESHOLD_M = 2.0  # thickness >= this is glacier
DOMAIN_BORDER_CELLS = 15  # least ice-free margin around the glacier's outlines on the model grid (1.5 km)...
DOMAIN_MARGIN_PER_SIZE = 0.2  # ...or this times the square root of its largest outline, if more
MIN_DEM_MARGIN_M = 300.0  # the DEM must cover a glacier's outlines and this much around them
# Snow may accumulate this far beyond the union of a glacier's own outlines (ice still flows and
# melts anywhere in the domain). 0: a buffer let ice grow on the terrain around a glacier whose
# neighbours are not in the inventory; on Hintereisferner alone 41 % of its simulated area lay
# outside its outline (IoU 0.40, thickness 37 m too thin); with none, IoU 0.71, bias +1 m.
ICE_ALLOWED_BUFFER_M = 0.0
THICKNESS_NODATA = -9999.0
MASK_NODATA = 0

# --- quality gates (used from issue 3 on) ---------------------------------------------------------
AREA_GATE_PCT = 2.8  # regional mean |A_sim - A_obs| / A_obs over the control epochs
GLACIER_WARN_PCT = 10.0
# a glacier whose simulated ice is in the wrong place at an outline date is flagged (published, with
# the reason): IoU of simulated and observed masks (25 m) below this, or less than this share of the
# outline's lowest fifth by elevation (its tongue) under ice >= ICE_THRESHOLD_M (science/shape.py)
SHAPE_FLAG_IOU = 0.70
SHAPE_FLAG_TONGUE = 0.5
# IGM's flow made consistent with the inversion's flux (igm_run/model.py, issue 25): the mobility is
# the ratio of the two fluxes on the first guess, smoothed over this scale (m), a field
CONSISTENCY_SCALE_M = 150.0
# ... within these bounds (science/inversion.py: flux_consistency). Five times softer or stiffer ice
# (or sliding) is what a flow law's enhancement can plausibly give; beyond it the first guess, not
# the flow, is what is wrong. At 20 Hintereisferner's tongue was fed too fast to retreat with its
# length record, and one Oetztal glacier's IoU fell to 0.74 (bench/RESULTS.md, session 4)
FLUX_RATIO_BOUNDS = (0.2, 5.0)
# balance forced to melt beyond a glacier's own outlines but for this reach (m) down-valley of their
# lowest fifth, where a tongue may have reached (science/domain.py: melt_mask, issue 25)
MELT_DOWNVALLEY_M = 1000.0
# volume-area scaling V = c A^gamma (km3, km2; Bahr et al. 1997, valley glaciers): a reference volume
# matched from another RGI version's id is kept only within this factor of it (inventory/reference.py)
VOLUME_AREA_C = 0.034
VOLUME_AREA_GAMMA = 1.375
VOLUME_AREA_MATCH = 3.0
# The share of glaciers whose outlines are each predicted with it left out of the calibration (the
# out-of-sample skill; ~25 % of a glacier's IGM time): 1 validates every glacier; a large region
# may validate a sample (science/quality.py: in_validation_sample), the same glaciers every run.
VALIDATION_SHARE = 1.0

# --- physical constants -------------------------------------------------------------------------
ICE_DENSITY = 900.0  # kg m-3, for w.e. conversions
GEODETIC_DENSITY = 850.0  # kg m-3, volume to mass change of a geodetic balance (Huss 2013, as Hugonnet et al. 2021)
GEODETIC_PERIOD = (2000, 2020)  # a geodetic balance's default period: 2000-01-01 to 2020-01-01
GRAVITY = 9.81
SECONDS_PER_YEAR = 31_556_926.0

# --- ice rheology: IGM 3.2's defaults (igm/conf/processes/iceflow.yaml), scaled by one regional
# factor calibrated to reference volumes (science/inversion.py) ----------------------------------
IGM_ICE_DENSITY = 910.0  # kg m-3, physics.ice_density
GLEN_N = 3.0  # physics.viscosity.exponent
IGM_ARRHENIUS_MPA3_A = 78.0  # physics.viscosity.arrhenius, MPa-3 a-1 (= 2.47e-24 Pa-3 s-1, temperate ice)
IGM_SLIDING_TAU_REF_MPA = 0.2153697218796329  # physics.sliding.tau_ref: basal drag at u_ref (Weertman)
IGM_SLIDING_U_REF_M_A = 100.0  # physics.sliding.u_ref
IGM_SLIDING_EXPONENT = 3.0  # physics.sliding.exponent m: u_b = u_ref (tau_b / tau_ref)^m

# --- coordinate reference systems ---------------------------------------------------------------
GEOGRAPHIC_CRS = "EPSG:4326"
ALBERS_LON_0 = 105.0
ALBERS_LAT_1 = 25.0
ALBERS_LAT_2 = 47.0


def albers_crs(lon_0: float = ALBERS_LON_0, lat_1: float = ALBERS_LAT_1, lat_2: float = ALBERS_LAT_2) -> str:
    """Albers equal-area conic of the regional outline files (the CGI2 / dataset convention)."""
    return (
        f"+proj=aea +lat_0=0 +lon_0={lon_0:g} +lat_1={lat_1:g} +lat_2={lat_2:g} "
        "+x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"
    )


# --- glacier ids and file names ------------------------------------------------------------------
RGI6_ID_PATTERN = r"^RGI60-\d{2}\.\d{5}$"
PARTITION_FORBIDDEN = re.compile(r"[|\[\],\s/\\]")  # Dagster keys and file names must not carry these


def thickness_relpath(glacier_id: str, year: int) -> str:
    """`thickness/YEAR/RGI60-13.xxxxx_YEAR.tif`: the dataset's naming, one folder per year."""
    return f"thickness/{year}/{glacier_id}_{year}.tif"


def mask_relpath(glacier_id: str, year: int) -> str:
    return f"masks/{year}/{glacier_id}_{year}.tif"


def outline_relpath(glacier_id: str, year: int) -> str:
    return f"outlines/{year}/{glacier_id}_{year}.parquet"


def regional_outline_relpath(year: int, suffix: str = "shp") -> str:
    """`regional_outlines/YEAR.shp`: one file per epoch with every glacier of that year."""
    return f"regional_outlines/{year}.{suffix}"


def domain_relpath(glacier_id: str) -> str:
    return f"domains/{glacier_id}.nc"


def simulation_relpath(glacier_id: str) -> str:
    return f"simulations/{glacier_id}.nc"


INVENTORY_RELPATH = "inventory/outlines.parquet"
REJECTED_RELPATH = "inventory/rejected.csv"  # inventory rows refused, with the reason
MATCH_RELPATH = "inventory/outline_match.parquet"  # outlines matched by location: each polygon's shares
UNMATCHED_RELPATH = "inventory/unmatched.csv"  # polygons matched to no glacier, with the reason
MISSING_RELPATH = "inventory/missing.csv"  # (source, glacier) pairs where a glacier got no outline
EMULATOR_RELPATH = "emulator/iceflow_emulator.weights.h5"

# --- product sanity -----------------------------------------------------------------------------
THICKNESS_MAX_M = 1000.0  # no glacier in the region is near this thick (Farinotti 2019: < 500 m)
MASK_OUTLINE_TOLERANCE_PCT = 1.0  # polygon area vs the mask's pixel area

CALIBRATION_REPORT_RELPATH = "reports/calibration.csv"
VALIDATION_REPORT_RELPATH = "reports/validation.csv"  # fit vs leave-one-out, volume vs reference (and .png)
RHEOLOGY_RELPATH = "reports/rheology.json"  # the regional rheology factor and what it was calibrated on
RHEOLOGY_SAMPLE_RELDIR = "reports/rheology_sample"  # the sample's domains and simulations while they run
PRODUCT_AUDIT_RELPATH = "reports/product_audit.csv"
OUTLINE_TABLE_RELPATH = "reports/published_outlines.parquet"
DATA_DOCS_RELPATH = "reports/data_docs"  # Great Expectations HTML (index.html)


def plot_relpath(glacier_id: str) -> str:
    """A glacier's area and volume series (PNG)."""
    return f"reports/plots/{glacier_id}.png"


def thickness_plot_relpath(glacier_id: str) -> str:
    """A glacier's thickness maps at its outlines' dates (PNG), beside its series."""
    return f"reports/plots/{glacier_id}_thickness.png"


# --- re-runs, failures and publication ------------------------------------------------------------
# Code versions of the steps (Dagster `code_version`, and part of every product's fingerprint):
# bump one when a change to that step's code changes its products, so they are made again.
CODE_VERSIONS = {
    "outline_inventory": "3",  # and outline_match
    "iceflow_emulator": "2",  # 2: retrained every 10 steps (igm_run/settings.py: NETWORK_IGM)
    "ice_rheology": "3",  # 2: the inversion's apparent balance zero-mean per outlet (issue 25); 3: corrected on a
    # sample's simulated volume
    "glacier_domain": "4",  # 3: as ice_rheology 2 (the flux and first guess of issue 25); 4: the first
    # guess's margin capped to the area within the model's ice cells (science/resample.py)
    "igm_simulation": "7",  # 3: the emulator retrained every 10 steps; 4: padded grids, Adam reset at start-up;
    # 5: the nested and left-out searches started from better guesses; 6: areas within the model's ice
    # cells (science/resample.py, issue 25); 7: the flow's mobility within 0.2-5 (FLUX_RATIO_BOUNDS), was 20; an
    # outline met within 1 % or one model cell (science/calibration.py: TOL_PIXELS), was 4 pixels
    "glacier_products": "2",  # thickness_25m, glacier_mask, glacier_outline; 2: within the model's ice cells
    "regional_outlines": "2",  # a mosaic since 2
    "stac_catalog": "5",  # what a publication holds (see ledger.RegionState.publication_fingerprint)
}
# Many glaciers per IGM run (igm_run/batch.py): a backfill of `igm_simulation` runs as ranged runs of
# at most BATCH_GLACIERS glaciers, each one IGM child; the child packs them into grids of at most
# BATCH_CELLS model cells (memory: bench/batch_cost.py), similar sizes together.
BATCH_GLACIERS = 50
BATCH_CELLS = 400_000
# A child runs the glaciers it does not pack (the network emulator's) one after another, one IGM
# model per grid (igm_run/glacier.py: ModelPool), in fresh processes that build at most this many
# models: TensorFlow keeps each model's compiled functions until the process ends (~0.1-0.2 GB
# each), so 50 in one process would need ~10 GB.
MODELS_PER_PROCESS = 10
FAILURES_DIR = "status/failures"  # one small JSON per glacier, step (and epoch) whose last attempt failed
REGION_LOCK_RELPATH = ".locks/region.lock"  # the region-wide steps read and write under it, one at a time


PROGRESS_DIR = "status/progress"  # the latest line of each running IGM child, for the main job's console


def progress_relpath(run_id: str) -> str:
    return f"{PROGRESS_DIR}/{run_id}.json"


def igm_child_error_relpath(glacier_id: str) -> str:
    """Where the IGM child leaves the cause of its failure for the Dagster step (Pipes passes only
    the exit code)."""
    return f"{FAILURES_DIR}/{glacier_id}/.igm_child_error.txt"


def igm_batch_relpath(first: str, last: str) -> str:
    """Where a batch's IGM child leaves each glacier's outcome (JSON) for the Dagster step."""
    return f"{FAILURES_DIR}/.batches/{first}..{last}.json"


PUBLICATION_RECORD_RELPATH = "reports/publication.json"  # what the last successful publication covered
CATALOG_LIVE_LINK = "current"  # catalog/current -> versions/NNNNNN: the live catalog readers open
CATALOG_VERSIONS_DIR = "versions"  # catalog/versions/NNNNNN: complete catalogs, one per publication
CATALOG_VERSIONS_KEPT = 3  # catalog versions kept on disk (the live one and two before it, for readers)
MAX_DOMAIN_SIDE_KM = 100.0  # a glacier's model domain longer than this: an outline in the wrong place or CRS
DEM_VOID_FILL_MAX_PCT = 5.0  # DEM voids up to this share of a model domain are filled (and flagged)
