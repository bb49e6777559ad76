"""Visual identity of a SynthTalk speaker: the parameters of the parametric face renderer.

Lengths are fractions of the image size (so one identity renders at any resolution) or
unitless multipliers of the renderer's average face; colours are RGB tuples of 0-255 ints.
`Identity.sample(rng)` draws a varied, plausible face (skin tones from very dark to very light,
many hair styles and colours, beards, glasses, side light, coloured or gradient backgrounds).
`to_dict()`/`from_dict()` round-trip exactly through JSON (speakers.json).
"""

from __future__ import annotations

import colorsys
import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

RGB = tuple[int, int, int]

HAIR_STYLES = ("bald", "buzz", "short", "side", "fringe", "bob", "long", "curly", "bun")
BEARDS = ("none", "stubble", "moustache", "goatee", "full")
GLASSES = ("none", "round", "square")
_BEARD_WEIGHTS = (0.66, 0.12, 0.05, 0.05, 0.12)
_GLASSES_WEIGHTS = (0.8, 0.1, 0.1)

# Skin tones from very dark to very light, with olive and golden variants between.
_SKIN_TONES: tuple[RGB, ...] = (
    (60, 40, 32), (82, 54, 40), (105, 70, 50), (128, 86, 60), (150, 103, 72),
    (172, 122, 86), (186, 140, 96), (198, 156, 112), (214, 170, 132), (226, 186, 150),
    (236, 198, 168), (246, 214, 192), (252, 226, 208),
)  # fmt: skip
_HAIR_COLOURS: tuple[RGB, ...] = (
    (22, 18, 18), (38, 28, 24), (60, 40, 28), (92, 60, 36), (130, 92, 56), (176, 136, 84),
    (214, 180, 116), (236, 212, 150), (132, 56, 28), (168, 76, 36), (120, 118, 116),
    (176, 174, 170), (226, 224, 218),
)  # fmt: skip
_HAIR_WEIGHTS = (6, 6, 6, 5, 4, 3, 3, 2, 2, 2, 2, 2, 1)
_IRIS_COLOURS: tuple[RGB, ...] = (
    (48, 30, 20), (80, 50, 28), (110, 78, 40), (104, 110, 60), (70, 110, 80),
    (70, 110, 150), (110, 150, 190), (120, 130, 140),
)  # fmt: skip
_LIPSTICKS: tuple[RGB, ...] = ((178, 36, 52), (200, 80, 100), (130, 30, 60), (214, 110, 110))


def _jitter(rng: np.random.Generator, colour: tuple[float, ...], percent: float) -> RGB:
    """Vary brightness by ~percent % and each channel by a third of that: relative noise keeps
    the hue of dark colours (absolute noise turns dark skin green or grey)."""
    scale = (1.0 + rng.normal(0.0, percent / 100)) * (1.0 + rng.normal(0.0, percent / 300, 3))
    c = np.asarray(colour, dtype=np.float64) * scale
    return tuple(int(v) for v in np.clip(np.round(c), 0, 255))  # type: ignore[return-value]


def _mix(a: tuple[float, ...], b: tuple[float, ...], t: float) -> tuple[float, ...]:
    return tuple((1 - t) * x + t * y for x, y in zip(a, b, strict=True))


def _hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (round(255 * r), round(255 * g), round(255 * b))


@dataclass(frozen=True)
class Identity:
    """One face. Lengths are fractions of the image size unless noted. Frozen, so hashable:
    renderers cache their static layers per (identity, size)."""

    # face shape
    face_width: float = 0.78  # cheekbone width / image width
    face_height: float = 1.0  # multiplier of the eye-to-chin distance
    jaw_width: float = 0.5  # 0 = narrow oval jaw, 1 = broad square jaw
    chin: float = 0.4  # 0 = round chin, 1 = pointed chin
    skin: RGB = (214, 170, 132)
    blush: float = 0.3  # cheek redness, 0-1
    # mouth
    lip_color: RGB = (186, 100, 96)
    lip_thickness: float = 1.0  # multiplier
    mouth_width: float = 1.0  # multiplier
    teeth_color: RGB = (238, 232, 214)
    # eyes and brows
    eye_size: float = 1.0  # multiplier
    eye_shape: float = 0.42  # almond height / width
    eye_spacing: float = 1.0  # multiplier
    eye_tilt: float = 2.0  # degrees, outer corner up
    eye_color: RGB = (80, 50, 28)
    brow_thickness: float = 1.0  # multiplier
    brow_arch: float = 0.5  # 0 = straight, 1 = high arch
    brow_color: RGB = (50, 34, 26)
    # nose
    nose_width: float = 1.0  # multiplier
    nose_length: float = 1.0  # multiplier
    # hair, clothes, background
    hair_style: str = "short"
    hair_color: RGB = (50, 34, 26)
    shirt_color: RGB = (60, 80, 120)
    bg_top: RGB = (120, 140, 160)
    bg_bottom: RGB = (70, 80, 100)
    beard: str = "none"
    glasses: str = "none"
    glasses_color: RGB = (30, 30, 34)
    light: float = 0.0  # key light from the left (< 0) or right (> 0), -1 to 1
    seed: int = 0  # fixes small random details (hair strands, curls)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Identity:
        """A random, plausible face; deterministic given the generator state."""
        u = rng.uniform
        tone = u(0, len(_SKIN_TONES) - 1)
        i = int(tone)
        skin = _jitter(rng, _mix(_SKIN_TONES[i], _SKIN_TONES[min(i + 1, 12)], tone - i), 5)
        darkness = 1.0 - tone / (len(_SKIN_TONES) - 1)  # 1 = darkest skin

        lip_base = _mix(
            tuple(0.78 * c for c in skin), (skin[0] * 0.9 + 30, skin[1] * 0.5, skin[2] * 0.55), 0.7
        )
        lip = _jitter(rng, lip_base, 8)
        if u() < 0.12:
            lip = _jitter(rng, _LIPSTICKS[int(rng.integers(len(_LIPSTICKS)))], 10)

        if u() < 0.75 * darkness + 0.1:
            hair = _jitter(rng, _HAIR_COLOURS[int(rng.integers(3))], 4)
        else:
            w = np.asarray(_HAIR_WEIGHTS, dtype=np.float64)
            hair = _jitter(rng, _HAIR_COLOURS[int(rng.choice(len(w), p=w / w.sum()))], 6)
        if u() < 0.03:
            hair = _hsv(u(), u(0.4, 0.7), u(0.5, 0.85))  # dyed
        brow = _jitter(rng, tuple(0.75 * c for c in hair), 4)
        if hair[0] > 160:  # grey/white/blond hair often with darker brows
            brow = _jitter(rng, _mix(hair, (70, 55, 45), 0.5), 4)

        iris_weights = np.array([3, 3, 2, 1, 1, 1, 1, 1], dtype=np.float64)
        iris_weights[3:] *= 1.0 - 0.9 * darkness
        iris = _jitter(rng, _IRIS_COLOURS[int(rng.choice(8, p=iris_weights / iris_weights.sum()))], 6)

        hue = u()
        bg_top = _hsv(hue, u(0.05, 0.45), u(0.35, 0.95))
        bg_bottom = _hsv(hue + u(-0.12, 0.12), u(0.05, 0.5), u(0.25, 0.8)) if u() < 0.7 else bg_top
        fields = dict(
            face_width=float(u(0.70, 0.84)),
            face_height=float(u(0.93, 1.07)),
            jaw_width=float(u(0, 1)),
            chin=float(u(0, 1)),
            skin=skin,
            blush=float(u(0, 0.7)),
            lip_color=lip,
            lip_thickness=float(u(0.75, 1.3)),
            mouth_width=float(u(0.88, 1.12)),
            teeth_color=_jitter(rng, (236, 230, 212), 6),
            eye_size=float(u(0.85, 1.15)),
            eye_shape=float(u(0.34, 0.52)),
            eye_spacing=float(u(0.92, 1.08)),
            eye_tilt=float(u(-4, 8)),
            eye_color=iris,
            brow_thickness=float(u(0.7, 1.4)),
            brow_arch=float(u(0, 1)),
            brow_color=brow,
            nose_width=float(u(0.8, 1.25)),
            nose_length=float(u(0.85, 1.15)),
            hair_style=str(HAIR_STYLES[int(rng.integers(len(HAIR_STYLES)))]),
            hair_color=hair,
            shirt_color=_hsv(u(), u(0.1, 0.7), u(0.2, 0.9)),
            bg_top=bg_top,
            bg_bottom=bg_bottom,
            seed=int(rng.integers(2**31)),
        )
        # Later additions draw from a generator seeded by the identity's own seed, so the
        # parent generator advances exactly as before and older corpora's speakers keep
        # their other parameters.
        extra = np.random.default_rng([fields["seed"], 1])
        fields["beard"] = str(BEARDS[int(extra.choice(len(BEARDS), p=_BEARD_WEIGHTS))])
        fields["glasses"] = str(GLASSES[int(extra.choice(len(GLASSES), p=_GLASSES_WEIGHTS))])
        frame = ((30, 30, 34), (90, 60, 40), (150, 150, 155), (120, 30, 40), (30, 50, 110))
        fields["glasses_color"] = _jitter(extra, frame[int(extra.integers(len(frame)))], 5)
        fields["light"] = float(extra.uniform(-1.0, 1.0))
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (colours as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Identity:
        """Inverse of `to_dict` (also accepts tuples); rejects unknown fields and styles.
        Missing fields take their defaults, so identities saved before a field existed load."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ValueError(f"unknown Identity fields {unknown}; expected a subset of {sorted(fields)}")
        kwargs = {k: tuple(int(c) for c in v) if isinstance(v, list | tuple) else v for k, v in d.items()}
        identity = cls(**kwargs)
        for name, allowed in (("hair_style", HAIR_STYLES), ("beard", BEARDS), ("glasses", GLASSES)):
            if getattr(identity, name) not in allowed:
                raise ValueError(f"unknown {name} {getattr(identity, name)!r}; choose one of {allowed}")
        return identity
