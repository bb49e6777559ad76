"""Upload limits, checked from file headers before anything is decoded.

The app's own limits (duration, upload size, typed text) are here; the limits every entry point
shares (image side, working size) are in lipmem_core/limits.py, and the header readers in
lipmem_core/audio.py (`media_duration`, re-exported here) and lipmem_core/infer/video.py.
"""

from __future__ import annotations

from pathlib import Path

from lipmem_core.audio import check_duration
from lipmem_core.errors import InputTooLongError, LipMemError, SpeechSynthesisError
from lipmem_core.infer.video import check_frame_size, image_size
from lipmem_core.limits import MAX_IMAGE_SIDE

MAX_SECONDS = 60.0  # longest audio or video accepted
MAX_UPLOAD_MB = 50  # also given to Gradio's launch(max_file_size=...)
MAX_TEXT_CHARS = 600  # typed text: ~60 s of speech at 160 words per minute

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


def check_media(path: str | Path, what: str = "audio") -> float:
    """Size and duration limits for an uploaded recording; returns its duration in seconds."""
    return check_duration(check_size(path), MAX_SECONDS, what)


def check_image(path: str | Path) -> Path:
    """Upload size and pixel size (from the header: nothing is decoded) of a face image."""
    p = check_size(path)
    check_frame_size(*image_size(p), "image")
    return p


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
