"""Phones -> mouth shapes over time, with coarticulation (docs/SYNTHTALK.md "From phones to mouth shapes").

Each phone has an articulatory target in `MOUTH_PARAMS` (all in [0, 1]). Targets are blended
over time with dominance functions in the style of Cohen and Massaro (1993): phone i pulls
parameter p towards its target with a dominance that is maximal (a_ip) inside its interval
and decays exponentially outside it, faster after the phone (carry-over) than before it
(anticipation). The mouth at time t is the dominance-weighted mean of all targets, so it moves
continuously and starts shaping the next phone early.

Lip closure (P B M) and labiodental tuck (F V) are ballistic gestures that real speakers always
complete, however short the phone; a weighted mean cannot promise that, so each such phone also
carries a gesture envelope (1 around its centre, raised-cosine ramps either side) and the
parameter is the larger of the blend and the envelope. The flat top is wide enough that the
video frame containing the phone's centre is sealed even for a 40 ms /b/.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lipmem_core.config import FPS
from lipmem_core.phones import SILENCE, Interval, normalize_phone

MOUTH_PARAMS = ("jaw", "spread", "round", "close", "tuck", "teeth", "tongue")
_JAW, _SPREAD, _ROUND, _CLOSE, _TUCK, _TEETH, _TONGUE = range(len(MOUTH_PARAMS))

# Targets: (jaw, spread, round, close, tuck, teeth, tongue). Spread 0.2 is the neutral width.
_TARGETS: dict[str, tuple[float, ...]] = {
    # open vowels: jaw open, AA widest
    "AA": (1.00, 0.30, 0.05, 0.0, 0.0, 0.45, 0.10),
    "AE": (0.85, 0.60, 0.00, 0.0, 0.0, 0.70, 0.10),
    "AH": (0.65, 0.30, 0.05, 0.0, 0.0, 0.50, 0.05),
    "AO": (0.80, 0.10, 0.55, 0.0, 0.0, 0.40, 0.05),
    "AW": (0.85, 0.30, 0.20, 0.0, 0.0, 0.50, 0.05),
    "AY": (0.88, 0.40, 0.00, 0.0, 0.0, 0.55, 0.05),
    "EH": (0.55, 0.55, 0.00, 0.0, 0.0, 0.65, 0.10),
    "OY": (0.70, 0.10, 0.60, 0.0, 0.0, 0.40, 0.05),
    # spread vowels and glide
    "IY": (0.22, 1.00, 0.00, 0.0, 0.0, 0.85, 0.05),
    "IH": (0.35, 0.75, 0.00, 0.0, 0.0, 0.75, 0.05),
    "EY": (0.45, 0.75, 0.00, 0.0, 0.0, 0.75, 0.05),
    "Y": (0.18, 0.85, 0.00, 0.0, 0.0, 0.80, 0.00),
    # rounded
    "W": (0.12, 0.00, 1.00, 0.0, 0.0, 0.10, 0.00),
    "UW": (0.22, 0.00, 0.95, 0.0, 0.0, 0.20, 0.00),
    "UH": (0.35, 0.05, 0.75, 0.0, 0.0, 0.30, 0.00),
    "OW": (0.55, 0.00, 0.80, 0.0, 0.0, 0.30, 0.05),
    "R": (0.25, 0.05, 0.65, 0.0, 0.0, 0.40, 0.00),
    "ER": (0.35, 0.10, 0.60, 0.0, 0.0, 0.40, 0.00),
    # bilabial
    "P": (0.10, 0.25, 0.05, 1.0, 0.0, 0.00, 0.00),
    "B": (0.10, 0.25, 0.05, 1.0, 0.0, 0.00, 0.00),
    "M": (0.08, 0.25, 0.05, 1.0, 0.0, 0.00, 0.00),
    # labiodental
    "F": (0.15, 0.35, 0.00, 0.0, 1.0, 0.90, 0.00),
    "V": (0.15, 0.35, 0.00, 0.0, 1.0, 0.90, 0.00),
    # dental: tongue tip between the teeth
    "TH": (0.28, 0.40, 0.00, 0.0, 0.0, 0.80, 1.00),
    "DH": (0.26, 0.40, 0.00, 0.0, 0.0, 0.80, 1.00),
    # alveolar: small opening, teeth close; L shows the tongue tip
    "T": (0.20, 0.45, 0.00, 0.0, 0.0, 0.85, 0.15),
    "D": (0.22, 0.45, 0.00, 0.0, 0.0, 0.85, 0.15),
    "N": (0.22, 0.40, 0.00, 0.0, 0.0, 0.80, 0.15),
    "L": (0.38, 0.35, 0.00, 0.0, 0.0, 0.70, 0.80),
    "S": (0.14, 0.55, 0.00, 0.0, 0.0, 0.95, 0.00),
    "Z": (0.14, 0.55, 0.00, 0.0, 0.0, 0.95, 0.00),
    # postalveolar: slightly protruded, teeth close
    "SH": (0.18, 0.00, 0.60, 0.0, 0.0, 0.90, 0.00),
    "ZH": (0.18, 0.00, 0.60, 0.0, 0.0, 0.90, 0.00),
    "CH": (0.20, 0.00, 0.55, 0.0, 0.0, 0.90, 0.00),
    "JH": (0.20, 0.00, 0.55, 0.0, 0.0, 0.90, 0.00),
    # velar / glottal: medium opening, shape mostly from neighbours (low dominance below)
    "K": (0.35, 0.30, 0.05, 0.0, 0.0, 0.50, 0.00),
    "G": (0.35, 0.30, 0.05, 0.0, 0.0, 0.50, 0.00),
    "NG": (0.30, 0.30, 0.05, 0.0, 0.0, 0.50, 0.00),
    "HH": (0.45, 0.30, 0.05, 0.0, 0.0, 0.45, 0.00),
    # rest: lips together, jaw nearly closed
    SILENCE: (0.03, 0.20, 0.05, 0.9, 0.0, 0.00, 0.00),
}

PHONE_TARGETS: dict[str, np.ndarray] = {p: np.asarray(v, dtype=np.float32) for p, v in _TARGETS.items()}

# Diphthongs glide: the second 45 % of the interval aims at the off-glide's target.
_OFFGLIDES = {"AW": "UH", "AY": "IH", "OY": "IY", "EY": "IY", "OW": "UW"}
_GLIDE_SPLIT = 0.55

# Dominance magnitudes a_ip (defaults 1). Consonants that do not use the lips let the
# neighbouring vowels decide lip shape (rounding anticipation across consonants), velars and
# /h/ borrow almost everything, and each phone's defining articulator dominates strongly.
_DOMINANCE: dict[str, np.ndarray] = {p: np.ones(len(MOUTH_PARAMS)) for p in _TARGETS}
for _p in ("T", "D", "N", "L", "S", "Z", "TH", "DH", "SH", "ZH", "CH", "JH", "F", "V"):
    _DOMINANCE[_p][[_SPREAD, _ROUND]] = 0.4
for _p in ("P", "B", "M"):
    _DOMINANCE[_p][[_JAW, _SPREAD, _ROUND]] = (0.6, 0.3, 0.3)
    _DOMINANCE[_p][_CLOSE] = 1.5
for _p in ("F", "V"):
    _DOMINANCE[_p][_TUCK] = 1.5
for _p in ("TH", "DH", "L"):
    _DOMINANCE[_p][_TONGUE] = 3.0
for _p in ("K", "G", "NG", "HH"):
    _DOMINANCE[_p][:] = 0.25
for _p in ("W", "UW", "OW", "SH", "ZH", "CH", "JH"):
    _DOMINANCE[_p][_ROUND] = 2.0
_DOMINANCE[SILENCE][:] = 0.7
_LOG_DOMINANCE: dict[str, np.ndarray] = {p: np.log(a) for p, a in _DOMINANCE.items()}

# Decay rates theta (1/s) per parameter: before a phone (anticipation) and after it.
# Rounding is anticipated longest (it spreads over several preceding consonants).
_THETA_BEFORE = np.array([22.0, 18.0, 12.0, 30.0, 30.0, 22.0, 30.0])
_THETA_AFTER = np.array([28.0, 24.0, 18.0, 36.0, 36.0, 28.0, 36.0])

_REACH = 2.0  # s; phones further than this from a chunk of times are left out
_CHUNK = 256  # times per chunk

# Gesture envelopes for must-reach articulations: parameter -> phones.
_GESTURES = {_CLOSE: ("P", "B", "M"), _TUCK: ("F", "V")}
_GESTURE_HALF_TOP = 0.024  # s; > half a frame so the frame holding the centre is at the top
_GESTURE_RAMP_BEFORE = 0.06  # s
_GESTURE_RAMP_AFTER = 0.05  # s


def _expand_glides(phones: Sequence[Interval]) -> list[tuple[float, float, str]]:
    """(start, end, target phone) segments in time order, diphthongs split into nucleus +
    off-glide, and gaps between intervals (aligners that skip pauses) filled with silence."""
    segments: list[tuple[float, float, str]] = []
    for start, end, label in sorted(phones, key=lambda p: p[0]):
        phone = normalize_phone(label)  # raises UnknownPhoneError
        if segments and start > segments[-1][1] + 1e-6:
            segments.append((segments[-1][1], start, SILENCE))
        if phone in _OFFGLIDES and end > start:
            mid = start + _GLIDE_SPLIT * (end - start)
            segments += [(start, mid, phone), (mid, end, _OFFGLIDES[phone])]
        else:
            segments.append((start, end, phone))
    return segments


def _envelope(times: np.ndarray, start: float, end: float) -> np.ndarray:
    """Gesture envelope (n,): 1 near the interval centre, raised-cosine ramps to 0."""
    centre = 0.5 * (start + end)
    half = max(0.5 * (end - start), _GESTURE_HALF_TOP)
    before = np.clip((centre - half - times) / _GESTURE_RAMP_BEFORE, 0.0, 1.0)
    after = np.clip((times - centre - half) / _GESTURE_RAMP_AFTER, 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * np.maximum(before, after)))


def mouth_at(phones: Sequence[Interval], times: np.ndarray) -> np.ndarray:
    """Mouth parameters (n, 7) float32 at arbitrary times (n,) in seconds.

    Cohen-Massaro blend: m_p(t) = sum_i D_ip(t) T_ip / sum_i D_ip(t) with
    D_ip(t) = a_ip exp(-theta_p^before (s_i - t)^+ - theta_p^after (t - e_i)^+), computed in
    the log domain so times far from every phone stay finite. Then close/tuck = max(blend,
    envelope of each P B M / F V).
    """
    times = np.asarray(times, dtype=np.float64).reshape(-1)  # (n,)
    segments = _expand_glides(phones)
    if not segments:
        return np.tile(PHONE_TARGETS[SILENCE], (len(times), 1))
    starts = np.array([s for s, _, _ in segments])  # (m,)
    ends = np.array([e for _, e, _ in segments])  # (m,)
    targets = np.stack([PHONE_TARGETS[p] for _, _, p in segments]).astype(np.float64)  # (m, 7)
    log_a = np.stack([_LOG_DOMINANCE[p] for _, _, p in segments])  # (m, 7)
    mouth = np.empty((len(times), len(MOUTH_PARAMS)))
    # Chunks of times against nearby phones only: a phone _REACH seconds away weighs
    # < exp(-12 * 2) = 4e-11 of the nearest one, so long clips cost O(n), not O(n m).
    for c in range(0, len(times), _CHUNK):
        t = times[c : c + _CHUNK]
        near = (ends > t.min() - _REACH) & (starts < t.max() + _REACH)
        if not near.any():  # far outside every phone: the nearest one decides
            near = np.zeros(len(segments), bool)
            near[np.argmin(np.minimum(np.abs(starts - t.mean()), np.abs(ends - t.mean())))] = True
        before = np.maximum(starts[near][None, :] - t[:, None], 0.0)  # (n, m)
        after = np.maximum(t[:, None] - ends[near][None, :], 0.0)  # (n, m)
        log_d = log_a[near][None] - before[..., None] * _THETA_BEFORE - after[..., None] * _THETA_AFTER
        log_d -= log_d.max(axis=1, keepdims=True)  # (n, m, 7)
        weights = np.exp(log_d)  # (n, m, 7)
        mouth[c : c + _CHUNK] = (weights * targets[near][None]).sum(axis=1) / weights.sum(axis=1)

    for param, gesture_phones in _GESTURES.items():
        for start, end, phone in segments:
            if phone in gesture_phones:
                mouth[:, param] = np.maximum(mouth[:, param], _envelope(times, start, end))
    return np.clip(mouth, 0.0, 1.0).astype(np.float32)


def mouth_trajectory(phones: Sequence[Interval], n_frames: int, fps: int = FPS) -> np.ndarray:
    """Mouth parameters (n_frames, 7) float32 in [0, 1], sampled at frame centres (k + 0.5)/fps.

    `phones` are Interval(start, end, label) in seconds (ARPAbet labels, "sil"/"" for
    silence), normally tiling [0, n_frames / fps]; gaps between them count as silence, and
    outside their span the nearest phone holds.
    """
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")
    centres = (np.arange(n_frames) + 0.5) / fps  # (n_frames,)
    return mouth_at(phones, centres)
