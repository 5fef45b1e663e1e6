"""What every zoo model shares: its config, its networks, input checks, sampling helpers.

A zoo model is an ``nn.Module`` holding its networks as submodules, built
from one frozen config dataclass. It tells the one training loop
(:func:`gan_zoo.training.run_training`) what to train through
:meth:`ZooModel.training_phases`; it never runs a loop itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import numbers
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..training import Phase

__all__ = ["ZooConfig", "ZooModel", "check_images"]


@dataclasses.dataclass(frozen=True)
class ZooConfig:
    """Base of the config dataclasses: JSON round trip and field checks."""

    def to_dict(self) -> dict:
        """Plain JSON data (tuples become lists)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data) -> ZooConfig:
        """Inverse of :meth:`to_dict`; unknown keys are refused, lists become tuples."""
        if not isinstance(data, dict):
            raise TypeError(f"config must be a dict, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"config: unknown keys {unknown} for {cls.__name__}; known: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    # -- checks used by the subclasses' __post_init__

    def _int(self, name: str, minimum: int = 1, maximum: int | None = None) -> None:
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
            raise ValueError(f"{name} must be {bound}, got {value}")

    def _float(self, name: str, minimum: float = 0.0, maximum: float | None = None, *, open_min: bool = False) -> None:
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise TypeError(f"{name} must be a finite number, got {value!r}")
        if value < minimum or (open_min and value == minimum) or (maximum is not None and value > maximum):
            raise ValueError(f"{name} must be {'>' if open_min else '>='} {minimum}{'' if maximum is None else f' and <= {maximum}'}, got {value}")

    def _choice(self, name: str, choices: Sequence) -> None:
        value = getattr(self, name)
        if value not in choices:
            raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")

    def _ints(self, name: str) -> None:
        value = getattr(self, name)
        if not isinstance(value, tuple) or not value or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in value
        ):
            raise ValueError(f"{name} must be a non-empty tuple of positive integers, got {value!r}")


class ZooModel(nn.Module):
    """Base class of the zoo's models.

    Subclasses set ``name`` and ``config_class``, build their networks in
    ``__init__(config)`` and implement :meth:`networks`,
    :meth:`training_phases` and :meth:`sample` or :meth:`translate`.

    Attributes
    ----------
    config : ZooConfig
        The frozen config the model was built from; saved with it.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[ZooConfig]]
    #: Whether the model draws images from noise (sample) or maps images (translate).
    kind: ClassVar[str] = "generative"

    def __init__(self, config: ZooConfig):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"config must be a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config

    # -- what the training API needs

    def networks(self) -> dict[str, nn.Module]:
        """The trained networks by name (saved in model files)."""
        raise NotImplementedError

    def training_state(self) -> dict[str, nn.Module]:
        """Modules checkpointed during training but not part of a saved model (image pools)."""
        return {}

    def training_phases(self, *, steps: int | None) -> list[Phase]:
        """Fresh optimizers (and schedulers) and the phases of one training step.

        ``steps`` is the planned length of the run, for schedules that depend
        on it (CycleGAN's linear decay); None when the run stops by time.
        Batches given to the losses are what :meth:`batches` yields.
        """
        raise NotImplementedError

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images the model makes and reads."""
        return (self.config.channels, self.config.image_size, self.config.image_size)

    @property
    def n_classes(self) -> int | None:
        """Number of label classes (conditional models), else None."""
        return None

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # -- the user's side

    def sample(self, n: int, labels=None, *, seed: int | None = None) -> torch.Tensor:
        """Generate ``n`` images; see the subclasses."""
        raise TypeError(f"{self.name} translates images and cannot sample from noise; use translate(images, target=...)")

    def translate(self, images, target=None) -> torch.Tensor:
        """Translate images to another domain; see the subclasses."""
        raise TypeError(f"{self.name} generates images from noise and cannot translate; use sample(n)")

    def preview_images(self, examples: torch.Tensor | None) -> tuple[torch.Tensor, int]:
        """Images for a preview grid and its number of columns; ``examples`` are real training images."""
        raise NotImplementedError

    # -- helpers for subclasses

    @contextlib.contextmanager
    def _inference(self):
        """Eval mode and no gradients, modes restored afterwards (training may continue)."""
        modes = [(m, m.training) for m in self.modules()]
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            for m, training in modes:
                m.training = training

    def _noise(self, n: int, dim: int, seed: int | None) -> torch.Tensor:
        """(n, dim) standard normal noise on the model's device, reproducible from ``seed``."""
        generator = None
        if seed is not None:
            generator = torch.Generator().manual_seed(_check_seed(seed))
        return torch.randn(n, dim, generator=generator).to(self.device)

    def _labels(self, labels, n: int, *, name: str = "labels") -> torch.Tensor:
        """Class labels as int64 (n,) on the device: None -> 0, 1, ..., K-1, 0, 1, ... (balanced)."""
        K = self.n_classes
        if labels is None:
            return (torch.arange(n) % K).to(self.device)
        if isinstance(labels, numbers.Integral) and not isinstance(labels, bool):
            labels = [int(labels)] * n
        t = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
        if t.dtype.is_floating_point or t.dtype == torch.bool or t.ndim != 1:
            raise TypeError(f"{name} must be integers of shape ({n},), got {t.dtype} {tuple(t.shape)}")
        if t.shape[0] != n:
            raise ValueError(f"{name} has {t.shape[0]} entries but n is {n}")
        if n and (int(t.min()) < 0 or int(t.max()) >= K):
            raise ValueError(f"{name} must be class indices in [0, {K - 1}], got values from {int(t.min())} to {int(t.max())}")
        return t.to(torch.int64).to(self.device)


def check_images(images, shape: tuple[int, int, int], *, name: str) -> torch.Tensor:
    """Return ``images`` as a float32 tensor (N, C, H, W) after checking it against a model's ``shape``.

    Accepts a tensor or NumPy array, (N, C, H, W) or (N, H, W) for one
    channel; values should be in [-1, 1]. Errors name ``name`` and say what
    the model expects (grayscale vs RGB, image size).
    """
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.array(images, copy=True))
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or NumPy array (N, C, H, W), got {type(images).__name__}")
    if not images.is_floating_point():
        raise TypeError(f"{name} must be floating point in [-1, 1], got {images.dtype}")
    if images.ndim == 3 and shape[0] == 1:
        images = images[:, None]
    if images.ndim != 4:
        raise ValueError(f"{name} must be (N, C, H, W), got shape {tuple(images.shape)}")
    c, h, w = images.shape[1:]
    C, H, W = shape
    if c != C:
        kinds = {1: "grayscale", 3: "RGB"}
        raise ValueError(
            f"{name} has {c} channel(s) ({kinds.get(c, 'multi-channel')}) but the model was built for {C} "
            f"({kinds.get(C, 'multi-channel')}); build it with channels={c} or convert the images"
        )
    if (h, w) != (H, W):
        raise ValueError(f"{name} are {h}x{w} pixels but the model was built for {H}x{W} (image_size={H}); resize them or build it with image_size={h}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    return images.float()


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an integer, got {type(n).__name__} {n!r}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return int(n)


def _jsonable(value: Any):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value
