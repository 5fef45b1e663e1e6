"""Tests for gan_zoo.training.checkpoint: round trips, every rejection, atomic writes, RNG states."""

from __future__ import annotations

import hashlib
import json
import math
import os
import pathlib
import pickle
import random
import struct

import numpy as np
import pytest
import torch

import gan_zoo.training.checkpoint as ckpt
from gan_zoo.training import (
    load_checkpoint,
    rng_state_from_tensors,
    rng_state_to_tensors,
    save_checkpoint,
    state_from_tensors,
    state_to_tensors,
)

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int8, torch.uint8, torch.bool]


def _tensors():
    gen = torch.Generator().manual_seed(0)
    tensors = {f"t.{str(dtype).split('.')[-1]}": (torch.randn(3, 5, generator=gen) * 50).to(dtype) for dtype in DTYPES}
    tensors["scalar"] = torch.tensor(2.5)
    tensors["empty"] = torch.zeros(0, 4)
    tensors["strided"] = torch.arange(12.0).reshape(3, 4).t()  # not contiguous
    return tensors


META = {"step": 12, "name": "dcgan-µ", "nested": {"widths": [8, 16], "flags": [True, None], "lr": 2e-4}, "empty": {}}


def _weights_file(directory, name="ck") -> pathlib.Path:
    document = json.loads((directory / f"{name}.json").read_text())
    return directory / document["weights"]["file"]


def _rewrite_json(directory, change, name="ck"):
    path = directory / f"{name}.json"
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


class _TouchOnUnpickle:
    """Unpickling this creates a file: proof that a loader did (or did not) unpickle."""

    def __init__(self, path):
        self.path = pathlib.Path(path)

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


def _payload(marker: pathlib.Path) -> bytes:
    return pickle.dumps({"weights": _TouchOnUnpickle(marker)}, protocol=4)


def test_payload_is_live(tmp_path):
    # The payload used below really creates its file when unpickled.
    marker = tmp_path / "control"
    pickle.loads(_payload(marker))
    assert marker.exists()


# --------------------------------------------------------------------------- round trip


def test_round_trip_keeps_dtypes_values_and_meta(tmp_path):
    tensors = _tensors()
    path = save_checkpoint(tmp_path, "ck", tensors=tensors, meta=META)
    assert path == tmp_path / "ck.json"
    loaded, meta = load_checkpoint(tmp_path, "ck")
    assert meta == META
    assert set(loaded) == set(tensors)
    for key, tensor in tensors.items():
        assert loaded[key].dtype == tensor.dtype and loaded[key].shape == tensor.shape
        assert torch.equal(loaded[key], tensor), key


def test_layout_is_one_json_and_one_hashed_weights_file(tmp_path):
    save_checkpoint(tmp_path, "ck", tensors={"w": torch.ones(3)}, meta={})
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and names[1] == "ck.json"
    document = json.loads((tmp_path / "ck.json").read_text())
    assert set(document) == {"format", "format_version", "weights", "meta"}
    assert document["format"] == "gan_zoo-checkpoint" and document["format_version"] == 1
    weights = tmp_path / document["weights"]["file"]
    assert names[0] == weights.name and weights.name.startswith("ck.") and weights.name.endswith(".safetensors")
    data = weights.read_bytes()
    assert document["weights"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert document["weights"]["bytes"] == len(data)


def test_saving_again_replaces_old_weights_but_not_other_checkpoints(tmp_path):
    save_checkpoint(tmp_path, "best", tensors={"w": torch.zeros(2)}, meta={})
    save_checkpoint(tmp_path, "latest", tensors={"w": torch.zeros(2)}, meta={"n": 1})
    save_checkpoint(tmp_path, "latest", tensors={"w": torch.ones(2)}, meta={"n": 2})
    assert len(list(tmp_path.glob("latest.*.safetensors"))) == 1
    assert torch.equal(load_checkpoint(tmp_path, "latest")[0]["w"], torch.ones(2))
    assert torch.equal(load_checkpoint(tmp_path, "best")[0]["w"], torch.zeros(2))


def test_saving_removes_what_a_killed_write_of_that_checkpoint_left(tmp_path):
    save_checkpoint(tmp_path, "latest", tensors={"w": torch.zeros(2)}, meta={})
    # What a writer killed inside _atomic_write leaves: mkstemp's names for the weights and the JSON.
    torn = [".latest.0123456789abcdef.safetensors.1vxe28wk.tmp", ".latest.json.k2_9ab0c.tmp"]
    kept = [".best.0123456789abcdef.safetensors.1vxe28wk.tmp", "latest.json.tmp", "notes.tmp"]
    for n in torn + kept:
        (tmp_path / n).write_bytes(b"torn")
    save_checkpoint(tmp_path, "latest", tensors={"w": torch.ones(2)}, meta={})
    names = {p.name for p in tmp_path.iterdir()}
    assert not names & set(torn)
    assert set(kept) <= names  # another checkpoint's, or not a name the writer makes
    assert torch.equal(load_checkpoint(tmp_path, "latest")[0]["w"], torch.ones(2))


def test_tied_tensors_are_stored(tmp_path):
    weight = torch.randn(4, 4)
    save_checkpoint(tmp_path, "ck", tensors={"a": weight, "b": weight, "half": weight[:2]}, meta={})
    loaded, _ = load_checkpoint(tmp_path, "ck")
    assert torch.equal(loaded["a"], weight) and torch.equal(loaded["b"], weight) and torch.equal(loaded["half"], weight[:2])


@pytest.mark.parametrize(
    ("meta", "error", "match"),
    [
        ({1: "x"}, TypeError, "keys must be strings"),
        ({"x": float("nan")}, ValueError, "non-finite"),
        ({"x": [1, float("inf")]}, ValueError, "non-finite"),
        ({"x": object()}, TypeError, "not JSON data"),
        ({"x": np.int64(3)}, TypeError, "not JSON data"),
        ([1, 2], TypeError, "meta must be a mapping"),
    ],
)
def test_save_refuses_meta_that_is_not_plain_json(tmp_path, meta, error, match):
    with pytest.raises(error, match=match):
        save_checkpoint(tmp_path, "ck", tensors={}, meta=meta)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["../x", "a.b", "", "-a", "a/b", 3])
def test_names_are_checked(tmp_path, name):
    with pytest.raises(ValueError, match="name must be"):
        save_checkpoint(tmp_path, name, tensors={}, meta={})
    with pytest.raises(ValueError, match="name must be"):
        load_checkpoint(tmp_path, name)


@pytest.mark.parametrize(
    ("tensors", "error"),
    [({"w": [1.0]}, TypeError), ({"": torch.ones(1)}, TypeError), ({"__metadata__": torch.ones(1)}, ValueError)],
)
def test_save_refuses_bad_tensors(tmp_path, tensors, error):
    with pytest.raises(error):
        save_checkpoint(tmp_path, "ck", tensors=tensors, meta={})


# --------------------------------------------------------------------------- rejections


def test_missing_json_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"ck\.json is missing"):
        load_checkpoint(tmp_path, "ck")


def test_missing_weights_are_named(tmp_path):
    save_checkpoint(tmp_path, "ck", tensors={"w": torch.ones(1)}, meta={})
    weights = _weights_file(tmp_path)
    weights.unlink()
    with pytest.raises(ValueError, match=f"{weights.name} is missing"):
        load_checkpoint(tmp_path, "ck")


@pytest.mark.parametrize("content", [b"not json at all", b"[1, 2]", b'{"format": "other"}', b"\xff\xfe binary"])
def test_json_that_is_not_a_checkpoint_is_refused(tmp_path, content):
    (tmp_path / "ck.json").write_bytes(content)
    with pytest.raises(ValueError, match=r"ck\.json is not a"):
        load_checkpoint(tmp_path, "ck")


def test_pickle_renamed_to_json_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "ck.json").write_bytes(_payload(marker))
    with pytest.raises(ValueError, match=r"ck\.json is not a JSON file"):
        load_checkpoint(tmp_path, "ck")
    assert not marker.exists()


@pytest.mark.parametrize("patch_json", [False, True], ids=["json-untouched", "json-matches-the-pickle"])
def test_pickle_renamed_to_safetensors_is_refused_without_unpickling(tmp_path, patch_json):
    save_checkpoint(tmp_path, "ck", tensors={"w": torch.ones(1)}, meta={})
    marker = tmp_path / "pwned"
    payload = _payload(marker)
    weights = _weights_file(tmp_path)
    weights.write_bytes(payload)
    if patch_json:  # a forged JSON that vouches for the pickle: only the format check stops it
        digest = hashlib.sha256(payload).hexdigest()

        def forge(document):
            document["weights"].update(file=f"ck.{digest[:16]}.safetensors", sha256=digest, bytes=len(payload))

        weights.rename(tmp_path / f"ck.{digest[:16]}.safetensors")
        _rewrite_json(tmp_path, forge)
        match = "is not a safetensors file"
    else:
        match = "bytes but .* records"
    with pytest.raises(ValueError, match=match):
        load_checkpoint(tmp_path, "ck")
    assert not marker.exists()


def test_torch_save_file_is_refused(tmp_path):
    save_checkpoint(tmp_path, "ck", tensors={"w": torch.ones(1)}, meta={})
    marker = tmp_path / "pwned"
    zipped = tmp_path / "zipped.pt"
    torch.save({"w": torch.ones(1), "evil": _TouchOnUnpickle(marker)}, zipped)
    data = zipped.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    (tmp_path / f"ck.{digest[:16]}.safetensors").write_bytes(data)
    _rewrite_json(tmp_path, lambda d: d["weights"].update(file=f"ck.{digest[:16]}.safetensors", sha256=digest, bytes=len(data)))
    with pytest.raises(ValueError, match="not a safetensors file"):
        load_checkpoint(tmp_path, "ck")
    assert not marker.exists()


def test_hash_mismatch_is_refused(tmp_path):
    save_checkpoint(tmp_path, "ck", tensors={"w": torch.zeros(64)}, meta={})
    weights = _weights_file(tmp_path)
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # inside the tensor data: still a valid safetensors file
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"{weights.name} has sha256 .* records"):
        load_checkpoint(tmp_path, "ck")


def test_newer_format_version_is_refused(tmp_path):
    save_checkpoint(tmp_path, "ck", tensors={}, meta={})

    def newer(document):
        document["format_version"] = 2
        document["something_new"] = True

    _rewrite_json(tmp_path, newer)
    with pytest.raises(ValueError, match=r"ck\.json was written by a newer version"):
        load_checkpoint(tmp_path, "ck")


def _drop(key):
    def change(document):
        del document[key]

    return change


def _set(*path_and_value):
    *path, value = path_and_value

    def change(document):
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (_set("extra", 1), r"unexpected keys \['extra'\]"),
        (_drop("meta"), r"missing keys \['meta'\]"),
        (_drop("weights"), r"missing keys \['weights'\]"),
        (_set("weights", "extra", 1), "unexpected keys"),
        (_set("format_version", "1"), "format_version"),
        (_set("format_version", True), "format_version"),
        (_set("format_version", 0), "format_version"),
        (_set("weights", "bytes", "12"), "weights.bytes"),
        (_set("weights", "bytes", -1), "weights.bytes"),
        (_set("weights", "sha256", "ABC"), "weights.sha256"),
        (_set("weights", "file", "../ck.0123456789abcdef.safetensors"), "weights.file"),
        (_set("weights", "file", "other.0123456789abcdef.safetensors"), "weights.file"),
        (_set("weights", "file", 7), "weights.file"),
        (_set("weights", []), "'weights' must be an object"),
        (_set("meta", [1]), "'meta' must be an object"),
    ],
)
def test_malformed_json_is_refused(tmp_path, change, match):
    save_checkpoint(tmp_path, "ck", tensors={"w": torch.ones(2)}, meta={"a": 1})
    _rewrite_json(tmp_path, change)
    with pytest.raises(ValueError, match=match):
        load_checkpoint(tmp_path, "ck")


def test_weights_file_must_match_its_recorded_hash_prefix(tmp_path):
    save_checkpoint(tmp_path, "ck", tensors={"w": torch.ones(2)}, meta={})
    weights = _weights_file(tmp_path)
    other = tmp_path / "ck.0000000000000000.safetensors"
    weights.rename(other)
    _rewrite_json(tmp_path, _set("weights", "file", other.name))
    with pytest.raises(ValueError, match="does not match 'weights.sha256'"):
        load_checkpoint(tmp_path, "ck")


def test_max_bytes_refuses_large_files_before_reading_them(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, "ck", tensors={"w": torch.zeros(10_000)}, meta={})
    weights = _weights_file(tmp_path)
    opened = []
    real_open = open

    def spy(path, *args, **kwargs):
        opened.append(pathlib.Path(path).name)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(ckpt, "open", spy, raising=False)
    with pytest.raises(ValueError, match=f"{weights.name} is .* bytes, more than max_bytes=1000"):
        load_checkpoint(tmp_path, "ck", max_bytes=1000)
    assert weights.name not in opened and "ck.json" in opened
    with pytest.raises(ValueError, match=r"ck\.json is .* more than max_bytes=10"):
        load_checkpoint(tmp_path, "ck", max_bytes=10)
    assert load_checkpoint(tmp_path, "ck", max_bytes=100_000)[0]["w"].shape == (10_000,)
    with pytest.raises(ValueError, match="max_bytes"):
        load_checkpoint(tmp_path, "ck", max_bytes=-1)


def _forge_weights(directory, header: dict, data: bytes, name="ck"):
    """Write a hand-made safetensors file and a JSON vouching for it (correct hash and size)."""
    raw = json.dumps(header).encode()
    blob = struct.pack("<Q", len(raw)) + raw + data
    digest = hashlib.sha256(blob).hexdigest()
    file = f"{name}.{digest[:16]}.safetensors"
    (directory / file).write_bytes(blob)
    save_checkpoint(directory, "placeholder", tensors={}, meta={})
    document = json.loads((directory / "placeholder.json").read_text())
    document["weights"] = {"file": file, "sha256": digest, "bytes": len(blob)}
    (directory / f"{name}.json").write_text(json.dumps(document))


@pytest.mark.parametrize(
    ("header", "data", "match"),
    [
        ({"w": {"dtype": "F32", "shape": [1_000_000_000_000], "data_offsets": [0, 8]}}, b"\0" * 8, "does not fit"),
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 1 << 40]}}, b"\0" * 16, "invalid data offsets"),
        ({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4, "invalid shape"),
        ({"w": {"dtype": "OBJ", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4, "unsupported dtype"),
        ({"w": {"dtype": "F32", "shape": [1]}}, b"\0" * 4, "malformed"),
        (
            {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},
            b"\0" * 12,
            "overlap or leave gaps",
        ),
        ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 8, "cover 4"),
        ([1, 2], b"", "header is not an object"),
    ],
)
def test_safetensors_header_is_checked_before_allocating(tmp_path, header, data, match):
    _forge_weights(tmp_path, header, data)
    with pytest.raises(ValueError, match=match):
        load_checkpoint(tmp_path, "ck")


def test_forged_but_valid_weights_load(tmp_path):
    # The forging helper itself makes loadable files, so the rejections above are due to the headers.
    _forge_weights(tmp_path, {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, struct.pack("<2f", 1.5, -2.0))
    assert load_checkpoint(tmp_path, "ck")[0]["w"].tolist() == [1.5, -2.0]


def test_loading_never_unpickles(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, "ck", tensors=_tensors(), meta=META)

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle used while loading a checkpoint")

    for module, attr in [(torch, "load"), (pickle, "load"), (pickle, "loads"), (pickle, "Unpickler")]:
        monkeypatch.setattr(module, attr, forbidden)
    loaded, meta = load_checkpoint(tmp_path, "ck")
    assert meta == META and len(loaded) == len(_tensors())


# --------------------------------------------------------------------------- atomic writes


def _failing_on_call(real, n: int, calls: list):
    def fake(*args, **kwargs):
        calls.append(args)
        if len(calls) == n:
            raise OSError("simulated crash")
        return real(*args, **kwargs)

    return fake


@pytest.mark.parametrize(
    ("function", "call"),
    # fsync calls: weights temp file, directory (errors ignored there), JSON temp file, directory.
    [("fsync", 1), ("fsync", 3), ("replace", 1), ("replace", 2)],
    ids=["weights-fsync", "json-fsync-after-weights-committed", "weights-rename", "json-rename"],
)
def test_crash_while_saving_leaves_the_previous_checkpoint(tmp_path, monkeypatch, function, call):
    old = {"w": torch.arange(5.0)}
    save_checkpoint(tmp_path, "ck", tensors=old, meta={"version": "old"})
    old_json = (tmp_path / "ck.json").read_bytes()

    calls = []
    monkeypatch.setattr(os, function, _failing_on_call(getattr(os, function), call, calls))
    with pytest.raises(OSError, match="simulated crash"):
        save_checkpoint(tmp_path, "ck", tensors={"w": torch.zeros(1000)}, meta={"version": "new"})
    monkeypatch.undo()
    assert len(calls) == call  # the crash really happened at the intended point

    assert (tmp_path / "ck.json").read_bytes() == old_json
    loaded, meta = load_checkpoint(tmp_path, "ck")
    assert meta == {"version": "old"} and torch.equal(loaded["w"], old["w"])
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    # whatever lies under a final name is complete
    import safetensors.torch

    for weights in tmp_path.glob("*.safetensors"):
        safetensors.torch.load(weights.read_bytes())
    # and the next save works and cleans up
    save_checkpoint(tmp_path, "ck", tensors={"w": torch.ones(2)}, meta={"version": "next"})
    assert len(list(tmp_path.glob("ck.*.safetensors"))) == 1
    assert load_checkpoint(tmp_path, "ck")[1] == {"version": "next"}


# --------------------------------------------------------------------------- nested states


def _trained_adam():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, betas=(0.5, 0.99))
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(8, 3)).pow(2).mean().backward()
        opt.step()
        sched.step()
    return net, opt, sched


def test_optimizer_state_survives_a_checkpoint_and_trains_identically(tmp_path):
    net, opt, sched = _trained_adam()
    tensors, structures = {}, {}
    for prefix, state in [("net", net.state_dict()), ("opt", opt.state_dict()), ("sched", sched.state_dict())]:
        parts, structures[prefix] = state_to_tensors(prefix, state)
        tensors.update(parts)
    assert "opt.state.0.exp_avg" in tensors and "net.1.num_batches_tracked" in tensors
    save_checkpoint(tmp_path, "ck", tensors=tensors, meta=structures)
    loaded, meta = load_checkpoint(tmp_path, "ck")

    torch.manual_seed(99)  # different initial weights and hyper-parameters, all overwritten by the load
    net2 = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
    opt2 = torch.optim.Adam(net2.parameters(), lr=1.0)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, step_size=5, gamma=0.1)
    net2.load_state_dict(state_from_tensors(meta["net"], loaded))
    opt2.load_state_dict(state_from_tensors(meta["opt"], loaded))
    sched2.load_state_dict(state_from_tensors(meta["sched"], loaded))
    assert opt2.param_groups[0]["betas"] == (0.5, 0.99)  # a tuple again
    assert sched2.state_dict() == sched.state_dict()

    x = torch.randn(8, 3)
    for model, optimizer, scheduler in [(net, opt, sched), (net2, opt2, sched2)]:
        optimizer.zero_grad()
        model(x).pow(2).mean().backward()
        optimizer.step()
        scheduler.step()
    for a, b in zip(net.state_dict().values(), net2.state_dict().values()):
        assert torch.equal(a, b)


def test_nested_state_round_trip_keeps_types(tmp_path):
    state = {
        "ints": {0: "zero", 5: (1, 2.0, None)},
        "floats": [math.inf, -math.inf, math.nan, 0.1, 1.0],
        "flags": (True, False),
        "tensor": torch.arange(3),
        "deep": [{"t": torch.ones(2, dtype=torch.bfloat16)}],
        "numpy": np.float32(0.5),
        "big": 2**100,
    }
    tensors, structure = state_to_tensors("s", state)
    assert set(tensors) == {"s.tensor", "s.deep.0.t"}
    json_structure = json.loads(json.dumps(structure, allow_nan=False))  # strict JSON
    back = state_from_tensors(json_structure, tensors)
    assert back["ints"] == {0: "zero", 5: (1, 2.0, None)} and isinstance(back["ints"][5][1], float)
    assert back["floats"][:2] == [math.inf, -math.inf] and math.isnan(back["floats"][2]) and back["floats"][3:] == [0.1, 1.0]
    assert back["flags"] == (True, False) and back["numpy"] == 0.5 and back["big"] == 2**100
    assert torch.equal(back["tensor"], state["tensor"]) and back["deep"][0]["t"].dtype == torch.bfloat16


def test_state_key_collisions_and_unsupported_values_are_refused():
    with pytest.raises(ValueError, match="map to the tensor key 'p.1'"):
        state_to_tensors("p", {1: torch.ones(1), "1": torch.ones(1)})
    with pytest.raises(TypeError, match="cannot store a set"):
        state_to_tensors("p", {"a": {1, 2}})
    with pytest.raises(TypeError, match="neither a string nor an int"):
        state_to_tensors("p", {(1, 2): 3})


@pytest.mark.parametrize(
    "structure",
    [{"$tensor": "missing"}, {"$float": "1.0"}, {"$dict": [[1, 2, 3]]}, {"$tuple": 3}, {"a": 1}, {"$tensor": "x", "$float": "nan"}],
)
def test_malformed_state_structure_is_refused(structure):
    with pytest.raises(ValueError, match="state structure"):
        state_from_tensors(structure, {"x": torch.ones(1)})


# --------------------------------------------------------------------------- random generators


def _draw():
    return (
        torch.rand(5).tolist(),
        torch.randn(3).tolist(),
        [random.random() for _ in range(3)],
        random.gauss(0, 1),
        np.random.rand(3).tolist(),
        np.random.standard_normal(3).tolist(),
    )


def test_rng_states_restore_the_same_next_numbers(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    random.gauss(0, 1)  # leaves a cached second Gaussian in Python's state
    np.random.standard_normal()  # and in NumPy's legacy state
    tensors, info = rng_state_to_tensors()
    save_checkpoint(tmp_path, "rng", tensors=tensors, meta={"rng": info})
    expected = _draw()
    _draw()  # move every generator on
    loaded, meta = load_checkpoint(tmp_path, "rng")
    rng_state_from_tensors(loaded, meta["rng"])
    assert _draw() == expected


def test_rng_state_must_be_complete():
    tensors, info = rng_state_to_tensors()
    del tensors["rng.numpy"]
    with pytest.raises(ValueError, match="random number generator state"):
        rng_state_from_tensors(tensors, info)
    tensors, info = rng_state_to_tensors()
    tensors["rng.python"] = tensors["rng.python"][:10]
    with pytest.raises(ValueError, match="wrong dtype or shape"):
        rng_state_from_tensors(tensors, info)
