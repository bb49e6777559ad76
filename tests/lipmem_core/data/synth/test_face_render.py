"""The parametric face renderer (lipmem_core.data.synth.face_render, face_base, face_identity)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from lipmem_core.data.synth.face_base import base_images
from lipmem_core.data.synth.face_identity import BEARDS, GLASSES
from lipmem_core.data.synth.face_layout import MOUTH_Y, face_layout
from lipmem_core.data.synth.face_render import HAIR_STYLES, FaceRenderer, Identity, head_motion, render_clip
from lipmem_core.data.synth.mouth import PHONE_TARGETS, mouth_trajectory
from lipmem_core.phones import Interval

SIZE = 96
IDENTITY = Identity()  # mid skin tone, short hair
REST = PHONE_TARGETS["sil"]


@pytest.fixture(scope="module")
def renderer() -> FaceRenderer:
    return FaceRenderer(IDENTITY, SIZE)


def mouth_box(size: int) -> tuple[slice, slice]:
    return slice(int(0.62 * size), int(0.9 * size)), slice(int(0.3 * size), int(0.7 * size))


def cavity_pixels(frame: np.ndarray) -> int:
    """Pixels of the dark inner mouth (dark, red-dominant) inside the mouth box."""
    patch = frame[mouth_box(frame.shape[0])].astype(int)
    r, g, b = patch[..., 0], patch[..., 1], patch[..., 2]
    return int(((r < 90) & (g < 32) & (b < 40) & (r > g)).sum())


def tongue_pixels(frame: np.ndarray) -> int:
    patch = frame[mouth_box(frame.shape[0])].astype(int)
    r, g, _b = patch[..., 0], patch[..., 1], patch[..., 2]
    return int(((r > 150) & (g < 120) & (g > 60) & (r - g > 70)).sum())


def teeth_pixels(frame: np.ndarray) -> int:
    patch = frame[mouth_box(frame.shape[0])].astype(int)
    return int((patch.min(axis=-1) > 175).sum())


def test_identity_json_round_trip_is_exact():
    rng = np.random.default_rng(0)
    for _ in range(20):
        identity = Identity.sample(rng)
        text = json.dumps(identity.to_dict())
        back = Identity.from_dict(json.loads(text))
        assert back == identity and hash(back) == hash(identity)
        assert json.dumps(back.to_dict()) == text


def test_identity_sampling_is_varied_and_validated():
    rng = np.random.default_rng(1)
    ids = [Identity.sample(rng) for _ in range(200)]
    brightness = [sum(i.skin) / 3 for i in ids]
    assert min(brightness) < 80 and max(brightness) > 200  # very dark to very light skin
    assert {i.hair_style for i in ids} == set(HAIR_STYLES)
    assert {i.beard for i in ids} == set(BEARDS) and {i.glasses for i in ids} == set(GLASSES)
    assert 0.5 < np.mean([i.beard == "none" for i in ids]) < 0.8
    assert len({i.bg_top for i in ids}) > 150
    assert Identity.sample(np.random.default_rng(5)) == Identity.sample(np.random.default_rng(5))
    with pytest.raises(ValueError, match="unknown Identity fields"):
        Identity.from_dict({**IDENTITY.to_dict(), "tattoo": 1})
    with pytest.raises(ValueError, match="hair_style"):
        Identity.from_dict({**IDENTITY.to_dict(), "hair_style": "mohawk"})
    with pytest.raises(ValueError, match="glasses"):
        Identity.from_dict({**IDENTITY.to_dict(), "glasses": "monocle"})
    # identities saved before a field existed still load, with its default
    old = IDENTITY.to_dict()
    del old["beard"], old["glasses"], old["glasses_color"], old["light"]
    assert Identity.from_dict(old) == IDENTITY


def test_every_beard_and_glasses_style_renders_and_shows():
    plain = FaceRenderer(IDENTITY, 64).render(REST).astype(int)
    for beard in BEARDS[1:]:
        frame = FaceRenderer(dataclasses.replace(IDENTITY, beard=beard), 64).render(REST)
        diff = np.abs(frame.astype(int) - plain).sum(-1)
        assert diff[40:].sum() > 0 and diff[:30].max() == 0, beard  # lower face only
    for glasses in GLASSES[1:]:
        frame = FaceRenderer(dataclasses.replace(IDENTITY, glasses=glasses), 64).render(REST)
        diff = np.abs(frame.astype(int) - plain).sum(-1)
        assert diff[20:32].sum() > diff[44:].sum() > -1 and diff[20:32].max() > 60, glasses


@pytest.mark.parametrize("size", [64, 96, 128, 256])
def test_any_size_renders_a_face_with_a_mouth(size):
    r = FaceRenderer(IDENTITY, size)
    closed, open_ = r.render(REST), r.render(PHONE_TARGETS["AA"])
    assert closed.shape == (size, size, 3) and closed.dtype == np.uint8
    assert cavity_pixels(closed) == 0
    # the open mouth's dark cavity covers a similar fraction of the crop at every size
    assert 0.002 < cavity_pixels(open_) / size**2 < 0.03


def test_layout_follows_the_detector_crop():
    lay = face_layout(IDENTITY)
    assert all(y < 0.5 for _, y in lay.eye_centres)
    assert lay.mouth[1] == pytest.approx(MOUTH_Y) and 0.68 < MOUTH_Y < 0.76
    xs = lay.face[:, 0]
    assert xs.max() - xs.min() > 0.65  # the face fills the crop


def test_open_and_closed_mouth_differ_only_in_the_lower_face(renderer):
    closed = renderer.render(REST)
    open_ = renderer.render(PHONE_TARGETS["AA"])
    diff = np.abs(closed.astype(int) - open_.astype(int)).sum(-1)
    assert diff[: SIZE // 2].max() == 0  # upper face untouched
    assert diff[mouth_box(SIZE)].sum() > 0.02 * 255 * SIZE * SIZE
    # the same holds under a head pose: same pose, same upper face
    pose = (0.01, -0.01, 2.0, 1.02)
    a, b = renderer.render(REST, pose), renderer.render(PHONE_TARGETS["AA"], pose)
    assert np.array_equal(a[: int(0.45 * SIZE)], b[: int(0.45 * SIZE)])


def test_blink_changes_only_the_eyes(renderer):
    open_eyes, shut = renderer.render(REST, blink=0.0), renderer.render(REST, blink=1.0)
    diff = np.abs(open_eyes.astype(int) - shut.astype(int)).sum(-1)
    rows = np.nonzero(diff.max(1))[0]
    assert rows.size and rows.min() > 0.25 * SIZE and rows.max() < 0.5 * SIZE
    lay = face_layout(IDENTITY)
    for ex, ey in lay.eye_centres:  # the iris is hidden under the lid
        centre = shut[int(ey * SIZE), int(ex * SIZE)].astype(int)
        assert abs(centre - np.asarray(IDENTITY.skin)).max() < 40
    assert np.array_equal(renderer.render(REST, blink=0.01), open_eyes)


def test_articulations_are_visible(renderer):
    frames = {
        p: renderer.render(PHONE_TARGETS[p]) for p in ("AA", "AE", "EH", "IY", "UW", "M", "B", "F", "TH", "L")
    }
    for p in ("M", "B"):
        assert cavity_pixels(frames[p]) == 0, p  # sealed lips
    assert cavity_pixels(frames["F"]) < 0.2 * cavity_pixels(frames["EH"])  # lower lip tucked
    assert teeth_pixels(frames["F"]) > 0  # ... under visible upper teeth
    assert teeth_pixels(frames["AA"]) > 0 and teeth_pixels(frames["M"]) == 0
    for p in ("TH", "L"):
        assert tongue_pixels(frames[p]) > tongue_pixels(frames["IY"]) + 3, p
    assert max(frames, key=lambda p: cavity_pixels(frames[p])) == "AA"


def test_rounding_narrows_and_spreading_widens_the_mouth(renderer):
    no_mouth = base_images(IDENTITY, SIZE, renderer.ss)[0].astype(int)
    lip_rows = slice(int((MOUTH_Y - 0.04) * SIZE), int((MOUTH_Y + 0.03) * SIZE))

    def width(m: np.ndarray) -> int:
        diff = np.abs(renderer.render(m)[lip_rows].astype(int) - no_mouth[lip_rows]).sum(-1)
        cols = np.nonzero((diff > 40).any(0))[0]  # lips or mouth where there was skin
        return int(cols.max() - cols.min())

    neutral = np.array([0.5, 0.2, 0, 0, 0, 0.3, 0], np.float32)
    rounded, spread = neutral.copy(), neutral.copy()
    rounded[2], spread[1] = 1.0, 1.0
    assert width(rounded) < width(neutral) - 3 and width(spread) > width(neutral) + 1
    assert cavity_pixels(renderer.render(rounded)) > 0


def test_aa_opens_widest_in_a_rendered_sequence(renderer):
    labels = ["sil", "IY", "T", "AA", "T", "UW", "K", "AE", "D", "EH", "sil"]
    phones = [Interval(0.16 * i, 0.16 * (i + 1), p) for i, p in enumerate(labels)]
    n = int(0.16 * len(labels) * 25)
    mouth = mouth_trajectory(phones, n)
    open_area = [cavity_pixels(renderer.render(m)) for m in mouth]
    peak_t = (int(np.argmax(open_area)) + 0.5) / 25
    assert phones[3].start <= peak_t < phones[3].end


def test_deterministic_and_identity_dependent():
    mouth = mouth_trajectory([Interval(0, 0.4, "AA"), Interval(0.4, 0.8, "M")], 20)
    a = render_clip(IDENTITY, mouth, np.random.default_rng(3), size=64)
    b = render_clip(Identity.from_dict(IDENTITY.to_dict()), mouth, np.random.default_rng(3), size=64)
    assert a.shape == (20, 64, 64, 3) and a.dtype == np.uint8
    assert a.tobytes() == b.tobytes()
    c = render_clip(IDENTITY, mouth, np.random.default_rng(4), size=64)  # other head motion
    assert not np.array_equal(a, c)
    other = Identity.sample(np.random.default_rng(7))
    d = render_clip(other, mouth, np.random.default_rng(3), size=64)
    assert np.abs(a.astype(int) - d.astype(int)).mean() > 10


def test_sampled_identities_look_different():
    rng = np.random.default_rng(11)
    frames = [FaceRenderer(Identity.sample(rng), 64).render(REST) for _ in range(4)]
    for i in range(4):
        for j in range(i + 1, 4):
            assert np.abs(frames[i].astype(int) - frames[j].astype(int)).mean() > 8


def test_head_motion_is_small_smooth_and_blinks():
    poses, blinks = head_motion(500, np.random.default_rng(0))
    assert poses.shape == (500, 4) and blinks.shape == (500,)
    assert poses.dtype == np.float32 and blinks.dtype == np.float32
    assert np.abs(poses[:, :2]).max() < 0.03 and np.abs(poses[:, 2]).max() < 4
    assert np.abs(poses[:, 3] - 1).max() < 0.05
    assert np.abs(np.diff(poses, axis=0)).max(0)[2] < 0.5  # degrees per frame
    assert blinks.min() == 0 and blinks.max() == 1 and 0.01 < (blinks > 0).mean() < 0.2
    p2, b2 = head_motion(500, np.random.default_rng(0))
    assert np.array_equal(poses, p2) and np.array_equal(blinks, b2)


def test_pose_moves_the_face(renderer):
    still = renderer.render(REST)
    assert np.array_equal(renderer.render(REST, (0.0, 0.0, 0.0, 1.0)), still)
    moved = renderer.render(REST, (2 / SIZE, 0.0, 0.0, 1.0))  # 2 px right
    assert np.abs(moved[:, 2:].astype(int) - still[:, :-2].astype(int)).max() <= 1
    tilted = renderer.render(REST, (0.0, 0.0, 3.0, 1.0))
    assert np.abs(tilted.astype(int) - still.astype(int)).mean() > 2


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="mouth must have shape"):
        FaceRenderer(IDENTITY, 64).render(np.zeros(6))
    with pytest.raises(ValueError, match="mouth must have shape"):
        render_clip(IDENTITY, np.zeros((3, 5)), np.random.default_rng(0))
    with pytest.raises(ValueError, match="size"):
        FaceRenderer(IDENTITY, 8)
    with pytest.raises(ValueError, match="finite"):
        FaceRenderer(IDENTITY, 64).render(np.full(7, np.nan))
    # out-of-range parameters are clipped to [0, 1], not extrapolated
    r = FaceRenderer(IDENTITY, 64)
    assert np.array_equal(r.render(np.full(7, 5.0)), r.render(np.ones(7)))


def test_sheets_have_a_labelled_column_per_viseme():
    from lipmem_core.data.synth.sheets import REPRESENTATIVE, identities_sheet, visemes_sheet
    from lipmem_core.phones import VISEMES

    assert set(REPRESENTATIVE) == set(VISEMES)
    assert all(REPRESENTATIVE[v] in VISEMES[v] for v in VISEMES)
    sheet = visemes_sheet(size=64, n_identities=1)
    assert sheet.shape == (44 + 64, 64 * len(VISEMES), 3)
    faces = sheet[44:]
    tiles = [faces[:, 64 * c : 64 * (c + 1)] for c in range(len(VISEMES))]
    assert sum(np.array_equal(a, b) for i, a in enumerate(tiles) for b in tiles[i + 1 :]) == 0
    assert identities_sheet(size=32, cols=3, rows=2).shape == (64, 96, 3)


def test_the_chin_follows_the_jaw(renderer):
    lay = face_layout(IDENTITY)
    closed = renderer.render(REST).astype(int)
    open_ = renderer.render(PHONE_TARGETS["AA"]).astype(int)
    # on AA the lower lip drops by ~0.1 of the crop, and the chin with it
    rows = np.arange(int((lay.chin_y - 0.06) * SIZE), int((lay.chin_y - 0.02) * SIZE))
    cols = slice(int(0.4 * SIZE), int(0.6 * SIZE))
    errors = [np.abs(open_[rows + s, cols] - closed[rows, cols]).mean() for s in range(SIZE - rows[-1])]
    shift = int(np.argmin(errors))
    assert shift >= 0.06 * SIZE, errors
    assert errors[shift] < 0.6 * errors[0]  # (a stretch, not a pure shift)


def test_bald_has_no_hair_and_short_hair_does():
    top = slice(0, int(0.12 * SIZE)), slice(int(0.4 * SIZE), int(0.6 * SIZE))  # the crown
    for style, hairy in (("bald", False), ("short", True)):
        identity = dataclasses.replace(IDENTITY, hair_style=style, hair_color=(20, 200, 20))
        crown = FaceRenderer(identity, SIZE).render(REST)[top].astype(int)
        green = (crown[..., 1] - crown[..., 0] > 60).mean()
        assert (green > 0.5) == hairy, style


@pytest.mark.parametrize("size", [64, 128])
def test_every_phone_target_renders_inside_the_mouth_box(size):
    r = FaceRenderer(Identity.sample(np.random.default_rng(size)), size)
    closed = r.render(REST).astype(int)
    y0, y1 = int(0.5 * size), size  # mouth and jaw: never above the middle of the crop
    for phone, target in PHONE_TARGETS.items():
        frame = r.render(target, (0.0, 0.0, 0.0, 1.0), 0.0).astype(int)
        diff = np.abs(frame - closed).sum(-1)
        assert diff[:y0].max() == 0, phone
        assert diff[y0:y1].sum() > 0 or phone == "sil", phone


@pytest.mark.parametrize("drop", [0.0, 0.02, 0.06, 0.11, 0.16])
def test_jaw_warp_stretches_but_never_folds(drop):
    from lipmem_core.data.synth.face_jaw import JawGrid

    lay, size = face_layout(IDENTITY), 128
    rows = np.arange(int(lay.mouth[1] * size), size)
    grid = JawGrid.build(lay, np.arange(size), rows, size)
    src = np.repeat(np.arange(size, dtype=np.float32)[:, None], size, 1)  # each pixel = its row
    dst = np.empty((len(rows), size), np.float32)
    grid.warp(src, lay.mouth[1], drop, size, dst)
    assert np.all(np.diff(dst, axis=0) >= -1e-3)  # source rows never go backwards: no fold
    assert np.all(dst <= rows[:, None] + 1e-3)  # content only ever moves down
    if drop <= 0.11:  # the largest drop the mouth model makes: the chin moves (nearly) as far
        at_chin = int((lay.chin_y - 0.02) * size) - rows[0]
        moved = rows[at_chin] - dst[at_chin, size // 2]
        assert moved == pytest.approx(drop * size, abs=0.1 * drop * size + 0.5)
    np.testing.assert_allclose(dst[0], src[rows[0]], atol=0.1)  # the lip line stays put
    assert np.array_equal(dst[:, 0], src[rows, 0])  # beside the face nothing moves
