"""The one training loop behind every GAN of gan_zoo and ctinpaint.

A model describes its training as *phases*: (networks reached through a loss,
loss, optimizer, interval). A DCGAN has a "D" phase and a "G" phase; CycleGAN
the same with two generators in one optimizer; ctinpaint's C and G share the
"G" phase. :func:`run_training` runs them step after step and owns everything
around them: devices, mixed precision, logging, validation, previews,
checkpoints and resuming.

Resuming is exact: a run interrupted at any point and started again with the
same arguments continues from its ``latest`` checkpoint and, on the CPU, ends
with the same weights, bit for bit, as a run that was never interrupted. For
that the checkpoint holds the networks, the optimizers and schedulers, every
random number generator, the data iterator's position (when it has
``state_dict``), the partial log averages and the best metric so far.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import numbers
import random
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .checkpoint import (
    _NAME_PATTERN,
    _check_json_value,
    load_checkpoint,
    rng_state_from_tensors,
    rng_state_to_tensors,
    save_checkpoint,
    state_from_tensors,
    state_to_tensors,
)
from .devices import autocast, resolve_device, to_device
from .distributed import rank_and_world

__all__ = ["Phase", "LoopConfig", "TrainResult", "run_training", "load_networks"]

_log = logging.getLogger(__name__)

#: Keys of a log line that phase names must not take.
_RESERVED_NAMES = {"step", "elapsed", "validation"}
#: Keys of a phase's log entry that a loss's extra logs must not take.
_RESERVED_LOG_KEYS = {"loss", "lr", "grad_norm"}
#: Metadata keys of a training checkpoint.
_STATE_KEYS = (
    "step", "elapsed_seconds", "config", "user_meta", "versions", "networks", "optimizers",
    "schedulers", "rng", "data", "best", "log_accumulator",
)  # fmt: skip


@dataclass
class Phase:
    """One kind of update: a loss minimised by one optimizer every ``every`` steps.

    The loop does not toggle ``requires_grad``: each loss decides what to
    detach. A discriminator loss detaches the generator's output
    (``D(G(z).detach())``); a generator loss back-propagates through the
    discriminator, which leaves gradients on D's parameters. Those are
    harmless, because every phase starts by clearing its own optimizer's
    gradients (``zero_grad(set_to_none=True)``), so D's update never sees the
    gradients of G's loss. Freezing D during G's phase would only save the
    computation of those gradients.

    Attributes
    ----------
    name : str
        Short name used in logs and checkpoints, e.g. ``"D"`` or ``"G"``
        (letters, digits, ``_``, ``-``).
    optimizer : torch.optim.Optimizer
        Updates the parameters this phase trains; all of them must belong to
        the ``networks`` given to :func:`run_training`, so they are saved.
    loss : callable ``(batch, step) -> (loss, logs)``
        ``batch`` is on the training device, ``step`` counts from 1. Returns a
        scalar tensor to minimise and a dict of extra values to log (floats or
        scalar tensors; tensors are averaged on the device, without a sync).
        It runs under autocast (bf16 on CUDA when ``LoopConfig.amp``).
    every : int, default 1
        The phase runs on steps where ``step % every == 0``.
    scheduler : torch.optim.lr_scheduler.LRScheduler, optional
        Stepped (without arguments) after each step of ``optimizer``, so it
        counts this phase's updates, not loop steps.
    clip_grad : float, optional
        Clip the gradient norm of ``optimizer``'s parameters to this value; the
        norm before clipping is logged as ``grad_norm``.
    after_step : callable ``step -> None``, optional
        Called after each step of ``optimizer`` (and ``scheduler``), without
        gradients, e.g. to move an exponential moving average of the weights
        (see :func:`ema_update`); what it updates must be among the
        ``networks`` to be checkpointed.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(2, 1)
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
    >>> phase = Phase("fit", opt, lambda batch, step: (net(batch).pow(2).mean(), {}), every=1)
    >>> phase.name, phase.every
    ('fit', 1)
    """

    name: str
    optimizer: torch.optim.Optimizer
    loss: Callable[[Any, int], tuple[torch.Tensor, dict[str, float]]]
    every: int = 1
    scheduler: Any | None = None
    clip_grad: float | None = None
    after_step: Callable[[int], None] | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME_PATTERN.fullmatch(self.name) or self.name in _RESERVED_NAMES:
            raise ValueError(
                f"Phase name must be letters, digits, '_' and '-', and not one of {sorted(_RESERVED_NAMES)}; got {self.name!r}"
            )
        if not isinstance(self.optimizer, torch.optim.Optimizer):
            raise TypeError(f"phase {self.name!r}: optimizer must be a torch.optim.Optimizer, got {type(self.optimizer).__name__}")
        if not callable(self.loss):
            raise TypeError(f"phase {self.name!r}: loss must be callable")
        _check_count(self.every, f"phase {self.name!r}: every", minimum=1)
        if self.scheduler is not None and not all(
            callable(getattr(self.scheduler, method, None)) for method in ("step", "state_dict", "load_state_dict")
        ):
            raise TypeError(f"phase {self.name!r}: scheduler must have step(), state_dict() and load_state_dict()")
        if self.clip_grad is not None:
            if isinstance(self.clip_grad, bool) or not isinstance(self.clip_grad, numbers.Real):
                raise TypeError(f"phase {self.name!r}: clip_grad must be a number or None, got {self.clip_grad!r}")
            if not (math.isfinite(self.clip_grad) and self.clip_grad > 0):
                raise ValueError(f"phase {self.name!r}: clip_grad must be positive and finite, got {self.clip_grad}")
        if self.after_step is not None and not callable(self.after_step):
            raise TypeError(f"phase {self.name!r}: after_step must be callable or None")


@dataclass(frozen=True)
class LoopConfig:
    """How long to train and how often to log, validate, preview and checkpoint.

    Saved in every checkpoint. Steps count from 1.

    Attributes
    ----------
    steps : int, optional
        Stop after this many steps in total (earlier sessions of a resumed run included).
    minutes : float, optional
        Stop after this much training wall-clock time in total (earlier
        sessions included), whichever of ``steps`` and ``minutes`` comes first.
        At least one of them is required.
    checkpoint_every : int, default 1000
        Write the ``latest`` checkpoint every this many steps (and at the end).
    log_every : int, default 50
        Append averages over this many steps to ``log.jsonl`` (and at the end).
    validate_every : int, default 0
        Call ``validate`` every this many steps; 0: only at the end.
    preview_every : int, default 0
        Call ``preview`` every this many steps; 0: only at the end.
    seed : int, default 0
        Seeds torch, Python ``random`` and NumPy's global generator at a fresh
        start (a resumed run restores their states instead).
    device : str, default "auto"
        See :func:`~gan_zoo.training.resolve_device`.
    amp : bool, default True
        bf16 autocast on CUDA; ignored on the CPU.

    Examples
    --------
    >>> LoopConfig(steps=10_000, checkpoint_every=500).minutes is None
    True
    """

    steps: int | None = None
    minutes: float | None = None
    checkpoint_every: int = 1000
    log_every: int = 50
    validate_every: int = 0
    preview_every: int = 0
    seed: int = 0
    device: str = "auto"
    amp: bool = True

    def __post_init__(self):
        if self.steps is None and self.minutes is None:
            raise ValueError("LoopConfig needs steps or minutes (or both) to know when to stop")
        if self.steps is not None:
            _check_count(self.steps, "steps", minimum=1)
        if self.minutes is not None:
            if isinstance(self.minutes, bool) or not isinstance(self.minutes, numbers.Real):
                raise TypeError(f"minutes must be a number or None, got {self.minutes!r}")
            if not (math.isfinite(self.minutes) and self.minutes > 0):
                raise ValueError(f"minutes must be positive and finite, got {self.minutes}")
        _check_count(self.checkpoint_every, "checkpoint_every", minimum=1)
        _check_count(self.log_every, "log_every", minimum=1)
        _check_count(self.validate_every, "validate_every", minimum=0)
        _check_count(self.preview_every, "preview_every", minimum=0)
        _check_count(self.seed, "seed", minimum=0)
        if self.seed >= 2**32:
            raise ValueError(f"seed must be below 2**32 (NumPy's limit), got {self.seed}")
        if not isinstance(self.device, str):
            raise TypeError(f"device must be a string, got {type(self.device).__name__}")
        if not isinstance(self.amp, bool):
            raise TypeError(f"amp must be a bool, got {self.amp!r}")


@dataclass(frozen=True)
class TrainResult:
    """What :func:`run_training` did.

    Attributes
    ----------
    step : int
        The last step trained (of the whole run, resumed sessions included).
    elapsed : float
        Training wall-clock seconds of the whole run.
    logs : dict
        The last training log line (empty when this call trained no step).
    latest : pathlib.Path or None
        JSON of the ``latest`` checkpoint.
    best : pathlib.Path or None
        JSON of the ``best`` checkpoint, when ``best_metric`` was given and a
        finite value was seen.
    best_value : float or None
        The best value of ``best_metric``.
    stopped_by : str
        ``"steps"``, ``"minutes"`` or ``"cancelled"`` (``stop`` was set).
    resumed_from : int or None
        The step the run was resumed from, None for a fresh start.
    """

    step: int
    elapsed: float
    logs: dict
    latest: Path | None
    best: Path | None
    best_value: float | None
    stopped_by: str
    resumed_from: int | None


def run_training(
    *,
    networks: Mapping[str, nn.Module],
    phases: Sequence[Phase],
    data: Iterable,
    out_dir,
    config: LoopConfig,
    meta: dict | None = None,
    validate: Callable[[int], Mapping[str, float]] | None = None,
    best_metric: tuple[str, str] | None = None,
    preview: Callable[[int, Path], None] | None = None,
    progress: bool | Callable[[int, int | None, dict], None] = True,
    stop=None,
) -> TrainResult:
    """Train ``networks`` by running ``phases`` on batches of ``data``; resume if interrupted.

    Each step pulls one batch, moves it to the device (see
    :func:`~gan_zoo.training.to_device`) and runs every phase due at that
    step, in order: clear gradients, loss under autocast, backward, optional
    clipping, optimizer step, scheduler step. Then, at their intervals: a log
    line, validation (and the ``best`` checkpoint), the ``latest`` checkpoint,
    a preview. All of them also happen after the last step.

    When ``out_dir/latest.json`` exists, the run continues from it: networks,
    optimizers, schedulers, random generators, the data iterator's state, the
    partial log averages and the best metric are restored, log lines written
    after that checkpoint are dropped, and training continues at the next
    step. On the CPU the result is bit-identical to an uninterrupted run.

    The loop never toggles ``requires_grad``: each phase's loss decides what
    to detach (see :class:`Phase`).

    In several processes (``torchrun``, after
    :func:`~gan_zoo.training.init_distributed`), every rank runs the same
    steps; losses should call networks wrapped by
    :func:`~gan_zoo.training.data_parallel` so gradients are averaged. Rank
    ``r`` seeds its generators with ``seed + r``; only rank 0 writes logs,
    validates, previews and checkpoints; the stop decision is rank 0's; all
    ranks resume from the same ``latest`` checkpoint (ranks other than 0 then
    draw fresh random streams, so only rank 0's resume is exact).

    ``validate`` and ``preview`` run under ``torch.no_grad()`` with every
    network in eval mode (modes restored afterwards), and with the random
    generators saved and restored around them, so evaluating never changes
    the training trajectory. Otherwise the loop leaves train/eval modes alone.

    Parameters
    ----------
    networks : mapping of str to torch.nn.Module
        Everything that is trained or must be saved (an EMA copy too); names
        are letters, digits, ``_`` and ``-``. Moved to the device in place, so
        optimizers built before the call keep working.
    phases : sequence of Phase
        Run in this order within a step; names must be unique.
    data : iterable
        Yields batches (tensors, NumPy arrays, tuples/named tuples/lists/dicts
        of them). Iterated again when exhausted (epochs). When it has
        ``state_dict()`` (JSON-able) and ``load_state_dict(state)``, its state
        is checkpointed and restored before iterating on resume; otherwise a
        resumed run starts iterating it from the beginning.
    out_dir : str or os.PathLike
        Run folder: ``log.jsonl``, ``latest.*``, ``best.*``, ``previews/``.
    config : LoopConfig
    meta : dict, optional
        JSON data saved in every checkpoint as ``user_meta`` (model config,
        intensity mapping, ...).
    validate : callable ``step -> dict of str to float``, optional
        Called every ``config.validate_every`` steps and at the end; its
        values are logged as ``{"step": ..., "validation": {...}}``.
    best_metric : (str, "max" | "min"), optional
        A key of ``validate``'s result; whenever it improves, the ``best``
        checkpoint is written.
    preview : callable ``(step, path) -> None``, optional
        Writes a picture to ``path`` (``out_dir/previews/step_0000100.png``),
        every ``config.preview_every`` steps and at the end.
    progress : bool or callable, default True
        True shows a tqdm progress bar with the latest losses. A callable
        ``(step, total_steps_or_None, log_line)`` is called instead whenever a
        log line is written (``log_line`` is the dict appended to
        ``log.jsonl``; on rank 0 only), e.g. for a live loss readout in a
        user interface.
    stop : object with ``is_set()``, optional
        E.g. a :class:`threading.Event`, checked after every step. Once it is
        set, the step just trained is treated as the last one: the log line,
        validation, ``latest`` checkpoint and preview are written as at a
        normal end, and the result says ``stopped_by="cancelled"``. Running
        again with the same arguments resumes from there. Under torchrun,
        rank 0's ``stop`` decides for every rank.

    Returns
    -------
    TrainResult

    Raises
    ------
    TypeError, ValueError
        For invalid arguments (checked before training), a loss that does not
        return a scalar tensor, data that runs dry, or a checkpoint in
        ``out_dir`` that does not match ``networks`` or ``phases``.

    Examples
    --------
    >>> import tempfile, torch
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Linear(3, 1)
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
    >>> phase = Phase("fit", opt, lambda x, step: ((net(x) - 1).pow(2).mean(), {}))
    >>> data = [torch.randn(8, 3) for _ in range(4)]
    >>> result = run_training(networks={"net": net}, phases=[phase], data=data, out_dir=tempfile.mkdtemp(),
    ...                       config=LoopConfig(steps=20, log_every=10, device="cpu"), progress=False)
    >>> result.step, result.stopped_by, result.latest.name
    (20, 'steps', 'latest.json')
    >>> result.logs["fit"]["loss"] < 1.0
    True
    """
    _check_arguments(networks, phases, data, config, meta, validate, best_metric, preview)
    if not isinstance(progress, bool) and not callable(progress):
        raise TypeError(f"progress must be a bool or a callable, got {type(progress).__name__}")
    if stop is not None and not callable(getattr(stop, "is_set", None)):
        raise TypeError(f"stop must have an is_set() method (e.g. threading.Event), got {type(stop).__name__}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "log.jsonl"
    device = resolve_device(config.device)
    for network in networks.values():
        # In place (same Parameter objects), so the optimizers' references stay valid.
        network.to(device)
    clip_params = {p.name: [q for g in p.optimizer.param_groups for q in g["params"]] for p in phases if p.clip_grad}
    averages = _Averages()
    state = _TrainingState(networks, phases, data, config, meta or {}, averages)

    # Under torchrun (see .distributed) every rank trains; rank 0 alone writes.
    rank, world = rank_and_world()
    if (out_dir / "latest.json").exists():
        state.restore(out_dir, best_metric)
        resumed_from = state.step
        _log.info("resuming %s from step %d", out_dir, state.step)
        if rank > 0:
            # The checkpoint holds rank 0's generators; the others need streams of their own.
            _seed_everything(int(np.random.SeedSequence([config.seed, rank, state.step]).generate_state(1)[0]))
    else:
        _seed_everything(config.seed + rank)
        resumed_from = None
    if rank == 0:
        # Lines written after the checkpoint we continue from would be written again.
        _truncate_log(log_path, state.step)

    batches = _endless(data)
    time_limit = config.minutes * 60.0 if config.minutes is not None else math.inf
    session_start = time.monotonic()
    elapsed_before = state.elapsed

    def elapsed() -> float:
        return elapsed_before + (time.monotonic() - session_start)

    step = state.step
    latest_path = out_dir / "latest.json" if resumed_from is not None else None
    best_path = out_dir / "best.json" if state.best is not None and (out_dir / "best.json").exists() else None
    last_logs: dict = {}
    stopped_by = _agree(_stop_reason(step, elapsed(), config.steps, time_limit), world, device)
    bar = _progress_bar(progress is True and rank == 0, total=config.steps, initial=step)
    try:
        while stopped_by is None:
            step += 1
            batch = to_device(next(batches), device)

            for phase in phases:
                if step % phase.every != 0:
                    continue
                phase.optimizer.zero_grad(set_to_none=True)
                with autocast(device, config.amp):
                    loss, extra = _call_loss(phase, batch, step)
                # Backward outside autocast: gradients follow the dtypes chosen in the forward pass.
                # bf16 has float32's range, so there is no loss scaling to undo before clipping.
                loss.backward()
                grad_norm = None
                if phase.clip_grad is not None:
                    grad_norm = torch.nn.utils.clip_grad_norm_(clip_params[phase.name], phase.clip_grad)
                phase.optimizer.step()
                if phase.scheduler is not None:
                    phase.scheduler.step()
                if phase.after_step is not None:
                    with torch.no_grad():
                        phase.after_step(step)
                # Losses stay on the device until a log line needs them: .item() here would
                # synchronise the GPU every step.
                averages.add(phase.name, "loss", loss.detach())
                for key, value in extra.items():
                    averages.add(phase.name, key, value)
                if grad_norm is not None:
                    averages.add(phase.name, "grad_norm", grad_norm)

            bar.update(1)
            reason = _stop_reason(step, elapsed(), config.steps, time_limit)
            if reason is None and stop is not None and stop.is_set():
                reason = "cancelled"
            stopped_by = _agree(reason, world, device)
            final = stopped_by is not None
            state.step = step
            if rank > 0:
                continue

            regular_log = step % config.log_every == 0
            if regular_log or final:
                last_logs = {"step": step, "elapsed": elapsed(), **averages.means(phases)}
                _append_log(log_path, last_logs)
                bar.set_postfix({name: f"{entry['loss']:.4g}" for name, entry in last_logs.items()
                                 if isinstance(entry, dict) and entry.get("loss") is not None}, refresh=False)
                if callable(progress):
                    progress(step, config.steps, dict(last_logs))
                if regular_log:
                    # A final, partial interval is not reset: it goes into the checkpoint, so a
                    # resumed run averages over the same steps as an uninterrupted one.
                    averages.reset()

            if validate is not None and ((config.validate_every and step % config.validate_every == 0) or final):
                with _evaluation(networks):
                    metrics = _call_validate(validate, step)
                _append_log(log_path, {"step": step, "elapsed": elapsed(), "validation": metrics})
                if best_metric is not None and best_metric[0] not in metrics:
                    raise ValueError(f"best_metric {best_metric[0]!r} is not among validate's results {sorted(metrics)}")
                if best_metric is not None and _improves(metrics[best_metric[0]], state.best, best_metric[1]):
                    state.best = {"metric": best_metric[0], "mode": best_metric[1], "value": metrics[best_metric[0]], "step": step}
                    best_path = state.save(out_dir, "best", elapsed())

            if step % config.checkpoint_every == 0 or final:
                latest_path = state.save(out_dir, "latest", elapsed())

            if preview is not None and ((config.preview_every and step % config.preview_every == 0) or final):
                picture = out_dir / "previews" / f"step_{step:07d}.png"
                picture.parent.mkdir(exist_ok=True)
                with _evaluation(networks):
                    preview(step, picture)
    finally:
        bar.close()

    return TrainResult(
        step=step,
        elapsed=elapsed(),
        logs=last_logs,
        latest=latest_path,
        best=best_path,
        best_value=state.best["value"] if state.best is not None else None,
        stopped_by=stopped_by,
        resumed_from=resumed_from,
    )


def ema_update(average: nn.Module, source: nn.Module, step: int, *, decay: float = 0.999) -> None:
    """Move ``average``'s weights towards ``source``'s: an exponential moving average.

    The decay warms up as ``min(decay, (1 + step) / (10 + step))``, so the
    average forgets the random initial weights within tens of steps and a
    short training (a few hundred steps) still averages over its last
    stretch rather than over its start.

    Parameters
    ----------
    average, source : torch.nn.Module
        Networks of the same architecture (``average`` typically a
        ``copy.deepcopy`` of ``source`` made before training). Floating-point
        parameters and buffers are averaged; other buffers are copied.
    step : int
        Updates so far, from 1 (the loop's step for a phase run every step).
    decay : float, default 0.999
        The largest weight of the old average, in [0, 1).

    Examples
    --------
    >>> import copy, torch
    >>> net = torch.nn.Linear(1, 1, bias=False)
    >>> avg = copy.deepcopy(net)
    >>> with torch.no_grad():
    ...     _ = net.weight.fill_(1.0)
    ...     _ = avg.weight.fill_(0.0)
    >>> ema_update(avg, net, step=1)  # decay 2/11: mostly the new weights
    >>> round(avg.weight.item(), 4)
    0.8182
    """
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"decay must be in [0, 1), got {decay!r}")
    _check_count(step, "step", minimum=1)
    d = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        pairs = [*zip(average.parameters(), source.parameters()), *zip(average.buffers(), source.buffers())]
        for mine, theirs in pairs:
            if mine.is_floating_point():
                mine.lerp_(theirs.detach(), 1.0 - d)
            else:
                mine.copy_(theirs)


def load_networks(directory, name: str, networks: Mapping[str, nn.Module], *, device="cpu", max_bytes: int | None = None) -> dict:
    """Load the weights of a training checkpoint into already built networks.

    Only the networks asked for are loaded (an inference job may want G
    alone); each must be in the checkpoint and match it exactly: no missing or
    unexpected state-dict keys, the same shapes.

    Parameters
    ----------
    directory : str or os.PathLike
        Run folder holding the checkpoint.
    name : str
        Checkpoint name, e.g. ``"latest"`` or ``"best"``.
    networks : mapping of str to torch.nn.Module
        Modules built with the same configuration as in training.
    device : str or torch.device, default "cpu"
        The modules are moved there after loading.
    max_bytes : int, optional
        See :func:`~gan_zoo.training.load_checkpoint`.

    Returns
    -------
    dict
        The checkpoint's metadata: ``step``, ``config``, ``user_meta``, ...

    Raises
    ------
    ValueError
        If the checkpoint is invalid, is not a training checkpoint, lacks a
        network, or a network's keys or shapes differ.

    Examples
    --------
    >>> import tempfile, torch
    >>> net = torch.nn.Linear(3, 1)
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
    >>> phase = Phase("fit", opt, lambda x, step: (net(x).pow(2).mean(), {}))
    >>> run = tempfile.mkdtemp()
    >>> _ = run_training(networks={"net": net}, phases=[phase], data=[torch.randn(4, 3)], out_dir=run,
    ...                  config=LoopConfig(steps=3, device="cpu"), meta={"width": 3}, progress=False)
    >>> fresh = torch.nn.Linear(3, 1)
    >>> load_networks(run, "latest", {"net": fresh})["user_meta"]
    {'width': 3}
    >>> torch.equal(fresh.weight, net.weight)
    True
    """
    if not isinstance(networks, Mapping) or not all(isinstance(n, nn.Module) for n in networks.values()):
        raise TypeError("networks must be a mapping of names to torch.nn.Module")
    device = resolve_device(device)
    tensors, meta = load_checkpoint(directory, name, device="cpu", max_bytes=max_bytes)
    path = Path(directory) / f"{name}.json"
    saved = meta.get("networks")
    if not isinstance(saved, dict):
        raise ValueError(f"{path} is not a training checkpoint (its metadata has no 'networks')")
    missing = sorted(set(networks) - set(saved))
    if missing:
        raise ValueError(f"{path} has no network(s) {missing}; it holds {sorted(saved)}")
    for net_name, network in networks.items():
        weights = _decode(saved[net_name], tensors, path)
        _load_module(network, weights, net_name, path)
        network.to(device)
    return meta


# --------------------------------------------------------------------------- checkpointed state


class _TrainingState:
    """Everything a checkpoint holds, and how to write and restore it."""

    def __init__(self, networks, phases, data, config, user_meta, averages):
        self.networks = networks
        self.data = data
        self.config = config
        self.user_meta = user_meta
        self.averages = averages
        self.step = 0
        self.elapsed = 0.0
        self.best: dict | None = None
        # An optimizer or scheduler shared by several phases is saved once, under its first phase.
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        for phase in phases:
            if not any(phase.optimizer is o for o in self.optimizers.values()):
                self.optimizers[phase.name] = phase.optimizer
            if phase.scheduler is not None and not any(phase.scheduler is s for s in self.schedulers.values()):
                self.schedulers[phase.name] = phase.scheduler

    def save(self, out_dir: Path, name: str, elapsed: float) -> Path:
        import gan_zoo

        tensors: dict[str, torch.Tensor] = {}

        def split(prefix, value):
            parts, structure = state_to_tensors(prefix, value)
            tensors.update(parts)
            return structure

        rng_tensors, rng_info = rng_state_to_tensors()
        tensors.update(rng_tensors)
        meta = {
            "step": self.step,
            "elapsed_seconds": elapsed,
            "config": dataclasses.asdict(self.config),
            "user_meta": self.user_meta,
            "versions": {"gan_zoo": gan_zoo.__version__, "torch": torch.__version__},
            "networks": {n: split(f"networks.{n}", m.state_dict()) for n, m in self.networks.items()},
            "optimizers": {n: split(f"optimizers.{n}", o.state_dict()) for n, o in self.optimizers.items()},
            "schedulers": {n: split(f"schedulers.{n}", s.state_dict()) for n, s in self.schedulers.items()},
            "rng": rng_info,
            "data": split("data", self.data.state_dict()) if _is_stateful(self.data) else None,
            "best": self.best,
            "log_accumulator": split("log_accumulator", self.averages.state()),
        }
        return save_checkpoint(out_dir, name, tensors=tensors, meta=meta)

    def restore(self, out_dir: Path, best_metric) -> None:
        path = out_dir / "latest.json"
        tensors, meta = load_checkpoint(out_dir, "latest", device="cpu")
        missing = [key for key in _STATE_KEYS if key not in meta]
        if missing:
            raise ValueError(f"{path} is not a training checkpoint (its metadata lacks {missing})")
        _check_same_names(meta["networks"], self.networks, "networks", path)
        _check_same_names(meta["optimizers"], self.optimizers, "optimizers (by phase)", path)
        _check_same_names(meta["schedulers"], self.schedulers, "schedulers (by phase)", path)

        # Check every network before loading any, so a mismatch leaves the modules untouched.
        weights = {n: _decode(meta["networks"][n], tensors, path) for n in self.networks}
        for net_name, network in self.networks.items():
            _check_module_state(network, weights[net_name], net_name, path)
        for net_name, network in self.networks.items():
            network.load_state_dict(weights[net_name])
        for phase_name, optimizer in self.optimizers.items():
            try:
                optimizer.load_state_dict(_decode(meta["optimizers"][phase_name], tensors, path))
            except (ValueError, KeyError) as exc:
                raise ValueError(f"{path}: the optimizer of phase {phase_name!r} does not match the checkpoint: {exc}") from None
        for phase_name, scheduler in self.schedulers.items():
            scheduler.load_state_dict(_decode(meta["schedulers"][phase_name], tensors, path))
        rng_state_from_tensors(tensors, meta["rng"])

        if meta["data"] is not None and _is_stateful(self.data):
            self.data.load_state_dict(_decode(meta["data"], tensors, path))
        elif meta["data"] is not None or _is_stateful(self.data):
            warnings.warn(
                f"{path}: the data iterator's state was saved but `data` cannot load it, or the reverse; "
                "data are drawn from the start of `data`, so the resumed run differs from an uninterrupted one",
                RuntimeWarning,
                stacklevel=3,
            )
        self.averages.load(_decode(meta["log_accumulator"], tensors, path))

        step, elapsed = meta["step"], meta["elapsed_seconds"]
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"{path}: 'step' must be a non-negative integer, got {step!r}")
        if isinstance(elapsed, bool) or not isinstance(elapsed, (int, float)) or elapsed < 0:
            raise ValueError(f"{path}: 'elapsed_seconds' must be a non-negative number, got {elapsed!r}")
        self.step, self.elapsed = step, float(elapsed)
        best = meta["best"]
        if best_metric is not None and isinstance(best, dict) and (best.get("metric"), best.get("mode")) == tuple(best_metric):
            self.best = best
        else:
            # Another metric (or none): the saved value is not comparable with what comes next.
            self.best = None


def _decode(structure, tensors, path: Path):
    try:
        return state_from_tensors(structure, tensors)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _check_same_names(saved, current: Mapping, what: str, path: Path) -> None:
    if not isinstance(saved, dict):
        raise ValueError(f"{path}: '{what}' must be an object")
    if set(saved) != set(current):
        only_saved = sorted(set(saved) - set(current))
        only_current = sorted(set(current) - set(saved))
        raise ValueError(
            f"{path} was written for other {what}: it holds {sorted(saved)}, this run has {sorted(current)} "
            f"(only in the checkpoint: {only_saved}; only in this run: {only_current})"
        )


def _check_module_state(module: nn.Module, state, net_name: str, path: Path) -> None:
    """Raise a ValueError naming the first difference between ``state`` and the module's own state dict."""
    if not isinstance(state, dict):
        raise ValueError(f"{path}: network {net_name!r} is not stored as a state dict")
    own = module.state_dict()
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    if missing or unexpected:
        raise ValueError(
            f"{path}: network {net_name!r} does not match the checkpoint "
            f"(missing keys: {missing[:5]}{'...' if len(missing) > 5 else ''}; "
            f"unexpected keys: {unexpected[:5]}{'...' if len(unexpected) > 5 else ''})"
        )
    for key, value in own.items():
        saved = state[key]
        if isinstance(value, torch.Tensor):
            if not isinstance(saved, torch.Tensor) or saved.shape != value.shape:
                shape = tuple(saved.shape) if isinstance(saved, torch.Tensor) else type(saved).__name__
                raise ValueError(
                    f"{path}: network {net_name!r}, {key!r} has shape {shape} in the checkpoint "
                    f"but {tuple(value.shape)} in the module"
                )


def _load_module(module: nn.Module, state, net_name: str, path: Path) -> None:
    _check_module_state(module, state, net_name, path)
    module.load_state_dict(state, strict=True)


# --------------------------------------------------------------------------- helpers of the loop


class _Averages:
    """Per-phase sums and counts of logged values over the current log interval.

    Tensor values are summed as tensors on their device; they become Python
    floats only when a line is written or a checkpoint taken.
    """

    def __init__(self):
        self._sums: dict[str, dict[str, list]] = {}

    def add(self, phase: str, key: str, value) -> None:
        if isinstance(value, torch.Tensor):
            value = value.detach().float().reshape(())
        entry = self._sums.setdefault(phase, {}).setdefault(key, [0.0, 0])
        entry[0] = entry[0] + value
        entry[1] += 1

    def means(self, phases: Sequence[Phase]) -> dict[str, dict]:
        result = {}
        for phase in phases:
            if phase.name not in self._sums:
                continue
            entry = {key: _json_float(float(total) / count) for key, (total, count) in self._sums[phase.name].items()}
            lrs = [_json_float(float(group["lr"])) for group in phase.optimizer.param_groups]
            entry["lr"] = lrs[0] if len(lrs) == 1 else lrs
            result[phase.name] = entry
        return result

    def reset(self) -> None:
        self._sums = {}

    def state(self) -> dict:
        return {phase: {key: [float(total), count] for key, (total, count) in keys.items()} for phase, keys in self._sums.items()}

    def load(self, state) -> None:
        try:
            self._sums = {
                str(phase): {str(key): [float(total), int(count)] for key, (total, count) in keys.items()}
                for phase, keys in state.items()
            }
        except (AttributeError, TypeError, ValueError):
            raise ValueError("the checkpoint's log accumulator is malformed") from None


def _call_loss(phase: Phase, batch, step: int):
    result = phase.loss(batch, step)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError(f"phase {phase.name!r}: loss must return (scalar tensor, dict of logs), got {type(result).__name__}")
    loss, extra = result
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"phase {phase.name!r}: the loss must be a scalar tensor, got {shape}")
    if not loss.requires_grad:
        raise ValueError(f"phase {phase.name!r}: the loss does not depend on any trainable parameter")
    if not isinstance(extra, Mapping):
        raise TypeError(f"phase {phase.name!r}: the logs returned with the loss must be a dict, got {type(extra).__name__}")
    for key, value in extra.items():
        if not isinstance(key, str) or key in _RESERVED_LOG_KEYS:
            raise ValueError(f"phase {phase.name!r}: log key {key!r} is not a string or is reserved ({sorted(_RESERVED_LOG_KEYS)})")
        scalar_tensor = isinstance(value, torch.Tensor) and value.numel() == 1
        if not (scalar_tensor or isinstance(value, numbers.Real)):
            raise TypeError(f"phase {phase.name!r}: log {key!r} must be a number or a scalar tensor, got {type(value).__name__}")
    return loss, extra


def _call_validate(validate, step: int) -> dict:
    metrics = validate(step)
    if not isinstance(metrics, Mapping):
        raise TypeError(f"validate must return a dict of metric names to numbers, got {type(metrics).__name__}")
    result = {}
    for key, value in metrics.items():
        if not isinstance(key, str):
            raise TypeError(f"validate returned the key {key!r}; metric names must be strings")
        try:
            result[key] = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"validate returned {key!r} = {value!r}, which is not a number") from None
    return result


def _improves(value: float, best: dict | None, mode: str) -> bool:
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best["value"] if mode == "max" else value < best["value"]


@contextlib.contextmanager
def _evaluation(networks: Mapping[str, nn.Module]):
    """Eval mode, no gradients, and random generators untouched for the training that follows."""
    modes = [(module, module.training) for network in networks.values() for module in network.modules()]
    rng_tensors, rng_info = rng_state_to_tensors()
    try:
        for network in networks.values():
            network.eval()
        with torch.no_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training
        rng_state_from_tensors(rng_tensors, rng_info)


_STOP_REASONS = (None, "steps", "minutes", "cancelled")


def _agree(stopped_by: str | None, world: int, device: torch.device) -> str | None:
    """Rank 0's stop decision on every rank (clocks differ, and a rank that stops alone would hang the others)."""
    if world == 1:
        return stopped_by
    import torch.distributed as dist

    code = torch.tensor([_STOP_REASONS.index(stopped_by)], device=device)
    dist.broadcast(code, src=0)
    return _STOP_REASONS[int(code.item())]


def _stop_reason(step: int, elapsed: float, steps: int | None, time_limit: float) -> str | None:
    if steps is not None and step >= steps:
        return "steps"
    if elapsed >= time_limit:
        return "minutes"
    return None


def _endless(data: Iterable):
    """Yield batches of ``data`` forever, iterating it again each time it is exhausted."""
    served = 0
    while True:
        this_pass = 0
        for batch in data:
            this_pass += 1
            yield batch
        if this_pass == 0:
            if served == 0:
                raise ValueError("data yielded no batches")
            raise ValueError(
                f"data ran out after {served} batches and yields nothing when iterated again; pass something "
                "that can be iterated repeatedly (a list, a DataLoader) or an endless iterator"
            )
        served += this_pass


def _is_stateful(data) -> bool:
    return callable(getattr(data, "state_dict", None)) and callable(getattr(data, "load_state_dict", None))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # every CUDA device too


def _json_float(value: float) -> float | None:
    """Non-finite numbers are written as null: NaN and Infinity are not JSON."""
    return value if math.isfinite(value) else None


def _append_log(path: Path, record: dict) -> None:
    if "validation" in record:
        record = {**record, "validation": {k: _json_float(v) for k, v in record["validation"].items()}}
    line = json.dumps(record, allow_nan=False)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def _truncate_log(path: Path, last_step: int) -> None:
    """Keep the log lines up to ``last_step`` (and drop a line cut short by a crash)."""
    if not path.exists():
        return
    kept = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= last_step:
                kept.append(line if line.endswith("\n") else line + "\n")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(kept), encoding="utf-8")
    tmp.replace(path)


def _progress_bar(enabled: bool, *, total: int | None, initial: int):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True, leave=True)


def _check_count(value, name: str, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _check_arguments(networks, phases, data, config, meta, validate, best_metric, preview) -> None:
    if not isinstance(networks, Mapping) or not networks:
        raise TypeError("networks must be a non-empty dict of names to torch.nn.Module")
    for name, network in networks.items():
        if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
            raise ValueError(f"networks: names must be letters, digits, '_' and '-', got {name!r}")
        if not isinstance(network, nn.Module):
            raise TypeError(f"networks[{name!r}] must be a torch.nn.Module, got {type(network).__name__}")
    if isinstance(phases, (str, bytes)) or not isinstance(phases, Sequence) or not phases:
        raise TypeError("phases must be a non-empty sequence of Phase")
    names = []
    for phase in phases:
        if not isinstance(phase, Phase):
            raise TypeError(f"phases must hold Phase objects, got {type(phase).__name__}")
        names.append(phase.name)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"phases: names must be unique, repeated: {duplicates}")
    owned = {id(p) for network in networks.values() for p in network.parameters()}
    for phase in phases:
        for group in phase.optimizer.param_groups:
            if any(id(p) not in owned for p in group["params"]):
                raise ValueError(
                    f"phase {phase.name!r}: its optimizer updates a parameter that belongs to none of `networks`; "
                    "it would not be saved in checkpoints"
                )
    if not isinstance(data, Iterable):
        raise TypeError(f"data must be iterable, got {type(data).__name__}")
    if not isinstance(config, LoopConfig):
        raise TypeError(f"config must be a LoopConfig, got {type(config).__name__}")
    if meta is not None:
        if not isinstance(meta, dict):
            raise TypeError(f"meta must be a dict, got {type(meta).__name__}")
        _check_json_value(meta, "meta")
    if validate is not None and not callable(validate):
        raise TypeError("validate must be callable")
    if preview is not None and not callable(preview):
        raise TypeError("preview must be callable")
    if best_metric is not None:
        if validate is None:
            raise ValueError("best_metric needs validate: the metric comes from validate's result")
        if (
            not isinstance(best_metric, (tuple, list))
            or len(best_metric) != 2
            or not isinstance(best_metric[0], str)
            or best_metric[1] not in ("max", "min")
        ):
            raise ValueError(f"best_metric must be (metric name, 'max' or 'min'), got {best_metric!r}")
