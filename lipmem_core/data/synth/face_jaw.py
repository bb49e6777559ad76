"""The chin follows the jaw: a vertical remap of the lower face, per frame.

The renderer draws the lower lip dropped by the jaw; the skin under it, the chin and the jaw
line must move with it, or an open mouth looks pasted on. `JawGrid` holds, for one block of
pixels (the whole lower face at 1x, or the renderer's supersampled mouth patch), the identity
remap grids and how strongly each pixel follows the chin, so that a frame costs one small
numpy product and one `cv2.remap`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lipmem_core.data.synth.face_canvas import smoothstep
from lipmem_core.data.synth.face_layout import FaceLayout


@dataclass(frozen=True)
class JawGrid:
    """A pixel block that may follow the chin: identity remap grids (h, w) in its image's
    pixels, its rows' image fractions (h,), a column weight (w,) that is 1 in the middle of
    the face and 0 beside it (the jaw hinges near the ears), and a row fade (h,) from 1 at the
    chin to 0 down the neck."""

    map_x: np.ndarray
    map_y: np.ndarray
    y: np.ndarray
    across: np.ndarray
    fade: np.ndarray

    @classmethod
    def build(cls, lay: FaceLayout, cols: np.ndarray, rows: np.ndarray, scale: int) -> JawGrid:
        x = (cols + 0.5) / scale - 0.5  # image fractions from the face's middle
        y = (rows + 0.5) / scale
        map_x, map_y = np.meshgrid(cols.astype(np.float32), rows.astype(np.float32))
        return cls(
            map_x=map_x,
            map_y=map_y,
            y=y,
            across=(1.0 - smoothstep(0.1, lay.half_width + 0.04, np.abs(x))).astype(np.float32),
            fade=1.0 - smoothstep(lay.chin_y, lay.chin_y + 0.07, y),
        )

    def warp(self, src: np.ndarray, lip_y: float, drop: float, scale: int, dst: np.ndarray) -> None:
        """Pull the block down by `drop` (image fraction) where it follows the chin.

        Below the lip line the weight rises over 1.8 x drop + 0.01, so the source row
        y - drop * w(y) always increases with y (max slope 1.5 drop / ramp < 1): the skin
        stretches and never folds back over itself.
        """
        t = np.minimum(np.maximum((self.y - lip_y) / (1.8 * drop + 0.01), 0.0), 1.0)
        ramp = t * t * (3.0 - 2.0 * t) * self.fade  # (h,) smoothstep, inlined: per frame
        shift = (np.float32(drop * scale) * ramp.astype(np.float32))[:, None] * self.across  # (h, w)
        cv2.remap(
            src, self.map_x, self.map_y - shift, cv2.INTER_LINEAR, dst=dst, borderMode=cv2.BORDER_REPLICATE
        )
