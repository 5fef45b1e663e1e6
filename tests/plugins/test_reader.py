"""Tests for napari_ctinpaint._reader, directly and through napari's open."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import tifffile

pytest.importorskip("napari", reason="the napari plugin needs the napari extra: pip install -e '.[napari]'")

from ctinpaint import save_volume  # noqa: E402
from napari_ctinpaint._reader import get_reader  # noqa: E402


def test_zarr_group_becomes_lazy_image_and_labels_layers(tiny_phantom, tmp_path):
    path = save_volume({"volume": tiny_phantom.volume, "mask": tiny_phantom.mask}, tmp_path / "scan.zarr")
    reader = get_reader(str(path))
    assert reader is not None
    layers = {kwargs["name"]: (data, kind) for data, kwargs, kind in reader(str(path))}
    assert set(layers) == {"volume", "mask"}
    volume, kind = layers["volume"]
    assert kind == "image" and isinstance(volume, da.Array)  # lazy: nothing read yet
    np.testing.assert_array_equal(volume.compute(), tiny_phantom.volume)
    mask, kind = layers["mask"]
    assert kind == "labels" and mask.dtype.kind in "iu"
    np.testing.assert_array_equal(mask.compute() != 0, tiny_phantom.mask)


def test_tiff_and_slice_folder(tiny_phantom, tmp_path):
    tifffile.imwrite(tmp_path / "scan.tif", tiny_phantom.volume)
    [(data, kwargs, kind)] = get_reader(str(tmp_path / "scan.tif"))(str(tmp_path / "scan.tif"))
    assert kind == "image" and kwargs["name"] == "scan"
    np.testing.assert_array_equal(np.asarray(data), tiny_phantom.volume)

    folder = tmp_path / "slices"
    folder.mkdir()
    for i, plane in enumerate(tiny_phantom.volume):
        tifffile.imwrite(folder / f"s{i}.tif", plane)
    [(data, _, _)] = get_reader([str(folder)])([str(folder)])
    np.testing.assert_array_equal(np.asarray(data), tiny_phantom.volume)


def test_declines_what_it_cannot_open(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    assert get_reader(str(tmp_path / "notes.txt")) is None
    assert get_reader(str(tmp_path / "empty")) is None
    assert get_reader(str(tmp_path / "missing.tif")) is None
    assert get_reader([str(tmp_path / "a.tif"), str(tmp_path / "b.tif")]) is None


def test_napari_opens_a_volume_with_the_plugin(make_napari_viewer, tiny_phantom, tmp_path):
    path = save_volume({"volume": tiny_phantom.volume, "mask": tiny_phantom.mask}, tmp_path / "scan.zarr")
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="ctinpaint")
    assert [layer.name for layer in viewer.layers] == ["mask", "volume"]
    assert type(viewer.layers["mask"]).__name__ == "Labels"
    assert viewer.layers["volume"].data.shape == tiny_phantom.volume.shape


def test_a_corrupt_file_raises_an_error_naming_it(tmp_path):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"not a tiff at all")
    with pytest.raises(ValueError, match="broken.tif"):
        get_reader(str(bad))(str(bad))
