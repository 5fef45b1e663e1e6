"""Tests for gan_zoo.training.loop: phases, logging, validation, previews, exact resume."""

from __future__ import annotations

import copy
import json
import pickle
import random
import time
from typing import NamedTuple

import numpy as np
import pytest
import torch
from torch import nn

from gan_zoo.training import LoopConfig, Phase, ema_update, load_checkpoint, load_networks, run_training, save_checkpoint

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


# --------------------------------------------------------------------------- a tiny GAN


class Batch(NamedTuple):
    real: object  # NumPy array from the data stream, a tensor once on the device
    index: torch.Tensor


class RandomBatches:
    """Endless, stateful stream of "real" samples drawn from its own NumPy generator."""

    def __init__(self, seed=5):
        self.rng = np.random.default_rng(seed)
        self.served = 0

    def __iter__(self):
        return self

    def __next__(self):
        self.served += 1
        return Batch(self.rng.normal(1.0, 0.5, size=(8, 6)).astype(np.float32), torch.tensor(self.served))

    def state_dict(self):
        return {"bit_generator": self.rng.bit_generator.state, "served": self.served}

    def load_state_dict(self, state):
        self.rng.bit_generator.state = state["bit_generator"]
        self.served = state["served"]


def make_gan(*, init_seed=0, width=16, crash_at=None, g_every=2, ema=False):
    """G and D with Adam, a scheduler, clipping, and losses drawing from torch, random and NumPy.

    With ``ema``, a moving average of G ("G_ema") follows G's steps.
    """
    torch.manual_seed(init_seed)
    gen = nn.Sequential(nn.Linear(4, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, 6))
    disc = nn.Sequential(nn.Linear(6, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-3, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(gen.parameters(), lr=1e-3, betas=(0.5, 0.999))
    sched_g = torch.optim.lr_scheduler.StepLR(opt_g, step_size=3, gamma=0.7)
    bce = nn.BCEWithLogitsLoss()

    def d_loss(batch, step):
        if step == crash_at:
            raise RuntimeError("power cut")
        real = batch.real
        noise = float(np.random.uniform(0.0, 0.1))  # NumPy's global generator
        label = 1.0 - 0.1 * random.random()  # Python's
        fake = gen(torch.randn(real.shape[0], 4, device=real.device)).detach()  # torch's
        real_logits = disc(real + noise * torch.randn_like(real))
        loss = bce(real_logits, torch.full_like(real_logits, label)) + bce(disc(fake), torch.zeros_like(real_logits))
        return loss, {"noise": noise, "real_logit": real_logits.mean().detach()}

    def g_loss(batch, step):
        logits = disc(gen(torch.randn(batch.real.shape[0], 4, device=batch.real.device)))
        return bce(logits, torch.ones_like(logits)), {}

    networks = {"G": gen, "D": disc}
    after_g = None
    if ema:
        networks["G_ema"] = copy.deepcopy(gen)

        def after_g(step):
            ema_update(networks["G_ema"], gen, step // g_every, decay=0.9)

    phases = [
        Phase("D", opt_d, d_loss, clip_grad=1.0),
        Phase("G", opt_g, g_loss, every=g_every, scheduler=sched_g, after_step=after_g),
    ]
    return networks, phases


def train_gan(out, steps, *, init_seed=0, data_seed=5, crash_at=None, log_every=1, progress=False, ema=False, **kwargs):
    networks, phases = make_gan(init_seed=init_seed, crash_at=crash_at, ema=ema)
    config = LoopConfig(steps=steps, checkpoint_every=5, log_every=log_every, seed=7, device="cpu")
    result = run_training(
        networks=networks, phases=phases, data=RandomBatches(data_seed), out_dir=out, config=config, progress=progress, **kwargs
    )
    return networks, phases, result


def strict_json(line: str):
    def refuse(token):
        raise ValueError(f"non-standard JSON constant {token}")

    return json.loads(line, parse_constant=refuse)


def read_log(out) -> list[dict]:
    return [strict_json(line) for line in (out / "log.jsonl").read_text().splitlines()]


def training_lines(out) -> dict[int, dict]:
    """Training log lines by step, without the wall-clock time."""
    return {r["step"]: {k: v for k, v in r.items() if k != "elapsed"} for r in read_log(out) if "validation" not in r}


def assert_same_weights(a: dict[str, nn.Module], b: dict[str, nn.Module]):
    for name in a:
        sa, sb = a[name].state_dict(), b[name].state_dict()
        assert sa.keys() == sb.keys()
        for key in sa:
            assert torch.equal(sa[key], sb[key]), f"{name}.{key} differs"


def assert_same_optimizers(a, b):
    for pa, pb in zip(a, b):
        sa, sb = pa.optimizer.state_dict(), pb.optimizer.state_dict()
        assert sa["param_groups"] == sb["param_groups"]
        for index, state in sa["state"].items():
            for key, value in state.items():
                assert torch.equal(value, sb["state"][index][key]), f"{pa.name} state {index}.{key}"


# --------------------------------------------------------------------------- exact resume


@pytest.mark.parametrize(("log_every", "ema"), [(1, False), (3, False), (1, True)])
def test_stopped_and_resumed_run_is_bit_identical(tmp_path, log_every, ema):
    whole, whole_phases, result = train_gan(tmp_path / "whole", 20, log_every=log_every, ema=ema)
    assert result.step == 20 and result.stopped_by == "steps" and result.resumed_from is None

    _, _, first = train_gan(tmp_path / "split", 8, log_every=log_every, ema=ema)
    assert first.step == 8
    # Fresh objects with other initial weights and another data seed: everything must come from the checkpoint.
    split, split_phases, second = train_gan(tmp_path / "split", 20, init_seed=1, data_seed=99, log_every=log_every, ema=ema)
    assert second.resumed_from == 8 and second.step == 20

    assert_same_weights(whole, split)
    if ema:
        assert not torch.equal(whole["G_ema"][0].weight, whole["G"][0].weight)
    assert_same_optimizers(whole_phases, split_phases)
    assert split_phases[1].scheduler.state_dict() == whole_phases[1].scheduler.state_dict()
    expected, got = training_lines(tmp_path / "whole"), training_lines(tmp_path / "split")
    resumed_steps = [s for s in expected if s > 8]
    assert resumed_steps and [s for s in got if s > 8] == resumed_steps
    for step in resumed_steps:
        assert got[step] == expected[step], f"log of step {step}"
    if log_every == 1:
        assert resumed_steps == list(range(9, 21))


def test_crashed_run_resumes_from_its_checkpoint_bit_identically(tmp_path, monkeypatch):
    whole, _, _ = train_gan(tmp_path / "whole", 20, log_every=3)
    with pytest.raises(RuntimeError, match="power cut"):
        train_gan(tmp_path / "crash", 20, crash_at=13, log_every=3)
    assert max(training_lines(tmp_path / "crash")) == 12  # logged past the checkpoint of step 10
    assert load_checkpoint(tmp_path / "crash", "latest")[1]["step"] == 10

    def forbidden(*args, **kwargs):
        raise AssertionError("resume must not unpickle")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    resumed, _, result = train_gan(tmp_path / "crash", 20, init_seed=3, log_every=3)
    assert result.resumed_from == 10
    assert_same_weights(whole, resumed)
    assert training_lines(tmp_path / "crash") == training_lines(tmp_path / "whole")
    steps = [r["step"] for r in read_log(tmp_path / "crash")]
    assert steps == sorted(set(steps))  # lines 11..12 of the crashed session were not kept twice


def test_finished_run_is_not_trained_again(tmp_path):
    first, _, _ = train_gan(tmp_path, 6)
    lines = (tmp_path / "log.jsonl").read_text()
    again, _, result = train_gan(tmp_path, 6, init_seed=5)
    assert result.step == 6 and result.resumed_from == 6 and result.logs == {} and result.stopped_by == "steps"
    assert_same_weights(first, again)
    assert (tmp_path / "log.jsonl").read_text() == lines


def test_resume_refuses_other_networks(tmp_path):
    train_gan(tmp_path, 3)
    networks, phases = make_gan()
    networks["E"] = nn.Linear(2, 2)
    config = LoopConfig(steps=6, device="cpu")
    with pytest.raises(ValueError, match=r"other networks.*only in this run: \['E'\]"):
        run_training(networks=networks, phases=phases, data=RandomBatches(), out_dir=tmp_path, config=config, progress=False)

    networks, phases = make_gan(width=32)
    before = {k: v.clone() for k, v in networks["D"].state_dict().items()}
    with pytest.raises(ValueError, match=r"network 'G', '0\.weight' has shape \(16, 4\) in the checkpoint but \(32, 4\)"):
        run_training(networks=networks, phases=phases, data=RandomBatches(), out_dir=tmp_path, config=config, progress=False)
    assert all(torch.equal(before[k], v) for k, v in networks["D"].state_dict().items())  # nothing half-loaded

    networks, phases = make_gan()
    phases[1].name = "Gen"
    with pytest.raises(ValueError, match=r"other optimizers.*only in the checkpoint: \['G'\]"):
        run_training(networks=networks, phases=phases, data=RandomBatches(), out_dir=tmp_path, config=config, progress=False)


def test_shared_optimizer_is_saved_once_and_resumes(tmp_path):
    def build():
        torch.manual_seed(0)
        net = nn.Linear(3, 1)
        opt = torch.optim.Adam(net.parameters(), lr=0.01)
        phases = [
            Phase("fit", opt, lambda x, step: ((net(x) - 1).pow(2).mean(), {})),
            Phase("reg", opt, lambda x, step: (1e-2 * net.weight.pow(2).sum(), {}), every=2),
        ]
        return {"net": net}, phases

    data = [torch.ones(4, 3), torch.zeros(4, 3), torch.full((4, 3), 2.0)]
    split, phases = build()
    run_training(networks=split, phases=phases, data=data, out_dir=tmp_path / "b", config=LoopConfig(steps=5, device="cpu"), progress=False)
    assert list(load_checkpoint(tmp_path / "b", "latest")[1]["optimizers"]) == ["fit"]
    split, phases = build()
    run_training(networks=split, phases=phases, data=data, out_dir=tmp_path / "b", config=LoopConfig(steps=8, device="cpu"), progress=False)
    meta = load_checkpoint(tmp_path / "b", "latest")[1]
    assert meta["step"] == 8 and list(meta["optimizers"]) == ["fit"]


# --------------------------------------------------------------------------- phases and stopping


def test_phases_run_at_their_intervals_in_order(tmp_path):
    calls = []
    net = nn.Linear(2, 1)
    opt_a = torch.optim.SGD([net.weight], lr=0.1)
    opt_b = torch.optim.SGD([net.bias], lr=0.1)
    sched_b = torch.optim.lr_scheduler.StepLR(opt_b, step_size=1, gamma=0.5)

    def recording(name):
        def loss(batch, step):
            calls.append((step, name))
            return net(batch).mean(), {}

        return loss

    phases = [Phase("a", opt_a, recording("a")), Phase("b", opt_b, recording("b"), every=3, scheduler=sched_b)]
    result = run_training(
        networks={"net": net}, phases=phases, data=[torch.ones(2, 2)], out_dir=tmp_path,
        config=LoopConfig(steps=10, log_every=5, device="cpu"), progress=False,
    )  # fmt: skip
    assert [s for s, n in calls if n == "a"] == list(range(1, 11))
    assert [s for s, n in calls if n == "b"] == [3, 6, 9]
    assert calls.index((3, "a")) < calls.index((3, "b"))
    assert opt_b.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)  # the scheduler counts b's updates
    lines = training_lines(tmp_path)
    assert sorted(lines) == [5, 10]
    assert lines[10]["b"]["lr"] == pytest.approx(0.1 * 0.5**3) and "b" in lines[5]
    assert result.logs["step"] == 10


def test_minutes_stop_the_run_early_and_say_so(tmp_path):
    net = nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)

    def slow_loss(batch, step):
        time.sleep(0.01)
        return net(batch).pow(2).mean(), {}

    result = run_training(
        networks={"net": net}, phases=[Phase("fit", opt, slow_loss)], data=[torch.ones(3, 2)], out_dir=tmp_path,
        config=LoopConfig(minutes=0.15 / 60, log_every=1000, checkpoint_every=1000, device="cpu"), progress=False,
    )  # fmt: skip
    assert result.stopped_by == "minutes"
    assert 1 <= result.step <= 15 and result.elapsed >= 0.15
    assert load_checkpoint(tmp_path, "latest")[1]["step"] == result.step  # written at the end
    assert read_log(tmp_path)[-1]["step"] == result.step

    capped = run_training(
        networks={"net": net}, phases=[Phase("fit", opt, slow_loss)], data=[torch.ones(3, 2)], out_dir=tmp_path / "b",
        config=LoopConfig(steps=3, minutes=10, device="cpu"), progress=False,
    )  # fmt: skip
    assert capped.stopped_by == "steps" and capped.step == 3


def test_data_is_iterated_again_and_running_dry_is_reported(tmp_path):
    net = nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    seen = []

    def loss(batch, step):
        seen.append(int(batch[0, 0]))
        return net(batch).mean(), {}

    batches = [torch.full((2, 2), float(i)) for i in range(3)]
    config = LoopConfig(steps=7, device="cpu")
    run_training(networks={"net": net}, phases=[Phase("f", opt, loss)], data=batches, out_dir=tmp_path / "a", config=config, progress=False)
    assert seen == [0, 1, 2, 0, 1, 2, 0]
    with pytest.raises(ValueError, match="ran out after 3 batches"):
        run_training(networks={"net": net}, phases=[Phase("f", opt, loss)], data=iter(batches), out_dir=tmp_path / "b", config=config, progress=False)
    with pytest.raises(ValueError, match="no batches"):
        run_training(networks={"net": net}, phases=[Phase("f", opt, loss)], data=[], out_dir=tmp_path / "c", config=config, progress=False)


# --------------------------------------------------------------------------- validation, best checkpoint, previews


def test_validation_is_logged_and_best_checkpoint_follows_the_metric(tmp_path):
    scores = {2: 1.0, 4: 3.0, 6: 2.0, 7: 0.5, 8: 2.5}
    snapshots = {}

    def make_validate(networks):
        def validate(step):
            assert not torch.is_grad_enabled() and not networks["G"].training
            snapshots[step] = {k: v.clone() for k, v in networks["G"].state_dict().items()}
            torch.randn(100), random.random(), np.random.rand()  # must not change the training run
            return {"score": scores[step], "as_tensor": torch.tensor(0.5)}

        return validate

    networks, phases = make_gan()
    config = LoopConfig(steps=7, validate_every=2, checkpoint_every=100, seed=7, device="cpu")
    result = run_training(
        networks=networks, phases=phases, data=RandomBatches(), out_dir=tmp_path, config=config,
        validate=make_validate(networks), best_metric=("score", "max"), progress=False,
    )  # fmt: skip
    assert networks["G"].training  # modes restored
    validations = [r for r in read_log(tmp_path) if "validation" in r]
    assert [r["step"] for r in validations] == [2, 4, 6, 7]
    assert validations[1]["validation"] == {"score": 3.0, "as_tensor": 0.5}
    assert result.best == tmp_path / "best.json" and result.best_value == 3.0
    fresh, _ = make_gan(init_seed=4)
    meta = load_networks(tmp_path, "best", {"G": fresh["G"]})
    assert meta["step"] == 4 and meta["best"]["value"] == 3.0
    for key, value in fresh["G"].state_dict().items():
        assert torch.equal(value, snapshots[4][key])

    # Validation drew random numbers, yet training is the same as without it.
    plain, _, _ = train_gan(tmp_path / "plain", 7)
    assert_same_weights(networks, plain)

    # Resumed, 2.5 at step 8 is not an improvement over the restored 3.0.
    networks, phases = make_gan()
    result = run_training(
        networks=networks, phases=phases, data=RandomBatches(), out_dir=tmp_path, config=LoopConfig(steps=8, validate_every=2, device="cpu"),
        validate=make_validate(networks), best_metric=("score", "max"), progress=False,
    )  # fmt: skip
    assert result.best_value == 3.0 and load_checkpoint(tmp_path, "best")[1]["step"] == 4


def test_best_metric_must_be_returned_by_validate(tmp_path):
    networks, phases = make_gan()
    with pytest.raises(ValueError, match="best_metric 'psnr' is not among"):
        run_training(
            networks=networks, phases=phases, data=RandomBatches(), out_dir=tmp_path, config=LoopConfig(steps=2, device="cpu"),
            validate=lambda step: {"ssim": 0.5}, best_metric=("psnr", "max"), progress=False,
        )  # fmt: skip


def test_previews_at_interval_and_end(tmp_path):
    networks, phases = make_gan()
    calls = []

    def preview(step, path):
        assert not networks["D"].training
        calls.append((step, path))
        path.write_bytes(b"png")

    run_training(
        networks=networks, phases=phases, data=RandomBatches(), out_dir=tmp_path,
        config=LoopConfig(steps=7, preview_every=3, device="cpu"), preview=preview, progress=False,
    )  # fmt: skip
    assert [s for s, _ in calls] == [3, 6, 7]
    assert calls[0][1] == tmp_path / "previews" / "step_0000003.png" and calls[0][1].exists()


# --------------------------------------------------------------------------- logs


def test_log_lines_are_strict_json_with_phase_entries(tmp_path):
    net = nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)

    def loss(batch, step):
        value = net(batch).pow(2).mean()
        return value, {"undefined": float("nan"), "on_device": value.detach() * 2, "count": step}

    result = run_training(
        networks={"net": net}, phases=[Phase("fit", opt, loss, clip_grad=0.5)], data=[torch.ones(4, 2)], out_dir=tmp_path,
        config=LoopConfig(steps=6, log_every=4, device="cpu"), progress=False,
    )  # fmt: skip
    lines = read_log(tmp_path)  # strict: no NaN constants
    assert [r["step"] for r in lines] == [4, 6]
    entry = lines[0]["fit"]
    assert set(entry) == {"loss", "grad_norm", "lr", "undefined", "on_device", "count"}
    assert entry["undefined"] is None and entry["count"] == 2.5 and entry["lr"] == 0.05
    assert entry["on_device"] == pytest.approx(2 * entry["loss"])
    assert lines[1]["fit"]["count"] == 5.5  # averaged over steps 5 and 6 only
    assert isinstance(lines[0]["elapsed"], float) and result.logs == lines[1]


def test_progress_bar_shows_steps(tmp_path, capsys):
    networks, phases = make_gan()
    run_training(networks=networks, phases=phases, data=RandomBatches(), out_dir=tmp_path, config=LoopConfig(steps=3, log_every=1, device="cpu"), progress=True)
    err = capsys.readouterr().err
    assert "3/3" in err and "D=" in err


def test_progress_callable_gets_every_log_line(tmp_path, capsys):
    calls = []
    _, _, result = train_gan(tmp_path, 7, log_every=3, progress=lambda step, total, line: calls.append((step, total, line)))
    # Every log line (steps 3, 6 and the final 7), exactly as written to log.jsonl; no tqdm bar.
    assert [(step, total) for step, total, _ in calls] == [(3, 7), (6, 7), (7, 7)]
    assert [line for _, _, line in calls] == read_log(tmp_path)
    assert calls[-1][2] == result.logs and "loss" in calls[-1][2]["D"]
    assert "7/7" not in capsys.readouterr().err


def test_stop_ends_the_run_with_a_checkpoint_and_resume_continues_exactly(tmp_path):
    import threading

    whole, _, _ = train_gan(tmp_path / "whole", 20, log_every=1)
    stop = threading.Event()

    def cancel_at_7(step, total, line):
        if step == 7:
            stop.set()

    _, _, result = train_gan(tmp_path / "cut", 20, log_every=1, progress=cancel_at_7, stop=stop)
    # Checked once per step, after the step: set while step 7 was logged, step 8 is the last one,
    # saved like a normal end.
    assert result.stopped_by == "cancelled" and result.step == 8
    assert load_checkpoint(tmp_path / "cut", "latest")[1]["step"] == 8
    assert max(training_lines(tmp_path / "cut")) == 8

    resumed, _, again = train_gan(tmp_path / "cut", 20, init_seed=4, log_every=1)
    assert again.resumed_from == 8 and again.step == 20 and again.stopped_by == "steps"
    assert_same_weights(whole, resumed)
    assert training_lines(tmp_path / "cut") == training_lines(tmp_path / "whole")


def test_stop_set_before_the_start_trains_one_step(tmp_path):
    import threading

    stop = threading.Event()
    stop.set()
    _, _, result = train_gan(tmp_path, 20, stop=stop)
    assert result.stopped_by == "cancelled" and result.step == 1 and result.latest is not None


def test_progress_and_stop_are_checked(tmp_path):
    with pytest.raises(TypeError, match="progress must be a bool or a callable"):
        train_gan(tmp_path, 2, progress="yes")
    with pytest.raises(TypeError, match="stop must have an is_set"):
        train_gan(tmp_path, 2, stop=True)
    assert not (tmp_path / "latest.json").exists()


# --------------------------------------------------------------------------- load_networks


def test_load_networks_is_strict(tmp_path):
    train_gan(tmp_path, 2)
    networks, _ = make_gan(init_seed=9)
    load_networks(tmp_path, "latest", networks)
    assert torch.equal(networks["G"][0].weight, load_checkpoint(tmp_path, "latest")[0]["networks.G.0.weight"])

    with pytest.raises(ValueError, match=r"has no network\(s\) \['X'\]"):
        load_networks(tmp_path, "latest", {"X": nn.Linear(2, 2)})
    bigger = nn.Sequential(nn.Linear(6, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1), nn.Linear(1, 1))
    with pytest.raises(ValueError, match=r"network 'D' does not match.*missing keys: \['3\.weight', '3\.bias'\]"):
        load_networks(tmp_path, "latest", {"D": bigger})
    smaller = nn.Sequential(nn.Linear(6, 16))
    with pytest.raises(ValueError, match=r"unexpected keys: \['2\.weight', '2\.bias'\]"):
        load_networks(tmp_path, "latest", {"D": smaller})
    save_checkpoint(tmp_path, "plain", tensors={"w": torch.ones(1)}, meta={})
    with pytest.raises(ValueError, match="not a training checkpoint"):
        load_networks(tmp_path, "plain", {"D": smaller})


# --------------------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, ValueError, "steps or minutes"),
        ({"steps": 0}, ValueError, "steps must be >= 1"),
        ({"steps": 1.5}, TypeError, "steps must be an integer"),
        ({"minutes": -1.0}, ValueError, "minutes must be positive"),
        ({"steps": 5, "log_every": 0}, ValueError, "log_every"),
        ({"steps": 5, "checkpoint_every": 0}, ValueError, "checkpoint_every"),
        ({"steps": 5, "validate_every": -1}, ValueError, "validate_every"),
        ({"steps": 5, "seed": -1}, ValueError, "seed"),
        ({"steps": 5, "seed": 2**32}, ValueError, "seed"),
        ({"steps": 5, "amp": "yes"}, TypeError, "amp"),
    ],
)
def test_loop_config_is_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        LoopConfig(**kwargs)


def test_phase_is_checked():
    opt = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="Phase name"):
        Phase("step", opt, lambda b, s: None)
    with pytest.raises(ValueError, match="Phase name"):
        Phase("a.b", opt, lambda b, s: None)
    with pytest.raises(ValueError, match="every must be >= 1"):
        Phase("G", opt, lambda b, s: None, every=0)
    with pytest.raises(TypeError, match="optimizer"):
        Phase("G", "adam", lambda b, s: None)
    with pytest.raises(ValueError, match="clip_grad"):
        Phase("G", opt, lambda b, s: None, clip_grad=0.0)
    with pytest.raises(TypeError, match="after_step must be callable"):
        Phase("G", opt, lambda b, s: None, after_step="ema")


def test_after_step_runs_after_each_update_without_gradients(tmp_path):
    net = nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    seen = []

    def after(step):
        # After the update: the weights already moved; and nothing here is recorded for autograd.
        seen.append((step, net.weight.detach().clone(), torch.is_grad_enabled()))

    start = net.weight.detach().clone()
    run_training(
        networks={"net": net}, phases=[Phase("fit", opt, lambda b, s: (net(b).pow(2).mean(), {}), every=2, after_step=after)],
        data=[torch.ones(2, 2)], out_dir=tmp_path, config=LoopConfig(steps=5, device="cpu"), progress=False,
    )  # fmt: skip
    assert [step for step, _, _ in seen] == [2, 4]
    assert not any(grad for _, _, grad in seen)
    assert not torch.equal(seen[0][1], start) and torch.equal(seen[1][1], net.weight.detach())


def test_ema_update_follows_its_warm_up_and_copies_integer_buffers():
    torch.manual_seed(0)
    source = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    average = copy.deepcopy(source)
    originals = {k: v.clone() for k, v in average.state_dict().items()}
    with torch.no_grad():
        for p in source.parameters():
            p.add_(1.0)
    source.train()(torch.randn(4, 3))  # moves running stats and num_batches_tracked
    for step, decay in ((1, 2 / 11), (10, 11 / 20), (10_000, 0.99)):
        avg = copy.deepcopy(average)
        ema_update(avg, source, step, decay=0.99)
        for key, value in avg.state_dict().items():
            theirs = source.state_dict()[key]
            if value.is_floating_point():
                assert torch.allclose(value, decay * originals[key] + (1 - decay) * theirs), (step, key)
            else:
                assert torch.equal(value, theirs)
    # The source is only read.
    assert source[1].num_batches_tracked.item() == 1


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"step": 0}, ValueError, "step must be >= 1"),
    ({"step": 1, "decay": 1.0}, ValueError, "decay must be in"),
    ({"step": 1, "decay": -0.1}, ValueError, "decay must be in"),
])  # fmt: skip
def test_ema_update_is_checked(kwargs, error, match):
    net = nn.Linear(1, 1)
    with pytest.raises(error, match=match):
        ema_update(copy.deepcopy(net), net, **kwargs)


def _run_one(tmp_path, loss, *, params=None, **kwargs):
    net = nn.Linear(2, 1)
    opt = torch.optim.SGD(params if params is not None else net.parameters(), lr=0.1)
    return run_training(
        networks={"net": net}, phases=[Phase("fit", opt, lambda b, s: loss(net, b))], data=[torch.ones(2, 2)],
        out_dir=tmp_path, config=LoopConfig(steps=2, device="cpu"), progress=False, **kwargs,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("loss", "error", "match"),
    [
        (lambda net, b: net(b).mean(), TypeError, r"must return \(scalar tensor, dict of logs\)"),
        (lambda net, b: (net(b), {}), ValueError, "must be a scalar tensor, got \\(2, 1\\)"),
        (lambda net, b: (torch.tensor(1.0), {}), ValueError, "does not depend on any trainable parameter"),
        (lambda net, b: (net(b).mean(), {"loss": 1.0}), ValueError, "reserved"),
        (lambda net, b: (net(b).mean(), {"x": "text"}), TypeError, "must be a number or a scalar tensor"),
    ],
)
def test_bad_loss_results_are_reported(tmp_path, loss, error, match):
    with pytest.raises(error, match=match):
        _run_one(tmp_path, loss)


def test_other_arguments_are_checked(tmp_path):
    good = lambda net, b: (net(b).mean(), {})  # noqa: E731
    with pytest.raises(ValueError, match="belongs to none of `networks`"):
        _run_one(tmp_path, good, params=[nn.Parameter(torch.ones(1))])
    with pytest.raises(ValueError, match="best_metric needs validate"):
        _run_one(tmp_path, good, best_metric=("psnr", "max"))
    with pytest.raises(ValueError, match="best_metric must be"):
        _run_one(tmp_path, good, validate=lambda s: {}, best_metric=("psnr", "largest"))
    with pytest.raises(TypeError, match="not JSON data"):
        _run_one(tmp_path, good, meta={"shape": object()})
    net = nn.Linear(1, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    phase = Phase("p", opt, lambda b, s: (net(b).mean(), {}))
    with pytest.raises(ValueError, match=r"repeated: \['p'\]"):
        run_training(networks={"n": net}, phases=[phase, phase], data=[1], out_dir=tmp_path, config=LoopConfig(steps=1), progress=False)
    assert not (tmp_path / "latest.json").exists()


# --------------------------------------------------------------------------- CUDA (run where a GPU exists)


@needs_cuda
def test_cuda_run_with_amp_resumes(tmp_path):
    networks, phases = make_gan()
    config = LoopConfig(steps=6, checkpoint_every=3, device="cuda", amp=True)
    pinned = [Batch(torch.randn(8, 6).pin_memory(), torch.tensor(0)) for _ in range(3)]
    run_training(networks=networks, phases=phases, data=pinned, out_dir=tmp_path, config=config, progress=False)
    assert all(p.is_cuda for p in networks["G"].parameters())
    networks, phases = make_gan(init_seed=2)
    result = run_training(networks=networks, phases=phases, data=pinned, out_dir=tmp_path, config=LoopConfig(steps=9, device="cuda"), progress=False)
    assert result.resumed_from == 6 and result.step == 9
    assert all(torch.isfinite(p).all() for p in networks["G"].parameters())
    fresh, _ = make_gan(init_seed=3)
    load_networks(tmp_path, "latest", fresh, device="cuda")
    assert_same_weights(networks, fresh)
