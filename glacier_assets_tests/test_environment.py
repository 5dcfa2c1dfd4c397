"""One environment holds IGM (hydra + omegaconf) and Dagster (antlr 4.13 selection parser).

hydra-core 1.3 pins antlr4-python3-runtime 4.9, which breaks Dagster's selection parser
(`TypeError: ord()`); hydra-core 1.4.0rc3 and omegaconf 2.4.1rc1 vendor their own antlr. These
tests fail if either side breaks; test_cli.py runs the real `dagster asset materialize --select`
and test_chain.py / test_hef.py real IGM runs in this same environment.
"""

from importlib.metadata import version
from pathlib import Path

import dagster as dg


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
