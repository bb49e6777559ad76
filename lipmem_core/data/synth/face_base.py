"""Static layers of a SynthTalk face: everything that does not move with speech.

`base_images(identity, size)` paints, at the places `face_layout.face_layout(identity)` gives, the
background, hair, head, ears, neck, eyes, brows, nose, beard and glasses once, 2x
supersampled with soft (blurred) shading, then area-downsampled; the per-frame renderer only
adds mouth, eyelids, jaw and pose. Both are cached (an identity is frozen and hashable), so
their arrays are read-only.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from lipmem_core.data.synth.face_accessories import paint_beard, paint_glasses
from lipmem_core.data.synth.face_canvas import SS, Canvas, scaled, smoothstep
from lipmem_core.data.synth.face_identity import Identity
from lipmem_core.data.synth.face_layout import EYE_Y, FaceLayout, face_layout


def _hair_cap(cv: Canvas, identity: Identity, lay: FaceLayout, rng: np.random.Generator) -> np.ndarray:
    """Mask of the hair in front of the head: above a style's hairline, inside the scalp."""
    style, x, y = identity.hair_style, cv.xs - 0.5, cv.ys
    if style == "bald":
        return np.zeros_like(x)
    hw = lay.half_width + 0.025
    ax = np.abs(x) / hw  # 0 at the middle, 1 at the side of the head
    scalp = (x / hw) ** 2 + ((y - EYE_Y - 0.07) / 0.6) ** 2 < 1.0
    freqs, phases = rng.uniform(18, 45, 3), rng.uniform(0, 2 * np.pi, 3)
    noise = 0.005 * sum(np.sin(f * x + p) for f, p in zip(freqs, phases, strict=True)) / 1.5
    sides = smoothstep(0.8, 0.99, ax)  # the hairline drops in front of the ears
    if style == "fringe":
        line = 0.285 + 0.02 * ax**2 + noise + 0.2 * sides
    elif style == "side":
        part = 1.0 if identity.seed % 2 else -1.0
        line = 0.15 + 0.05 * smoothstep(-0.1, 0.15, part * x) + noise + 0.26 * sides
    elif style == "curly":
        line = 0.2 + 0.016 * np.abs(np.sin(55 * x + phases[0])) + 0.03 * ax**2 + 0.24 * sides
    elif style in ("long", "bob"):
        line = np.full_like(x, 0.1)
    else:  # short, buzz, bun: receding at the temples
        line = 0.165 + 0.025 * np.exp(-(((ax - 0.5) / 0.15) ** 2)) + noise + 0.27 * sides
    cap = (scalp & (y < line)).astype(np.float32)
    if style in ("long", "bob"):  # curtains from a middle parting over the sides of the face
        inner = hw * 0.86 * (1.0 - np.exp(-np.maximum(y - 0.09, 0.0) / 0.07))
        bottom = 1.0 if style == "long" else 0.8
        curtain = (np.abs(x) > inner) & (np.abs(x) < hw + 0.02) & (y < bottom - 0.1 * (1.0 - ax))
        dome = (y > 0.45) | ((x / (hw + 0.03)) ** 2 + ((y - 0.45) / 0.5) ** 2 < 1.0)
        cap = np.maximum(cap, (curtain & dome).astype(np.float32))
    return cv2.GaussianBlur(cap, (0, 0), 0.003 * cv.n)


def _hair_back(cv: Canvas, identity: Identity, lay: FaceLayout, rng: np.random.Generator) -> np.ndarray:
    """Mask of the hair behind the head (long styles, curls, bun)."""
    style, hw = identity.hair_style, lay.half_width
    if style == "long":  # a dome over the head that falls straight past the shoulders
        a = np.linspace(np.pi, 2 * np.pi, 30)
        dome = np.stack([0.5 + (hw + 0.07) * np.cos(a), 0.32 + 0.47 * np.sin(a)], 1)
        ends = [(0.5 + hw + 0.11, 1.05), (0.5 - hw - 0.11, 1.05)]
        return cv.mask(polys=[np.concatenate([dome, ends])])
    if style == "bob":
        return cv.mask(ellipses=[((0.5, 0.42), (hw + 0.07, 0.42), 0)])
    if style == "curly":
        t = np.linspace(np.pi * 0.85, np.pi * 2.15, 40)
        ell = [((0.5 + (hw + 0.06) * np.cos(a), 0.36 + 0.5 * np.sin(a)), (r, r), 0)
               for a, r in zip(t, rng.uniform(0.04, 0.07, len(t)), strict=True)]  # fmt: skip
        return cv.mask(ellipses=[((0.5, 0.3), (hw + 0.06, 0.45), 0), *ell])
    if style == "bun":
        return cv.mask(ellipses=[((0.5, -0.06), (0.12, 0.09), 0)])
    return np.zeros((cv.n, cv.n), np.float32)


def _paint_hair(cv: Canvas, mask: np.ndarray, identity: Identity, rng: np.random.Generator) -> None:
    """Hair colour, strands flowing away from the crown, and a soft sheen."""
    colour = identity.hair_color
    if identity.hair_style == "buzz":
        cv.paint(mask, colour, 0.55)
        return
    cv.paint(mask, colour)
    ys, xs = np.nonzero(mask[:: 2 * SS, :: 2 * SS] > 0.5)
    if len(xs) == 0:
        return
    pick = rng.integers(len(xs), size=90)
    start = np.stack([xs[pick], ys[pick]], 1) * 2 * SS / cv.n  # (90, 2) image fractions
    away = start - (0.5, -0.2)  # strands fall away from the crown
    away /= np.linalg.norm(away, axis=1, keepdims=True)
    t = np.linspace(0.0, 1.0, 5)[None, :, None]
    length = rng.uniform(0.04, 0.1, (90, 1, 1))
    bend = rng.uniform(-0.3, 0.3, (90, 1, 1)) * away[:, None, ::-1] * [1, -1]
    curves = start[:, None] + length * t * away[:, None] + length * bend * t**2  # (90, 5, 2)
    light = cv.mask(lines=[(c, 0.0025) for c in curves[:45]], blur=0.002) * mask
    dark = cv.mask(lines=[(c, 0.003) for c in curves[45:]], blur=0.002) * mask
    cv.paint(light, scaled(colour, 1.3, (22, 20, 16)), 0.35)
    cv.paint(dark, scaled(colour, 0.6), 0.35)
    sheen = cv.mask(ellipses=[((0.42, 0.07), (0.16, 0.05), -15)], blur=0.03) * mask
    cv.paint(sheen, scaled(colour, 1.4, (30, 30, 30)), 0.25)


def _paint_eyes(cv: Canvas, identity: Identity, lay: FaceLayout) -> None:
    skin = identity.skin
    for (upper, lower), (ex, ey) in zip(lay.eyes, lay.eye_centres, strict=True):
        socket = cv.mask(ellipses=[((ex, ey - 0.01), (0.08, 0.045), 0)], blur=0.02)
        cv.shade(socket, 0.9)
        crease = upper + [0, -0.42 * lay.eye_height]
        cv.paint(cv.mask(lines=[(crease[2:-2], 0.006)], blur=0.003), scaled(skin, 0.75), 0.6)
        almond = cv.mask(polys=[np.concatenate([upper, lower[::-1]])])
        cv.paint(almond, (236, 232, 226))
        inside = cv.mask(polys=[np.concatenate([upper, lower[::-1]])], blur=0.01)
        cv.paint(almond * (1.0 - inside), (190, 180, 175), 0.6)  # sclera shaded into the corners
        ri = 0.56 * lay.eye_height
        iris = cv.mask(ellipses=[((ex, ey + 0.1 * ri), (ri, ri), 0)]) * almond
        cv.paint(iris, identity.eye_color)
        ring = cv.mask(ellipses=[((ex, ey + 0.1 * ri), (ri, ri), 0)]) - cv.mask(
            ellipses=[((ex, ey + 0.1 * ri), (0.75 * ri, 0.75 * ri), 0)], blur=0.004
        )
        cv.paint(np.clip(ring, 0, 1) * almond, scaled(identity.eye_color, 0.5), 0.6)
        cv.paint(cv.mask(ellipses=[((ex, ey + 0.1 * ri), (0.42 * ri, 0.42 * ri), 0)]) * almond, (12, 10, 10))
        cv.paint(
            cv.mask(ellipses=[((ex - 0.35 * ri, ey - 0.25 * ri), (0.17 * ri, 0.17 * ri), 0)]) * almond,
            (250, 250, 250),
            0.9,
        )
        lid_shadow = cv.mask(lines=[(upper, 0.012)], blur=0.004) * almond
        cv.shade(lid_shadow, 0.7)
        cv.paint(cv.mask(lines=[(upper, 0.011)]), (25, 18, 16))  # lash line
        cv.paint(cv.mask(lines=[(lower[2:-2], 0.004)], blur=0.002), scaled(skin, 0.7), 0.5)


def _paint_brows(cv: Canvas, identity: Identity, lay: FaceLayout) -> None:
    t = np.linspace(0.0, 1.0, 12)
    for (ex, ey), side in zip(lay.eye_centres, (-1, 1), strict=True):
        x = ex - side * 0.055 + side * 0.13 * t  # inner end near the nose
        y = (
            ey
            - 0.07
            - lay.eye_height * 0.3
            - (0.01 + 0.025 * identity.brow_arch) * np.sin(np.pi * t**0.8)
            + 0.012 * t
        )
        thick = 0.016 * identity.brow_thickness * (1.0 - 0.6 * t)
        top = np.stack([x, y - thick / 2], 1)
        bottom = np.stack([x, y + thick / 2], 1)
        brow = cv.mask(polys=[np.concatenate([top, bottom[::-1]])], blur=0.0025)
        cv.paint(brow, identity.brow_color, 0.92)


def _paint_nose_and_mouth_area(cv: Canvas, identity: Identity, lay: FaceLayout) -> None:
    skin, nw, ny = identity.skin, identity.nose_width, lay.nostril_y
    for side in (-1, 1):
        bridge = np.array([(0.5 + side * 0.03, EYE_Y + 0.02), (0.5 + side * 0.035 * nw, ny - 0.05)])
        cv.shade(cv.mask(lines=[(bridge, 0.014)], blur=0.012), 0.86)
        wing = np.array([(0.5 + side * 0.03 * nw, ny - 0.045), (0.5 + side * 0.05 * nw, ny - 0.012),
                         (0.5 + side * 0.042 * nw, ny + 0.006), (0.5 + side * 0.02 * nw, ny + 0.008)])  # fmt: skip
        cv.shade(cv.mask(lines=[(wing, 0.008)], blur=0.004), 0.8)
        nostril = ((0.5 + side * 0.024 * nw, ny + 0.002), (0.014 * nw, 0.007), side * 15)
        cv.paint(cv.mask(ellipses=[nostril], blur=0.002), scaled(skin, 0.4), 0.85)
    cv.shade(cv.mask(ellipses=[((0.5, ny + 0.018), (0.05 * nw, 0.012), 0)], blur=0.01), 0.85)
    cv.shade(cv.mask(ellipses=[((0.5, ny - 0.025), (0.022 * nw, 0.02), 0)], blur=0.012), 1.12)
    mx, my = lay.mouth
    for side in (-1, 1):  # philtrum ridges
        ridge = np.array([(mx + side * 0.012, ny + 0.02), (mx + side * 0.016, my - 0.03)])
        cv.shade(cv.mask(lines=[(ridge, 0.006)], blur=0.006), 0.93)
    crease = cv.mask(ellipses=[((mx, my + 0.085), (0.06, 0.018), 0)], blur=0.016)  # lip-chin crease
    cv.shade(crease, 0.87)
    chin = cv.mask(ellipses=[((mx, lay.chin_y - 0.05), (0.07, 0.035), 0)], blur=0.025)
    cv.shade(chin, 1.07)  # light on the chin


@functools.lru_cache(maxsize=32)
def base_images(identity: Identity, size: int, hi_factor: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The static face without mouth: (size, size, 3) and (hi_factor * size, ...) uint8 RGB.

    The larger copy lets the renderer draw the mouth supersampled on exactly this face.
    Deterministic; cached per (identity, size, hi_factor).
    """
    if SS % hi_factor:
        raise ValueError(f"hi_factor must divide {SS}, got {hi_factor}")
    rng = np.random.default_rng(identity.seed)
    lay = face_layout(identity)
    cv = Canvas(size)
    top, bottom = np.asarray(identity.bg_top, np.float32), np.asarray(identity.bg_bottom, np.float32)
    cv.img[:] = top + (bottom - top) * cv.ys[..., None]
    cv.shade(cv.mask(ellipses=[((0.5, 0.35), (0.6, 0.6), 0)], blur=0.15), 1.12)

    _paint_hair(cv, _hair_back(cv, identity, lay, rng), identity, rng)
    skin = identity.skin
    cv.paint(cv.mask(ellipses=[((0.5, 1.18), (0.62, 0.26), 0)]), identity.shirt_color)  # shoulders
    neck_w = lay.half_width * 0.62
    neck = [(0.5 - neck_w, 0.7), (0.5 - neck_w - 0.02, 1.0), (0.5 + neck_w + 0.02, 1.0), (0.5 + neck_w, 0.7)]
    cv.paint(cv.mask(polys=[neck]), scaled(skin, 0.82))
    for side in (-1, 1):
        ear = ((0.5 + side * (lay.half_width - 0.005), EYE_Y + 0.08), (0.04, 0.085), side * 8)
        cv.paint(cv.mask(ellipses=[ear]), scaled(skin, 0.9))
        inner = ((ear[0][0] + side * 0.01, ear[0][1]), (0.018, 0.05), side * 8)
        cv.shade(cv.mask(ellipses=[inner], blur=0.006), 0.78)
    face = cv.mask(polys=[lay.face])
    cv.shade(cv.mask(polys=[lay.face + [0, 0.035]], blur=0.02) * (1 - face), 0.72)  # chin shadow on neck
    cv.paint(face, skin)
    rim = 1.0 - cv2.GaussianBlur(
        cv2.erode(face, np.ones((3, 3), np.uint8), iterations=int(0.02 * cv.n)), (0, 0), 0.03 * cv.n
    )
    cv.shade(rim * face, 0.82)
    cheeks = [((0.5 + s * 0.19, EYE_Y + 0.17), (0.08, 0.05), 0) for s in (-1, 1)]
    cv.paint(cv.mask(ellipses=cheeks, blur=0.04), scaled(skin, 0.95, (40, -5, -5)), 0.35 * identity.blush)
    cv.shade(cv.mask(ellipses=[((0.5, EYE_Y - 0.15), (0.22, 0.08), 0)], blur=0.05), 1.06)  # forehead light

    _paint_nose_and_mouth_area(cv, identity, lay)
    paint_beard(cv, identity, lay, face, np.random.default_rng([identity.seed, 2]))
    _paint_eyes(cv, identity, lay)
    _paint_brows(cv, identity, lay)
    _paint_hair(cv, _hair_cap(cv, identity, lay, rng), identity, rng)
    paint_glasses(cv, identity, lay)
    # a key light from one side: brighter on that side of everything, darker on the other
    cv.img *= (1.0 + 0.14 * identity.light * np.tanh((cv.xs - 0.5) / 0.25))[..., None]
    return cv.image(size), cv.image(hi_factor * size)
