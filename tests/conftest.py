"""Shared fixtures. Tests are offline, CPU-only and small."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
torch.set_num_threads(2)


@pytest.fixture(scope="session")
def arctic_wav() -> Path:
    """A real human recording: CMU ARCTIC a0007 (16 kHz, 4.0 s), shipped in the pysptk sdist.

    Transcript: "and you always want to see it in the superlative degree". Located without
    importing pysptk (its import needs pkg_resources, absent from new setuptools).
    """
    spec = importlib.util.find_spec("pysptk")
    if spec is None or spec.origin is None:
        pytest.skip("pysptk is not installed (requirements-test.txt installs it)")
    path = Path(spec.origin).parent / "example_audio_data" / "arctic_a0007.wav"
    if not path.exists():
        pytest.skip(f"{path} is missing from this pysptk build")
    return path


ARCTIC_TRANSCRIPT = "and you always want to see it in the superlative degree"


@pytest.fixture(scope="module")
def slot_model():
    """The tiny generator with tiny_model.SLOTS slots shared by the addressing and slot tests."""
    from tests.tiny_model import slot_generator

    return slot_generator()


@pytest.fixture(scope="module")
def chirp_audio():
    """1.3 s of speech-like 16 kHz test audio (tiny_model.chirp)."""
    from tests.tiny_model import chirp

    return chirp()
