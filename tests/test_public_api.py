"""The public API: the README's Python example runs as written (on a tiny checkpoint), the
package imports stay cheap, and a checkpoint's kind is checked in one place."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import analysis
import lipmem_core as lm
from analysis.addressing import weights
from lipmem_core.audio import load_audio, num_frames
from lipmem_core.checkpoint import save_checkpoint
from lipmem_core.errors import CheckpointError
from lipmem_core.model.generator import LipMemGenerator
from lipmem_core.model.syncnet import SyncNet
from lipmem_core.phones import SILENCE
from tests.tiny_model import tiny_config

ROOT = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Use it from Python") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    cfg = tiny_config(img_size=64, face_widths=(8, 8, 16, 16, 32, 32))
    return {
        "generator": save_checkpoint(root / "gen", LipMemGenerator(cfg), "generator", {"steps": 0}),
        "syncnet": save_checkpoint(root / "sync", SyncNet(cfg), "syncnet", {"steps": 0}),
    }


def test_readme_example_runs_as_written(checkpoints, monkeypatch):
    code = readme_example()
    assert len(code.strip().splitlines()) <= 5
    assert '"checkpoints/lipmem-synthtalk"' in code
    monkeypatch.chdir(ROOT)  # the example's paths are relative to the repository
    scope: dict = {}
    exec(code.replace("checkpoints/lipmem-synthtalk", str(checkpoints["generator"])), scope)
    made, lip, frames = scope["made"], scope["lip"], scope["frames"]
    n = num_frames(len(load_audio(ROOT / "assets/examples/hello.wav")))
    assert made.frames.dtype == np.uint8 and made.frames.ndim == 4 and len(made.frames) == made.n_frames == n
    assert made.addressing.shape == (n, 8) and made.out_path is None
    assert lip.shape == (64, 64, 3) and lip.dtype == np.uint8
    assert len(frames) == n and {"time", "phone", "viseme", "slot", "weight"} <= set(frames.columns)
    assert (frames["phone"] != SILENCE).sum() > n // 4  # PocketSphinx found the speech
    np.testing.assert_allclose(weights(frames), made.addressing, atol=1e-5)


def test_importing_the_packages_loads_no_torch():
    code = "import sys, lipmem_core, analysis; print('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "False"


def test_importing_the_app_builds_nothing_and_leaves_torch_alone():
    code = "import sys, app; print('torch' in sys.modules, 'demo' in vars(app))"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "False False"  # no UI built, no model, no thread count set


def test_every_export_resolves():
    for package in (lm, analysis):
        for name in package.__all__:
            assert getattr(package, name) is not None
        with pytest.raises(AttributeError):
            package.no_such_name  # noqa: B018


def test_the_kind_is_checked_before_anything_is_built(checkpoints):
    with pytest.raises(CheckpointError, match="is a SyncNet checkpoint; this needs a generator"):
        lm.load_checkpoint(checkpoints["syncnet"], kind="generator")
    with pytest.raises(CheckpointError, match="needs a generator"):
        lm.TalkingFacePipeline(checkpoints["syncnet"], device="cpu")
    assert lm.read_config(checkpoints["syncnet"], kind="syncnet")["kind"] == "syncnet"
    assert isinstance(lm.load_checkpoint(checkpoints["generator"], kind="generator").model, LipMemGenerator)
