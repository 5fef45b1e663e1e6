"""Argument checks shared by the public functions.

Every public function validates its inputs first and raises ``TypeError`` (wrong
kind of thing) or ``ValueError`` (right kind, bad value) with the argument's name
in the message, so a user never has to read a traceback from deep inside NumPy,
Dask or torch to learn what was wrong.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable

import numpy as np

#: Voxel types a volume may have. Others are refused rather than silently cast,
#: because a silent cast (float64 -> float32, int32 -> int16) can lose data.
SUPPORTED_DTYPES = (np.dtype("uint8"), np.dtype("uint16"), np.dtype("int16"), np.dtype("float32"))

NAN_POLICIES = ("raise", "mask")


def check_volume_dtype(dtype, *, name: str) -> np.dtype:
    """Return ``dtype`` as a NumPy dtype if it is a supported voxel type."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{name}: {dtype!r} is not a dtype") from exc
    if dt not in SUPPORTED_DTYPES:
        supported = ", ".join(str(d) for d in SUPPORTED_DTYPES)
        raise TypeError(f"{name}: dtype {dt} is not supported (supported: {supported})")
    return dt


def check_int(value, *, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as ``int`` if it is an integer within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_float(value, *, name: str, minimum: float | None = None, maximum: float | None = None) -> float:
    """Return ``value`` as a finite ``float`` within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_choice(value, choices: Iterable, *, name: str):
    """Return ``value`` if it is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_axis(axis, *, ndim: int = 3, name: str = "axis") -> int:
    """Return ``axis`` normalised to ``0 .. ndim-1`` (negative values count from the end)."""
    axis = check_int(axis, name=name, minimum=-ndim, maximum=ndim - 1)
    return axis % ndim


def check_patch_hole(patch, hole) -> tuple[int, int]:
    """Check a patch size P and hole size l: integers with 1 <= l < P."""
    patch = check_int(patch, name="patch", minimum=2)
    hole = check_int(hole, name="hole", minimum=1)
    if hole >= patch:
        raise ValueError(f"hole ({hole}) must be smaller than patch ({patch}): the window needs known context around the hole")
    return patch, hole


def check_shapes_match(shape_a, shape_b, *, name_a: str, name_b: str) -> None:
    """Raise if two array shapes differ."""
    if tuple(shape_a) != tuple(shape_b):
        raise ValueError(f"{name_b} shape {tuple(shape_b)} does not match {name_a} shape {tuple(shape_a)}")


def check_window_stack(value, *, name: str, shape=None, mask: bool = False, square: bool = True, channels: int = 1) -> np.ndarray:
    """A stack of 2D windows given as (N, H, W) or (N, 1, H, W), as an (N, H, W) array.

    Returns a view where possible (never modifies ``value``); masks come back
    as bool (nonzero = True). ``shape`` is the (N, H, W) the stack must have,
    e.g. that of the windows it goes with; ``square`` requires H == W. With
    ``channels`` K > 1 the stack must be (N, K, H, W) and keeps that shape.
    """
    if value is None:
        raise TypeError(f"{name}: expected an array, got None")
    arr = np.asarray(value)
    if channels == 1 and arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    elif channels > 1:
        # Checked as N * K planes, reshaped back below; any other shape is refused.
        arr = arr.reshape(-1, *arr.shape[2:]) if arr.ndim == 4 and arr.shape[1] == channels else arr[None, None, None]
    if arr.ndim != 3 or (square and arr.shape[1] != arr.shape[2]):
        kind = "P, P" if square else "H, W"
        kind = f"(N, {kind}) or (N, 1, {kind})" if channels == 1 else f"(N, {channels}, {kind})"
        raise ValueError(f"{name}: expected shape {kind}, got {np.shape(value)}")
    if channels > 1:
        arr = arr.reshape(-1, channels, *arr.shape[1:])
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name}: shape {np.shape(value)} does not match the shape {tuple(shape)} of the windows")
    if mask:
        if arr.dtype != bool and arr.dtype.kind not in "iuf":
            raise TypeError(f"{name}: dtype {arr.dtype} is not a mask")
        return arr if arr.dtype == bool else arr != 0
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name}: dtype {arr.dtype} is not numeric")
    return arr


def memory_limit(device=None) -> int | None:
    """Bytes of memory of ``device`` (a torch device; None or CPU: the machine's RAM), if known."""
    if device is not None and getattr(device, "type", str(device)) == "cuda":
        import torch

        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): nothing to compare with
        return None


def check_fits_in_memory(nbytes: int, *, name: str, what: str, device=None, hint: str | None = None) -> None:
    """Refuse a request whose arrays alone would exceed the memory of ``device``.

    ``nbytes`` is a lower bound of what the request allocates, so a refusal is
    certain to be right; ``what`` says what it holds and ``hint`` what to do
    instead (default: use a smaller ``name``), for the message.
    """
    limit = memory_limit(device)
    if limit is not None and nbytes > limit:
        where = "the GPU" if device is not None and getattr(device, "type", "") == "cuda" else "this machine"
        raise ValueError(
            f"{name}: {what} would need at least {nbytes / 2**30:.1f} GiB, more than the "
            f"{limit / 2**30:.1f} GiB of {where}; {hint or f'use a smaller {name}'}"
        )



def check_filled_model(model):
    """Return ``model`` if it has the interface of an inpainting network.

    That of :class:`ctinpaint.models.InpaintingGAN`: ``config`` (with ``patch``
    and ``hole``), ``condition``, ``generate``, ``generate_grouped``,
    ``sample_z`` and ``parameters``.
    """
    needed = ("condition", "generate", "generate_grouped", "sample_z", "parameters")
    config = getattr(model, "config", None)
    if not (all(callable(getattr(model, a, None)) for a in needed) and hasattr(config, "patch") and hasattr(config, "hole")):
        raise TypeError(
            f"model must be an InpaintingGAN (e.g. load_model(...).model), got {type(model).__name__}"
        )
    return model
