"""Audio augmentation: deterministic, length-preserving, and it never moves the window centre."""

from __future__ import annotations

import numpy as np
import pytest

from lipmem_core.data.augment import (
    AudioAugment,
    add_noise,
    augment_audio,
    pitch_shift,
    random_eq,
    random_reverb,
    speed_perturb,
)

SR = 16_000
ONLY = dict(p_gain=0.0, p_speed=0.0, p_pitch=0.0, p_eq=0.0, p_reverb=0.0, p_noise=0.0)


def _burst(n: int, at: int, width: int = 160, freq: float = 500.0) -> np.ndarray:
    """Silence with a short Hann-windowed tone burst centred on sample `at`."""
    wav = np.zeros(n, np.float32)
    t = np.arange(width) / SR
    wav[at - width // 2 : at - width // 2 + width] = 0.8 * np.hanning(width) * np.sin(2 * np.pi * freq * t)
    return wav


def _envelope_peak(wav: np.ndarray, smooth: int = 160) -> int:
    env = np.convolve(wav.astype(np.float64) ** 2, np.ones(smooth) / smooth, mode="same")
    return int(np.argmax(env))


def test_speed_keeps_centre_and_stretches_around_it():
    n, centre = 16_000, 8_000
    for rate in (0.9, 1.1):
        at_centre = speed_perturb(_burst(n, centre), rate, centre)
        assert at_centre.shape == (n,)
        assert abs(_envelope_peak(at_centre) - centre) <= 2
        # a burst 0.25 s after the centre lands at centre + 4000 / rate
        off = speed_perturb(_burst(n, centre + 4000), rate, centre)
        assert abs(_envelope_peak(off) - (centre + 4000 / rate)) <= 8


@pytest.mark.parametrize("name", ["eq", "reverb", "pitch_up", "pitch_down", "noise"])
def test_length_preserving_perturbations_keep_timing(name):
    rng = np.random.default_rng(3)
    n, at = 16_000, 5_000
    wav = _burst(n, at, width=480)
    if name == "eq":
        out = random_eq(wav, rng, 6.0)
    elif name == "reverb":
        out = random_reverb(wav, rng, 0.4)
    elif name.startswith("pitch"):
        out = pitch_shift(wav, 2.5 if name == "pitch_up" else -3.0)
    else:
        out = add_noise(wav, rng, 20.0)
    assert out.shape == wav.shape and out.dtype == np.float32
    assert abs(_envelope_peak(out) - at) <= 80  # 5 ms, an eighth of a video frame
    assert not np.allclose(out, wav)


def test_noise_hits_requested_snr():
    rng = np.random.default_rng(0)
    wav = (0.3 * np.sin(2 * np.pi * 200 * np.arange(SR) / SR)).astype(np.float32)
    noisy = add_noise(wav, rng, 10.0)
    snr = 10 * np.log10(np.mean(wav**2) / np.mean((noisy - wav) ** 2))
    assert snr == pytest.approx(10.0, abs=0.1)


def test_augment_is_deterministic_and_seed_dependent():
    wav = np.random.default_rng(1).uniform(-0.3, 0.3, 8000).astype(np.float32)
    cfg = AudioAugment(p_pitch=0.0)  # everything else on at its default probability
    a = augment_audio(wav, 4000, np.random.default_rng(7), cfg)
    b = augment_audio(wav, 4000, np.random.default_rng(7), cfg)
    c = augment_audio(wav, 4000, np.random.default_rng(8), cfg)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == wav.shape and a.dtype == np.float32 and np.abs(a).max() <= 1.0
    assert np.array_equal(wav, np.random.default_rng(1).uniform(-0.3, 0.3, 8000).astype(np.float32))


def test_full_augmentation_keeps_a_burst_at_the_window_centre():
    n, centre = 16_000, 9_000
    wav = _burst(n, centre, width=320)
    cfg = AudioAugment(p_gain=1, p_speed=1, p_pitch=1, p_eq=1, p_reverb=1, p_noise=1, snr_db=(25.0, 30.0))
    for seed in range(4):
        out = augment_audio(wav, centre, np.random.default_rng(seed), cfg)
        assert abs(_envelope_peak(out) - centre) <= 80


def test_all_off_is_identity():
    wav = np.random.default_rng(2).uniform(-0.5, 0.5, 4000).astype(np.float32)
    out = augment_audio(wav, 2000, np.random.default_rng(0), AudioAugment(**ONLY))
    np.testing.assert_array_equal(out, wav)
