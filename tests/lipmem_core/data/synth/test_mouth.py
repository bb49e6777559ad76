"""Mouth targets and coarticulated trajectories (lipmem_core.data.synth.mouth)."""

from __future__ import annotations

import numpy as np
import pytest

from lipmem_core.data.synth.mouth import MOUTH_PARAMS, PHONE_TARGETS, mouth_at, mouth_trajectory
from lipmem_core.errors import UnknownPhoneError
from lipmem_core.phones import ARPABET, PHONES, SILENCE, VISEMES, Interval

JAW, CLOSE, TUCK = (MOUTH_PARAMS.index(p) for p in ("jaw", "close", "tuck"))


def tile(labels_and_durations: list[tuple[str, float]]) -> list[Interval]:
    """Intervals tiling [0, total] from (label, seconds) pairs."""
    out, t = [], 0.0
    for label, dur in labels_and_durations:
        out.append(Interval(t, t + dur, label))
        t += dur
    return out


def random_utterance(rng: np.random.Generator, n_phones: int) -> list[Interval]:
    """Silence, n random ARPAbet phones of 30-200 ms, silence."""
    pairs = [(SILENCE, 0.2)]
    pairs += [(str(rng.choice(ARPABET)), float(rng.uniform(0.03, 0.2))) for _ in range(n_phones)]
    pairs.append((SILENCE, 0.3))
    return tile(pairs)


def test_targets_cover_every_phone_in_range():
    assert MOUTH_PARAMS == ("jaw", "spread", "round", "close", "tuck", "teeth", "tongue")
    assert set(PHONE_TARGETS) == set(PHONES)
    for phone, target in PHONE_TARGETS.items():
        assert target.shape == (7,) and target.dtype == np.float32, phone
        assert np.all((target >= 0) & (target <= 1)), phone


def test_aa_has_the_widest_jaw_and_viseme_targets_are_articulatory():
    jaw = {p: t[JAW] for p, t in PHONE_TARGETS.items()}
    assert max(jaw, key=jaw.get) == "AA"
    assert all(jaw["AA"] > jaw[p] for p in PHONES if p != "AA")
    for p in VISEMES["bilabial"]:
        assert PHONE_TARGETS[p][CLOSE] == 1.0
    for p in VISEMES["labiodental"]:
        assert PHONE_TARGETS[p][TUCK] == 1.0
    rnd = MOUTH_PARAMS.index("round")
    assert min(PHONE_TARGETS[p][rnd] for p in VISEMES["rounded"]) > max(
        PHONE_TARGETS[p][rnd] for p in VISEMES["spread"]
    )
    tongue = MOUTH_PARAMS.index("tongue")
    assert all(PHONE_TARGETS[p][tongue] >= 0.8 for p in ("TH", "DH", "L"))
    assert PHONE_TARGETS[SILENCE][CLOSE] >= 0.85 and PHONE_TARGETS[SILENCE][JAW] < 0.05


def test_trajectory_shape_dtype_range():
    phones = random_utterance(np.random.default_rng(0), 20)
    n = int(np.ceil(phones[-1].end * 25))
    m = mouth_trajectory(phones, n)
    assert m.shape == (n, 7) and m.dtype == np.float32
    assert np.all((m >= 0) & (m <= 1)) and np.all(np.isfinite(m))
    assert mouth_trajectory(phones, 0).shape == (0, 7)


def test_samples_at_frame_centres():
    phones = random_utterance(np.random.default_rng(1), 10)
    n = int(phones[-1].end * 25)
    np.testing.assert_array_equal(mouth_trajectory(phones, n), mouth_at(phones, (np.arange(n) + 0.5) / 25))
    # another frame rate samples the same curve at its own centres
    np.testing.assert_array_equal(
        mouth_trajectory(phones, 2 * n, fps=50), mouth_at(phones, (np.arange(2 * n) + 0.5) / 50)
    )


@pytest.mark.parametrize("phone", ["P", "B", "M"])
@pytest.mark.parametrize("offset", [0.0, 0.013, 0.027])
def test_short_bilabial_between_open_vowels_is_sealed(phone, offset):
    # a 40 ms closure between two AA, placed at several phases relative to the frame grid
    phones = tile([(SILENCE, 0.2 + offset), ("AA", 0.1), (phone, 0.04), ("AA", 0.1), (SILENCE, 0.2)])
    b = phones[2]
    centre = 0.5 * (b.start + b.end)
    assert mouth_at(phones, np.array([centre]))[0, CLOSE] > 0.9
    m = mouth_trajectory(phones, 25)
    assert m[int(centre * 25), CLOSE] > 0.9  # the frame that contains the centre
    # and the mouth really opens on both vowels around it
    for vowel in (phones[1], phones[3]):
        k = int(0.5 * (vowel.start + vowel.end) * 25)
        assert m[k, CLOSE] < 0.5 and m[k, JAW] > 0.5


def test_every_bilabial_and_labiodental_in_random_speech_reaches_its_gesture():
    rng = np.random.default_rng(2)
    for _ in range(5):
        phones = random_utterance(rng, 40)
        centres = np.array([0.5 * (p.start + p.end) for p in phones])
        m = mouth_at(phones, centres)
        for p, row in zip(phones, m, strict=True):
            if p.label in VISEMES["bilabial"]:
                assert row[CLOSE] > 0.9, p
            if p.label in VISEMES["labiodental"]:
                assert row[TUCK] > 0.9, p


def test_silence_is_closed_at_rest():
    phones = tile([(SILENCE, 0.6), ("AA", 0.2), (SILENCE, 0.6)])
    m = mouth_trajectory(phones, 35)
    for k in list(range(0, 8)) + list(range(27, 35)):
        assert m[k, CLOSE] > 0.8 and m[k, JAW] < 0.12, k
    assert mouth_trajectory([], 3)[:, CLOSE].min() > 0.8
    quiet = mouth_trajectory([Interval(0.0, 1.0, "")], 25)
    np.testing.assert_allclose(quiet, np.tile(PHONE_TARGETS[SILENCE], (25, 1)), atol=1e-6)


def test_aa_opens_widest_in_a_sequence():
    phones = tile([(SILENCE, 0.2), ("IY", 0.15), ("T", 0.06), ("AA", 0.15), ("T", 0.06),
                   ("UW", 0.15), ("T", 0.06), ("AE", 0.15), (SILENCE, 0.2)])  # fmt: skip
    m = mouth_trajectory(phones, 30)
    peak = int(np.argmax(m[:, JAW]))
    aa = phones[3]
    assert aa.start <= (peak + 0.5) / 25 < aa.end


def test_coarticulation_anticipates_rounding():
    # /s/ before /uw/ is rounded by anticipation; /s/ before /iy/ is not
    before_uw = mouth_at(tile([(SILENCE, 0.3), ("S", 0.08), ("UW", 0.2)]), np.array([0.34]))
    before_iy = mouth_at(tile([(SILENCE, 0.3), ("S", 0.08), ("IY", 0.2)]), np.array([0.34]))
    rnd = MOUTH_PARAMS.index("round")
    assert before_uw[0, rnd] > before_iy[0, rnd] + 0.2


def test_continuity_outside_closures():
    rng = np.random.default_rng(3)
    for _ in range(5):
        phones = random_utterance(rng, 30)
        m = mouth_at(phones, np.arange(0, phones[-1].end, 0.04))
        jumps = np.abs(np.diff(m, axis=0))  # (n-1, 7)
        others = [i for i in range(7) if i not in (CLOSE, TUCK)]
        assert jumps[:, others].max() < 0.5
        # gestures may snap shut within one frame but never teleport from open to sealed
        assert jumps[:, [CLOSE, TUCK]].max() < 0.9
        # and the underlying curve is continuous: a 1 ms step moves it by very little
        fine = mouth_at(phones, np.arange(0, phones[-1].end, 0.001))
        assert np.abs(np.diff(fine, axis=0)).max() < 0.06


def test_diphthong_glides_to_its_offglide():
    phones = tile([(SILENCE, 0.2), ("AY", 0.3), (SILENCE, 0.2)])
    m = mouth_at(phones, np.array([0.26, 0.46]))
    spread = MOUTH_PARAMS.index("spread")
    assert m[0, JAW] > m[1, JAW] and m[1, spread] > m[0, spread]


def test_stress_marks_and_unknown_labels():
    a = mouth_trajectory(tile([("sil", 0.2), ("AA1", 0.2), ("sp", 0.2)]), 15)
    b = mouth_trajectory(tile([("sil", 0.2), ("AA", 0.2), ("", 0.2)]), 15)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(UnknownPhoneError):
        mouth_trajectory(tile([("QQ", 0.2)]), 5)
    with pytest.raises(ValueError):
        mouth_trajectory([], -1)


def test_far_from_every_phone_stays_finite():
    m = mouth_at([Interval(0.0, 0.1, "AA")], np.array([0.05, 50.0, 500.0]))
    assert np.all(np.isfinite(m))


def test_long_clips_do_not_depend_on_chunking():
    # 60 s of speech: far more frames than one chunk and phones than one window
    phones = random_utterance(np.random.default_rng(4), 500)
    times = np.arange(0, phones[-1].end, 0.04)
    whole = mouth_at(phones, times)
    for i in (0, 255, 256, 700, len(times) - 1):
        np.testing.assert_allclose(mouth_at(phones, times[i : i + 1])[0], whole[i], atol=1e-6)
    shifted = mouth_at(phones, times[100:])  # chunk boundaries move
    np.testing.assert_allclose(shifted, whole[100:], atol=1e-6)


def test_gaps_between_intervals_are_silence():
    # an aligner that leaves the pause out: AA, (0.6 s nothing), AA
    gapped = [Interval(0.0, 0.2, "AA"), Interval(0.8, 1.0, "AA")]
    filled = [Interval(0.0, 0.2, "AA"), Interval(0.2, 0.8, "sil"), Interval(0.8, 1.0, "AA")]
    np.testing.assert_array_equal(mouth_trajectory(gapped, 25), mouth_trajectory(filled, 25))
    assert mouth_trajectory(gapped, 25)[12, CLOSE] > 0.8  # mid-pause: lips at rest
    # order of the intervals does not matter
    np.testing.assert_array_equal(mouth_trajectory(filled[::-1], 25), mouth_trajectory(filled, 25))
