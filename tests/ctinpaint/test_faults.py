"""Faults done for real: jobs killed with SIGKILL, a full disk, a read-only folder, two jobs on one output.

Every job here is a separate Python process (the ``ctinpaint`` command line via
``python -m ctinpaint.cli``, or a small script calling the library), killed
with ``os.kill(pid, SIGKILL)`` at seeded random moments after its log or its
partial output shows progress, then run again with the same arguments. The
re-run's result is compared bit for bit with a run that was never interrupted.

The disk-full and read-only cases mount a small tmpfs when the tests run as
root and ``mount`` works; otherwise the disk-full case raises ENOSPC from Zarr's
store write inside the process (and says so in its skip/parameter id), and the
read-only case uses ``chmod``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ctinpaint.inpaint import inpaint_volume
from ctinpaint.intensity import IntensityMapping
from ctinpaint.io import OutputLock, open_mask, open_volume, save_volume
from ctinpaint.models import config_for
from ctinpaint.phantom import add_artifacts, make_phantom
from ctinpaint.train import TrainConfig, load_model, train_model
from gan_zoo.training import load_checkpoint

REPO = Path(__file__).resolve().parents[2]
SHAPE = (12, 64, 64)
SAMPLES = "200"


# Like the subprocesses (OMP_NUM_THREADS=1): in-process results then match theirs bit for bit.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _env() -> dict:
    """The subprocesses import this checkout's code, on one thread each (2 shared cores)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path, with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for name, data in _tree(root).items():
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def _wait_until(condition, proc, timeout=60.0, poll=0.002) -> bool:
    """Poll ``condition`` until it holds (True) or ``proc`` ends (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(poll)
    proc.kill()
    raise AssertionError("the job made no progress in time")


def _kill(proc) -> bool:
    """SIGKILL ``proc``; True when it was still running (really killed)."""
    alive = proc.poll() is None
    if alive:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return alive and proc.returncode == -signal.SIGKILL


# --------------------------------------------------------------------------- training killed

_TRAIN_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    torch.set_num_threads(1)
    from ctinpaint.intensity import IntensityMapping
    from ctinpaint.models import config_for
    from ctinpaint.phantom import make_phantom
    from ctinpaint.train import TrainConfig, train_model

    config = TrainConfig(steps=int(sys.argv[2]), batch_size=8, n_val=4, val_samples=2, validate_every=4,
                         checkpoint_every=2, log_every=1, device="cpu")
    result = train_model(make_phantom((4, 96, 96), seed=0), sys.argv[1], model_config=config_for("unet", width=4),
                         config=config, intensity=IntensityMapping(low=9000.0, high=52000.0, dtype="uint16"),
                         progress=False)
    print("trained", result.step, "resumed from", result.resumed_from)
    """
)


def _logged_steps(run: Path) -> int:
    try:
        lines = (run / "log.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return 0
    steps = []
    for line in lines:
        try:
            steps.append(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            pass  # a line being written
    return max(steps, default=0)


def _log_without_times(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "elapsed"} for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_training_killed_at_random_moments_resumes_to_identical_weights(tmp_path):
    script = tmp_path / "train_job.py"
    script.write_text(_TRAIN_SCRIPT)
    steps = "20"
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    # The uninterrupted run goes on beside the killed ones.
    reference = subprocess.Popen([sys.executable, str(script), str(whole), steps], env=_env(),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    rng = random.Random(5)
    kills = []
    for _ in range(3):
        before = _logged_steps(killed)
        proc = subprocess.Popen([sys.executable, str(script), str(killed), steps], env=_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if _wait_until(lambda: _logged_steps(killed) > before, proc):
            time.sleep(rng.uniform(0.0, 0.4))
        if _kill(proc):
            kills.append(_logged_steps(killed))
    assert len(kills) >= 2, kills  # the job really died mid-run, several times
    final = subprocess.run([sys.executable, str(script), str(killed), steps], env=_env(), capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    assert "trained 20" in final.stdout
    out, err = reference.communicate()
    assert reference.returncode == 0, err

    ref_tensors, ref_meta = load_checkpoint(whole, "latest")
    got_tensors, got_meta = load_checkpoint(killed, "latest")
    assert ref_meta["step"] == got_meta["step"] == 20
    assert ref_tensors.keys() == got_tensors.keys()
    for key in ref_tensors:
        if key.startswith(("networks.", "optimizers.")):
            assert torch.equal(ref_tensors[key], got_tensors[key]), key
    a, b = load_model(whole, device="cpu").model.state_dict(), load_model(killed, device="cpu").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _log_without_times(killed) == _log_without_times(whole)
    # Nothing half-written is left: no temporary files, one weights file per checkpoint.
    names = sorted(p.name for p in killed.iterdir())
    assert not [n for n in names if n.endswith(".tmp")], names
    assert len([n for n in names if n.startswith("latest.") and n.endswith(".safetensors")]) == 1


# --------------------------------------------------------------------------- inpainting killed


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny trained model (2 steps): what matters here is the files, not the fills."""
    out = tmp_path_factory.mktemp("model")
    train_model(
        make_phantom((4, 96, 96), seed=0), out, model_config=config_for("unet", width=4),
        config=TrainConfig(steps=2, batch_size=4, n_val=2, val_samples=2, device="cpu"), progress=False,
    )
    return out


@pytest.fixture(scope="module")
def scan(tmp_path_factory) -> Path:
    """An input group (volume + mask) in chunks of 2 slices, so inpainting writes 6 slabs.

    The last slab has no artifact: its ``std`` chunk stays unwritten (all zero).
    """
    corrupted = add_artifacts(make_phantom(SHAPE, seed=0), n=24, seed=0)
    mask = corrupted.mask.copy()
    mask[10:] = False
    path = tmp_path_factory.mktemp("scan") / "scan.zarr"
    save_volume({"volume": corrupted.volume, "mask": mask}, path, chunks=(2, 64, 64))
    return path


def _inpaint_command(scan: Path, model: Path, out: Path, *extra) -> list[str]:
    return [
        sys.executable, "-m", "ctinpaint.cli", "inpaint", str(scan), "--key", "volume", "--mask", str(scan),
        "--mask-key", "mask", "--model", str(model), "--out", str(out), "--samples", SAMPLES, "--device", "cpu", *extra,
    ]


def _run(command) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=_env(), capture_output=True, text=True)


@pytest.fixture(scope="module")
def reference(scan, model_dir, tmp_path_factory) -> Path:
    """The uninterrupted run."""
    out = tmp_path_factory.mktemp("reference") / "out.zarr"
    done = _run(_inpaint_command(scan, model_dir, out))
    assert done.returncode == 0, done.stderr
    return out


def _markers(partial: Path) -> set[int]:
    try:
        return {int(p.stem) for p in (partial / "slabs").glob("*.json")}
    except (FileNotFoundError, ValueError):
        return set()


def _chunk_times(partial: Path) -> dict[str, int]:
    """Modification times of the chunk files of slabs with no marker yet (slab i = chunk i along Z)."""
    done = _markers(partial)
    found = {}
    for array in ("inpainted", "std"):
        root = partial / array / "c"
        try:
            for p in root.rglob("*"):
                z = p.relative_to(root).parts[0]
                if z.isdigit() and int(z) not in done:
                    found[str(p)] = p.stat().st_mtime_ns
        except (FileNotFoundError, OSError):
            pass  # renamed or removed while looking
    return found


@pytest.mark.slow
def test_inpainting_killed_mid_write_resumes_to_the_same_store(scan, model_dir, reference, tmp_path):
    out = tmp_path / "out.zarr"
    partial = tmp_path / ".out.zarr.partial"
    input_digest = _digest(scan)
    command = _inpaint_command(scan, model_dir, out)
    rng = random.Random(11)
    kills = []

    # 1: at a random moment after the first slab is done.
    proc = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if _wait_until(lambda: len(_markers(partial)) >= 1, proc):
        time.sleep(rng.uniform(0.0, 0.3))
    kills.append(("random", _kill(proc), len(_markers(partial))))

    # 2: the moment a slab has written a chunk but not yet its marker (inside the slab's write).
    left = _chunk_times(partial)
    proc = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_until(lambda: _chunk_times(partial).items() - left.items(), proc, poll=0.0005)
    kills.append(("in a slab write", _kill(proc), len(_markers(partial))))
    assert sum(killed for _, killed, _ in kills) == 2, kills
    assert not out.exists() and partial.exists()

    # What a kill inside a single chunk write leaves (too short a window to hit on purpose): a torn
    # temporary beside a chunk, a torn chunk and a stale chunk where the final result writes none.
    unfinished = sorted(set(range(6)) - _markers(partial))
    assert unfinished, "every slab finished before the kill"
    slab = unfinished[0]
    chunk = partial / "inpainted" / "c" / str(slab) / "0" / "0"
    chunk.parent.mkdir(parents=True, exist_ok=True)
    (chunk.parent / f"0.{'ab' * 16}.partial").write_bytes(b"\x28\xb5\x2f\xfd torn")
    chunk.write_bytes(chunk.read_bytes()[:7] if chunk.exists() else b"\x28\xb5\x2f")
    stale = partial / "std" / "c" / "5" / "0" / "0"
    if 5 not in _markers(partial):
        stale.parent.mkdir(parents=True, exist_ok=True)
        stale.write_bytes(b"stale bytes from another run")

    # 3: one more random kill, then the run that finishes.
    proc = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_until(lambda: len(_markers(partial)) > len(set(range(6)) - set(unfinished)), proc)
    time.sleep(rng.uniform(0.0, 0.2))
    kills.append(("random", _kill(proc), len(_markers(partial))))
    done = _run(command)
    assert done.returncode == 0, done.stderr

    assert _tree(out) == _tree(reference)  # same files, same bytes: no torn, stale or extra chunk
    assert not (tmp_path / ".out.zarr.partial").exists() and not (tmp_path / ".out.zarr.creating").exists()
    assert not (tmp_path / ".out.zarr.lock").exists()
    assert _digest(scan) == input_digest  # the input store's bytes never changed
    np.testing.assert_array_equal(open_volume(out, key="inpainted").compute(), open_volume(reference, key="inpainted").compute())


def test_run_killed_while_finishing_resumes(scan, model_dir, reference, tmp_path):
    # A kill inside finish() after the slab markers were removed, before the rename: the state
    # is made here directly, since that window is microseconds wide.
    out = tmp_path / "out.zarr"
    proc = subprocess.Popen(_inpaint_command(scan, model_dir, out), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = tmp_path / ".out.zarr.partial"
    _wait_until(lambda: len(_markers(partial)) >= 2, proc)
    _kill(proc)
    shutil.rmtree(partial / "slabs")
    done = _run(_inpaint_command(scan, model_dir, out))
    assert done.returncode == 0, done.stderr
    assert _tree(out) == _tree(reference)


# --------------------------------------------------------------------------- two jobs, one output


def test_second_inpainting_job_on_the_same_output_is_refused(scan, model_dir, reference, tmp_path):
    out = tmp_path / "out.zarr"
    command = _inpaint_command(scan, model_dir, out)
    first = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lock = tmp_path / ".out.zarr.lock"
    assert _wait_until(lock.exists, first)
    os.kill(first.pid, signal.SIGSTOP)  # holds the lock while the second job starts
    try:
        second = _run(command)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert second.returncode == 2
    assert "out: another job is writing" in second.stderr
    _, err = first.communicate()
    assert first.returncode == 0, err
    assert _tree(out) == _tree(reference)


def test_a_killed_job_leaves_no_lock_that_blocks_the_next(tmp_path):
    # The kernel drops a flock when its holder dies, even by SIGKILL.
    script = tmp_path / "hold.py"
    script.write_text(
        "import sys, time\nfrom pathlib import Path\nfrom ctinpaint.io import OutputLock\n"
        "lock = OutputLock(Path(sys.argv[1]), name='out')\nprint('held', flush=True)\ntime.sleep(60)\n"
    )
    target = tmp_path / "out.zarr"
    holder = subprocess.Popen([sys.executable, str(script), str(target)], env=_env(), stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(ValueError, match="out: another job is writing"):
        OutputLock(target, name="out")
    assert _kill(holder)
    lock = OutputLock(target, name="out")
    with pytest.raises(ValueError, match="another job"):
        OutputLock(target, name="out")  # also within one process
    lock.release()
    assert not (tmp_path / ".out.zarr.lock").exists()
    OutputLock(target, name="out").release()


def test_second_training_in_the_same_folder_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with OutputLock(run, name="out_dir", lock_file=run / ".lock"):
        with pytest.raises(ValueError, match="out_dir: another job"):
            train_model(make_phantom((4, 96, 96), seed=0), run, model_config=config_for("unet", width=4),
                        config=TrainConfig(steps=1, batch_size=4, n_val=2, val_samples=2, device="cpu"), progress=False)
    assert not (run / "latest.json").exists()


# --------------------------------------------------------------------------- disk full, read-only folder


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    return done.returncode == 0


def _umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 96 KiB tmpfs; skips where this machine does not allow mounting one (not root)."""
    where = tmp_path / "small"
    if not _mount_tmpfs(where, "96k"):
        pytest.skip("mounting a small tmpfs needs root; the injected-ENOSPC tests cover the same paths")
    try:
        yield where
    finally:
        _umount(where)


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_inpainting_on_a_small_tmpfs(scan, model_dir, reference, small_disk):
    input_digest = _digest(scan)
    out = small_disk / "out.zarr"
    failed = _run(_inpaint_command(scan, model_dir, out))
    assert failed.returncode == 1, failed.stderr
    assert "No space left on device" in failed.stderr and "Traceback" not in failed.stderr
    assert not out.exists()  # nothing under the final name
    assert not (small_disk / ".out.zarr.lock").exists()
    # Room made: the same command resumes what was written and completes.
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    done = _run(_inpaint_command(scan, model_dir, out))
    assert done.returncode == 0, done.stderr
    assert _tree(out) == _tree(reference)
    assert _digest(scan) == input_digest


def test_disk_full_injected_at_the_store_write(scan, model_dir, reference, tmp_path, monkeypatch):
    # Where no tmpfs can be mounted: ENOSPC raised by Zarr's local store after a few writes, in this process.
    import zarr.storage

    input_digest = _digest(scan)
    calls = {"n": 0}
    real = zarr.storage.LocalStore.set

    async def full_after_a_few(self, key, value):
        calls["n"] += 1
        if calls["n"] > 8:
            _enospc()
        return await real(self, key, value)

    monkeypatch.setattr(zarr.storage.LocalStore, "set", full_after_a_few)
    model = load_model(model_dir, device="cpu")
    vol, msk = open_volume(scan, key="volume"), open_mask(scan, key="mask")
    out = tmp_path / "out.zarr"
    with pytest.raises(OSError, match="No space left"):
        inpaint_volume(vol, msk, model, n_samples=int(SAMPLES), out=out)
    assert calls["n"] > 8 and not out.exists()
    assert (tmp_path / ".out.zarr.partial").exists() and not (tmp_path / ".out.zarr.lock").exists()
    monkeypatch.undo()
    inpaint_volume(vol, msk, model, n_samples=int(SAMPLES), out=out)
    np.testing.assert_array_equal(open_volume(out, key="inpainted").compute(),
                                  open_volume(reference, key="inpainted").compute())
    assert _digest(scan) == input_digest


@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
@pytest.mark.parametrize("how", ["tmpfs", "injected"])
def test_disk_full_while_saving_leaves_nothing(request, tmp_path, monkeypatch, suffix, how):
    data = np.random.default_rng(0).integers(0, 60000, (8, 64, 64)).astype(np.uint16)  # 64 KiB, hardly compressible
    before = data.copy()
    if how == "tmpfs":
        folder = request.getfixturevalue("small_disk")
        (folder / "filler").write_bytes(b"\0" * 48 * 1024)
    else:
        import tifffile
        import zarr.storage

        folder = tmp_path / "folder"
        folder.mkdir()
        (folder / "filler").write_bytes(b"")
        monkeypatch.setattr(zarr.storage.LocalStore, "set", _enospc)
        monkeypatch.setattr(tifffile, "imwrite", _enospc)
    with pytest.raises(OSError) as info:
        save_volume(data, folder / f"v{suffix}")
    # The system's ENOSPC, or tifffile's own check of a short write.
    assert info.value.errno == errno.ENOSPC or "written" in str(info.value), info.value
    assert sorted(p.name for p in folder.iterdir()) == ["filler"]  # no temporary, nothing under the name
    np.testing.assert_array_equal(data, before)


def test_disk_full_while_training_keeps_nothing_half_written(small_disk):
    run = small_disk / "run"
    config = TrainConfig(steps=2, batch_size=4, n_val=2, val_samples=2, device="cpu", checkpoint_every=1)
    with pytest.raises(OSError) as info:
        train_model(make_phantom((4, 96, 96), seed=0), run, model_config=config_for("unet", width=8), config=config,
                    progress=False)
    assert info.value.errno == errno.ENOSPC
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
    if (run / "latest.json").exists():  # whatever checkpoint is there loads whole
        load_checkpoint(run, "latest")
    assert not (run / ".lock").exists()


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody may write to: a read-only tmpfs for root, chmod 0o555 otherwise."""
    where = tmp_path / "ro"
    if os.geteuid() == 0:
        if not _mount_tmpfs(where, "1m"):
            pytest.skip("root cannot be kept from writing to a folder without mounting a read-only file system")
        subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
        try:
            yield where
        finally:
            _umount(where)
    else:
        where.mkdir()
        where.chmod(0o555)
        try:
            yield where
        finally:
            where.chmod(0o755)


def test_unwritable_output_is_refused_before_any_work(scan, model_dir, read_only_folder, tmp_path):
    input_digest = _digest(scan)
    failed = _run(_inpaint_command(scan, model_dir, read_only_folder / "out.zarr"))
    assert failed.returncode == 2
    assert "out: the folder" in failed.stderr and "not writable" in failed.stderr
    with pytest.raises(ValueError, match="path: the folder .* is not writable"):
        save_volume(np.zeros((2, 8, 8), np.uint8), read_only_folder / "v.zarr")
    with pytest.raises(ValueError, match="out_dir"):
        train_model(np.zeros((2, 96, 96), np.uint8), read_only_folder / "run", progress=False)
    assert list(read_only_folder.iterdir()) == []
    assert _digest(scan) == input_digest


def test_an_old_output_aside_from_a_killed_replace_does_not_block_overwrite(tmp_path):
    # finish() used to park the old output under one fixed name; a leftover there made every later
    # overwrite fail with an OSError.
    vol = np.random.default_rng(0).integers(0, 4000, (2, 40, 40)).astype(np.uint16)
    mask = np.zeros(vol.shape, bool)
    mask[1, 10:14, 10:14] = True
    from ctinpaint.models import build_model
    from ctinpaint.train import LoadedModel

    torch.manual_seed(0)
    model = LoadedModel(build_model(config_for("unet", width=4)).eval(),
                        IntensityMapping(low=0.0, high=4000.0, dtype="uint16"), {"step": 0})
    out = tmp_path / "out.zarr"
    inpaint_volume(vol, mask, model, n_samples=4, out=out)
    (tmp_path / ".out.zarr.old").mkdir()
    (tmp_path / ".out.zarr.old" / "junk").write_text("left by a killed run")
    result = inpaint_volume(vol, mask, model, n_samples=4, out=out, overwrite=True, seed=1)
    assert result.out == out and (out / "report.json").exists()


def test_a_copy_of_the_lock_sent_to_a_worker_holds_nothing(tmp_path):
    # Dask workers receive the output store (and its lock) by pickle; only the owner may release.
    import pickle

    target = tmp_path / "out.zarr"
    lock = OutputLock(target, name="out")
    copy = pickle.loads(pickle.dumps(lock))
    copy.release()
    with pytest.raises(ValueError, match="another job"):
        OutputLock(target, name="out")
    lock.release()
    OutputLock(target, name="out").release()
