"""A real face in a short moving video: skimage's astronaut photo, shifted a few pixels per
frame, with a blank and a noise frame where no face can be found.

Used by the face, video, pipeline, CLI and preprocessing tests.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import skimage.data

from lipmem_core.config import SAMPLE_RATE
from lipmem_core.infer.video import VideoWriter

WIDTH, HEIGHT, FPS = 192, 160, 25
N_FRAMES = 16
FACELESS = (6, 7)  # a black frame, then a noise frame
SHIFT = 2  # pixels per frame, to the right
SCALE = 0.375  # the 512 px photo drawn at 192 px (its face ~36 px)
# Where the photo's features land at scale 0.375 (measured on the 512 px original: eyes at
# y 102, mouth centre at (224, 145), chin at y 172).
MOUTH_XY = (224 * SCALE, 145 * SCALE)
EYES_Y = 102 * SCALE


def photo() -> np.ndarray:
    """The astronaut scaled to 192 x 192 RGB uint8."""
    img = skimage.data.astronaut()
    return cv2.resize(img, (192, 192), interpolation=cv2.INTER_AREA)


def frame(k: int) -> np.ndarray:
    """Frame k: the photo's top 160 rows shifted right by SHIFT * k - 8 px on a grey canvas."""
    rng = np.random.default_rng(k)
    if k == FACELESS[0]:
        return np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    if k == FACELESS[1]:
        return rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    canvas = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    dx = SHIFT * k - 8
    src = photo()[:HEIGHT]
    x0, x1 = max(0, dx), min(WIDTH, WIDTH + dx)
    canvas[:, x0:x1] = src[:, x0 - dx : x1 - dx]
    return canvas


def frames(n: int = N_FRAMES) -> np.ndarray:
    """All frames `(n, H, W, 3)` uint8."""
    return np.stack([frame(k) for k in range(n)])


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced-sounding test signal (16 kHz float32): a buzzing tone with a syllable envelope."""
    t = np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.7 * t)
    buzz = np.sign(np.sin(2 * np.pi * np.cumsum(f0) / SAMPLE_RATE))
    env = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) ** 2 / 4
    noise = np.random.default_rng(seed).standard_normal(t.size) * 0.01
    return (0.3 * buzz * env + noise).astype(np.float32)


def write_video(path: Path, n: int = N_FRAMES, with_audio: bool = True) -> Path:
    """The moving astronaut as an H.264 MP4 (with matching speech-like audio by default)."""
    audio = speechlike(n / FPS) if with_audio else None
    with VideoWriter(path, WIDTH, HEIGHT, FPS, audio) as w:
        w.write(frames(n))
    return path
