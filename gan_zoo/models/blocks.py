"""Building blocks shared by the zoo's networks.

Everything here is a plain ``nn.Module`` or a function returning one, so the
model files read like the architecture tables of their papers.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "init_normal_",
    "mlp",
    "ResidualBlock",
    "PatchDiscriminator",
    "ImagePool",
    "one_hot",
    "label_maps",
]


def init_normal_(module: nn.Module, std: float = 0.02) -> nn.Module:
    """DCGAN/CycleGAN initialisation, in place: weights ~ N(0, std), norm scales ~ N(1, std), biases 0.

    Radford et al. (2015): "All weights were initialized from a zero-centered
    Normal distribution with standard deviation 0.02"; CycleGAN keeps it.
    Returns ``module``.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module


def mlp(sizes: tuple[int, ...], *, activation: type[nn.Module] | nn.Module, dropout: float = 0.0) -> nn.Sequential:
    """Linear layers ``sizes[0] -> ... -> sizes[-1]`` with ``activation`` (and dropout) between them.

    Nothing follows the last layer: the caller adds tanh (a generator) or
    nothing (a discriminator's logit).
    """
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(activation() if isinstance(activation, type) else activation)
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """Two 3×3 convolutions with normalisation and a skip: x + F(x).

    ``padding="reflect"`` with plain instance norm is CycleGAN's block
    (reflection padding against border artifacts); ``"zeros"`` with an affine
    instance norm and bias-free convolutions is StarGAN's.
    """

    def __init__(self, channels: int, *, padding: str = "reflect", affine: bool = False):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode=padding, bias=not affine),
            nn.InstanceNorm2d(channels, affine=affine),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode=padding, bias=not affine),
            nn.InstanceNorm2d(channels, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al., 2017): a map of real/fake logits, one per overlapping patch.

    ``n_layers`` stride-2 convolutions (width doubling, at most 8×), one
    stride-1 convolution, then a 1-channel stride-1 convolution; all 4×4 with
    padding 1, instance norm (no affine part, as in CycleGAN) after all but
    the first, LeakyReLU(0.2). With
    ``n_layers=3`` and width 64 this is the 70×70 PatchGAN of CycleGAN
    (C64-C128-C256-C512, each output logit sees 70×70 input pixels).
    """

    def __init__(self, channels: int, *, width: int = 64, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        c_out = width
        for i in range(1, n_layers + 1):
            c_in, c_out = c_out, width * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(c_in, c_out, 4, stride=stride, padding=1), nn.InstanceNorm2d(c_out),
                       nn.LeakyReLU(0.2, inplace=True)]  # fmt: skip
        layers.append(nn.Conv2d(c_out, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ImagePool(nn.Module):
    """A history of generated images fed to the discriminator (Shrivastava et al., 2017).

    Up to ``size`` earlier fakes are kept. For each new fake: while the pool
    is filling, the fake is stored and passed on; afterwards, with probability
    1/2 a random stored fake is passed on and replaced by the new one,
    otherwise the new fake is passed on. CycleGAN uses ``size=50``.

    The pool is a module whose stored images and fill count are *buffers*, so
    the training loop checkpoints it with the networks and a resumed run
    continues with the very same history; its random draws come from torch's
    global generator, which the loop checkpoints too.
    """

    def __init__(self, size: int, image_shape: tuple[int, int, int]):
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, *image_shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    @torch.no_grad()
    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        """Return a batch like ``fakes`` (detached), mixing in stored fakes once the pool is full."""
        fakes = fakes.detach()
        if self.size == 0:
            return fakes
        out = []
        for image in fakes:
            n = int(self.count)
            if n < self.size:
                self.images[n] = image
                self.count += 1
                out.append(image)
            elif torch.rand(()).item() < 0.5:
                slot = int(torch.randint(0, self.size, ()))
                out.append(self.images[slot].clone())
                self.images[slot] = image
            else:
                out.append(image)
        return torch.stack(out)


def one_hot(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """int64 (B,) -> float32 (B, n_classes) on the labels' device."""
    return nn.functional.one_hot(labels, n_classes).float()


def label_maps(codes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, K) label codes -> (B, K, H, W) constant maps, to concatenate with images as channels."""
    return codes[:, :, None, None].expand(-1, -1, height, width)
