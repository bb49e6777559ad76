"""Aligners, the phone table and TextGrid I/O (analysis.align, .tables, .textgrids)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from analysis.align import align_espeak, align_mfa, align_pocketsphinx, main, recognize
from analysis.tables import PHONE_COLUMNS, phone_table, word_intervals
from analysis.textgrids import read_textgrid, write_textgrid
from lipmem_core.audio import load_audio
from lipmem_core.config import SAMPLE_RATE
from lipmem_core.errors import AlignmentError
from lipmem_core.phones import PHONES, SILENCE, Interval
from tests.conftest import ARCTIC_TRANSCRIPT


def _cmudict() -> dict[str, set[tuple[str, ...]]]:
    """Every pronunciation of every word in PocketSphinx's CMUdict (stress-free ARPAbet)."""
    import pocketsphinx

    path = Path(pocketsphinx.__file__).parent / "model" / "en-us" / "cmudict-en-us.dict"
    prons: dict[str, set[tuple[str, ...]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        word, *phones = line.split()
        base = word.split("(")[0]
        prons.setdefault(base, set()).add(tuple(phones))
    return prons


def _assert_tiles(table: pd.DataFrame, duration: float) -> None:
    assert list(table.columns) == PHONE_COLUMNS
    assert table["start"].iloc[0] == 0.0
    assert table["end"].iloc[-1] == pytest.approx(duration)
    np.testing.assert_allclose(table["start"].to_numpy()[1:], table["end"].to_numpy()[:-1])
    assert (table["end"] > table["start"]).all()
    assert set(table["phone"]) <= set(PHONES)


# ---- PocketSphinx on real speech ------------------------------------------------------------


@pytest.fixture(scope="module")
def arctic(arctic_wav):
    return load_audio(arctic_wav)


def test_pocketsphinx_real_speech_gives_transcript_phones_in_order(arctic):
    result = align_pocketsphinx(arctic, ARCTIC_TRANSCRIPT, utterance="a0007")
    table = result.table
    _assert_tiles(table, len(arctic) / SAMPLE_RATE)
    words = [w.label for w in word_intervals(table)]
    assert words == ARCTIC_TRANSCRIPT.split()
    prons = _cmudict()
    for w, group in table[table["word_index"] >= 0].groupby("word_index"):
        spoken = tuple(group["phone"])
        assert spoken in prons[words[w]], f"{words[w]!r} aligned as {spoken}"
    speech = table[table["phone"] != SILENCE]
    durations = speech["end"] - speech["start"]
    assert durations.between(0.02, 0.4).all()  # 10 ms frames x 3 states minimum; no phone lasts 0.4 s
    # ARCTIC a0007 starts speaking at about 0.37 s and stops at about 3.5 s of its 4.0 s.
    assert 0.2 < speech["start"].min() < 0.5
    assert 3.2 < speech["end"].max() < 3.8


def test_recognition_then_alignment_returns_the_recognised_text(arctic):
    result = align_pocketsphinx(arctic, text=None)
    assert result.text == recognize(arctic)
    assert len(result.text.split()) >= 5
    assert [w.label for w in word_intervals(result.table)] == result.text.split()


def test_words_missing_from_the_dictionary_are_named(arctic):
    with pytest.raises(AlignmentError, match="zorblative") as info:
        align_pocketsphinx(arctic, "and you always want to see it in the zorblative degree")
    assert "oov" in str(info.value)


@pytest.mark.parametrize("audio", [np.zeros(SAMPLE_RATE, np.float32), np.zeros(10, np.float32)])
def test_no_speech_is_a_clear_error(audio):
    with pytest.raises(AlignmentError, match="no speech"):
        align_pocketsphinx(audio, "hello")


def test_empty_transcript_is_an_error(arctic):
    with pytest.raises(AlignmentError, match="no words"):
        align_pocketsphinx(arctic, " ,.! ")


# ---- espeak: exact alignment, TextGrid round trip, agreement with PocketSphinx ---------------


FOX = "the quick brown fox jumps over the lazy dog"


@pytest.fixture(scope="module")
def espeak_result():
    return align_espeak(FOX, utterance="fox")


def test_espeak_alignment_round_trips_through_textgrid(espeak_result, tmp_path):
    table = espeak_result.table
    duration = len(espeak_result.audio) / SAMPLE_RATE
    _assert_tiles(table, duration)
    assert [w.label for w in word_intervals(table)] == FOX.split()
    path = write_textgrid(table, tmp_path / "fox.TextGrid", duration=duration)
    back = read_textgrid(path, utterance="fox")
    pd.testing.assert_frame_equal(back, table, check_exact=False, atol=1e-9)


def test_pocketsphinx_agrees_with_espeak_exact_times(espeak_result):
    ps = align_pocketsphinx(espeak_result.audio, espeak_result.text).table
    exact = espeak_result.table
    a, b = ps[ps["phone"] != SILENCE], exact[exact["phone"] != SILENCE]
    if list(a["phone"]) != list(b["phone"]):  # a differing pronunciation; compare word times instead
        a, b = (pd.DataFrame(word_intervals(t)) for t in (ps, exact))
    errors = np.abs(a["start"].to_numpy() - b["start"].to_numpy())
    assert np.median(errors) < 0.05


def test_oov_espeak_fallback_aligns_an_unknown_word(espeak_result):
    audio = align_espeak("the zorblative dog").audio
    table = align_pocketsphinx(audio, "the zorblative dog", oov="espeak").table
    assert [w.label for w in word_intervals(table)] == ["the", "zorblative", "dog"]
    assert (table["word"] == "zorblative").sum() >= 5


# ---- TextGrids as MFA writes them ------------------------------------------------------------

_MFA_LINES = """File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 1.2
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "spk01 - words"
        xmin = 0
        xmax = 1.2
        intervals: size = 4
        intervals [1]:
            xmin = 0
            xmax = 0.2
            text = ""
        intervals [2]:
            xmin = 0.2
            xmax = 0.5
            text = "hi"
        intervals [3]:
            xmin = 0.5
            xmax = 0.9
            text = "<unk>"
        intervals [4]:
            xmin = 0.9
            xmax = 1.2
            text = ""
    item [2]:
        class = "IntervalTier"
        name = "spk01 - phones"
        xmin = 0
        xmax = 1.2
        intervals: size = 6
        intervals [1]:
            xmin = 0
            xmax = 0.2
            text = ""
        intervals [2]:
            xmin = 0.2
            xmax = 0.3
            text = "HH"
        intervals [3]:
            xmin = 0.3
            xmax = 0.5
            text = "AY1"
        intervals [4]:
            xmin = 0.5
            xmax = 0.9
            text = "spn"
        intervals [5]:
            xmin = 0.9
            xmax = 1.0
            text = "sp"
        intervals [6]:
            xmin = 1.0
            xmax = 1.2
            text = ""
"""
# Praat's long text format ends value lines with a space; keep that detail of real files.
MFA_TEXTGRID = "".join(
    line + (" \n" if "=" in line or line.endswith("[]:") or line.startswith("tiers?") else "\n")
    for line in _MFA_LINES.splitlines()
)


def test_mfa_textgrid_parses_to_the_expected_table(tmp_path):
    path = tmp_path / "clip7.TextGrid"
    path.write_text(MFA_TEXTGRID, encoding="utf-8")
    table = read_textgrid(path)
    expected = pd.DataFrame(
        {
            "utterance": ["clip7"] * 4,
            "phone": [SILENCE, "HH", "AY", SILENCE],  # stress dropped; spn, sp and "" are silence
            "start": [0.0, 0.2, 0.3, 0.5],
            "end": [0.2, 0.3, 0.5, 1.2],
            "word": ["", "hi", "hi", ""],
            "word_index": [-1, 0, 0, -1],
        }
    )
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    assert read_textgrid(path, speaker="spk01").equals(table)
    # MFA can also write Praat's short text format; it reads to the same table.
    from praatio import textgrid

    short = tmp_path / "clip7_short.TextGrid"
    textgrid.openTextgrid(str(path), includeEmptyIntervals=True).save(
        str(short), format="short_textgrid", includeBlankSpaces=True
    )
    assert "intervals [" not in short.read_text(encoding="utf-8")
    pd.testing.assert_frame_equal(read_textgrid(short, utterance="clip7"), table)


def test_several_speakers_need_a_choice(tmp_path):
    from praatio import textgrid

    tg = textgrid.Textgrid()
    for spk, label in (("spk01", "M"), ("spk02", "B")):
        tg.addTier(textgrid.IntervalTier(f"{spk} - phones", [(0.1, 0.3, label)], 0, 0.5))
    path = tmp_path / "two.TextGrid"
    tg.save(str(path), format="long_textgrid", includeBlankSpaces=True)
    with pytest.raises(AlignmentError, match="spk01.*spk02"):
        read_textgrid(path)
    assert list(read_textgrid(path, speaker="spk02")["phone"]) == [SILENCE, "B", SILENCE]
    with pytest.raises(AlignmentError, match="nobody"):
        read_textgrid(path, speaker="nobody")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("this is not a TextGrid\n", "not a readable TextGrid"),
        (MFA_TEXTGRID[: len(MFA_TEXTGRID) // 2], "not a readable TextGrid"),  # truncated file
        (MFA_TEXTGRID.replace("phones", "tones"), "no 'phones' tier"),
        (MFA_TEXTGRID.replace('"AY1"', '"QQ"'), "QQ"),
    ],
)
def test_malformed_textgrids_raise_alignment_error(tmp_path, text, message):
    path = tmp_path / "bad.TextGrid"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AlignmentError, match=message):
        read_textgrid(path)


def test_missing_textgrid_is_an_alignment_error(tmp_path):
    with pytest.raises(AlignmentError, match="does not exist"):
        read_textgrid(tmp_path / "nope.TextGrid")


# ---- the phone table -------------------------------------------------------------------------


def test_phone_table_fills_gaps_clips_and_keeps_repeated_words_apart(tmp_path):
    phones = [Interval(0.1, 0.2, "HH"), Interval(0.2, 0.3, "AE1"), Interval(0.3, 0.4, "D"),
              Interval(0.4, 0.5, "HH"), Interval(0.5, 0.6, "AE"), Interval(0.6, 0.7, "D"),
              Interval(0.7, 0.8, "sp"), Interval(0.8, 0.9, "sil"), Interval(0.9, 1.5, "M")]  # fmt: skip
    words = [Interval(0.1, 0.4, "had"), Interval(0.4, 0.7, "had"), Interval(0.9, 1.5, "mm")]
    table = phone_table(phones, words, "u", duration=1.0)
    assert list(table["phone"]) == [SILENCE, "HH", "AE", "D", "HH", "AE", "D", SILENCE, "M"]
    assert table["end"].iloc[-1] == 1.0
    assert list(table["word_index"]) == [-1, 0, 0, 0, 1, 1, 1, -1, 2]
    path = write_textgrid(table, tmp_path / "had.TextGrid")
    assert [w.label for w in word_intervals(read_textgrid(path))] == ["had", "had", "mm"]


def test_textgrid_times_are_written_to_the_microsecond(tmp_path):
    noisy = 0.1 + 0.27  # 0.37000000000000005: frame arithmetic leaves float noise
    table = phone_table([Interval(0.0, noisy, "M"), Interval(noisy, 0.6 + 1e-9, "AA")], utterance="u")
    text = write_textgrid(table, tmp_path / "u.TextGrid").read_text()
    assert "0.37000000000000005" not in text and "xmin = 0.37" in text
    assert "0.600000001" not in text and "xmax = 0.6" in text
    assert read_textgrid(tmp_path / "u.TextGrid")["end"].iloc[-1] == 0.6


def test_write_textgrid_rejects_several_utterances(tmp_path):
    a = phone_table([Interval(0, 0.1, "M")], utterance="a")
    b = phone_table([Interval(0, 0.1, "M")], utterance="b")
    with pytest.raises(AlignmentError, match="one utterance"):
        write_textgrid(pd.concat([a, b]), tmp_path / "x.TextGrid")


# ---- MFA backend and CLI ---------------------------------------------------------------------


@pytest.mark.skipif(
    shutil.which("mfa") is None, reason="no 'mfa' executable on PATH (MFA needs conda-forge Kaldi)"
)
def test_mfa_backend_aligns_real_speech(arctic):
    table = align_mfa(arctic, ARCTIC_TRANSCRIPT).table
    assert [w.label for w in word_intervals(table)] == ARCTIC_TRANSCRIPT.split()


def test_mfa_backend_without_mfa_says_what_to_do(arctic, monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(AlignmentError, match="no 'mfa' executable"):
        align_mfa(arctic, ARCTIC_TRANSCRIPT)


def test_cli_espeak_writes_textgrid_and_speech(tmp_path, capsys):
    out, wav = tmp_path / "hello.TextGrid", tmp_path / "hello.wav"
    assert main(["--backend", "espeak", "--text", "hello world", "--audio", str(wav), "--out", str(out)]) == 0
    table = read_textgrid(out)
    audio, sr = sf.read(wav)
    assert sr == SAMPLE_RATE
    assert table["end"].iloc[-1] == pytest.approx(len(audio) / SAMPLE_RATE, abs=1e-6)
    assert [w.label for w in word_intervals(table)] == ["hello", "world"]


def test_cli_espeak_refuses_to_overwrite_a_recording(tmp_path, arctic_wav, capsys):
    wav = tmp_path / "mine.wav"
    shutil.copy(arctic_wav, wav)
    before = wav.read_bytes()
    with pytest.raises(SystemExit):
        main(
            [
                "--backend",
                "espeak",
                "--text",
                "hi",
                "--audio",
                str(wav),
                "--out",
                str(tmp_path / "x.TextGrid"),
            ]
        )
    assert "pocketsphinx" in capsys.readouterr().err
    assert wav.read_bytes() == before


def test_cli_pocketsphinx_aligns_a_file_and_reports_errors(tmp_path, arctic_wav, capsys):
    out = tmp_path / "a.TextGrid"
    assert main(["--audio", str(arctic_wav), "--text", ARCTIC_TRANSCRIPT, "--out", str(out)]) == 0
    assert len(read_textgrid(out)) > 30
    assert main(["--audio", str(arctic_wav), "--text", "qqqzzz", "--out", str(out)]) == 2
    assert "qqqzzz" in capsys.readouterr().err
