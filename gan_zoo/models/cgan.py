"""Conditional GAN (Mirza & Osindero, 2014): the class label y is given to both G and D.

Both networks see y as a one-hot vector. ``arch="mlp"`` is the paper's
network: G gets [z, onehot(y)], D gets [flattened image, onehot(y)], fully
connected layers (the paper joins two hidden layers; concatenating at the
input is the same family and simpler). ``arch="conv"`` is the convolutional
variant: DCGAN's generator with onehot(y) concatenated to z, and DCGAN's
discriminator with onehot(y) as K constant extra input channels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .. import losses
from ..training import Phase
from .base import ZooConfig, ZooModel, _check_n
from .blocks import label_maps, mlp, one_hot
from .dcgan import DCDiscriminator, DCGenerator, upsampling_plan

__all__ = ["CGANConfig", "CGAN"]


@dataclass(frozen=True)
class CGANConfig(ZooConfig):
    """Architecture and optimisation of :class:`CGAN` (defaults: the MLP on MNIST).

    Attributes
    ----------
    arch : {"mlp", "conv"}
    n_classes : int
        Label classes; labels are 0 .. n_classes - 1.
    image_size, channels : int
    latent_dim : int
    hidden : tuple of int
        MLP: G's hidden widths (D uses them reversed).
    dropout : float
        MLP: dropout in D.
    width : int
        conv: DCGAN width.
    loss : {"nonsaturating", "lsgan", "hinge"}
    lr, beta1, beta2 : float
    """

    arch: str = "mlp"
    n_classes: int = 10
    image_size: int = 28
    channels: int = 1
    latent_dim: int = 100
    hidden: tuple[int, ...] = (256, 512, 1024)
    dropout: float = 0.3
    width: int = 64
    loss: str = "nonsaturating"
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(self.hidden) if isinstance(self.hidden, list) else self.hidden)
        self._choice("arch", ("mlp", "conv"))
        self._int("n_classes", 2)
        self._int("image_size", 2)
        if self.arch == "conv":
            upsampling_plan(self.image_size)
        self._int("channels", 1)
        self._int("latent_dim", 1)
        self._ints("hidden")
        self._float("dropout", 0.0, 0.99)
        self._int("width", 1)
        self._choice("loss", ("nonsaturating", "lsgan", "hinge"))
        self._float("lr", 0.0, open_min=True)
        self._float("beta1", 0.0, 0.999)
        self._float("beta2", 0.0, 0.9999)


class CGAN(ZooModel):
    """Mirza's conditional GAN, MLP or convolutional.

    Networks: ``G`` and ``D``; use :meth:`generate` (z, labels) -> images and
    :meth:`discriminate` (images, labels) -> logits (B, 1).

    Examples
    --------
    >>> import gan_zoo
    >>> model = gan_zoo.build("cgan", hidden=(32, 64))
    >>> model.sample(3, labels=[7, 7, 1], seed=0).shape
    torch.Size([3, 1, 28, 28])
    """

    name = "cgan"
    config_class = CGANConfig

    def __init__(self, config: CGANConfig):
        super().__init__(config)
        K = config.n_classes
        if config.arch == "mlp":
            pixels = math.prod(self.image_shape)
            self.G = nn.Sequential(mlp((config.latent_dim + K, *config.hidden, pixels), activation=nn.ReLU), nn.Tanh())
            self.D = mlp((pixels + K, *reversed(config.hidden), 1), activation=nn.LeakyReLU(0.2), dropout=config.dropout)
        else:
            self.G = DCGenerator(config.latent_dim + K, config.channels, config.image_size, config.width)
            self.D = DCDiscriminator(config.channels + K, config.image_size, config.width)

    @property
    def n_classes(self) -> int:
        return self.config.n_classes

    def networks(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def generate(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """z float (B, latent_dim), labels int64 (B,) -> images (B, C, H, W)."""
        out = self.G(torch.cat([z, one_hot(labels, self.n_classes)], 1))
        return out.view(-1, *self.image_shape)

    def discriminate(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W), labels int64 (B,) -> logits (B, 1)."""
        code = one_hot(labels, self.n_classes).to(images.dtype)
        if self.config.arch == "mlp":
            return self.D(torch.cat([images.flatten(1), code], 1))
        return self.D(torch.cat([images, label_maps(code, *images.shape[2:])], 1))

    def training_phases(self, *, steps: int | None) -> list[Phase]:
        c = self.config
        opt_d = torch.optim.Adam(self.D.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))
        opt_g = torch.optim.Adam(self.G.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))

        def d_step(batch, step):
            real, labels = batch
            # Fakes for the same labels as the real batch: D judges image and label together.
            fake = self.generate(torch.randn(real.shape[0], c.latent_dim, device=real.device), labels).detach()
            return losses.d_loss(c.loss, self.discriminate(real, labels), self.discriminate(fake, labels)), {}

        def g_step(batch, step):
            real, labels = batch
            fake = self.generate(torch.randn(real.shape[0], c.latent_dim, device=real.device), labels)
            return losses.g_loss(c.loss, self.discriminate(fake, labels)), {}

        return [Phase("D", opt_d, d_step), Phase("G", opt_g, g_step)]

    def sample(self, n: int, labels=None, *, seed: int | None = None) -> torch.Tensor:
        """Generate ``n`` images of the given classes.

        Parameters
        ----------
        n : int
        labels : int or sequence of int (n,), optional
            Class of each image (one int: all of that class). Default:
            0, 1, ..., K-1, 0, 1, ... (every class equally often).
        seed : int, optional
            Same seed, same noise.

        Returns
        -------
        torch.Tensor, float32 (n, C, H, W) in [-1, 1], on the model's device

        Raises
        ------
        ValueError
            ``labels`` outside [0, n_classes - 1] or of the wrong length.
        """
        n = _check_n(n)
        y = self._labels(labels, n)
        with self._inference():
            return self.generate(self._noise(n, self.config.latent_dim, seed), y)

    def preview_images(self, examples):
        # One row per class, eight samples each.
        K = self.n_classes
        return self.sample(8 * K, labels=torch.arange(K).repeat_interleave(8), seed=0), 8
