"""gan_zoo: classic GANs behind one Python API and one training loop.

``import gan_zoo`` is cheap: the names below load their modules (and torch)
on first use.

>>> import gan_zoo                                                  # doctest: +SKIP
>>> model = gan_zoo.build("dcgan", image_size=28, channels=1)       # doctest: +SKIP
>>> gan_zoo.train(model, gan_zoo.data.load_mnist(), steps=2000, out="runs/dcgan")  # doctest: +SKIP
>>> gan_zoo.load("runs/dcgan").sample(64)                           # doctest: +SKIP

Modules
-------
models      GAN, DCGAN, cGAN, CycleGAN, StarGAN (one file each) and the registry
losses      adversarial losses, gradient penalty, L1, classification
training    the one training loop (phases, checkpoints, exact resume), shared with ctinpaint
data        MNIST, digits, CelebA, image folders, digit styles (offline)
metrics     Fréchet distance, mode coverage, accuracy, identity from a shipped digit classifier
api         build/train/load/evaluate
grid        sample grids as PNG
cli         the ``gan-zoo`` command
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "MODELS": "gan_zoo.models",
    "build": "gan_zoo.models",
    "train": "gan_zoo.api",
    "load": "gan_zoo.api",
    "evaluate": "gan_zoo.api",
    "save_grid": "gan_zoo.grid",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gan_zoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*__all__, "data", "metrics", "models", "training", "losses"})
