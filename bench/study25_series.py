"""Issue 25 study: a simulation's calibration, area/volume by decade, mass balance vs WGMS (HEF)."""
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from glacier_assets.simulation_file import SimulationFile  # noqa: E402

WGMS = Path(__file__).resolve().parents[2] / "shared/data/oggm_hef/mbdata_WGMS-00491.csv"
for path in sys.argv[1:]:
    s = SimulationFile(path).load()
    cal = s.calibration
    a, v, mb = s.yearly["area_km2"], s.yearly["volume_km3"], s.yearly["mass_balance_mwe"]
    ys = [y for y in (1930, 1945, 1960, 1975, 1990, 2004, 2020) if y in a.index]
    print(Path(path).stem, "d_ela", [r["d_ela_m"] for r in cal], "model years", s.attrs.get("model_years"))
    print("   area", " ".join(f"{y}:{a[y]:.2f}" for y in ys))
    print("   vol ", " ".join(f"{y}:{v[y]:.3f}" for y in ys))
    if s.attrs["glacier_id"] == "RGI60-11.00897":
        w = pd.read_csv(WGMS).set_index("YEAR").ANNUAL_BALANCE / 1000
        both = pd.concat([mb, w], axis=1).dropna().loc[1953:2019]
        print(f"   mb 1953-2019 sim {both.iloc[:, 0].mean():+.2f} WGMS {both.iloc[:, 1].mean():+.2f} "
              f"r {both.corr().iloc[0, 1]:.2f}; spin-up 1930-59 mean {mb.loc[1930:1959].mean():+.2f}")
