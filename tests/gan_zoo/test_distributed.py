"""Tests for gan_zoo.training.distributed: the shared loop under torchrun, two real gloo processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gan_zoo.training import data_parallel, init_distributed, rank_and_world

REPO = Path(__file__).resolve().parents[2]

# Trains a small regression net on fixed data with the shared loop. Each of the
# WORLD_SIZE processes takes its share of every global batch of BATCH rows, so
# the averaged gradients of two processes equal the gradient of one process
# that sees the whole batch, and the weights must agree up to float rounding.
SCRIPT = """
import json, sys
from pathlib import Path
import torch
from safetensors.torch import save_file
from gan_zoo.training import LoopConfig, Phase, data_parallel, init_distributed, rank_and_world, run_training

out, batch, steps = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
init_distributed("cpu")
rank, world = rank_and_world()
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
x = torch.randn(32, batch, 4, generator=torch.Generator().manual_seed(1))
y = torch.sin(x.sum(-1, keepdim=True))
share = batch // world


class Batches:
    def __init__(self):
        self.position = 0

    def __iter__(self):
        return self

    def __next__(self):
        i = self.position % len(x)
        self.position += 1
        rows = slice(rank * share, (rank + 1) * share)
        return x[i, rows], y[i, rows]

    def state_dict(self):
        return {"position": self.position}

    def load_state_dict(self, state):
        self.position = state["position"]


model = data_parallel(net)
phase = Phase("fit", optimizer, lambda b, step: ((model(b[0]) - b[1]).pow(2).mean(), {}))
result = run_training(networks={"net": net}, phases=[phase], data=Batches(), out_dir=out,
                      config=LoopConfig(steps=steps, log_every=5, checkpoint_every=5, device="cpu"), progress=False)
save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out / f"rank{rank}.safetensors"))
(out / f"rank{rank}.json").write_text(json.dumps({"step": result.step, "resumed_from": result.resumed_from,
                                                  "world": world, "wrapped": model is not net}))
"""


def _run(tmp_path: Path, out: Path, *, processes: int, batch: int = 16, steps: int = 20) -> None:
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    args = [str(out), str(batch), str(steps)]
    if processes == 1:
        import runpy

        saved = sys.argv
        sys.argv = [str(script), *args]
        try:
            runpy.run_path(str(script), run_name="__main__")
        finally:
            sys.argv = saved
        return
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", str(script)]
    result = subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_two_processes_resume_and_match_one_process_with_the_whole_batch(tmp_path):
    ddp = tmp_path / "ddp"
    _run(tmp_path, ddp, processes=2, steps=10)
    _run(tmp_path, ddp, processes=2, steps=20)  # every rank resumes from rank 0's step-10 checkpoint
    _run(tmp_path, tmp_path / "single", processes=1)
    info = [json.loads((ddp / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(i["world"] == 2 and i["wrapped"] and i["resumed_from"] == 10 and i["step"] == 20 for i in info)
    rank0, rank1 = load_file(ddp / "rank0.safetensors"), load_file(ddp / "rank1.safetensors")
    single = load_file(tmp_path / "single" / "rank0.safetensors")
    for key in single:
        assert torch.equal(rank0[key], rank1[key]), key  # identical on every rank
        # Gradients averaged over two halves == the gradient of the whole batch, up to float rounding.
        torch.testing.assert_close(rank0[key], single[key], rtol=1e-5, atol=1e-6)
    # Only rank 0 wrote the log: one line per logged step, not two.
    steps = [json.loads(line)["step"] for line in (ddp / "log.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 15, 20]


def test_single_process_helpers():
    assert init_distributed("cpu") is False
    assert rank_and_world() == (0, 1)
    net = torch.nn.Linear(2, 1)
    assert data_parallel(net) is net


def test_bad_device_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="device"):
        init_distributed("tpu")
