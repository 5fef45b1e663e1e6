"""Property-based tests of the public boundary: bad input is refused by name, good input works.

For every generated case a function either returns a correct result (checked
against the input: bit identity outside the mask, masked voxels never sampled,
component counts matching SciPy, statistics of the right shape and dtype) or
raises ``TypeError``/``ValueError`` whose message names the offending argument
(or, for files, the path). Anything else — an exception from deep inside
NumPy, Dask or torch, wrong output, or a case that runs past its deadline —
fails. Inputs: random shapes (zero-size dimensions included), dtypes (bool,
int8..int64, uint64, float16..float64, complex64), NaN/Inf, empty and all-true
masks, masks one pixel from every border, 1-pixel and 10^5-pixel artifacts,
non-contiguous, read-only and big-endian arrays, truncated or corrupted TIFF,
PNG, .npy and Zarr files, and command lines built from valid and invalid
tokens. Generation is derandomized, so CI runs the same cases every time.

The table of cases and outcomes is in ``tests/README.md``; running this file
with ``-s`` prints the current counts.
"""

from __future__ import annotations

import atexit
import collections
import os
import shutil
import tempfile
from pathlib import Path

import dask.array as da
import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from ctinpaint.artifacts import find_artifacts
from ctinpaint.cli import main
from ctinpaint.inpaint import inpaint_volume
from ctinpaint.intensity import IntensityMapping
from ctinpaint.io import open_volume, save_volume
from ctinpaint.models import build_model, config_for
from ctinpaint.patches import PatchSampler
from ctinpaint.sampling import sample_fills
from ctinpaint.train import LoadedModel

DTYPES = ["bool", "int8", "uint8", "int16", "uint16", "int32", "int64", "uint64",
          "float16", "float32", "float64", "complex64"]  # fmt: skip
VOLUME_DTYPES = {"uint8", "uint16", "int16", "float32"}


def _fuzz(examples: int, deadline_ms: int = 5000):
    return settings(
        max_examples=examples, deadline=deadline_ms, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


#: Outcome counts per function, printed at the end of the module (run with -s).
OUTCOMES: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print("\nfuzz outcomes:")
    for function, counts in sorted(OUTCOMES.items()):
        print(f"  {function}: {sum(counts.values())} cases; " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


def _refused(function: str, exc: BaseException, *names: str) -> None:
    """Record a refusal and check it is clean: a documented type, naming an argument."""
    assert isinstance(exc, (TypeError, ValueError)), f"{type(exc).__name__}: {exc}"
    message = str(exc)
    assert any(name in message for name in names), f"{message!r} names none of {names}"
    OUTCOMES[function][f"refused ({type(exc).__name__})"] += 1


def _worked(function: str, label: str = "worked") -> None:
    OUTCOMES[function][label] += 1


# --------------------------------------------------------------------------- arrays


@st.composite
def arrays(draw, *, ndims=(0, 1, 2, 3, 4), max_side=6, dtypes=DTYPES, nonfinite=True):
    """A NumPy array of any dtype, sometimes non-contiguous, read-only or big-endian."""
    ndim = draw(st.sampled_from(ndims))
    shape = tuple(draw(st.integers(0, max_side)) for _ in range(ndim))
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    if dtype.kind == "f" and nonfinite:
        elements = st.floats(width=dtype.itemsize * 8, allow_nan=True, allow_infinity=True)
    elif dtype.kind == "c":
        elements = st.complex_numbers(width=dtype.itemsize * 8, allow_nan=True, allow_infinity=True)
    else:
        elements = None
    arr = draw(hnp.arrays(dtype, shape, elements=elements))
    layout = draw(st.sampled_from(["plain", "reversed", "strided", "read-only", "big-endian"]))
    if layout == "reversed" and arr.ndim:
        arr = arr[..., ::-1]
    elif layout == "strided" and arr.ndim:
        arr = np.repeat(arr, 2, axis=-1)[..., ::2]
    elif layout == "read-only":
        arr.setflags(write=False)
    elif layout == "big-endian" and arr.dtype.itemsize > 1 and arr.dtype.kind in "iufc":
        arr = arr.astype(arr.dtype.newbyteorder(">"))
    return arr


def _equal_bits(a, b) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


@_fuzz(150)
@given(arrays())
def test_open_volume_arrays(arr):
    before = arr.copy()
    try:
        vol = open_volume(arr, name="volume")
    except Exception as exc:
        _refused("open_volume (arrays)", exc, "volume")
        assert arr.dtype.name not in VOLUME_DTYPES or arr.ndim not in (2, 3)
        return
    assert arr.dtype.newbyteorder("=").name in VOLUME_DTYPES and arr.ndim in (2, 3)
    expected = arr.reshape((1,) * (3 - arr.ndim) + arr.shape)
    got = vol.compute()
    assert got.dtype == expected.dtype.newbyteorder("=") and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    assert _equal_bits(arr, before)
    _worked("open_volume (arrays)")


# --------------------------------------------------------------------------- damaged files

_FORMATS = ["tif", "tif-zlib", "npy", "png", "zarr", "zarr-v2"]


def _write(fmt: str, folder: Path, data: np.ndarray) -> tuple[Path, list[Path]]:
    """Write ``data``; returns the path to open and the files whose damage matters."""
    import imageio.v3 as iio
    import tifffile
    import zarr

    if fmt.startswith("tif"):
        path = folder / "v.tif"
        tifffile.imwrite(path, data, photometric="minisblack", compression="zlib" if fmt == "tif-zlib" else None)
        return path, [path]
    if fmt == "npy":
        path = folder / "v.npy"
        np.save(path, data)
        return path, [path]
    if fmt == "png":
        path = folder / "v.png"
        iio.imwrite(path, data[0])
        return path, [path]
    path = folder / "v.zarr"
    if fmt == "zarr":
        save_volume(data, path, chunks=(1, *data.shape[1:]))
    else:
        z = zarr.create_array(store=str(path), shape=data.shape, chunks=(1, *data.shape[1:]), dtype=data.dtype,
                              zarr_format=2)
        z[:] = data
    return path, sorted(p for p in path.rglob("*") if p.is_file())


@_fuzz(120, deadline_ms=10000)
@given(
    fmt=st.sampled_from(_FORMATS),
    damage=st.sampled_from(["truncate", "flip", "garbage", "empty"]),
    which=st.integers(0, 100),
    where=st.floats(0.0, 0.999),
    seed=st.integers(0, 2**16),
)
def test_open_volume_damaged_files(fmt, damage, which, where, seed):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 60000, (3, 24, 24)).astype(np.uint16)
    if fmt == "png":
        data = data[:1].astype(np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        path, files = _write(fmt, Path(folder), data)
        target = files[which % len(files)]
        raw = target.read_bytes()
        at = int(where * len(raw))
        if damage == "truncate":
            target.write_bytes(raw[:at])
        elif damage == "flip":
            target.write_bytes(raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1:] if raw else b"\xff")
        elif damage == "garbage":
            target.write_bytes(rng.integers(0, 256, max(len(raw), 16)).astype(np.uint8).tobytes())
        else:
            target.write_bytes(b"")
        function = f"open_volume ({fmt} file)"
        try:
            got = open_volume(path).compute()
        except Exception as exc:
            _refused(function, exc, str(path), "source")
            return
        if got.shape == data.shape and got.dtype == data.dtype and np.array_equal(got, data):
            _worked(function, "read unchanged (damage outside the data)")
            return
        # Formats without checksums cannot tell a flipped data byte from a real value; metadata
        # flips (a digit of the shape or dtype, a Zarr fill value over a lost chunk) read as another
        # well-formed volume. Anything else read "successfully" is a failure.
        assert damage == "flip" or (damage in ("garbage", "empty", "truncate") and fmt.startswith("zarr") and target.name not in ("zarr.json", ".zarray", ".zgroup", ".zattrs")), (fmt, damage, target.name)
        checked = fmt == "zarr" and target.parent.name != "v.zarr" and not target.name.endswith("json")
        assert not (checked and damage == "flip"), "a flipped byte in a checksummed chunk was not detected"
        _worked(function, "read as other values (no checksum in the format)" if damage == "flip" else "missing chunk read as fill value")


# --------------------------------------------------------------------------- find_artifacts

_SPECIAL_MASKS = ["random", "empty", "all", "frame-1px-in", "one-pixel", "corners"]


@st.composite
def masks(draw, *, max_side=12):
    kind = draw(st.sampled_from(_SPECIAL_MASKS))
    arr = draw(arrays(ndims=(1, 2, 3, 4), max_side=max_side, nonfinite=False))
    if kind == "random" or arr.ndim not in (2, 3) or arr.size == 0:
        return arr
    out = np.zeros(arr.shape, arr.dtype)
    plane = out if out.ndim == 2 else out[draw(st.integers(0, out.shape[0] - 1))]
    one = np.ones((), arr.dtype) if arr.dtype != bool else True
    if kind == "all":
        out[...] = one
    elif kind == "frame-1px-in" and min(plane.shape) >= 3:
        plane[1, 1:-1] = plane[-2, 1:-1] = plane[1:-1, 1] = plane[1:-1, -2] = one
    elif kind == "one-pixel":
        plane[draw(st.integers(0, plane.shape[0] - 1)), draw(st.integers(0, plane.shape[1] - 1))] = one
    elif kind == "corners":
        plane[0, 0] = plane[-1, -1] = plane[0, -1] = plane[-1, 0] = one
    return out


def _check_artifacts(mask, artifacts, axis, connectivity):
    vol = mask.reshape((1,) * (3 - mask.ndim) + mask.shape)
    planes = np.moveaxis(vol, axis, 0)
    assert [a.id for a in artifacts] == list(range(1, len(artifacts) + 1))
    assert sum(a.pixels for a in artifacts) == int(np.count_nonzero(vol))
    for a in artifacts:
        r0, c0, r1, c1 = a.bbox
        assert 0 <= r0 < r1 <= planes.shape[1] and 0 <= c0 < c1 <= planes.shape[2]
        assert a.pixel_mask(planes[a.slice]).sum() == a.pixels
    if vol.dtype == bool:
        structure = ndimage.generate_binary_structure(2, connectivity)
        expected = sum(ndimage.label(p, structure=structure)[1] for p in planes)
        assert len(artifacts) == expected


@_fuzz(150)
@given(masks(), st.sampled_from([0, 1, 2, -1, 3, True, 1.0]), st.sampled_from([1, 2, 0, 3, "2"]))
@example(np.ones((1, 320, 320), bool), 0, 2)  # one artifact of 102,400 pixels
@example(np.pad(np.ones((1, 1, 1), bool), ((0, 0), (5, 5), (5, 5))), 0, 1)  # one pixel, 5 from every border
def test_find_artifacts(mask, axis, connectivity):
    before = mask.copy()
    try:
        artifacts = find_artifacts(mask, axis=axis, connectivity=connectivity)
    except Exception as exc:
        _refused("find_artifacts", exc, "mask", "axis", "connectivity")
        return
    _check_artifacts(mask, artifacts, axis % 3, connectivity)
    assert _equal_bits(mask, before)
    _worked("find_artifacts")


def test_find_artifacts_on_a_lazy_mask_with_a_zero_size_dimension():
    assert find_artifacts(da.zeros((0, 5, 5), dtype=bool, chunks=1)) == []


# --------------------------------------------------------------------------- PatchSampler


def _one_bad(data, spec: dict) -> dict:
    """Every argument drawn from its valid values, except (in most cases) one drawn from its invalid ones.

    Drawing each argument from valid and invalid values alike would make nearly every case invalid
    in some argument, and the valid paths would hardly be tried.
    """
    names = [name for name, (_, invalid) in spec.items() if invalid]
    bad = data.draw(st.sampled_from([None] * (len(names) // 2 + 1) + names), label="invalid argument")
    return {name: data.draw(st.sampled_from(invalid if name == bad else valid), label=name)
            for name, (valid, invalid) in spec.items()}


_SAMPLER_SPEC = {
    "shape": ([(1, 24, 24), (2, 20, 16), (3, 12, 24), (1, 8, 9)], [(0, 24, 24), (2, 7, 24), (1, 24, 0), (2, 0, 0)]),
    "dtype": (["uint16", "float32", "uint8", "int16"], ["bool", "int8", "int32", "int64", "uint64", "float16", "float64",
                                                        "complex64"]),
    "mask_kind": (["none", "random", "frame", "all"], ["float", "wrong-shape"]),
    "nonfinite": (["none", "nan", "inf", "all-nan"], []),
    "patch": ([8], [2, 1, 30, 8.0, True]),
    "hole": ([4, 6], [0, 8, 12, -1]),
    "batch_size": ([1, 3], [0, -1, 2.5, 10**13]),
    "axes": ([(0,), (-3,), (0, 1, 2)], [(0, 0), (3,), (), "0"]),
    "nan_policy": (["raise", "mask"], ["ignore", None]),
    "seed": ([0, 5, 99], [-1, 1.5]),
}


@_fuzz(120, deadline_ms=10000)
@given(st.data())
def test_patch_sampler_fuzz(data):
    _check_patch_sampler(**_one_bad(data, _SAMPLER_SPEC))


def _check_patch_sampler(shape, dtype, mask_kind, nonfinite, patch, hole, batch_size, axes, nan_policy, seed):
    rng = np.random.default_rng(abs(int(seed)))
    vol = (rng.random(shape) * 100).astype(dtype)
    if np.dtype(dtype).kind in "fc" and vol.size:
        if nonfinite == "nan":
            vol.flat[rng.integers(0, vol.size)] = np.nan
        elif nonfinite == "inf":
            vol.flat[rng.integers(0, vol.size)] = np.inf
        elif nonfinite == "all-nan":
            vol[...] = np.nan
    mask = None
    if mask_kind == "random":
        mask = rng.random(shape) < 0.05
    elif mask_kind == "all":
        mask = np.ones(shape, bool)
    elif mask_kind == "frame" and shape[0] > 0 and min(shape[1:]) >= 3:
        mask = np.zeros(shape, bool)
        mask[:, 1, :] = mask[:, -2, :] = mask[:, :, 1] = mask[:, :, -2] = True
    elif mask_kind == "float":
        mask = np.zeros(shape, np.float32)
    elif mask_kind == "wrong-shape":
        mask = np.zeros((shape[0], shape[1] + 1, shape[2]), bool)
    names = ("volume", "mask", "patch", "hole", "batch_size", "axes", "nan_policy", "seed")
    try:
        sampler = PatchSampler(vol, mask=mask, patch=patch, hole=hole, batch_size=batch_size, axes=axes,
                               nan_policy=nan_policy, seed=seed)
        batch = next(iter(sampler))
    except Exception as exc:
        _refused("PatchSampler", exc, *names)
        return
    assert batch.x.shape == (batch_size, 1, patch, patch) and batch.x.dtype == np.float32
    assert np.isfinite(batch.x).all()
    bad = np.zeros(shape, bool) if mask is None else mask != 0
    if vol.dtype.kind == "f":
        bad |= ~np.isfinite(vol)
    for (axis, s, r, c), x in zip(batch.origin, batch.x[:, 0], strict=True):
        plane = np.moveaxis(vol, axis, 0)[s, r:r + patch, c:c + patch]
        assert not np.moveaxis(bad, axis, 0)[s, r:r + patch, c:c + patch].any()
        np.testing.assert_array_equal(x, plane.astype(np.float32))
    _worked("PatchSampler")


# --------------------------------------------------------------------------- sample_fills and inpaint_volume

_CONFIG = config_for("unet", width=4, patch=16, hole=8)


def _tiny_model():
    torch.manual_seed(0)
    return build_model(_CONFIG).eval()


_MODEL = _tiny_model()


_FILLS_SPEC = {
    "n": ([0, 1, 3], []),
    "size": ([16], [15, 32]),
    "dtype": (["float32", "float64", "uint8", "int64", "float16"], ["bool", "complex64"]),
    "mask_kind": (["box", "none", "all", "random", "border", "float-mask"], ["complex-mask"]),
    "nonfinite": (["none", "unknown"], ["known"]),
    "layout": (["plain", "channel", "non-contiguous", "read-only"], ["5d", "nested-list"]),
    "n_samples": ([2, 3, 5], [1, 0, -4, 2.0, True]),
    "quantiles": ([(), (0.5,), (0.025, 0.975)], [(0.0,), (float("nan"),), "0.5", 0.5]),
    "seed": ([0, 7, -3, None], [1.5, [1, 2, 3, 4, 5]]),
    "batch": ([None, 1, 7], [0, -1, 1.5]),
}


@_fuzz(150)
@given(st.data())
def test_sample_fills_fuzz(data):
    _check_sample_fills(**_one_bad(data, _FILLS_SPEC))


def _check_sample_fills(n, size, dtype, mask_kind, nonfinite, layout, n_samples, quantiles, seed, batch):
    rng = np.random.default_rng(n)
    win = (rng.random((n, size, size))).astype(dtype)
    masks = np.zeros(win.shape, bool)
    if mask_kind == "box":
        masks[:, 5:11, 5:11] = True
    elif mask_kind == "all":
        masks[...] = True
    elif mask_kind == "random":
        masks = rng.random(win.shape) < 0.3
    elif mask_kind == "border":
        masks[:, 1, :] = masks[:, -2, :] = True
    elif mask_kind == "float-mask":
        masks = (rng.random(win.shape) < 0.3).astype(np.float16)
    elif mask_kind == "complex-mask":
        masks = masks.astype(np.complex64)
    if win.dtype.kind == "f" and win.size:
        if nonfinite == "unknown" and np.asarray(masks).any():
            win[np.asarray(masks) != 0] = np.nan
        elif nonfinite == "known":
            win[:, 0, 0] = np.inf
    if layout == "channel":
        win, masks = win[:, None], masks[:, None]
    elif layout == "non-contiguous":
        win, masks = np.repeat(win, 2, axis=-1)[..., ::2], np.repeat(masks, 2, axis=-1)[..., ::2]
    elif layout == "read-only":
        win.setflags(write=False)
        masks.setflags(write=False)
    elif layout == "5d":
        win, masks = win[:, None, None], masks[:, None, None]
    elif layout == "nested-list":
        win = [[["x"] * size] * size] * max(n, 1)
    if isinstance(seed, list) and len(seed) != 5:
        seed = list(range(n))
    before = np.array(win, copy=True), masks.copy()
    names = ("windows", "masks", "n_samples", "quantiles", "seed", "batch")
    try:
        stats = sample_fills(_MODEL, win, masks, n_samples=n_samples, quantiles=quantiles, seed=seed, batch=batch)
    except Exception as exc:
        _refused("sample_fills", exc, *names)
        return
    w = np.asarray(win).reshape(n, 16, 16)
    unknown = np.asarray(masks).reshape(n, 16, 16) != 0
    assert stats.mean.shape == stats.std.shape == stats.filled.shape == (n, 16, 16)
    assert stats.mean.dtype == stats.std.dtype == np.float32
    box = np.zeros((16, 16), bool)
    box[4:12, 4:12] = True
    np.testing.assert_array_equal(stats.filled, unknown & box)
    assert np.isfinite(stats.mean[stats.filled]).all() and (stats.std[~stats.filled] == 0).all()
    np.testing.assert_array_equal(stats.mean[~unknown], w[~unknown].astype(np.float32))
    if stats.quantiles is not None:
        assert stats.quantiles.shape == (len(quantiles), n, 16, 16)
    assert _equal_bits(win, before[0]) and _equal_bits(masks, before[1])
    _worked("sample_fills")


_INPAINT_SPEC = {
    "shape": ([(1, 16, 16), (2, 24, 20), (2, 17, 20)], [(0, 16, 16), (2, 8, 20), (1, 16, 0)]),
    "dtype": (["uint16", "float32", "uint8"], ["int64", "float64", "bool"]),
    "model_dtype": (["same"], ["other"]),
    "mask_kind": (["random", "empty", "all", "frame-1px-in", "one-pixel", "labels"], ["float", "wrong-shape"]),
    "nonfinite": (["none", "nan", "inf-in-mask"], []),
    "nan_policy": (["raise", "mask"], ["drop"]),
    "axis": ([0, 0, 1, 2, -3], [3, 1.0]),
    "n_samples": ([2, 3], [1, "2"]),
    "quantiles": ([(), (0.5,)], [(1.5,), 0.5, "0.5"]),
    "slab": ([None, 1], [0, -2]),
    "seed": ([0, 7], [1.5]),
}


@_fuzz(100, deadline_ms=10000)
@given(st.data())
def test_inpaint_volume_fuzz(data):
    _check_inpaint_volume(**_one_bad(data, _INPAINT_SPEC))


def _check_inpaint_volume(shape, dtype, model_dtype, mask_kind, nonfinite, nan_policy, axis, n_samples, quantiles,
                          slab, seed):
    rng = np.random.default_rng(abs(int(seed)))
    vol = (rng.random(shape) * 200).astype(dtype)
    mask = np.zeros(shape, bool)
    if min(shape) > 0:
        if mask_kind == "random":
            mask = rng.random(shape) < 0.04
        elif mask_kind == "all":
            mask[...] = True
        elif mask_kind == "frame-1px-in" and min(shape[1:]) >= 3:
            mask[:, 1, 1:-1] = mask[:, -2, 1:-1] = mask[:, 1:-1, 1] = mask[:, 1:-1, -2] = True
        elif mask_kind == "one-pixel":
            mask[0, shape[1] // 2, shape[2] - 1] = True
        elif mask_kind == "labels":
            mask = (rng.random(shape) < 0.04) * rng.integers(-3, 2**40, shape)
        elif mask_kind == "float":
            mask = mask.astype(np.float32)
        elif mask_kind == "wrong-shape":
            mask = np.zeros((shape[0] + 1, *shape[1:]), bool)
        if vol.dtype.kind == "f":
            if nonfinite == "nan":
                vol[0, 0, 0] = np.nan
            elif nonfinite == "inf-in-mask" and np.asarray(mask).any():
                vol[np.asarray(mask) != 0] = np.inf
    trained_on = dtype if dtype in VOLUME_DTYPES and model_dtype == "same" else ("int16" if dtype == "uint16" else "uint16")
    model = LoadedModel(_MODEL, IntensityMapping(low=0.0, high=200.0, dtype=trained_on), {"step": 0})
    before = vol.copy(), np.asarray(mask).copy()
    names = ("volume", "mask", "axis", "n_samples", "quantiles", "slab", "nan_policy", "seed")
    try:
        result = inpaint_volume(vol, mask, model, n_samples=n_samples, axis=axis, quantiles=quantiles, slab=slab,
                                nan_policy=nan_policy, seed=seed)
        out = result.inpainted.compute()
        std = result.std.compute()
    except Exception as exc:
        _refused("inpaint_volume", exc, *names)
        return
    unknown = np.asarray(mask) != 0
    if vol.dtype.kind == "f":
        unknown |= ~np.isfinite(vol)
    assert out.dtype == vol.dtype and out.shape == vol.shape and std.dtype == np.float32
    assert _equal_bits(out[~unknown], vol[~unknown])  # outside the mask: the input, bit for bit
    assert (std[~unknown] == 0).all() and np.isfinite(std).all()
    filled = [r for r in result.report if r["status"] == "filled"]
    if filled:
        assert np.isfinite(out).all() or vol.dtype.kind != "f" or (~np.isfinite(out) <= unknown).all()
    assert _equal_bits(vol, before[0]) and _equal_bits(np.asarray(mask), before[1])
    _worked("inpaint_volume")


# --------------------------------------------------------------------------- the command line

_WORK = Path(tempfile.mkdtemp(prefix="ctinpaint-fuzz-cli-"))
atexit.register(shutil.rmtree, _WORK, ignore_errors=True)  # made at import, so no fixture can clean it
_GOOD = _WORK / "good.zarr"
save_volume({"volume": np.zeros((2, 40, 40), np.uint16), "mask": np.zeros((2, 40, 40), bool)}, _GOOD)
(_WORK / "junk.tif").write_bytes(os.urandom(64))

_VALUES = st.sampled_from(["0", "-1", "1", "3", "40", "10000000", "1e400", "nan", "inf", "-inf", "0.5", "x", "",
                           "..", "../..", "@args.txt", "__import__('os').system('touch pwned')", "--", "-", "\x00"])
_PATHS = st.sampled_from([str(_GOOD), str(_WORK / "junk.tif"), str(_WORK / "missing.zarr"), str(_WORK), "/dev/null",
                          str(_WORK / "out.zarr"), str(_GOOD / "volume"), "../../etc"])
_OPTIONS = {
    "phantom": ["--shape", "--artifacts", "--dtype", "--seed", "--no-rings", "--overwrite"],
    "info": ["--key", "--level", "--mask", "--axis", "--hole"],
    "inpaint": ["--mask", "--model", "--out", "--key", "--mask-key", "--samples", "--axis", "--quantiles",
                "--nan-policy", "--workers", "--device", "--seed", "--overwrite"],
    "evaluate": ["--model", "--key", "--mask", "--holes", "--hole-shape", "--samples", "--slices", "--json",
                 "--device", "--seed"],
}


#: Plausible values per option, valid and invalid; junk from _VALUES is mixed in now and then.
_OPTION_VALUES = {
    "--artifacts": ["1", "2", "0", "-1"], "--dtype": ["uint8", "uint16", "float32", "int64"],
    "--seed": ["0", "3", "-1"], "--key": ["volume", "mask", "missing", "../x", "/volume"],
    "--level": ["0", "1", "-1"], "--axis": ["0", "1", "2", "3", "-1"], "--hole": ["18", "4", "0", "-1"],
    "--mask-key": ["mask", "volume", "x"], "--samples": ["2", "4", "1", "0", "-5"],
    "--quantiles": ["0.5", "0.025", "1.5", "nan"], "--nan-policy": ["raise", "mask", "drop"],
    "--workers": ["1", "2", "0"], "--device": ["cpu", "auto", "cuda:9", "tpu"], "--holes": ["2", "0", "-1"],
    "--hole-shape": ["square", "random", "x"], "--slices": ["0", "1", "5", "-1"], "--steps": ["1", "0"],
    "--minutes": ["0.1", "nan"], "--help-me": ["x"],
}


@st.composite
def command_lines(draw):
    command = draw(st.sampled_from([*_OPTIONS, "info", "info", "phantom", "train", "bogus"]))  # no demo: minutes
    argv = [command]
    if command == "phantom":  # always a --shape: the default one takes seconds to build
        argv += [str(_WORK / f"p{draw(st.integers(0, 3))}.zarr"), "--artifacts", "2", "--shape"]
        argv += [draw(st.sampled_from(["2", "1", "16", "40", "0", "-4", "100000", "x"])) for _ in range(3)]
    elif command in ("info", "inpaint", "evaluate"):
        argv.append(draw(_PATHS))
    elif command == "train":  # only with inputs that cannot start a (long) training run
        argv += [str(_WORK / "missing.zarr"), "--out", str(_WORK / "run")]
    for _ in range(draw(st.integers(0, 4))):
        option = draw(st.sampled_from(_OPTIONS.get(command, ["--steps", "--minutes", "--help-me"])))
        if option == "--shape":  # given once, above
            continue
        argv.append(option)
        if option in ("--no-rings", "--overwrite"):
            continue
        if draw(st.integers(0, 5)) == 0:
            argv.append(draw(_VALUES))
        elif option in ("--mask", "--model", "--out", "--json"):
            argv.append(draw(_PATHS))
        else:
            argv.append(draw(st.sampled_from(_OPTION_VALUES[option])))
    return argv


@_fuzz(150, deadline_ms=20000)
@given(command_lines())
def test_command_line_arguments(argv):
    cwd = os.getcwd()
    os.chdir(_WORK)  # relative outputs (and any "pwned" file) land here
    try:
        try:
            status = main(argv)
        except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
            status = exc.code
            assert status in (0, 2), argv
            OUTCOMES["command line"][f"argparse exit {status}"] += 1
            return
    finally:
        os.chdir(cwd)
    assert status in (0, 1, 2), (argv, status)
    assert not (_WORK / "pwned").exists()
    OUTCOMES["command line"][{0: "worked", 1: "refused (OSError, exit 1)", 2: "refused (exit 2)"}[status]] += 1


# --------------------------------------------------------------------------- the plugin's shape marking

_VERTEX = st.floats(-8, 16, allow_nan=False) | st.sampled_from([float("nan"), float("inf"), -1e18, 1e18])


@_fuzz(150)
@given(
    shapes=st.lists(st.lists(st.tuples(_VERTEX, _VERTEX, _VERTEX), min_size=0, max_size=5), max_size=3),
    kinds=st.lists(st.sampled_from(["rectangle", "polygon", "ellipse", "line", None]), max_size=3),
    flat=st.booleans(),
    volume_shape=st.sampled_from([(4, 9, 9), (1, 16, 12), (4, 0, 5), (4, 9), (4, -1, 9), (2.5, 9, 9)]),
    axis=st.sampled_from([0, 1, 2, -1, 3, "0", True]),
    extend=st.sampled_from([0, 1, 3, -1, 1.5, True]),
)
def test_plugin_shapes_to_mask(shapes, kinds, flat, volume_shape, axis, extend):
    # The widget turns the shapes drawn in napari into the mask it passes to ctinpaint.
    marking = pytest.importorskip("napari_ctinpaint._marking")
    if flat and isinstance(axis, int) and not isinstance(axis, bool) and -3 <= axis <= 2:
        # Mostly shapes really drawn on one slice: every vertex shares the slider coordinate.
        shapes = [[tuple(v[0] if k == axis % 3 else c for k, c in enumerate(vertex)) for vertex in shape]
                  for shape in shapes for v in [shape[0] if shape else (0, 0, 0)]]
    kinds = (kinds + ["polygon"] * len(shapes))[: len(shapes)] if flat else kinds
    try:
        mask = marking.shapes_to_mask([np.array(s, float).reshape(-1, 3) for s in shapes], kinds, volume_shape,
                                      axis=axis, extend=extend)
    except Exception as exc:
        _refused("plugin shapes_to_mask", exc, "shapes", "shape_types", "axis", "extend", "volume_shape")
        return
    assert mask.dtype == bool and mask.shape == tuple(volume_shape)
    _worked("plugin shapes_to_mask")
