"""Train the inpainting networks C, G and D on artifact-free patches of a volume.

This module only assembles the pieces: a patch sampler, a held-out validation
set, the networks, two phases (discriminator, then conditioner + generator) and
the validation callback. The loop itself (devices, AMP, logging, checkpoints,
exact resume) is :func:`gan_zoo.training.run_training`, shared with the GAN zoo.

A trained model is a directory holding ``model.safetensors`` (weights) and
``model.json`` (network config, intensity mapping, training metadata);
:func:`load_model` reads it back without executing any code from it.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ._checks import check_choice, check_float, check_int

#: Written into every model file; a file with a larger version is refused.
MODEL_FORMAT_VERSION = 1
_MODEL_NAME = "model"
#: Keys of model.json's metadata, and of its "ctinpaint" part; anything else is refused.
_MODEL_META_KEYS = {"networks", "ctinpaint", "step", "checkpoint"}
_CTINPAINT_KEYS = {"model", "intensity", "train", "model_format_version", "calibration"}


@dataclass(frozen=True)
class TrainConfig:
    """How to train; saved with every checkpoint and model.

    Attributes
    ----------
    steps : int or None
        Stop after this many steps (one D step and one G step each) or after
        ``minutes``, whichever comes first. The default, 7000, is the budget
        at which the mean fill beat biharmonic inpainting by more than 1 dB
        on real slices (about 55 min on 2 CPU cores; docs/quality.md).
    minutes : float or None
        Wall-clock budget.
    batch_size : int
        Patches per step.
    lr_g, lr_d : float
        Adam learning rates of C + G together and of D (reference: 1e-3, 3e-4).
    lr_schedule : {"cosine", "constant"}
        "cosine" (default): both rates fall along a half cosine from their
        initial values to 0 at the end of the budget, so the last steps
        average out the noise of the adversarial updates instead of moving
        the fill around (measured: +0.1 dB at 2000 steps, docs/quality.md).
        The budget's progress is the larger of the shares of ``steps`` and of
        ``minutes`` done, so the rates reach 0 whichever rule stops the run.
        "constant": the reference's fixed rates.
    loss : {"nonsaturating", "lsgan", "hinge"}
        Adversarial loss (reference: nonsaturating).
    mode_seeking : float
        Weight of the mode-seeking term that keeps fills diverse (reference 0.05).
    r1 : float
        Weight of the R1 gradient penalty on real patches (0 = off).
    moments : float
        Weight of the moment-reconstruction loss (Gaussian NLL of the truth
        under the mean and std of ``moment_samples`` fills per patch); trains
        the mean fill towards the truth and the spread towards honest error
        bars without collapsing samples. 0 = the reference's pure GAN recipe;
        the default 1.0 measured best with the default (``harmonic``) preset.
    moment_samples : int
        Fills per patch for that loss (>= 2).
    moments_beta : float
        Weight each pixel's term of that loss by its variance to this power
        (0 to 1; see :func:`ctinpaint.losses.moment_reconstruction_loss`).
    texture : float
        Weight of the same likelihood on the fills' 5-point Laplacian
        (:func:`ctinpaint.losses.laplacian`): trains the spread of the fine
        detail of the samples towards that of the truth, so single samples
        are as rough as CT, not smoother (0 = off). The default 0.05 gave
        0.88-0.90 of the truth's high-pass energy on real slices (0: 0.33,
        0.2: 1.7-2.0, 1: 2.8-3.7; docs/quality.md).
    texture_fills : {"generator", "drawn"}
        Which fills the texture term sees when the model has a std head.
        "generator": G's own deviations about the regressed mean. "drawn":
        those deviations scaled per pixel to the std head's std, as
        :func:`ctinpaint.sampling.sample_fills` draws every sample; the term
        then trains the roughness a user actually gets, which G's own
        deviations only set up to a run-dependent per-pixel factor. Measured
        not to pay: single samples came out rougher, not closer to the truth
        (real slices, texture ratio square / random: 1.13 / 0.96 against
        0.82 / 0.68 at 2000 steps, 2.72 / 1.77 against 1.87 / 0.96 at 7000
        steps with seed 1; docs/quality.md).
    ema : float
        Validate and export exponential moving averages of C's and G's
        weights with this decay (warmed up; see
        :func:`gan_zoo.training.ema_update`) instead of the last weights;
        0 = off. Training itself is unchanged; the average smooths the
        step-to-step noise of the last weights, which matters most for
        short trainings that stop at an arbitrary step.
    hole_shape : {"square", "random"}
        Training holes: the reference's centred square, or random shapes inside
        the central box (real artifacts are any shape).
    tile_holes : float
        Share of training patches whose unknown region is what a tile of a
        larger artifact sees instead (the box, extended to the patch edge on
        1-3 sides; :class:`~ctinpaint.patches.PatchSampler`); 0 = none.
    axes : tuple of int
        Slice orientations patches are cut from.
    holdout : float
        Fraction of rows (at the bottom of every slice) held out for validation;
        the training sampler never sees them.
    n_val, val_samples : int
        Validation windows, and samples per window for their mean/std. As
        many more held-out windows calibrate the exported model (a 2.5D
        model: twice as many, half with the hole through every context slice).
    seed : int
    device : str
        "auto", "cpu", "cuda" or "cuda:N".
    checkpoint_every, validate_every, log_every : int
        Intervals in steps.
    """

    steps: int | None = 7000
    minutes: float | None = None
    batch_size: int = 64
    lr_g: float = 1e-3
    lr_d: float = 3e-4
    lr_schedule: str = "cosine"
    loss: str = "nonsaturating"
    mode_seeking: float = 0.05
    r1: float = 0.0
    moments: float = 1.0
    moment_samples: int = 4
    moments_beta: float = 0.0
    texture: float = 0.05
    texture_fills: str = "generator"
    ema: float = 0.999
    hole_shape: str = "random"
    tile_holes: float = 0.0
    axes: tuple[int, ...] = (0,)
    holdout: float = 0.125
    n_val: int = 128
    val_samples: int = 32
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 500
    validate_every: int = 250
    log_every: int = 25

    def __post_init__(self):
        if self.steps is None and self.minutes is None:
            raise ValueError("steps or minutes: give at least one stopping rule")
        if self.steps is not None:
            check_int(self.steps, name="steps", minimum=1)
        if self.minutes is not None:
            check_float(self.minutes, name="minutes", minimum=0.0)
        check_int(self.batch_size, name="batch_size", minimum=1)
        check_float(self.lr_g, name="lr_g", minimum=0.0)
        check_float(self.lr_d, name="lr_d", minimum=0.0)
        check_choice(self.lr_schedule, ("constant", "cosine"), name="lr_schedule")
        check_choice(self.loss, ("nonsaturating", "lsgan", "hinge"), name="loss")
        check_float(self.mode_seeking, name="mode_seeking", minimum=0.0)
        check_float(self.r1, name="r1", minimum=0.0)
        check_float(self.moments, name="moments", minimum=0.0)
        check_int(self.moment_samples, name="moment_samples", minimum=2)
        check_float(self.moments_beta, name="moments_beta", minimum=0.0, maximum=1.0)
        check_float(self.texture, name="texture", minimum=0.0)
        check_choice(self.texture_fills, ("generator", "drawn"), name="texture_fills")
        check_float(self.ema, name="ema", minimum=0.0)
        if self.ema >= 1.0:
            raise ValueError(f"ema must be below 1 (0 = off), got {self.ema!r}")
        check_choice(self.hole_shape, ("square", "random"), name="hole_shape")
        check_float(self.tile_holes, name="tile_holes", minimum=0.0, maximum=1.0)
        object.__setattr__(self, "axes", tuple(self.axes))
        check_float(self.holdout, name="holdout", minimum=0.0, maximum=0.5)
        check_int(self.n_val, name="n_val", minimum=1)
        check_int(self.val_samples, name="val_samples", minimum=2)
        check_int(self.seed, name="seed")
        for name in ("checkpoint_every", "validate_every", "log_every"):
            check_int(getattr(self, name), name=name, minimum=1)

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        d = asdict(self)
        d["axes"] = list(self.axes)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are refused."""
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) - known:
            raise ValueError(f"train config: unexpected keys {sorted(set(data) - known) if isinstance(data, dict) else data!r}")
        return cls(**{**data, "axes": tuple(data.get("axes", (0,)))})


class CosineBudget:
    """Learning rates along a half cosine from their initial values to 0 over a training budget.

    After its ``k``-th :meth:`step` every parameter group's rate is
    ``initial * (1 + cos(pi * p)) / 2`` with the budget's progress
    ``p = min(1, max(k / steps, elapsed / (60 * minutes)))``: with ``steps``
    alone, ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=steps)``; with a
    time budget the rates reach 0 when the time runs out, however many steps
    that allowed. ``elapsed`` counts wall-clock seconds since construction,
    plus those of earlier sessions restored by :meth:`load_state_dict`. In
    several processes (``torch.distributed``) rank 0's progress is broadcast,
    since ranks whose rates differed would drift apart.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
    steps : int or None
        Optimizer steps in the budget.
    minutes : float or None
        Wall-clock minutes in the budget; at least one of the two.

    Examples
    --------
    >>> opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=1.0)
    >>> schedule = CosineBudget(opt, steps=4)
    >>> [round((schedule.step(), opt.param_groups[0]["lr"])[1], 3) for _ in range(4)]
    [0.854, 0.5, 0.146, 0.0]
    """

    def __init__(self, optimizer, *, steps: int | None = None, minutes: float | None = None):
        if steps is None and minutes is None:
            raise ValueError("CosineBudget needs steps or minutes (or both)")
        if steps is not None:
            check_int(steps, name="steps", minimum=1)
        if minutes is not None:
            check_float(minutes, name="minutes", minimum=0.0)
            if minutes <= 0:
                raise ValueError(f"minutes must be > 0, got {minutes}")
        self.optimizer = optimizer
        self.steps = steps
        self.seconds = None if minutes is None else 60.0 * minutes
        self.initial = [group["lr"] for group in optimizer.param_groups]
        self.count = 0
        self._before = 0.0
        self._start = time.monotonic()

    def elapsed(self) -> float:
        """Seconds of the budget spent (earlier sessions included)."""
        return self._before + time.monotonic() - self._start

    def progress(self) -> float:
        """Share of the budget spent, in [0, 1], by this process's clock."""
        done = 0.0 if self.steps is None else self.count / self.steps
        if self.seconds is not None:
            done = max(done, self.elapsed() / self.seconds)
        return min(done, 1.0)

    def step(self) -> None:
        """Count one optimizer step and set the rates (collective under ``torch.distributed`` with minutes)."""
        self.count += 1
        done = self.progress()
        if self.seconds is not None:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
                shared = torch.tensor([done], dtype=torch.float64, device=self.optimizer.param_groups[0]["params"][0].device)
                dist.broadcast(shared, src=0)
                done = float(shared.item())
        factor = 0.5 * (1.0 + math.cos(math.pi * done))
        for group, initial in zip(self.optimizer.param_groups, self.initial):
            group["lr"] = initial * factor

    def state_dict(self) -> dict:
        return {"count": self.count, "elapsed": self.elapsed(), "initial": list(self.initial)}

    def load_state_dict(self, state: dict) -> None:
        self.count, self._before, self.initial = int(state["count"]), float(state["elapsed"]), list(state["initial"])
        self._start = time.monotonic()


class LoadedModel(NamedTuple):
    """A trained model ready for sampling.

    Attributes
    ----------
    model : ctinpaint.models.InpaintingGAN
        In eval mode.
    intensity : ctinpaint.intensity.IntensityMapping
    meta : dict
        The model file's metadata (configs, step, format version).
    calibration : ctinpaint.calibration.Calibration or None
        Spread factors fitted on held-out holes after training; ``None`` (no
        correction) for models saved without one.
    """

    model: torch.nn.Module
    intensity: object
    meta: dict
    calibration: object = None


def train_model(volume, out_dir, *, mask=None, model_config=None, config: TrainConfig | None = None,
                intensity=None, progress=True, stop=None):
    """Train C, G and D on artifact-free patches of ``volume``; resume when ``out_dir`` has a checkpoint.

    Parameters
    ----------
    volume : path or array
        Anything :func:`ctinpaint.io.open_volume` accepts, shape (Z, Y, X).
    out_dir : str or os.PathLike
        Training directory: checkpoints (``latest``, ``best``), ``log.jsonl``,
        previews, and the final model files ``model.safetensors`` + ``model.json``.
        ``best`` is the validation with the lowest ``nll``: the Gaussian
        negative log-likelihood of the held-out truth under the mean fill and
        the std map times its best-fitting factor. It ranks a flat std map by
        PSNR alone and otherwise also rewards a map that is high where the
        fill is wrong (a checkpoint chosen on PSNR alone could carry a std
        head that had barely trained).
        An existing training there is resumed exactly.
    mask : path or array, optional
        Known artifacts; patches never touch them.
    model_config : ctinpaint.models.ModelConfig, optional
        Network architecture; default: the default preset.
    config : TrainConfig, optional
    intensity : ctinpaint.intensity.IntensityMapping, optional
        Default: fitted on the volume (outside the mask).
    progress : bool or callable, default True
        Show a progress bar; a callable ``(step, total_steps_or_None, log_line)``
        is called with every log line instead (see
        :func:`gan_zoo.training.run_training`).
    stop : object with ``is_set()``, optional
        E.g. a :class:`threading.Event`; once set, training ends after the
        current step, writes its checkpoint and exports the model as at a
        normal end (``stopped_by="cancelled"``); running again resumes.

    Returns
    -------
    gan_zoo.training.TrainResult
        With the final step, elapsed time and checkpoint paths; the model
        directory is ``out_dir``.

    Raises
    ------
    ValueError
        A volume too small to hold out validation rows and still train, or no
        artifact-free region big enough for a patch; ``out_dir`` that cannot
        be created or written, or that another job is training in (its lock
        file ``out_dir/.lock`` is held).

    Examples
    --------
    >>> from ctinpaint.phantom import make_phantom
    >>> import tempfile
    >>> vol = make_phantom((2, 96, 96), seed=0)
    >>> result = train_model(vol, tempfile.mkdtemp(), config=TrainConfig(steps=2, n_val=4, val_samples=2), progress=False)
    >>> result.step
    2
    """
    from gan_zoo.training import LoopConfig, Phase, ema_update, run_training

    from .intensity import fit_intensity
    from .io import OutputLock, open_mask, open_volume
    from .losses import AdversarialLoss, laplacian, mode_seeking_loss, moment_reconstruction_loss, r1_penalty
    from gan_zoo.training import init_distributed, rank_and_world

    from .models import DEFAULT_PRESET, InpaintingGAN, build_model, config_for
    from .patches import PatchSampler

    config = config or TrainConfig()
    # Under torchrun: join the other processes (each trains on its own patches).
    init_distributed(config.device)
    rank, world = rank_and_world()
    model_config = model_config or config_for(DEFAULT_PRESET)
    vol = open_volume(volume, name="volume")
    msk = None if mask is None else open_mask(mask, shape=vol.shape)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"out_dir: cannot create {out_dir}: {exc}") from exc
    if not os.access(out_dir, os.W_OK):
        raise ValueError(f"out_dir: the folder {out_dir} is not writable")
    resumed_meta = _existing_meta(out_dir)
    if resumed_meta is not None:
        # The schedulers are part of the checkpoint; say which setting differs, not which state is missing.
        saved_schedule = resumed_meta.get("train", {}).get("lr_schedule", "constant")
        if saved_schedule != config.lr_schedule:
            raise ValueError(
                f"config.lr_schedule: {out_dir} holds a run trained with lr_schedule={saved_schedule!r}, not "
                f"{config.lr_schedule!r}; resume it with the same (command line: --lr-schedule {saved_schedule}) "
                "or train into a new folder"
            )
        # A resumed run must convert intensities exactly as the first part did.
        from .intensity import IntensityMapping

        intensity = IntensityMapping.from_dict(resumed_meta["intensity"])
    elif intensity is None:
        intensity = fit_intensity(vol, mask=msk)

    P, L, c = model_config.patch, model_config.hole, model_config.context
    heldout = heldout_rows(vol, patch=P, fraction=config.holdout)
    held_out = dict(
        mask=msk, exclude=~heldout, patch=P, hole=L, hole_shape=config.hole_shape, batch_size=config.n_val,
        intensity=intensity, context=c,
    )  # fmt: skip
    val_sampler = PatchSampler(vol, seed=config.seed + 1, **held_out)
    # The first n_val held-out windows validate (and pick the best checkpoint); the next
    # n_val calibrate the spread of the exported model, so it is not fitted on the windows it was chosen on.
    # Windows (N, K, P, P) go to the model; the truth of the filled slice, (N, P, P), scores it.
    held = val_sampler.take(2 * config.n_val)
    val_windows, calib_windows = held.x[: config.n_val], held.x[config.n_val :]
    val_unknown, calib_unknown = held.hole[: config.n_val] > 0.5, held.hole[config.n_val :] > 0.5
    if c:
        # Unguided pixels (no neighbouring slice known) get spread factors of their own, but only windows
        # whose hole continues both ways have them: a quarter. Fitted on those alone, the factors moved by
        # 7 % and 18 % between 128 and 1024 calibration windows on the 3D phantom, so n_val more windows
        # with the hole through every context slice join the calibration.
        deep = PatchSampler(vol, seed=config.seed + 5, hole_depth=c, **held_out).take(config.n_val)
        calib_windows = np.concatenate([calib_windows, deep.x])
        calib_unknown = np.concatenate([calib_unknown, deep.hole > 0.5])
    val_truth = val_windows[:, c]
    sampler = PatchSampler(
        vol, mask=msk, exclude=heldout, patch=P, hole=L, hole_shape=config.hole_shape,
        batch_size=config.batch_size, axes=config.axes, seed=config.seed + rank, intensity=intensity, context=c,
        tile_holes=config.tile_holes,
    )

    torch.manual_seed(config.seed)
    model = build_model(model_config)
    adversarial = AdversarialLoss(config.loss)
    opt_g = torch.optim.Adam(
        [*model.conditioner.parameters(), *model.generator.parameters()], lr=config.lr_g, betas=(0.5, 0.999)
    )
    opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=config.lr_d, betas=(0.5, 0.999))
    schedules = {"G": None, "D": None}
    if config.lr_schedule == "cosine":
        schedules = {name: CosineBudget(opt, steps=config.steps, minutes=config.minutes)
                     for name, opt in (("G", opt_g), ("D", opt_d))}
    # The losses run through ``net``: in several processes, the same networks wrapped in
    # DistributedDataParallel (gradients averaged over ranks); validation and exports use ``averaged``:
    # ``model`` itself, or with weight averaging, moving averages of its C and G (D only trains).
    net = model if world == 1 else _data_parallel_view(model, config.device)
    networks = _parts(model)
    averaged, after_g_step = model, None
    if config.ema > 0:
        networks["C_ema"] = copy.deepcopy(model.conditioner).requires_grad_(False)
        networks["G_ema"] = copy.deepcopy(model.generator).requires_grad_(False)
        averaged = InpaintingGAN(
            model_config, conditioner=networks["C_ema"], generator=networks["G_ema"], discriminator=model.discriminator
        )

        def after_g_step(step):
            ema_update(networks["C_ema"], model.conditioner, step, decay=config.ema)
            ema_update(networks["G_ema"], model.generator, step, decay=config.ema)

    def d_loss(batch, step):
        x, hole = batch.x, batch.hole
        y = x * (1 - hole)
        with torch.no_grad():
            fake = net(y, hole)
        if config.r1 > 0:
            x = x.detach().requires_grad_(True)
        real_logits = net.discriminate(x, hole)
        loss = adversarial.d_loss(real_logits, net.discriminate(fake, hole))
        logs = {"adv": loss.detach()}
        if config.r1 > 0:
            penalty = r1_penalty(real_logits, x)
            loss = loss + config.r1 * penalty
            logs["r1"] = penalty.detach()
        return loss, logs

    def g_loss(batch, step):
        x, hole = batch.x, batch.hole
        y = x * (1 - hole)
        cond = net.condition(y, hole)
        o, L = net.config.offset, net.config.hole
        box_hole = hole[:, c : c + 1, o : o + L, o : o + L]
        target = x[:, c : c + 1, o : o + L, o : o + L]
        mean, std = net.regressed_mean(cond), net.regressed_std(cond)
        # Fills per patch: the moment and texture terms need a spread, mode seeking a pair.
        if config.moments > 0 or config.texture > 0:
            k = max(2, config.moment_samples)
        else:
            k = 2 if config.mode_seeking > 0 else 1
        if mean is not None:
            k = max(k, 2)  # one fill centred on the mean would be the mean itself, with nothing for G to learn
        n = x.shape[0]
        z = net.sample_z(k * n, device=x.device)
        # C runs once; its output is shared by the k fills of each patch.
        fills = net.generate(z, cond.repeat(k, *([1] * (cond.ndim - 1)))).reshape(k, n, *box_hole.shape[1:])
        if mean is not None:
            # The mean is the regression's; G learns only the deviations around it (as sampling draws them).
            # (Not scaled to the regressed std here: D then judged samples at the size they are
            # drawn, and single samples came out smoother, 0.11-0.17 of the truth's texture
            # against 0.33 unscaled; docs/quality.md.)
            fills = fills - fills.mean(dim=0, keepdim=True) + mean.detach()
        adv = adversarial.g_loss(net.discriminate(net.composite(y, hole, fills[0]), hole))
        logs = {"adv": adv.detach()}
        loss = adv
        if config.mode_seeking > 0:
            # Only hole pixels count: G could otherwise buy diversity with pixels that are thrown away.
            ms = mode_seeking_loss(fills[0], fills[1], z[:n], z[n : 2 * n], mask=box_hole)
            loss = loss + config.mode_seeking * ms
            logs["mode_seeking"] = ms.detach()
        if config.moments > 0:
            mr = moment_reconstruction_loss(fills, target, box_hole, beta=config.moments_beta)
            loss = loss + config.moments * mr
            logs["moments"] = mr.detach()
        if config.texture > 0:
            lap_target, inner = laplacian(target, box_hole)
            drawn = fills
            if std is not None and config.texture_fills == "drawn":
                # Scaled as sampling scales them: each pixel's k deviations to the head's std (which the
                # term must not train; its NLL does). The floor keeps pixels G does not vary finite.
                dev = fills - mean.detach()
                drawn = mean.detach() + dev * (std.detach() / dev.std(dim=0, keepdim=True).clamp(min=1e-3))
            tx = moment_reconstruction_loss(laplacian(drawn, box_hole)[0], lap_target, inner)
            loss = loss + config.texture * tx
            logs["texture"] = tx.detach()
        if mean is not None:

            def over_hole(values):  # mean over the box's unknown pixels
                return (values * box_hole).sum() / box_hole.sum().clamp(min=1)

            # Squared error is the only gradient the mean network's weights get: G reads it detached.
            mse = over_hole((mean - target) ** 2)
            loss = loss + mse
            logs["mean_mse"] = mse.detach()
            if std is not None:
                # Gaussian negative log-likelihood of the mean's error, the mean held fixed: it
                # reaches the std head alone (the head reads its inputs detached).
                err = (target - mean).detach()
                nll = over_hole(torch.log(std) + 0.5 * (err / std) ** 2)
                loss = loss + nll
                logs["std_nll"] = nll.detach()
        return loss, logs

    def validate(step):
        from .sampling import sample_fills

        stats = sample_fills(averaged, val_windows, val_unknown, n_samples=config.val_samples, seed=config.seed)
        return _validation_metrics(val_truth, stats)

    def preview(step, path):
        from .figures import uncertainty_panels
        from .sampling import draw_fills, sample_fills

        k = min(4, len(val_truth))
        stats = sample_fills(averaged, val_windows[:k], val_unknown[:k], n_samples=max(config.val_samples, 64), seed=0)
        one = draw_fills(averaged, val_windows[:k], val_unknown[:k], seed=1)
        path.parent.mkdir(parents=True, exist_ok=True)
        hidden = val_unknown[:k, c]
        uncertainty_panels(np.where(hidden, 0, val_truth[:k]), hidden, val_truth[:k], stats, one, path)

    meta = {
        "model": model_config.to_dict(),
        "intensity": intensity.to_dict(),
        "train": config.to_dict(),
        "model_format_version": MODEL_FORMAT_VERSION,
    }
    # Two runs in one folder would overwrite each other's checkpoints: the second is refused.
    # Under torchrun only rank 0 writes (and locks); the other ranks read the same checkpoints.
    lock = OutputLock(out_dir, name="out_dir", lock_file=out_dir / ".lock") if rank == 0 else contextlib.nullcontext()
    with lock:
        result = run_training(
            networks=networks,
            phases=[
                Phase("D", opt_d, d_loss, scheduler=schedules["D"]),
                Phase("G", opt_g, g_loss, scheduler=schedules["G"], after_step=after_g_step),
            ],
            data=_resumable(sampler),
            out_dir=out_dir,
            config=LoopConfig(
                steps=config.steps,
                minutes=config.minutes,
                checkpoint_every=config.checkpoint_every,
                log_every=config.log_every,
                validate_every=config.validate_every,
                preview_every=0,
                seed=config.seed,
                device=config.device,
            ),
            meta=meta,
            validate=validate,
            best_metric=("nll", "min"),
            preview=preview,
            progress=progress,
            stop=stop,
        )
        if rank == 0:
            calibration = _calibrate(model, out_dir, calib_windows, calib_unknown, config)
            loaded = LoadedModel(model=model, intensity=intensity, meta=meta, calibration=calibration)
            meta["calibration"] = (_calibrate_tiled(loaded, vol, msk, heldout, config) or calibration).to_dict()
            _export_model(out_dir, meta)
    return result


def _data_parallel_view(model, device: str):
    """``model``'s networks, each in DistributedDataParallel, as one InpaintingGAN for the losses."""
    from gan_zoo.training import data_parallel, resolve_device

    from .models import InpaintingGAN

    device = resolve_device(device)
    model.to(device)
    parts = {name: data_parallel(getattr(model, name)) for name in ("conditioner", "generator", "discriminator")}
    parts["conditioner"].out_channels = model.conditioner.out_channels
    return InpaintingGAN(model.config, **parts).to(device)


def _calibrate(model, out_dir: Path, windows: np.ndarray, unknown: np.ndarray, config: TrainConfig):
    """Texture tilt and spread factors of the exported (best) networks, fitted on the calibration windows (N, K, P, P)."""
    from .calibration import Calibration, fit_calibration, fit_texture_tilt, guided_sides
    from .evaluate import INTERVAL_QUANTILES
    from .sampling import sample_fills

    _, _, states = _inference_states(out_dir)
    for name, network in _parts(model).items():
        network.load_state_dict(states[name])
    model.eval()
    tilts = {}
    if model.config.mean_net:
        # First: the tilt reshapes the fills whose quantiles the interval factor is fitted on.
        try:
            tilts = fit_texture_tilt(model, windows, unknown, seed=config.seed + 4)
        except ValueError as exc:  # held-out windows without texture (a flat volume): G's own texture stays
            warnings.warn(f"texture tilt not fitted: {exc}", stacklevel=2)
    # At least 64 samples: the quantiles of fewer are too coarse to calibrate the interval.
    stats = sample_fills(
        model, windows, unknown, n_samples=max(config.val_samples, 64), quantiles=INTERVAL_QUANTILES,
        seed=config.seed + 2, **Calibration(**tilts).texture_tilts(),
    )  # fmt: skip
    context = model.config.context
    calibration = fit_calibration(windows[:, context], stats, guided_sides(unknown, context))
    return replace(calibration, **tilts)


def _calibrate_tiled(loaded, vol, msk, heldout, config: TrainConfig):
    """``loaded.calibration`` with factors for artifacts larger than one window, or None (no room).

    Fitted on the held-out rows of up to four consecutive slices from the middle
    of the volume (neighbours of one another, as a 2.5D model needs).
    """
    from .inpaint import calibrate_large_artifacts

    Z, Y = vol.shape[:2]
    rows = int(np.asarray(heldout[0, :, 0].compute()).sum())
    first = max(0, Z // 2 - 2)
    region = (slice(first, min(Z, first + 4)), slice(Y - rows, Y), slice(None))
    planes = np.asarray(vol[region].compute())
    mask = None if msk is None else np.asarray(msk[region].compute()) != 0
    # 64 samples per path, as for the windows' own calibration.
    return calibrate_large_artifacts(loaded, planes, mask=mask, n_samples=16 * max(config.val_samples, 64), paths=16,
                                     seed=config.seed + 3)  # fmt: skip


def _validation_metrics(truth: np.ndarray, stats) -> dict[str, float]:
    sel = stats.filled
    err = stats.mean[sel] - truth[sel]
    std = stats.std[sel]
    mse = float(np.mean(err**2))
    # Gaussian NLL per pixel with the std map times the one factor that fits it best (as calibration
    # rescales it later): with a constant map this is -PSNR in other units, and of two checkpoints with
    # the same PSNR it prefers the one whose std is high where the error is.
    floor = np.maximum(std, 1e-3)
    z2 = max(float(np.mean((err / floor) ** 2)), 1e-12)
    nll = np.mean(np.log(floor)) + 0.5 * math.log(z2) + 0.5 * (1 + math.log(2 * math.pi))
    return {
        "mae": float(np.mean(np.abs(err))),
        "psnr": float(10 * math.log10(1.0 / max(mse, 1e-12))),
        "nll": float(nll),
        "coverage_1sigma": float(np.mean(np.abs(err) <= std)),
        "coverage_2sigma": float(np.mean(np.abs(err) <= 2 * std)),
        "diversity": float(np.mean(std)),
    }


def heldout_rows(vol, *, patch: int, fraction: float):
    """The validation region training holds out: the bottom rows of every slice.

    Parameters
    ----------
    vol : dask.array.Array, (Z, Y, X)
    patch : int
        Window size; at least ``patch`` rows are held out, and at least
        ``patch`` rows must remain for training.
    fraction : float
        Fraction of the rows held out.

    Returns
    -------
    dask.array.Array
        bool (Z, Y, X), chunked like ``vol``; True on held-out voxels.

    Raises
    ------
    ValueError
        Slices too small to hold out rows and still train.
    """
    import dask.array as da

    Y = vol.shape[1]
    rows = max(patch, int(round(fraction * Y)))
    if Y - rows < patch:
        raise ValueError(
            f"volume: slices of {Y} rows are too small to hold out {rows} validation rows and still cut "
            f"{patch}x{patch} training patches; use a larger volume or a smaller patch"
        )
    band = da.arange(Y, chunks=vol.chunks[1]) >= Y - rows
    return da.broadcast_to(band[None, :, None], vol.shape, chunks=vol.chunks)


def _existing_meta(out_dir: Path):
    """The caller metadata of the training checkpoint in ``out_dir``, if there is one."""
    from gan_zoo.training import load_checkpoint

    if not (out_dir / "latest.json").exists():
        return None
    return load_checkpoint(out_dir, "latest")[1].get("user_meta")


def _resumable(sampler):
    """The sampler's batches with a position the training checkpoints can hold.

    The sampler's sequence is fixed by its seed, so resuming replays the
    batches already served (cutting is fast, ~1,000 batches of 64 a second)
    and continues with exactly the batch an uninterrupted run would see next.
    """
    from gan_zoo.data import ResumableBatches

    return ResumableBatches(lambda first: itertools.islice(iter(sampler), first, None))


def _inference_states(out_dir: Path) -> tuple[str, dict, dict]:
    """The checkpoint an exported model comes from (best, else latest), its metadata, and C, G, D's states.

    With weight averaging (``TrainConfig.ema``), C and G are the averaged copies.
    """
    from gan_zoo.training import load_checkpoint, state_from_tensors

    name = "best" if (out_dir / "best.json").exists() else "latest"
    tensors, ckpt = load_checkpoint(out_dir, name)
    saved = ckpt["networks"]
    return name, ckpt, {part: state_from_tensors(saved.get(f"{part}_ema", saved[part]), tensors) for part in ("C", "G", "D")}


def _export_model(out_dir: Path, meta: dict) -> None:
    """Write the inference model (best checkpoint's networks) as model.json + weights."""
    from gan_zoo.training import save_checkpoint, state_to_tensors

    name, ckpt, states = _inference_states(out_dir)
    weights, structure = {}, {}
    for part, state in states.items():
        tensors, structure[part] = state_to_tensors(f"networks.{part}", state)
        weights.update(tensors)
    save_checkpoint(
        out_dir, _MODEL_NAME, tensors=weights,
        meta={"networks": structure, "ctinpaint": meta, "step": ckpt.get("step"), "checkpoint": name},
    )  # fmt: skip


def _parts(model) -> dict:
    return {"C": model.conditioner, "G": model.generator, "D": model.discriminator}


def load_model(model_dir, *, device: str = "auto") -> LoadedModel:
    """Load a trained model directory safely (safetensors + JSON, no pickle).

    Parameters
    ----------
    model_dir : str or os.PathLike
        Directory written by :func:`train_model` (``model.safetensors`` + ``model.json``).
    device : str, default "auto"

    Returns
    -------
    LoadedModel
        ``model`` in eval mode on ``device``, the ``intensity`` mapping it was
        trained with, and the metadata.

    Raises
    ------
    ValueError
        Missing, corrupt or foreign files; a weights file larger than memory;
        unexpected keys or values of the wrong type in ``model.json``; a newer
        format version; weights whose names or shapes do not match the stored
        config (checked before the networks are allocated).
    """
    from gan_zoo.training import load_checkpoint, resolve_device, state_from_tensors

    from ._checks import memory_limit
    from .intensity import IntensityMapping
    from .calibration import Calibration
    from .models import ModelConfig, build_model

    model_dir = Path(model_dir)
    try:
        # A weights file larger than memory is refused before a byte of it is read.
        tensors, stored = load_checkpoint(model_dir, _MODEL_NAME, max_bytes=memory_limit())
    except (ValueError, OSError) as exc:
        # Missing, corrupt or foreign files (or a file passed instead of the folder): name the argument.
        raise ValueError(f"model_dir: {model_dir} holds no readable ctinpaint model: {exc}") from exc
    meta = stored.get("ctinpaint")
    if not isinstance(meta, dict) or not isinstance(stored.get("networks"), dict):
        raise ValueError(f"model_dir: {model_dir} is not a ctinpaint model (model.json has no model description)")
    unexpected = sorted(set(stored) - _MODEL_META_KEYS) + sorted(f"ctinpaint.{k}" for k in set(meta) - _CTINPAINT_KEYS)
    if unexpected:
        raise ValueError(f"model_dir: {model_dir}/model.json has unexpected keys {unexpected}")
    for key in ("model", "intensity", "model_format_version"):
        if key not in meta:
            raise ValueError(f"model_dir: {model_dir} is not a ctinpaint model (no {key!r} in model.json)")
    version = meta["model_format_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"model_dir: {model_dir} has an invalid model format version {version!r}")
    if version > MODEL_FORMAT_VERSION:
        raise ValueError(
            f"model_dir: {model_dir} was written by a newer ctinpaint (model format {version}); upgrade ctinpaint"
        )
    step = stored.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
        raise ValueError(f"model_dir: {model_dir}/model.json has a 'step' that is not an integer: {step!r}")
    if "train" in meta:
        try:
            TrainConfig.from_dict(meta["train"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"model_dir: {model_dir}/model.json has an invalid training config: {exc}") from exc
    config = ModelConfig.from_dict(meta["model"])
    intensity = IntensityMapping.from_dict(meta["intensity"])
    # Shapes first, on the meta device: a forged config (width 2**14) allocates nothing before it is refused.
    with torch.device("meta"):
        skeleton = build_model(config)
    states = {}
    for name, module in _parts(skeleton).items():
        if name not in stored["networks"]:
            raise ValueError(f"model_dir: {model_dir} has no weights for network {name!r}")
        try:
            state = state_from_tensors(stored["networks"][name], tensors)
        except ValueError as exc:
            raise ValueError(f"model_dir: weights in {model_dir} are malformed: {exc}") from exc
        expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)} if isinstance(state, dict) else {}
        if found != expected:
            differ = sorted(k for k in set(expected) | set(found) if expected.get(k) != found.get(k))
            raise ValueError(
                f"model_dir: weights in {model_dir} do not match the stored config: network {name!r} differs in "
                f"{differ[:3]}{'...' if len(differ) > 3 else ''} (expected {[expected.get(k) for k in differ[:3]]}, "
                f"found {[found.get(k) for k in differ[:3]]})"
            )
        states[name] = state
    model = build_model(config)
    for name, module in _parts(model).items():
        try:
            module.load_state_dict(states[name], strict=True)
        except (RuntimeError, KeyError, TypeError) as exc:
            raise ValueError(f"model_dir: weights in {model_dir} do not match the stored config: {exc}") from exc
    calibration = None
    if "calibration" in meta:  # models written before calibration existed have none
        try:
            calibration = Calibration.from_dict(meta["calibration"])
        except ValueError as exc:
            raise ValueError(f"model_dir: {model_dir} has an invalid {exc}") from exc
    model.to(resolve_device(device)).eval()
    return LoadedModel(
        model=model, intensity=intensity, meta={**meta, "step": stored.get("step")}, calibration=calibration
    )
