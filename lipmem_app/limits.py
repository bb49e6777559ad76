"""Upload limits, checked from file headers before anything is decoded.

A 20-minute recording must be refused in milliseconds, not after decoding it: durations come
from container metadata (soundfile's header, PyAV's container duration), never from samples.
"""

from __future__ import annotations

from pathlib import Path

from lipmem_core.errors import (
    AudioDecodeError,
    InputTooLongError,
    LipMemError,
    SpeechSynthesisError,
    VideoDecodeError,
)

MAX_SECONDS = 60.0  # longest audio or video accepted
MAX_UPLOAD_MB = 50  # also given to Gradio's launch(max_file_size=...)
MAX_TEXT_CHARS = 600  # typed text: ~60 s of speech at 160 words per minute
MAX_IMAGE_SIDE = 4096  # pixels

LIMITS_MARKDOWN = (
    f"Limits: audio and video up to **{MAX_SECONDS:.0f} s** and **{MAX_UPLOAD_MB} MB**; "
    f"typed text up to **{MAX_TEXT_CHARS} characters**; images up to {MAX_IMAGE_SIDE} px a side."
)


def check_size(path: str | Path) -> Path:
    """The file exists and is no larger than MAX_UPLOAD_MB."""
    p = Path(path)
    if not p.is_file():
        raise LipMemError(f"{p.name} was not received: upload the file again")
    mb = p.stat().st_size / 2**20
    if mb > MAX_UPLOAD_MB:
        raise InputTooLongError(
            f"{p.name} is {mb:.0f} MB; the limit is {MAX_UPLOAD_MB} MB: upload a shorter clip"
        )
    return p


def media_duration(path: str | Path, what: str = "audio") -> float:
    """Seconds of audio/video from the file header (no decoding); raises if unreadable."""
    p = Path(path)
    error = VideoDecodeError if what == "video" else AudioDecodeError
    import soundfile

    try:
        return float(soundfile.info(str(p)).duration)
    except Exception:  # not a format libsndfile knows: ask FFmpeg (PyAV) below
        pass
    import av

    try:
        with av.open(str(p)) as container:
            if container.duration is not None:
                return container.duration / 1_000_000  # AV_TIME_BASE units
            streams = [s for s in container.streams if s.type in ("audio", "video")]
            if not streams:
                raise error(f"{p.name} holds no audio or video stream: upload a recording")
            s = streams[0]
            if s.duration is not None and s.time_base is not None:
                return float(s.duration * s.time_base)
            # No duration in the header (some raw streams): sum packet durations (no decoding).
            ticks = sum(packet.duration or 0 for packet in container.demux(s))
            return float(ticks * s.time_base) if s.time_base is not None else 0.0
    except (AudioDecodeError, VideoDecodeError):
        raise
    except Exception as exc:  # PyAV raises many codec-specific errors
        raise error(
            f"{p.name} is not a readable {what} file ({type(exc).__name__}): "
            "upload a WAV, MP3, FLAC, OGG or M4A recording, or an MP4/WebM/MOV video"
        ) from exc


def check_media(path: str | Path, what: str = "audio") -> float:
    """Size and duration limits for an uploaded recording; returns its duration in seconds."""
    p = check_size(path)
    seconds = media_duration(p, what)
    if seconds > MAX_SECONDS:
        raise InputTooLongError(
            f"the {what} is {seconds:.0f} s long; the limit is {MAX_SECONDS:.0f} s: trim it and upload again"
        )
    return seconds


def check_text(text: str) -> str:
    """Typed text is non-empty and within MAX_TEXT_CHARS."""
    t = (text or "").strip()
    if not t:
        raise SpeechSynthesisError("type some text to speak (or choose an audio file or the microphone)")
    if len(t) > MAX_TEXT_CHARS:
        raise InputTooLongError(
            f"the text has {len(t)} characters; the limit is {MAX_TEXT_CHARS}: shorten it"
        )
    return t
