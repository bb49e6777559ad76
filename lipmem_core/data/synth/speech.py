"""Speech with exact phone timings from espeak-ng (ctypes over the library in espeakng-loader).

`synthesize(text, voice)` returns 16 kHz float32 audio plus ARPAbet phone intervals that tile
the audio exactly; the times come from espeak's own sample positions of its phoneme events,
so they are ground truth, not an alignment.

Determinism: the same (text, voice) gives the same samples in any process, whatever was
synthesised before; espeak_engine.py explains how (espeak keeps state across utterances).
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import string
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lipmem_core.audio import to_model_rate
from lipmem_core.config import SAMPLE_RATE
from lipmem_core.data.synth.espeak_engine import EVENT_PHONEME, EVENT_WORD, EspeakEngine
from lipmem_core.errors import InputTooLongError, SpeechSynthesisError, UnknownPhoneError
from lipmem_core.phones import SILENCE, Interval, espeak_to_arpabet

MAX_TEXT_CHARS = 2000
LEAD_SILENCE = 0.08  # s of silence before the speech: espeak starts vowel-initial text at 0
TRAIL_SILENCE = 0.08  # s: the least silence after the speech (espeak's end pause, topped up)

# Language voices (BCP-47-like names as espeak-ng lists them) -> the name espeak selects by.
# "en-gb" is listed but only selectable as "en".
_LANGUAGES: dict[str, str] = {
    "en-us": "en-us",
    "en-gb": "en",
    "en-gb-scotland": "en-gb-scotland",
    "en-gb-x-rp": "en-gb-x-rp",
    "en-gb-x-gbclan": "en-gb-x-gbclan",
    "en-gb-x-gbcwmd": "en-gb-x-gbcwmd",
    "en-029": "en-029",
    "en-us-nyc": "en-us-nyc",
}
# Variants (espeak-ng-data/voices/!v) that sound like a plain human voice: whisper, croak
# and the robot/novelty variants have no clear voicing or formants to lip-read from.
VARIANTS: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "Alex", "Andy", "Annie", "Denis", "Gene", "Lee",
    "Michael", "Mike", "Reed", "adam", "anika", "aunty", "belinda", "benjamin", "david",
    "ed", "edward", "grandma", "grandpa", "ian", "john", "linda", "max", "norbert", "paul",
    "quincy", "rob", "robert", "steph", "travis", "victor", "zac",
)  # fmt: skip

_PUNCTUATION = string.punctuation + string.whitespace


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice: language voice, variant (None = default), speed and pitch."""

    name: str = "en-us"
    variant: str | None = None
    wpm: int = 160  # words per minute, espeak accepts 80..450
    pitch: int = 50  # 0..100
    pitch_range: int = 50  # 0..100

    def __post_init__(self) -> None:
        if self.name not in _LANGUAGES:
            raise SpeechSynthesisError(f"unknown voice {self.name!r}; choose one of {', '.join(_LANGUAGES)}")
        if self.variant is not None and self.variant not in VARIANTS:
            raise SpeechSynthesisError(
                f"unknown voice variant {self.variant!r}; choose one of {', '.join(VARIANTS)}"
            )
        if not 80 <= self.wpm <= 450:
            raise SpeechSynthesisError(f"speed {self.wpm} wpm is outside espeak's 80..450")
        for what, v in (("pitch", self.pitch), ("pitch range", self.pitch_range)):
            if not 0 <= v <= 100:
                raise SpeechSynthesisError(f"{what} {v} is outside 0..100")

    @property
    def espeak_name(self) -> str:
        """The name given to espeak_SetVoiceByName, e.g. "en-us+m3"."""
        base = _LANGUAGES[self.name]
        return f"{base}+{self.variant}" if self.variant else base

    @property
    def label(self) -> str:
        """The voice picker's name, e.g. "en-gb+f2"; `Voice.parse(label)` inverts it."""
        return f"{self.name}+{self.variant}" if self.variant else self.name

    @classmethod
    def parse(cls, label: str, **kwargs: Any) -> Voice:
        """Voice from a picker label "name" or "name+variant"; kwargs set speed and pitch."""
        name, _, variant = label.partition("+")
        return cls(name=name, variant=variant or None, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Voice:
        return cls(**d)

    @classmethod
    def sample(cls, rng: np.random.Generator, variants: Sequence[str] = VARIANTS) -> Voice:
        """A random corpus speaker's voice: any English accent, one of `variants` (default:
        every human-sounding one), 130-200 wpm, pitch 25-75, range 30-80."""
        return cls(
            name=str(rng.choice(list(_LANGUAGES))),
            variant=str(rng.choice(list(variants))),
            wpm=int(rng.integers(130, 201)),
            pitch=int(rng.integers(25, 76)),
            pitch_range=int(rng.integers(30, 81)),
        )


@dataclass
class Utterance:
    """Synthesised speech: `audio` float32 (N,) at `sample_rate`; `phones` (ARPAbet + "sil")
    tile [0, N / sample_rate] exactly; `words` (lower case) cover the spoken words only."""

    text: str
    audio: np.ndarray
    sample_rate: int = SAMPLE_RATE
    phones: list[Interval] = field(default_factory=list)
    words: list[Interval] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate


def list_voices() -> list[str]:
    """Voice picker labels: each English language voice alone, then with every variant."""
    return list(_LANGUAGES) + [f"{n}+{v}" for n in _LANGUAGES for v in VARIANTS]


_engine: EspeakEngine | None = None
_lock = threading.Lock()


def _after_fork_in_child() -> None:
    # A fork taken while another thread held the lock would leave the child's copy locked,
    # and the child must not talk to its parent's espeak processes.
    global _lock
    _lock = threading.Lock()
    if _engine is not None:
        _engine.forget_inherited()


os.register_at_fork(after_in_child=_after_fork_in_child)


def shutdown() -> None:
    """End this process's espeak helper processes (they also end by themselves when it exits)."""
    with _lock:
        if _engine is not None:
            _engine.close()


atexit.register(shutdown)


def synthesize(text: str, voice: Voice = Voice()) -> Utterance:
    """Speak `text` with `voice`: 16 kHz audio, ARPAbet phones tiling it, word intervals.

    Raises SpeechSynthesisError for empty text or text that yields no speech, and
    InputTooLongError past MAX_TEXT_CHARS. Thread-safe (calls are serialised) and
    deterministic: the same (text, voice) gives the same samples in any process or order.
    """
    global _engine
    if not text or not text.strip():
        raise SpeechSynthesisError("the text is empty: type something to say")
    if len(text) > MAX_TEXT_CHARS:
        raise InputTooLongError(
            f"the text has {len(text)} characters; the limit is {MAX_TEXT_CHARS}: split it up"
        )
    with _lock:
        if _engine is None:
            _engine = EspeakEngine()
        pcm, events = _engine.synth(
            text.encode("utf-8"), voice.espeak_name, voice.wpm, voice.pitch, voice.pitch_range
        )
        rate = _engine.rate
    return _build_utterance(text, pcm, events, rate)


def _build_utterance(text: str, pcm: np.ndarray, events: np.ndarray, rate: int) -> Utterance:
    """Events at `rate` -> 16 kHz audio with LEAD_SILENCE, phone and word intervals in s."""
    phonemes = events[events["type"] == EVENT_PHONEME]
    n_native = len(pcm)
    # Raw espeak segments: (start, end) in seconds of native audio, mnemonic, word index.
    # Event samples are very rarely out of order (~1 in 30k phones at 450 wpm): keep them
    # monotonic, so a phone whose event came late shrinks to nothing and is dropped.
    starts = np.maximum.accumulate(np.minimum(phonemes["sample"], n_native)).astype(np.float64) / rate
    ends = np.append(starts[1:], n_native / rate)
    word_of = _word_index(events)
    segments: list[tuple[float, float, str, int]] = []
    for s, e, name, w in zip(starts, ends, phonemes["name"], word_of, strict=True):
        segments.append((float(s), float(min(e, n_native / rate)), name.decode("utf-8"), w))

    phones: list[list[Any]] = []  # [start, end, label] before the lead shift
    for s, e, name, _ in segments:
        try:
            labels = espeak_to_arpabet(name)
        except UnknownPhoneError:
            # Text in another script (Hebrew, Arabic, ...) makes espeak's English voices speak
            # sounds with no English phone: a user's problem to fix, not a developer's.
            raise SpeechSynthesisError(
                "the text holds sounds that have no English phone (is it in another language or "
                "script?): LipMem speaks English, so type the text in English"
            ) from None
        if not labels:  # a mark with no sound: its time stays with the previous phone
            if phones:
                phones[-1][1] = e
            continue
        if len(labels) == 1:
            phones.append([s, e, labels[0]])
        else:  # a two-phone mnemonic: split its interval
            mid = s + _first_share(labels) * (e - s)
            phones += [[s, mid, labels[0]], [mid, e, labels[1]]]
    if not any(p[2] != SILENCE for p in phones):
        raise SpeechSynthesisError(
            f"espeak-ng produced no speech for {text[:60]!r}: give words, not only symbols"
        )

    audio = to_model_rate(pcm, rate) if n_native else np.zeros(0, np.float32)
    audio = np.clip(audio, -1.0, 1.0)
    lead = round(LEAD_SILENCE * SAMPLE_RATE)
    # espeak ends most clauses with a pause, but not all ("!"): top the final silence up.
    end_pause = n_native / rate - max(p[1] for p in phones if p[2] != SILENCE)
    trail = max(0, round((TRAIL_SILENCE - end_pause) * SAMPLE_RATE))
    audio = np.concatenate([np.zeros(lead, np.float32), audio, np.zeros(trail, np.float32)])
    total = len(audio) / SAMPLE_RATE
    shift = lead / SAMPLE_RATE
    tiled = [[0.0, shift, SILENCE]] + [[s + shift, e + shift, lab] for s, e, lab in phones]
    tiled.append([tiled[-1][1], total, SILENCE])
    return Utterance(
        text=text,
        audio=audio,
        phones=_tile(tiled, total),
        words=_words(text, events, segments, shift),
    )


def _first_share(labels: tuple[str, ...]) -> float:
    """Share of a two-phone mnemonic's time given to its first phone: the schwa of a
    syllabic consonant ("bottle" AH L) is brief, the vowel of an r-coloured vowel ("car"
    AA R) carries most of it; anything else splits evenly."""
    first, second = labels
    if first == "AH" and second in ("L", "M", "N", "NG"):
        return 0.3
    if second == "R":
        return 0.6
    return 0.5


def _word_index(events: np.ndarray) -> list[int]:
    """For each phoneme event, the index (into word events) of the word it belongs to."""
    out, current = [], -1
    n_words = 0
    for e in events:
        if e["type"] == EVENT_WORD:
            current = n_words
            n_words += 1
        elif e["type"] == EVENT_PHONEME:
            out.append(current)
    return out


def _tile(intervals: list[list[Any]], total: float) -> list[Interval]:
    """Drop empty intervals, merge repeated silence and R (an r-coloured vowel followed by
    espeak's own r: CMUdict writes one R), and make the spans tile [0, total] exactly."""
    merged: list[list[Any]] = []
    for s, e, label in intervals:
        if e - s <= 1e-9:
            continue
        if merged and merged[-1][2] == label and label in (SILENCE, "R"):
            merged[-1][1] = e
        else:
            merged.append([s, e, label])
    for prev, nxt in zip(merged, merged[1:], strict=False):
        prev[1] = nxt[0]  # no gap, no overlap
    merged[0][0], merged[-1][1] = 0.0, total
    return [Interval(float(s), float(e), str(lab)) for s, e, lab in merged]


def _words(
    text: str, events: np.ndarray, segments: list[tuple[float, float, str, int]], shift: float
) -> list[Interval]:
    """Word intervals: from a word's first sounding phoneme to the end of its last one."""
    words = events[events["type"] == EVENT_WORD]
    spans: dict[int, list[float]] = {}
    for s, e, name, w in segments:
        if w < 0 or espeak_to_arpabet(name) in ((SILENCE,), ()):
            continue
        span = spans.setdefault(w, [s, e])
        span[1] = e
    out = []
    for w, (s, e) in sorted(spans.items()):
        pos, length = int(words[w]["pos"]) - 1, int(words[w]["len"])  # 1-based characters
        label = text[pos : pos + length].strip(_PUNCTUATION).lower() or "<unk>"
        out.append(Interval(s + shift, e + shift, label))
    return out
