"""Tests for gan_zoo.grid: sample grids as PNG, without torchvision."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gan_zoo.grid import make_grid, save_grid


def test_grid_places_images_row_by_row_on_white():
    images = torch.stack([torch.full((1, 2, 3), v) for v in (-1.0, 0.0, 1.0)])
    grid = make_grid(images, nrow=2, padding=1)
    assert grid.shape == (1 + 2 * 3, 1 + 2 * 4) and grid.dtype == np.uint8
    assert (grid[1:3, 1:4] == 0).all()  # -1 -> black
    assert (grid[1:3, 5:8] == 128).all()  # 0 -> mid grey (127.5 rounded)
    assert (grid[4:6, 1:4] == 255).all()
    assert (grid[4:6, 5:8] == 255).all()  # the empty last cell stays background
    assert (grid[0] == 255).all() and (grid[:, 4] == 255).all()


def test_rgb_grid_and_clipping():
    images = np.zeros((2, 3, 2, 2), np.float32)
    images[0, 0] = 5.0  # out of range: clipped to white in the red channel
    grid = make_grid(images, nrow=8, padding=0)
    assert grid.shape == (2, 4, 3)
    np.testing.assert_array_equal(grid[0, 0], [255, 128, 128])


def test_save_grid_writes_a_png_atomically(tmp_path):
    path = save_grid(torch.zeros(4, 1, 5, 5), tmp_path / "sub" / "grid.png", nrow=2, padding=1, scale=3)
    picture = np.asarray(Image.open(path))
    assert picture.shape == (3 * (2 * 6 + 1), 3 * (2 * 6 + 1))
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]  # no temporary file left


@pytest.mark.parametrize(
    "images, kwargs, error, match",
    [
        (torch.zeros(2, 2, 4, 4), {}, ValueError, "C 1 or 3"),
        (torch.zeros(0, 1, 4, 4), {}, ValueError, "N >= 1"),
        (torch.zeros(4, 4), {}, ValueError, "images must be"),
        (np.zeros((1, 1, 2, 2), np.uint8), {}, TypeError, "floating point"),
        (torch.full((1, 1, 2, 2), float("nan")), {}, ValueError, "NaN"),
        (torch.zeros(1, 1, 2, 2), {"nrow": 0}, ValueError, "nrow"),
        (torch.zeros(1, 1, 2, 2), {"padding": -1}, ValueError, "padding"),
    ],
)
def test_bad_grids_are_named(images, kwargs, error, match):
    with pytest.raises(error, match=match):
        make_grid(images, **kwargs)
    with pytest.raises(ValueError, match="scale"):
        save_grid(torch.zeros(1, 1, 2, 2), "unused.png", scale=0)
