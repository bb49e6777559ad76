"""Pixels: uint8 RGB outside the model, floats in [-1, 1] inside it. One conversion each way."""

from __future__ import annotations

import numpy as np
import torch


def to_unit(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 RGB of any shape (e.g. (..., H, W, 3)) -> float32 in [-1, 1], same shape and device."""
    pix = torch.from_numpy(frames) if isinstance(frames, np.ndarray) else frames
    return pix.float().div_(127.5).sub_(1.0)


def to_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """Model pixels in [-1, 1] (any float dtype, any shape) -> uint8 RGB, clamped and rounded."""
    return ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
