"""Model files, volumes and configs are data: nothing read from a file is ever executed.

* A pickle payload that creates a file when unpickled, put in place of every
  checkpoint or model file a loader accepts (with the JSON forged to vouch for
  it, too), is refused with a ValueError and creates nothing.
* Configs and tensor shapes that do not match are refused before the networks
  are allocated; unexpected keys or types in model.json are named.
* Paths stored in files (checkpoint JSON, OME-Zarr attributes) cannot point
  outside the folder they belong to.
* The command line evaluates no string from a file; the package source calls
  no eval/exec/pickle/torch.load.
* Requests whose arrays alone would exceed memory are refused with the reason;
  large sample counts and many windows are processed in launches of ``batch``.
"""

from __future__ import annotations

import ast
import hashlib
import json
import pickle
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import torch

import ctinpaint
import gan_zoo
from ctinpaint.cli import _parser
from ctinpaint.inpaint import inpaint_volume
from ctinpaint.intensity import IntensityMapping
from ctinpaint.io import open_mask, open_volume
from ctinpaint.models import build_model, config_for
from ctinpaint.patches import PatchSampler
from ctinpaint.phantom import make_phantom
from ctinpaint.sampling import sample_fills
from ctinpaint.train import LoadedModel, TrainConfig, load_model, train_model
from gan_zoo.training import load_checkpoint, load_networks

REPO = Path(__file__).resolve().parents[2]


class _CreatesFile:
    """Unpickling this creates ``path``: proof that a loader did (or did not) unpickle."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return Path.touch, (self.path,)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny training folder with latest, best and model files; copy before damaging."""
    out = tmp_path_factory.mktemp("trained")
    config = TrainConfig(steps=2, batch_size=4, n_val=2, val_samples=2, validate_every=1, checkpoint_every=1, device="cpu")
    train_model(make_phantom((4, 96, 96), seed=0), out, model_config=config_for("unet", width=4), config=config,
                progress=False)
    assert {"model.json", "latest.json", "best.json"} <= {p.name for p in out.iterdir()}
    return out


@pytest.fixture
def run(trained, tmp_path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / "run"))


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _weights(folder: Path, name: str) -> Path:
    return folder / json.loads((folder / f"{name}.json").read_text())["weights"]["file"]


def _forge_json(folder: Path, name: str, payload: bytes) -> Path:
    """Point ``name.json`` at ``payload`` with the right file name, size and sha256, as a forger would."""
    digest = hashlib.sha256(payload).hexdigest()
    _weights(folder, name).unlink()
    weights = folder / f"{name}.{digest[:16]}.safetensors"
    weights.write_bytes(payload)
    document = json.loads((folder / f"{name}.json").read_text())
    document["weights"] = {"file": weights.name, "sha256": digest, "bytes": len(payload)}
    (folder / f"{name}.json").write_text(json.dumps(document))
    return weights


def _load_every_way(folder: Path, name: str) -> list[str]:
    """Each loader that reads checkpoint ``name``; returns the messages of their ValueErrors."""
    messages = []
    loaders = [lambda: load_checkpoint(folder, name), lambda: load_networks(folder, name, {"C": torch.nn.Linear(1, 1)})]
    if name == "model":
        loaders.append(lambda: load_model(folder, device="cpu"))
    if name == "latest":  # resuming a training reads it
        loaders.append(lambda: train_model(make_phantom((4, 96, 96), seed=0), folder,
                                           model_config=config_for("unet", width=4),
                                           config=TrainConfig(steps=3, batch_size=4, n_val=2, val_samples=2,
                                                              device="cpu"), progress=False))
    for load in loaders:
        with pytest.raises(ValueError) as info:
            load()
        messages.append(str(info.value))
    return messages


# --------------------------------------------------------------------------- pickle in place of a model file


@pytest.mark.parametrize("name", ["model", "latest", "best"])
@pytest.mark.parametrize("replaced", ["json", "weights", "weights+forged-json", "torch.save+forged-json"])
def test_pickle_in_place_of_any_checkpoint_file_is_refused_and_creates_nothing(run, tmp_path, name, replaced):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"networks.C.weight": _CreatesFile(marker)})
    if replaced == "json":
        (run / f"{name}.json").write_bytes(payload)
    elif replaced == "weights":
        _weights(run, name).write_bytes(payload)
    elif replaced == "weights+forged-json":
        _forge_json(run, name, payload)
    else:
        zipped = tmp_path / "zipped.pt"
        torch.save({"w": torch.ones(1), "evil": _CreatesFile(marker)}, zipped)
        _forge_json(run, name, zipped.read_bytes())
    before = _listing(run)
    messages = _load_every_way(run, name)
    assert not marker.exists()
    assert _listing(run) == before  # nothing written, nothing removed
    assert all(name in m or "model_dir" in m for m in messages), messages
    # Control: the payload is live, so "not marker.exists()" above could have failed.
    pickle.loads(payload)
    assert marker.exists()


def test_command_line_refuses_a_pickled_model(run, tmp_path):
    marker = tmp_path / "pwned"
    _forge_json(run, "model", pickle.dumps(_CreatesFile(marker)))
    volume = tmp_path / "v.npy"
    np.save(volume, make_phantom((2, 64, 64), seed=0))
    mask = tmp_path / "m.npy"
    np.save(mask, np.zeros((2, 64, 64), bool))
    done = subprocess.run(
        [sys.executable, "-m", "ctinpaint.cli", "inpaint", str(volume), "--mask", str(mask), "--model", str(run),
         "--out", str(tmp_path / "out.zarr"), "--device", "cpu"],
        capture_output=True, text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 2 and "model_dir" in done.stderr and "Traceback" not in done.stderr
    assert not marker.exists() and not (tmp_path / "out.zarr").exists()


def test_pickled_npy_volume_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "volume.npy"
    np.save(path, np.array([[_CreatesFile(marker)]], dtype=object), allow_pickle=True)
    for opener in (open_volume, open_mask):
        with pytest.raises(ValueError, match="cannot read"):
            opener(path)
    assert not marker.exists()


def test_zarr_v2_object_array_with_a_pickle_codec_is_never_decoded(tmp_path):
    # A Zarr v2 array of dtype object decodes its chunks with numcodecs' Pickle: refused on the dtype alone,
    # before any chunk is read.
    marker = tmp_path / "pwned"
    store = tmp_path / "evil.zarr"
    store.mkdir()
    (store / ".zarray").write_text(json.dumps({
        "zarr_format": 2, "shape": [1, 1, 1], "chunks": [1, 1, 1], "dtype": "|O", "compressor": None,
        "fill_value": None, "filters": [{"id": "pickle"}], "order": "C", "dimension_separator": ".",
    }))
    (store / "0.0.0").write_bytes(pickle.dumps(np.array([_CreatesFile(marker)], dtype=object)))
    for opener in (open_volume, open_mask):
        with pytest.raises((TypeError, ValueError)):
            opener(store)
    assert not marker.exists()


# --------------------------------------------------------------------------- configs and shapes


def _edit_model_json(folder: Path, change) -> None:
    path = folder / "model.json"
    document = json.loads(path.read_text())
    change(document["meta"])
    path.write_text(json.dumps(document))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda m: m.__setitem__("evil", "x"), r"unexpected keys \['evil'\]"),
        (lambda m: m["ctinpaint"].__setitem__("hook", "os.system"), r"unexpected keys \['ctinpaint.hook'\]"),
        (lambda m: m["ctinpaint"]["model"].__setitem__("run", "x"), "unknown key 'run'"),
        (lambda m: m["ctinpaint"]["model"].__setitem__("width", "8"), "width must be an integer"),
        (lambda m: m["ctinpaint"]["model"].__setitem__("preset", "__import__('os')"), "preset must be one of"),
        (lambda m: m["ctinpaint"]["intensity"].__setitem__("low", "0"), "low must be a number"),
        (lambda m: m["ctinpaint"]["intensity"].__setitem__("extra", 1), "intensity mapping: expected keys"),
        (lambda m: m["ctinpaint"].__setitem__("model_format_version", "1"), "invalid model format version"),
        (lambda m: m["ctinpaint"].__setitem__("train", [1]), "invalid training config"),
        (lambda m: m["ctinpaint"]["train"].__setitem__("steps", "many"), "invalid training config"),
        (lambda m: m.__setitem__("step", "2"), "'step' that is not an integer"),
        (lambda m: m["networks"].__setitem__("C", "x"), "do not match the stored config"),
        (lambda m: m.__setitem__("networks", []), "not a ctinpaint model"),
    ],
    ids=["top-key", "ctinpaint-key", "model-key", "width-str", "preset-code", "low-str", "intensity-key",
         "version-str", "train-list", "train-steps-str", "step-str", "network-str", "networks-list"],
)
def test_model_json_with_unexpected_keys_or_types_is_refused(run, change, match):
    _edit_model_json(run, change)
    with pytest.raises(ValueError, match=match):
        load_model(run, device="cpu")


@pytest.mark.parametrize("field", ["width", "z_dim"])
def test_config_inflated_beyond_the_weights_is_refused_before_allocating(run, field):
    # width 2**14 would be ~40 GB of parameters, z_dim 2**28 ~100 GB: refused from shapes alone.
    _edit_model_json(run, lambda m: m["ctinpaint"]["model"].__setitem__(field, 2**14 if field == "width" else 2**28))
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ValueError, match="do not match the stored config"):
        load_model(run, device="cpu")
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown_kib < 512 * 1024, grown_kib


def test_tensor_shapes_not_matching_the_config_are_refused(run):
    # Weights for width 8 under a model.json that says width 4.
    bigger = build_model(config_for("unet", width=8))
    from gan_zoo.training import save_checkpoint, state_to_tensors

    document = json.loads((run / "model.json").read_text())
    tensors, networks = {}, {}
    for name, module in {"C": bigger.conditioner, "G": bigger.generator, "D": bigger.discriminator}.items():
        part, networks[name] = state_to_tensors(f"networks.{name}", module.state_dict())
        tensors.update(part)
    save_checkpoint(run, "model", tensors=tensors, meta={**document["meta"], "networks": networks})
    with pytest.raises(ValueError, match=r"network 'C' differs in .*expected \[\(16,\).*found \[\(32,\)"):
        load_model(run, device="cpu")


def test_safetensors_header_claiming_a_huge_tensor_is_refused_before_allocating(run):
    header = json.dumps({"networks.C.w": {"dtype": "F32", "shape": [2**20, 2**20], "data_offsets": [0, 16]}}).encode()
    payload = len(header).to_bytes(8, "little") + header + b"\0" * 16
    _forge_json(run, "model", payload)
    with pytest.raises(ValueError, match="does not fit its 16 bytes"):
        load_model(run, device="cpu")


# --------------------------------------------------------------------------- paths stored in files


@pytest.mark.parametrize("where", ["../outside", "/tmp/outside", "sub/model"])
def test_checkpoint_json_cannot_name_a_weights_file_outside_its_folder(run, tmp_path, where):
    document = json.loads((run / "model.json").read_text())
    real = run / document["weights"]["file"]
    target = Path(f"{where}.{document['weights']['sha256'][:16]}.safetensors")
    moved = (run / target) if not target.is_absolute() else tmp_path / target.name
    moved.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(real, moved)
    document["weights"]["file"] = str(target) if not target.is_absolute() else str(moved)
    (run / "model.json").write_text(json.dumps(document))
    with pytest.raises(ValueError, match="weights.file"):
        load_model(run, device="cpu")


@pytest.mark.parametrize("path", ["../secret.zarr", "0/../../secret.zarr", "ABSOLUTE"])
def test_ome_zarr_dataset_paths_cannot_leave_the_image(tmp_path, path):
    import zarr

    secret = zarr.create_array(store=str(tmp_path / "secret.zarr"), shape=(2, 8, 8), dtype="uint8")
    secret[:] = 7
    image = zarr.open_group(str(tmp_path / "img.zarr"), mode="w")
    image.create_array("0", shape=(2, 8, 8), dtype="uint8")
    target = str(tmp_path / "secret.zarr") if path == "ABSOLUTE" else path
    image.attrs["multiscales"] = [{"datasets": [{"path": target}], "axes": ["z", "y", "x"]}]
    with pytest.raises(ValueError, match="source: cannot read"):
        open_volume(tmp_path / "img.zarr")


# --------------------------------------------------------------------------- nothing is executed


_FORBIDDEN_MODULES = {"pickle", "marshal", "shelve", "dill", "cloudpickle", "yaml"}


def _calls_that_could_run_code(source: Path) -> list[str]:
    """Calls of eval/exec/compile/__import__, imports of pickle-like modules, torch.load, and np.load without
    allow_pickle=False. (``ctinpaint.__getattr__`` imports its own submodules by names written in its source.)"""
    found = []
    tree = ast.parse(source.read_text(), filename=str(source))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            found += [f"{source.name}:{node.lineno} imports {n}" for n in names if n.split(".")[0] in _FORBIDDEN_MODULES]
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else None
        builtin = isinstance(func, ast.Name) or owner == "builtins"  # not module.eval() of torch
        if name in {"eval", "exec", "compile", "__import__"} and builtin:
            found.append(f"{source.name}:{node.lineno} calls {name}")
        elif name in {"load", "loads"} and owner in {"torch", "pickle", "marshal", "dill", "yaml"}:
            found.append(f"{source.name}:{node.lineno} calls {owner}.{name}")
        elif name == "load" and owner == "np":
            safe = any(k.arg == "allow_pickle" and isinstance(k.value, ast.Constant) and k.value.value is False
                       for k in node.keywords)
            if not safe:
                found.append(f"{source.name}:{node.lineno} calls np.load without allow_pickle=False")
    return found


def test_the_package_source_never_evaluates_or_unpickles():
    sources = [p for pkg in (ctinpaint, gan_zoo) for p in Path(pkg.__file__).parent.rglob("*.py")]
    assert len(sources) > 10
    found = [hit for source in sources for hit in _calls_that_could_run_code(source)]
    assert found == []


def test_the_source_scan_finds_what_it_looks_for(tmp_path):
    # Control for the test above: each forbidden form is detected.
    bad = tmp_path / "bad.py"
    bad.write_text("import pickle\nimport torch, numpy as np\neval('1')\ntorch.load('x')\nnp.load('x.npy')\n"
                   "np.load('y.npy', allow_pickle=False)\n__import__('os')\nnet.to('cpu').eval()\n")
    assert len(_calls_that_could_run_code(bad)) == 5


def test_command_line_reads_no_arguments_from_files(tmp_path):
    assert _parser().fromfile_prefix_chars is None
    marker = tmp_path / "pwned"
    args_file = tmp_path / "args.txt"
    args_file.write_text(f"--help\n__import__('pathlib').Path({str(marker)!r}).touch()\n")
    done = subprocess.run([sys.executable, "-m", "ctinpaint.cli", "info", f"@{args_file}"], capture_output=True,
                          text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2 and "does not exist" in done.stderr
    assert not marker.exists()


def test_command_line_prints_zarr_attributes_without_running_them(tmp_path):
    import zarr

    marker = tmp_path / "pwned"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w", attributes={"ctinpaint": {"kind": code}})
    group.create_array("volume", shape=(1, 40, 40), dtype="uint8", attributes={"ctinpaint": code})
    group.create_array("mask", shape=(1, 40, 40), dtype="bool")
    group.attrs["multiscales"] = [{"datasets": [{"path": code}], "axes": [code, "y", "x"]}]
    done = subprocess.run([sys.executable, "-m", "ctinpaint.cli", "info", str(tmp_path / "g.zarr")],
                          capture_output=True, text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert not marker.exists()


# --------------------------------------------------------------------------- resource bounds


class _CountingModel(torch.nn.Module):
    """A real network that records how many fills each generator launch makes."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = build_model(config_for("unet", width=4)).eval()
        self.config = self.net.config
        self.launches: list[int] = []

    def condition(self, y, hole):
        return self.net.condition(y, hole)

    def sample_z(self, *args, **kwargs):
        return self.net.sample_z(*args, **kwargs)

    def generate(self, z, cond):
        self.launches.append(z.shape[0])
        return self.net.generate(z, cond)

    def generate_grouped(self, z, cond):  # z: (windows, samples, z_dim)
        self.launches.append(z.shape[0] * z.shape[1])
        return self.net.generate_grouped(z, cond)


def _windows(n):
    windows = np.full((n, 32, 32), 0.5, np.float32)
    masks = np.zeros((n, 32, 32), bool)
    masks[:, 10:20, 10:20] = True
    return windows, masks


def test_sample_fills_refuses_a_launch_larger_than_memory():
    windows, masks = _windows(2)
    with pytest.raises(ValueError, match=r"batch: .* would need at least .* GiB, more than the .* GiB of this machine"):
        sample_fills(build_model(config_for("unet", width=4)), windows, masks, n_samples=10**12, batch=10**12)


def test_many_samples_and_windows_are_processed_in_launches_of_batch():
    model = _CountingModel()
    windows, masks = _windows(40)
    stats = sample_fills(model, windows, masks, n_samples=500, batch=256, seed=0)
    assert max(model.launches) <= 256 and sum(model.launches) == 40 * 500
    assert np.isfinite(stats.mean).all() and (stats.std[stats.filled] > 0).all()


def test_inpainting_many_small_artifacts_keeps_launches_within_batch():
    model = _CountingModel()
    vol = np.random.default_rng(0).integers(0, 4000, (1, 96, 96)).astype(np.uint16)
    mask = np.zeros(vol.shape, bool)
    mask[0, 2:94:4, 2:94:4] = True  # 529 one-pixel artifacts, as many windows
    loaded = LoadedModel(model, IntensityMapping(low=0.0, high=4000.0, dtype="uint16"), {"step": 0})
    result = inpaint_volume(vol, mask, loaded, n_samples=4, batch=64)
    assert len(result.report) == 529 and all(r["status"] == "filled" for r in result.report)
    assert max(model.launches) <= 64 and sum(model.launches) == 529 * 4


def test_patch_sampler_and_training_refuse_a_batch_larger_than_memory(tmp_path):
    vol = np.zeros((2, 40, 40), np.uint8)
    with pytest.raises(ValueError, match="batch_size: one batch of patches would need"):
        PatchSampler(vol, batch_size=10**12)
    with pytest.raises(ValueError, match="batch_size"):
        train_model(make_phantom((4, 96, 96), seed=0), tmp_path / "run", model_config=config_for("unet", width=4),
                    config=TrainConfig(steps=1, batch_size=10**12, n_val=2, val_samples=2, device="cpu"), progress=False)
    assert not (tmp_path / "run" / "latest.json").exists()


def test_a_phantom_larger_than_memory_is_refused():
    with pytest.raises(ValueError, match=r"shape: a phantom of shape \(100000, 100000, 100000\) would need"):
        make_phantom((10**5, 10**5, 10**5))


def test_in_memory_inpainting_of_a_volume_larger_than_memory_is_refused():
    shape = (2**14, 2**14, 2**14)  # 8 TiB of uint16: lazy, nothing is computed
    vol = da.zeros(shape, dtype=np.uint16, chunks=(16, 1024, 1024))
    mask = da.zeros(shape, dtype=bool, chunks=(16, 1024, 1024))
    loaded = LoadedModel(build_model(config_for("unet", width=4)).eval(),
                         IntensityMapping(low=0.0, high=4000.0, dtype="uint16"), {"step": 0})
    with pytest.raises(ValueError, match="volume: the in-memory result would need .* pass out="):
        inpaint_volume(vol, mask, loaded, n_samples=4)


def test_loading_a_weights_file_larger_than_memory_is_refused_before_reading(run, monkeypatch):
    import ctinpaint._checks

    monkeypatch.setattr(ctinpaint._checks, "memory_limit", lambda device=None: 1024)
    with pytest.raises(ValueError, match="more than max_bytes=1024; not read"):
        load_model(run, device="cpu")
