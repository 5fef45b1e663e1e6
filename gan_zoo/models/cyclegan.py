"""CycleGAN (Zhu et al., 2017): unpaired translation between domains A and B.

Two ResNet generators (G_AB: A -> B, G_BA: B -> A) and two 70×70 PatchGAN
discriminators (D_A judges A images, D_B judges B images). Per the paper:

- generator ``c7s1-w, d2w, d4w, R4w × n_blocks, u2w, uw, c7s1-C``: reflection
  padding, instance norm, ReLU, tanh output; 9 blocks for 256×256, 6 for 128×128;
- least-squares adversarial loss; the discriminators' objective halved;
- cycle loss ‖G_BA(G_AB(a)) − a‖₁ + ‖G_AB(G_BA(b)) − b‖₁ weighted λ = 10;
- identity loss ‖G_AB(b) − b‖₁ + ‖G_BA(a) − a‖₁ weighted 0.5 λ;
- discriminators fed from a pool of the 50 last fakes;
- Adam (lr 2e-4, β₁ 0.5); lr constant for the first half of training, then
  linearly down to zero (the paper: 100 + 100 epochs);
- both generators in one optimizer, both discriminators in another.

The image pools are part of the training state: they are buffers of modules
the loop checkpoints (see :class:`~gan_zoo.models.blocks.ImagePool`), so a
resumed run continues with the same history.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import losses
from ..training import Phase
from .base import ZooConfig, ZooModel, check_images
from .blocks import ImagePool, PatchDiscriminator, ResidualBlock, init_normal_

__all__ = ["CycleGANConfig", "CycleGAN", "ResnetGenerator"]


@dataclass(frozen=True)
class CycleGANConfig(ZooConfig):
    """Architecture and optimisation of :class:`CycleGAN` (defaults: the paper's 256×256 RGB network).

    Attributes
    ----------
    image_size, channels : int
        Both domains have images (channels, image_size, image_size);
        image_size must be divisible by 2^n_downsampling.
    width : int
        Generator width w (64 in the paper).
    n_blocks : int
        Residual blocks: 9 (256×256) or 6 (128×128).
    n_downsampling : int
        Stride-2 convolutions before the blocks (2 in the paper).
    d_width, d_layers : int
        PatchGAN width and stride-2 layers (64 and 3: the 70×70 PatchGAN).
    lambda_cycle : float
        Weight of the cycle loss (10).
    lambda_identity : float
        Identity weight as a fraction of ``lambda_cycle`` (0.5).
    pool_size : int
        Fakes remembered for the discriminators (50; 0: no pool).
    lr, beta1, beta2 : float
    decay_fraction : float
        Fraction of the planned steps over which lr decays linearly to 0 at
        the end (0.5; 0: constant). Runs stopped by time have a constant lr.
    """

    image_size: int = 256
    channels: int = 3
    width: int = 64
    n_blocks: int = 9
    n_downsampling: int = 2
    d_width: int = 64
    d_layers: int = 3
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    pool_size: int = 50
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    decay_fraction: float = 0.5

    def __post_init__(self):
        self._int("image_size", 4)
        self._int("channels", 1)
        self._int("width", 1)
        self._int("n_blocks", 1)
        self._int("n_downsampling", 0, 6)
        if self.image_size % 2**self.n_downsampling:
            raise ValueError(f"image_size must be divisible by 2**n_downsampling = {2**self.n_downsampling}, got {self.image_size}")
        self._int("d_width", 1)
        self._int("d_layers", 1, 6)
        if self.image_size < 2**self.d_layers * 4:
            raise ValueError(
                f"d_layers: {self.d_layers} stride-2 layers leave nothing of a {self.image_size}px image "
                f"for the PatchGAN; use d_layers <= {max(1, (self.image_size // 4).bit_length() - 1)}"
            )
        self._float("lambda_cycle")
        self._float("lambda_identity")
        self._int("pool_size", 0)
        self._float("lr", 0.0, open_min=True)
        self._float("beta1", 0.0, 0.999)
        self._float("beta2", 0.0, 0.9999)
        self._float("decay_fraction", 0.0, 1.0)


class ResnetGenerator(nn.Module):
    """CycleGAN's generator: images (B, C, H, W) -> images (B, C, H, W) in [-1, 1]."""

    def __init__(self, in_channels: int, out_channels: int, *, width: int, n_blocks: int, n_downsampling: int,
                 padding: str = "reflect"):  # fmt: skip
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 7, padding=3, padding_mode=padding),
            nn.InstanceNorm2d(width),
            nn.ReLU(True),
        ]
        c = width
        for _ in range(n_downsampling):
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.InstanceNorm2d(2 * c), nn.ReLU(True)]
            c *= 2
        layers += [ResidualBlock(c, padding=padding) for _ in range(n_blocks)]
        for _ in range(n_downsampling):
            layers += [
                nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1),
                nn.InstanceNorm2d(c // 2),
                nn.ReLU(True),
            ]
            c //= 2
        layers += [nn.Conv2d(c, out_channels, 7, padding=3, padding_mode=padding), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CycleGAN(ZooModel):
    """Zhu's CycleGAN between domains A and B.

    Networks: ``G_AB``, ``G_BA`` (ResNet generators), ``D_A``, ``D_B``
    (PatchGANs); training state: ``pool_A``, ``pool_B``. Training batches
    are pairs (images of A, images of B), unpaired.

    Examples
    --------
    >>> import gan_zoo, torch
    >>> model = gan_zoo.build("cyclegan", image_size=28, channels=1, width=8, n_blocks=1, d_layers=2)
    >>> model.translate(torch.zeros(2, 1, 28, 28), target="B").shape
    torch.Size([2, 1, 28, 28])
    """

    name = "cyclegan"
    config_class = CycleGANConfig
    kind = "translation"
    domains = ("A", "B")

    def __init__(self, config: CycleGANConfig):
        super().__init__(config)
        g = dict(width=config.width, n_blocks=config.n_blocks, n_downsampling=config.n_downsampling)
        C = config.channels
        self.G_AB = init_normal_(ResnetGenerator(C, C, **g))
        self.G_BA = init_normal_(ResnetGenerator(C, C, **g))
        self.D_A = init_normal_(PatchDiscriminator(C, width=config.d_width, n_layers=config.d_layers))
        self.D_B = init_normal_(PatchDiscriminator(C, width=config.d_width, n_layers=config.d_layers))
        self.pool_A = ImagePool(config.pool_size, self.image_shape)
        self.pool_B = ImagePool(config.pool_size, self.image_shape)

    def networks(self) -> dict[str, nn.Module]:
        return {"G_AB": self.G_AB, "G_BA": self.G_BA, "D_A": self.D_A, "D_B": self.D_B}

    def training_state(self) -> dict[str, nn.Module]:
        return {"pool_A": self.pool_A, "pool_B": self.pool_B}

    def training_phases(self, *, steps: int | None) -> list[Phase]:
        c = self.config
        betas = (c.beta1, c.beta2)
        opt_g = torch.optim.Adam([*self.G_AB.parameters(), *self.G_BA.parameters()], lr=c.lr, betas=betas)
        opt_d = torch.optim.Adam([*self.D_A.parameters(), *self.D_B.parameters()], lr=c.lr, betas=betas)
        factor = _linear_decay(steps, c.decay_fraction)
        sched_g = torch.optim.lr_scheduler.LambdaLR(opt_g, factor)
        sched_d = torch.optim.lr_scheduler.LambdaLR(opt_d, factor)
        # The D phase reuses the fakes of the G phase of the same step (as the paper's
        # implementation does), so G runs first and leaves them here.
        fakes: dict[str, torch.Tensor] = {}

        def g_step(batch, step):
            a, b = batch
            fake_b, fake_a = self.G_AB(a), self.G_BA(b)
            adv = losses.g_loss("lsgan", self.D_B(fake_b)) + losses.g_loss("lsgan", self.D_A(fake_a))
            cycle = losses.l1_loss(self.G_BA(fake_b), a) + losses.l1_loss(self.G_AB(fake_a), b)
            logs = {"adv": adv.detach(), "cycle": cycle.detach()}
            loss = adv + c.lambda_cycle * cycle
            if c.lambda_identity > 0:
                identity = losses.l1_loss(self.G_AB(b), b) + losses.l1_loss(self.G_BA(a), a)
                loss = loss + c.lambda_identity * c.lambda_cycle * identity
                logs["identity"] = identity.detach()
            fakes["A"], fakes["B"] = fake_a.detach(), fake_b.detach()
            return loss, logs

        def d_step(batch, step):
            a, b = batch
            fake_a, fake_b = self.pool_A.query(fakes.pop("A")), self.pool_B.query(fakes.pop("B"))
            loss_a = losses.d_loss("lsgan", self.D_A(a), self.D_A(fake_a))
            loss_b = losses.d_loss("lsgan", self.D_B(b), self.D_B(fake_b))
            return loss_a + loss_b, {"D_A": loss_a.detach(), "D_B": loss_b.detach()}

        return [Phase("G", opt_g, g_step, scheduler=sched_g), Phase("D", opt_d, d_step, scheduler=sched_d)]

    def translate(self, images, target="B") -> torch.Tensor:
        """Translate images into domain ``target``.

        Parameters
        ----------
        images : torch.Tensor or numpy.ndarray, float (N, C, H, W) in [-1, 1]
            Images of the *other* domain.
        target : {"B", "A"}, default "B"
            "B": images are from A and go through G_AB; "A": the reverse.

        Returns
        -------
        torch.Tensor, float32 (N, C, H, W) in [-1, 1], on the model's device

        Raises
        ------
        ValueError
            ``target`` not "A"/"B"; ``images`` of the wrong size or channels.
        """
        if target not in self.domains:
            raise ValueError(f"target must be 'A' or 'B' (the domain to translate into), got {target!r}")
        x = check_images(images, self.image_shape, name="images").to(self.device)
        with self._inference():
            return (self.G_AB if target == "B" else self.G_BA)(x)

    def preview_images(self, examples):
        # Rows of (a, G_AB(a), G_BA(G_AB(a))) triples: input, translation, reconstruction.
        if examples is None:
            raise ValueError("examples: a CycleGAN preview needs example images of domain A")
        a = examples[:8].to(self.device)
        with self._inference():
            fake_b = self.G_AB(a)
            rec = self.G_BA(fake_b)
        return torch.stack([a, fake_b, rec], 1).flatten(0, 1), 6


def _linear_decay(steps: int | None, fraction: float):
    """lr factor per optimizer step: 1 until (1 - fraction)·steps, then linearly to 0 at ``steps``.

    A closure, not a callable object: LambdaLR saves the attributes of callable
    objects and would restore an old plan over the one of a resumed run.
    """
    if steps is None or fraction == 0:
        return lambda step: 1.0
    start = int(round(steps * (1 - fraction)))
    span = max(1, steps - start)
    return lambda step: 1.0 - max(0, step - start) / span
