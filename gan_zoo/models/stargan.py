"""StarGAN (Choi et al., 2018): one generator translating images into any of several domains.

- G(x, c): the target-domain code c is tiled into constant maps and
  concatenated with the image as extra input channels; 7×7 conv, two 4×4
  stride-2 downsamplings, ``n_blocks`` residual blocks (6), two 4×4 stride-2
  transposed convolutions, 7×7 conv, tanh; instance norm, ReLU.
- D(x) -> (source, classes): a PatchGAN trunk of 4×4 stride-2 convolutions
  with LeakyReLU(0.01) and no normalisation, a 3×3 source head (real/fake
  map) and a domain-classification head covering the whole remaining map.
- Losses: adversarial + λ_cls · classification (real images with their
  labels for D, fakes with the target labels for G) + λ_rec · ‖G(G(x, c), c') − x‖₁
  for G, with λ_cls = 1, λ_rec = 10.
- ``loss="wgan-gp"`` (the paper's default): Wasserstein critic with gradient
  penalty λ_gp = 10, G updated every ``n_critic`` = 5 steps; ``loss="bce"``:
  the binary cross-entropy (non-saturating) form, selectable.
- Adam with lr 1e-4, β = (0.5, 0.999).

Labels are either one domain per image (``labels="domain"``: int64 class
indices, one-hot codes, softmax cross-entropy; e.g. digit styles) or sets of
binary attributes (``labels="attributes"``: float 0/1 vectors, per-attribute
binary cross-entropy; CelebA's hair colour, gender, age). Target labels during
training: a random domain per image, or the attribute vectors of the batch
shuffled, as in the paper's code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .. import losses
from ..training import Phase
from .base import ZooConfig, ZooModel, check_images
from .blocks import ResidualBlock, label_maps, one_hot

__all__ = ["StarGANConfig", "StarGAN"]


@dataclass(frozen=True)
class StarGANConfig(ZooConfig):
    """Architecture and optimisation of :class:`StarGAN` (defaults: the paper's CelebA network, 128×128).

    Attributes
    ----------
    image_size, channels : int
        image_size divisible by 2^d_layers.
    c_dim : int
        Number of domains (``labels="domain"``) or attributes.
    labels : {"attributes", "domain"}
    domain_names : tuple of str
        Optional names of the c_dim domains/attributes (targets can be given by name).
    width : int
        Generator width (64).
    n_blocks : int
        Residual blocks of G (6).
    d_width, d_layers : int
        Discriminator width and stride-2 layers (64 and 6 for 128×128).
    loss : {"wgan-gp", "bce"}
    lambda_cls, lambda_rec, lambda_gp : float
        1, 10, 10.
    n_critic : int
        D steps per G step (5).
    lr, beta1, beta2 : float
    """

    image_size: int = 128
    channels: int = 3
    c_dim: int = 5
    labels: str = "attributes"
    domain_names: tuple[str, ...] = ()
    width: int = 64
    n_blocks: int = 6
    d_width: int = 64
    d_layers: int = 6
    loss: str = "wgan-gp"
    lambda_cls: float = 1.0
    lambda_rec: float = 10.0
    lambda_gp: float = 10.0
    n_critic: int = 5
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999

    def __post_init__(self):
        object.__setattr__(self, "domain_names", tuple(self.domain_names))
        self._int("image_size", 4)
        self._int("channels", 1)
        self._int("c_dim", 1)
        self._choice("labels", ("attributes", "domain"))
        if self.labels == "domain" and self.c_dim < 2:
            raise ValueError(f"c_dim must be >= 2 domains with labels='domain', got {self.c_dim}")
        if self.domain_names and (
            len(self.domain_names) != self.c_dim or not all(isinstance(n, str) and n for n in self.domain_names)
            or len(set(self.domain_names)) != self.c_dim
        ):  # fmt: skip
            raise ValueError(f"domain_names must be {self.c_dim} distinct non-empty strings (c_dim), got {self.domain_names!r}")
        self._int("width", 1)
        self._int("n_blocks", 1)
        self._int("d_width", 1)
        self._int("d_layers", 1, 8)
        if self.image_size % 4 or self.image_size % 2**self.d_layers:
            raise ValueError(
                f"image_size must be divisible by 4 (the generator) and by 2**d_layers = {2**self.d_layers} "
                f"(the discriminator), got {self.image_size}"
            )
        self._choice("loss", ("wgan-gp", "bce"))
        self._float("lambda_cls")
        self._float("lambda_rec")
        self._float("lambda_gp")
        self._int("n_critic", 1)
        self._float("lr", 0.0, open_min=True)
        self._float("beta1", 0.0, 0.999)
        self._float("beta2", 0.0, 0.9999)


class StarGenerator(nn.Module):
    """(images (B, C, H, W), codes (B, c_dim)) -> images (B, C, H, W) in [-1, 1]."""

    def __init__(self, channels: int, c_dim: int, *, width: int, n_blocks: int):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(channels + c_dim, width, 7, padding=3, bias=False),
            nn.InstanceNorm2d(width, affine=True),
            nn.ReLU(True),
        ]
        c = width
        for _ in range(2):
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.InstanceNorm2d(2 * c, affine=True), nn.ReLU(True)]
            c *= 2
        layers += [ResidualBlock(c, padding="zeros", affine=True) for _ in range(n_blocks)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.InstanceNorm2d(c // 2, affine=True), nn.ReLU(True)]
            c //= 2
        layers += [nn.Conv2d(c, channels, 7, padding=3, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, label_maps(codes.to(x.dtype), *x.shape[2:])], 1))


class StarDiscriminator(nn.Module):
    """images (B, C, H, W) -> (source map (B, 1, h, w), class logits (B, c_dim))."""

    def __init__(self, channels: int, c_dim: int, *, image_size: int, width: int, n_layers: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.01)]
        c = width
        for _ in range(n_layers - 1):
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1), nn.LeakyReLU(0.01)]
            c *= 2
        self.trunk = nn.Sequential(*layers)
        self.source = nn.Conv2d(c, 1, 3, 1, 1, bias=False)
        self.classes = nn.Conv2d(c, c_dim, image_size // 2**n_layers, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.source(h), self.classes(h).flatten(1)


class StarGAN(ZooModel):
    """Choi's StarGAN.

    Networks: ``G`` (:meth:`generate` (images, codes) -> images) and ``D``
    (images -> (source map, class logits)). Training batches are (images,
    labels): int64 (B,) domains or float (B, c_dim) attributes.

    Examples
    --------
    >>> import gan_zoo, torch
    >>> model = gan_zoo.build("stargan", image_size=28, channels=1, c_dim=3, labels="domain",
    ...                       width=8, n_blocks=1, d_layers=2)
    >>> model.translate(torch.zeros(2, 1, 28, 28), target=2).shape
    torch.Size([2, 1, 28, 28])
    """

    name = "stargan"
    config_class = StarGANConfig
    kind = "translation"

    def __init__(self, config: StarGANConfig):
        super().__init__(config)
        self.G = StarGenerator(config.channels, config.c_dim, width=config.width, n_blocks=config.n_blocks)
        self.D = StarDiscriminator(config.channels, config.c_dim, image_size=config.image_size,
                                   width=config.d_width, n_layers=config.d_layers)  # fmt: skip

    @property
    def n_classes(self) -> int | None:
        return self.config.c_dim if self.config.labels == "domain" else None

    def networks(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def codes(self, labels: torch.Tensor) -> torch.Tensor:
        """Labels as the generator's float codes (B, c_dim): one-hot domains, or the attributes."""
        return one_hot(labels, self.config.c_dim) if self.config.labels == "domain" else labels.float()

    def _random_targets(self, labels: torch.Tensor) -> torch.Tensor:
        if self.config.labels == "domain":
            return torch.randint(0, self.config.c_dim, labels.shape, device=labels.device)
        return labels[torch.randperm(labels.shape[0], device=labels.device)]

    def training_phases(self, *, steps: int | None) -> list[Phase]:
        c = self.config
        betas = (c.beta1, c.beta2)
        opt_d = torch.optim.Adam(self.D.parameters(), lr=c.lr, betas=betas)
        opt_g = torch.optim.Adam(self.G.parameters(), lr=c.lr, betas=betas)
        wgan = c.loss == "wgan-gp"
        adv_kind = "wgan" if wgan else "nonsaturating"

        def d_step(batch, step):
            real, labels = batch
            fake = self.G(real, self.codes(self._random_targets(labels))).detach()
            src_real, cls_real = self.D(real)
            src_fake, _ = self.D(fake)
            adv = losses.d_loss(adv_kind, src_real, src_fake)
            cls = losses.classification_loss(cls_real, labels)
            loss = adv + c.lambda_cls * cls
            logs = {"adv": adv.detach(), "cls": cls.detach()}
            if wgan:
                gp = losses.gradient_penalty(lambda x: self.D(x)[0], real, fake)
                loss = loss + c.lambda_gp * gp
                logs["gp"] = gp.detach()
            return loss, logs

        def g_step(batch, step):
            real, labels = batch
            targets = self._random_targets(labels)
            fake = self.G(real, self.codes(targets))
            src, cls_logits = self.D(fake)
            adv = losses.g_loss(adv_kind, src)
            cls = losses.classification_loss(cls_logits, targets)
            rec = losses.l1_loss(self.G(fake, self.codes(labels)), real)
            loss = adv + c.lambda_cls * cls + c.lambda_rec * rec
            return loss, {"adv": adv.detach(), "cls": cls.detach(), "rec": rec.detach()}

        return [Phase("D", opt_d, d_step), Phase("G", opt_g, g_step, every=c.n_critic)]

    def translate(self, images, target) -> torch.Tensor:
        """Translate images into the ``target`` domain(s).

        Parameters
        ----------
        images : torch.Tensor or numpy.ndarray, float (N, C, H, W) in [-1, 1]
        target
            ``labels="domain"``: a domain index or name (all images), or N of
            them. ``labels="attributes"``: a 0/1 vector of c_dim attributes
            (all images) or an (N, c_dim) array.

        Returns
        -------
        torch.Tensor, float32 (N, C, H, W) in [-1, 1], on the model's device

        Raises
        ------
        ValueError
            Unknown domain names, indices out of range, wrong shapes.
        """
        x = check_images(images, self.image_shape, name="images").to(self.device)
        codes = self._target_codes(target, x.shape[0])
        with self._inference():
            return self.G(x, codes)

    def _target_codes(self, target, n: int) -> torch.Tensor:
        c = self.config
        if c.labels == "domain":
            names = c.domain_names
            if isinstance(target, str) or (isinstance(target, (list, tuple)) and target and isinstance(target[0], str)):
                items = [target] * n if isinstance(target, str) else list(target)
                unknown = [t for t in items if t not in names]
                if unknown:
                    raise ValueError(f"target: unknown domain(s) {unknown}; this model knows {list(names) or 'no names, use indices'}")
                target = [names.index(t) for t in items]
            return self.codes(self._labels(target, n, name="target"))
        t = torch.as_tensor(np.asarray(target.cpu() if isinstance(target, torch.Tensor) else target, dtype=np.float32))
        if t.ndim == 1:
            t = t.expand(n, -1)
        if t.shape != (n, c.c_dim):
            raise ValueError(f"target: attribute codes must be ({c.c_dim},) or ({n}, {c.c_dim}), got {tuple(np.shape(target))}")
        if not bool(((t == 0) | (t == 1)).all()):
            raise ValueError("target: attribute codes must be 0 or 1")
        return t.to(self.device)

    def preview_images(self, examples):
        # Each row: an input image, then its translation into every domain (attribute flipped).
        if examples is None:
            raise ValueError("examples: a StarGAN preview needs example images")
        x = examples[:8].to(self.device)
        K = self.config.c_dim
        rows = [x]
        with self._inference():
            for k in range(K):
                if self.config.labels == "domain":
                    codes = one_hot(torch.full((x.shape[0],), k, device=x.device), K)
                else:
                    codes = torch.zeros(x.shape[0], K, device=x.device)
                    codes[:, k] = 1.0
                rows.append(self.G(x, codes))
        return torch.stack(rows, 1).flatten(0, 1), K + 1
