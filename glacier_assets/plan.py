"""What the main job has to run: which region-wide assets, glacier simulations, glacier-epochs and
publication are not current. Each answer reads the same fingerprints the assets record
(fingerprints.py, ledger.py), so the main job launches only the runs whose assets would not skip.
"""

from __future__ import annotations

from dataclasses import dataclass

from .constants import EPOCHS, INVENTORY_RELPATH, REJECTED_RELPATH, simulation_relpath


@dataclass
class RegionWide:
    """Step 1: whether the inventory and the rheology are current, and the assets to materialize."""

    inventory_current: bool
    rheology_current: bool
    selection: list[str]


def region_wide(store, region, igm, spec) -> RegionWide:
    """The inventory (outline_inventory, outline_match), the ice-flow emulator and the regional
    rheology, each unless its fingerprint matches today's inputs."""
    import geopandas as gpd

    from .assets.inventory import inventory_fingerprint
    from .assets.rheology import rheology_current
    from .assets.simulation import emulator_current
    from .storage import read_parquet_metadata

    path = store.path(INVENTORY_RELPATH)
    inventory_ok = (read_parquet_metadata(path).get("fingerprint") == inventory_fingerprint(spec)
                    and store.path(REJECTED_RELPATH).exists())
    rheology_ok = inventory_ok and rheology_current(store, region, gpd.read_parquet(path), igm, spec)
    selection = ([] if inventory_ok else ["outline_inventory", "outline_match"]) + \
        ([] if not igm.needs_emulator or emulator_current(store, igm) else ["iceflow_emulator"]) + \
        ([] if rheology_ok else ["ice_rheology"])
    return RegionWide(inventory_ok, rheology_ok, selection)


def expected_simulations(igm, inventory, spec, rheology_factor: float, glaciers: list[str]) -> dict:
    """Glacier -> the fingerprint its simulation would have if made from today's inputs (None: cannot be made)."""
    from .steps.inputs import expected_fingerprints

    expected = expected_fingerprints(inventory, spec, igm.emulator_fingerprint(),
                                     igm.simulation_settings(rheology_factor), glaciers)
    return {g: expected[g]["simulation"] for g in glaciers}


def simulations_to_run(store, expected: dict[str, str | None], ids: list[str]) -> list[str]:
    """Of `ids`, the glaciers whose simulation is not current, or whose last attempt failed."""
    from .ledger import read_failures
    from .simulation_file import SimulationFile

    failures = read_failures(store.path(""))
    return [g for g in ids if g in failures or expected[g] is None
            or SimulationFile(store.path(simulation_relpath(g))).fingerprint() != expected[g]]


def simulations_made(store, expected: dict[str, str | None]) -> int:
    """How many of the glaciers' simulations now carry the fingerprint expected of them."""
    from .simulation_file import SimulationFile

    return sum(1 for g, fp in expected.items()
               if fp and SimulationFile(store.path(simulation_relpath(g))).fingerprint() == fp)


def epoch_products_to_make(store, simulated: list[str]) -> tuple[dict[int, set[str]], list[str]]:
    """Per epoch, the simulated glaciers whose thickness, mask and outline are not made from their
    current simulation (or have none), and the damaged products among them, one line each."""
    from .fingerprints import product_fingerprint
    from .ledger import epoch_products_made
    from .science.masks import glacier_code
    from .simulation_file import SimulationFile

    sim = {g: SimulationFile(store.path(simulation_relpath(g))).fingerprint() for g in simulated}
    damaged: list[str] = []

    def stale(g: str, year: int) -> bool:
        sim_fp = sim[g]
        if sim_fp is None:  # no simulation: left to the step, which names it
            return True
        made, problems = epoch_products_made(store.path(""), g, year,
                                             product_fingerprint(sim_fp, year, glacier_code(g)))
        damaged.extend(f"{g} {year}: {p}" for p in problems)
        return not made or bool(problems)

    todo = {year: {g for g in simulated if stale(g, year)} for year in EPOCHS}
    return todo, damaged


def glacier_states_and_live(store, region, igm, inventory, spec):
    """Every glacier's state (ledger.RegionState), and the live catalog version if it already holds
    exactly this state (else None: steps 4 and 5 have to run)."""
    from .assets._steps import glacier_states
    from .assets.publish import catalog_texts, publication_record, publication_settings
    from .publication import live_version

    state = glacier_states(store, region, igm, inventory)
    live = live_version(store.catalog_path())
    if live is not None and publication_record(store).get("fingerprint") == \
            state.publication_fingerprint(*publication_settings(store, catalog_texts(store, spec))):
        return state, live
    return state, None
