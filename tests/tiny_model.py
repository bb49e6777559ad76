"""The one tiny model config of the test suite; tests that need another size say how it differs.

32 px, 8 slots: small enough for CPU unit tests, built from the same components as the presets.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from lipmem_core.config import ModelConfig
from lipmem_core.model.generator import LipMemGenerator

TINY = ModelConfig(
    img_size=32,
    dim=32,
    n_slots=8,
    face_widths=(8, 16, 16),
    audio_width=4,
    lip_width=8,
    disc_width=8,
    sync_dim=32,
    sync_width=8,
)


def tiny_config(**overrides) -> ModelConfig:
    """TINY with some fields replaced (e.g. `img_size=64`, `use_memory=False`)."""
    return dataclasses.replace(TINY, **overrides)


def model_flags(cfg: ModelConfig) -> list[str]:
    """The training CLI's flags that build `cfg` (`--img-size` and one `--model k=v` per field)."""
    flags = ["--img-size", str(cfg.img_size)]
    for name in (
        "dim",
        "n_slots",
        "face_widths",
        "audio_width",
        "lip_width",
        "disc_width",
        "sync_dim",
        "sync_width",
    ):
        value = getattr(cfg, name)
        text = f"[{','.join(map(str, value))}]" if isinstance(value, tuple) else str(value)
        flags += ["--model", f"{name}={text}"]
    return flags


SLOTS = 12  # the memory analysis tests' generator: more slots than phones in a short clip


def slot_generator() -> LipMemGenerator:
    """The seeded tiny generator with SLOTS slots that the addressing and slot tests share."""
    torch.manual_seed(0)
    return LipMemGenerator(tiny_config(face_widths=(8, 16, 32, 32), n_slots=SLOTS, audio_width=8)).eval()


def chirp(seconds: float = 1.3) -> np.ndarray:
    """Speech-like 16 kHz test audio: a rising tone in bursts of 0.25 s, with a little noise."""
    t = np.arange(int(seconds * 16000)) / 16000
    tone = 0.3 * np.sin(2 * np.pi * (200 + 600 * t) * t) * (t % 0.4 < 0.25)
    return (tone + np.random.default_rng(0).normal(0, 0.01, t.size)).astype(np.float32)
