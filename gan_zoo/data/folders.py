"""Folders of image files (any format Pillow reads): single folders and CycleGAN's unpaired trainA/trainB.

Unreadable images are skipped, not fatal: a folder scraped from the web
often holds a few truncated files, and one of them should not stop a training
run. Every loader warns once with the number of files it skipped and the
first few names; a folder with no readable image at all is an error.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .images import ImageData, _check_int, images_from_uint8

__all__ = ["load_image_folder", "load_unpaired", "SkippedImagesWarning"]

_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


class SkippedImagesWarning(UserWarning):
    """Some image files could not be read and were left out."""


def load_image_folder(path, *, size: int | None = None, channels: int | None = None) -> ImageData:
    """All images in one folder (not its subfolders), in name order, unlabelled.

    Parameters
    ----------
    path : str or os.PathLike
        Folder of image files; files whose extension Pillow does not know are ignored.
    size : int, optional
        Centre-crop each image to a square and resize it to ``size`` x
        ``size`` (bicubic). None: keep the images' size, which must then be
        the same for all.
    channels : {1, 3}, optional
        1: grayscale, 3: RGB (alpha dropped). None: 1 when every image is
        grayscale, else 3.

    Returns
    -------
    ImageData
        images float32 (N, channels, H, W) in [-1, 1]; labels None.

    Raises
    ------
    ValueError
        ``path`` is not a folder or holds no readable image; images of
        different sizes with ``size=None``.

    Warns
    -----
    SkippedImagesWarning
        When files could not be decoded; they are left out and counted.
    """
    size, channels = _check_size_channels(size, channels)
    folder = _check_folder(path, "path")
    entries = _scan(folder, "path")
    channels = channels or _channels_of([entries])
    return _decode_folder(folder, entries, size, channels, "path")


def load_unpaired(root, *, size: int | None = None, channels: int | None = None, split: str = "train") -> tuple[ImageData, ImageData]:
    """The two unpaired image sets of a CycleGAN data folder: ``root/trainA`` and ``root/trainB``.

    Parameters
    ----------
    root : str or os.PathLike
        Folder holding ``{split}A/`` and ``{split}B/``.
    size : int, optional
        See :func:`load_image_folder`; with None both sides must have one size.
    channels : {1, 3}, optional
        None: 1 when every image on both sides is grayscale, else 3, so the
        two sides always match.
    split : str, default "train"
        "train" or "test" (the folders ``testA``/``testB``).

    Returns
    -------
    (ImageData, ImageData)
        Domain A and domain B, unlabelled, same channels and size.

    Raises
    ------
    ValueError
        A missing or empty side, or sides of different image sizes.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    size, channels = _check_size_channels(size, channels)
    base = _check_folder(root, "root")
    folders = [base / f"{split}{side}" for side in "AB"]
    for folder in folders:
        if not folder.is_dir():
            raise ValueError(f"root: {base} has no {folder.name}/ folder (expected {split}A/ and {split}B/)")
    entries = [_scan(folder, "root") for folder in folders]
    channels = channels or _channels_of(entries)
    a, b = (_decode_folder(f, e, size, channels, "root") for f, e in zip(folders, entries))
    if a.size != b.size:
        raise ValueError(f"root: {split}A holds {a.size} images but {split}B {b.size}; pass size= to resize both")
    return a, b


def read_picture(path: Path, *, size: int | None, channels: int) -> np.ndarray:
    """One image file as uint8 (H, W) or (H, W, 3), optionally centre-cropped and resized (raises OSError/ValueError)."""
    from PIL import Image

    with Image.open(path) as picture:
        picture.load()
        if picture.mode.startswith("I") or picture.mode == "F":
            # Pillow clips 16-bit and float pixels when converting to 8 bits; scale them instead.
            array = np.asarray(picture, dtype=np.float64)
            top = 65535.0 if picture.mode.startswith("I;16") else max(float(array.max()), 1.0)
            picture = Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
        picture = picture.convert("L" if channels == 1 else "RGB")
        if size is not None:
            w, h = picture.size
            side = min(w, h)
            left, top = (w - side) // 2, (h - side) // 2
            picture = picture.crop((left, top, left + side, top + side))
            picture = picture.resize((size, size), Image.Resampling.BICUBIC)
        return np.asarray(picture, dtype=np.uint8)


def read_pictures(paths: Sequence[Path], *, size: int | None, channels: int) -> tuple[list, list[Path]]:
    """Decode many files in threads; returns (arrays or None per path, paths that failed)."""
    def one(path):
        try:
            return read_picture(path, size=size, channels=channels)
        except (OSError, ValueError, SyntaxError):  # what Pillow raises for damaged files
            return None

    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        arrays = list(pool.map(one, paths, chunksize=64))
    return arrays, [p for p, a in zip(paths, arrays) if a is None]


def warn_skipped(skipped: Sequence[Path], total: int, where: str) -> None:
    """Warn once about unreadable files (count and first names)."""
    if skipped:
        names = ", ".join(p.name for p in skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        warnings.warn(
            f"{where}: skipped {len(skipped)} of {total} image files that could not be read ({names})",
            SkippedImagesWarning,
            stacklevel=3,
        )


def _scan(folder: Path, arg: str) -> list[tuple[Path, str]]:
    """(path, Pillow mode or None when unreadable) of each file with an image extension."""
    from PIL import Image

    known = Image.registered_extensions()
    entries = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.suffix.lower() not in known:
            continue
        try:
            with Image.open(path) as picture:
                mode = picture.mode
        except (OSError, ValueError, SyntaxError):
            mode = None
        entries.append((path, mode))
    if not entries:
        raise ValueError(f"{arg}: no image files in {folder}")
    return entries


def _channels_of(groups) -> int:
    modes = [mode for entries in groups for _, mode in entries if mode is not None]
    return 1 if modes and all(m in _GRAY_MODES for m in modes) else 3


def _decode_folder(folder: Path, entries, size, channels: int, arg: str) -> ImageData:
    paths = [p for p, _ in entries]
    arrays, skipped = read_pictures(paths, size=size, channels=channels)
    warn_skipped(skipped, len(paths), str(folder))
    arrays = [a for a in arrays if a is not None]
    if not arrays:
        raise ValueError(f"{arg}: none of the {len(paths)} image files in {folder} could be read")
    shapes = sorted({a.shape[:2] for a in arrays})
    if len(shapes) > 1:
        raise ValueError(
            f"{arg}: the images in {folder} have different sizes ({', '.join(f'{h}x{w}' for h, w in shapes[:4])}); "
            "pass size= to crop and resize them"
        )
    return ImageData(images_from_uint8(np.stack(arrays)), None, (), str(folder))


def _check_folder(path, arg: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{arg} must be a path, got {type(path).__name__}")
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"{arg}: {folder} is not a folder")
    return folder


def _check_size_channels(size, channels):
    if size is not None:
        size = _check_int(size, "size", minimum=1)
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise ValueError(f"channels must be 1, 3 or None, got {channels!r}")
    return size, channels
