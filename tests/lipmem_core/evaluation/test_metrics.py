"""Metrics: exact values on constructed data, and agreement with reference implementations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from lipmem_core.evaluation import metrics as M

RNG = np.random.default_rng(0)


# --- image quality -----------------------------------------------------------------------------


def test_psnr_identical_is_inf_and_known_value():
    a = RNG.integers(0, 251, (3, 20, 24, 3), dtype=np.uint8)
    assert M.psnr(a, a) == math.inf
    b = a + np.uint8(5)  # every pixel off by 5 -> MSE 25 (a <= 250: no wrap-around)
    assert M.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 25))


def test_psnr_float_range_matches_uint8():
    a = RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    b = RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    fa, fb = a / 127.5 - 1.0, b / 127.5 - 1.0
    assert M.psnr(fa, fb) == pytest.approx(M.psnr(a, b))
    assert M.psnr(fa, b) == pytest.approx(M.psnr(a, b))  # mixed dtypes are fine


def test_psnr_is_mean_of_per_frame_values():
    a = np.zeros((2, 8, 8, 3), np.uint8)
    b = a.copy()
    b[0] += 10
    b[1] += 20
    expected = (10 * math.log10(255**2 / 100) + 10 * math.log10(255**2 / 400)) / 2
    assert M.psnr(a, b) == pytest.approx(expected)


def test_images_out_of_range_or_mismatched_are_rejected():
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        M.psnr(np.full((8, 8, 3), 2.0), np.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match="shapes differ"):
        M.psnr(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8))
    with pytest.raises(ValueError, match="11x11"):
        M.ssim(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8))


def test_ssim_matches_scikit_image():
    skm = pytest.importorskip("skimage.metrics")
    a = RNG.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    noise = RNG.normal(0, 25, a.shape)
    b = np.clip(a + noise, 0, 255).astype(np.uint8)
    ref = skm.structural_similarity(
        a,
        b,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=-1,
    )
    assert M.ssim(a, b) == pytest.approx(ref, abs=1e-9)
    assert M.ssim(a, a) == pytest.approx(1.0)
    assert M.ssim(a, b) < 0.99


def test_ssim_batch_is_mean_over_frames():
    a = RNG.integers(0, 256, (2, 24, 24, 3), dtype=np.uint8)
    b = a.copy()
    b[1] = 255 - b[1]
    assert M.ssim(a, b) == pytest.approx((1.0 + M.ssim(a[1], b[1])) / 2)


def test_mouth_crop_is_lower_middle_region():
    img = np.zeros((4, 100, 100, 3), np.uint8)
    crop = M.mouth_crop(img)
    top, bottom, left, right = M.MOUTH_BOX
    assert crop.shape == (4, round((bottom - top) * 100), round((right - left) * 100), 3)
    assert M.mouth_crop(img[0]).shape == crop.shape[1:]
    # the crop contains the SynthTalk mouth centre (0.5 W, 0.72 H)
    marked = np.zeros((100, 100), np.uint8)
    marked[72, 50] = 1
    assert M.mouth_crop(marked).sum() == 1


# --- LSE -----------------------------------------------------------------------------------------


def _syncnet_python_reference(v: np.ndarray, a: np.ndarray, vshift: int):
    """syncnet_python's calc_pdist + evaluate, with torch, as published."""
    feat1, feat2 = torch.from_numpy(v), torch.from_numpy(a)
    win = vshift * 2 + 1
    feat2p = torch.nn.functional.pad(feat2, (0, 0, vshift, vshift))
    dists = [
        torch.nn.functional.pairwise_distance(feat1[[i], :].repeat(win, 1), feat2p[i : i + win, :])
        for i in range(len(feat1))
    ]
    mdist = torch.mean(torch.stack(dists, 1), 1)
    minval, minidx = torch.min(mdist, 0)
    return vshift - int(minidx), float(torch.median(mdist) - minval), float(minval)


@pytest.mark.parametrize("shift", [0, 3, -4])
def test_lse_recovers_known_shift_and_matches_syncnet_python(shift):
    n, d = 60, 16
    audio = RNG.normal(size=(n, d))
    # video frame i looks like audio frame i + shift (zero where outside the clip)
    video = np.zeros_like(audio)
    for i in range(n):
        if 0 <= i + shift < n:
            video[i] = audio[i + shift]
    score = M.lse(video, audio, vshift=15)
    off, conf, dmin = _syncnet_python_reference(video, audio, 15)
    assert score.offset == off == -shift
    assert score.lse_c == pytest.approx(conf, rel=1e-6)
    assert score.lse_d == pytest.approx(dmin, rel=1e-6)
    assert score.mean_dist.shape == (31,)
    assert score.lse_c > 0


def test_lse_perfect_sync_has_offset_zero_and_small_distance():
    emb = RNG.normal(size=(40, 8))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    score = M.lse(emb, emb)
    assert score.offset == 0
    assert score.lse_d < 1e-4
    assert score.lse_c > 1.0  # other offsets are far (unit vectors ~ sqrt(2) apart)


def test_sync_distances_shape_and_padding():
    v = np.ones((5, 3))
    a = np.ones((5, 3))
    dist = M.sync_distances(v, a, vshift=2)
    assert dist.shape == (5, 5)
    # frame 0 at offset column 0 and 1 looks before the clip: zero padding, distance ||v||
    assert dist[0, 0] == pytest.approx(math.sqrt(3), rel=1e-5)
    assert dist[0, 2] == pytest.approx(math.sqrt(3) * 1e-6, rel=1e-3)
    with pytest.raises(ValueError):
        M.sync_distances(np.ones((5, 3)), np.ones((4, 3)))


# --- phone x slot statistics --------------------------------------------------------------------

PHONES = ["P", "B", "AA", "IY", "S", "sil"]


def _viseme(p: str) -> str:
    return {"P": "bilabial", "B": "bilabial", "AA": "open", "IY": "spread", "S": "alveolar"}.get(p, "silence")


def test_one_to_one_map_is_perfect():
    phones = np.array(PHONES * 20)
    slots = np.array([PHONES.index(p) * 3 for p in phones])  # distinct slot per phone
    st = M.slot_statistics(phones, slots, n_slots=24, to_viseme=_viseme)
    assert st.pnmi == pytest.approx(1.0)
    assert st.phone_purity == pytest.approx(1.0)
    assert st.slot_purity == pytest.approx(1.0)
    assert st.viseme_purity == pytest.approx(1.0)
    assert st.dead_slots == 24 - 6 and st.used_slots == 6
    assert st.usage_entropy_bits == pytest.approx(math.log2(6))
    assert st.usage_entropy_norm == pytest.approx(math.log2(6) / math.log2(24))
    assert st.n_frames == 120 and st.n_phones == 6


def test_independent_labels_have_near_zero_pnmi():
    n = 200_000
    rng = np.random.default_rng(1)
    phones = rng.choice(PHONES, size=n)
    slots = rng.integers(0, 8, size=n)
    st = M.slot_statistics(phones, slots, n_slots=8, to_viseme=_viseme)
    assert st.pnmi < 1e-3
    assert st.phone_purity == pytest.approx(1 / 6, abs=0.01)
    assert st.slot_purity == pytest.approx(1 / 8, abs=0.01)
    assert st.dead_slots == 0
    assert st.usage_entropy_norm == pytest.approx(1.0, abs=1e-3)


def test_hand_computed_small_example():
    # 4 frames: (A,0) (A,0) (B,0) (B,1); S = 3
    phones = ["A", "A", "B", "B"]
    slots = [0, 0, 0, 1]
    joint = M.joint_distribution(phones, slots, 3)
    expected = pd.DataFrame([[0.5, 0.0, 0.0], [0.25, 0.25, 0.0]], index=["A", "B"])
    np.testing.assert_allclose(joint.to_numpy(), expected.to_numpy())
    assert list(joint.index) == ["A", "B"] and list(joint.columns) == [0, 1, 2]
    # H(phone) = 1 bit; H(slot) = H(.75, .25); H(phone | slot) = .75 * H(2/3, 1/3)
    h = lambda *p: -sum(x * math.log2(x) for x in p if x > 0)  # noqa: E731
    mi = 1.0 - 0.75 * h(2 / 3, 1 / 3)
    assert M.mutual_information_bits(joint) == pytest.approx(mi)
    assert M.pnmi(joint) == pytest.approx(mi / 1.0)
    assert M.phone_purity(joint) == pytest.approx(0.5 + 0.25)  # slot 0 -> A, slot 1 -> B
    assert M.slot_purity(joint) == pytest.approx(0.5 + 0.25)  # A -> 0 (.5), B -> 0 or 1 (.25)
    assert M.usage_entropy_bits(joint) == pytest.approx(h(0.75, 0.25))
    assert M.dead_slots(joint) == 1
    # A and B in one viseme class: slot 0 then holds only that class
    assert M.viseme_purity(joint, lambda p: "same") == pytest.approx(1.0)


def test_viseme_purity_merges_lookalike_phones():
    # P and B share slot 0, AA has slot 1: phone purity < 1, viseme purity 1
    phones = ["P", "B", "AA", "AA"]
    slots = [0, 0, 1, 1]
    st = M.slot_statistics(phones, slots, n_slots=2, to_viseme=_viseme)
    assert st.phone_purity == pytest.approx(0.75)
    assert st.viseme_purity == pytest.approx(1.0)


def test_default_viseme_map_is_phones_module():
    from lipmem_core.phones import viseme_of

    phones = ["P", "B", "M", "AA"]
    st = M.slot_statistics(phones, [0, 0, 0, 1], n_slots=2)
    assert viseme_of("P") == viseme_of("B") == viseme_of("M") != viseme_of("AA")
    assert st.viseme_purity == pytest.approx(1.0)


def test_single_slot_entropy_is_plain_zero():
    st = M.slot_statistics(["A", "B"], [2, 2], n_slots=4, to_viseme=lambda p: p)
    assert st.usage_entropy_bits == 0.0 and math.copysign(1.0, st.usage_entropy_bits) == 1.0
    assert st.pnmi == pytest.approx(0.0) and st.used_slots == 1


def test_single_phone_pnmi_is_nan_and_bad_input_rejected():
    assert math.isnan(M.pnmi(M.joint_distribution(["A", "A"], [0, 1], 2)))
    with pytest.raises(ValueError, match="slot indices"):
        M.joint_distribution(["A"], [5], 3)
    with pytest.raises(ValueError, match="equal-length"):
        M.joint_distribution(["A", "B"], [0], 3)
    with pytest.raises(ValueError, match="no frames"):
        M.joint_distribution([], np.array([], dtype=int), 3)
    with pytest.raises(ValueError, match="integer"):
        M.joint_distribution(["A"], [0.5], 3)


def test_stats_accept_pandas_columns_and_to_dict():
    df = pd.DataFrame({"phone": ["A", "B", "A"], "slot": [1, 2, 1]})
    st = M.slot_statistics(df["phone"], df["slot"], n_slots=4, to_viseme=lambda p: p)
    d = st.to_dict()
    assert d["pnmi"] == pytest.approx(1.0) and d["dead_slots"] == 2
    assert set(d) >= {"pnmi", "phone_purity", "slot_purity", "viseme_purity", "dead_slots"}
