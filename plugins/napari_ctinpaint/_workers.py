"""Background jobs of the widget: ctinpaint calls in a napari ``thread_worker``.

Each worker is a generator: it yields typed progress updates (handled in the
GUI thread by the widget) and returns a typed result. The library call itself
runs in a plain thread next to the worker, because its progress arrives through
a callback and a callback cannot ``yield``; a queue carries the updates across.
Cancelling sets a :class:`threading.Event`: training checks it after every
step and still saves its model; inpainting stops before its next slab.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path

from napari.qt.threading import thread_worker


class Cancelled(Exception):
    """Raised from the progress callback to stop ``inpaint_volume`` before its next slab."""


@dataclass(frozen=True)
class InpaintCancelled:
    """An inpainting run the user cancelled (a result, not an exception: workers re-raise returned exceptions)."""

    slabs_done: int


@dataclass(frozen=True)
class TrainProgress:
    step: int
    total: int | None
    losses: dict = field(default_factory=dict)  # phase name -> loss, e.g. {"D": 1.38, "G": 0.71}


@dataclass(frozen=True)
class TrainDone:
    model_dir: Path
    step: int
    stopped_by: str


@dataclass(frozen=True)
class InpaintProgress:
    done: int
    total: int


@dataclass(frozen=True)
class InpaintDone:
    result: object  # ctinpaint.inpaint.InpaintResult
    axis: int


@dataclass(frozen=True)
class Failed:
    """A job ended with an error from ctinpaint (bad input, bad model file, ...)."""

    task: str  # "training" or "inpainting"
    message: str


#: What the library raises for bad input, files or settings; anything else is a bug and
#: goes to napari's own error report with its traceback.
_EXPECTED = (ValueError, TypeError, OSError)


@dataclass(frozen=True)
class TrainRequest:
    volume: object
    mask: object
    out_dir: Path
    preset: str | None = None  # None: the library's default preset, as the widget and the CLI use
    minutes: float | None = 5.0
    steps: int | None = None
    device: str = "auto"
    seed: int = 0
    model_overrides: dict = field(default_factory=dict)  # e.g. {"width": 4}
    train_overrides: dict = field(default_factory=dict)  # other TrainConfig fields


@dataclass(frozen=True)
class InpaintRequest:
    volume: object
    mask: object
    model_dir: Path
    n_samples: int = 5000
    axis: int = 0
    device: str = "auto"
    seed: int = 0
    out: Path | None = None


_END = object()


def _stream(job: Callable[[Callable], object]) -> Generator:
    """Run ``job(report)`` in a thread; yield whatever it reports; return its result or raise its error."""
    updates: queue.Queue = queue.Queue()
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = job(updates.put)
        except BaseException as exc:  # noqa: BLE001 - handed to the worker thread, which reports it
            outcome["error"] = exc
        finally:
            updates.put(_END)

    thread = threading.Thread(target=target, name="ctinpaint-job", daemon=True)
    thread.start()
    while (update := updates.get()) is not _END:
        yield update
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _losses(line: dict) -> dict:
    return {name: entry["loss"] for name, entry in line.items() if isinstance(entry, dict) and entry.get("loss") is not None}


def train(request: TrainRequest, stop: threading.Event) -> Generator[TrainProgress, None, TrainDone | Failed]:
    """Train a model with :func:`ctinpaint.train_model`; the model is written to ``request.out_dir``."""
    from ctinpaint import TrainConfig, config_for, train_model
    from ctinpaint.models import DEFAULT_PRESET

    def job(report):
        config = TrainConfig(steps=request.steps, minutes=request.minutes, device=request.device, seed=request.seed,
                             **request.train_overrides)  # fmt: skip
        result = train_model(
            request.volume, request.out_dir, mask=request.mask,
            model_config=config_for(request.preset or DEFAULT_PRESET, **request.model_overrides), config=config,
            progress=lambda step, total, line: report(TrainProgress(step, total, _losses(line))), stop=stop,
        )  # fmt: skip
        return TrainDone(model_dir=Path(request.out_dir), step=result.step, stopped_by=result.stopped_by)

    try:
        return (yield from _stream(job))
    except _EXPECTED as exc:
        return Failed("training", str(exc))


def inpaint(request: InpaintRequest, stop: threading.Event) -> Generator[InpaintProgress, None, InpaintDone | InpaintCancelled | Failed]:
    """Fill the artifacts with :func:`ctinpaint.inpaint_volume`."""
    from ctinpaint import inpaint_volume, load_model

    done_so_far = [0]

    def job(report):
        def progress(done, total):
            if stop.is_set():
                raise Cancelled("inpainting cancelled")
            done_so_far[0] = done
            report(InpaintProgress(done, total))

        model = load_model(request.model_dir, device=request.device)
        # In memory, one slice per task: finer progress and a prompt cancel (results do not depend on it).
        slab = 1 if request.out is None else None
        result = inpaint_volume(
            request.volume, request.mask, model, n_samples=request.n_samples, axis=request.axis, seed=request.seed,
            out=request.out, slab=slab, progress=progress,
        )  # fmt: skip
        return InpaintDone(result=result, axis=request.axis)

    try:
        return (yield from _stream(job))
    except Cancelled:
        return InpaintCancelled(slabs_done=done_so_far[0])
    except _EXPECTED as exc:
        return Failed("inpainting", str(exc))


train_worker = thread_worker(train, start_thread=False)
inpaint_worker = thread_worker(inpaint, start_thread=False)
