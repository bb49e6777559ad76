"""Faces in real frames: detect, track, frame a SynthTalk-style crop, paste the mouth back.

Detection uses OpenCV's Haar frontal-face cascade (it ships inside the opencv wheel and runs
offline; its cost is in docs/ARCHITECTURE.md "Measured figures"). Detecting every frame would be slow and
jittery, so `FaceTracker` detects on a downscaled frame every `every` frames (inside a region
around the last face once it has one), follows the face in between by normalised template
matching (which also notices when the face is gone: the match score collapses), and smooths
the crop box with an alpha-beta filter (no lag for steady motion, unlike a moving average).

Crop framing follows SynthTalk (docs/SYNTHTALK.md): the face fills a square crop with the eyes in
the upper half and the mouth centre near 0.72 of the height. A crop box is `(cx, cy, size)`
in frame pixels; `crop_face` samples it to `img_size` and `paste_mouth` maps a generated crop
back through the same box, changing only pixels under a feathered mouth mask.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

CASCADE = "haarcascade_frontalface_alt2.xml"
# Measured on skimage's astronaut: in a Haar box of height h the eyes sit at 0.38 h and the
# mouth centre at 0.83 h. SynthTalk (data/face_base.py) puts the eyes at 0.40 and the mouth
# at 0.72 of the crop; matching that 0.32 eye-to-mouth span gives a crop 1.40 h tall whose
# mouth line is 0.83 h below the box top.
BOX_MOUTH_Y = 0.83
CROP_SCALE = 1.40
CROP_MOUTH_Y = 0.72
# Mouth mask in crop units: an ellipse around the mouth and jaw (the lower half the model
# regenerates), feathered so no seam shows.
MASK_CENTRE = (0.5, 0.75)
MASK_AXES = (0.30, 0.22)
MASK_FEATHER = 0.08

_local = threading.local()


def _cascade() -> cv2.CascadeClassifier:
    """One classifier per thread: detectMultiScale is not documented as thread-safe."""
    if not hasattr(_local, "cascade"):
        _local.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE)
        if _local.cascade.empty():
            raise RuntimeError(f"OpenCV's {CASCADE} is missing from this opencv build")
    return _local.cascade


def _grey(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame


def detect_face(frame: np.ndarray, detect_width: int = 320, min_face: float = 0.08) -> np.ndarray | None:
    """Largest frontal face in an RGB frame `(H, W, 3)` as `[x, y, w, h]` floats, or None.

    The frame is downscaled to `detect_width` wide first (Haar cost grows with area); faces
    smaller than `min_face` of the frame's shorter side are ignored.
    """
    grey = _grey(frame)
    h, w = grey.shape
    scale = min(1.0, detect_width / w)
    small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    small = cv2.equalizeHist(small)
    side = max(20, int(min(small.shape) * min_face))
    rects = _cascade().detectMultiScale(small, 1.1, 4, minSize=(side, side))
    if len(rects) == 0:
        return None
    x, y, rw, rh = max(rects, key=lambda r: r[2] * r[3])
    return np.array([x, y, rw, rh], np.float64) / scale


def box_from_face(rect: np.ndarray) -> np.ndarray:
    """SynthTalk crop box `[cx, cy, size]` from a Haar face rectangle `[x, y, w, h]`."""
    x, y, w, h = rect
    size = CROP_SCALE * h
    mouth_y = y + BOX_MOUTH_Y * h
    cy = mouth_y - (CROP_MOUTH_Y - 0.5) * size
    return np.array([x + w / 2, cy, size], np.float64)


def full_frame_box(height: int, width: int) -> np.ndarray:
    """The box of a frame that already is a face crop (SynthTalk renders, corpus frames)."""
    return np.array([width / 2, height / 2, min(width, height)], np.float64)


def _crop_matrix(box: np.ndarray, size: int) -> np.ndarray:
    """Affine map from frame pixels to crop pixels (pixel centres line up)."""
    cx, cy, side = box
    s = size / side
    return np.array([[s, 0, size / 2 - s * cx - 0.5 + s * 0.5], [0, s, size / 2 - s * cy - 0.5 + s * 0.5]])


def crop_face(frame: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """The crop box of an RGB frame resampled to `(size, size, 3)` uint8; edges replicate
    where the box leaves the frame."""
    m = _crop_matrix(box, size)
    interp = cv2.INTER_AREA if box[2] > size else cv2.INTER_LINEAR
    return cv2.warpAffine(frame, m, (size, size), flags=interp, borderMode=cv2.BORDER_REPLICATE)


def mouth_mask(size: int) -> np.ndarray:
    """Feathered mouth mask `(size, size)` float32 in [0, 1].

    An ellipse around mouth and jaw (the lower half the model regenerates); the weight ramps
    from 0 at the ellipse edge to 1 at MASK_FEATHER inside it (smoothstep of the distance to
    the edge), so it is exactly 0 outside the ellipse and no seam shows inside.
    """
    inside = np.zeros((size, size), np.uint8)
    centre = (int(round(MASK_CENTRE[0] * size)), int(round(MASK_CENTRE[1] * size)))
    axes = (int(round(MASK_AXES[0] * size)), int(round(MASK_AXES[1] * size)))
    cv2.ellipse(inside, centre, axes, 0, 0, 360, 1, -1)
    inside[[0, -1], :] = inside[:, [0, -1]] = 0  # weight 0 on the crop's border: no edge seam
    dist = cv2.distanceTransform(inside, cv2.DIST_L2, 5)  # px to the nearest outside pixel
    x = np.clip(dist / (MASK_FEATHER * size), 0.0, 1.0)
    return (x * x * (3 - 2 * x)).astype(np.float32)


def match_colours(generated: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shift/scale each channel of `generated` so its mask-weighted mean and spread match
    `original` (Reinhard-style transfer restricted to the mouth region): a model trained on
    synthetic faces otherwise paints a mouth whose skin tone does not match the person.
    Both crops `(S, S, 3)` uint8; returns float32."""
    w = mask[..., None].astype(np.float32)
    total = float(w.sum())
    g = generated.astype(np.float32)
    if total < 1.0:
        return g
    o = original.astype(np.float32)
    mu_g = (g * w).sum((0, 1)) / total
    mu_o = (o * w).sum((0, 1)) / total
    sd_g = np.sqrt(((g - mu_g) ** 2 * w).sum((0, 1)) / total) + 1e-3
    sd_o = np.sqrt(((o - mu_o) ** 2 * w).sum((0, 1)) / total) + 1e-3
    return (g - mu_g) * np.clip(sd_o / sd_g, 0.5, 2.0) + mu_o


def paste_mouth(
    frame: np.ndarray,
    box: np.ndarray,
    generated: np.ndarray,
    mask: np.ndarray | None = None,
    colour_match: bool = True,
) -> np.ndarray:
    """Blend a generated crop `(S, S, 3)` uint8 back into `frame` through `box`.

    Only pixels under the feathered mouth mask change (a copy is returned; the input frame
    is untouched). Work is confined to the mask's bounding box in frame coordinates.
    """
    size = generated.shape[0]
    mask = mouth_mask(size) if mask is None else mask
    out = frame.copy()
    fh, fw = frame.shape[:2]
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return out
    cx, cy, side = box
    s = side / size
    # Frame-space bounding box of the mask support, clipped to the frame.
    x0 = max(0, int(np.floor(cx + (xs.min() - size / 2) * s)) - 1)
    x1 = min(fw, int(np.ceil(cx + (xs.max() + 1 - size / 2) * s)) + 1)
    y0 = max(0, int(np.floor(cy + (ys.min() - size / 2) * s)) - 1)
    y1 = min(fh, int(np.ceil(cy + (ys.max() + 1 - size / 2) * s)) + 1)
    if x0 >= x1 or y0 >= y1:
        return out
    gen = generated
    if colour_match:
        gen = match_colours(generated, crop_face(frame, box, size), mask)
    # The crop map (frame px -> crop px) shifted to the region's origin; with
    # WARP_INVERSE_MAP warpAffine samples the crop at the mapped position of each region px.
    m = _crop_matrix(box, size)
    m[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    region = (x1 - x0, y1 - y0)
    gen_r = cv2.warpAffine(gen.astype(np.float32), m, region, flags=flags)
    m_r = cv2.warpAffine(mask, m, region, flags=flags, borderValue=0)[..., None]
    orig = out[y0:y1, x0:x1].astype(np.float32)
    blend = np.clip(orig * (1 - m_r) + gen_r * m_r + 0.5, 0, 255).astype(np.uint8)
    # Exactly the original wherever the mask is zero: no rounding drift outside the mouth.
    out[y0:y1, x0:x1] = np.where(m_r > 0, blend, out[y0:y1, x0:x1])
    return out


@dataclass
class TrackerStats:
    detections: int = 0  # Haar runs
    faceless: int = 0  # frames reported without a face


class FaceTracker:
    """Streaming face tracker: call `update(frame)` per frame, in order; returns a crop box
    `[cx, cy, size]` or None (no face: the caller passes the frame through unchanged).

    State carries across calls, so chunks of a long video are tracked as one sequence.
    """

    TEMPLATE = 32  # template side in pixels (face rect resampled), small = fast
    MIN_SCORE = 0.45  # TM_CCOEFF_NORMED below this: the face is gone or occluded
    MAX_MISSES = 2  # keyframes in a row without a detection before the track is dropped

    def __init__(self, every: int = 5, detect_width: int = 320, alpha: float = 0.6, beta: float = 0.15):
        self.every = every
        self.detect_width = detect_width
        self.alpha, self.beta = alpha, beta
        self.stats = TrackerStats()
        self._rect: np.ndarray | None = None  # last face rect [x, y, w, h] (frame px)
        self._template: np.ndarray | None = None
        self._state: np.ndarray | None = None  # filtered [cx, cy, size]
        self._vel = np.zeros(2)
        self._since_detect = 0
        self._misses = 0
        self._since_lost = 0

    def _detect(self, frame: np.ndarray) -> np.ndarray | None:
        self.stats.detections += 1
        if self._rect is not None:
            # Search a window three face-widths wide around the track first: small and fast.
            x, y, w, h = self._rect
            fh, fw = frame.shape[:2]
            x0, y0 = int(max(0, x - w)), int(max(0, y - h))
            x1, y1 = int(min(fw, x + 2 * w)), int(min(fh, y + 2 * h))
            if x1 - x0 > w and y1 - y0 > h:
                # Downscale so the face is ~64 px: plenty for Haar, cheap to scan.
                rect = detect_face(frame[y0:y1, x0:x1], detect_width=192, min_face=0.2)
                if rect is not None:
                    return rect + np.array([x0, y0, 0, 0])
        return detect_face(frame, self.detect_width)

    def _template_of(self, grey: np.ndarray, rect: np.ndarray) -> np.ndarray:
        box = np.array([rect[0] + rect[2] / 2, rect[1] + rect[3] / 2, rect[3]])
        return crop_face(grey[..., None].repeat(3, -1), box, self.TEMPLATE)[..., 0]

    def _follow(self, grey: np.ndarray) -> np.ndarray | None:
        """Template-match the last face around its old place; None when the score collapses."""
        x, y, w, h = self._rect
        s = self.TEMPLATE / h
        small = cv2.resize(grey, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        t = self.TEMPLATE
        sx, sy = int(round(x * s)) - t // 2, int(round(y * s)) - t // 2
        x0, y0 = max(0, sx), max(0, sy)
        x1, y1 = min(small.shape[1], sx + 2 * t), min(small.shape[0], sy + 2 * t)
        window = small[y0:y1, x0:x1]
        if window.shape[0] < t or window.shape[1] < t or self._template.std() < 1:
            return None
        scores = cv2.matchTemplate(window, self._template, cv2.TM_CCOEFF_NORMED)
        _, best, _, (bx, by) = cv2.minMaxLoc(scores)
        if not np.isfinite(best) or best < self.MIN_SCORE:
            return None
        return np.array([(x0 + bx) / s, (y0 + by) / s, w, h])

    def _accept(self, rect: np.ndarray, grey: np.ndarray, detected: bool) -> np.ndarray:
        self._rect = rect
        if detected:
            self._template = self._template_of(grey, rect)
            self._since_detect = 0
            self._misses = 0
        box = box_from_face(rect)
        if self._state is None:
            self._state, self._vel = box, np.zeros(2)
            return self._state.copy()
        pred = self._state[:2] + self._vel
        resid = box[:2] - pred
        centre = pred + self.alpha * resid
        self._vel = self._vel + self.beta * resid
        size = self._state[2] + (0.3 * (box[2] - self._state[2]) if detected else 0.0)
        self._state = np.array([centre[0], centre[1], size])
        return self._state.copy()

    def _lose(self) -> None:
        self._rect = self._template = self._state = None
        self._vel = np.zeros(2)
        self._since_lost = 0

    def update(self, frame: np.ndarray) -> np.ndarray | None:
        """Crop box of the face in this RGB frame `(H, W, 3)`, or None when there is none."""
        grey = _grey(frame)
        if self._rect is None:
            # Lost: look every frame for a short while (a cut or a blink of blank frames),
            # then only every `every` frames so long faceless stretches stay cheap.
            self._since_lost += 1
            if self._since_lost <= self.every or self._since_lost % self.every == 0:
                rect = self._detect(frame)
                if rect is not None:
                    return self._accept(rect, grey, detected=True)
            self.stats.faceless += 1
            return None
        self._since_detect += 1
        followed = self._follow(grey)
        if followed is None or self._since_detect >= self.every:
            rect = self._detect(frame)
            if rect is not None:
                return self._accept(rect, grey, detected=True)
            self._misses += 1
            if followed is None or self._misses > self.MAX_MISSES:
                self._lose()
                self.stats.faceless += 1
                return None
        return self._accept(followed, grey, detected=False)


def still_box(image: np.ndarray) -> np.ndarray | None:
    """Crop box for a still photo (one detection at full resolution-ish, no tracking)."""
    rect = detect_face(image, detect_width=min(640, image.shape[1]))
    return None if rect is None else box_from_face(rect)
