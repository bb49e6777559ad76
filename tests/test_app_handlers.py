"""The app's handlers called directly (no server): limits, inputs, generation, analysis."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from lipmem_app import limits
from lipmem_app.inputs import check_speech
from lipmem_core.errors import AudioDecodeError, InputTooLongError, LipMemError, SpeechSynthesisError


def _tone(seconds: float, sr: int = 16_000, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


# ---- limits: refused from the header, before decoding ------------------------------------------
def test_twenty_minute_recording_is_refused(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, np.zeros(20 * 60 * 8000, np.int16), 8000, subtype="PCM_16")  # 20 min, 19 MB
    with pytest.raises(InputTooLongError, match="1200 s"):
        limits.check_media(path, "audio")


def test_duration_from_header_for_wav_and_ffmpeg_formats(tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, _tone(2.5), 16_000)
    assert limits.media_duration(wav) == pytest.approx(2.5, abs=1e-3)
    import av

    mp4 = tmp_path / "a.m4a"  # AAC in MP4: libsndfile cannot read it, PyAV's header can
    with av.open(str(mp4), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=16_000)
        s.layout = "mono"
        x = _tone(3.0)
        for i in range(0, len(x), 1024):
            f = av.AudioFrame.from_ndarray(x[None, i : i + 1024], format="fltp", layout="mono")
            f.sample_rate, f.pts = 16_000, i
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    assert limits.media_duration(mp4) == pytest.approx(3.0, abs=0.1)
    assert limits.check_media(mp4) == pytest.approx(3.0, abs=0.1)


def test_non_media_file_is_a_clear_decode_error(tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio at all\n" * 50)
    with pytest.raises(AudioDecodeError, match="not a readable audio file"):
        limits.check_media(bad, "audio")


def test_oversized_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_UPLOAD_MB", 1)
    big = tmp_path / "big.wav"
    sf.write(big, _tone(40.0), 16_000)  # 1.2 MB of PCM16
    with pytest.raises(InputTooLongError, match="limit is 1 MB"):
        limits.check_media(big)


def test_missing_upload_and_text_limits():
    with pytest.raises(LipMemError, match="upload the file again"):
        limits.check_size("/nonexistent/x.wav")
    with pytest.raises(SpeechSynthesisError, match="type some text"):
        limits.check_text("   ")
    with pytest.raises(InputTooLongError, match="characters"):
        limits.check_text("a" * (limits.MAX_TEXT_CHARS + 1))
    assert limits.check_text("  hello  ") == "hello"


def test_silent_audio_is_refused():
    with pytest.raises(AudioDecodeError, match="silent"):
        check_speech(np.zeros(16_000, np.float32))
    with pytest.raises(AudioDecodeError, match="silent"):
        check_speech(np.full(16_000, 1e-4, np.float32))
    x = _tone(0.5)
    assert check_speech(x) is x
