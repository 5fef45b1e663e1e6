"""Small configurations of every zoo model and matching random data, for fast tests."""

from __future__ import annotations

import torch

from gan_zoo.data import DomainData, ImageData

#: name -> (build keywords); 28×28 grayscale everywhere, widths a few channels.
TINY = {
    "gan": dict(hidden=(16, 32), latent_dim=8),
    "dcgan": dict(image_size=28, channels=1, width=4, latent_dim=8),
    "cgan": dict(hidden=(16, 32), latent_dim=8, n_classes=3),
    "cgan-conv": dict(arch="conv", image_size=28, channels=1, width=4, latent_dim=8, n_classes=3),
    "cyclegan": dict(image_size=28, channels=1, width=4, n_blocks=1, d_width=4, d_layers=2, pool_size=3),
    "stargan": dict(image_size=28, channels=1, c_dim=3, labels="domain", width=4, n_blocks=1, d_width=4, d_layers=2, n_critic=2),
    "stargan-attributes": dict(image_size=28, channels=1, c_dim=2, labels="attributes", width=4, n_blocks=1, d_width=4, d_layers=2, n_critic=1, loss="bce"),
}


def registry_name(key: str) -> str:
    return key.split("-")[0]


def tiny_data(key: str, n: int = 12, seed: int = 0):
    """Random images in [-1, 1] in the form ``gan_zoo.train`` expects for model ``key``."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, 28, 28, generator=g) * 2 - 1
    classes = torch.arange(n) % 3
    if key in ("gan", "dcgan"):
        return ImageData(images, source="random")
    if key.startswith("cgan"):
        return ImageData(images, classes, ("a", "b", "c"), "random")
    if key == "cyclegan":
        return ImageData(images[: n // 2], source="random A"), ImageData(images[n // 2 :], source="random B")
    if key == "stargan":
        return DomainData(images, classes, classes.flip(0), ("x", "y", "z"), ("a", "b", "c"), "random")
    attributes = torch.stack([classes == 0, classes == 1], 1).float()
    return ImageData(images, attributes, ("p", "q"), "random")
