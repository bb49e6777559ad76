"""Reading (and the few writing helpers of) a corpus on disk in the SynthTalk layout.

Layout (docs/ARCHITECTURE.md): ROOT/speakers.json, ROOT/manifest.csv and one directory per
utterance, ROOT/{split}/{speaker}/{utterance}/ with 00000.jpg..., audio.wav (16 kHz mono
PCM16, exactly frames * 640 samples), phones.TextGrid (MFA style: tiers "words" and
"phones", ARPAbet, "" for silence) and, for SynthTalk, mouth.csv. Every reader raises
CorpusError with the path and what to do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lipmem_core.config import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from lipmem_core.errors import CorpusError, UnknownPhoneError
from lipmem_core.phones import SILENCE, Interval, normalize_phone

SPLITS = ("train", "val", "test")
MANIFEST_COLUMNS = ("split", "speaker", "utterance", "text", "seconds", "frames")
_ID_COLUMNS = {"split": str, "speaker": str, "utterance": str, "text": str}


def read_manifest(root: str | Path) -> pd.DataFrame:
    """manifest.csv as a DataFrame with columns MANIFEST_COLUMNS (ids kept as strings)."""
    path = Path(root) / "manifest.csv"
    if not path.is_file():
        raise CorpusError(
            f"{path} does not exist: build a corpus with `python -m lipmem_core.data.synth "
            "--out DIR ...` or point to a directory that has one"
        )
    try:
        df = pd.read_csv(path, dtype=_ID_COLUMNS, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path} is not a readable CSV ({exc}): rebuild the manifest") from exc
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise CorpusError(f"{path} lacks columns {missing}; expected {list(MANIFEST_COLUMNS)}")
    bad = sorted(set(df["split"]) - set(SPLITS))
    if bad:
        raise CorpusError(f"{path} has unknown splits {bad}; expected {list(SPLITS)}")
    try:
        df["frames"] = df["frames"].astype(np.int64)
        df["seconds"] = df["seconds"].astype(np.float64)
    except (ValueError, TypeError) as exc:
        raise CorpusError(f"{path}: 'frames'/'seconds' must be numbers ({exc})") from exc
    return df[list(MANIFEST_COLUMNS)]


def write_manifest(root: str | Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write manifest.csv (sorted by split, speaker, utterance) atomically."""
    path = Path(root) / "manifest.csv"
    df = pd.DataFrame(list(rows), columns=list(MANIFEST_COLUMNS))
    order = {s: i for i, s in enumerate(SPLITS)}
    df = df.sort_values(
        ["split", "speaker", "utterance"], key=lambda c: c.map(order) if c.name == "split" else c
    )
    tmp = path.with_suffix(".csv.tmp")
    df.to_csv(tmp, index=False, float_format="%.2f", lineterminator="\n")
    tmp.replace(path)
    return path


def read_speakers(root: str | Path) -> dict[str, Any]:
    """speakers.json: {"seed": ..., "speakers": {id: {"split", "identity", "voice"}}, ...}."""
    path = Path(root) / "speakers.json"
    if not path.is_file():
        raise CorpusError(f"{path} does not exist: is {root} a SynthTalk corpus?")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path} is not valid JSON ({exc}): rebuild the corpus") from exc
    if not isinstance(data, dict) or not isinstance(data.get("speakers"), dict):
        raise CorpusError(f"{path} has no 'speakers' mapping")
    return data


def clip_dir(root: str | Path, row: Any) -> Path:
    """ROOT/split/speaker/utterance for a manifest row (Series, namedtuple or mapping)."""
    get = row.get if isinstance(row, Mapping) else lambda k: getattr(row, k)
    return Path(root) / str(get("split")) / str(get("speaker")) / str(get("utterance"))


def _require(path: Path) -> Path:
    if not path.is_file():
        raise CorpusError(f"{path} is missing: the clip is incomplete; re-run the corpus builder")
    return path


def frame_paths(clip: str | Path) -> list[Path]:
    """The clip's frame files 00000.jpg, 00001.jpg, ... (checked to be consecutive)."""
    paths = sorted(Path(clip).glob("[0-9][0-9][0-9][0-9][0-9].jpg"))
    if not paths:
        raise CorpusError(f"{clip} has no frames (00000.jpg ...)")
    if paths[-1].stem != f"{len(paths) - 1:05d}":
        raise CorpusError(f"{clip}: frame files are not consecutive from 00000.jpg")
    return paths


def read_frames(clip: str | Path) -> np.ndarray:
    """All frames of a clip: uint8 RGB (n, H, W, 3)."""
    import cv2

    frames = []
    for p in frame_paths(clip):
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is None:
            raise CorpusError(f"{p} is not a readable JPEG: re-generate the clip")
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return np.stack(frames)


def read_audio(clip: str | Path) -> np.ndarray:
    """audio.wav: float32 (n_frames * 640,) at 16 kHz mono."""
    import soundfile as sf

    path = _require(Path(clip) / "audio.wav")
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=False)
    except RuntimeError as exc:  # soundfile's error for unreadable files
        raise CorpusError(f"{path} is not a readable WAV ({exc})") from exc
    if sr != SAMPLE_RATE or audio.ndim != 1:
        raise CorpusError(f"{path} is {sr} Hz with shape {audio.shape}; expected 16 kHz mono")
    return audio


def read_intervals(clip: str | Path, tier: str = "phones") -> list[Interval]:
    """A TextGrid tier as Intervals. Phones are normalised ARPAbet ("" and pauses -> "sil")
    and tile the clip; words keep their labels and skip empty (silent) intervals."""
    from praatio import textgrid

    path = _require(Path(clip) / "phones.TextGrid")
    try:
        tg = textgrid.openTextgrid(str(path), includeEmptyIntervals=True)
        entries = tg.getTier(tier).entries
    except KeyError as exc:
        raise CorpusError(f"{path} has no tier {tier!r} (MFA style needs 'words' and 'phones')") from exc
    except Exception as exc:  # praatio raises many types on malformed files
        raise CorpusError(f"{path} is not a readable TextGrid ({type(exc).__name__}: {exc})") from exc
    if tier != "phones":
        return [Interval(e.start, e.end, e.label) for e in entries if e.label.strip()]
    try:
        return [Interval(e.start, e.end, normalize_phone(e.label)) for e in entries]
    except UnknownPhoneError as exc:
        raise CorpusError(f"{path}: {exc}") from exc


def read_phones(clip: str | Path) -> list[Interval]:
    return read_intervals(clip, "phones")


def read_words(clip: str | Path) -> list[Interval]:
    return read_intervals(clip, "words")


def phones_table(clip: str | Path) -> pd.DataFrame:
    """Phones as a DataFrame with columns start, end, phone."""
    return pd.DataFrame(read_phones(clip), columns=["start", "end", "phone"])


def read_mouth(clip: str | Path) -> pd.DataFrame:
    """mouth.csv: one row per frame (frame, the MOUTH_PARAMS, phone at the frame centre)."""
    from lipmem_core.data.synth.mouth import MOUTH_PARAMS

    path = _require(Path(clip) / "mouth.csv")
    df = pd.read_csv(path, keep_default_na=False)
    expected = ["frame", *MOUTH_PARAMS, "phone"]
    if list(df.columns) != expected:
        raise CorpusError(f"{path} has columns {list(df.columns)}; expected {expected}")
    return df


def read_mouth_params(clip: str | Path) -> np.ndarray:
    """The exact MOUTH_PARAMS of every frame, (n_frames, 7) float32, from mouth.csv."""
    from lipmem_core.data.synth.mouth import MOUTH_PARAMS

    return read_mouth(clip)[list(MOUTH_PARAMS)].to_numpy(np.float32)


def frame_phones(phones: Sequence[Interval], n_frames: int, fps: int = FPS) -> list[str]:
    """The phone label at each frame centre (k + 0.5) / fps ("sil" outside all intervals)."""
    starts = np.array([p.start for p in phones])
    centres = (np.arange(n_frames) + 0.5) / fps
    idx = np.searchsorted(starts, centres, side="right") - 1
    out = []
    for t, i in zip(centres, idx, strict=True):
        out.append(phones[i].label if i >= 0 and t < phones[i].end else SILENCE)
    return out


def write_textgrid(
    path: str | Path, phones: Sequence[Interval], words: Sequence[Interval], duration: float
) -> None:
    """MFA-style TextGrid: tiers "words" and "phones", ARPAbet, "" for silence; gaps between
    words are written as empty intervals (praatio fills them)."""
    from praatio import textgrid

    tg = textgrid.Textgrid()
    word_entries = [(w.start, w.end, w.label) for w in words if w.end > w.start]
    phone_entries = [(p.start, p.end, "" if p.label == SILENCE else p.label) for p in phones]
    tg.addTier(textgrid.IntervalTier("words", word_entries, 0.0, duration))
    tg.addTier(textgrid.IntervalTier("phones", phone_entries, 0.0, duration))
    tg.save(str(path), format="long_textgrid", includeBlankSpaces=True)


def check_clip(clip: str | Path) -> int:
    """Verify the corpus rule for one clip; returns its number of frames.

    n JPEG frames, audio of exactly n * 640 samples, phones tiling [0, n / 25], and (if
    present) n rows in mouth.csv. Raises CorpusError naming the first violation.
    """
    clip = Path(clip)
    n = len(frame_paths(clip))
    audio = read_audio(clip)
    if len(audio) != n * SAMPLES_PER_FRAME:
        raise CorpusError(f"{clip}: audio has {len(audio)} samples, expected {n} frames x 640")
    phones = read_phones(clip)
    if abs(phones[0].start) > 1e-6 or abs(phones[-1].end - n / FPS) > 1e-6:
        raise CorpusError(f"{clip}: phones span {phones[0].start}..{phones[-1].end}, not 0..{n / FPS}")
    if any(abs(a.end - b.start) > 1e-6 for a, b in zip(phones, phones[1:], strict=False)):
        raise CorpusError(f"{clip}: phone intervals leave a gap or overlap")
    if (clip / "mouth.csv").exists() and len(read_mouth(clip)) != n:
        raise CorpusError(f"{clip}: mouth.csv does not have {n} rows")
    return n
