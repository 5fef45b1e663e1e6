"""Where training runs: device names, mixed precision, and moving batches there.

Three small pieces every training or inference path needs:

- :func:`resolve_device` turns ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``
  into a :class:`torch.device`, refusing what this machine cannot do with an
  error that names the ``device`` argument;
- :func:`autocast` is bf16 autocast on CUDA and a no-op everywhere else;
- :func:`to_device` moves a batch (tensors, NumPy arrays, and tuples, named
  tuples, lists and dicts of them) to a device.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["resolve_device", "autocast", "to_device"]

_DEVICE_PATTERN = re.compile(r"cpu|cuda(?::(\d+))?")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Return the :class:`torch.device` that ``device`` names, checked against this machine.

    Parameters
    ----------
    device : str or torch.device, default "auto"
        ``"auto"`` (CUDA when available, else the CPU), ``"cpu"``, ``"cuda"``
        (the current CUDA device) or ``"cuda:N"``.

    Returns
    -------
    torch.device

    Raises
    ------
    TypeError
        If ``device`` is neither a string nor a :class:`torch.device`.
    ValueError
        If the string is not one of the forms above, or CUDA is asked for and
        is not available, or ``N`` is not a CUDA device of this machine.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("auto").type in ("cpu", "cuda")
    True
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(f"device must be a string or torch.device, got {type(device).__name__} {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    match = _DEVICE_PATTERN.fullmatch(device)
    if match is None:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}")
    if device == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} asks for CUDA, but CUDA is not available here "
            f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); use device='cpu' or 'auto'"
        )
    if match.group(1) is not None:
        index = int(match.group(1))
        count = torch.cuda.device_count()
        if index >= count:
            raise ValueError(f"device={device!r}: this machine has {count} CUDA device(s), numbered 0..{count - 1}")
    return torch.device(device)


def autocast(device: str | torch.device, enabled: bool = True):
    """Context manager for mixed precision: bf16 autocast on CUDA, nothing elsewhere.

    bf16 keeps float32's exponent range, so no loss scaling (``GradScaler``) is
    needed and gradients of float32 parameters stay float32.

    Autocast is deliberately not used on the CPU: CPU bf16 kernels are slower
    than float32 ones on most processors without AMX, and they change the
    numerics of a run, so a CPU run (tests, a laptop) would neither be faster
    nor reproduce the float32 results. On a GPU without bf16 support a warning
    is given and the context does nothing.

    Parameters
    ----------
    device : str or torch.device
        The device the computation runs on.
    enabled : bool, default True
        ``False`` always gives a no-op context.

    Returns
    -------
    context manager

    Examples
    --------
    >>> import torch
    >>> with autocast(torch.device("cpu"), enabled=True):
    ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
    torch.float32
    """
    device = torch.device(device)
    if not enabled or device.type != "cuda":
        return contextlib.nullcontext()
    if not torch.cuda.is_bf16_supported():
        warnings.warn(
            f"{torch.cuda.get_device_name(device)} does not support bfloat16; training in float32 instead",
            RuntimeWarning,
            stacklevel=2,
        )
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16)


def to_device(obj: Any, device: str | torch.device) -> Any:
    """Return ``obj`` with every tensor and NumPy array in it moved to ``device``.

    Tensors keep their dtype. NumPy arrays become tensors first (sharing memory
    when they are writable; a read-only array is copied, since torch cannot
    wrap one safely). Tuples, named tuples, lists and mappings are rebuilt with
    the same type; anything else (numbers, strings, None) is returned as it is.
    ``obj`` itself is never modified.

    Copies to CUDA are non-blocking when the source tensor is in pinned memory
    (for instance from a ``DataLoader(pin_memory=True)``): the copy is queued
    on the current stream, so the kernels that use the batch still wait for it
    while the host carries on preparing the next one. From pageable memory a
    non-blocking copy brings nothing, so an ordinary copy is made.

    Parameters
    ----------
    obj : Any
        A batch.
    device : str or torch.device

    Returns
    -------
    Any
        The same structure with tensors on ``device``.

    Raises
    ------
    TypeError
        If a NumPy array has a dtype torch cannot hold (object, strings).

    Examples
    --------
    >>> import numpy as np, torch
    >>> batch = to_device({"x": np.zeros((2, 3), np.float32), "label": 3}, "cpu")
    >>> type(batch["x"]).__name__, batch["x"].dtype, batch["label"]
    ('Tensor', torch.float32, 3)
    """
    device = torch.device(device)
    return _to_device(obj, device)


def _to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        non_blocking = device.type == "cuda" and obj.device.type == "cpu" and obj.is_pinned()
        return obj.to(device, non_blocking=non_blocking)
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biufc":
            raise TypeError(f"batch holds a NumPy array of dtype {obj.dtype}, which torch cannot hold")
        if not obj.flags.writeable:
            obj = obj.copy()
        return torch.from_numpy(np.ascontiguousarray(obj)).to(device)
    if isinstance(obj, tuple):
        items = [_to_device(item, device) for item in obj]
        if hasattr(obj, "_fields"):  # a NamedTuple: rebuild by position
            return type(obj)(*items)
        return tuple(items)
    if isinstance(obj, list):
        return [_to_device(item, device) for item in obj]
    if isinstance(obj, Mapping):
        moved = {key: _to_device(value, device) for key, value in obj.items()}
        if type(obj) is dict:
            return moved
        try:
            return type(obj)(moved)
        except TypeError:  # a mapping type that cannot be built from a dict
            return moved
    return obj
