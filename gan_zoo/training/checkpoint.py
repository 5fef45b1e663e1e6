"""Checkpoints that are data, never code: safetensors for tensors, JSON for the rest.

A checkpoint called ``name`` in ``directory`` is two files::

    directory/
        name.json                          # format, version, weights file + sha256 + size, metadata
        name.<16 hex digits>.safetensors   # every tensor

Loading uses only :mod:`safetensors` and :mod:`json`; nothing is ever
unpickled, so opening a checkpoint from an untrusted source cannot run code.
Everything read is checked first: the JSON's keys and types, the weights
file's size (against ``max_bytes`` and the recorded size, before reading it),
the safetensors header (dtypes, shapes and byte ranges, before any tensor is
allocated) and the sha256 of the whole file.

Why the weights file has a unique name
--------------------------------------
Both files are written atomically (temporary file in the same directory,
``fsync``, ``os.replace``), weights first and JSON last, so the JSON is the
commit point. If the weights had the fixed name ``name.safetensors``, a crash
between replacing the weights and replacing the JSON would leave the old JSON
pointing at new weights: the hash check would catch it, but the previous
checkpoint would be lost. With a name derived from the content's sha256, new
weights never overwrite the ones the current JSON points at; a crash at any
moment leaves the previous checkpoint whole (at worst with an unreferenced
weights file beside it, removed by the next save). Once the new JSON is in
place, weights files of the same checkpoint name that it does not reference
are deleted.

Training state
--------------
:func:`state_to_tensors` / :func:`state_from_tensors` turn nested states
(module and optimizer ``state_dict()``, scheduler states, data iterator states)
into tensors under dotted keys plus a JSON-able structure, and back, keeping
int dictionary keys, tuples and non-finite floats. :func:`rng_state_to_tensors`
/ :func:`rng_state_from_tensors` do the same for the random number generators
(torch CPU, every initialised CUDA device, Python ``random``, NumPy's legacy
global state).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import numbers
import os
import random
import re
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .devices import resolve_device

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_FORMAT_VERSION",
    "save_checkpoint",
    "load_checkpoint",
    "state_to_tensors",
    "state_from_tensors",
    "rng_state_to_tensors",
    "rng_state_from_tensors",
]

#: Value of the ``format`` field of every checkpoint JSON.
CHECKPOINT_FORMAT = "gan_zoo-checkpoint"
#: Version written by this code; loading refuses anything newer.
CHECKPOINT_FORMAT_VERSION = 1

_JSON_KEYS = {"format", "format_version", "weights", "meta"}
_WEIGHTS_KEYS = {"file", "sha256", "bytes"}
_NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
_SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")

#: A checkpoint JSON holds metadata only; anything larger is not one of ours.
_MAX_JSON_BYTES = 64 << 20
#: safetensors itself refuses headers above 100 MB.
_MAX_HEADER_BYTES = 100_000_000
_READ_CHUNK = 16 << 20

#: Bytes per element of the safetensors dtypes this format accepts.
_ITEMSIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8, "C64": 8,
}  # fmt: skip

_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}

# The process umask can only be read by setting it; done once, at import.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


# --------------------------------------------------------------------------- save


def save_checkpoint(directory, name: str, *, tensors: Mapping[str, torch.Tensor], meta: Mapping) -> Path:
    """Write a checkpoint: ``tensors`` to safetensors, ``meta`` to JSON, both atomically.

    Parameters
    ----------
    directory : str or os.PathLike
        Folder of the checkpoint; created if missing.
    name : str
        Checkpoint name (letters, digits, ``_`` and ``-``; e.g. ``"latest"``).
    tensors : mapping of str to torch.Tensor
        Dense tensors of any dtype safetensors holds, on any device (copied to
        the CPU). Tensors sharing memory (tied weights) are stored separately.
    meta : mapping
        Plain JSON data: dicts with string keys, lists, strings, finite
        floats, ints, bools and None (tuples are stored as lists). Use
        :func:`state_to_tensors` for anything richer.

    Returns
    -------
    pathlib.Path
        Path of the checkpoint's JSON file, ``directory / f"{name}.json"``.

    Raises
    ------
    TypeError, ValueError
        If ``name``, ``tensors`` or ``meta`` are not as described; nothing is
        written then.

    Examples
    --------
    >>> import tempfile, torch
    >>> folder = tempfile.mkdtemp()
    >>> path = save_checkpoint(folder, "demo", tensors={"w": torch.ones(2)}, meta={"step": 3})
    >>> path.name
    'demo.json'
    >>> tensors, meta = load_checkpoint(folder, "demo")
    >>> tensors["w"].tolist(), meta["step"]
    ([1.0, 1.0], 3)
    """
    directory = Path(directory)
    _check_name(name)
    prepared = _prepare_tensors(tensors)
    if not isinstance(meta, Mapping):
        raise TypeError(f"meta must be a mapping, got {type(meta).__name__}")
    _check_json_value(meta, "meta")
    directory.mkdir(parents=True, exist_ok=True)

    import safetensors.torch

    weights = safetensors.torch.save(prepared)
    digest = hashlib.sha256(weights).hexdigest()
    weights_name = f"{name}.{digest[:16]}.safetensors"
    _atomic_write(directory / weights_name, weights)
    del weights

    document = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "weights": {"file": weights_name, "sha256": digest, "bytes": _file_size(directory / weights_name)},
        "meta": meta,
    }
    text = json.dumps(document, indent=1, allow_nan=False, ensure_ascii=False) + "\n"
    json_path = directory / f"{name}.json"
    _atomic_write(json_path, text.encode("utf-8"))

    # The new JSON is committed; weights of older versions of this checkpoint are now garbage,
    # and so are temporary files of this checkpoint that a killed writer left behind.
    stale = _weights_pattern(name)
    torn = _temporary_pattern(name)
    for entry in directory.iterdir():
        if entry.name != weights_name and (stale.fullmatch(entry.name) or torn.fullmatch(entry.name)):
            with contextlib.suppress(OSError):
                entry.unlink()
    return json_path


def _prepare_tensors(tensors) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU tensors, none sharing memory (safetensors refuses shared storage)."""
    if not isinstance(tensors, Mapping):
        raise TypeError(f"tensors must be a mapping of str to torch.Tensor, got {type(tensors).__name__}")
    prepared = {}
    seen_storages = set()
    for key, tensor in tensors.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"tensors: keys must be non-empty strings, got {key!r}")
        if key == "__metadata__":
            raise ValueError("tensors: the key '__metadata__' is reserved by the safetensors format")
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"tensors[{key!r}] must be a torch.Tensor, got {type(tensor).__name__}")
        if tensor.layout != torch.strided:
            raise TypeError(f"tensors[{key!r}] is a {tensor.layout} tensor; only dense tensors can be stored")
        tensor = tensor.detach().cpu().contiguous()
        if tensor.numel() > 0:
            storage = tensor.untyped_storage().data_ptr()
            if storage in seen_storages:
                tensor = tensor.clone()
            else:
                seen_storages.add(storage)
        prepared[key] = tensor
    return prepared


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either the old file or the complete new one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if os.name == "posix":
            # mkstemp creates the file private (0600); give it the mode an ordinary open() would.
            os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            # Data on disk before the rename, or a power cut could leave a complete-looking empty file.
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX only; Windows cannot open directories)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _check_name(name) -> None:
    if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
        raise ValueError(f"name must be letters, digits, '_' and '-' (not starting with '-'), got {name!r}")


def _weights_pattern(name: str) -> re.Pattern:
    return re.compile(re.escape(name) + r"\.[0-9a-f]{16}\.safetensors")


def _temporary_pattern(name: str) -> re.Pattern:
    """Names :func:`_atomic_write` gives the temporary files of checkpoint ``name``."""
    return re.compile(r"\." + re.escape(name) + r"\.(?:[0-9a-f]{16}\.safetensors|json)\.[A-Za-z0-9_]+\.tmp")


def _check_json_value(value, path: str) -> None:
    """Raise if ``value`` is not plain JSON that loads back as the same value."""
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path} is {value}; JSON has no non-finite numbers")
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_json_value(item, f"{path}[{index}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path} has the key {key!r}; JSON object keys must be strings")
            _check_json_value(item, f"{path}[{key!r}]")
        return
    raise TypeError(f"{path} is a {type(value).__name__}, which is not JSON data")


# --------------------------------------------------------------------------- load


def load_checkpoint(
    directory, name: str, *, device: str | torch.device = "cpu", max_bytes: int | None = None
) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a checkpoint written by :func:`save_checkpoint`, checking everything first.

    Parameters
    ----------
    directory : str or os.PathLike
        Folder of the checkpoint.
    name : str
        Checkpoint name.
    device : str or torch.device, default "cpu"
        Where the tensors go (see :func:`~gan_zoo.training.resolve_device`).
    max_bytes : int, optional
        Refuse a JSON or weights file larger than this, before reading it.

    Returns
    -------
    tensors : dict of str to torch.Tensor
    meta : dict
        The ``meta`` given to :func:`save_checkpoint`.

    Raises
    ------
    ValueError
        Naming the offending file: a file is missing; the JSON is not JSON or
        not a checkpoint (missing or unexpected keys, wrong types); it was
        written by a newer format version; a file exceeds ``max_bytes``; the
        weights file has the wrong size or sha256, or is not a valid
        safetensors file.

    Examples
    --------
    >>> import tempfile, torch
    >>> folder = tempfile.mkdtemp()
    >>> _ = save_checkpoint(folder, "demo", tensors={"w": torch.zeros(3, dtype=torch.int64)}, meta={})
    >>> tensors, meta = load_checkpoint(folder, "demo", max_bytes=1 << 20)
    >>> tensors["w"].dtype, meta
    (torch.int64, {})
    """
    directory = Path(directory)
    _check_name(name)
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Integral) or max_bytes < 0):
        raise ValueError(f"max_bytes must be a non-negative integer or None, got {max_bytes!r}")
    device = resolve_device(device)

    json_path = directory / f"{name}.json"
    document = _read_document(json_path, max_bytes)
    weights = document["weights"]
    weights_path = directory / weights["file"]
    size = _checked_size(weights_path, max_bytes, what="weights file")
    if size != weights["bytes"]:
        raise ValueError(f"{weights_path} is {size} bytes but {json_path} records {weights['bytes']}: the files do not belong together")

    # The file is read once into memory and everything below works on those bytes,
    # so the bytes that were hashed are exactly the bytes that are parsed.
    hasher = hashlib.sha256()
    buffer = bytearray(size)
    view = memoryview(buffer)
    with open(weights_path, "rb") as handle:
        head = _read_exact(handle, view[: min(8, size)], weights_path)
        header_len = int.from_bytes(bytes(head), "little") if size >= 8 else None
        if header_len is None or header_len > min(size - 8, _MAX_HEADER_BYTES):
            raise ValueError(f"{weights_path} is not a safetensors file (bad header length)")
        _read_exact(handle, view[8 : 8 + header_len], weights_path)
        header = _check_safetensors_header(bytes(view[8 : 8 + header_len]), size - 8 - header_len, weights_path)
        offset = 8 + header_len
        while offset < size:
            end = min(offset + _READ_CHUNK, size)
            _read_exact(handle, view[offset:end], weights_path)
            offset = end
    hasher.update(view)
    digest = hasher.hexdigest()
    if digest != weights["sha256"]:
        raise ValueError(f"{weights_path} has sha256 {digest} but {json_path} records {weights['sha256']}: the file is corrupt or was replaced")

    import safetensors.torch

    try:
        tensors = safetensors.torch.load(bytes(view))
    except Exception as exc:  # the Rust parser's own checks, beyond the header ones above
        raise ValueError(f"{weights_path} is not a valid safetensors file: {exc}") from exc
    del view, buffer
    if set(tensors) != set(header) - {"__metadata__"}:
        raise ValueError(f"{weights_path}: tensors do not match the header")
    if device.type != "cpu":
        tensors = {key: tensor.to(device) for key, tensor in tensors.items()}
    return tensors, document["meta"]


def _checked_size(path: Path, max_bytes: int | None, *, what: str) -> int:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ValueError(f"checkpoint {what} {path} is missing") from None
    if not path.is_file():
        raise ValueError(f"checkpoint {what} {path} is not a regular file")
    if max_bytes is not None and size > max_bytes:
        raise ValueError(f"{path} is {size} bytes, more than max_bytes={max_bytes}; not read")
    return size


def _read_exact(handle, target: memoryview, path: Path) -> memoryview:
    got = handle.readinto(target)
    if got != len(target):
        raise ValueError(f"{path} changed size while being read")
    return target


def _reject_constant(token):
    raise ValueError(f"non-standard JSON constant {token}")


def _read_document(json_path: Path, max_bytes: int | None) -> dict:
    size = _checked_size(json_path, max_bytes, what="JSON file")
    if size > _MAX_JSON_BYTES:
        raise ValueError(f"{json_path} is {size} bytes; a checkpoint JSON is never larger than {_MAX_JSON_BYTES}")
    with open(json_path, "rb") as handle:
        raw = handle.read(size + 1)
    try:
        document = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{json_path} is not a JSON file ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{json_path} is not a {CHECKPOINT_FORMAT} file (its 'format' field is missing or different)")
    version = document.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{json_path}: 'format_version' must be a positive integer, got {version!r}")
    if version > CHECKPOINT_FORMAT_VERSION:
        raise ValueError(
            f"{json_path} was written by a newer version of gan_zoo (format_version {version}; "
            f"this version reads up to {CHECKPOINT_FORMAT_VERSION}); upgrade gan_zoo to load it"
        )
    _check_keys(document, _JSON_KEYS, json_path, "the checkpoint")
    weights = document["weights"]
    if not isinstance(weights, dict):
        raise ValueError(f"{json_path}: 'weights' must be an object, got {type(weights).__name__}")
    _check_keys(weights, _WEIGHTS_KEYS, json_path, "'weights'")
    name = json_path.name[: -len(".json")]
    if not isinstance(weights["file"], str) or not _weights_pattern(name).fullmatch(weights["file"]):
        raise ValueError(f"{json_path}: 'weights.file' must be '{name}.<16 hex digits>.safetensors', got {weights['file']!r}")
    if not isinstance(weights["sha256"], str) or not _SHA256_PATTERN.fullmatch(weights["sha256"]):
        raise ValueError(f"{json_path}: 'weights.sha256' must be 64 lowercase hex digits, got {weights['sha256']!r}")
    if not weights["file"].startswith(f"{name}.{weights['sha256'][:16]}."):
        raise ValueError(f"{json_path}: 'weights.file' does not match 'weights.sha256'")
    size = weights["bytes"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"{json_path}: 'weights.bytes' must be a non-negative integer, got {size!r}")
    if not isinstance(document["meta"], dict):
        raise ValueError(f"{json_path}: 'meta' must be an object, got {type(document['meta']).__name__}")
    return document


def _check_keys(obj: dict, expected: set, path: Path, what: str) -> None:
    missing = sorted(expected - set(obj))
    unexpected = sorted(set(obj) - expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected}")
        raise ValueError(f"{path}: {what} has {' and '.join(parts)}")


def _check_safetensors_header(raw: bytes, data_len: int, path: Path) -> dict:
    """Validate a safetensors header before any tensor is allocated.

    Every entry needs a known dtype, a shape of non-negative ints and a byte
    range of exactly ``numel * itemsize`` bytes; together the ranges must tile
    the data section with no gap or overlap, so no shape in the header can make
    the loader allocate more than the file holds.
    """
    try:
        header = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"{path} is not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path} is not a safetensors file (its header is not an object)")
    spans = []
    for key, entry in header.items():
        if key == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise ValueError(f"{path}: safetensors '__metadata__' must map strings to strings")
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise ValueError(f"{path}: safetensors entry {key!r} is malformed")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in _ITEMSIZE:
            raise ValueError(f"{path}: tensor {key!r} has unsupported dtype {dtype!r}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise ValueError(f"{path}: tensor {key!r} has an invalid shape {shape!r}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_len
        ):
            raise ValueError(f"{path}: tensor {key!r} has invalid data offsets {offsets!r}")
        if math.prod(shape) * _ITEMSIZE[dtype] != offsets[1] - offsets[0]:
            raise ValueError(f"{path}: tensor {key!r} of shape {shape} and dtype {dtype} does not fit its {offsets[1] - offsets[0]} bytes")
        spans.append((offsets[0], offsets[1]))
    position = 0
    for start, end in sorted(spans):
        if start != position:
            raise ValueError(f"{path}: safetensors data ranges overlap or leave gaps")
        position = end
    if position != data_len:
        raise ValueError(f"{path}: safetensors data section is {data_len} bytes but its tensors cover {position}")
    return header


# --------------------------------------------------------------------------- nested states


def state_to_tensors(prefix: str, state: Any) -> tuple[dict[str, torch.Tensor], Any]:
    """Split a nested state into tensors under dotted keys and a JSON-able structure.

    Works for ``module.state_dict()``, ``optimizer.state_dict()``, scheduler
    states and anything built of dicts (str or int keys), lists, tuples,
    tensors, ints, floats (non-finite too), bools, strings and None.

    In the structure, tensors become ``{"$tensor": key}``, tuples
    ``{"$tuple": [...]}``, dicts ``{"$dict": [[key, value], ...]}`` (keeping
    int keys and order) and non-finite floats ``{"$float": "nan"}``; other
    values are stored as they are. :func:`state_from_tensors` inverts it.

    Parameters
    ----------
    prefix : str
        Prefix of every tensor key (``""`` for none), e.g. ``"optimizers.G"``.
    state : Any
        The nested state. Not modified.

    Returns
    -------
    tensors : dict of str to torch.Tensor
        Detached tensors, keyed ``prefix.path.to.entry`` (e.g.
        ``"optimizers.G.state.0.exp_avg"``).
    structure : JSON-able
        Everything else, with references to the tensor keys.

    Raises
    ------
    TypeError
        On a value of another type (the message gives its path).
    ValueError
        If two entries map to the same tensor key (e.g. keys ``1`` and ``"1"``).

    Examples
    --------
    >>> import torch
    >>> tensors, structure = state_to_tensors("opt", {"state": {0: {"step": torch.tensor(3.0)}}, "betas": (0.9, 0.99)})
    >>> list(tensors)
    ['opt.state.0.step']
    >>> state_from_tensors(structure, tensors)["betas"]
    (0.9, 0.99)
    """
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a string, got {type(prefix).__name__}")
    tensors: dict[str, torch.Tensor] = {}

    def join(path: str, part) -> str:
        return f"{path}.{part}" if path else str(part)

    def encode(obj, path: str):
        if isinstance(obj, torch.Tensor):
            if path in tensors:
                raise ValueError(f"two entries of the state map to the tensor key {path!r}")
            tensors[path] = obj.detach()
            return {"$tensor": path}
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, np.generic):
            return encode(obj.item(), path)
        if isinstance(obj, numbers.Integral):
            return int(obj)
        if isinstance(obj, float):
            if math.isfinite(obj):
                return float(obj)
            return {"$float": "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")}
        if isinstance(obj, tuple):
            return {"$tuple": [encode(item, join(path, i)) for i, item in enumerate(obj)]}
        if isinstance(obj, list):
            return [encode(item, join(path, i)) for i, item in enumerate(obj)]
        if isinstance(obj, Mapping):
            items = []
            for key, value in obj.items():
                if isinstance(key, bool) or not isinstance(key, (str, numbers.Integral)):
                    raise TypeError(f"{path or prefix or 'state'}: dict key {key!r} is neither a string nor an int")
                key = key if isinstance(key, str) else int(key)
                items.append([key, encode(value, join(path, key))])
            return {"$dict": items}
        raise TypeError(f"{path or prefix or 'state'}: cannot store a {type(obj).__name__} in a checkpoint")

    structure = encode(state, prefix)
    return tensors, structure


def state_from_tensors(structure: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Rebuild a state split by :func:`state_to_tensors`.

    Parameters
    ----------
    structure : JSON-able
        The structure returned by :func:`state_to_tensors` (after a JSON round trip).
    tensors : mapping of str to torch.Tensor
        Tensors holding at least the keys the structure refers to.

    Returns
    -------
    Any
        The state: dicts, lists, tuples, tensors and plain values.

    Raises
    ------
    ValueError
        If the structure is malformed or refers to a missing tensor.

    Examples
    --------
    >>> import torch
    >>> tensors, structure = state_to_tensors("net", {"weight": torch.ones(2), "scale": float("inf")})
    >>> state = state_from_tensors(structure, tensors)
    >>> state["weight"].tolist(), state["scale"]
    ([1.0, 1.0], inf)
    """

    def decode(node, where: str):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [decode(item, f"{where}[{i}]") for i, item in enumerate(node)]
        if isinstance(node, dict) and len(node) == 1:
            (tag, value), = node.items()
            if tag == "$tensor" and isinstance(value, str):
                if value not in tensors:
                    raise ValueError(f"state structure at {where} refers to the tensor {value!r}, which is missing")
                return tensors[value]
            if tag == "$float" and value in _NON_FINITE:
                return _NON_FINITE[value]
            if tag == "$tuple" and isinstance(value, list):
                return tuple(decode(item, f"{where}[{i}]") for i, item in enumerate(value))
            if tag == "$dict" and isinstance(value, list):
                result = {}
                for pair in value:
                    if (
                        not isinstance(pair, list)
                        or len(pair) != 2
                        or isinstance(pair[0], bool)
                        or not isinstance(pair[0], (str, int))
                    ):
                        raise ValueError(f"state structure at {where}: malformed dict entry {pair!r}")
                    result[pair[0]] = decode(pair[1], f"{where}[{pair[0]!r}]")
                return result
        raise ValueError(f"state structure at {where} is malformed: {str(node)[:80]}")

    return decode(structure, "state")


# --------------------------------------------------------------------------- random number generators


def rng_state_to_tensors() -> tuple[dict[str, torch.Tensor], dict]:
    """Capture every random number generator a training run draws from.

    Covers torch's CPU generator, the generator of every CUDA device when CUDA
    has been initialised (an uninitialised CUDA has drawn nothing, and reading
    its state would create a context on every GPU), Python's :mod:`random` and
    NumPy's legacy global generator (``np.random.*``). ``np.random.Generator``
    objects are not global; whoever owns one saves it.

    Returns
    -------
    tensors : dict of str to torch.Tensor
        ``"rng.torch"``, ``"rng.cuda.<i>"``, ``"rng.python"``, ``"rng.numpy"``.
    info : dict
        Plain JSON data completing the states.

    Examples
    --------
    >>> import torch
    >>> tensors, info = rng_state_to_tensors()
    >>> a = torch.rand(3)
    >>> rng_state_from_tensors(tensors, info)
    >>> torch.equal(torch.rand(3), a)
    True
    """
    tensors = {"rng.torch": torch.get_rng_state()}
    cuda_devices = 0
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{index}"] = state
            cuda_devices = index + 1
    version, internal, gauss_next = random.getstate()
    tensors["rng.python"] = torch.tensor(internal, dtype=torch.int64)
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    tensors["rng.numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    info = {
        "cuda_devices": cuda_devices,
        "python": {"version": int(version), "gauss_next": gauss_next},
        "numpy": {"kind": str(kind), "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
    }
    return tensors, info


def rng_state_from_tensors(tensors: Mapping[str, torch.Tensor], info: Mapping) -> None:
    """Restore the generators captured by :func:`rng_state_to_tensors`.

    CUDA states are restored for the devices this machine has; when it has
    fewer or more than the checkpoint, a warning says the run is no longer
    exactly reproducible.

    Parameters
    ----------
    tensors : mapping of str to torch.Tensor
    info : mapping

    Raises
    ------
    ValueError
        If a state is missing or malformed.

    Examples
    --------
    >>> import random
    >>> tensors, info = rng_state_to_tensors()
    >>> a = random.random()
    >>> rng_state_from_tensors(tensors, info)
    >>> random.random() == a
    True
    """
    try:
        python, numpy_info, cuda_devices = info["python"], info["numpy"], int(info["cuda_devices"])
        torch_state = tensors["rng.torch"]
        python_state = tensors["rng.python"]
        numpy_keys = tensors["rng.numpy"]
        python_version, gauss_next = int(python["version"]), python["gauss_next"]
        numpy_state = (
            str(numpy_info["kind"]),
            numpy_keys.cpu().numpy().astype(np.uint32),
            int(numpy_info["pos"]),
            int(numpy_info["has_gauss"]),
            float(numpy_info["cached_gaussian"]),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"random number generator state is incomplete or malformed ({exc!r})") from None
    if torch_state.dtype != torch.uint8 or python_state.shape != (625,) or numpy_keys.shape != (624,):
        raise ValueError("random number generator state has the wrong dtype or shape")
    if gauss_next is not None and not isinstance(gauss_next, float):
        raise ValueError("random number generator state: python gauss_next must be a float or None")

    torch.set_rng_state(torch_state.cpu())
    if cuda_devices:
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if available != cuda_devices:
            warnings.warn(
                f"the checkpoint holds the random state of {cuda_devices} CUDA device(s), this machine has "
                f"{available}; random numbers drawn on the GPU will differ from an uninterrupted run",
                RuntimeWarning,
                stacklevel=2,
            )
        for index in range(min(cuda_devices, available)):
            torch.cuda.set_rng_state(tensors[f"rng.cuda.{index}"].cpu(), index)
    random.setstate((python_version, tuple(int(x) for x in python_state.tolist()), gauss_next))
    np.random.set_state(numpy_state)


def _file_size(path: Path) -> int:
    return path.stat().st_size
