"""SynthTalk corpus CLI and readers: layout, the timing rule, splits, determinism, resuming."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from praatio import textgrid

from lipmem_core.config import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from lipmem_core.data.corpus import (
    SPLITS,
    check_clip,
    clip_dir,
    frame_phones,
    read_audio,
    read_frames,
    read_manifest,
    read_mouth,
    read_phones,
    read_speakers,
    read_words,
)
from lipmem_core.data.synth.build import assign_splits, build_corpus, main, pad_to_frames, plan_corpus
from lipmem_core.data.synth.speech import synthesize
from lipmem_core.errors import CorpusError
from lipmem_core.phones import ARPABET, PHONES, SILENCE, VISEMES, Interval, viseme_of

ARGS = {"speakers": 3, "utterances": 2, "seed": 5, "size": 64}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "c"
    assert main(["--out", str(root), "--speakers", "3", "--utterances", "2", "--seed", "5",
                 "--size", "64", "--workers", "2", "--quiet"]) == 0  # fmt: skip
    return root


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_cli_writes_the_whole_layout(corpus):
    df = read_manifest(corpus)
    assert len(df) == 6 and sorted(df["split"]) == ["test", "test", "train", "train", "val", "val"]
    meta = read_speakers(corpus)
    assert meta["seed"] == 5 and meta["size"] == 64 and len(meta["speakers"]) == 3
    for sid, spk in meta["speakers"].items():
        assert set(spk) == {"split", "identity", "voice"}
        assert (df[df["speaker"] == sid]["split"] == spk["split"]).all()
    for row in df.itertuples():
        clip = clip_dir(corpus, row)
        assert sorted(p.name for p in clip.iterdir() if not p.name.endswith(".jpg")) == [
            "audio.wav", "mouth.csv", "phones.TextGrid",
        ]  # fmt: skip
        n = check_clip(clip)
        assert n == row.frames and row.seconds == pytest.approx(n / FPS, abs=0.005)
        frames = read_frames(clip)
        assert frames.shape == (n, 64, 64, 3) and frames.dtype == np.uint8
    assert not list(corpus.rglob(".tmp-*"))


def test_frames_audio_mouth_and_phones_agree_by_the_rule(corpus):
    for row in read_manifest(corpus).itertuples():
        clip = clip_dir(corpus, row)
        n = row.frames
        audio, phones, mouth = read_audio(clip), read_phones(clip), read_mouth(clip)
        assert len(audio) == n * SAMPLES_PER_FRAME and len(mouth) == n
        assert list(mouth["frame"]) == list(range(n))
        assert phones[0].start == 0 and phones[-1].end == pytest.approx(n / FPS)
        assert all(a.end == pytest.approx(b.start) for a, b in zip(phones, phones[1:], strict=False))
        assert list(mouth["phone"]) == frame_phones(phones, n)
        assert set(mouth["phone"]) <= set(PHONES)
        # speech reaches into the last frame: padding is less than one frame
        voiced = np.nonzero(np.abs(audio) > 1e-3)[0]
        assert voiced[-1] >= (n - 1) * SAMPLES_PER_FRAME - 0.2 * SAMPLE_RATE


def test_padding_keeps_speech_within_one_frame_of_its_length():
    utt = synthesize("Mind the gap between the frames.")
    audio, phones, n = pad_to_frames(utt.audio, utt.phones)
    assert n == -(-len(utt.audio) // SAMPLES_PER_FRAME) and len(audio) == n * SAMPLES_PER_FRAME
    assert 0 <= n / FPS - utt.phones[-1].end < 1 / FPS
    assert phones[:-1] == utt.phones[:-1] and phones[-1].end == n / FPS
    assert np.array_equal(audio[: len(utt.audio)], utt.audio) and not audio[len(utt.audio) :].any()


def test_bilabials_seal_the_lips_and_open_vowels_open_the_jaw_widest(corpus):
    jaw: dict[str, list[float]] = {v: [] for v in VISEMES}
    sealed = []
    for row in read_manifest(corpus).itertuples():
        clip = clip_dir(corpus, row)
        mouth = read_mouth(clip)
        for v, phone in zip(mouth["jaw"], mouth["phone"], strict=True):
            jaw[viseme_of(phone)].append(v)
        for p in read_phones(clip):
            if p.label in VISEMES["bilabial"]:
                k = int((p.start + p.end) / 2 * FPS)  # the frame holding the phone's centre
                sealed.append(mouth["close"][k])
    assert len(sealed) >= 4 and min(sealed) > 0.9
    means = {v: np.mean(x) for v, x in jaw.items() if len(x) >= 3}
    assert max(means, key=means.get) == "open"


def test_splits_hold_out_speakers_and_sentences(corpus):
    df = read_manifest(corpus)
    train = set(df[df["split"] == "train"]["text"])
    held = set(df[df["split"] != "train"]["text"])
    assert not train & held and len(set(df["text"])) == len(df)
    speakers = df.groupby("speaker")["split"].nunique()
    assert (speakers == 1).all()
    meta = read_speakers(corpus)["speakers"]
    variants = {
        split: {s["voice"]["variant"] for s in meta.values() if s["split"] == split} for split in SPLITS
    }
    assert not variants["train"] & (variants["val"] | variants["test"])
    rng = np.random.default_rng(0)
    for n, expect in [(1, {"train": 1}), (3, {"train": 1, "val": 1, "test": 1}),
                      (20, {"train": 16, "val": 2, "test": 2})]:  # fmt: skip
        splits = assign_splits(n, rng)
        assert {s: splits.count(s) for s in set(splits)} == expect


def test_same_seed_gives_identical_bytes_whatever_the_workers(corpus, tmp_path):
    again = tmp_path / "again"
    build_corpus(again, **ARGS, workers=1, progress=False)
    assert files(again) == files(corpus)


def test_speakers_differ_in_face_and_voice(corpus):
    df = read_manifest(corpus)
    meta = read_speakers(corpus)["speakers"]
    a, b = (clip_dir(corpus, r) for r in df[df["utterance"] == "utt0000"].head(2).itertuples())
    assert meta[a.parent.name]["voice"] != meta[b.parent.name]["voice"]
    assert meta[a.parent.name]["identity"] != meta[b.parent.name]["identity"]
    fa, fb = read_frames(a)[0].astype(int), read_frames(b)[0].astype(int)
    assert np.abs(fa - fb).mean() > 10


def test_textgrid_round_trips_with_mfa_tier_names(corpus):
    row = next(read_manifest(corpus).itertuples())
    clip = clip_dir(corpus, row)
    tg = textgrid.openTextgrid(str(clip / "phones.TextGrid"), includeEmptyIntervals=True)
    assert list(tg.tierNames) == ["words", "phones"]
    labels = [e.label for e in tg.getTier("phones").entries]
    assert "" in labels and all(lab == "" or lab in ARPABET for lab in labels)
    words = [w.label for w in read_words(clip)]
    assert words == [w.lower().strip(",.?") for w in row.text.split()]
    copy = clip.parent / "copy.TextGrid"
    tg.save(str(copy), format="long_textgrid", includeBlankSpaces=True)
    assert copy.read_text() == (clip / "phones.TextGrid").read_text()
    copy.unlink()
    phones = read_phones(clip)
    assert phones[0] == Interval(0.0, phones[0].end, SILENCE)


def test_rerun_completes_a_partial_corpus(corpus, tmp_path):
    root = tmp_path / "partial"
    shutil.copytree(corpus, root)
    df = read_manifest(root)
    victim = clip_dir(root, df.iloc[3])
    before = files(root)
    shutil.rmtree(victim)
    (victim.parent / ".tmp-utt0000-123").mkdir()  # debris of an interrupted worker
    (root / "manifest.csv").unlink()
    build_corpus(root, **ARGS, workers=1, progress=False)
    assert files(root) == before


def test_rerun_with_other_settings_is_refused(corpus, tmp_path):
    root = tmp_path / "other"
    shutil.copytree(corpus, root)
    with pytest.raises(CorpusError, match="other settings"):
        build_corpus(root, **{**ARGS, "seed": 6}, workers=1, progress=False)


def test_readers_raise_corpus_errors(corpus, tmp_path):
    with pytest.raises(CorpusError, match="manifest.csv does not exist"):
        read_manifest(tmp_path)
    clip = tmp_path / "clip"
    shutil.copytree(clip_dir(corpus, read_manifest(corpus).iloc[0]), clip)
    (clip / "phones.TextGrid").write_text("not a textgrid")
    with pytest.raises(CorpusError, match="TextGrid"):
        read_phones(clip)
    (clip / "00001.jpg").unlink()
    with pytest.raises(CorpusError, match="consecutive"):
        check_clip(clip)
    (clip / "audio.wav").unlink()
    with pytest.raises(CorpusError, match="audio.wav is missing"):
        read_audio(clip)


def test_cli_reports_bad_arguments_without_a_traceback(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "x"), "--speakers", "0", "--utterances", "1"]) == 2
    assert "at least 1" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "y"), "--speakers", "1", "--utterances", "1", "--size", "33"]) == 2
    assert not (tmp_path / "x").exists()


def test_plan_holds_out_voice_variants_and_sentences_at_scale(tmp_path):
    meta, jobs = plan_corpus(tmp_path, 30, 4, 3, 64)
    spk = meta["speakers"]
    by_split = {s: {v["voice"]["variant"] for v in spk.values() if v["split"] == s} for s in SPLITS}
    assert (
        by_split["val"] and by_split["test"] and not by_split["train"] & (by_split["val"] | by_split["test"])
    )
    train = {j.text for j in jobs if j.split == "train"}
    assert len({j.text for j in jobs}) == len(jobs) == 120
    assert not train & {j.text for j in jobs if j.split != "train"}
    assert plan_corpus(tmp_path, 30, 4, 3, 64)[0] == meta  # a pure function of the arguments
