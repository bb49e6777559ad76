"""Face detection, tracking, SynthTalk crop framing and paste-back on a real photo."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from lipmem_core.infer.face import (
    CROP_MOUTH_Y,
    FaceTracker,
    crop_face,
    detect_face,
    full_frame_box,
    match_colours,
    mouth_mask,
    paste_mouth,
    still_box,
)
from tests import astronaut_video as av


def test_astronaut_crop_framing_matches_synthtalk():
    """Eyes in the upper half, mouth centre near 0.72 H, face centred horizontally."""
    img = skimage.data.astronaut()
    box = still_box(img)
    assert box is not None
    cx, cy, size = box
    top, left = cy - size / 2, cx - size / 2
    mouth_y = (145 - top) / size  # mouth centre and eye line measured on the 512 px photo
    eyes_y = (102 - top) / size
    assert abs(mouth_y - CROP_MOUTH_Y) < 0.05
    assert 0.25 < eyes_y < 0.5
    assert abs((224 - left) / size - 0.5) < 0.06
    assert 100 < size < 160  # the face is ~95 px tall: the crop holds the face, not the body


def test_no_face_in_blank_or_noise():
    assert detect_face(np.zeros((120, 160, 3), np.uint8)) is None
    noise = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    assert detect_face(noise) is None
    assert still_box(noise) is None


def test_full_frame_box_crop_is_identity():
    img = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(crop_face(img, full_frame_box(32, 32), 32), img)


def test_crop_leaving_the_frame_replicates_edges():
    img = np.full((40, 40, 3), 200, np.uint8)
    crop = crop_face(img, np.array([2.0, 2.0, 30.0]), 16)
    assert crop.shape == (16, 16, 3) and (crop == 200).all()


def test_mouth_mask_is_feathered_and_confined_to_the_lower_face():
    m = mouth_mask(64)
    assert m.dtype == np.float32 and m.max() == pytest.approx(1.0)
    assert (m[: int(0.5 * 64)] == 0).all()  # upper half never touched
    assert (m[:, :4] == 0).all() and (m[:, -4:] == 0).all()
    ys, xs = np.nonzero(m > 0.99)
    assert abs(ys.mean() / 64 - 0.75) < 0.03 and abs(xs.mean() / 64 - 0.5) < 0.03
    assert ((m > 0) & (m < 1)).sum() > 50  # a soft edge, not a hard cut-out


def test_paste_changes_only_the_mouth_region():
    img = skimage.data.astronaut()
    box = still_box(img)
    size = 64
    generated = np.zeros((size, size, 3), np.uint8)
    generated[..., 2] = 255
    before = img.copy()
    out = paste_mouth(img, box, generated, colour_match=False)
    np.testing.assert_array_equal(img, before)  # the input frame is not modified
    changed = (out != img).any(-1)
    assert changed.sum() > 500
    ys, xs = np.nonzero(changed)
    # Every changed pixel lies inside the box's lower part, around the mouth at (224, 145).
    cx, cy, side = box
    assert ys.min() >= cy and ys.max() <= cy + side / 2
    assert xs.min() >= cx - side / 2 and xs.max() <= cx + side / 2
    assert abs(np.median(ys) - 150) < 12 and abs(np.median(xs) - 224) < 8
    # The centre of the mouth takes the generated colour.
    assert out[150, 224, 2] > 230 and out[150, 224, 0] < 25


def test_paste_box_partly_outside_frame():
    img = np.full((50, 60, 3), 90, np.uint8)
    gen = np.full((32, 32, 3), 250, np.uint8)
    out = paste_mouth(img, np.array([55.0, 40.0, 40.0]), gen, colour_match=False)
    assert out.shape == img.shape and (out > 90).any()


def test_colour_matching_moves_generated_stats_to_the_original():
    rng = np.random.default_rng(0)
    mask = mouth_mask(32)
    orig = rng.integers(100, 140, (32, 32, 3), dtype=np.uint8)
    gen = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    matched = match_colours(gen, orig, mask)
    w = mask[..., None]
    mean = (matched * w).sum((0, 1)) / w.sum()
    np.testing.assert_allclose(mean, (orig * w).sum((0, 1)) / w.sum(), atol=0.5)


def test_tracker_follows_motion_and_reports_faceless_frames():
    tracker = FaceTracker(every=5)
    boxes = [tracker.update(f) for f in av.frames()]
    faceless = [k for k, b in enumerate(boxes) if b is None]
    assert faceless == list(av.FACELESS)
    assert tracker.stats.faceless == len(av.FACELESS)
    # Detection runs on a few frames only; template matching follows the rest.
    assert tracker.stats.detections < av.N_FRAMES
    for k, b in enumerate(boxes):
        if b is None:
            continue
        mouth_x = av.MOUTH_XY[0] + av.SHIFT * k - 8
        mouth_y = b[1] - b[2] / 2 + CROP_MOUTH_Y * b[2]
        assert abs(b[0] - mouth_x) < 4, (k, b)
        assert abs(mouth_y - av.MOUTH_XY[1]) < 4, (k, b)
    # The box size is smooth: no jumps within a run of tracked frames.
    sizes = np.array([b[2] for b in boxes[:6]])
    assert np.ptp(sizes) < 0.15 * sizes.mean()
