"""CelebA in its standard layout, for DCGAN (64x64 faces) and StarGAN (attribute domains).

::

    root/
        img_align_celeba/000001.jpg ...
        list_attr_celeba.txt        # count; 40 attribute names; "000001.jpg -1 1 ..." per image
        list_eval_partition.txt     # optional: "000001.jpg 0" (0 train, 1 val, 2 test)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .files import ImageFiles
from .folders import read_pictures, warn_skipped
from .images import ImageData, _check_int, images_from_uint8

__all__ = ["load_celeba", "read_celeba_attributes"]

_PARTITIONS = {"train": 0, "val": 1, "test": 2}


def read_celeba_attributes(path) -> tuple[tuple[str, ...], list[str], np.ndarray]:
    """Parse ``list_attr_celeba.txt``.

    Returns
    -------
    (names, files, values)
        Attribute names, image file names, and int8 (N, K) values in {-1, 1}.

    Raises
    ------
    ValueError
        A malformed file (the message gives the line).
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) < 2:
        raise ValueError(f"{path}: expected a count line and a line of attribute names")
    names = tuple(lines[1].split())
    if not names:
        raise ValueError(f"{path}: line 2 holds no attribute names")
    files, rows = [], []
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != len(names) + 1 or any(v not in ("1", "-1") for v in fields[1:]):
            raise ValueError(f"{path}, line {number}: expected a file name and {len(names)} values of 1 or -1")
        files.append(fields[0])
        rows.append([int(v) for v in fields[1:]])
    values = np.array(rows, dtype=np.int8).reshape(len(rows), len(names))
    return names, files, values


def load_celeba(
    root,
    *,
    size: int = 64,
    attributes: Sequence[str] | None = None,
    split: str = "train",
    limit: int | None = None,
    lazy: bool = False,
) -> ImageData | ImageFiles:
    """CelebA faces, centre-cropped to a square (178x178 for the aligned images) and resized.

    Parameters
    ----------
    root : str or os.PathLike
        Folder with ``img_align_celeba/`` and ``list_attr_celeba.txt``
        (``list_eval_partition.txt`` optional).
    size : int, default 64
        Output side: 64 for DCGAN, 128 for StarGAN.
    attributes : sequence of str, optional
        Attribute names to keep as labels (StarGAN's domains, e.g.
        ``["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]``).
        None: unlabelled.
    split : {"train", "val", "test", "all"}
        The official partition; without ``list_eval_partition.txt`` only
        "train" and "all" are available and both take every image.
    limit : int, optional
        Keep the first ``limit`` images of the split (in file order). The
        whole aligned set decoded at 64x64 takes 10 GB: use ``limit`` or ``lazy``.
    lazy : bool, default False
        Return :class:`~gan_zoo.data.ImageFiles`, which decodes each batch
        when it is drawn, instead of decoding every image now.

    Returns
    -------
    ImageData or ImageFiles
        images float32 (N, 3, size, size) in [-1, 1]; with ``attributes``,
        labels float32 (N, K) multi-hot (1.0 where the attribute is present)
        and class names = the attributes; else labels None.

    Raises
    ------
    ValueError
        Missing files, unknown attribute names (the valid ones are listed), a
        split without a partition file, or no readable image.

    Warns
    -----
    SkippedImagesWarning
        Images listed in the attribute file that are missing or unreadable
        are left out and counted.
    """
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path, got {type(root).__name__}")
    root = Path(root)
    size = _check_int(size, "size", minimum=1)
    if limit is not None:
        limit = _check_int(limit, "limit", minimum=1)
    if split not in (*_PARTITIONS, "all"):
        raise ValueError(f"split must be one of {[*_PARTITIONS, 'all']}, got {split!r}")
    images_dir, attr_file = root / "img_align_celeba", root / "list_attr_celeba.txt"
    for needed in (images_dir, attr_file):
        if not needed.exists():
            raise ValueError(f"root: {root} has no {needed.name} (expected img_align_celeba/ and list_attr_celeba.txt)")
    names, files, values = read_celeba_attributes(attr_file)
    columns = _attribute_columns(attributes, names)

    keep = np.ones(len(files), dtype=bool)
    partition_file = root / "list_eval_partition.txt"
    if split in _PARTITIONS:
        if partition_file.exists():
            partition = _read_partition(partition_file)
            missing = [f for f in files if f not in partition]
            if missing:
                raise ValueError(f"root: {partition_file.name} has no entry for {missing[0]} (and {len(missing) - 1} more)")
            keep = np.array([partition[f] == _PARTITIONS[split] for f in files], dtype=bool)
        elif split != "train":
            raise ValueError(f"split: {split!r} needs {partition_file}; without it use 'train' or 'all'")
    chosen = np.flatnonzero(keep)[:limit]
    paths = [images_dir / files[i] for i in chosen]
    class_names = tuple(names[c] for c in columns) if columns is not None else ()
    source = f"CelebA {root} ({split})"
    if not isinstance(lazy, bool):
        raise TypeError(f"lazy must be a bool, got {type(lazy).__name__}")
    if lazy:
        present = np.array([p.is_file() for p in paths], dtype=bool)
        warn_skipped([p for p, ok in zip(paths, present) if not ok], len(paths), str(images_dir))
        if not present.any():
            raise ValueError(f"root: none of the {len(paths)} images of split {split!r} are in {images_dir}")
        labels = None if columns is None else _multi_hot(values[chosen[present]], columns)
        return ImageFiles(tuple(p for p, ok in zip(paths, present) if ok), labels, class_names, source, size, 3)
    arrays, skipped = read_pictures(paths, size=size, channels=3)
    warn_skipped(skipped, len(paths), str(images_dir))
    ok = np.array([a is not None for a in arrays], dtype=bool)
    if not ok.any():
        raise ValueError(f"root: none of the {len(paths)} images of split {split!r} in {images_dir} could be read")
    images = images_from_uint8(np.stack([a for a in arrays if a is not None]))
    labels = None if columns is None else _multi_hot(values[chosen[ok]], columns)
    return ImageData(images, labels, class_names, source)


def _multi_hot(values: np.ndarray, columns: list[int]) -> torch.Tensor:
    return torch.from_numpy((values[:, columns] > 0).astype(np.float32))


def _attribute_columns(attributes, names: tuple[str, ...]) -> list[int] | None:
    if attributes is None:
        return None
    if isinstance(attributes, str) or not isinstance(attributes, Sequence):
        raise TypeError(f"attributes must be a sequence of attribute names, got {attributes!r}")
    unknown = [a for a in attributes if a not in names]
    if unknown:
        raise ValueError(f"attributes: unknown {unknown}; valid attributes are {list(names)}")
    if not attributes or len(set(attributes)) != len(attributes):
        raise ValueError(f"attributes must be a non-empty list of distinct names, got {list(attributes)}")
    return [names.index(a) for a in attributes]


def _read_partition(path: Path) -> dict[str, int]:
    partition = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise ValueError(f"{path}, line {number}: expected a file name and 0, 1 or 2")
        partition[fields[0]] = int(fields[1])
    return partition
