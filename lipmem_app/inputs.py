"""Turning the Generate tab's inputs into speech (16 kHz audio + phones) and a face.

Every user file is checked against the limits in `limits.py` from its header first, so a
20-minute recording or a 2 GB video is refused before anything is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lipmem_app.choices import check
from lipmem_app.limits import check_image, check_media, check_text
from lipmem_core.audio import check_speech
from lipmem_core.config import SAMPLE_RATE
from lipmem_core.errors import AudioDecodeError, LipMemError, VideoDecodeError

SPEECH_SOURCES = (("Text", "text"), ("Audio (upload or record)", "audio"))
FACE_SOURCES = (("Example identity", "example"), ("Image", "image"), ("Video", "video"))
DEFAULT_VOICE = "en-us"
CLIP_ID = "clip"  # utterance id of a single clip in frame and phone tables


@dataclass
class Speech:
    """One utterance to speak: `audio` (N,) float32 at 16 kHz; `phones` is its exact phone
    table (analysis.tables) when synthesised from text, else None (not aligned yet)."""

    audio: np.ndarray
    phones: pd.DataFrame | None
    text: str | None

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


@dataclass
class Face:
    """The face to animate: an example identity's name, or a user image/video path."""

    source: str  # a value of FACE_SOURCES
    example: str | None = None
    path: Path | None = None

    @property
    def is_synthtalk(self) -> bool:
        return self.source == "example"


def resolve_speech(source: str, text: str | None, voice: str | None, audio_path: str | None) -> Speech:
    """Speech from typed text (espeak-ng, exact phones) or from an uploaded/recorded file."""
    if check(source, SPEECH_SOURCES, "speech source") == "text":
        from analysis.align import align_espeak
        from lipmem_core.data.synth.speech import Voice

        aligned = align_espeak(check_text(text or ""), Voice.parse(voice or DEFAULT_VOICE), utterance=CLIP_ID)
        return Speech(aligned.audio, aligned.table, aligned.text)
    if not audio_path:
        raise AudioDecodeError(
            "no audio was given: upload a file or record with the microphone, or choose 'Text'"
        )
    check_media(audio_path, "audio")
    from lipmem_core.audio import load_audio

    return Speech(check_speech(load_audio(audio_path)), None, None)


def resolve_face(source: str, example: str | None, image_path: str | None, video_path: str | None) -> Face:
    """The chosen face, checked (size, duration) but not decoded."""
    check(source, FACE_SOURCES, "face source")
    if source == "example":
        if not example:
            raise LipMemError("choose an example identity")
        return Face(source, example=example)
    if source == "image":
        if not image_path:
            raise VideoDecodeError(
                "no image was given: upload a photo of a face, or choose an example identity"
            )
        return Face(source, path=check_image(image_path))
    if not video_path:
        raise VideoDecodeError("no video was given: upload a video of a face, or choose an example identity")
    check_media(video_path, "video")
    return Face(source, path=Path(video_path))
