"""DCGAN (Radford et al., 2015): all-convolutional generator and discriminator.

The paper's guidelines, all followed here: strided (transposed) convolutions
instead of pooling, batch norm in both networks except G's output and D's
input layer, ReLU in G with tanh at the output, LeakyReLU(0.2) in D, no fully
connected hidden layers, weights ~ N(0, 0.02), Adam with lr 2e-4 and β₁ 0.5.

Two variants come from ``image_size``: 64×64 (the paper's CelebA/LSUN
network: 4×4 -> 8 -> 16 -> 32 -> 64 with 512-256-128-64 feature maps at width
64) and 28×28 for MNIST (7×7 -> 14 -> 28). Any 4·2^k or 7·2^k size works.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import ZooConfig
from .blocks import init_normal_
from .gan import UnconditionalGAN

__all__ = ["DCGANConfig", "DCGAN", "DCGenerator", "DCDiscriminator", "upsampling_plan"]


def upsampling_plan(image_size: int) -> tuple[int, int]:
    """(start size, number of 2× steps) with start · 2^steps = image_size; start is 4 or 7.

    Raises
    ------
    ValueError
        When ``image_size`` is not 4·2^k or 7·2^k with k >= 1.
    """
    for start in (7, 4):
        size, k = image_size, 0
        while size > start and size % 2 == 0:
            size //= 2
            k += 1
        if size == start and k >= 1:
            return start, k
    raise ValueError(f"image_size must be 4·2^k or 7·2^k with k >= 1 (8, 14, 16, 28, 32, 56, 64, 128, ...), got {image_size}")


@dataclass(frozen=True)
class DCGANConfig(ZooConfig):
    """Architecture and optimisation of :class:`DCGAN` (defaults: the paper's 64×64 RGB network).

    Attributes
    ----------
    image_size : int
        64 (CelebA) or 28 (MNIST); any 4·2^k or 7·2^k.
    channels : int
        3 (RGB) or 1 (grayscale).
    latent_dim : int
    width : int
        Feature maps of G's last hidden layer and D's first; doubling towards
        the 4×4 (7×7) end.
    loss : {"nonsaturating", "lsgan", "hinge"}
    lr, beta1, beta2 : float
        Adam, for both networks.
    """

    image_size: int = 64
    channels: int = 3
    latent_dim: int = 100
    width: int = 64
    loss: str = "nonsaturating"
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999

    def __post_init__(self):
        self._int("image_size", 8)
        upsampling_plan(self.image_size)
        self._int("channels", 1)
        self._int("latent_dim", 1)
        self._int("width", 1)
        self._choice("loss", ("nonsaturating", "lsgan", "hinge"))
        self._float("lr", 0.0, open_min=True)
        self._float("beta1", 0.0, 0.999)
        self._float("beta2", 0.0, 0.9999)


class DCGenerator(nn.Module):
    """z (B, latent, 1, 1) or (B, latent) -> images (B, channels, S, S) in [-1, 1].

    ``in_features`` extra inputs (cGAN's one-hot label) are concatenated to z by the caller.
    """

    def __init__(self, in_features: int, channels: int, image_size: int, width: int):
        super().__init__()
        start, k = upsampling_plan(image_size)
        c = width * 2 ** (k - 1)
        # The "project and reshape" of the paper, written as a transposed convolution on a 1×1 input.
        layers: list[nn.Module] = [nn.ConvTranspose2d(in_features, c, start, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU(True)]
        for _ in range(k - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_normal_(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCDiscriminator(nn.Module):
    """images (B, in_channels, S, S) -> logits (B, 1); no batch norm on the input layer."""

    def __init__(self, in_channels: int, image_size: int, width: int):
        super().__init__()
        start, k = upsampling_plan(image_size)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c = width
        for _ in range(k - 1):
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2, True)]
            c *= 2
        layers.append(nn.Conv2d(c, 1, start, 1, 0))
        self.net = nn.Sequential(*layers)
        init_normal_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)


class DCGAN(UnconditionalGAN):
    """Radford's DCGAN.

    Networks: ``G`` (z (B, latent_dim) -> images (B, C, S, S)) and ``D``
    (images -> logits (B, 1)).

    Examples
    --------
    >>> import gan_zoo
    >>> model = gan_zoo.build("dcgan", image_size=28, channels=1, width=8)
    >>> model.sample(2, seed=0).shape
    torch.Size([2, 1, 28, 28])
    """

    name = "dcgan"
    config_class = DCGANConfig

    def __init__(self, config: DCGANConfig):
        super().__init__(config)
        self.G = DCGenerator(config.latent_dim, config.channels, config.image_size, config.width)
        self.D = DCDiscriminator(config.channels, config.image_size, config.width)
