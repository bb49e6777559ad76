"""A tiny random-init LipMem checkpoint for the app tests (real save_checkpoint, no training)."""

from __future__ import annotations

import socket
from pathlib import Path

import torch

from lipmem_core.checkpoint import save_checkpoint
from lipmem_core.model.generator import LipMemGenerator
from tests.tiny_model import tiny_config

# The app tests' generator: the tiny config at 64 px with 16 slots.
APP_MODEL = dict(img_size=64, n_slots=16, face_widths=(8, 8, 16, 16, 32, 32), audio_width=8)


def make_checkpoint_root(
    root: Path, name: str = "lipmem-synthtalk", use_memory: bool = True, seed: int = 0
) -> Path:
    """root/name holding a random-init generator (seeded, so runs are reproducible)."""
    torch.manual_seed(seed)
    model = LipMemGenerator(tiny_config(**APP_MODEL, use_memory=use_memory)).eval()
    save_checkpoint(root / name, model, "generator", {"dataset": "synthtalk (test: random init)", "steps": 0})
    return root


def make_compare_root(root: Path) -> Path:
    """root with what the Compare tab needs: a memory model, its `-nomem` ablation and a mouth
    oracle, all random-init (seeded) and written by the project's own save functions."""
    from lipmem_core.evaluation.oracle import MouthOracle, OracleTraining, save_oracle

    make_checkpoint_root(root)
    make_checkpoint_root(root, "lipmem-synthtalk-nomem", use_memory=False)
    torch.manual_seed(0)
    save_oracle(
        OracleTraining(MouthOracle(width=8).eval(), steps=0, seconds=0.0, val={}), root / "mouth-oracle"
    )
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(demo, **kwargs) -> str:
    """Launch on a free local port; returns the URL.

    Gradio gives up if its own 3 s HEAD request to the new server fails, which happens on this
    machine when training runs saturate the CPU: retry a few times rather than fail a test
    for the machine's load.
    """
    for attempt in range(3):
        try:
            _, url, _ = demo.launch(
                prevent_thread_lock=True,
                server_name="127.0.0.1",
                server_port=free_port(),
                quiet=True,
                **kwargs,
            )
            return url
        except ValueError:
            demo.close()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def generate_args(**overrides) -> dict:
    """The Generate tab's inputs by name, as /generate and `Handlers.generate` take them: an
    example identity speaking a short sentence with the tiny checkpoint unless overridden."""
    args = dict(
        face_source="example",
        example="Speaker A",
        image=None,
        video=None,
        speech_source="text",
        text="Bob made a big map.",
        voice="en-us",
        audio=None,
        checkpoint="lipmem-synthtalk",
    )
    args.update(overrides)
    return args


def generate_request(client, **overrides):
    """POST /generate through gradio_client (arguments as `generate_args`)."""
    return client.predict(*generate_args(**overrides).values(), api_name="/generate")


def app_demo(root: Path, tmp_path_factory, private_work: bool = True):
    """(the app's Blocks, its AppContext) for checkpoints under `root` and no precomputed
    analysis; request files go to a test folder unless `private_work=False` (the app's own
    folder in Gradio's cache)."""
    import app as app_module
    from lipmem_app.context import AppContext

    fields = dict(checkpoints_root=root, analysis_dir=tmp_path_factory.mktemp("no_analysis"))
    if private_work:
        fields["work_root"] = tmp_path_factory.mktemp("work")
    ctx = AppContext(**fields)
    return app_module.build_demo(ctx), ctx
