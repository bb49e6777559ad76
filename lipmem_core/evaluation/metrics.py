"""Evaluation metrics: image quality, lip-sync error and the phone x slot statistics.

Three families, all pure numpy (no torch), used by `lipmem_core.evaluation.evaluate` and by `analysis/`
(which must import them from here: this is their single implementation).

- Image quality: PSNR and SSIM (Wang et al. 2004, Gaussian window sigma 1.5) on the full face
  and on a fixed mouth-region crop (`MOUTH_BOX`).
- Lip sync: LSE-D, LSE-C and the AV offset from SyncNet embeddings, following
  syncnet_python's `calc_pdist` / `evaluate` exactly (docs/PAPER.md "Evaluation").
- Memory: the joint P(phone, slot) of frame-level phone labels and the argmax slot of A_aud,
  with PNMI, purities, slot-usage entropy and dead slots (HuBERT's measure_teacher_quality;
  docs/PAPER.md "The memory analysis").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import pandas as pd

from lipmem_core.phones import viseme_of

# ---------------------------------------------------------------------------------------------
# Image quality
# ---------------------------------------------------------------------------------------------

# Mouth region as fractions of the crop: (top, bottom, left, right). SynthTalk draws the mouth
# centred horizontally at about 0.72 H; a face-detector crop of a real face puts it in the same
# place. The box covers the lips fully open and the chin's upper part, nothing above the nose.
MOUTH_BOX: tuple[float, float, float, float] = (0.56, 0.90, 0.26, 0.74)

_SSIM_SIGMA = 1.5
_SSIM_RADIUS = 5  # int(3.5 * sigma + 0.5): the kernel half-width scikit-image uses
_SSIM_K1, _SSIM_K2 = 0.01, 0.03
_DATA_RANGE = 255.0


def to_float255(images: np.ndarray) -> np.ndarray:
    """uint8 images, or float images in [-1, 1] (the model's range), as float64 on [0, 255]."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float64)
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images must be uint8 or float in [-1, 1], got dtype {images.dtype}")
    lo, hi = float(images.min()), float(images.max())
    if lo < -1.0 - 1e-3 or hi > 1.0 + 1e-3:
        raise ValueError(
            f"float images must lie in [-1, 1] (the model's pixel range), got [{lo:.3f}, {hi:.3f}]"
            "; pass uint8 for 0..255 images"
        )
    return (images.astype(np.float64) + 1.0) * 127.5


def _as_batch(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as float64 (N, H, W, C) on [0, 255]; shapes must agree."""
    fa, fb = to_float255(a), to_float255(b)
    if fa.shape != fb.shape:
        raise ValueError(f"image shapes differ: {fa.shape} vs {fb.shape}")
    if fa.ndim == 2:  # one grey image (H, W)
        fa, fb = fa[None, ..., None], fb[None, ..., None]
    elif fa.ndim == 3:  # one image (H, W, C)
        fa, fb = fa[None], fb[None]
    elif fa.ndim != 4:
        raise ValueError(f"expected (H, W), (H, W, C) or (N, H, W, C) images, got {fa.shape}")
    return fa, fb


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB, peak 255, averaged over frames.

    a, b: (H, W[, C]) or (N, H, W, C), uint8 or float in [-1, 1]. Each frame's PSNR is
    10 log10(255^2 / MSE); identical frames give +inf, so identical clips give +inf.
    """
    fa, fb = _as_batch(a, b)
    mse = ((fa - fb) ** 2).reshape(len(fa), -1).mean(axis=1)  # (N,)
    with np.errstate(divide="ignore"):
        per_frame = 10.0 * np.log10(_DATA_RANGE**2 / mse)
    return float(per_frame.mean())


def _gaussian(x: np.ndarray) -> np.ndarray:
    size = 2 * _SSIM_RADIUS + 1
    return cv2.GaussianBlur(x, (size, size), _SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)


def _ssim_plane(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM of one (H, W) float64 plane, the mean over the valid (un-padded) interior."""
    c1, c2 = (_SSIM_K1 * _DATA_RANGE) ** 2, (_SSIM_K2 * _DATA_RANGE) ** 2
    mx, my = _gaussian(x), _gaussian(y)
    vx = _gaussian(x * x) - mx * mx
    vy = _gaussian(y * y) - my * my
    cxy = _gaussian(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    r = _SSIM_RADIUS  # the border, where the window leaves the image, is excluded
    return float(s[r:-r, r:-r].mean())


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004), averaged over channels and frames.

    Gaussian window sigma 1.5 (radius 5), K1 = 0.01, K2 = 0.03, peak 255, population
    covariances; equal to scikit-image's `structural_similarity(gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=255)`. Frames need H, W >= 11.
    """
    fa, fb = _as_batch(a, b)
    if min(fa.shape[1:3]) < 2 * _SSIM_RADIUS + 1:
        raise ValueError(f"SSIM needs images of at least 11x11 pixels, got {fa.shape[1:3]}")
    values = [
        _ssim_plane(fa[n, :, :, c], fb[n, :, :, c]) for n in range(fa.shape[0]) for c in range(fa.shape[3])
    ]
    return float(np.mean(values))


def mouth_box_slices(h: int, w: int) -> tuple[slice, slice]:
    """Rows and columns of `MOUTH_BOX` in an h x w image (the training loss crops the same box)."""
    top, bottom, left, right = MOUTH_BOX
    return slice(round(top * h), round(bottom * h)), slice(round(left * w), round(right * w))


def mouth_crop(images: np.ndarray) -> np.ndarray:
    """The `MOUTH_BOX` region of (H, W[, C]) or (N, H, W, C) images (a view, same dtype)."""
    images = np.asarray(images)
    h_axis = 1 if images.ndim == 4 else 0
    rows, cols = mouth_box_slices(images.shape[h_axis], images.shape[h_axis + 1])
    return images[:, rows, cols] if images.ndim == 4 else images[rows, cols]


# ---------------------------------------------------------------------------------------------
# Lip sync: LSE-D, LSE-C, AV offset
# ---------------------------------------------------------------------------------------------

LSE_VSHIFT = 15  # offsets -15..+15 frames, as syncnet_python's default --vshift
_PAIRWISE_EPS = 1e-6  # torch.nn.functional.pairwise_distance adds eps to the difference


@dataclass(frozen=True)
class SyncScore:
    """Sync of one clip. `mean_dist[j]` is the mean distance at offset `vshift - j`."""

    lse_d: float  # min over offsets of the mean distance
    lse_c: float  # median over offsets minus that min (confidence)
    offset: int  # AV offset in frames at the min; 0 is perfect sync
    mean_dist: np.ndarray  # (2 * vshift + 1,)


def sync_distances(video_emb: np.ndarray, audio_emb: np.ndarray, vshift: int = LSE_VSHIFT) -> np.ndarray:
    """Distances between each video embedding and the audio embeddings around it.

    video_emb, audio_emb: (N, D), row i from SyncNet on the 5-frame window starting (or
    centred) at frame i and on that window's mel. Returns (N, 2 vshift + 1): entry [i, j] is
    || v_i - a_{i + j - vshift} + eps || (Euclidean), the audio sequence zero-padded by vshift
    at both ends exactly as syncnet_python's `calc_pdist` does.
    """
    v = np.asarray(video_emb, dtype=np.float64)
    a = np.asarray(audio_emb, dtype=np.float64)
    if v.ndim != 2 or v.shape != a.shape:
        raise ValueError(f"need (N, D) video and audio embeddings, got {v.shape} and {a.shape}")
    padded = np.pad(a, ((vshift, vshift), (0, 0)))  # (N + 2 vshift, D)
    win = 2 * vshift + 1
    idx = np.arange(len(v))[:, None] + np.arange(win)[None, :]  # (N, win)
    diff = v[:, None, :] - padded[idx] + _PAIRWISE_EPS  # (N, win, D)
    return np.sqrt((diff**2).sum(axis=-1))


def lse(video_emb: np.ndarray, audio_emb: np.ndarray, vshift: int = LSE_VSHIFT) -> SyncScore:
    """LSE-D, LSE-C and AV offset of one clip (syncnet_python's `evaluate`).

    The mean over frames of `sync_distances` gives one distance per offset; LSE-D is its min,
    LSE-C the median minus the min, and the offset is `vshift - argmin`: a positive offset
    means the video's best-matching audio lies that many frames EARLIER.
    """
    mean_dist = sync_distances(video_emb, audio_emb, vshift).mean(axis=0)  # (2 vshift + 1,)
    j = int(np.argmin(mean_dist))
    d_min = float(mean_dist[j])
    return SyncScore(
        lse_d=d_min,
        lse_c=float(np.median(mean_dist)) - d_min,
        offset=vshift - j,
        mean_dist=mean_dist,
    )


# ---------------------------------------------------------------------------------------------
# Phone x slot statistics of the memory
# ---------------------------------------------------------------------------------------------


def joint_distribution(
    phones: Sequence[str] | np.ndarray | pd.Series,
    slots: Sequence[int] | np.ndarray | pd.Series,
    n_slots: int,
) -> pd.DataFrame:
    """P(phone, slot) from one row per frame (phone label, argmax slot of A_aud).

    Returns a (n_phone_labels, n_slots) DataFrame: rows the observed labels (sorted),
    columns every slot 0..n_slots-1 (unused slots are all-zero columns); it sums to 1.
    """
    phones = np.asarray(phones, dtype=object)
    slots = np.asarray(slots)
    if phones.shape != slots.shape or phones.ndim != 1:
        raise ValueError(f"phones and slots must be equal-length 1-D, got {phones.shape}, {slots.shape}")
    if len(slots) == 0:
        raise ValueError("no frames: the phone x slot statistics need at least one frame")
    if not np.issubdtype(slots.dtype, np.integer):
        raise ValueError(f"slots must be integer slot indices, got dtype {slots.dtype}")
    if slots.min() < 0 or slots.max() >= n_slots:
        raise ValueError(f"slot indices must lie in [0, {n_slots}), got {slots.min()}..{slots.max()}")
    labels, inverse = np.unique(phones.astype(str), return_inverse=True)
    counts = np.zeros((len(labels), n_slots), dtype=np.float64)
    np.add.at(counts, (inverse, slots), 1.0)
    joint = pd.DataFrame(counts / counts.sum(), index=pd.Index(labels, name="phone"))
    joint.columns.name = "slot"
    return joint


def _entropy_bits(p: np.ndarray) -> float:
    p = p[p > 0]
    return max(0.0, float(-(p * np.log2(p)).sum()))  # max: one outcome gives -0.0, not 0.0


def mutual_information_bits(joint: pd.DataFrame | np.ndarray) -> float:
    """I(phone; slot) in bits from a joint distribution (rows phones, columns slots)."""
    pxy = np.asarray(joint, dtype=np.float64)
    px = pxy.sum(axis=1, keepdims=True)  # (P, 1)
    py = pxy.sum(axis=0, keepdims=True)  # (1, S)
    nz = pxy > 0
    return float((pxy[nz] * np.log2(pxy[nz] / (px @ py)[nz])).sum())


def pnmi(joint: pd.DataFrame | np.ndarray) -> float:
    """Phone-normalised mutual information I(phone; slot) / H(phone), in [0, 1].

    1 when the slot determines the phone; 0 when they are independent. NaN when only one
    phone occurs (H(phone) = 0: there is nothing to explain).
    """
    pxy = np.asarray(joint, dtype=np.float64)
    h_phone = _entropy_bits(pxy.sum(axis=1))
    if h_phone == 0.0:
        return math.nan
    return mutual_information_bits(pxy) / h_phone


def phone_purity(joint: pd.DataFrame | np.ndarray) -> float:
    """sum_slot max_phone P(phone, slot): accuracy of labelling each slot by its majority phone."""
    return float(np.asarray(joint, dtype=np.float64).max(axis=0).sum())


def slot_purity(joint: pd.DataFrame | np.ndarray) -> float:
    """sum_phone max_slot P(phone, slot) (HuBERT's cluster purity): how much each phone keeps
    to its own most frequent slot."""
    return float(np.asarray(joint, dtype=np.float64).max(axis=1).sum())


def viseme_purity(joint: pd.DataFrame, to_viseme: Callable[[str], str] = viseme_of) -> float:
    """Phone purity with phones merged into viseme classes: sum_slot max_viseme P(viseme, slot).

    Phones that look alike (P/B/M) sharing a slot are not penalised: the memory stores lip
    shapes, so this is the purity it can reach from pictures alone.
    """
    classes = [to_viseme(str(p)) for p in joint.index]
    by_viseme = joint.groupby(classes, sort=True).sum()  # (n_visemes, S)
    return phone_purity(by_viseme)


def usage_entropy_bits(joint: pd.DataFrame | np.ndarray) -> float:
    """H(slot) in bits of the argmax slot's marginal; log2(S) when every slot is used equally."""
    return _entropy_bits(np.asarray(joint, dtype=np.float64).sum(axis=0))


def dead_slots(joint: pd.DataFrame | np.ndarray) -> int:
    """Number of slots that are never the argmax of any frame."""
    return int((np.asarray(joint, dtype=np.float64).sum(axis=0) == 0).sum())


@dataclass(frozen=True)
class SlotStats:
    """Summary of P(phone, slot) over a set of frames (docs/PAPER.md "The memory analysis")."""

    n_frames: int
    n_phones: int  # distinct phone labels observed
    n_slots: int  # S
    pnmi: float
    mutual_information_bits: float
    phone_entropy_bits: float
    phone_purity: float
    slot_purity: float
    viseme_purity: float
    usage_entropy_bits: float
    usage_entropy_norm: float  # H(slot) / log2(S), in [0, 1]
    dead_slots: int
    used_slots: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def slot_statistics(
    phones: Sequence[str] | np.ndarray | pd.Series,
    slots: Sequence[int] | np.ndarray | pd.Series,
    n_slots: int,
    to_viseme: Callable[[str], str] = viseme_of,
) -> SlotStats:
    """All memory statistics of frames labelled (phone, argmax slot of A_aud).

    phones: (N,) labels (ARPAbet and "sil"); slots: (N,) ints in [0, n_slots).
    """
    joint = joint_distribution(phones, slots, n_slots)
    used = n_slots - dead_slots(joint)
    h_usage = usage_entropy_bits(joint)
    return SlotStats(
        n_frames=len(np.asarray(slots)),
        n_phones=len(joint.index),
        n_slots=n_slots,
        pnmi=pnmi(joint),
        mutual_information_bits=mutual_information_bits(joint),
        phone_entropy_bits=_entropy_bits(joint.to_numpy().sum(axis=1)),
        phone_purity=phone_purity(joint),
        slot_purity=slot_purity(joint),
        viseme_purity=viseme_purity(joint, to_viseme),
        usage_entropy_bits=h_usage,
        usage_entropy_norm=h_usage / math.log2(n_slots) if n_slots > 1 else 0.0,
        dead_slots=n_slots - used,
        used_slots=used,
    )
