"""Where the features of a SynthTalk face sit, in image fractions (x right, y down, in [0, 1]).

`face_layout(identity)` follows the face-detector crop of docs/SYNTHTALK.md: the face fills
the crop, eyes near 0.40 of the height, mouth centre at 0.72. Geometry only: the painted
layers (face_base, face_accessories) and the jaw warp (face_jaw) read it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from lipmem_core.data.synth.face_identity import Identity

EYE_Y = 0.40
MOUTH_Y = 0.72


@dataclass(frozen=True)
class FaceLayout:
    """Feature positions in image fractions; eye contours are (N, 2) left-to-right points."""

    face: np.ndarray  # (N, 2) closed head outline, forehead to chin
    half_width: float  # cheekbone half width
    chin_y: float
    eyes: tuple[tuple[np.ndarray, np.ndarray], ...]  # per eye: (upper lid, lower lid)
    eye_centres: tuple[tuple[float, float], ...]
    eye_height: float
    nostril_y: float
    mouth: tuple[float, float]  # centre (x, y)
    mouth_half_width: float  # at rest


def _face_outline(identity: Identity, half_width: float, chin_y: float) -> np.ndarray:
    """Head outline (N, 2): elliptic cranium above the cheekbones, superelliptic jaw below."""
    cheek_y = EYE_Y + 0.07
    top = np.linspace(np.pi, 2 * np.pi, 40)
    upper = np.stack([0.5 + half_width * np.cos(top), cheek_y + 0.56 * np.sin(top)], 1)
    n = 2.0 + 1.8 * identity.jaw_width  # squarer jaw for larger n
    theta = np.linspace(0.0, np.pi / 2, 40)
    s = np.sin(theta) ** (2 / n)  # 0 at the cheek, 1 at the chin
    x = half_width * np.cos(theta) ** (2 / n) * (1.0 - 0.35 * identity.chin * s**3)
    right = np.stack([0.5 + x, cheek_y + (chin_y - cheek_y) * s], 1)
    left = right[::-1] * [-1, 1] + [1, 0]
    return np.concatenate([upper, right, left[1:]])


def _eye_contours(cx: float, cy: float, width: float, height: float, tilt: float, inner_left: bool):
    """Upper and lower lid curves (N, 2) of an almond eye; the upper lid peaks nearer the nose."""
    u = np.linspace(-1.0, 1.0, 15)
    skew = 0.25 if inner_left else -0.25  # peak shifted towards the inner corner
    v = np.clip(u + skew * (1 - u**2), -1, 1)
    up = -height * 0.62 * (1 - v**2) ** 0.85
    low = height * 0.38 * (1 - u**2) ** 1.2
    angle = np.deg2rad(tilt if inner_left else -tilt)  # outer corner raised on both eyes
    rot = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    pts = [np.stack([u * width / 2, y], 1) @ rot.T + [cx, cy] for y in (up, low)]
    return pts[0], pts[1]


@functools.lru_cache(maxsize=256)
def face_layout(identity: Identity) -> FaceLayout:
    """Where every feature of this identity sits (image fractions)."""
    scale = identity.face_width / 0.78
    half_width = identity.face_width / 2
    chin_y = MOUTH_Y + 0.205 * identity.face_height
    eye_dx = 0.165 * identity.eye_spacing * scale
    eye_w = 0.126 * identity.eye_size * scale
    eye_h = eye_w * identity.eye_shape
    centres = ((0.5 - eye_dx, EYE_Y), (0.5 + eye_dx, EYE_Y))
    eyes = (
        _eye_contours(*centres[0], eye_w, eye_h, identity.eye_tilt, inner_left=False),
        _eye_contours(*centres[1], eye_w, eye_h, identity.eye_tilt, inner_left=True),
    )
    face = _face_outline(identity, half_width, chin_y)
    for arr in (face, *eyes[0], *eyes[1]):
        arr.setflags(write=False)  # shared by every renderer of this identity
    return FaceLayout(
        face=face,
        half_width=half_width,
        chin_y=chin_y,
        eyes=eyes,
        eye_centres=centres,
        eye_height=eye_h,
        nostril_y=EYE_Y + 0.205 * identity.nose_length,
        mouth=(0.5, MOUTH_Y),
        mouth_half_width=0.145 * identity.mouth_width * scale,
    )
