"""Real-video preprocessing into the corpus layout, on the moving astronaut video."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from praatio import textgrid

from lipmem_core.audio import load_audio
from lipmem_core.data.corpus import read_manifest, read_phones, read_speakers, read_words
from lipmem_core.data.preprocess import crop_alignment, longest_run, main, preprocess
from lipmem_core.infer.video import read_image
from tests import astronaut_video as av_fix


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """LRS2-like tree: main/SPK1/00001.mp4 (+ transcript), SPK2/00002.mp4, a corrupt file,
    a faceless video and a video without sound."""
    root = tmp_path_factory.mktemp("lrs2") / "main"
    av_fix.write_video(root / "spk1" / "00001.mp4").with_suffix(".txt").write_text(
        "Text:  HELLO THERE\nConf: 4\n", encoding="utf-8"
    )
    shutil.copy(
        root / "spk1" / "00001.mp4", (root / "spk2").mkdir(parents=True) or root / "spk2" / "00002.mp4"
    )
    (root / "spk2" / "broken.mp4").write_bytes(b"\x00\x01junk" * 300)
    from lipmem_core.infer.video import VideoWriter

    with VideoWriter(root / "spk2" / "blank.mp4", 64, 64, 25, av_fix.speechlike(0.4)) as w:
        w.write(np.full((10, 64, 64, 3), 90, np.uint8))
    av_fix.write_video(root / "spk3" / "mute.mp4", with_audio=False)
    return root


def test_longest_run():
    assert longest_run(np.array([1, 1, 0, 1, 1, 1, 0], bool)) == (3, 6)
    assert longest_run(np.array([0, 0], bool)) == (0, 0)
    assert longest_run(np.array([1, 1], bool)) == (0, 2)


def test_preprocess_writes_the_corpus_layout_and_reports_skips(videos, tmp_path):
    out = tmp_path / "corpus"
    splits = tmp_path / "lists"
    splits.mkdir()
    (splits / "test.txt").write_text("spk2/00002 NF\n", encoding="utf-8")
    rows, skipped = preprocess(
        videos, out, workers=2, size=32, min_frames=5, split_lists=splits, progress=False
    )
    manifest = read_manifest(out)
    assert sorted(manifest["utterance"]) == ["00001", "00002"]
    r = manifest.set_index("utterance").loc["00001"]
    # Faceless frames 6 and 7 split the clip; the longer run 8..15 is kept.
    first = av_fix.FACELESS[-1] + 1
    n = av_fix.N_FRAMES - first
    assert (r["split"], r["speaker"], r["text"], r["frames"]) == ("train", "spk1", "hello there", n)
    assert r["seconds"] == pytest.approx(n / 25)
    assert manifest.set_index("utterance").loc["00002", "split"] == "test"
    clip = out / "train" / "spk1" / "00001"
    jpgs = sorted(p.name for p in clip.glob("*.jpg"))
    assert jpgs == [f"{k:05d}.jpg" for k in range(n)]
    assert read_image(clip / "00000.jpg").shape == (32, 32, 3)
    audio, sr = sf.read(clip / "audio.wav")
    assert sr == 16000 and audio.ndim == 1 and len(audio) == n * 640
    # The audio is the video's own, cut at frame `first` (AAC round trip: correlation, not equality).
    full = load_audio(videos / "spk1" / "00001.mp4")
    ref = full[first * 640 : (first + n) * 640]
    assert np.corrcoef(audio[: len(ref)], ref)[0, 1] > 0.95
    assert not (clip / "phones.TextGrid").exists()  # no alignments were given
    speakers = read_speakers(out)["speakers"]
    assert speakers["spk1"]["split"] == "train" and speakers["spk2"]["split"] == "test"
    reasons = {p.split("/")[-1]: why for p, why in skipped}
    assert set(reasons) == {"broken.mp4", "blank.mp4", "mute.mp4"}
    assert "VideoDecodeError" in reasons["broken.mp4"]
    assert reasons["blank.mp4"] == "no face found"
    assert "AudioDecodeError" in reasons["mute.mp4"]
    with open(out / "skipped.csv", encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == 3
    assert not list(out.glob("*/*/.tmp-*"))

    # Resumable: a second run keeps finished clips as they are and rebuilds the same manifest.
    stamp = (clip / "00000.jpg").stat().st_mtime_ns
    rows2, _ = preprocess(videos, out, workers=1, size=32, min_frames=5, split_lists=splits, progress=False)
    assert (clip / "00000.jpg").stat().st_mtime_ns == stamp
    assert sorted(map(json.dumps, rows2)) == sorted(map(json.dumps, rows))


def _mfa_textgrid(path, duration: float) -> None:
    tg = textgrid.Textgrid()
    words = [(0.1, 0.3, "hello"), (0.35, 0.6, "there")]
    phones = [(0.1, 0.2, "HH"), (0.2, 0.3, "AH0"), (0.35, 0.45, "DH"), (0.45, 0.6, "EH1"), (0.6, 0.62, "sp")]
    tg.addTier(textgrid.IntervalTier("spk1 - words", words, 0, duration))
    tg.addTier(textgrid.IntervalTier("spk1 - phones", phones, 0, duration))
    tg.save(str(path), format="long_textgrid", includeBlankSpaces=True)


def test_alignments_are_cut_to_the_kept_frames(videos, tmp_path):
    align = tmp_path / "align" / "spk1"
    align.mkdir(parents=True)
    _mfa_textgrid(align / "00001.TextGrid", av_fix.N_FRAMES / 25)
    out = tmp_path / "corpus"
    rc = main(["--videos", str(videos / "spk1"), "--out", str(out), "--size", "32", "--min-frames", "5",
               "--alignments", str(tmp_path / "align"), "--workers", "1", "--quiet"])  # fmt: skip
    assert rc == 0
    clip = out / "train" / "spk1" / "00001"
    n = len(list(clip.glob("*.jpg")))
    phones = read_phones(clip)
    assert phones[0].start == 0 and phones[-1].end == pytest.approx(n / 25)
    assert all(abs(a.end - b.start) < 1e-9 for a, b in zip(phones, phones[1:], strict=False))
    # Frames from 8 (0.32 s) on were kept: "there" (0.35-0.6 s) starts 0.03 s in, "hello" is cut.
    assert [w.label for w in read_words(clip)] == ["there"]
    labels = [p.label for p in phones if p.label != "sil"]
    assert labels[0] == "DH" and phones[1].start == pytest.approx(0.03)


def test_crop_alignment_rejects_a_bad_textgrid(tmp_path):
    bad = tmp_path / "x.TextGrid"
    bad.write_text("not a textgrid", encoding="utf-8")
    from lipmem_core.errors import CorpusError

    with pytest.raises(CorpusError):
        crop_alignment(bad, 0, 1)


def test_cli_reports_missing_directory(tmp_path, capsys):
    assert main(["--videos", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_plan_jobs_lrs2_names_splits_and_duplicates(tmp_path):
    from lipmem_core.data.preprocess import plan_jobs

    for rel in (
        "main/5535415699068794046/00001.mp4",
        "pretrain/5535415699068794046/00001.mp4",
        "main/6/00002.mp4",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "val.txt").write_text("6/00002\n", encoding="utf-8")
    jobs = plan_jobs(tmp_path, tmp_path / "out", 128, 25, split_lists=lists)
    got = sorted((j.split, j.speaker, j.utterance) for j in jobs)
    assert got == [
        ("train", "5535415699068794046", "00001"),
        ("train", "5535415699068794046", "pretrain_00001"),
        ("val", "6", "00002"),
    ]
    assert len({j.out for j in jobs}) == 3
