"""Slot maps and lip images per slot (analysis.slots)."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from analysis.addressing import frame_table
from analysis.slots import (
    UNUSED,
    address_sequence,
    embed_2d,
    frame_map,
    phone_segments,
    slot_gallery,
    slot_labels,
    slot_map,
)
from lipmem_core.infer.addressing import decode_addresses
from tests.tiny_model import SLOTS

S = SLOTS


@pytest.fixture(scope="module")
def identity() -> np.ndarray:
    yy, xx = np.mgrid[:32, :32]
    return np.stack([yy * 8, xx * 8, (yy + xx) * 4], axis=-1).astype(np.uint8)  # (32, 32, 3)


def test_gallery_decodes_each_slots_value(slot_model, identity):
    images, slots = slot_gallery(slot_model, identity)
    assert images.shape == (S, 32, 32, 3) and images.dtype == np.uint8 and slots == list(range(S))
    # The image of slot s depends on V_s alone: swapping two value rows swaps their images,
    # and leaves every other slot's image unchanged.
    swapped = copy.deepcopy(slot_model)
    with torch.no_grad():
        swapped.memory.value[[2, 7]] = swapped.memory.value[[7, 2]].clone()
    images2, _ = slot_gallery(swapped, identity)
    np.testing.assert_array_equal(images2[2], images[7])
    np.testing.assert_array_equal(images2[7], images[2])
    others = [s for s in range(S) if s not in (2, 7)]
    np.testing.assert_array_equal(images2[others], images[others])
    # distinct values draw distinct lips; an untrained tiny decoder moves the mouth region by
    # about one grey level per slot, so the values are scaled up to rise above uint8 rounding
    loud = copy.deepcopy(slot_model)
    with torch.no_grad():
        loud.memory.value.mul_(50.0)
    assert len({im.tobytes() for im in slot_gallery(loud, identity)[0]}) == S


def test_gallery_subset_and_identity_resize(slot_model, identity):
    big = np.repeat(np.repeat(identity, 2, axis=0), 2, axis=1)  # (64, 64, 3): resized to 32
    images, slots = slot_gallery(slot_model, big, slots=[5, 1])
    assert images.shape == (2, 32, 32, 3) and slots == [5, 1]
    with pytest.raises(ValueError, match="uint8 RGB"):
        slot_gallery(slot_model, identity.astype(np.float32))


def test_address_sequence_crossfades_between_slots():
    track = address_sequence([(3, 5), (8, 5)], S, blend=2)
    assert track.shape == (10, S)
    np.testing.assert_allclose(track.sum(axis=1), 1.0, atol=1e-6)
    assert track[0, 3] == 1.0 and track[-1, 8] == 1.0
    assert 0 < track[5, 3] < 1 and 0 < track[5, 8] < 1  # mid-transition: a mixture
    assert (np.diff(track[:, 8]) >= -1e-7).all()  # monotone fade-in
    hard = address_sequence([(3, 2), (8, 2)], S, blend=0)
    np.testing.assert_array_equal(hard.argmax(1), [3, 3, 8, 8])
    with pytest.raises(ValueError):
        address_sequence([(S, 2)], S)


def test_steering_with_a_held_slot_draws_that_slots_gallery_image(slot_model, identity):
    images, _ = slot_gallery(slot_model, identity)
    frames = decode_addresses(
        slot_model, identity, address_sequence([(4, 3), (9, 3)], S, blend=0), batch_size=4
    )
    assert frames.shape == (6, 32, 32, 3)
    np.testing.assert_array_equal(frames[:3], np.stack([images[4]] * 3))
    np.testing.assert_array_equal(frames[3:], np.stack([images[9]] * 3))


def test_slot_labels_name_dominant_phones_and_unused_slots():
    counts = pd.DataFrame(np.zeros((3, 4), int), index=["M", "AA", "sil"], columns=pd.RangeIndex(4))
    counts.loc["M", 0], counts.loc["AA", 0] = 6, 2
    counts.loc["sil", 2] = 5
    labels = slot_labels(counts).set_index("slot")
    assert labels.loc[0, "phone"] == "M" and labels.loc[0, "share"] == 0.75
    assert labels.loc[0, "viseme"] == "bilabial" and labels.loc[0, "top_phones"] == "M 75%, AA 25%"
    assert labels.loc[1, "phone"] == UNUSED and labels.loc[1, "n_frames"] == 0
    assert labels.loc[2, "viseme"] == "silence"
    assert labels.loc[0, "second_phone"] == "AA"
    assert (
        labels.loc[1, "second_phone"] == "" and labels.loc[2, "second_phone"] == ""
    )  # unused; one phone only


def test_embed_2d_falls_back_to_pca_for_few_points():
    pts = np.random.default_rng(0).normal(size=(5, 8))
    xy, method = embed_2d(pts)
    assert method == "pca" and xy.shape == (5, 2)
    assert np.ptp(xy[:, 0]) > 0  # a real projection, not zeros
    assert embed_2d(pts[:1])[0].shape == (1, 2)
    with pytest.raises(ValueError, match="method"):
        embed_2d(pts, method="tsne")


@pytest.mark.slow  # umap-learn's first fit compiles with numba: 10-30 s on a busy 2-core machine
def test_umap_is_seeded():
    many = np.random.default_rng(1).normal(size=(40, 8))
    a, method = embed_2d(many, seed=3)
    assert method == "umap" and a.shape == (40, 2) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, embed_2d(many, seed=3)[0])


def test_slot_and_frame_maps(slot_model):
    counts = pd.DataFrame(np.eye(2, S, dtype=int) * 3, index=["M", "AA"], columns=pd.RangeIndex(S))
    table = slot_map(slot_model, counts, which="key", method="pca")
    assert len(table) == S and (table["memory"] == "key").all()
    assert table.set_index("slot").loc[1, "phone"] == "AA"
    a = np.random.default_rng(0).dirichlet(np.ones(S), size=30).astype(np.float32)
    frames = frame_table(a, "u")
    frames["phone"] = "M"
    fmap = frame_map(frames, slot_model, max_frames=20, method="pca")
    assert (fmap["kind"] == "frame").sum() == 20 and (fmap["kind"] == "slot").sum() == S
    assert np.isfinite(fmap[["x", "y"]].to_numpy()).all()


def test_phone_segments_pick_each_phones_most_likely_slot():
    p = pd.DataFrame(np.zeros((3, S)), index=["M", "AA", "IY"], columns=pd.RangeIndex(S))
    p.loc["M", [2, 5]] = [0.7, 0.3]
    p.loc["AA", 9] = 1.0  # IY never observed: an all-zero row
    segments, used = phone_segments(p, ["M", "AA", "IY", "UW", "M"], frames_per_phone=2)
    assert segments == [(2, 2), (9, 2), (2, 2)] and used == ["M", "AA", "M"]
