"""Tests for ctinpaint.io: every format and dtype, laziness, atomic writes, errors."""

from __future__ import annotations

import os
import tracemalloc

import dask
import dask.array as da
import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import zarr

from ctinpaint.io import count_nonfinite, open_mask, open_volume, save_volume, source_of

DTYPES = ["uint8", "uint16", "int16", "float32"]


def _volume(dtype, shape=(5, 24, 31), seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(0.3, 0.2, shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("suffix", [".zarr", ".tif"])
def test_round_trip_every_dtype(tmp_path, dtype, suffix):
    vol = _volume(dtype)
    before = vol.copy()
    out = save_volume(vol, tmp_path / f"v{suffix}")
    back = open_volume(out)
    assert isinstance(back, da.Array)
    assert back.shape == vol.shape and back.dtype == vol.dtype
    np.testing.assert_array_equal(back.compute(), vol)
    np.testing.assert_array_equal(vol, before)  # input untouched


@pytest.mark.parametrize("dtype", DTYPES)
def test_2d_input_is_one_slice(tmp_path, dtype):
    image = _volume(dtype, shape=(17, 9))
    assert open_volume(image).shape == (1, 17, 9)
    out = save_volume(image, tmp_path / "img.zarr")
    np.testing.assert_array_equal(open_volume(out).compute()[0], image)


def test_dask_input_keeps_laziness_and_chunks():
    arr = da.zeros((6, 40, 40), dtype=np.uint16, chunks=(2, 20, 20))
    out = open_volume(arr)
    assert out.chunks == arr.chunks
    assert open_volume(arr, chunks=(3, 40, 40)).chunks == ((3, 3), (40,), (40,))


def test_multipage_tiff_written_by_tifffile_reads_page_by_page(tmp_path):
    vol = _volume("uint16", shape=(7, 33, 20))
    tifffile.imwrite(tmp_path / "stack.tif", vol)
    out = open_volume(tmp_path / "stack.tif")
    assert out.chunks[0] == (1,) * 7  # one page per chunk: reading a slice reads one page
    np.testing.assert_array_equal(out[3].compute(), vol[3])


def test_bigtiff_reads(tmp_path):
    vol = _volume("float32", shape=(3, 16, 16))
    tifffile.imwrite(tmp_path / "big.tif", vol, bigtiff=True, photometric="minisblack")
    with tifffile.TiffFile(tmp_path / "big.tif") as tif:
        assert tif.is_bigtiff
    np.testing.assert_array_equal(open_volume(tmp_path / "big.tif").compute(), vol)


def test_pyramidal_tiff_levels(tmp_path):
    vol = _volume("uint8", shape=(2, 64, 64))
    with tifffile.TiffWriter(tmp_path / "pyr.tif") as tif:
        tif.write(vol, subifds=1, photometric="minisblack")
        tif.write(vol[:, ::2, ::2], subfiletype=1, photometric="minisblack")
    assert open_volume(tmp_path / "pyr.tif").shape == (2, 64, 64)
    np.testing.assert_array_equal(open_volume(tmp_path / "pyr.tif", level=1).compute(), vol[:, ::2, ::2])
    with pytest.raises(ValueError, match="level"):
        open_volume(tmp_path / "pyr.tif", level=5)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_slice_folder_sorted_naturally_and_lazy(tmp_path, suffix):
    folder = tmp_path / "slices"
    folder.mkdir()
    vol = _volume("uint8", shape=(12, 20, 22))
    for i, image in enumerate(vol):
        # s2 must come before s10: a plain string sort would put s10 first.
        if suffix == ".png":
            iio.imwrite(folder / f"s{i}.png", image)
        else:
            tifffile.imwrite(folder / f"s{i}.tif", image)
    (folder / "notes.txt").write_text("ignored")
    out = open_volume(folder)
    assert out.shape == vol.shape
    assert out.chunks[0] == (1,) * 12
    np.testing.assert_array_equal(out.compute(), vol)


def test_slice_folder_of_rgb_gray_png(tmp_path):
    folder = tmp_path / "rgb"
    folder.mkdir()
    image = _volume("uint8", shape=(10, 12))
    iio.imwrite(folder / "a1.png", np.stack([image] * 3, axis=-1))
    np.testing.assert_array_equal(open_volume(folder).compute()[0], image)


def test_slice_folder_with_mismatched_slice_fails_naming_file(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    tifffile.imwrite(folder / "s1.tif", np.zeros((8, 8), np.uint8))
    tifffile.imwrite(folder / "s2.tif", np.zeros((9, 8), np.uint8))
    vol = open_volume(folder)  # lazily: only the first slice is read here
    with pytest.raises(ValueError, match="s2.tif"):
        vol.compute()


def test_colour_png_is_refused(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 255
    iio.imwrite(tmp_path / "c.png", rgb)
    with pytest.raises(ValueError, match="colour"):
        open_volume(tmp_path / "c.png")


def test_zarr_v2_store(tmp_path):
    vol = _volume("int16")
    arr = zarr.create_array(store=str(tmp_path / "v2.zarr"), shape=vol.shape, dtype=vol.dtype, chunks=(2, 8, 8), zarr_format=2)
    arr[:] = vol
    out = open_volume(tmp_path / "v2.zarr")
    assert out.chunks[0] == (2, 2, 1)
    np.testing.assert_array_equal(out.compute(), vol)


def test_zarr_group_needs_key_when_ambiguous(tmp_path):
    vol = _volume("uint16")
    path = save_volume({"volume": vol, "mask": vol > 30000}, tmp_path / "g.zarr")
    with pytest.raises(ValueError, match="key=.*'mask', 'volume'|'mask', 'volume'.*key="):
        open_volume(path)
    np.testing.assert_array_equal(open_volume(path, key="volume").compute(), vol)
    np.testing.assert_array_equal(open_mask(path, key="mask").compute(), vol > 30000)
    with pytest.raises(ValueError, match="key"):
        open_volume(path, key="nope")
    # A member array path opens directly too.
    np.testing.assert_array_equal(open_volume(path / "volume").compute(), vol)


def test_zarr_group_with_one_array_needs_no_key(tmp_path):
    vol = _volume("uint8")
    save_volume({"only": vol}, tmp_path / "one.zarr")
    np.testing.assert_array_equal(open_volume(tmp_path / "one.zarr").compute(), vol)


def _write_ome(path, levels, *, axes=("c", "z", "y", "x"), version="0.4"):
    group = zarr.open_group(str(path), mode="w")
    datasets = []
    for i, data in enumerate(levels):
        group.create_array(str(i), data=data, chunks=data.shape)
        datasets.append({"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": [1.0] * data.ndim}]})
    multiscales = [{"axes": [{"name": a} for a in axes], "datasets": datasets, "version": version}]
    if version == "0.5":
        group.attrs["ome"] = {"version": "0.5", "multiscales": multiscales}
    else:
        group.attrs["multiscales"] = multiscales


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_levels(tmp_path, version):
    vol = _volume("uint16", shape=(1, 4, 32, 32))
    _write_ome(tmp_path / "img.ome.zarr", [vol, vol[:, :, ::2, ::2]], version=version)
    out = open_volume(tmp_path / "img.ome.zarr")
    assert out.shape == (4, 32, 32)
    np.testing.assert_array_equal(out.compute(), vol[0])
    np.testing.assert_array_equal(open_volume(tmp_path / "img.ome.zarr", level=1).compute(), vol[0, :, ::2, ::2])
    with pytest.raises(ValueError, match="level"):
        open_volume(tmp_path / "img.ome.zarr", level=2)


def test_ome_zarr_with_several_channels_is_refused(tmp_path):
    _write_ome(tmp_path / "rgb.ome.zarr", [_volume("uint8", shape=(3, 2, 16, 16))])
    with pytest.raises(ValueError, match="channel"):
        open_volume(tmp_path / "rgb.ome.zarr")


def test_npy_is_memory_mapped(tmp_path):
    vol = _volume("float32", shape=(4, 50, 60))
    np.save(tmp_path / "v.npy", vol)
    out = open_volume(tmp_path / "v.npy")
    np.testing.assert_array_equal(out.compute(), vol)
    # The graph holds the memory map, not a copy of the data.
    assert any(isinstance(v, np.memmap) for v in dict(out.__dask_graph__()).values())


def test_big_endian_npy_comes_back_native(tmp_path):
    vol = _volume("uint16").astype(">u2")
    np.save(tmp_path / "be.npy", vol)
    out = open_volume(tmp_path / "be.npy")
    assert out.dtype == np.dtype("uint16") and out.dtype.isnative
    np.testing.assert_array_equal(out.compute(), vol.astype("uint16"))


def test_real_sic_slices_load_as_three_slice_volume(sic_dir):
    vol = open_volume(sic_dir)
    assert vol.shape == (3, 600, 600) and vol.dtype == np.uint8
    first = iio.imread(sorted(sic_dir.glob("*.png"), key=lambda p: int(p.stem[5:]))[0])
    np.testing.assert_array_equal(vol[0].compute(), first)  # slice24 sorts before slice202


# --------------------------------------------------------------------------- laziness


def test_opening_a_2gb_zarr_store_reads_no_chunk(tmp_path):
    path = tmp_path / "big.zarr"
    arr = zarr.create_array(store=str(path), shape=(1024, 1024, 1024), dtype="uint16", chunks=(64, 64, 64), fill_value=0)
    arr[:64, :64, :64] = 7  # one real chunk on disk; the rest is 2 GiB of fill value
    tracemalloc.start()
    vol = open_volume(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert vol.nbytes == 2 * 1024**3
    assert peak < 20 * 2**20  # a whole read would need 2 GiB

    # Count chunk reads through a logging store: opening reads only metadata,
    # and one slice reads exactly the 16 x 16 chunks that intersect it.
    store = zarr.storage.LoggingStore(zarr.storage.LocalStore(str(path), read_only=True), log_level="ERROR")
    node = zarr.open_array(store=store, mode="r")
    metadata_gets = store.counter["get"]
    vol = open_volume(node)
    assert store.counter["get"] == metadata_gets
    assert int(vol[0, :64, :64].max().compute()) == 7
    assert store.counter["get"] == metadata_gets + 1
    vol[5].compute()
    assert store.counter["get"] == metadata_gets + 1 + 256


def test_count_nonfinite():
    vol = np.zeros((3, 4, 5), np.float32)
    vol[0, 0, 0] = np.nan
    vol[2, 3, 4] = -np.inf
    assert count_nonfinite(vol) == 2
    assert count_nonfinite(da.from_array(vol, chunks=(1, 2, 2))) == 2
    assert count_nonfinite(np.zeros((2, 2, 2), np.uint16)) == 0


# --------------------------------------------------------------------------- masks


def test_open_mask_accepts_bool_and_labels():
    labels = np.zeros((2, 6, 6), np.int32)
    labels[0, 1:3, 1:3] = 4
    assert open_mask(labels, shape=(2, 6, 6)).dtype == np.int32
    assert open_mask(labels > 0).dtype == bool


def test_open_mask_errors():
    with pytest.raises(TypeError, match="mask"):
        open_mask(np.zeros((2, 4, 4), np.float32))
    with pytest.raises(ValueError, match="mask shape"):
        open_mask(np.zeros((2, 4, 4), bool), shape=(2, 4, 5))


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("dtype", ["float64", "int32", "bool", "complex64", "int64", "float16"])
def test_unsupported_dtype(dtype):
    with pytest.raises(TypeError, match="source.*dtype"):
        open_volume(np.zeros((2, 3, 4), dtype=dtype))


@pytest.mark.parametrize("shape", [(3,), (2, 3, 4, 5)])
def test_wrong_ndim(shape):
    with pytest.raises(ValueError, match="source.*dimensions"):
        open_volume(np.zeros(shape, np.uint8))


def test_unsupported_source_type():
    with pytest.raises(TypeError, match="source"):
        open_volume([[1, 2], [3, 4]])


def test_missing_path(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        open_volume(tmp_path / "nothing.zarr")


def test_unknown_suffix(tmp_path):
    (tmp_path / "v.txt").write_text("1 2 3")
    with pytest.raises(ValueError, match=r"v\.txt.*unsupported"):
        open_volume(tmp_path / "v.txt")


def test_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="no Zarr store"):
        open_volume(tmp_path)


@pytest.mark.parametrize("name", ["bad.tif", "bad.npy", "bad.png"])
def test_corrupt_files_name_the_path(tmp_path, name):
    good = tmp_path / f"good{os.path.splitext(name)[1]}"
    data = np.arange(4096, dtype=np.uint8).reshape(64, 64)
    if name.endswith(".tif"):
        tifffile.imwrite(good, data)
    elif name.endswith(".npy"):
        np.save(good, data)
    else:
        iio.imwrite(good, data)
    (tmp_path / name).write_bytes(good.read_bytes()[:40])  # truncated
    with pytest.raises(ValueError, match=name):
        open_volume(tmp_path / name).compute()


def test_corrupt_zarr_metadata(tmp_path):
    save_volume(_volume("uint8"), tmp_path / "c.zarr")
    (tmp_path / "c.zarr" / "zarr.json").write_text("{not json")
    with pytest.raises(ValueError, match="c.zarr"):
        open_volume(tmp_path / "c.zarr")


# --------------------------------------------------------------------------- saving


def test_save_refuses_existing_path_unless_overwrite(tmp_path):
    first, second = _volume("uint8", seed=1), _volume("uint8", seed=2)
    out = save_volume(first, tmp_path / "v.zarr")
    with pytest.raises(ValueError, match="already exists"):
        save_volume(second, out)
    np.testing.assert_array_equal(open_volume(out).compute(), first)
    save_volume(second, out, overwrite=True)
    np.testing.assert_array_equal(open_volume(out).compute(), second)
    assert sorted(os.listdir(tmp_path)) == ["v.zarr"]  # no temporary left behind


@pytest.mark.parametrize("suffix", [".zarr", ".tif"])
def test_save_refuses_to_overwrite_its_own_input(tmp_path, suffix):
    out = save_volume(_volume("uint16"), tmp_path / f"in{suffix}")
    before = sorted(p.read_bytes() for p in out.rglob("*") if p.is_file()) if out.is_dir() else out.read_bytes()
    vol = open_volume(out)
    assert source_of(vol + 1) == out.resolve()
    with pytest.raises(ValueError, match="would overwrite the input"):
        save_volume(vol + 1, out, overwrite=True)
    after = sorted(p.read_bytes() for p in out.rglob("*") if p.is_file()) if out.is_dir() else out.read_bytes()
    assert before == after


def test_save_refuses_to_write_inside_its_input_group(tmp_path):
    path = save_volume({"volume": _volume("uint8")}, tmp_path / "g.zarr")
    vol = open_volume(path, key="volume")
    with pytest.raises(ValueError, match="would overwrite the input"):
        save_volume(vol, path / "filled", overwrite=True)


def test_failed_write_leaves_nothing_behind(tmp_path):
    def explode(block):
        raise RuntimeError("disk gone")

    bad = da.zeros((4, 8, 8), np.uint8, chunks=(1, 8, 8)).map_blocks(explode, dtype=np.uint8)
    for name in ["v.zarr", "v.tif"]:
        with pytest.raises(RuntimeError, match="disk gone"):
            save_volume(bad, tmp_path / name)
    assert os.listdir(tmp_path) == []


def test_failed_overwrite_keeps_the_old_output(tmp_path):
    vol = _volume("uint8")
    out = save_volume(vol, tmp_path / "v.zarr")
    bad = da.zeros(vol.shape, np.uint8, chunks=(1, 24, 31)).map_blocks(lambda b: 1 / 0, dtype=np.uint8)
    with pytest.raises(ZeroDivisionError):
        save_volume(bad, out, overwrite=True)
    np.testing.assert_array_equal(open_volume(out).compute(), vol)
    assert os.listdir(tmp_path) == ["v.zarr"]


def test_save_chunks_and_attrs(tmp_path):
    vol = da.from_array(_volume("uint16", shape=(8, 40, 40)), chunks=(3, 40, 40))
    out = save_volume(vol, tmp_path / "c.zarr", chunks=(4, 20, 20), attrs={"note": "x"})
    node = zarr.open_array(str(out), mode="r")
    assert node.chunks == (4, 20, 20)
    assert node.attrs["note"] == "x"
    np.testing.assert_array_equal(node[:], vol.compute())


def test_save_with_distributed_scheduler_threads(tmp_path):
    vol = _volume("float32", shape=(6, 30, 30))
    with dask.config.set(scheduler="threads", num_workers=2):
        out = save_volume(da.from_array(vol, chunks=(1, 15, 15)), tmp_path / "t.zarr")
    np.testing.assert_array_equal(open_volume(out).compute(), vol)


def test_save_bool_mask_to_tiff_as_uint8(tmp_path):
    mask = _volume("uint8") > 128
    out = save_volume(mask, tmp_path / "m.tif")
    back = open_mask(out).compute()
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back.astype(bool), mask)


def test_save_errors(tmp_path):
    vol = _volume("uint8")
    with pytest.raises(ValueError, match="does not exist"):
        save_volume(vol, tmp_path / "missing" / "v.zarr")
    with pytest.raises(ValueError, match="TIFF"):
        save_volume({"a": vol, "b": vol}, tmp_path / "g.tif")
    with pytest.raises(ValueError, match="empty"):
        save_volume({}, tmp_path / "e.zarr")
    with pytest.raises(ValueError, match="name"):
        save_volume({"../up": vol}, tmp_path / "n.zarr")
    with pytest.raises(TypeError, match="data"):
        save_volume([1, 2, 3], tmp_path / "l.zarr")
    with pytest.raises(TypeError, match="dtype"):
        save_volume(np.zeros((2, 2, 2), np.complex64), tmp_path / "c.zarr")
    with pytest.raises(ValueError, match="chunks"):
        save_volume(vol, tmp_path / "k.zarr", chunks=(1, 2))
    assert os.listdir(tmp_path) == []
