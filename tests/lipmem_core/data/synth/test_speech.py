"""espeak-ng synthesis: exact tiling, determinism (serial, threaded, any order), errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from lipmem_core.config import SAMPLE_RATE
from lipmem_core.data.synth.sentences import load_cmudict
from lipmem_core.data.synth.speech import (
    LEAD_SILENCE,
    MAX_TEXT_CHARS,
    VARIANTS,
    Voice,
    list_voices,
    synthesize,
)
from lipmem_core.errors import InputTooLongError, SpeechSynthesisError
from lipmem_core.phones import PHONES, SILENCE

ENGLISH_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
                  "en-gb-x-gbcwmd", "en-029", "en-us-nyc")  # fmt: skip


def assert_tiles(utt):
    total = len(utt.audio) / SAMPLE_RATE
    ph = utt.phones
    assert ph[0].start == 0.0 and ph[-1].end == total
    assert all(a.end == b.start for a, b in zip(ph, ph[1:], strict=False))
    assert all(p.end > p.start for p in ph)
    assert all(p.label in PHONES for p in ph)
    assert ph[0].label == SILENCE and ph[-1].label == SILENCE
    assert all(not (a.label == b.label == SILENCE) for a, b in zip(ph, ph[1:], strict=False))


@pytest.mark.parametrize(
    "voice", [Voice(), Voice("en-gb", "f2", 200, 70, 20), Voice("en-gb-scotland", "klatt", 120)]
)
def test_phones_tile_the_audio_exactly(voice):
    utt = synthesize("Peter picked a peck of pickled peppers, didn't he? Oh yes!", voice)
    assert utt.audio.dtype == np.float32 and utt.audio.ndim == 1 and utt.sample_rate == SAMPLE_RATE
    assert np.abs(utt.audio).max() <= 1.0 and np.abs(utt.audio).max() > 0.05
    assert_tiles(utt)
    assert [w.label for w in utt.words][:3] == ["peter", "picked", "a"]
    assert all(a.end <= b.start + 1e-9 for a, b in zip(utt.words, utt.words[1:], strict=False))


def test_vowel_initial_text_still_starts_with_silence():
    utt = synthesize("Eat an apple")
    assert utt.phones[0].label == SILENCE and utt.phones[0].end >= LEAD_SILENCE - 1e-9
    assert utt.phones[1].label == "IY"


def test_phone_labels_and_times_match_the_sound():
    utt = synthesize("Bob saw a big map.")
    labels = [p.label for p in utt.phones if p.label != SILENCE]
    assert labels == ["B", "AA", "B", "S", "AO", "AH", "B", "IH", "G", "M", "AE", "P"]
    rms = {}
    for p in utt.phones:
        seg = utt.audio[int(p.start * SAMPLE_RATE) : int(p.end * SAMPLE_RATE)]
        rms.setdefault(p.label, []).append(float(np.sqrt(np.mean(seg**2))))
    # the lead silence is silent; vowels are loud
    assert rms[SILENCE][0] < 1e-4
    assert min(rms["AA"] + rms["AE"] + rms["AO"]) > 30 * rms[SILENCE][0] + 0.02


def test_synthesis_is_deterministic_whatever_came_before():
    text = "The quick brown fox jumps over the lazy dog."
    first = synthesize(text, Voice(variant="m3"))
    synthesize("Something else entirely, with other voices.", Voice("en-gb-x-rp", "f4", 250))
    again = synthesize(text, Voice(variant="m3"))
    assert np.array_equal(first.audio, again.audio)
    assert first.phones == again.phones and first.words == again.words
    other = synthesize(text, Voice(variant="f1"))
    assert not np.array_equal(first.audio[: len(other.audio)], other.audio[: len(first.audio)])


def test_concurrent_threads_give_the_serial_audio():
    texts = [f"Sentence number {w} is spoken now." for w in ("one", "two", "three", "four", "five", "six")]
    voices = [Voice(variant=v) for v in ("m1", "f2", "m3", None, "klatt", "f5")]
    serial = [synthesize(t, v).audio for t, v in zip(texts, voices, strict=True)]
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = synthesize(texts[i], voices[i]).audio

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(results[i], serial[i]) for i in range(len(texts)))


@pytest.mark.parametrize("text", ["", "   \n", "...", " , ; "])
def test_text_without_speech_is_refused(text):
    with pytest.raises(SpeechSynthesisError):
        synthesize(text)


def test_text_over_the_limit_is_refused():
    with pytest.raises(InputTooLongError, match=str(MAX_TEXT_CHARS)):
        synthesize("a " * MAX_TEXT_CHARS)


@pytest.mark.parametrize(
    "kwargs", [{"name": "fr"}, {"variant": "nope"}, {"wpm": 20}, {"pitch": 101}, {"pitch_range": -1}]
)
def test_invalid_voices_are_refused(kwargs):
    with pytest.raises(SpeechSynthesisError):
        Voice(**kwargs)


def test_voice_round_trips_and_samples_are_valid():
    v = Voice("en-029", "m7", 180, 30, 60)
    assert Voice.from_dict(v.to_dict()) == v and Voice.parse(v.label, wpm=180, pitch=30, pitch_range=60) == v
    rng = np.random.default_rng(0)
    sampled = [Voice.sample(rng) for _ in range(50)]
    assert len({s.label for s in sampled}) > 30
    assert all(130 <= s.wpm <= 200 and s.variant in VARIANTS for s in sampled)
    assert sampled == [Voice.sample(r) for r in [np.random.default_rng(0)] for _ in range(50)]


def test_list_voices_are_all_usable():
    labels = list_voices()
    assert set(ENGLISH_VOICES) <= set(labels) and len(labels) == len(set(labels))
    for label in labels[:: max(1, len(labels) // 12)] + ["en-gb+f3"]:
        assert_tiles(synthesize("hello", Voice.parse(label)))


@pytest.mark.slow
def test_every_mnemonic_of_every_english_voice_maps():
    """A sample of CMUdict words in all English accents: synthesize() raises
    UnknownPhoneError on any espeak mnemonic without an ARPAbet mapping."""
    words = list(load_cmudict())
    rng = np.random.default_rng(0)
    sample = [words[i] for i in rng.choice(len(words), 480, replace=False)]
    seen = set()
    for name in ENGLISH_VOICES:
        for i in range(0, len(sample), 120):
            text = " ".join(sample[i : i + 120]) + ". The treasure of this boy."
            utt = synthesize(text, Voice(name, wpm=450))
            assert_tiles(utt)
            seen |= {p.label for p in utt.phones}
    assert seen == set(PHONES)


def test_engine_keeps_few_voice_processes_and_survives_errors():
    from lipmem_core.data.synth import speech
    from lipmem_core.data.synth.espeak_engine import MAX_ZYGOTES

    for variant in ("m1", "m2", "m4", "m5", "m6", "m7"):
        synthesize("hi", Voice(variant=variant))
    engine = speech._engine
    assert len(engine._zygotes) == MAX_ZYGOTES
    alive = [z.pid for z in engine._zygotes.values()]
    with pytest.raises(SpeechSynthesisError, match="no voice"):
        engine.synth(b"hello", "xx-nonexistent", 160, 50, 50)
    assert [z.pid for z in list(engine._zygotes.values())[:-1]] == alive[1:]  # LRU order
    assert_tiles(synthesize("still working", Voice(variant="m7")))


def test_forked_child_does_not_share_the_parents_espeak_processes():
    import os

    reference = synthesize("from the child", Voice(variant="f3")).audio
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child synthesises with its own engine processes
        ok = np.array_equal(synthesize("from the child", Voice(variant="f3")).audio, reference)
        os.write(write_fd, b"1" if ok else b"0")
        os._exit(0)
    os.close(write_fd)
    assert os.read(read_fd, 1) == b"1"
    os.waitpid(pid, 0)
    os.close(read_fd)
    assert np.array_equal(synthesize("from the child", Voice(variant="f3")).audio, reference)


def test_two_phone_mnemonics_split_their_time_sensibly():
    phones = [p for p in synthesize("A bottle in the car.").phones if p.label != SILENCE]
    labels = [p.label for p in phones]
    dur = [p.end - p.start for p in phones]
    i = labels.index("L")  # syllabic l: a brief schwa, then the l
    assert labels[i - 1] == "AH" and dur[i - 1] < dur[i]
    j = len(labels) - 1 - labels[::-1].index("R")  # r-coloured vowel: the vowel dominates
    assert labels[j - 1] == "AA" and dur[j - 1] > dur[j]
