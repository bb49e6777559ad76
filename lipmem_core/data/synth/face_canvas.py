"""Painting helpers for the static face layers: a supersampled float canvas with soft masks.

Coordinates are image fractions (x right, y down, both in [0, 1]); `Canvas(size)` works at
`SS` x the output size and `image(size)` area-downsamples it, which antialiases every edge.
"""

from __future__ import annotations

import cv2
import numpy as np

SS = 2  # supersampling of the static layers (4 looks the same and costs 7x)


class Canvas:
    """A float32 RGB canvas at `SS` x the output size with soft painting helpers."""

    def __init__(self, size: int):
        self.n = size * SS
        self.img = np.zeros((self.n, self.n, 3), np.float32)
        ys, xs = np.mgrid[0 : self.n, 0 : self.n].astype(np.float32) / self.n
        self.xs, self.ys = xs, ys  # (n, n) image-fraction coordinates

    def px(self, pts: np.ndarray) -> np.ndarray:
        return np.round(np.asarray(pts) * self.n).astype(np.int32)

    def mask(self, polys=(), ellipses=(), lines=(), blur: float = 0.0) -> np.ndarray:
        """(n, n) float32 in [0, 1]: polygons, ellipses ((cx, cy), (ax, ay), angle) and
        polylines ((pts, thickness)) in image fractions, optionally blurred (sigma, fraction)."""
        m = np.zeros((self.n, self.n), np.uint8)
        for p in polys:
            cv2.fillPoly(m, [self.px(p)], 255, cv2.LINE_AA)
        for (cx, cy), (ax, ay), angle in ellipses:
            centre, axes = self.px((cx, cy)), self.px((ax, ay))
            cv2.ellipse(m, tuple(centre), tuple(np.maximum(axes, 1)), angle, 0, 360, 255, -1, cv2.LINE_AA)
        for pts, thick in lines:
            cv2.polylines(m, [self.px(pts)], False, 255, max(1, round(thick * self.n)), cv2.LINE_AA)
        out = m.astype(np.float32) / 255.0
        if blur > 0:  # blur only around what was drawn: most shapes are small
            sigma = blur * self.n
            box = _bbox(m, pad=int(np.ceil(4 * sigma)) + 1)
            if box is not None:
                roi = out[box]
                roi[:] = cv2.GaussianBlur(roi, (0, 0), sigma)
        return out

    def paint(self, mask: np.ndarray, colour, alpha: float = 1.0) -> None:
        """Blend towards `colour` by mask * alpha (only inside the mask's bounding box)."""
        box = _bbox(mask)
        if box is not None:
            img = self.img[box]
            img += (np.asarray(colour, np.float32) - img) * (mask[box] * alpha)[..., None]

    def shade(self, mask: np.ndarray, factor: float) -> None:
        """Multiply by `factor` under the mask (darken < 1 < lighten), keeping hue."""
        box = _bbox(mask)
        if box is not None:
            self.img[box] *= 1.0 + (factor - 1.0) * mask[box][..., None]

    def image(self, size: int) -> np.ndarray:
        """The canvas area-downsampled to (size, size, 3) uint8, read-only."""
        small = cv2.resize(self.img, (size, size), interpolation=cv2.INTER_AREA)
        out = np.clip(np.round(small), 0, 255).astype(np.uint8)
        out.setflags(write=False)
        return out


def _bbox(mask: np.ndarray, pad: int = 0) -> tuple[slice, slice] | None:
    """Slices of the smallest box holding every non-zero pixel (grown by `pad`), or None."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask[rows[0] : rows[-1] + 1].any(axis=0))
    n_rows, n_cols = mask.shape
    return (
        slice(max(rows[0] - pad, 0), min(rows[-1] + 1 + pad, n_rows)),
        slice(max(cols[0] - pad, 0), min(cols[-1] + 1 + pad, n_cols)),
    )


def scaled(colour, factor: float, add=(0, 0, 0)) -> tuple[float, ...]:
    return tuple(float(np.clip(c * factor + a, 0, 255)) for c, a in zip(colour, add, strict=True))


def smoothstep(a: float, b: float, t: np.ndarray) -> np.ndarray:
    """0 below a, 1 above b, cubic in between (C1-continuous)."""
    t = np.clip((t - a) / (b - a), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
