"""The inpainting networks: conditioner C, generator G, discriminator D, and their config.

A window is a P x P patch ``x`` with a mask ``hole`` (1 = unknown). Holes lie in
the central l x l box at offset ``o = (P - l) // 2``. The conditioner sees the
cropped patch ``y = x * (1 - hole)`` and the mask as two channels and runs once
per window; the generator turns a noise vector ``z`` and that conditioning into
the l x l content of the box, many times per window; the fill is pasted into
the unknown pixels of the box and every known pixel passes through unchanged.
The discriminator judges full P x P patches, real ``x`` against composited fakes.

Two presets, both built by :func:`build_model` from a :class:`ModelConfig`:

``seed``
    The reference thesis architecture adapted to one grey channel plus the mask
    and to P = 32 (P = 28, the thesis size, works too). C and D use ReLU, G uses
    transposed convolutions with BatchNorm, D ends in a fully connected layer.
``unet``
    A stronger design aimed at honest uncertainty: a U-Net conditioner whose
    skip connections keep the detail at the hole border, a generator that
    receives ``z`` at every layer (per-channel modulation and spatial noise maps
    computed from ``z``) and uses GroupNorm instead of BatchNorm, and a
    spectrally normalised patch discriminator that also sees the mask.
``harmonic``
    The ``unet`` networks around a classical prior: every window's hole is
    first filled by harmonic interpolation (:func:`harmonic_fill`, the smooth
    surface a classical method would give), C sees that fill as a third
    channel, and G generates a per-sample *residual* on top of it (added in
    logit space, starting at zero). An untrained model therefore already
    fills holes as well as smooth interpolation, and training only has to
    learn texture, edges and spread; with a short CPU budget this is the
    difference between a usable fill and noise. By default a second U-Net
    regresses the mean fill by squared error (``ModelConfig.mean_net``) and
    the samples are centred on it: the adversarial losses bias a GAN's own
    sample mean, a regression has nothing to gain from that. A small head
    on C's output regresses the size of that mean's error by Gaussian
    likelihood (``ModelConfig.std_head``), and the samples' spread is scaled
    to it: the spread of a GAN's samples follows its error only loosely.

Any ``unet`` or ``harmonic`` config can add 2.5D conditioning
(``ModelConfig.context``): windows then carry the neighbouring slices with
their own masks as extra channels, which C and D read; the ``harmonic`` prior
becomes the classical inter-slice fill (:func:`slice_guided_fill`).

Parameter counts at the default geometry (P = 32, l = 18; ``harmonic`` with its
mean network, 111,681 of C's weights, and its std head, 19,361; sampling runs C
once per window):

======  ==========  =========  ===========  =========
preset  C           G          D            total
======  ==========  =========  ===========  =========
seed    10,679      1,942,889  141,281      2,094,849
unet    111,520     78,521     41,937       231,978
harmon  242,706     79,385     41,937       364,028
======  ==========  =========  ===========  =========
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ._checks import check_choice, check_int

#: Names of the architectures a :class:`ModelConfig` can describe.
PRESET_NAMES = ("seed", "unet", "harmonic")
#: The preset used when none is named: chosen by held-out fill quality and calibration
#: on real SiC/diamond slices (``benchmarks/quality.py``; table in ``benchmarks/README.md``).
DEFAULT_PRESET = "harmonic"

# The reference's generator stack is fixed: five transposed convolutions that
# grow 1 -> 5 -> 11 -> 13 -> 15 -> 18, so the seed preset only fills 18 x 18 boxes.
_SEED_HOLE = 18
# The reference conditioner maps 28 -> 18 with valid convolutions (-2, -4, -4);
# each extra valid k5 convolution removes 4 more pixels, so P = 28 + 4k.
_SEED_MIN_PATCH = 28
# The reference's widths are fixed (C: 4, 8, 16; G: 64 ... 8; D: 16, 32, 32).
_SEED_WIDTH = 4
# C's output channels in the reference (3 x 18 x 18 = 972 conditioning values).
_SEED_COND_CHANNELS = 3

# unet preset: size of the style vector z is mapped to, and the channels of the
# coarse spatial noise map computed from z (the fine map has one channel).
_STYLE_DIM = 64
_COARSE_NOISE_CHANNELS = 4
# Neighbouring slices on each side a window may carry (17 slices in all).
_MAX_CONTEXT = 8
# Keys model.json may lack: fields added after the first model files were written.
_OPTIONAL_KEYS = ("context", "mean_net", "std_head")
# Bounds of the std head's log output: a spread from 1e-4 (a pixel the fill is sure of) to
# beyond any error on [0, 1] intensities.
_LOG_STD_MIN, _LOG_STD_MAX = -9.0, 1.0
# GroupNorm groups; every unet channel count is a multiple of 4 (width % 4 == 0).
_GROUPS = 4
_LEAKY_SLOPE = 0.2


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of an inpainting GAN; saved as JSON with every checkpoint.

    Use :func:`config_for` to start from a preset's defaults; the defaults of
    the fields below are those of the ``seed`` preset.

    Attributes
    ----------
    preset : {"seed", "unet", "harmonic"}
        Which architecture.
    patch : int
        Patch side P. ``seed``: 28 + 4k (k >= 0; 32 by default). ``unet``: >= 8.
    hole : int
        Side l of the central box the generator fills. ``seed``: 18 only.
        ``unet``: 4 <= l < P.
    z_dim : int
        Dimension of the noise vector z (>= 1).
    width : int
        Base channel count. ``seed``: must be 4 (the reference's fixed layer
        widths). ``unet``: a multiple of 4; C uses width, 2 width, 4 width
        channels, G 2 width and width, D width, 2 width, 4 width; C's
        output (the conditioning) has width channels.
    context : int
        Neighbouring slices on each side of the filled one that C and D also
        see (2.5D conditioning): windows then have ``2 context + 1`` channels,
        the slices ``s - context ... s + context`` in order, and the fill goes
        into the centre one. Real artifacts rarely cover the same pixels in the
        next slice, so the neighbours show what the hole hides. 0 (default):
        one slice. ``seed``: 0 only; others: 0 to 8.
    mean_net : bool
        ``harmonic`` only: a second U-Net, trained by squared error alone,
        corrects the prior's logit into a regressed mean (the estimate of the
        posterior mean that squared error gives), G's residuals sit on that
        mean, and each window's samples are shifted so that their mean is
        exactly it (:meth:`InpaintingGAN.regressed_mean`). The adversarial
        losses never reach that network, so G only has to supply spread and
        texture. False: G's residuals sit on the prior, and the mean fill is
        the mean of G's samples.
    std_head : bool
        Needs ``mean_net``: a small convolutional head reads C's output and
        regresses, per pixel, the standard deviation of the regressed mean's
        error (trained by Gaussian negative log-likelihood alone, on the
        error with the mean held fixed; :meth:`InpaintingGAN.regressed_std`).
        Each pixel's samples are then scaled about the mean so that their
        standard deviation is that one: G supplies the shape of the spread
        and the texture, the head its size. False: the spread is G's own.

    Raises
    ------
    TypeError
        A field of the wrong type (``bool`` is not an integer).
    ValueError
        An unknown preset or a value the preset does not support; the message
        names the field.

    Examples
    --------
    >>> cfg = ModelConfig(preset="seed")
    >>> cfg.patch, cfg.hole, cfg.z_dim
    (32, 18, 200)
    >>> ModelConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    preset: str = "seed"
    patch: int = 32
    hole: int = 18
    z_dim: int = 200
    width: int = _SEED_WIDTH
    context: int = 0
    mean_net: bool = False
    std_head: bool = False

    def __post_init__(self):
        if not isinstance(self.preset, str):
            raise TypeError(f"preset must be a string, got {type(self.preset).__name__} {self.preset!r}")
        check_choice(self.preset, PRESET_NAMES, name="preset")
        for name in ("patch", "hole", "z_dim", "width"):
            object.__setattr__(self, name, check_int(getattr(self, name), name=name, minimum=1))
        object.__setattr__(self, "context", check_int(self.context, name="context", minimum=0, maximum=_MAX_CONTEXT))
        if not isinstance(self.mean_net, bool):
            raise TypeError(f"mean_net must be True or False, got {type(self.mean_net).__name__} {self.mean_net!r}")
        if self.mean_net and self.preset != "harmonic":
            raise ValueError(f"mean_net needs the harmonic preset (it corrects the prior), got preset {self.preset!r}")
        if not isinstance(self.std_head, bool):
            raise TypeError(f"std_head must be True or False, got {type(self.std_head).__name__} {self.std_head!r}")
        if self.std_head and not self.mean_net:
            raise ValueError("std_head needs mean_net (it regresses the error of the regressed mean)")
        if self.preset == "seed":
            self._check_seed()
        else:
            self._check_unet()

    def _check_seed(self):
        if self.patch < _SEED_MIN_PATCH or (self.patch - _SEED_MIN_PATCH) % 4:
            raise ValueError(f"patch must be 28 + 4k (k >= 0) for the seed preset, got {self.patch}")
        if self.hole != _SEED_HOLE:
            raise ValueError(f"hole must be {_SEED_HOLE} for the seed preset (its generator stack is fixed), got {self.hole}")
        if self.width != _SEED_WIDTH:
            raise ValueError(f"width must be {_SEED_WIDTH} for the seed preset (the reference's layer widths), got {self.width}")
        if self.context:
            raise ValueError(f"context must be 0 for the seed preset (the reference sees one slice), got {self.context}")

    def _check_unet(self):
        if self.patch < 8:
            raise ValueError(f"patch must be >= 8 for the {self.preset} preset (two downsamplings), got {self.patch}")
        if not 4 <= self.hole < self.patch:
            raise ValueError(f"hole must satisfy 4 <= hole < patch ({self.patch}) for the {self.preset} preset, got {self.hole}")
        if self.width % _GROUPS:
            raise ValueError(f"width must be a multiple of {_GROUPS} for the {self.preset} preset (GroupNorm groups), got {self.width}")

    @property
    def offset(self) -> int:
        """Offset ``o = (patch - hole) // 2`` of the central box in both axes."""
        return (self.patch - self.hole) // 2

    @property
    def channels(self) -> int:
        """Slices per window, ``2 context + 1``; the filled one is channel ``context``."""
        return 2 * self.context + 1

    def to_dict(self) -> dict:
        """JSON-serialisable form; inverse of :meth:`from_dict`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data) -> ModelConfig:
        """Rebuild a config from :meth:`to_dict` output, strictly.

        Parameters
        ----------
        data : dict
            The fields of :class:`ModelConfig`; ``context``, ``mean_net`` and
            ``std_head`` may be missing (models written before they existed:
            one slice, no mean network, no std head).

        Returns
        -------
        ModelConfig

        Raises
        ------
        ValueError
            ``data`` is not a dict, a key is missing or unknown, or a value has
            the wrong type or is invalid; the message names the key.

        Examples
        --------
        >>> ModelConfig.from_dict({"preset": "unet", "patch": 32, "hole": 18, "z_dim": 64, "width": 16}).width
        16
        >>> ModelConfig.from_dict({"preset": "seed", "patch": 32, "hole": 18, "z_dim": 200, "width": 4, "depth": 3})
        Traceback (most recent call last):
        ...
        ValueError: model config: unknown key 'depth'
        """
        if not isinstance(data, dict):
            raise ValueError(f"model config: expected a JSON object, got {type(data).__name__}")
        names = [f.name for f in fields(cls)]
        for key in data:
            if key not in names:
                raise ValueError(f"model config: unknown key {key!r}")
        for name in names:
            if name not in data and name not in _OPTIONAL_KEYS:
                raise ValueError(f"model config: missing key {name!r}")
        try:
            return cls(**data)
        except TypeError as exc:
            # check_int / the preset check start their message with the field name.
            raise ValueError(f"model config: {exc}") from exc


#: Default config of every preset, by name.
PRESETS: dict[str, ModelConfig] = {
    "seed": ModelConfig(preset="seed", patch=32, hole=18, z_dim=200, width=_SEED_WIDTH),
    "unet": ModelConfig(preset="unet", patch=32, hole=18, z_dim=64, width=16),
    "harmonic": ModelConfig(preset="harmonic", patch=32, hole=18, z_dim=64, width=16, mean_net=True, std_head=True),
}


def config_for(preset: str, /, **overrides) -> ModelConfig:
    """A preset's default config with some fields replaced.

    Parameters
    ----------
    preset : {"seed", "unet", "harmonic"}
    **overrides
        Fields of :class:`ModelConfig` other than ``preset``. ``mean_net=False``
        without ``std_head`` also turns the std head off (it needs the mean
        network).

    Returns
    -------
    ModelConfig

    Raises
    ------
    ValueError
        Unknown preset, unknown field, ``preset`` among the overrides, or a
        value the preset does not support.

    Examples
    --------
    >>> config_for("unet", width=8).width
    8
    """
    check_choice(preset, PRESETS, name="preset")
    names = {f.name for f in fields(ModelConfig)}
    for key in overrides:
        if key == "preset":
            raise ValueError("overrides: 'preset' is chosen by the first argument")
        if key not in names:
            raise ValueError(f"overrides: unknown field {key!r}")
    if overrides.get("mean_net") is False:
        overrides.setdefault("std_head", False)
    return replace(PRESETS[preset], **overrides)


# --------------------------------------------------------------------------- seed


class Conditioner(nn.Module):
    """Reference conditioning network C (``seed`` preset).

    Valid (unpadded) convolutions shrink the patch to the box: 2->4 k3,
    4->8 k5, 8->16 k5, then ``(patch - 28) / 4`` more 16->16 k5 (one at P = 32),
    then 1x1 convolutions 16->8->3; ReLU between layers, none after the last.
    At P = 32: 32 -> 30 -> 26 -> 22 -> 18.

    Parameters
    ----------
    config : ModelConfig
        A ``seed`` config.

    Notes
    -----
    ``forward(y, hole)`` takes float (B, 1, P, P) tensors and returns
    (B, 3, 18, 18). Shapes are not checked here; use
    :meth:`InpaintingGAN.condition`, which checks them.
    """

    out_channels = _SEED_COND_CHANNELS

    def __init__(self, config: ModelConfig):
        super().__init__()
        extra = (config.patch - _SEED_MIN_PATCH) // 4
        layers = [nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Conv2d(4, 8, 5), nn.ReLU(), nn.Conv2d(8, 16, 5), nn.ReLU()]
        for _ in range(extra):
            layers += [nn.Conv2d(16, 16, 5), nn.ReLU()]
        layers += [nn.Conv2d(16, 8, 1), nn.ReLU(), nn.Conv2d(8, _SEED_COND_CHANNELS, 1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, y: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        return self.layers(torch.cat([y, hole], dim=1))


class Generator(nn.Module):
    """Reference generator G (``seed`` preset).

    Input ``concat(z, flatten(C(y)))`` as (N, z_dim + 972, 1, 1), then
    ConvT ->64 k5 s2 p0 (1->5), ConvT 64->32 k5 s2 p1 (5->11),
    ConvT 32->16 k5 s1 p1 (11->13), ConvT 16->8 k5 s1 p1 (13->15), each with
    BatchNorm and ReLU, and ConvT 8->1 k4 s1 p0 (15->18) with a sigmoid.

    BatchNorm makes a sample depend on the rest of its batch in training mode;
    sample in eval mode (running statistics), as the reference's inference did
    not account for this.

    Parameters
    ----------
    config : ModelConfig
        A ``seed`` config.

    Notes
    -----
    ``forward(z, cond)`` takes z (N, z_dim) and cond (N, 3, 18, 18) and returns
    (N, 1, 18, 18) in [0, 1]. Shapes are not checked here; use
    :meth:`InpaintingGAN.generate`.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        n_in = config.z_dim + _SEED_COND_CHANNELS * _SEED_HOLE * _SEED_HOLE

        def up(cin, cout, stride, padding):
            return [nn.ConvTranspose2d(cin, cout, 5, stride, padding), nn.BatchNorm2d(cout), nn.ReLU()]

        self.layers = nn.Sequential(
            *up(n_in, 64, 2, 0),
            *up(64, 32, 2, 1),
            *up(32, 16, 1, 1),
            *up(16, 8, 1, 1),
            nn.ConvTranspose2d(8, 1, 4, 1, 0),
            nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = torch.cat([z, cond.flatten(1)], dim=1)
        return self.layers(h[:, :, None, None])

    def forward_grouped(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """S fills for each of W windows: z (W, S, z_dim), cond (W, 3, 18, 18) -> (W, S, 1, 18, 18).

        In eval mode every BatchNorm is folded into the transposed convolution
        before it, and the first layer, a matrix product on a 1 x 1 input, is
        split: the rows that see the conditioning (83 % of its work) run once
        per window instead of once per sample. In training mode BatchNorm
        needs batch statistics, so the plain forward runs.
        """
        W, S = z.shape[:2]
        if self.training:
            cond_rep = cond.repeat_interleave(S, dim=0)
            return self.forward(z.reshape(W * S, -1), cond_rep).view(W, S, 1, *cond.shape[-2:])
        convs = [m for m in self.layers if isinstance(m, nn.ConvTranspose2d)]
        norms = [m for m in self.layers if isinstance(m, nn.BatchNorm2d)]
        folded = [_fold_batchnorm(c, b) for c, b in zip(convs, norms, strict=False)]
        folded.append((convs[-1].weight, convs[-1].bias))
        first_w, first_b = folded[0]
        z_dim = z.shape[-1]
        flat = first_w.flatten(1)  # (z_dim + 972, 64 * 5 * 5)
        per_window = cond.flatten(1) @ flat[z_dim:] + first_b.repeat_interleave(flat.shape[1] // first_b.numel())
        h = (z @ flat[:z_dim]) + per_window[:, None]
        h = torch.relu(h.reshape(W * S, convs[0].out_channels, *convs[0].kernel_size))
        for conv, (weight, bias) in zip(convs[1:], folded[1:], strict=True):
            h = F.conv_transpose2d(h, weight, bias, conv.stride, conv.padding)
            h = torch.relu(h) if conv is not convs[-1] else torch.sigmoid(h)
        return h.view(W, S, *h.shape[1:])


def _fold_batchnorm(conv: nn.ConvTranspose2d, norm: nn.BatchNorm2d):
    """Weight and bias of ``norm(conv(x))`` as one transposed convolution (running statistics)."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    weight = conv.weight * scale[None, :, None, None]  # ConvTranspose2d weights are (in, out, k, k)
    bias = (conv.bias - norm.running_mean) * scale + norm.bias
    return weight, bias


class Discriminator(nn.Module):
    """Reference discriminator D (``seed`` preset), returning logits.

    Conv 1->16 k3, Conv 16->32 k5 s2, Conv 32->32 k5 s2 (ReLU after each;
    32 -> 30 -> 13 -> 5 at P = 32), Flatten, Linear ->128, ReLU, Linear ->1.
    The thesis ended with a sigmoid; here the logit is returned and the
    sigmoid lives in the loss, which is numerically stable.

    Parameters
    ----------
    config : ModelConfig
        A ``seed`` config.

    Notes
    -----
    ``forward(x, hole)`` takes float (B, 1, P, P) tensors and returns (B, 1).
    Like the reference, this D sees only the patch: ``hole`` is accepted so
    every preset's D has the same signature, and is not used.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        side = config.patch - 2
        side = (side - 5) // 2 + 1
        side = (side - 5) // 2 + 1
        self.layers = nn.Sequential(
            nn.Conv2d(1, 16, 3),
            nn.ReLU(),
            nn.Conv2d(16, 32, 5, 2),
            nn.ReLU(),
            nn.Conv2d(32, 32, 5, 2),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(32 * side * side, 128),
            nn.ReLU(),
            nn.Linear(128, 1),
        )

    def forward(self, x: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


# --------------------------------------------------------------------------- unet


def _conv_block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution (same padding), GroupNorm, LeakyReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1),
        nn.GroupNorm(_GROUPS, cout),
        nn.LeakyReLU(_LEAKY_SLOPE),
    )


# harmonic preset: the prior is clamped away from 0 and 1 before its logit is taken,
# and solved with this many conjugate-gradient iterations (enough for an 18 x 18 hole
# in a 32 x 32 window to converge to ~1e-4 of the intensity range; see the tests).
_PRIOR_EPS = 1e-3
_PRIOR_ITERATIONS = 64
_NEIGHBOURS = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)


def harmonic_fill(y: torch.Tensor, hole: torch.Tensor, *, iterations: int = _PRIOR_ITERATIONS) -> torch.Tensor:
    """Fill unknown pixels by harmonic interpolation (the smoothest membrane through the known ones).

    Solves Laplace's equation on the unknown pixels of each window with the
    known pixels as boundary values (5-point stencil; the window's outer edge is
    a free, zero-flux boundary) by batched conjugate gradients. Unknown regions
    with no known pixel around them take the mean of the window's known pixels
    (0.5 when nothing is known).

    The classical fill gives the ``harmonic`` preset a starting point as good
    as smooth interpolation before any training; biharmonic interpolation
    (:func:`ctinpaint.evaluate.biharmonic_fill`) is smoother at the hole border
    but needs many more iterations.

    Parameters
    ----------
    y : torch.Tensor, float (B, 1, H, W)
        Windows; values at unknown pixels are ignored.
    hole : torch.Tensor, float (B, 1, H, W)
        >= 0.5 where unknown.
    iterations : int, default 64
        Conjugate-gradient iterations.

    Returns
    -------
    torch.Tensor, float (B, 1, H, W)
        ``y`` with every unknown pixel replaced (known pixels bit for bit).

    Examples
    --------
    >>> import torch
    >>> y = torch.linspace(0, 1, 8).repeat(1, 1, 8, 1)     # a ramp along x
    >>> hole = torch.zeros_like(y)
    >>> hole[..., 2:6, 2:6] = 1
    >>> bool(torch.allclose(harmonic_fill(y * (1 - hole), hole), y, atol=1e-4))  # a ramp is harmonic
    True
    """
    unknown = hole >= 0.5
    known = (~unknown).to(y.dtype)
    kernel = _NEIGHBOURS.to(device=y.device, dtype=y.dtype)
    # Zero padding + an explicit neighbour count = zero flux across the window edge.
    degree = F.conv2d(torch.ones_like(known), kernel, padding=1)
    free = unknown.to(y.dtype)
    y_known = y * known

    def apply(u):  # the Laplacian restricted to the unknown pixels (SPD when they touch known ones)
        return (degree * u - F.conv2d(u, kernel, padding=1)) * free

    n_known = known.sum(dim=(1, 2, 3), keepdim=True)
    start = torch.where(n_known > 0, y_known.sum(dim=(1, 2, 3), keepdim=True) / n_known.clamp_min(1), 0.5)
    u = start * free
    b = F.conv2d(y_known, kernel, padding=1) * free
    r = b - apply(u)
    p = r
    rr = (r * r).sum(dim=(1, 2, 3), keepdim=True)
    for _ in range(int(iterations)):
        ap = apply(p)
        pap = (p * ap).sum(dim=(1, 2, 3), keepdim=True)
        alpha = torch.where(pap > 0, rr / pap.clamp_min(1e-30), torch.zeros_like(pap))
        u = u + alpha * p
        r = r - alpha * ap
        rr_new = (r * r).sum(dim=(1, 2, 3), keepdim=True)
        beta = torch.where(rr > 0, rr_new / rr.clamp_min(1e-30), torch.zeros_like(rr))
        p = r + beta * p
        rr = rr_new
    return torch.where(unknown, u, y)


def slice_guided_fill(y: torch.Tensor, hole: torch.Tensor, *, iterations: int = _PRIOR_ITERATIONS) -> torch.Tensor:
    """Fill the centre slice of each window from its nearest neighbouring slices.

    The classical inter-slice fill. Each adjacent slice ``n`` gives one
    estimate: ``n`` plus the harmonic interpolation of the centre's difference
    to ``n`` from the hole's border, so the fill follows the neighbour's
    structure and meets the centre's known pixels without a step (where ``n``
    is itself unknown it is first filled harmonically). Each pixel takes the
    mean of the estimates whose neighbour is known there (of both where
    neither is). With no neighbour known anywhere this is exactly
    :func:`harmonic_fill` of the centre slice.

    Parameters
    ----------
    y : torch.Tensor, float (B, K, H, W)
        Windows of K = 2 c + 1 slices (K odd), the filled one at channel c;
        values at unknown pixels are ignored.
    hole : torch.Tensor, float (B, K, H, W)
        >= 0.5 where unknown, in any slice.
    iterations : int, default 64
        Conjugate-gradient iterations of each harmonic solve.

    Returns
    -------
    torch.Tensor, float (B, 1, H, W)
        The centre slice with every unknown pixel replaced (known pixels bit for bit).

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(1, 1, 16, 16).repeat(1, 3, 1, 1) + torch.tensor([0.0, 0.1, 0.2]).view(1, 3, 1, 1)
    >>> hole = torch.zeros_like(x)
    >>> hole[:, 1, 4:12, 4:12] = 1                  # the hole is only in the centre slice
    >>> fill = slice_guided_fill(x * (1 - hole), hole)
    >>> bool(torch.allclose(fill, x[:, 1:2], atol=1e-4))  # neighbours with an offset: exact
    True
    """
    K = y.shape[1]
    c = K // 2
    centre, centre_hole = y[:, c : c + 1], hole[:, c : c + 1]
    if K == 1:
        return harmonic_fill(centre, centre_hole, iterations=iterations)
    B = y.shape[0]
    # The two neighbours as one batch of 2B single-slice windows (neighbour-major).
    near = torch.cat([y[:, c - 1 : c], y[:, c + 1 : c + 2]])
    near_hole = torch.cat([hole[:, c - 1 : c], hole[:, c + 1 : c + 2]])
    guide = harmonic_fill(near, near_hole, iterations=iterations)
    centres, holes = centre.repeat(2, 1, 1, 1), centre_hole.repeat(2, 1, 1, 1)
    diff = harmonic_fill(torch.where(holes >= 0.5, 0, centres - guide), holes, iterations=iterations)
    estimates = (guide + diff).view(2, B, *centre.shape[1:])
    weight = (near_hole < 0.5).to(y.dtype).view(2, B, *centre.shape[1:])
    weight = torch.where(weight.sum(dim=0, keepdim=True) > 0, weight, 1)
    fill = (weight * estimates).sum(dim=0) / weight.sum(dim=0)
    return torch.where(centre_hole >= 0.5, fill, centre)


class UNetConditioner(nn.Module):
    """U-Net conditioning network C (``unet`` preset).

    Encoder at P, P/2 and P/4 (``width``, 2 ``width``, 4 ``width`` channels),
    a global-context vector (mean of the bottleneck, one linear layer) added
    back to the bottleneck so the fill can depend on the whole patch, and a
    decoder that upsamples and concatenates the encoder features at each
    scale. The skip at full resolution carries features of the pixels right
    at the hole border, which a fill must continue. The P x P decoder output is
    cropped to the central l x l box and projected by a 1x1 convolution.

    GroupNorm normalises each sample on its own, so the conditioning of a
    window never depends on which other windows share its batch.

    Parameters
    ----------
    config : ModelConfig
        A ``unet`` config.

    With ``context`` neighbouring slices, the encoder's first layer takes
    every slice and its mask (``2 (2 context + 1)`` channels, plus the prior):
    the U-Net then learns how far to trust each neighbour from the pixels
    around the hole, where all slices are known.

    With ``mean_net``, a second U-Net of the same shape (``mean``, plus a
    1x1 ``mean_head`` that starts at zero) adds a learned correction to the
    prior's logit; the extra channel then carries that regressed mean.
    With ``std_head`` too, a small convolutional network ``std_head`` reads
    both U-Nets' features, the regressed mean and the hole (all detached:
    only its own likelihood trains it) and adds one more channel before the
    last: the log standard deviation of that mean's error.

    Notes
    -----
    ``forward(y, hole)`` takes float (B, 2 context + 1, P, P) tensors and
    returns (B, width, l, l) (one more channel with the prior or the regressed
    mean, as a logit; with ``std_head``, the log std channel before it).
    Shapes are not checked here; use :meth:`InpaintingGAN.condition`.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        w = config.width
        self._centre = config.context
        self._prior = config.preset == "harmonic"
        # With the prior, its logit rides along as one extra conditioning channel for G
        # (and, with a std head, the log std of the regressed mean's error before it).
        self.out_channels = w + self._prior + config.std_head
        self._crop = (config.offset, config.hole)
        self.enc1 = nn.Sequential(_conv_block(2 * config.channels + self._prior, w), _conv_block(w, w))
        self.enc2 = nn.Sequential(_conv_block(w, 2 * w, 2), _conv_block(2 * w, 2 * w))
        self.enc3 = nn.Sequential(_conv_block(2 * w, 4 * w, 2), _conv_block(4 * w, 4 * w))
        self.context = nn.Linear(4 * w, 4 * w)
        self.dec2 = _conv_block(4 * w + 2 * w, 2 * w)
        self.dec1 = _conv_block(2 * w + w, w)
        self.out = nn.Conv2d(w, w, 1)
        if config.std_head:
            # Three 3x3 layers see a 7x7 neighbourhood of the conditioning: enough to tell an
            # edge or a phase boundary (large errors) from a flat region (small ones).
            self.std_head = nn.Sequential(
                nn.Conv2d(2 * w + 2, 32, 3, padding=1), nn.SiLU(),
                nn.Conv2d(32, 32, 3, padding=1), nn.SiLU(),
                nn.Conv2d(32, 1, 3, padding=1),
            )  # fmt: skip
            # Starts at a spread of 0.1 everywhere, well inside the clamp (which would stop gradients).
            nn.init.zeros_(self.std_head[-1].weight)
            nn.init.constant_(self.std_head[-1].bias, math.log(0.1))
        if config.mean_net:
            self.mean = UNetConditioner(replace(config, mean_net=False, std_head=False))
            self.mean_head = nn.Conv2d(w, 1, 1)
            # Zero at start: an untrained mean is exactly the prior.
            nn.init.zeros_(self.mean_head.weight)
            nn.init.zeros_(self.mean_head.bias)

    def forward(self, y: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        if not self._prior:
            return self._features(torch.cat([y, hole], dim=1))
        prior = slice_guided_fill(y, hole)
        inputs = torch.cat([y, hole, prior], dim=1)
        o, l = self._crop
        logit = torch.logit(prior[:, :, o : o + l, o : o + l].clamp(_PRIOR_EPS, 1 - _PRIOR_EPS))
        features = self._features(inputs)
        if hasattr(self, "mean"):
            mean_features = self.mean._features(inputs)
            logit = logit + self.mean_head(mean_features)
            if hasattr(self, "std_head"):
                # The mean network's features say most about where its own error is large
                # (measured: corr(std, |error|) 0.6 with them, 0.4 from the conditioning alone).
                unknown = hole[:, self._centre : self._centre + 1, o : o + l, o : o + l]
                seen = torch.cat([mean_features, features, logit, unknown], dim=1).detach()
                log_std = self.std_head(seen).clamp(_LOG_STD_MIN, _LOG_STD_MAX)
                return torch.cat([features, log_std, logit], dim=1)
        return torch.cat([features, logit], dim=1)

    def _features(self, inputs: torch.Tensor) -> torch.Tensor:
        """The U-Net on its stacked input channels -> (B, width, l, l)."""
        e1 = self.enc1(inputs)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        e3 = e3 + self.context(e3.mean(dim=(2, 3)))[:, :, None, None]
        # Upsample to the skip's exact size, so odd patch sizes work too.
        d2 = self.dec2(torch.cat([_resize(e3, e2.shape[-1]), e2], dim=1))
        d1 = self.dec1(torch.cat([_resize(d2, e1.shape[-1]), e1], dim=1))
        o, l = self._crop
        return self.out(d1[:, :, o : o + l, o : o + l])


def _resize(h: torch.Tensor, side: int) -> torch.Tensor:
    """Bilinear resize to ``side x side`` (bilinear avoids the checkerboard of strided transposes)."""
    return F.interpolate(h, size=(side, side), mode="bilinear", align_corners=False)


class _ModulatedBlock(nn.Module):
    """3x3 conv, GroupNorm, per-channel scale and shift from the style, LeakyReLU.

    The modulation comes after the normalisation, so GroupNorm cannot remove
    the effect of z.
    """

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1)
        self.norm = nn.GroupNorm(_GROUPS, cout)
        self.film = nn.Linear(_STYLE_DIM, 2 * cout)
        self.act = nn.LeakyReLU(_LEAKY_SLOPE)

    def forward(self, h: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.modulate(self.conv(h), style)

    def modulate(self, h: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Everything after the convolution: norm, scale and shift from ``style``, activation."""
        scale, shift = self.film(style)[:, :, None, None].chunk(2, dim=1)
        return self.act(self.norm(h) * (1 + scale) + shift)


class ModulatedGenerator(nn.Module):
    """Generator G (``unet`` preset) that cannot easily ignore z.

    Conditional GANs tend to learn to ignore the noise when the condition is
    informative: the samples collapse and the pixel-wise standard deviation
    (our uncertainty) goes to zero. Here z reaches every layer by two paths:

    * a style vector (a small MLP of z) that scales and shifts the channels of
      every block after its normalisation;
    * spatial noise maps, linear in z, concatenated to the input of each scale
      (4 channels at the coarse scale ceil(l/2), 1 at l), so z can move
      individual pixels (where an edge passes), not only global intensity.

    The noise maps are computed from z rather than drawn inside the network, so
    all randomness is in z: a seeded z reproduces the fills exactly.

    No BatchNorm: it normalises with statistics of the batch, and a sampling
    batch is thousands of z for the same condition, so each sample would depend
    on the others (and train-mode statistics would differ from eval-mode ones).
    GroupNorm normalises each sample alone, keeping samples independent draws.

    Layout: coarse input = [avg-pooled cond, coarse noise] at ceil(l/2) ->
    modulated blocks (-> 2 ``width`` -> ``width``) -> bilinear upsample to l ->
    [features, cond, fine noise] -> 2 modulated blocks (``width``) ->
    1x1 conv -> sigmoid.

    Parameters
    ----------
    config : ModelConfig
        A ``unet`` config.

    Notes
    -----
    ``forward(z, cond)`` takes z (N, z_dim) and cond (N, width, l, l) and
    returns (N, 1, l, l) in [0, 1]. Shapes are not checked here; use
    :meth:`InpaintingGAN.generate`.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        w, l = config.width, config.hole
        self._fine = l
        self._coarse = math.ceil(l / 2)
        # harmonic preset: the last conditioning channel is the prior's logit, and G adds to it;
        # a std head adds the log std channel before it.
        self._residual = config.preset == "harmonic"
        self._feature_channels = w
        c = w + self._residual + config.std_head
        self.mapping = nn.Sequential(
            nn.Linear(config.z_dim, _STYLE_DIM),
            nn.LeakyReLU(_LEAKY_SLOPE),
            nn.Linear(_STYLE_DIM, _STYLE_DIM),
            nn.LeakyReLU(_LEAKY_SLOPE),
        )
        self.coarse_noise = nn.Linear(config.z_dim, _COARSE_NOISE_CHANNELS * self._coarse**2)
        self.fine_noise = nn.Linear(config.z_dim, l * l)
        self.coarse1 = _ModulatedBlock(c + _COARSE_NOISE_CHANNELS, 2 * w)
        self.coarse2 = _ModulatedBlock(2 * w, w)
        self.fine1 = _ModulatedBlock(w + c + 1, w)
        self.fine2 = _ModulatedBlock(w, w)
        self.out = nn.Conv2d(w, 1, 1)
        if self._residual:
            # Start close to the prior: a small residual (not zero, so gradients reach every layer at step 1).
            with torch.no_grad():
                self.out.weight.mul_(0.1)
            nn.init.zeros_(self.out.bias)

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if self._residual and cond.requires_grad:
            # G's losses must not move the mean it builds on (or the std): with mean_net, squared
            # error alone trains that channel, likelihood the std's (without mean_net, the channel
            # is the prior and has no weights anyway).
            w = self._feature_channels
            cond = torch.cat([cond[:, :w], cond[:, w:].detach()], dim=1)
        n, c, f = z.shape[0], self._coarse, self._fine
        style = self.mapping(z)
        coarse_noise = self.coarse_noise(z).view(n, _COARSE_NOISE_CHANNELS, c, c)
        fine_noise = self.fine_noise(z).view(n, 1, f, f)
        h = torch.cat([F.adaptive_avg_pool2d(cond, c), coarse_noise], dim=1)
        h = self.coarse2(self.coarse1(h, style), style)
        h = torch.cat([_resize(h, f), cond, fine_noise], dim=1)
        h = self.fine2(self.fine1(h, style), style)
        if self._residual:
            return torch.sigmoid(cond[:, -1:] + self.out(h))
        return torch.sigmoid(self.out(h))

    def forward_grouped(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """S fills for each of W windows: z (W, S, z_dim), cond (W, width, l, l) -> (W, S, 1, l, l).

        Equal to :meth:`forward` on the conditioning repeated S times (up to
        float rounding), without repeating it: a convolution is a sum over its
        input channels, so the channels that carry the conditioning (4/5 of
        coarse1's input, about half of fine1's) are convolved once per window
        and added to every sample of it, and neither the pooled conditioning
        nor the concatenated inputs are ever copied S times.
        """
        W, S = z.shape[:2]
        n, c, f = W * S, self._coarse, self._fine
        k = cond.shape[1]  # conditioning channels (with the harmonic preset, the prior's logit is the last)
        w = self.coarse2.conv.out_channels
        z = z.reshape(n, -1)
        style = self.mapping(z)
        coarse_noise = self.coarse_noise(z).view(n, _COARSE_NOISE_CHANNELS, c, c)
        fine_noise = self.fine_noise(z).view(n, 1, f, f)

        kernel, bias = self.coarse1.conv.weight, self.coarse1.conv.bias
        per_window = F.conv2d(F.adaptive_avg_pool2d(cond, c), kernel[:, :k], bias, padding=1)
        h = F.conv2d(coarse_noise, kernel[:, k:], None, padding=1)
        h = _add_per_window(h, per_window, S)
        h = self.coarse2(self.coarse1.modulate(h, style), style)

        # fine1's input channels are [upsampled features (w), cond (k), fine noise (1)].
        kernel, bias = self.fine1.conv.weight, self.fine1.conv.bias
        per_window = F.conv2d(cond, kernel[:, w : w + k], bias, padding=1)
        per_sample = torch.cat([_resize(h, f), fine_noise], dim=1)
        h = F.conv2d(per_sample, torch.cat([kernel[:, :w], kernel[:, w + k :]], dim=1), None, padding=1)
        h = _add_per_window(h, per_window, S)
        h = self.out(self.fine2(self.fine1.modulate(h, style), style))
        if self._residual:
            h = _add_per_window(h, cond[:, -1:], S)
        return torch.sigmoid(h).view(W, S, 1, f, f)


def _add_per_window(h: torch.Tensor, per_window: torch.Tensor, samples: int) -> torch.Tensor:
    """``h`` (W * S, ...) plus ``per_window`` (W, ...) broadcast over each window's S rows."""
    W = per_window.shape[0]
    return (h.view(W, samples, *h.shape[1:]) + per_window[:, None]).view(W * samples, *h.shape[1:])


class PatchDiscriminator(nn.Module):
    """Spectrally normalised patch discriminator D (``unet`` preset).

    Sees the patch and the mask as two channels: real and fake patches carry
    the same kind of mask, so the mask gives nothing away, but it tells D where
    the generated pixels are. With ``context``, it sees every slice and its
    mask, so a fill that does not continue the neighbouring slices is told
    apart. Layers: SN-Conv 2->w k3, SN-Conv w->2w k4 s2,
    SN-Conv 2w->4w k4 s2 (LeakyReLU 0.2 after each), SN-Conv 4w->1 k3: one
    logit per location (8 x 8 at P = 32, each with a 20-pixel receptive field,
    about the size of the box). Spectral norm bounds D's Lipschitz constant,
    which keeps its gradients to G informative and training stable.

    Parameters
    ----------
    config : ModelConfig
        A ``unet`` config.

    Notes
    -----
    ``forward(x, hole)`` takes float (B, 2 context + 1, P, P) tensors and
    returns (B, 1, P/4, P/4) logits (sizes rounded as strided convolutions do).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        w = config.width
        self.layers = nn.Sequential(
            spectral_norm(nn.Conv2d(2 * config.channels, w, 3, 1, 1)),
            nn.LeakyReLU(_LEAKY_SLOPE),
            spectral_norm(nn.Conv2d(w, 2 * w, 4, 2, 1)),
            nn.LeakyReLU(_LEAKY_SLOPE),
            spectral_norm(nn.Conv2d(2 * w, 4 * w, 4, 2, 1)),
            nn.LeakyReLU(_LEAKY_SLOPE),
            spectral_norm(nn.Conv2d(4 * w, 1, 3, 1, 1)),
        )

    def forward(self, x: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        return self.layers(torch.cat([x, hole], dim=1))


# --------------------------------------------------------------------------- model


class InpaintingGAN(nn.Module):
    """C, G and D of one preset, with the operations that use them.

    Build it with :func:`build_model`. All tensors are float, on the model's
    device; a hole mask value >= 0.5 means unknown.

    Parameters
    ----------
    config : ModelConfig
    conditioner, generator, discriminator : torch.nn.Module
        The three networks for ``config`` (``conditioner`` must have an
        ``out_channels`` attribute: the channels of its l x l output).

    Attributes
    ----------
    config : ModelConfig
    conditioner, generator, discriminator : torch.nn.Module
    cond_shape : tuple of int
        Shape of one window's conditioning, (channels, l, l).

    Examples
    --------
    >>> import torch
    >>> model = build_model(config_for("unet")).eval()
    >>> x = torch.rand(2, 1, 32, 32)
    >>> hole = torch.zeros(2, 1, 32, 32)
    >>> hole[:, :, 7:25, 7:25] = 1
    >>> y = x * (1 - hole)
    >>> with torch.no_grad():
    ...     cond = model.condition(y, hole)                  # C once per window
    ...     z = model.sample_z(100)
    ...     fills = model.generate(z, cond[:1].expand(100, *model.cond_shape))
    ...     out = model(y, hole)                              # one composite per window
    >>> fills.shape, out.shape
    (torch.Size([100, 1, 18, 18]), torch.Size([2, 1, 32, 32]))
    """

    def __init__(self, config: ModelConfig, *, conditioner: nn.Module, generator: nn.Module, discriminator: nn.Module):
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise TypeError(f"config must be a ModelConfig, got {type(config).__name__}")
        self.config = config
        self.conditioner = conditioner
        self.generator = generator
        self.discriminator = discriminator
        P, l, o = config.patch, config.hole, config.offset
        box = torch.zeros(1, 1, P, P, dtype=torch.bool)
        box[:, :, o : o + l, o : o + l] = True
        # Not persistent: it follows from the config, so checkpoints stay weights only.
        self.register_buffer("_box", box, persistent=False)

    @property
    def cond_shape(self) -> tuple[int, int, int]:
        """Shape of one window's conditioning: (channels, l, l)."""
        l = self.config.hole
        return (self.conditioner.out_channels, l, l)

    def condition(self, y: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """Conditioning of each window; run once per window.

        Unknown pixels of ``y`` are set to zero here, so passing the uncropped
        patch cannot leak the ground truth into C.

        Parameters
        ----------
        y : torch.Tensor, float (B, K, P, P)
            Cropped patches; K = ``config.channels`` slices (1 without
            context), the filled one at channel ``config.context``.
        hole : torch.Tensor, float (B, K, P, P)
            1 where unknown, anywhere in the patch and in any slice.

        Returns
        -------
        torch.Tensor, float (B, *cond_shape)

        Examples
        --------
        >>> import torch
        >>> model = build_model(config_for("seed"))
        >>> model.condition(torch.rand(4, 1, 32, 32), torch.zeros(4, 1, 32, 32)).shape
        torch.Size([4, 3, 18, 18])
        """
        self._check_patches(y, "y", hole, "hole")
        unknown = hole >= 0.5
        y = torch.where(unknown, torch.zeros((), dtype=y.dtype, device=y.device), y)
        return self.conditioner(y, unknown.to(y.dtype))

    def generate(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Generated content of the central box, one per row of ``z``.

        Parameters
        ----------
        z : torch.Tensor, float (N, z_dim)
        cond : torch.Tensor, float (N, *cond_shape) or (1, *cond_shape)
            Conditioning from :meth:`condition`, one row per z: repeated
            (``repeat_interleave``) or expanded (``expand``, no copy) when many
            z share a window. A single row is broadcast to all z.

        Returns
        -------
        torch.Tensor, float (N, 1, l, l), values in [0, 1]

        Examples
        --------
        >>> import torch
        >>> model = build_model(config_for("unet")).eval()
        >>> cond = model.condition(torch.rand(1, 1, 32, 32), torch.ones(1, 1, 32, 32))
        >>> model.generate(model.sample_z(8), cond).shape
        torch.Size([8, 1, 18, 18])
        """
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != self.config.z_dim or z.shape[0] == 0:
            raise ValueError(f"z must be a (N, {self.config.z_dim}) tensor with N >= 1, got {_shape_of(z)}")
        if not isinstance(cond, torch.Tensor) or tuple(cond.shape[1:]) != self.cond_shape or cond.shape[0] not in (1, z.shape[0]):
            rows = "1" if z.shape[0] == 1 else f"{z.shape[0]} or 1"
            raise ValueError(
                f"cond must be a ({rows}, {', '.join(map(str, self.cond_shape))}) tensor to match z, got {_shape_of(cond)}"
            )
        if cond.shape[0] != z.shape[0]:
            cond = cond.expand(z.shape[0], *self.cond_shape)
        return self.generator(z, cond)

    def generate_grouped(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Many fills per window, the way posterior sampling needs them.

        The same fills as :meth:`generate` with each window's conditioning
        repeated for its samples (up to float rounding), computed faster: the
        parts of G that depend only on the conditioning run once per window,
        and in eval mode the ``seed`` generator's BatchNorm layers are folded
        into its convolutions.

        Parameters
        ----------
        z : torch.Tensor, float (W, S, z_dim)
            S noise vectors for each of W windows.
        cond : torch.Tensor, float (W, *cond_shape)
            Conditioning from :meth:`condition`, one row per window.

        Returns
        -------
        torch.Tensor, float (W, S, 1, l, l), values in [0, 1]

        Examples
        --------
        >>> import torch
        >>> model = build_model(config_for("unet")).eval()
        >>> cond = model.condition(torch.rand(2, 1, 32, 32), torch.ones(2, 1, 32, 32))
        >>> model.generate_grouped(torch.randn(2, 5, model.config.z_dim), cond).shape
        torch.Size([2, 5, 1, 18, 18])
        """
        z_dim = self.config.z_dim
        if not isinstance(z, torch.Tensor) or z.ndim != 3 or z.shape[2] != z_dim or 0 in z.shape[:2]:
            raise ValueError(f"z must be a (W, S, {z_dim}) tensor with W, S >= 1, got {_shape_of(z)}")
        if not isinstance(cond, torch.Tensor) or tuple(cond.shape) != (z.shape[0], *self.cond_shape):
            raise ValueError(
                f"cond must be a ({z.shape[0]}, {', '.join(map(str, self.cond_shape))}) tensor to match z, got {_shape_of(cond)}"
            )
        return self.generator.forward_grouped(z, cond)

    def composite(self, y: torch.Tensor, hole: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
        """Paste ``fill`` into the unknown pixels of the central box of the filled slice.

        Selection (``torch.where``), not blending: every known pixel of ``y``
        is returned bit for bit (``y * (1 - m) + f * m`` would turn -0.0 into
        +0.0 and propagate NaN/Inf from the fill). Unknown pixels outside the
        box are not this window's to fill; they keep ``y``'s value (normally
        0), as do the neighbouring slices. Gradients flow to ``fill`` only
        through the pasted pixels.

        Parameters
        ----------
        y : torch.Tensor, float (B, K, P, P)
        hole : torch.Tensor, float (B, K, P, P)
            >= 0.5 where unknown.
        fill : torch.Tensor, float (B, 1, l, l)

        Returns
        -------
        torch.Tensor, float (B, K, P, P)
            A new tensor (the result dtype of ``y`` and ``fill``).

        Examples
        --------
        >>> import torch
        >>> model = build_model(config_for("seed"))
        >>> y, hole = torch.zeros(1, 1, 32, 32), torch.ones(1, 1, 32, 32)
        >>> out = model.composite(y, hole, torch.full((1, 1, 18, 18), 0.5))
        >>> float(out.sum())                                # 18 * 18 * 0.5: only the box is filled
        162.0
        """
        self._check_patches(y, "y", hole, "hole")
        l = self.config.hole
        if not isinstance(fill, torch.Tensor) or tuple(fill.shape) != (y.shape[0], 1, l, l):
            raise ValueError(f"fill must be a ({y.shape[0]}, 1, {l}, {l}) tensor to match y, got {_shape_of(fill)}")
        P, o, c = self.config.patch, self.config.offset, self.config.context
        padded = F.pad(fill, (o, P - l - o, o, P - l - o))
        if self.config.channels == 1:
            return torch.where((hole >= 0.5) & self._box, padded, y)
        centre = torch.where((hole[:, c : c + 1] >= 0.5) & self._box, padded, y[:, c : c + 1])
        return torch.cat([y[:, :c], centre.to(y.dtype), y[:, c + 1 :]], dim=1)

    def discriminate(self, x: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """D's logits for full patches (real ``x`` or composites).

        Parameters
        ----------
        x : torch.Tensor, float (B, K, P, P)
        hole : torch.Tensor, float (B, K, P, P)
            The window's mask (used by the ``unet`` D, ignored by the ``seed`` D).

        Returns
        -------
        torch.Tensor, float
            (B, 1) for ``seed``; (B, 1, h, w) per-location logits for ``unet``.

        Examples
        --------
        >>> import torch
        >>> model = build_model(config_for("seed"))
        >>> model.discriminate(torch.rand(3, 1, 32, 32), torch.zeros(3, 1, 32, 32)).shape
        torch.Size([3, 1])
        """
        self._check_patches(x, "x", hole, "hole")
        return self.discriminator(x, hole)

    def regressed_std(self, cond: torch.Tensor) -> torch.Tensor | None:
        """The standard deviation of the regressed mean's error that ``std_head`` predicts, or None.

        With a std head, each pixel's samples are scaled about the regressed
        mean so that their standard deviation is this one
        (:func:`ctinpaint.sampling.sample_fills` does that); training fits it
        by Gaussian negative log-likelihood of the mean's error.

        Parameters
        ----------
        cond : torch.Tensor, float (B, *cond_shape)
            Conditioning from :meth:`condition`.

        Returns
        -------
        torch.Tensor, float (B, 1, l, l), values in [exp(-9), e], or None
        """
        if not self.config.std_head:
            return None
        return torch.exp(cond[:, -2:-1])

    def regressed_mean(self, cond: torch.Tensor) -> torch.Tensor | None:
        """The mean fill the ``mean_net`` regressed, or None for models without one.

        With a mean network, the model's posterior mean *is* this regression:
        the samples keep G's texture (and spread, unless :meth:`regressed_std`
        gives one), but each window's samples are shifted so that their mean
        is this one (:func:`ctinpaint.sampling.sample_fills` and training do
        that). G's own mean is left free, so the adversarial losses cannot
        bias the fill.

        Parameters
        ----------
        cond : torch.Tensor, float (B, *cond_shape)
            Conditioning from :meth:`condition`.

        Returns
        -------
        torch.Tensor, float (B, 1, l, l), values in (0, 1), or None
        """
        if not self.config.mean_net:
            return None
        return torch.sigmoid(cond[:, -1:])

    def sample_z(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """Standard normal noise for ``n`` samples.

        Parameters
        ----------
        n : int
            Number of rows, >= 1.
        generator : torch.Generator, optional
            For reproducible draws; it must live on ``device``.
        device : torch.device or str, optional
            Default: the device of the model's parameters.

        Returns
        -------
        torch.Tensor, float32 (n, z_dim)

        Examples
        --------
        >>> import torch
        >>> model = build_model(config_for("seed"))
        >>> a = model.sample_z(4, generator=torch.Generator().manual_seed(0))
        >>> b = model.sample_z(4, generator=torch.Generator().manual_seed(0))
        >>> a.shape, bool((a == b).all())
        (torch.Size([4, 200]), True)
        """
        n = check_int(n, name="n", minimum=1)
        if device is None:
            device = next(self.parameters()).device
        return torch.randn((n, self.config.z_dim), generator=generator, device=device)

    def forward(self, y: torch.Tensor, hole: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """One composite per window: C, then G with one z each, then paste.

        Parameters
        ----------
        y, hole : torch.Tensor, float (B, K, P, P)
        z : torch.Tensor, float (B, z_dim), optional
            Default: fresh standard normal noise.

        Returns
        -------
        torch.Tensor, float (B, K, P, P)
        """
        cond = self.condition(y, hole)
        if z is None:
            z = self.sample_z(y.shape[0], device=y.device)
        elif not isinstance(z, torch.Tensor) or z.shape[0] != y.shape[0]:
            raise ValueError(f"z must have one row per window ({y.shape[0]}), got {_shape_of(z)}")
        return self.composite(y, hole, self.generate(z, cond))

    def _check_patches(self, a, name_a: str, b, name_b: str) -> None:
        P, K = self.config.patch, self.config.channels
        for t, name in ((a, name_a), (b, name_b)):
            if not isinstance(t, torch.Tensor) or t.ndim != 4 or tuple(t.shape[1:]) != (K, P, P) or t.shape[0] == 0:
                raise ValueError(f"{name} must be a (B, {K}, {P}, {P}) tensor with B >= 1, got {_shape_of(t)}")
            if not t.is_floating_point():
                raise ValueError(f"{name} must be a floating-point tensor, got {t.dtype}")
        if a.shape != b.shape:
            raise ValueError(f"{name_b} shape {tuple(b.shape)} does not match {name_a} shape {tuple(a.shape)}")


def _shape_of(t) -> str:
    return f"shape {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__


def _build_seed(config: ModelConfig) -> InpaintingGAN:
    return InpaintingGAN(
        config, conditioner=Conditioner(config), generator=Generator(config), discriminator=Discriminator(config)
    )


def _build_unet(config: ModelConfig) -> InpaintingGAN:
    return InpaintingGAN(
        config,
        conditioner=UNetConditioner(config),
        generator=ModulatedGenerator(config),
        discriminator=PatchDiscriminator(config),
    )


#: Builder of each preset, by name (``harmonic`` switches the unet networks to their prior mode).
BUILDERS = {"seed": _build_seed, "unet": _build_unet, "harmonic": _build_unet}


def build_model(config: ModelConfig) -> InpaintingGAN:
    """Build the networks a config describes (freshly initialised).

    Parameters
    ----------
    config : ModelConfig

    Returns
    -------
    InpaintingGAN
        On the CPU, in training mode; move it with ``.to(device)``.

    Examples
    --------
    >>> model = build_model(config_for("seed"))
    >>> sum(p.numel() for p in model.parameters())
    2094849
    """
    if not isinstance(config, ModelConfig):
        raise TypeError(f"config must be a ModelConfig, got {type(config).__name__}")
    return BUILDERS[config.preset](config)
