"""The DEM as users hold it: several tiles or a VRT, and a DEM that covers the glacier and a margin
but not the whole model domain (Hintereisferner, real SRTM; no IGM)."""

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from glacier_assets.errors import GlacierError
from glacier_assets.inventory.examples import hef_region_yaml
from glacier_assets.inventory.outlines import build_inventory
from glacier_assets.inventory.region import DemSource, load_region_spec
from glacier_assets.steps.domain import domain_layout, make_domain, read_dem

GID = "RGI60-11.00897"


def _crop(src_path, dst_path, window: Window) -> None:
    with rasterio.open(src_path) as src:
        profile = {**src.profile, "width": window.width, "height": window.height,
                   "transform": src.window_transform(window)}
        data = src.read(1, window=window)
    with rasterio.open(dst_path, "w", **profile) as dst:
        dst.write(data, 1)


@pytest.fixture
def hef(shared_data, tmp_path):
    spec = load_region_spec(hef_region_yaml(shared_data, tmp_path))
    inv = build_inventory(spec.outlines, spec.id_pattern).outlines
    return spec, inv, shared_data / "oggm_hef" / "hef_srtm.tif"


def _with_dem(spec, **dem):
    return spec.model_copy(update={"dem": DemSource(**dem)})


def test_tiles_and_a_vrt_give_the_dem_of_one_file(hef, tmp_path):
    spec, inv, srtm = hef
    _, grid, _ = domain_layout(GID, inv)
    whole, _ = read_dem(spec, grid, GID)
    with rasterio.open(srtm) as src:
        h, w = src.height, src.width
    _crop(srtm, tmp_path / "west.tif", Window(0, 0, w // 2 + 3, h))  # tiles overlap by a few cells
    _crop(srtm, tmp_path / "east.tif", Window(w // 2 - 3, 0, w - (w // 2 - 3), h))
    tiled, filled = read_dem(_with_dem(spec, path=(tmp_path / "west.tif", tmp_path / "east.tif")), grid, GID)
    assert filled == 0
    np.testing.assert_allclose(tiled, whole, atol=1e-6)
    vrt = tmp_path / "srtm.vrt"
    vrt.write_text(f"""<VRTDataset rasterXSize="{w}" rasterYSize="{h}">
  <SRS>EPSG:4326</SRS>
  <GeoTransform>{", ".join(map(str, rasterio.open(srtm).transform.to_gdal()))}</GeoTransform>
  <VRTRasterBand dataType="Float32" band="1">
    <SimpleSource><SourceFilename relativeToVRT="1">west.tif</SourceFilename><SourceBand>1</SourceBand>
      <SrcRect xOff="0" yOff="0" xSize="{w // 2 + 3}" ySize="{h}"/><DstRect xOff="0" yOff="0" xSize="{w // 2 + 3}" ySize="{h}"/></SimpleSource>
    <SimpleSource><SourceFilename relativeToVRT="1">east.tif</SourceFilename><SourceBand>1</SourceBand>
      <SrcRect xOff="0" yOff="0" xSize="{w - (w // 2 - 3)}" ySize="{h}"/><DstRect xOff="{w // 2 - 3}" yOff="0" xSize="{w - (w // 2 - 3)}" ySize="{h}"/></SimpleSource>
  </VRTRasterBand>
</VRTDataset>""")
    from_vrt, _ = read_dem(_with_dem(spec, path=vrt), grid, GID)
    np.testing.assert_allclose(from_vrt, whole, atol=1e-3)


def _around_the_glacier(inv, srtm, dst, margin_deg: float) -> None:
    """The SRTM cut to the glacier's outline and `margin_deg` around it."""
    west, south, east, north = inv[inv["glacier_id"] == GID].total_bounds
    with rasterio.open(srtm) as src:
        win = src.window(west - margin_deg * 1.45, south - margin_deg, east + margin_deg * 1.45, north + margin_deg)
    _crop(srtm, dst, win.round_offsets().round_lengths())


def test_a_dem_with_a_1km_margin_is_filled_beyond_it_and_flagged(hef, tmp_path):
    spec, inv, srtm = hef
    _around_the_glacier(inv, srtm, tmp_path / "tight.tif", 0.009)  # ~1 km; the domain's border is 1.5 km
    figures = make_domain(GID, inv, _with_dem(spec, path=tmp_path / "tight.tif"), tmp_path / "domain.nc")
    assert 5 < figures["dem_filled_pct"] < 60
    assert figures["dem_flag"].startswith("the DEM covers ") and "beyond the glacier's 300 m margin, was filled" \
        in figures["dem_flag"]
    full = make_domain(GID, inv, spec, tmp_path / "full.nc")
    assert full["dem_flag"] == "" and full["dem_void_cells_filled"] == 0
    assert figures["volume_km3"] == pytest.approx(full["volume_km3"], rel=0.02)  # the glacier's own DEM is unchanged


def test_the_domain_border_follows_the_glacier_size_or_the_spec(hef):
    spec, inv, _ = hef
    rows = inv[inv["glacier_id"] == GID]
    assert domain_layout(GID, inv)[1].width - domain_layout(GID, inv, 500.0)[1].width == 2 * (15 - 5)
    big = rows.assign(area_km2=400.0)  # sqrt(400 km2) x 0.2 = 4 km
    from glacier_assets.steps.domain import domain_border_cells
    assert domain_border_cells(rows) == 15 and domain_border_cells(big) == 40 and domain_border_cells(rows, 720) == 8


def test_a_dem_that_misses_part_of_the_glacier_is_named(hef, tmp_path):
    spec, inv, srtm = hef
    west, south, east, north = inv[inv["glacier_id"] == GID].total_bounds
    with rasterio.open(srtm) as src:
        win = src.window(west - 0.05, south - 0.05, (west + east) / 2, north + 0.05)  # the western half only
    _crop(srtm, tmp_path / "half.tif", win.round_offsets().round_lengths())
    with pytest.raises(GlacierError, match=rf"glacier {GID}: the DEM half.tif does not cover the glacier: \d+ % of the "
                                           r"\d+ cells of its outlines and their 300 m margin have no data"):
        make_domain(GID, inv, _with_dem(spec, path=tmp_path / "half.tif"), tmp_path / "domain.nc")


def test_several_dem_files_in_the_spec(shared_data, tmp_path):
    path = hef_region_yaml(shared_data, tmp_path)
    srtm = shared_data / "oggm_hef" / "hef_srtm.tif"
    path.write_text(path.read_text().replace(f"dem: {{path: {srtm}, year: 2000}}",
                                             f"dem: {{path: [{srtm}, {srtm}], min_margin_m: 500}}"))
    spec = load_region_spec(path)
    assert spec.dem.paths == (srtm, srtm) and spec.dem.min_margin_m == 500
