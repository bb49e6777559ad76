"""A tiny random-init LipMem checkpoint for the app tests (real save_checkpoint, no training)."""

from __future__ import annotations

from pathlib import Path

import torch

from lipmem_core.checkpoint import save_checkpoint
from lipmem_core.config import ModelConfig
from lipmem_core.model import LipMemGenerator

TINY = ModelConfig(
    img_size=64,
    dim=32,
    n_slots=16,
    face_widths=(8, 8, 16, 16, 32, 32),
    audio_width=8,
    lip_width=8,
    disc_width=8,
    sync_dim=32,
    sync_width=8,
)


def make_checkpoint_root(root: Path, name: str = "lipmem-synthtalk", use_memory: bool = True) -> Path:
    """root/name holding a random-init generator (seeded, so runs are reproducible)."""
    torch.manual_seed(0)
    cfg = ModelConfig(**{**TINY.to_dict(), "use_memory": use_memory})
    model = LipMemGenerator(cfg).eval()
    save_checkpoint(root / name, model, "generator", {"dataset": "synthtalk (test: random init)", "steps": 0})
    return root
