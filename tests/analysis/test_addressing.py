"""Per-frame addressing, the phone join and the phone x slot matrices (analysis.addressing)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.addressing import (
    clip_addressing,
    corpus_addressing,
    frame_table,
    join_phones,
    model_fingerprint,
    phone_slot_matrices,
    slot_order,
    statistics,
    weights,
)
from analysis.tables import phone_table
from lipmem_core.model.generator import LipMemGenerator
from lipmem_core.phones import SILENCE, Interval
from tests.tiny_model import SLOTS

S = SLOTS


def test_frame_table_columns(slot_model, chirp_audio):
    frames = clip_addressing(slot_model, chirp_audio, "u1")
    assert list(frames.columns[:5]) == ["utterance", "frame", "time", "slot", "weight"]
    w = weights(frames)
    assert w.shape == (33, S)
    assert (frames["slot"].to_numpy() == w.argmax(1)).all()
    np.testing.assert_allclose(frames["time"].to_numpy()[:2], [0.02, 0.06])


def test_cache_is_keyed_by_weights_and_audio(slot_model, chirp_audio, tmp_path):
    first = clip_addressing(slot_model, chirp_audio, "a", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.parquet"))) == 1
    again = clip_addressing(slot_model, chirp_audio, "b", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.parquet"))) == 1 and (again["utterance"] == "b").all()
    pd.testing.assert_frame_equal(again.drop(columns="utterance"), first.drop(columns="utterance"))
    clip_addressing(slot_model, chirp_audio[:-640], "c", cache_dir=tmp_path)  # other audio: a new entry
    assert len(list(tmp_path.glob("*.parquet"))) == 2
    other = LipMemGenerator(slot_model.cfg).eval()  # other weights: a new entry, other values
    assert model_fingerprint(other) != model_fingerprint(slot_model)
    changed = clip_addressing(other, chirp_audio, "a", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.parquet"))) == 3
    assert not np.allclose(weights(changed), weights(first))


def test_corpus_addressing_concatenates_clips(slot_model, chirp_audio):
    frames = corpus_addressing(slot_model, [("x", chirp_audio), ("y", chirp_audio[:16000])], progress=False)
    assert frames.groupby("utterance").size().to_dict() == {"x": 33, "y": 25}


def _frames(slots: np.ndarray, utterance: str = "u") -> pd.DataFrame:
    """A frame table whose A_aud puts 0.9 on the given slot of each frame."""
    a = np.full((len(slots), S), 0.1 / (S - 1), dtype=np.float32)
    a[np.arange(len(slots)), slots] = 0.9
    return frame_table(a, utterance)


def test_join_phones_uses_frame_centres():
    # Frame k centre = (k + 0.5) / 25: 0.02, 0.06, 0.10, 0.14, ... A phone starting at 0.10
    # owns frame 2; one ending at 0.10 does not. Frames after the last interval are silence.
    table = phone_table([Interval(0.0, 0.1, "M"), Interval(0.1, 0.15, "AA1")], utterance="u")
    frames = join_phones(_frames(np.zeros(6, int)), table)
    assert list(frames["phone"]) == ["M", "M", "AA", "AA", SILENCE, SILENCE]
    assert list(frames["viseme"]) == ["bilabial", "bilabial", "open", "open", "silence", "silence"]
    other = join_phones(_frames(np.zeros(2, int), "v"), table)  # no phones for utterance "v"
    assert list(other["phone"]) == [SILENCE, SILENCE]


def _labelled(phones: list[str], slots: list[int]) -> pd.DataFrame:
    frames = _frames(np.array(slots))
    frames["phone"] = phones
    frames["viseme"] = frames["phone"].map(
        {"P": "bilabial", "B": "bilabial", "IY": "spread", SILENCE: "silence"}
    )
    return frames


def test_matrices_of_a_one_to_one_addressing():
    phones = ["P", "B", "IY", SILENCE] * 5
    slots = [3, 7, 1, 0] * 5
    m = phone_slot_matrices(_labelled(phones, slots))
    assert list(m["counts"].index) == ["B", "IY", "P", SILENCE]  # PHONES order, observed only
    assert m["counts"].shape == (4, S)
    assert m["counts"].loc["P", 3] == 5 and m["counts"].to_numpy().sum() == 20
    assert m["p_slot_given"].loc["B", 7] == 1.0
    assert m["p_label_given_slot"].loc["IY", 1] == 1.0
    assert (m["p_label_given_slot"][5] == 0).all()  # a dead slot is all zero, not NaN
    np.testing.assert_allclose(m["mean_weight"].sum(axis=1), 1.0, atol=1e-6)
    assert m["mean_weight"].loc["P", 3] == pytest.approx(0.9)
    stats = statistics(_labelled(phones, slots))
    assert stats.loc[0, "pnmi"] == pytest.approx(1.0)
    assert stats.loc[0, "dead_slots"] == S - 4
    by_viseme = phone_slot_matrices(_labelled(phones, slots), by="viseme")["counts"]
    assert list(by_viseme.index) == ["bilabial", "spread", "silence"]  # VISEMES order
    assert by_viseme.loc["bilabial", [3, 7]].tolist() == [5, 5]


def test_independent_addressing_has_zero_pnmi():
    phones = [p for p in ["P", "IY"] for _ in range(4)]
    slots = [0, 1, 2, 3] * 2
    stats = statistics(_labelled(phones, slots), per_utterance=True)
    assert list(stats["utterance"]) == ["all", "u"]
    assert stats.loc[0, "pnmi"] == pytest.approx(0.0, abs=1e-12)


def test_slot_order_groups_slots_of_the_same_phone():
    rng = np.random.default_rng(1)
    # Slots 0..8 serve three phones, three slots each, shuffled; slots 9..11 are never used.
    owner = rng.permutation(np.repeat([0, 1, 2], 3))
    counts = np.zeros((3, S))
    for s, p in enumerate(owner):
        counts[p, s] = 10 + rng.integers(5)
        counts[(p + 1) % 3, s] = 1
    order = slot_order(pd.DataFrame(counts, index=["M", "AA", "IY"]))
    assert sorted(order) == list(range(S))
    assert set(order[-3:]) == {9, 10, 11}
    blocks = [owner[s] for s in order[:9]]
    assert sum(a != b for a, b in zip(blocks, blocks[1:], strict=False)) == 2  # three contiguous runs
