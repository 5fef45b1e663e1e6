"""Sample data: the embedded synthetic micro-CT phantom with injected artifacts."""

from __future__ import annotations

import numpy as np

#: Small enough to appear in a few seconds, large enough for the 32 x 32 windows.
SAMPLE_SHAPE = (16, 128, 128)


def phantom_sample(shape=SAMPLE_SHAPE, *, n_artifacts: int = 12, seed: int = 0) -> list:
    """The phantom with artifacts, its artifact mask and the clean truth, as napari layer data.

    Parameters
    ----------
    shape : tuple of 3 int, default (16, 128, 128)
    n_artifacts : int, default 12
    seed : int, default 0

    Returns
    -------
    list of (data, kwargs, layer_type)
        "phantom" (uint16 image with artifacts), "artifacts" (uint8 labels,
        1 = artifact) and "truth" (uint16 image, hidden) — all ``shape``.
    """
    from ctinpaint import add_artifacts, make_phantom

    corrupted = add_artifacts(make_phantom(shape, seed=seed), n=n_artifacts, seed=seed)
    limits = [float(np.percentile(corrupted.truth, 0.5)), float(np.percentile(corrupted.truth, 99.5))]
    return [
        (corrupted.truth, {"name": "truth", "visible": False, "contrast_limits": limits}, "image"),
        (corrupted.volume, {"name": "phantom", "contrast_limits": limits}, "image"),
        (corrupted.mask.astype(np.uint8), {"name": "artifacts", "opacity": 0.5}, "labels"),
    ]
