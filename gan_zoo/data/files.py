"""Image sets decoded from their files batch by batch, for sets too large to hold decoded.

All of CelebA decoded at 64x64 takes 10 GB as float32, at 128x128 40 GB;
:class:`ImageFiles` keeps only the file names and decodes each batch when it
is drawn (in threads, Pillow releases the GIL while decoding).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .batches import ResumableBatches
from .folders import SkippedImagesWarning, read_pictures
from .images import ImageData, _as_index, _batch_indices, _check_int, images_from_uint8

__all__ = ["ImageFiles"]


@dataclass(frozen=True)
class ImageFiles:
    """Image files with labels, decoded (centre crop, resize) only when a batch needs them.

    The same interface as :class:`ImageData` for training (``len``,
    :meth:`subset`, :meth:`batches`, ``labels``, ``class_names``,
    ``channels``, ``size``), plus :meth:`load` to decode everything.

    Attributes
    ----------
    paths : tuple of pathlib.Path
    labels : torch.Tensor or None
        As in :class:`ImageData`, one row per path.
    class_names : tuple of str
    source : str
    side : int
        Images are centre-cropped to a square and resized to ``side`` x ``side``.
    channels : {1, 3}

    Notes
    -----
    A file that cannot be decoded when its batch is drawn is left out of that
    batch (which is then smaller) and reported with a
    :class:`~gan_zoo.data.SkippedImagesWarning`.
    """

    paths: tuple[Path, ...]
    labels: torch.Tensor | None
    class_names: tuple[str, ...]
    source: str
    side: int
    channels: int = 3

    def __post_init__(self):
        if not isinstance(self.paths, tuple) or not all(isinstance(p, Path) for p in self.paths):
            raise TypeError("paths must be a tuple of pathlib.Path")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels!r}")
        _check_int(self.side, "side", minimum=1)
        # The label checks of ImageData, on a stand-in of the right length.
        ImageData(torch.zeros(len(self.paths), 1, 1, 1), self.labels, self.class_names, self.source)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the decoded images."""
        return self.side, self.side

    def subset(self, indices) -> ImageFiles:
        """The files at ``indices``, as a new ImageFiles."""
        index = _as_index(indices, len(self), name="indices")
        picked = np.arange(len(self))[index.numpy() if isinstance(index, torch.Tensor) else index]
        labels = None if self.labels is None else self.labels[torch.as_tensor(picked, dtype=torch.int64)]
        return dataclasses.replace(self, paths=tuple(self.paths[i] for i in picked), labels=labels)

    def load(self) -> ImageData:
        """Decode every file (unreadable ones are left out with a warning)."""
        images, keep = self._decode(np.arange(len(self)))
        if not keep.any():
            raise ValueError(f"none of the {len(self)} files of {self.source} could be read")
        labels = None if self.labels is None else self.labels[torch.from_numpy(np.flatnonzero(keep))]
        return ImageData(images, labels, self.class_names, self.source)

    def batches(self, batch_size: int, *, seed: int, shuffle: bool = True) -> ResumableBatches:
        """Endless, resumable batches decoded on the fly; the order is :meth:`ImageData.batches`' order."""
        take = _batch_indices(len(self), batch_size, seed, shuffle)

        def start(first: int) -> Iterator:
            for k in range(first, 2**62):
                index = take(k)
                images, keep = self._decode(index)
                if self.labels is None:
                    yield images
                else:
                    yield images, self.labels[torch.from_numpy(index[keep])]

        return ResumableBatches(start)

    def _decode(self, index: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        paths = [self.paths[i] for i in index]
        arrays, failed = read_pictures(paths, size=self.side, channels=self.channels)
        keep = np.array([a is not None for a in arrays], dtype=bool)
        if failed:
            names = ", ".join(p.name for p in failed[:5])
            warnings.warn(f"{self.source}: left out {len(failed)} unreadable image files ({names})", SkippedImagesWarning, stacklevel=3)
        if not keep.any():
            shape = (0, self.channels, self.side, self.side)
            return torch.zeros(shape), keep
        return images_from_uint8(np.stack([a for a in arrays if a is not None])), keep
