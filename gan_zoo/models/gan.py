"""The original GAN (Goodfellow et al., 2014): MLP generator and discriminator on flattened images.

G maps noise z ~ N(0, I) through fully connected ReLU layers to an image
(tanh, [-1, 1]); D maps the flattened image through LeakyReLU layers with
dropout (the paper used maxout with dropout) to one logit. Trained with the
paper's minimax objective in its non-saturating form (G maximises
log D(G(z))): one D step, then one G step, per batch; Adam.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .. import losses
from ..training import Phase
from .base import ZooConfig, ZooModel, _check_n
from .blocks import mlp

__all__ = ["GANConfig", "GAN"]


@dataclass(frozen=True)
class GANConfig(ZooConfig):
    """Architecture and optimisation of :class:`GAN` (defaults: MNIST, 28×28 grayscale).

    Attributes
    ----------
    image_size, channels : int
        Images are (channels, image_size, image_size).
    latent_dim : int
        Size of the noise vector z.
    hidden : tuple of int
        Widths of G's hidden layers; D uses them in reverse order.
    dropout : float
        Dropout after each hidden layer of D.
    loss : {"nonsaturating", "lsgan", "hinge"}
    lr, beta1, beta2 : float
        Adam, for both networks.
    """

    image_size: int = 28
    channels: int = 1
    latent_dim: int = 100
    hidden: tuple[int, ...] = (256, 512, 1024)
    dropout: float = 0.3
    loss: str = "nonsaturating"
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(self.hidden) if isinstance(self.hidden, list) else self.hidden)
        self._int("image_size", 2)
        self._int("channels", 1)
        self._int("latent_dim", 1)
        self._ints("hidden")
        self._float("dropout", 0.0, 0.99)
        self._choice("loss", ("nonsaturating", "lsgan", "hinge"))
        self._float("lr", 0.0, open_min=True)
        self._float("beta1", 0.0, 0.999)
        self._float("beta2", 0.0, 0.9999)


class UnconditionalGAN(ZooModel):
    """What GAN and DCGAN share: networks ``G`` and ``D``, the alternating
    D/G training of the paper and unconditional sampling. A subclass builds
    ``G`` and ``D`` and says how they map noise to images (:meth:`generate`)
    and images to logits (:meth:`discriminate`).
    """

    def networks(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, C, H, W) in [-1, 1]."""
        return self.G(z)

    def discriminate(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> logits (B, 1)."""
        return self.D(images)

    def training_phases(self, *, steps: int | None) -> list[Phase]:
        c = self.config
        opt_d = torch.optim.Adam(self.D.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))
        opt_g = torch.optim.Adam(self.G.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))

        def d_step(batch, step):
            real = batch[0]
            z = torch.randn(real.shape[0], c.latent_dim, device=real.device)
            fake = self.generate(z).detach()
            return losses.d_loss(c.loss, self.discriminate(real), self.discriminate(fake)), {}

        def g_step(batch, step):
            z = torch.randn(batch[0].shape[0], c.latent_dim, device=batch[0].device)
            return losses.g_loss(c.loss, self.discriminate(self.generate(z))), {}

        return [Phase("D", opt_d, d_step), Phase("G", opt_g, g_step)]

    def sample(self, n: int, labels=None, *, seed: int | None = None) -> torch.Tensor:
        """Generate ``n`` images.

        Parameters
        ----------
        n : int
        labels : None
            Unconditional model: must be None.
        seed : int, optional
            Same seed, same images.

        Returns
        -------
        torch.Tensor, float32 (n, C, H, W) in [-1, 1], on the model's device
        """
        n = _check_n(n)
        if labels is not None:
            raise ValueError(f"labels: {self.name} is unconditional and takes no labels; use cgan for class-conditional samples")
        with self._inference():
            return self.generate(self._noise(n, self.config.latent_dim, seed))

    def preview_images(self, examples):
        return self.sample(64, seed=0), 8


class GAN(UnconditionalGAN):
    """Goodfellow's GAN on flattened images.

    Networks: ``G`` (z (B, latent_dim) -> images (B, C, H, W) in [-1, 1]) and
    ``D`` (images -> logits (B, 1)).

    Examples
    --------
    >>> import gan_zoo
    >>> model = gan_zoo.build("gan", hidden=(32, 64))
    >>> model.sample(4, seed=0).shape
    torch.Size([4, 1, 28, 28])
    """

    name = "gan"
    config_class = GANConfig

    def __init__(self, config: GANConfig):
        super().__init__(config)
        pixels = math.prod(self.image_shape)
        self.G = nn.Sequential(mlp((config.latent_dim, *config.hidden, pixels), activation=nn.ReLU), nn.Tanh())
        self.D = mlp((pixels, *reversed(config.hidden), 1), activation=nn.LeakyReLU(0.2), dropout=config.dropout)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, C, H, W)."""
        return self.G(z).view(-1, *self.image_shape)

    def discriminate(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> logits (B, 1)."""
        return self.D(images.flatten(1))
