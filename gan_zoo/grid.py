"""Sample grids: a batch of images tiled into one PNG (what every preview and example writes)."""

from __future__ import annotations

import io
import numbers
from pathlib import Path

import numpy as np
import torch

__all__ = ["make_grid", "save_grid"]


def make_grid(images, *, nrow: int = 8, padding: int = 2) -> np.ndarray:
    """Tile images into one picture, row by row, on a white background.

    Parameters
    ----------
    images : torch.Tensor or numpy.ndarray, float (N, C, H, W), C in {1, 3}
        Values in [-1, 1] (clipped); what every zoo model returns.
    nrow : int, default 8
        Images per row.
    padding : int, default 2
        White pixels between and around images.

    Returns
    -------
    numpy.ndarray
        uint8 (rows·(H+p)+p, nrow·(W+p)+p) for C = 1, with a trailing axis of
        3 for C = 3.

    Raises
    ------
    ValueError
        ``images`` not (N, C, H, W) with C 1 or 3, empty, or not finite.

    Examples
    --------
    >>> import torch
    >>> make_grid(torch.zeros(5, 1, 4, 4), nrow=4, padding=1).shape
    (11, 21)
    """
    if isinstance(images, torch.Tensor):
        images = images.detach().float().cpu().numpy()
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] not in (1, 3) or images.shape[0] == 0:
        raise ValueError(f"images must be (N, C, H, W) with C 1 or 3 and N >= 1, got shape {images.shape}")
    if images.dtype.kind != "f":
        raise TypeError(f"images must be floating point in [-1, 1], got {images.dtype}")
    if not np.isfinite(images).all():
        raise ValueError("images hold NaN or infinite values")
    for value, name, minimum in ((nrow, "nrow", 1), (padding, "padding", 0)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    n, c, h, w = images.shape
    cols = min(nrow, n)
    rows = -(-n // cols)
    pixels = np.round((np.clip(images, -1, 1) + 1) * 127.5).astype(np.uint8)
    grid = np.full((c, rows * (h + padding) + padding, cols * (w + padding) + padding), 255, np.uint8)
    for i in range(n):
        y = padding + (i // cols) * (h + padding)
        x = padding + (i % cols) * (w + padding)
        grid[:, y : y + h, x : x + w] = pixels[i]
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def save_grid(images, path, *, nrow: int = 8, padding: int = 2, scale: int = 1) -> Path:
    """Write :func:`make_grid` of ``images`` as a PNG, atomically.

    Parameters
    ----------
    images : torch.Tensor or numpy.ndarray, float (N, C, H, W) in [-1, 1]
    path : str or os.PathLike
        The PNG to write; its folder is created.
    nrow, padding : int
        See :func:`make_grid`.
    scale : int, default 1
        Enlarge every pixel to scale × scale (nearest neighbour), so 28×28
        digits are visible in an image viewer.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile, torch
    >>> save_grid(torch.zeros(4, 3, 8, 8), tempfile.mkdtemp() + "/grid.png", nrow=2).suffix
    '.png'
    """
    from PIL import Image

    from .training.checkpoint import _atomic_write

    if isinstance(scale, bool) or not isinstance(scale, numbers.Integral) or scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale!r}")
    grid = make_grid(images, nrow=nrow, padding=padding)
    if scale > 1:
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.fromarray(grid).save(buffer, format="PNG")
    _atomic_write(path, buffer.getvalue())
    return path
