"""ctinpaint: remove artifacts from 3D micro-CT volumes and say how much to trust each fill.

``import ctinpaint`` is cheap: the public names below are loaded from their
modules on first use, so a command-line ``--help`` does not pay for Dask or torch.

Modules
-------
io          open volumes lazily (TIFF, Zarr, OME-Zarr, NumPy, slice folders); save atomically
intensity   robust percentile normalisation to the network's range and back
phantom     the embedded synthetic SiC/diamond-like volume, with injected artifacts
artifacts   artifact masks -> per-slice artifacts -> inpainting windows
patches     training patches with holes, cut block-wise from artifact-free regions
models      the networks C, G, D and their presets
losses      adversarial, mode-seeking, moment-reconstruction and R1 losses
train       training on the shared loop of gan_zoo.training; safe model files
sampling    thousands of fills per window reduced to mean, std and quantiles
inpaint     the whole-volume job
evaluate    held-out metrics next to the biharmonic baseline
figures     uncertainty panels, loss curves
demo        the end-to-end demonstration behind ``ctinpaint demo``
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "open_volume": "ctinpaint.io",
    "open_mask": "ctinpaint.io",
    "save_volume": "ctinpaint.io",
    "IntensityMapping": "ctinpaint.intensity",
    "fit_intensity": "ctinpaint.intensity",
    "make_phantom": "ctinpaint.phantom",
    "add_artifacts": "ctinpaint.phantom",
    "Artifact": "ctinpaint.artifacts",
    "Window": "ctinpaint.artifacts",
    "find_artifacts": "ctinpaint.artifacts",
    "mask_from_boxes": "ctinpaint.artifacts",
    "suggest_mask": "ctinpaint.artifacts",
    "windows_for": "ctinpaint.artifacts",
    "PatchSampler": "ctinpaint.patches",
    "PatchBatch": "ctinpaint.patches",
    "hole_masks": "ctinpaint.patches",
    "Corrupted": "ctinpaint.phantom",
    "ModelConfig": "ctinpaint.models",
    "build_model": "ctinpaint.models",
    "config_for": "ctinpaint.models",
    "TrainConfig": "ctinpaint.train",
    "train_model": "ctinpaint.train",
    "load_model": "ctinpaint.train",
    "FillStats": "ctinpaint.sampling",
    "sample_fills": "ctinpaint.sampling",
    "inpaint_volume": "ctinpaint.inpaint",
    "evaluate_model": "ctinpaint.evaluate",
    "Calibration": "ctinpaint.calibration",
    "fit_calibration": "ctinpaint.calibration",
    "biharmonic_fill": "ctinpaint.evaluate",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ctinpaint' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
