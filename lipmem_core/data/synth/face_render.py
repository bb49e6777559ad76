"""The SynthTalk face renderer: a static face (face_base.py) + a mouth, eyelids and pose per frame.

Per frame only the mouth is drawn (on a 2x supersampled patch of the pre-rendered face, with
antialiased sub-pixel polygons, then area-downsampled into place), eyelids only while
blinking, and the head pose is one `cv2.warpAffine`; this keeps a 128 px frame well under a
millisecond on one core.

Mouth geometry follows `MOUTH_PARAMS` (mouth.py): jaw opening splits between lifting the upper
lip and dropping the lower lip; closure and labiodental tuck shut the gap; spreading widens
and rounding narrows the mouth, thickens (protrudes) the lips and makes the opening rounder.
Upper teeth are fixed to the skull (the lips uncover them), lower teeth ride on the jaw, and
the tongue tip shows just below the upper incisors. Lengths are image fractions.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from lipmem_core.data.synth.face_base import base_images
from lipmem_core.data.synth.face_identity import HAIR_STYLES, Identity
from lipmem_core.data.synth.face_jaw import JawGrid
from lipmem_core.data.synth.face_layout import FaceLayout, face_layout
from lipmem_core.data.synth.mouth import MOUTH_PARAMS, PHONE_TARGETS
from lipmem_core.phones import SILENCE

__all__ = ["HAIR_STYLES", "FaceRenderer", "Identity", "head_motion", "render_clip"]

_SHIFT = 4  # sub-pixel bits for cv2 polygon coordinates
_ONE = 1 << _SHIFT
_U = np.linspace(-1.0, 1.0, 15)  # across the lips, corner to corner
_U2 = _U**2
_SOFT = 1.0 - _U2
_BOW_SOFT = (0.18 * np.exp(-(((np.abs(_U) - 0.3) / 0.2) ** 2)) - 0.22 * np.exp(-((_U / 0.12) ** 2))) * _SOFT
_V = np.linspace(-1.0, 1.0, 13)  # across the mouth opening
_V2 = _V**2
_V_SOFT = 1.0 - _V2
_V_ROUND = np.sqrt(_V_SOFT)
_V_TIP = np.sqrt(np.clip(1.0 - _V2 / 0.45**2, 0.0, 1.0))
_GAP_IDX = np.array([2, 4, 6, 8, 10])  # incisor gaps at v = -0.67, -0.33, 0, 0.33, 0.67
_MAX_OPEN = 0.137  # lip gap at full jaw opening (image fraction)
_CHIN_FOLLOWS = 1.0  # chin travel / lower-lip travel: the lower lip rides on the jaw


def _c(colour, factor: float = 1.0, add: float = 0.0) -> tuple[int, int, int]:
    return tuple(int(np.clip(v * factor + add, 0, 255)) for v in colour)  # type: ignore[return-value]


def _opening(jaw: float, close: float, tuck: float, teeth: float) -> tuple[float, float, float]:
    """Lip gap at the centre, and how far the upper lip lifts and the lower lip drops
    (image fractions). Closure and tuck shut the gap; in a labiodental the upper lip rises off
    the upper incisors, whose edge rests on the lower lip."""
    gap = (0.012 + _MAX_OPEN * jaw) * (1.0 - close) * (1.0 - 0.9 * tuck)
    lift = 0.28 * gap + (0.018 * tuck + 0.005 * teeth) * (1.0 - close)
    drop = 0.72 * gap + 0.004 * tuck * (1.0 - close)
    return gap, lift, drop


def _lid_colour(base: np.ndarray, lay: FaceLayout, size: int) -> tuple[int, int, int]:
    """The skin just under the eyes (clear of lid lines, creases and glasses frames, inside
    any lens tint), so a closing lid matches its surroundings whatever the skin tone, socket
    shading and light."""
    patches = []
    for ex, ey in lay.eye_centres:
        y0 = int((ey + 0.6 * lay.eye_height + 0.012) * size)
        x0, x1 = int((ex - 0.02) * size), int(np.ceil((ex + 0.02) * size))
        patches.append(base[y0 : y0 + max(1, size // 64), x0:x1].reshape(-1, 3))
    return tuple(int(v) for v in np.median(np.concatenate(patches), axis=0))  # type: ignore[return-value]


class FaceRenderer:
    """Renders one identity at `size` x `size`; `render` is fast and deterministic."""

    def __init__(self, identity: Identity, size: int = 128):
        if size < 32:
            raise ValueError(f"size must be >= 32 pixels, got {size}")
        self.identity, self.size = identity, size
        self.ss = 2 if size <= 192 else 1  # mouth supersampling
        self._base, hi = base_images(identity, size, self.ss)
        self._buf = np.empty_like(self._base)
        lay = face_layout(identity)
        self._hw0 = lay.mouth_half_width
        mx, my = lay.mouth
        half_w = self._hw0 * 1.25 + 0.03
        self._box = (
            int(np.floor((mx - half_w) * size)),
            int(np.floor((my - 0.12) * size)),
            int(np.ceil((mx + half_w) * size)),
            int(min(np.ceil((my + 0.2) * size), size)),
        )  # x0, y0, x1, y1 in output pixels: the widest, most open lips stay inside
        x0, y0, x1, y1 = self._box
        self._hi = hi
        ramp = max(2.0, size / 64)  # px
        fy = np.clip(np.minimum(np.arange(y1 - y0), np.arange(y1 - y0)[::-1]) / ramp, 0, 1)
        fx = np.clip(np.minimum(np.arange(x1 - x0), np.arange(x1 - x0)[::-1]) / ramp, 0, 1)
        self._feather = np.outer(fy, fx).astype(np.float32)  # (h, w) patch opacity
        self._hi_patch = np.ascontiguousarray(hi[y0 * self.ss : y1 * self.ss, x0 * self.ss : x1 * self.ss])
        self._work = np.empty_like(self._hi_patch)
        # jaw field: where (and how much) the skin below the mouth follows the jaw, for the
        # whole lower face at 1x and for the supersampled mouth patch
        self._lip_y = my
        self._rows = (int(my * size), min(size, int(np.ceil((lay.chin_y + 0.08) * size))))
        r0, r1 = self._rows
        self._jaw_1x = JawGrid.build(lay, np.arange(size), np.arange(r0, r1), size)
        hs = size * self.ss
        self._hi_split = int(my * hs) - y0 * self.ss  # patch rows above the lip line never move
        cols_hi, rows_hi = np.arange(x0 * self.ss, x1 * self.ss), np.arange(int(my * hs), y1 * self.ss)
        self._jaw_hi = JawGrid.build(lay, cols_hi, rows_hi, hs)
        px = size * self.ss  # patch pixels per image fraction
        self._mouth_scale = px * _ONE
        self._mouth_origin = np.array([(mx * size - x0) * self.ss, (my * size - y0) * self.ss]) * _ONE
        self._eye_px = [(u * size * _ONE, lo * size * _ONE) for u, lo in lay.eyes]
        # the lid's top edge: the upper lid curve raised and widened a little, so a closing
        # lid also hides the static lash line and its rounded ends
        self._lid_top = []
        for (upper, _), (ex, _) in zip(self._eye_px, lay.eye_centres, strict=True):
            top = upper - [0.0, 0.015 * size * _ONE]
            top[:, 0] = ex * size * _ONE + 1.1 * (top[:, 0] - ex * size * _ONE)
            self._lid_top.append(top)
        self._lip_thick = identity.lip_thickness
        self._seam_width = max(1, self.ss // 2)
        self._basis_u = np.stack([np.ones_like(_U), _U2, _U2, _SOFT, _SOFT, _BOW_SOFT])  # rows 2, 4 per frame
        self._basis_v = np.stack([np.ones_like(_V), _V2, _V2, _V_ROUND, _V_TIP])  # row 2 per frame
        lip = identity.lip_color
        self._col = {
            "upper": _c(lip, 0.86),
            "lower": _c(lip, 1.0),
            "shine": _c(lip, 1.12, 14),
            "seam": _c(lip, 0.42),
            "cavity": _c((70, 22, 26), 0.8),
            "tongue": _c((196, 92, 98), 1.0),
            "tongue_back": _c((150, 60, 66), 1.0),
            "teeth": _c(identity.teeth_color),
            "lower_teeth": _c(identity.teeth_color, 0.86),
            "gap": _c(identity.teeth_color, 0.7),
            "lid": _lid_colour(self._base, lay, size),
            "lash": (30, 22, 20),
        }
        self._centre = (0.5 * size, 0.6 * size)

    def _px(self, x: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Curves y (K, N) over shared x (N,) in image fractions from the mouth centre ->
        (K, N, 2) int32 sub-pixel patch coordinates (one conversion per frame, not per shape)."""
        p = np.empty((*ys.shape, 2))
        p[..., 0] = x * self._mouth_scale + self._mouth_origin[0]
        p[..., 1] = ys * self._mouth_scale + self._mouth_origin[1]
        return p.astype(np.int32)

    def _draw_mouth(self, img: np.ndarray, m: tuple[float, ...]) -> None:
        jaw, spread, rnd, close, tuck, teeth, tongue = m
        col, aa = self._col, cv2.LINE_AA
        hw = self._hw0 * (1.0 + 0.2 * spread - 0.32 * rnd - 0.04 * jaw)
        gap, lift, drop = _opening(jaw, close, tuck, teeth)
        r = 0.88 - 0.42 * rnd  # opening width / mouth width
        q = 0.75 - 0.35 * rnd  # rounder opening for rounded lips
        press = 1.0 - 2.0 * max(close - 0.9, 0.0)  # a bilabial seal presses the lips thinner
        t_up = 0.024 * self._lip_thick * (1.0 + 0.45 * rnd) * press
        t_lo = 0.032 * self._lip_thick * (1.0 + 0.35 * rnd) * (1.0 - 0.4 * tuck) * press
        corner = -0.008 * spread + 0.004 * rnd

        # Every lip curve is a combination of fixed profiles across the mouth, so one small
        # matrix product replaces a few dozen tiny numpy operations per frame.
        basis = self._basis_u  # (6, N): 1, u^2, opening, 1 - u^2, thickness, cupid's bow
        np.power(np.maximum(1.0 - _U2 / (r * r), 0.0), q, out=basis[2])
        np.power(_SOFT, 0.5 - 0.2 * rnd, out=basis[4])
        coef = np.array(
            [
                [0.0, corner, -lift, 0.0, 0.0, 0.0],  # upper lip, inner edge
                [0.0, corner, drop, 0.0, 0.0, 0.0],  # lower lip, inner edge
                [0.0, corner, 0.0, -lift, 0.0, 0.0],  # upper lip lifted as a whole
                [0.0, corner, 0.0, drop, 0.0, 0.0],  # lower lip dropped as a whole
                [0.0, 0.0, 0.0, 0.0, -t_up, -t_up * (1.0 - rnd)],  # upper lip thickness
                [0.0, 0.0, 0.0, 0.0, t_lo, 0.0],  # lower lip thickness
            ]
        )
        c = coef @ basis  # (6, N)
        ys = c[:4]  # upper inner, lower inner, upper outer, lower outer
        np.minimum(c[0], c[2], out=ys[2])
        ys[2] += c[4]
        np.maximum(c[1], c[3], out=ys[3])
        ys[3] += c[5]
        ui, li, uo, lo = self._px(_U * hw, ys)

        if lift + drop > 0.0015:
            cv2.fillPoly(img, [np.concatenate((ui, li[::-1]))], col["cavity"], aa, _SHIFT)
            self._draw_inside(img, hw * r, corner, lift, drop, q, teeth, tongue)
        cv2.fillPoly(img, [np.concatenate((uo, ui[::-1]))], col["upper"], aa, _SHIFT)
        cv2.fillPoly(img, [np.concatenate((li, lo[::-1]))], col["lower"], aa, _SHIFT)
        scale = self._mouth_scale
        centre = (int(li[7, 0]), int(0.5 * (li[7, 1] + lo[7, 1]) - 0.1 * t_lo * scale))
        axes = (int(0.3 * hw * scale), int(0.18 * t_lo * scale))
        cv2.ellipse(img, centre, axes, 0, 0, 360, col["shine"], -1, aa, _SHIFT)
        seam = np.concatenate((uo[:1], ui[1:-1], uo[-1:]))  # seam runs into the lip corners
        cv2.polylines(img, [seam], False, col["seam"], self._seam_width + (gap < 0.004), aa, _SHIFT)

    def _draw_inside(self, img, ihw, corner, lift, drop, q, teeth, tongue) -> None:
        """Tongue, teeth and tongue tip inside the opening, each a band between two curves
        clamped to the lips' inner edges, so nothing spills onto the lips or skin."""
        col, aa = self._col, cv2.LINE_AA
        basis = self._basis_v  # (5, M): 1, v^2, opening, tongue body, tongue tip
        np.power(_V_SOFT, q, out=basis[2])
        line = corner * (ihw / self._hw0) ** 2  # x v^2
        tip_y = 0.006 + 0.01 * tongue
        keep = 1.0 - teeth
        coef = np.array(
            [
                [0.0, line, drop, -(0.4 * drop + 0.006), 0.0],  # tongue body
                [0.0, line, drop, 0.0, 0.0],
                # lower incisors ride on the jaw: edge line + 0.78 drop - 0.003 + 0.008 v^2
                [teeth * (0.78 * drop - 0.003), line + 0.008 * teeth, keep * drop, 0.0, 0.0],
                [0.0, line, drop, 0.0, 0.0],
                [tip_y, 0.0, 0.0, 0.0, -0.012 * tongue],  # tongue tip
                [tip_y, 0.0, 0.0, 0.0, 0.02 * tongue],
                [0.0, line, -lift, 0.0, 0.0],  # upper incisors, fixed to the skull:
                [
                    0.005 * teeth,
                    keep * line - 0.008 * teeth,
                    -keep * lift,
                    0.0,
                    0.0,
                ],  # edge 0.005 - 0.008 v^2
                [0.0, line, -lift, 0.0, 0.0],  # the opening: top
                [0.0, line, drop, 0.0, 0.0],  # and bottom
            ]
        )
        c = coef @ basis  # (10, M)
        ys = c[:8]
        np.maximum(ys, c[8], out=ys)  # clamp every band into the opening
        np.minimum(ys, c[9], out=ys)
        visible = (ys[1::2] - ys[0::2]).max(axis=1) > 0.002
        pts = self._px(_V * ihw, ys)
        for k, name in enumerate(("tongue_back", "lower_teeth", "tongue", "teeth")):
            if visible[k] and (k != 2 or tongue > 0.05):
                cv2.fillPoly(img, [np.concatenate((pts[2 * k], pts[2 * k + 1][::-1]))], col[name], aa, _SHIFT)
        if visible[3] and teeth > 0.2 and lift > 0.004:  # gaps between the incisors
            upper = pts[6][_GAP_IDX]  # (5, 2)
            lower = pts[7][_GAP_IDX]
            upper[:, 1] -= int(0.01 * self._mouth_scale)  # start under the lip
            gaps = np.stack((upper, lower), 1)  # (5, 2, 2)
            cv2.polylines(img, list(gaps), False, col["gap"], 1, aa, _SHIFT)

    def _draw_lids(self, img: np.ndarray, blink: float) -> None:
        for (upper, lower), top in zip(self._eye_px, self._lid_top, strict=True):
            edge = upper + min(blink, 1.0) * 1.04 * (lower - upper)
            edge[[0, -1], 0] = top[[0, -1], 0]  # the lid spans the widened corners
            poly = np.round(np.concatenate([top, edge[::-1]])).astype(np.int32)
            cv2.fillPoly(img, [poly], self._col["lid"], cv2.LINE_AA, _SHIFT)
            cv2.polylines(
                img,
                [np.round(edge).astype(np.int32)],
                False,
                self._col["lash"],
                max(1, self.size // 80),
                cv2.LINE_AA,
                _SHIFT,
            )

    def render(
        self,
        mouth: np.ndarray,
        pose: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0),
        blink: float = 0.0,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """One frame (size, size, 3) uint8 RGB.

        mouth: (7,) in MOUTH_PARAMS order, each in [0, 1]. pose: (dx, dy, angle_deg, scale),
        translation in image fractions, rotation and scale about the middle of the face.
        blink: 0 = eyes open, 1 = closed. `out`, if given, receives the frame.
        """
        if np.shape(mouth) != (len(MOUTH_PARAMS),):
            raise ValueError(
                f"mouth must have shape ({len(MOUTH_PARAMS)},) in MOUTH_PARAMS order, got {np.shape(mouth)}"
            )
        buf = self._buf
        np.copyto(buf, self._base)
        x0, y0, x1, y1 = self._box
        values = np.asarray(mouth, dtype=np.float64).tolist()
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"mouth parameters must be finite, got {values}")
        m = tuple(min(max(v, 0.0), 1.0) for v in values)
        jaw, _, _, close, tuck, teeth, _ = m
        chin_drop = _CHIN_FOLLOWS * _opening(jaw, close, tuck, teeth)[2]  # image fraction
        moving = chin_drop * self.size > 0.05
        if moving:  # the chin follows the jaw: pull the lower face down
            r0, r1 = self._rows
            lip_y = self._lip_y
            self._jaw_1x.warp(self._base, lip_y, chin_drop, self.size, buf[r0:r1])
            split = self._hi_split
            self._work[:split] = self._hi_patch[:split]
            self._jaw_hi.warp(self._hi, lip_y, chin_drop, self.size * self.ss, self._work[split:])
        else:
            np.copyto(self._work, self._hi_patch)
        self._draw_mouth(self._work, m)
        if self.ss == 1:
            buf[y0:y1, x0:x1] = self._work
        elif moving:  # feather: 1x and 2x warps of fine texture (stubble) differ slightly
            patch = cv2.resize(self._work, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
            roi = buf[y0:y1, x0:x1]
            roi[:] = cv2.blendLinear(patch, roi, self._feather, 1.0 - self._feather)
        else:
            buf[y0:y1, x0:x1] = cv2.resize(self._work, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        if blink > 0.02:
            self._draw_lids(buf, float(blink))
        dx, dy, angle, scale = (float(v) for v in pose)
        if out is None:
            out = np.empty_like(buf)
        if dx == 0.0 and dy == 0.0 and angle == 0.0 and scale == 1.0:
            np.copyto(out, buf)
            return out
        mat = cv2.getRotationMatrix2D(self._centre, angle, scale)
        mat[:, 2] += (dx * self.size, dy * self.size)
        cv2.warpAffine(
            buf,
            mat,
            (self.size, self.size),
            dst=out,
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT101,
        )
        return out


def neutral_face(identity: Identity, size: int) -> np.ndarray:
    """The identity's reference face: the mouth at rest (the silence target, lips together),
    eyes open, no head motion: (size, size, 3) uint8 RGB. Galleries and the app draw on it."""
    return FaceRenderer(identity, size=size).render(PHONE_TARGETS[SILENCE])


def head_motion(n_frames: int, rng: np.random.Generator, fps: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame nuisance: poses (n, 4) float32 (dx, dy, angle_deg, scale) and blinks (n,) float32.

    Each pose channel is a sum of three slow sinusoids (0.05-0.6 Hz, random phases), i.e. a
    smooth drift of about +-1.5 % translation, +-2.5 degrees and +-2.5 % scale; blinks arrive
    as a Poisson process (about one per 4 s, at least 0.8 s apart) with a 200 ms lid profile.
    """
    t = np.arange(n_frames) / fps  # (n,)
    amplitude = np.array([0.012, 0.01, 2.0, 0.02])
    poses = np.zeros((n_frames, 4))
    for c in range(4):
        freqs = rng.uniform(0.05, 0.6, 3)
        phases = rng.uniform(0, 2 * np.pi, 3)
        weights = rng.dirichlet(np.ones(3))
        poses[:, c] = amplitude[c] * (
            weights[:, None] * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None])
        ).sum(0)
    poses[:, 3] += 1.0
    blinks = np.zeros(n_frames)
    profile = np.array([0.35, 0.9, 1.0, 0.55, 0.2])
    k = int(rng.exponential(2.0) * fps)
    while k < n_frames:
        end = min(k + len(profile), n_frames)
        blinks[k:end] = profile[: end - k]
        k += int((0.8 + rng.exponential(3.2)) * fps)
    return poses.astype(np.float32), blinks.astype(np.float32)


def render_clip(
    identity: Identity, mouth: np.ndarray, rng: np.random.Generator, size: int = 128
) -> np.ndarray:
    """Frames (n, size, size, 3) uint8 for mouth parameters (n, 7), with head drift and blinks
    drawn from `rng` (deterministic given its state)."""
    mouth = np.asarray(mouth)
    if mouth.ndim != 2 or mouth.shape[1] != len(MOUTH_PARAMS):
        raise ValueError(f"mouth must have shape (n, {len(MOUTH_PARAMS)}), got {mouth.shape}")
    renderer = FaceRenderer(identity, size)
    poses, blinks = head_motion(len(mouth), rng)
    frames = np.empty((len(mouth), size, size, 3), np.uint8)
    for i in range(len(mouth)):
        renderer.render(mouth[i], poses[i], blinks[i], out=frames[i])
    return frames
