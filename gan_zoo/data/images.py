"""Image sets in memory: the one container every loader of :mod:`gan_zoo.data` returns."""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .batches import ResumableBatches

__all__ = ["ImageData", "DomainData", "images_from_uint8"]


@dataclass(frozen=True)
class ImageData:
    """Images scaled to [-1, 1], with optional labels, and where they came from.

    Attributes
    ----------
    images : torch.Tensor
        float32 (N, C, H, W), values in [-1, 1] (0 -> -1, 255 -> 1 for 8-bit images).
    labels : torch.Tensor or None
        int64 (N,) class indices into ``class_names``; or, for multi-label
        data (CelebA attributes), float32 (N, K) multi-hot rows with K ==
        ``len(class_names)``; or None for unlabelled images.
    class_names : tuple of str
        Names of the classes (or attributes); empty when unlabelled.
    source : str
        Where the images came from (a path, a package, a transformation).

    Notes
    -----
    ``len(data)`` is N. ``data[i]`` with an integer gives ``(image, label)``
    (label None when unlabelled); ``data[a:b]``, ``data[index_array]`` and
    :meth:`subset` give a new :class:`ImageData`.

    Examples
    --------
    >>> import torch
    >>> data = ImageData(torch.zeros(6, 1, 4, 4), torch.arange(6) % 2, ("even", "odd"), "example")
    >>> len(data), data.channels, data.size
    (6, 1, (4, 4))
    >>> images, labels = next(data.batches(4, seed=0))
    >>> tuple(images.shape), labels.dtype
    ((4, 1, 4, 4), torch.int64)
    """

    images: torch.Tensor
    labels: torch.Tensor | None = None
    class_names: tuple[str, ...] = ()
    source: str = ""

    def __post_init__(self):
        images, labels = self.images, self.labels
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
        if images.dtype != torch.float32 or images.ndim != 4:
            raise ValueError(f"images must be float32 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if images.numel() and (images.min() < -1 or images.max() > 1 or not torch.isfinite(images).all()):
            raise ValueError("images must hold finite values in [-1, 1]")
        names = self.class_names
        if not isinstance(names, tuple) or not all(isinstance(n, str) for n in names):
            raise TypeError(f"class_names must be a tuple of str, got {names!r}")
        if not isinstance(self.source, str):
            raise TypeError(f"source must be a str, got {type(self.source).__name__}")
        if labels is None:
            return
        if not isinstance(labels, torch.Tensor):
            raise TypeError(f"labels must be a torch.Tensor or None, got {type(labels).__name__}")
        if len(labels) != len(images):
            raise ValueError(f"labels: {len(labels)} labels for {len(images)} images")
        if labels.dtype == torch.int64 and labels.ndim == 1:
            if labels.numel() and names and (labels.min() < 0 or labels.max() >= len(names)):
                raise ValueError(f"labels must lie in [0, {len(names)}) (one per class name)")
        elif labels.dtype == torch.float32 and labels.ndim == 2:
            if labels.shape[1] != len(names):
                raise ValueError(f"labels: {labels.shape[1]} columns but {len(names)} class names")
        else:
            raise ValueError(
                f"labels must be int64 (N,) class indices or float32 (N, K) multi-hot rows, "
                f"got {labels.dtype} {tuple(labels.shape)}"
            )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index):
        if isinstance(index, numbers.Integral) and not isinstance(index, bool):
            label = None if self.labels is None else self.labels[index]
            return self.images[index], label
        return self.subset(index)

    @property
    def channels(self) -> int:
        """C: 1 for grayscale, 3 for RGB."""
        return int(self.images.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the images."""
        return int(self.images.shape[2]), int(self.images.shape[3])

    def subset(self, indices) -> ImageData:
        """The images at ``indices`` (a slice, or a sequence/array/tensor of ints or bools), as a new ImageData."""
        index = _as_index(indices, len(self), name="indices")
        labels = None if self.labels is None else self.labels[index]
        return dataclasses.replace(self, images=self.images[index], labels=labels)

    def batches(self, batch_size: int, *, seed: int, shuffle: bool = True) -> ResumableBatches:
        """An endless, resumable stream of batches.

        The stream runs through the images epoch after epoch, each epoch in a
        new order drawn from ``(seed, epoch)`` (or in storage order when
        ``shuffle`` is False); batches run across epoch boundaries, so every
        batch is full even when ``batch_size > len(self)``. The stream has
        ``state_dict``/``load_state_dict``, so
        :func:`gan_zoo.training.run_training` resumes it exactly, without
        replaying it.

        Parameters
        ----------
        batch_size : int
        seed : int
        shuffle : bool, default True

        Returns
        -------
        ResumableBatches
            Yields ``(images, labels)``, or ``images`` alone when unlabelled;
            images float32 (batch_size, C, H, W), labels as in ``self.labels``.
        """
        take = _batch_indices(len(self), batch_size, seed, shuffle)

        def start(first: int) -> Iterator:
            for k in range(first, 2**62):
                index = torch.from_numpy(take(k))
                if self.labels is None:
                    yield self.images[index]
                else:
                    yield self.images[index], self.labels[index]

        return ResumableBatches(start)


@dataclass(frozen=True)
class DomainData:
    """Images in several styles (domains), with their class labels: StarGAN's training data.

    Attributes
    ----------
    images : torch.Tensor
        float32 (N, C, H, W) in [-1, 1].
    labels : torch.Tensor
        int64 (N,) class (digit) of each image.
    domains : torch.Tensor
        int64 (N,) index into ``domain_names`` of each image's domain.
    domain_names : tuple of str
    class_names : tuple of str
    source : str

    Notes
    -----
    :meth:`batches` yields ``(images, domains)``, what a domain-translation
    model trains on; :meth:`by_domain` and :meth:`as_image_data` view the same
    images as :class:`ImageData`.
    """

    images: torch.Tensor
    labels: torch.Tensor
    domains: torch.Tensor
    domain_names: tuple[str, ...]
    class_names: tuple[str, ...] = ()
    source: str = ""

    def __post_init__(self):
        ImageData(self.images, self.labels, self.class_names, self.source)  # the same checks
        ImageData(self.images, self.domains, self.domain_names, self.source)
        if not self.domain_names:
            raise ValueError("domain_names must not be empty")
        if self.labels is None or self.labels.ndim != 1:
            raise ValueError("labels must be int64 (N,) class indices")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices) -> DomainData:
        """The images at ``indices``, as a new DomainData."""
        index = _as_index(indices, len(self), name="indices")
        return dataclasses.replace(
            self, images=self.images[index], labels=self.labels[index], domains=self.domains[index]
        )

    def as_image_data(self, *, labels: str = "domains") -> ImageData:
        """The same images as ImageData labelled by ``"domains"`` or by ``"classes"``."""
        if labels == "domains":
            return ImageData(self.images, self.domains, self.domain_names, self.source)
        if labels == "classes":
            return ImageData(self.images, self.labels, self.class_names, self.source)
        raise ValueError(f"labels must be 'domains' or 'classes', got {labels!r}")

    def by_domain(self, domain) -> ImageData:
        """The images of one domain (name or index), labelled by class."""
        index = _domain_index(domain, self.domain_names)
        return self.subset(self.domains == index).as_image_data(labels="classes")

    def batches(self, batch_size: int, *, seed: int, shuffle: bool = True) -> ResumableBatches:
        """Endless, resumable ``(images, domains)`` batches; see :meth:`ImageData.batches`."""
        return self.as_image_data(labels="domains").batches(batch_size, seed=seed, shuffle=shuffle)


def images_from_uint8(array: np.ndarray) -> torch.Tensor:
    """8-bit images to a float32 tensor in [-1, 1].

    Parameters
    ----------
    array : numpy.ndarray
        uint8 (N, H, W) grayscale or (N, H, W, C) images.

    Returns
    -------
    torch.Tensor
        float32 (N, C, H, W), ``value / 127.5 - 1``.
    """
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim not in (3, 4):
        raise ValueError(f"array must be uint8 (N, H, W) or (N, H, W, C), got {array.dtype} {array.shape}")
    if array.ndim == 3:
        array = array[:, None]
    else:
        array = array.transpose(0, 3, 1, 2)
    images = torch.from_numpy(np.ascontiguousarray(array)).to(torch.float32)
    return images.div_(127.5).sub_(1.0).clamp_(-1.0, 1.0)


def _batch_indices(n: int, batch_size, seed, shuffle):
    """Indices of batch k in the endless concatenation of per-epoch orders.

    Checks the arguments of a ``batches`` method (``n`` is the data set's size).
    """
    batch_size = _check_int(batch_size, "batch_size", minimum=1)
    seed = _check_int(seed, "seed", minimum=0)
    if not isinstance(shuffle, bool):
        raise TypeError(f"shuffle must be a bool, got {type(shuffle).__name__}")
    if n == 0:
        raise ValueError("batches: the data set is empty")
    cache: dict[int, np.ndarray] = {}

    def order(epoch: int) -> np.ndarray:
        if epoch not in cache:
            if len(cache) > 4:
                cache.clear()
            cache[epoch] = (
                np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
            )
        return cache[epoch]

    def take(k: int) -> np.ndarray:
        begin = k * batch_size
        parts = []
        while begin < (k + 1) * batch_size:
            epoch, offset = divmod(begin, n)
            count = min(n - offset, (k + 1) * batch_size - begin)
            parts.append(order(epoch)[offset : offset + count])
            begin += count
        return np.concatenate(parts).astype(np.int64)

    return take


def _as_index(indices, n: int, *, name: str):
    if isinstance(indices, slice):
        return indices
    if isinstance(indices, torch.Tensor):
        index = indices.detach().cpu().numpy()
    else:
        index = np.asarray(indices)
    if index.dtype == bool:
        if index.shape != (n,):
            raise ValueError(f"{name}: a boolean mask must have shape ({n},), got {index.shape}")
        return torch.from_numpy(np.flatnonzero(index))
    if index.ndim != 1 or not (index.size == 0 or np.issubdtype(index.dtype, np.integer)):
        raise TypeError(f"{name} must be a slice or a 1-D sequence of integers or booleans")
    index = index.astype(np.int64)
    if index.size and (index.min() < -n or index.max() >= n):
        raise ValueError(f"{name}: indices must lie in [{-n}, {n}), got {index.min()}..{index.max()}")
    return torch.from_numpy(index % max(n, 1))


def _domain_index(domain, names: Sequence[str]) -> int:
    if isinstance(domain, str):
        if domain not in names:
            raise ValueError(f"domain: {domain!r} is not one of {list(names)}")
        return list(names).index(domain)
    if isinstance(domain, numbers.Integral) and not isinstance(domain, bool) and 0 <= domain < len(names):
        return int(domain)
    raise ValueError(f"domain must be a name in {list(names)} or an index below {len(names)}, got {domain!r}")


def _check_int(value, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)
