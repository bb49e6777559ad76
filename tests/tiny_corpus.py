"""A hand-made corpus in the SynthTalk layout for data and training tests.

Frame k of a clip is a flat grey image whose level encodes k (`level_of(k)`), so a test can
tell which frame a tensor came from. The audio is low noise with an optional click at the
centre of a chosen frame. Layout as in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import soundfile as sf
from praatio import textgrid

SPF = 640  # audio samples per video frame


def level_of(k: int) -> int:
    """The grey level of frame k (distinct for k < 40, far from JPEG rounding)."""
    return 20 + 5 * k


def frame_of(pixels: float) -> int:
    """Invert level_of for a pixel in [-1, 1]."""
    return int(round(((pixels + 1) * 127.5 - 20) / 5))


def make_tiny_corpus(
    root: Path,
    clips: list[tuple[str, str, str, int]],
    size: int = 32,
    clicks: dict[str, int] | None = None,
    seed: int = 0,
) -> Path:
    """Write clips (split, speaker, utterance, n_frames) under root; clicks: utterance -> frame."""
    rng = np.random.default_rng(seed)
    rows, speakers = [], {}
    for split, spk, utt, n in clips:
        d = root / split / spk / utt
        d.mkdir(parents=True, exist_ok=True)
        for k in range(n):
            img = np.full((size, size, 3), level_of(k), np.uint8)
            cv2.imwrite(str(d / f"{k:05d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        wav = (rng.standard_normal(n * SPF) * 1e-3).astype(np.float32)
        # a voiced-ish tone so mels are not flat: varies with the frame, like speech
        t = np.arange(n * SPF) / 16_000
        wav += 0.05 * np.sin(2 * np.pi * (200 + 30 * np.floor(t * 25)) * t).astype(np.float32)
        if clicks and utt in clicks:
            c = int((clicks[utt] + 0.5) * SPF)
            wav[c - 8 : c + 8] = 0.9 * np.hanning(16)
        sf.write(str(d / "audio.wav"), wav, 16_000, subtype="PCM_16")
        dur = n / 25
        tg = textgrid.Textgrid()
        tg.addTier(textgrid.IntervalTier("words", [(0.0, dur, "hello")], 0.0, dur))
        tg.addTier(textgrid.IntervalTier("phones", [(0.0, dur / 2, "HH"), (dur / 2, dur, "OW1")], 0.0, dur))
        tg.save(str(d / "phones.TextGrid"), format="long_textgrid", includeBlankSpaces=True)
        rows.append(
            {"split": split, "speaker": spk, "utterance": utt, "text": "hello", "seconds": dur, "frames": n}
        )
        speakers[spk] = {"split": split, "identity": {}, "voice": {}}
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    (root / "speakers.json").write_text(json.dumps({"seed": seed, "speakers": speakers}))
    return root
