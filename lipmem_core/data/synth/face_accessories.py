"""Facial hair and glasses: static layers that vary SynthTalk speakers beyond skin and hair.

A beard lies in the static face, so the renderer's jaw warp carries it with the chin and the
per-frame lips are drawn over the moustache's lower edge, as real lips are.
"""

from __future__ import annotations

import cv2
import numpy as np

from lipmem_core.data.synth.face_canvas import Canvas, scaled, smoothstep
from lipmem_core.data.synth.face_identity import Identity
from lipmem_core.data.synth.face_layout import FaceLayout


def _moustache(lay: FaceLayout) -> np.ndarray:
    """(N, 2) polygon of a moustache just above the upper lip, drooping at the corners."""
    mx, my = lay.mouth
    u = np.linspace(-1.0, 1.0, 17)
    lower = my - 0.026 + 0.012 * u**2  # clear of the lip line, where the jaw warp starts
    upper = lower - 0.024 * (1.0 - 0.55 * u**2)
    x = mx + u * lay.mouth_half_width * 1.22  # reaching round the corners to the beard
    return np.concatenate([np.stack([x, lower], 1), np.stack([x, upper], 1)[::-1]])


def paint_beard(
    cv: Canvas, identity: Identity, lay: FaceLayout, face: np.ndarray, rng: np.random.Generator
) -> None:
    """Stubble, moustache, goatee or full beard in the hair colour; `face` is the face mask."""
    style = identity.beard
    if style == "none":
        return
    ax, y = np.abs(cv.xs - 0.5) / lay.half_width, cv.ys  # ax: 0 in the middle, 1 at the sides
    mx, my = lay.mouth
    colour = identity.hair_color if identity.hair_style not in ("bald", "buzz") else identity.brow_color
    moustache = cv.mask(polys=[_moustache(lay)], blur=0.003)
    if style in ("stubble", "full"):
        # below the lower lip in the middle, rising along the cheeks to the sideburns
        line = my + 0.03 - 0.25 * smoothstep(0.3, 1.0, ax)
        region = np.maximum(face * smoothstep(line - 0.008, line + 0.012, y), moustache)
        if style == "full":  # and over the top of the neck
            neck = smoothstep(lay.chin_y + 0.06, lay.chin_y + 0.02, y) * smoothstep(0.85, 0.7, ax)
            region = np.maximum(region, neck * smoothstep(0.6, 0.65, y))
    elif style == "goatee":
        chin = cv.mask(ellipses=[((mx, my + 0.12), (0.065, 0.09), 0)], blur=0.005)
        region = np.maximum(moustache, chin * face * smoothstep(my + 0.026, my + 0.036, y))
    else:
        region = moustache
    # hair grain ~1 output pixel wide: finer grain would alias when the jaw warp stretches it
    grain = cv2.GaussianBlur((rng.random(region.shape) < 0.4).astype(np.float32), (0, 0), 0.7)
    if style == "stubble":
        cv.paint(region, colour, 0.22)
        cv.paint(region * grain, scaled(colour, 0.8), 0.25)
        return
    cv.paint(region, colour, 0.88)
    cv.paint(region * grain, scaled(colour, 1.35, (15, 12, 10)), 0.22)


def paint_glasses(cv: Canvas, identity: Identity, lay: FaceLayout) -> None:
    """Round or rectangular frames over both eyes, with a bridge, arms and a lens glint."""
    if identity.glasses == "none":
        return
    (lx, ey), (rx, _) = lay.eye_centres
    half_w = min(0.1, (rx - lx) / 2 - 0.03)
    half_h = 0.07 if identity.glasses == "round" else 0.058
    power = 2.0 if identity.glasses == "round" else 5.0  # superellipse: 2 = ellipse
    t = np.linspace(0.0, 2 * np.pi, 96)
    c, s = np.cos(t), np.sin(t)
    ring = np.stack([np.sign(c) * np.abs(c) ** (2 / power), np.sign(s) * np.abs(s) ** (2 / power)], 1)
    frames, lenses = [], []
    for ex in (lx, rx):
        lens = ring * [half_w, half_h] + [ex, ey + 0.008]
        lenses.append(lens)
        frames.append((np.vstack([lens, lens[:1]]), 0.009))
    bridge = np.array([(lx + half_w, ey - 0.01), ((lx + rx) / 2, ey - 0.02), (rx - half_w, ey - 0.01)])
    arms = [
        (np.array([(lx - half_w, ey - 0.01), (0.5 - lay.half_width - 0.01, ey - 0.005)]), 0.008),
        (np.array([(rx + half_w, ey - 0.01), (0.5 + lay.half_width + 0.01, ey - 0.005)]), 0.008),
    ]
    glass = cv.mask(polys=lenses)
    cv.paint(glass, (235, 240, 245), 0.1)
    glint = cv.mask(
        lines=[
            (np.array([(ex - 0.5 * half_w, ey - 0.02), (ex - 0.15 * half_w, ey - 0.05)]), 0.008)
            for ex in (lx, rx)
        ],
        blur=0.004,
    )
    cv.paint(glint * glass, (255, 255, 255), 0.35)
    cv.paint(cv.mask(lines=[*frames, (bridge, 0.009), *arms]), identity.glasses_color)
