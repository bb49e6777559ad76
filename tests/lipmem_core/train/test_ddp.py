"""torchrun with 2 CPU processes (gloo): identical parameters, gradients equal to 1 process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.lipmem_core.train.ddp_worker import run_one_step
from tests.lipmem_core.train.test_train import TINY
from tests.tiny_corpus import make_tiny_corpus

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    clips = [("train", "s1", "a", 12), ("train", "s2", "b", 10), ("val", "s3", "c", 12)]
    return make_tiny_corpus(root, clips, size=32)


def test_ddp_gradients_match_one_process(corpus, tmp_path):
    _torchrun(
        str(Path(__file__).with_name("ddp_worker.py")), "--data", str(corpus), "--out", str(tmp_path / "ddp")
    )
    run_one_step(corpus, tmp_path / "single", global_batch=4)
    r0, r1 = (load_file(str(tmp_path / "ddp" / f"rank{r}.safetensors")) for r in (0, 1))
    one = load_file(str(tmp_path / "single" / "rank0.safetensors"))
    # the two ranks saw disjoint halves of the single process's batch
    seen = sorted(r0["starts"].tolist() + r1["starts"].tolist())
    assert seen == sorted(one["starts"].tolist()) and not set(r0["starts"].tolist()) & set(
        r1["starts"].tolist()
    )
    keys = [k for k in one if k != "starts"]
    assert any(k.startswith("grad/disc/") for k in keys)
    for k in keys:
        assert torch.equal(r0[k], r1[k]), f"{k} differs between ranks"
        # float32 sums in another order: ~1e-4 at worst (a 20k-pixel bias sum); a DDP bug
        # (summed instead of averaged, unsynced ranks) is off by O(1)
        err = (r0[k].double() - one[k].double()).norm() / (one[k].double().norm() + 1e-12)
        assert err < 1e-3, f"{k}: DDP != one process (relative error {err:.2e})"
    assert any(r0[k].abs().sum() > 0 for k in keys if k.startswith("grad/gen/"))


def test_torchrun_cli_writes_once(corpus, tmp_path):
    out = tmp_path / "sync"
    _torchrun("-m", "lipmem_core.train_syncnet", "--data", str(corpus), "--out", str(out), "--steps", "2",
              "--batch-size", "4", "--log-every", "1", "--val-every", "2", *TINY)  # fmt: skip
    meta = json.loads((out / "checkpoint" / "config.json").read_text())["metadata"]
    assert meta["world_size"] == 2 and meta["steps"] == 2
    lines = (out / "log.csv").read_text().splitlines()
    assert len(lines) == 3  # header + one row per step, written by rank 0 only
    assert json.loads((out / "state.json").read_text())["step"] == 2
