"""STAC building blocks on small files: header reading, checksums, datetimes, footprints."""

import hashlib

import numpy as np
import pytest
import rasterio

from glacier_assets.science.grids import Grid
from glacier_assets.stac import epoch_datetime, footprint, geotiff_header, multihash_sha256
from glacier_assets.storage import write_cog


def test_geotiff_header_matches_gdal(tmp_path, shared_data):
    path = write_cog(tmp_path / "t.tif", np.ones((7, 11), "float32"),
                     Grid("EPSG:32646", 305750.0, 3714550.0, 25.0, 11, 7), -9999.0, "float32")
    with rasterio.open(path) as src:
        assert geotiff_header(path) == (11, 7, tuple(src.transform)[:6], "EPSG:32646")
    # a geographic DEM has no projected EPSG key: the caller falls back to GDAL
    assert geotiff_header(shared_data / "oggm_hef" / "hef_srtm.tif") is None
    (tmp_path / "x.tif").write_bytes(b"not a tiff")
    assert geotiff_header(tmp_path / "x.tif") is None


def test_checksum_datetime_footprint(tmp_path):
    (tmp_path / "f").write_bytes(b"glacier")
    assert multihash_sha256(tmp_path / "f") == "1220" + hashlib.sha256(b"glacier").hexdigest()
    assert epoch_datetime(1965) == "1965-01-01T00:00:00Z"
    geom, bbox = footprint("EPSG:32646", (323400.0, 3702800.0, 324400.0, 3703800.0))
    assert geom["type"] == "Polygon" and geom["coordinates"][0][0] == geom["coordinates"][0][-1]
    assert bbox[0] == pytest.approx(91.10, abs=0.01) and bbox[1] == pytest.approx(33.45, abs=0.01)
