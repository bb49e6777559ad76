"""Training-time audio augmentation that keeps audio-frame alignment.

A model trained on espeak voices must answer real human speech: noise, level, speaking rate,
pitch and room/microphone colouring all differ. Every perturbation here keeps the timing rule
of docs/ARCHITECTURE.md at the sample `centre` (the centre of the training window):
- noise, gain and zero-phase EQ do not move anything;
- reverb uses an impulse response whose direct path is at lag 0 (no delay);
- speed perturbation resamples the time axis *around* `centre`, so the sample at `centre`
  stays there and the rest is stretched symmetrically; the output keeps the input length;
- pitch shift (phase vocoder + resampling) keeps the length and the timing.
Deterministic given the numpy Generator passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy.signal import fftconvolve, resample_poly

from lipmem_core.config import SAMPLE_RATE


@dataclass(frozen=True)
class AudioAugment:
    """Probabilities and ranges of each perturbation (each is applied independently)."""

    p_gain: float = 0.5
    gain_db: tuple[float, float] = (-12.0, 6.0)
    p_speed: float = 0.3
    speed: tuple[float, float] = (0.9, 1.1)  # r > 1 = faster speech (and higher pitch)
    p_pitch: float = 0.2
    pitch_semitones: tuple[float, float] = (-3.0, 3.0)
    p_eq: float = 0.5
    eq_db: float = 6.0  # max boost/cut of the random smooth EQ curve
    p_reverb: float = 0.3
    rt60_s: tuple[float, float] = (0.1, 0.5)
    p_noise: float = 0.5
    snr_db: tuple[float, float] = (5.0, 35.0)


def speed_perturb(wav: np.ndarray, rate: float, centre: int) -> np.ndarray:
    """Play `wav` `rate` times faster around sample `centre`; same length, centre fixed.

    out[n] = wav[centre + (n - centre) * rate] (band-limited resampling, zeros outside).
    """
    frac = Fraction(rate).limit_denominator(64)
    up, down = frac.denominator, frac.numerator  # y[m] = wav[m * down / up]
    y = resample_poly(wav, up, down)  # (len * up / down,)
    shift = int(round(centre * up / down)) - centre  # y index of `centre` minus out index
    out = np.zeros_like(wav)
    lo, hi = max(0, -shift), min(len(wav), len(y) - shift)
    if hi > lo:
        out[lo:hi] = y[lo + shift : hi + shift]
    return out


def pitch_shift(wav: np.ndarray, semitones: float) -> np.ndarray:
    """Shift pitch by `semitones` keeping duration and timing (librosa phase vocoder).

    A 32 ms FFT with a 4 ms hop: librosa's default 128 ms FFT smears onsets by up to ~35 ms
    (most of a video frame); this keeps them within ~4 ms.
    """
    import librosa  # slow first import; only augmenting runs need it

    out = librosa.effects.pitch_shift(wav, sr=SAMPLE_RATE, n_steps=semitones, n_fft=512, hop_length=64)
    return out[: len(wav)].astype(wav.dtype, copy=False)


def random_eq(wav: np.ndarray, rng: np.random.Generator, max_db: float) -> np.ndarray:
    """Multiply the spectrum by a smooth random gain curve (zero phase: no delay)."""
    spec = np.fft.rfft(wav)
    n_knots = 8
    knots_db = rng.uniform(-max_db, max_db, n_knots)
    # knots spaced on a log-frequency axis, like a graphic equaliser
    freqs = np.fft.rfftfreq(len(wav), 1.0 / SAMPLE_RATE)
    knot_f = np.geomspace(60.0, SAMPLE_RATE / 2, n_knots)
    gain_db = np.interp(np.log(np.maximum(freqs, 1.0)), np.log(knot_f), knots_db)
    return np.fft.irfft(spec * 10 ** (gain_db / 20), n=len(wav)).astype(wav.dtype)


def random_reverb(wav: np.ndarray, rng: np.random.Generator, rt60_s: float) -> np.ndarray:
    """Convolve with a synthetic room response: direct path at lag 0 + decaying noise tail."""
    n = int(rt60_s * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60_s)  # -60 dB at rt60
    tail[: int(0.002 * SAMPLE_RATE)] = 0.0  # first reflections arrive after ~2 ms
    ir = tail * rng.uniform(0.05, 0.3) / max(np.sqrt(np.sum(tail**2)), 1e-8)
    ir[0] = 1.0  # the direct sound keeps the original timing
    out = fftconvolve(wav, ir)[: len(wav)]
    return (out / max(1.0, np.abs(out).max())).astype(wav.dtype)


def coloured_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise (n,) float64 with a random spectral slope between white and brown."""
    noise = rng.standard_normal(n)
    tilt = rng.uniform(0.0, 2.0)  # spectral slope: 0 white, 1 pink, 2 brown
    spec = np.fft.rfft(noise)
    f = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    return np.fft.irfft(spec / f ** (tilt / 2), n=n)


def add_noise(wav: np.ndarray, rng: np.random.Generator, snr_db: float) -> np.ndarray:
    """Add coloured Gaussian noise (white to brown) at the given SNR over the signal power."""
    noise = coloured_noise(len(wav), rng)
    p_sig = float(np.mean(wav.astype(np.float64) ** 2)) + 1e-10
    p_noise = float(np.mean(noise**2)) + 1e-20
    noise *= np.sqrt(p_sig / p_noise / 10 ** (snr_db / 10))
    return (wav + noise).astype(wav.dtype)


def room_tone(n: int, rms: float, rng: np.random.Generator, level_db: tuple[float, float]) -> np.ndarray:
    """A pause's background: coloured noise (n,) float32 at a random level in `level_db` dB
    relative to `rms` (the speech's RMS), as a microphone records between words."""
    noise = coloured_noise(n, rng)
    gain = rms * 10 ** (rng.uniform(*level_db) / 20) / max(float(np.sqrt(np.mean(noise**2))), 1e-20)
    return (noise * gain).astype(np.float32)


def augment_audio(
    wav: np.ndarray, centre: int, rng: np.random.Generator, cfg: AudioAugment | None = None
) -> np.ndarray:
    """Randomly perturb a mono 16 kHz float waveform `(n,)`; returns `(n,)` float32 in [-1, 1].

    `centre` is the sample that must not move (the centre of the training window).
    """
    cfg = cfg or AudioAugment()
    out = np.asarray(wav, dtype=np.float32).copy()
    if rng.random() < cfg.p_speed:
        out = speed_perturb(out, rng.uniform(*cfg.speed), centre)
    if rng.random() < cfg.p_pitch:
        out = pitch_shift(out, rng.uniform(*cfg.pitch_semitones))
    if rng.random() < cfg.p_eq:
        out = random_eq(out, rng, cfg.eq_db)
    if rng.random() < cfg.p_reverb:
        out = random_reverb(out, rng, rng.uniform(*cfg.rt60_s))
    if rng.random() < cfg.p_noise:
        out = add_noise(out, rng, rng.uniform(*cfg.snr_db))
    if rng.random() < cfg.p_gain:
        out *= 10 ** (rng.uniform(*cfg.gain_db) / 20)
    return np.clip(out, -1.0, 1.0)
