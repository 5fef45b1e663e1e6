"""The zoo's user-facing functions: train a model on data, save it, load it back.

``train`` hands a model's phases to the one training loop
(:func:`gan_zoo.training.run_training`) and writes the trained model as
``model.json`` (name, config, format version) + ``model.<hash>.safetensors``
(the networks' weights) into the run folder; ``load`` rebuilds the model from
those two files without executing anything from them.
"""

from __future__ import annotations

import numbers
from pathlib import Path

import torch

from .models import MODELS, ZooModel, check_images

__all__ = ["train", "load", "evaluate", "MODEL_FORMAT_VERSION"]

#: Version of the model-file layout written by :func:`train`; newer ones are refused by :func:`load`.
MODEL_FORMAT_VERSION = 1
_MODEL_NAME = "model"


def train(
    model: ZooModel,
    data,
    *,
    out,
    steps: int | None = None,
    minutes: float | None = None,
    batch_size: int = 64,
    seed: int = 0,
    device: str = "auto",
    checkpoint_every: int = 1000,
    log_every: int = 50,
    preview_every: int = 0,
    progress: bool = True,
    meta: dict | None = None,
):
    """Train ``model`` on ``data`` with the shared loop; resume if ``out`` holds an interrupted run.

    Parameters
    ----------
    model : ZooModel
        From :func:`gan_zoo.build`; trained in place (and moved to ``device``).
    data
        What the model learns from (see :mod:`gan_zoo.data`):

        - gan, dcgan: :class:`~gan_zoo.data.ImageData` (labels ignored);
        - cgan: ImageData with int64 labels in [0, n_classes);
        - cyclegan: a pair (ImageData of domain A, ImageData of domain B);
        - stargan: :class:`~gan_zoo.data.DomainData`, or ImageData labelled
          by domain (int64) or by attributes (float (N, c_dim)).
    out : str or os.PathLike
        Run folder: ``log.jsonl``, checkpoints ``latest.*``, ``previews/``,
        and the trained model ``model.json`` + weights. An interrupted run
        there is resumed exactly (same arguments, same result).
    steps : int, optional
        Total steps (one D and one G update each; StarGAN's G every n_critic).
    minutes : float, optional
        Total training time; at least one of ``steps`` and ``minutes``.
    batch_size : int, default 64
    seed : int, default 0
        Seeds the loop's random generators and the order of the data.
    device : str, default "auto"
    checkpoint_every, log_every : int
        Intervals in steps.
    preview_every : int, default 0
        Write a sample grid ``out/previews/step_*.png`` every this many
        steps; 0: only at the end.
    progress : bool, default True
    meta : dict, optional
        Extra JSON data saved with the model (``model.meta["extra"]`` after
        :func:`load`); the command line records the ``--data`` spec there.

    Returns
    -------
    gan_zoo.training.TrainResult

    Raises
    ------
    TypeError, ValueError
        Data that do not fit the model (image size, channels, labels; the
        message names ``data``), an ``out`` folder holding another model's
        run, invalid loop settings.

    Examples
    --------
    >>> import tempfile, torch, gan_zoo
    >>> from gan_zoo.data import ImageData
    >>> data = ImageData(torch.rand(32, 1, 28, 28) * 2 - 1)
    >>> model = gan_zoo.build("gan", hidden=(16, 32))
    >>> out = tempfile.mkdtemp()
    >>> gan_zoo.train(model, data, steps=2, batch_size=8, out=out, progress=False).step
    2
    >>> gan_zoo.load(out).config.hidden
    (16, 32)
    """
    from .training import LoopConfig, run_training
    from .training.checkpoint import _check_json_value, load_checkpoint

    if meta is not None:
        if not isinstance(meta, dict):
            raise TypeError(f"meta must be a dict, got {type(meta).__name__}")
        _check_json_value(meta, "meta")
    if not isinstance(model, ZooModel):
        raise TypeError(f"model must be a gan_zoo model (from gan_zoo.build), got {type(model).__name__}")
    _check_int(batch_size, "batch_size", 1)
    _check_int(seed, "seed", 0)
    out = Path(out)
    stream, examples, source = _training_stream(model, data, batch_size=batch_size, seed=seed)
    description = {"name": model.name, "config": model.config.to_dict(), "format_version": MODEL_FORMAT_VERSION}
    if (out / "latest.json").exists():
        saved = load_checkpoint(out, "latest")[1].get("user_meta", {}).get("model")
        if saved != description:
            raise ValueError(
                f"out: {out} holds a training run of another model ({_describe(saved)}); "
                f"this is {_describe(description)}. Use a new folder, or build the same model to resume"
            )
    config = LoopConfig(
        steps=steps, minutes=minutes, checkpoint_every=checkpoint_every, log_every=log_every,
        preview_every=preview_every, seed=seed, device=device,
    )  # fmt: skip

    def preview(step: int, path: Path) -> None:
        from .grid import save_grid

        images, nrow = model.preview_images(examples)
        save_grid(images, path, nrow=nrow, scale=2 if model.config.image_size <= 32 else 1)

    result = run_training(
        networks={**model.networks(), **model.training_state()},
        phases=model.training_phases(steps=steps),
        data=stream,
        out_dir=out,
        config=config,
        meta={"model": description, "data": source, "batch_size": batch_size, "extra": meta or {}},
        preview=preview,
        progress=progress,
    )
    _save_model(model, out, {"model": description, "data": source, "step": result.step, "extra": meta or {}})
    return result


def load(directory, *, device: str = "cpu") -> ZooModel:
    """Load a model written by :func:`train` (``model.json`` + safetensors; never pickle).

    Parameters
    ----------
    directory : str or os.PathLike
        The ``out`` folder of a training run.
    device : str, default "cpu"

    Returns
    -------
    ZooModel
        In eval mode on ``device``; ``model.meta`` holds the saved metadata
        (data source, step).

    Raises
    ------
    ValueError
        Naming ``directory``: no model there, corrupt or foreign files, a
        newer format, an unknown model name, or weights that do not match the
        stored config (a mismatched checkpoint).
    """
    from .training import resolve_device
    from .training.checkpoint import load_checkpoint

    directory = Path(directory)
    try:
        tensors, meta = load_checkpoint(directory, _MODEL_NAME)
    except (ValueError, OSError) as exc:
        raise ValueError(f"directory: {directory} holds no readable gan_zoo model: {exc}") from exc
    description = meta.get("model") if isinstance(meta, dict) else None
    if not isinstance(description, dict) or not {"name", "config", "format_version"} <= set(description):
        raise ValueError(f"directory: {directory}/model.json is not a gan_zoo model (no model description)")
    version = description["format_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"directory: {directory} has an invalid model format version {version!r}")
    if version > MODEL_FORMAT_VERSION:
        raise ValueError(f"directory: {directory} was written by a newer gan_zoo (model format {version}); upgrade gan_zoo")
    name = description["name"]
    if name not in MODELS:
        raise ValueError(f"directory: {directory} holds an unknown model {name!r}; known: {list(MODELS)}")
    cls = MODELS[name]
    try:
        model = cls(cls.config_class.from_dict(description["config"]))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"directory: the config stored in {directory} is invalid: {exc}") from exc
    networks = model.networks()
    stored = {}
    for key, tensor in tensors.items():
        net, _, rest = key.partition(".")
        stored.setdefault(net, {})[rest] = tensor
    if set(stored) != set(networks):
        raise ValueError(f"directory: {directory} holds networks {sorted(stored)} but a {name} has {sorted(networks)}")
    for net, module in networks.items():
        try:
            module.load_state_dict(stored[net], strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            raise ValueError(
                f"directory: the weights of network {net!r} in {directory} do not match the stored config "
                f"({'; '.join(line.strip() for line in first[:3])})"
            ) from None
    model.meta = {k: v for k, v in meta.items() if k != "model"}
    return model.to(resolve_device(device)).eval()


def evaluate(model: ZooModel, data, *, n: int = 1000, seed: int = 0, domains: tuple[str, str] | None = None) -> dict:
    """Measure a digit model with the shipped classifiers (:mod:`gan_zoo.metrics`); nothing is downloaded.

    ========== ==================================================================
    model      numbers
    ========== ==================================================================
    gan, dcgan ``fd`` (Fréchet distance in the classifier's features to ``data``),
               ``covered`` (classes with >= 1 % of the samples), ``shares``, ``entropy``
    cgan       the same, plus ``conditional_accuracy`` (balanced labels)
    cyclegan   ``identity_kept`` (digit read the same after A -> B) and, with
               ``domains``, ``domain_reached`` (the B style read on the output)
    stargan    ``identity_kept`` and ``domain_reached`` for translations of each
               image into a random other domain
    ========== ==================================================================

    Parameters
    ----------
    model : ZooModel
        Built for 28×28 grayscale digits (the classifiers' input).
    data
        Held-out real data: ImageData of digits (gan, dcgan, cgan; the FD
        reference), a pair (A, B) of ImageData (cyclegan; A is translated),
        DomainData (stargan).
    n : int, default 1000
        Samples generated (or images translated, at most the data's size).
    seed : int, default 0
    domains : (str, str), optional
        CycleGAN: style names of A and B among :data:`gan_zoo.data.DIGIT_DOMAINS`.

    Returns
    -------
    dict of str to float, int or list

    Raises
    ------
    ValueError
        A model not made for 28×28 grayscale digits, or data that do not fit.
    """
    from . import metrics
    from .data import DomainData, ImageData
    from .models.base import _check_n

    n = _check_n(n)
    _check_int(seed, "seed", 0)
    if model.image_shape != (1, 28, 28):
        raise ValueError(
            f"model: the offline metrics read 28x28 grayscale digits; this {model.name} makes "
            f"{'x'.join(map(str, model.image_shape))} images"
        )
    result: dict = {"model": model.name}
    if model.kind == "generative":
        if not isinstance(data, ImageData):
            raise TypeError(f"data: the reference digits for {model.name} must be an ImageData, got {_kind(data)}")
        check_images(data.images[:1], model.image_shape, name="data")
        labels = None
        if model.n_classes:
            labels = torch.arange(n) % model.n_classes
        samples = model.sample(n, labels=labels, seed=seed).cpu()
        result["fd"] = metrics.frechet_distance(samples, data.images[:n])
        coverage = metrics.mode_coverage(samples)
        result.update(covered=coverage["covered"], entropy=coverage["entropy"], shares=coverage["shares"])
        if labels is not None:
            result["conditional_accuracy"] = metrics.conditional_accuracy(samples, labels)
        return result
    if model.name == "cyclegan":
        if not (isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(d, ImageData) for d in data)):
            raise TypeError(f"data: cyclegan is evaluated on a pair (ImageData of A, ImageData of B), got {_kind(data)}")
        before = data[0].images[:n]
        after = model.translate(before, target="B").cpu()
        result["identity_kept"] = metrics.identity_kept(before, after)
        if domains is not None:
            result["domain_reached"] = metrics.domain_reached(after, domains[1])
        result["n"] = len(before)
        return result
    if not isinstance(data, DomainData):
        raise TypeError(f"data: stargan is evaluated on DomainData (digit styles), got {_kind(data)}")
    images, source = data.images[:n], data.domains[:n]
    generator = torch.Generator().manual_seed(seed)
    K = len(data.domain_names)
    # A random domain other than the image's own.
    targets = (source + torch.randint(1, K, source.shape, generator=generator)) % K
    after = model.translate(images, target=targets).cpu()
    result["identity_kept"] = metrics.identity_kept(images, after)
    result["domain_reached"] = metrics.domain_reached(after, [data.domain_names[int(t)] for t in targets])
    result["n"] = len(images)
    return result


# --------------------------------------------------------------------------- helpers


def _save_model(model: ZooModel, out: Path, meta: dict) -> Path:
    from .training import save_checkpoint

    tensors = {f"{net}.{key}": value for net, module in model.networks().items() for key, value in module.state_dict().items()}
    return save_checkpoint(out, _MODEL_NAME, tensors=tensors, meta=meta)


def _training_stream(model: ZooModel, data, *, batch_size: int, seed: int):
    """(resumable batch stream, example images for previews, description of the data) after checking ``data``."""
    from .data import DomainData, ImageData, ResumableBatches

    if model.name == "cyclegan":
        if not (isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(d, ImageData) for d in data)):
            raise TypeError(f"data: cyclegan trains on a pair (ImageData of domain A, ImageData of domain B), got {_kind(data)}")
        a, b = data
        check_images(a.images[:1], model.image_shape, name="data (domain A images)")
        check_images(b.images[:1], model.image_shape, name="data (domain B images)")
        streams = (a.batches(batch_size, seed=seed), b.batches(batch_size, seed=seed + 1))

        def start(first: int):
            for stream in streams:
                stream.load_state_dict({"batches": first})
            for batch_a, batch_b in zip(*streams):
                yield _images_of(batch_a), _images_of(batch_b)

        return ResumableBatches(start), a.images[:8], f"A: {a.source}; B: {b.source}"

    if isinstance(data, DomainData):
        if model.name != "stargan":
            raise TypeError(f"data: {model.name} trains on ImageData; DomainData is StarGAN's (use .as_image_data())")
        data = data.as_image_data(labels="domains")
    if not isinstance(data, ImageData):
        raise TypeError(f"data: {model.name} trains on a gan_zoo.data.ImageData, got {_kind(data)}")
    check_images(data.images[:1], model.image_shape, name="data")
    labels = data.labels
    if model.name == "cgan" or (model.name == "stargan" and model.config.labels == "domain"):
        K = model.n_classes
        if labels is None or labels.ndim != 1:
            raise ValueError(f"data: {model.name} needs int64 class labels (N,) in [0, {K}), got {'none' if labels is None else tuple(labels.shape)}")
        if int(labels.min()) < 0 or int(labels.max()) >= K:
            raise ValueError(f"data: labels run from {int(labels.min())} to {int(labels.max())}, outside the model's {K} classes [0, {K - 1}]")
    elif model.name == "stargan":
        K = model.config.c_dim
        if labels is None or labels.ndim != 2 or labels.shape[1] != K:
            raise ValueError(f"data: stargan with labels='attributes' needs float (N, {K}) attribute rows, got {'none' if labels is None else tuple(labels.shape)}")
    stream = data.batches(batch_size, seed=seed)
    if labels is None:
        stream = ResumableBatches(lambda first, s=stream: _with_no_labels(s, first))
    return stream, data.images[:8], data.source


def _with_no_labels(stream, first: int):
    stream.load_state_dict({"batches": first})
    for images in stream:
        yield images, None


def _images_of(batch):
    return batch[0] if isinstance(batch, tuple) else batch


def _kind(data) -> str:
    if isinstance(data, (tuple, list)):
        return f"a {type(data).__name__} of {len(data)} ({', '.join(type(d).__name__ for d in data)})"
    return type(data).__name__


def _describe(description) -> str:
    if not isinstance(description, dict):
        return "unknown"
    return f"{description.get('name')} with config {description.get('config')}"


def _check_int(value, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")

