"""Region specs over the real sample data in `../shared/data` (PROVENANCE.md there): the ones the
tests, the benchmarks and README's "your own region" examples use, written in one place."""

from __future__ import annotations

from pathlib import Path


def _write(dest: Path, text: str) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "region.yaml"
    path.write_text(text)
    return path


def hef_region_yaml(shared_data: Path, dest: Path) -> Path:
    """Hintereisferner: its RGI6 outline (2003), SRTM DEM, HISTALP + ERA5 monthly climate."""
    hef = Path(shared_data) / "oggm_hef"
    return _write(dest, f"""
name: hintereisferner
outlines:
  - {{path: {hef}/Hintereisferner_RGI6.shp, role: initial, year_column: BgnDate}}
dem: {{path: {hef}/hef_srtm.tif, year: 2000}}
climate:
  sources:
    - {{path: {hef}/histalp_merged_hef.nc, temperature: temp, precipitation: prcp, elevation: hgt}}
    - path: [{hef}/sel_era5_monthly_t2m_1979-2018.nc, {hef}/sel_era5_monthly_prcp_1979-2018.nc]
      temperature: t2m
      precipitation: tp
      geopotential: z
      invariant_path: {hef}/sel_era5_invariant.nc
  prcp_factor: 2.5
""")


def oetztal_region_yaml(shared_data: Path, dest: Path) -> Path:
    """The Ötztal: 20 touching RGI5 outlines (2003), SRTM DEM, HISTALP monthly climate."""
    data = Path(shared_data) / "oggm_oetztal"
    return _write(dest, f"""
name: oetztal
id_pattern: "^RGI50-\\\\d{{2}}\\\\.\\\\d{{5}}(_d\\\\d{{2}})?$"
outlines:
  - {{path: {data}/rgi_oetztal.shp, role: initial, year_column: BgnDate}}
dem: {{path: {data}/srtm_oetztal.tif}}
climate:
  sources:
    - {{path: {data}/HISTALP_oetztal.nc}}
  prcp_factor: 2.5
""")
