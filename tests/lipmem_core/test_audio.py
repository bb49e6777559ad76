"""Audio front end: decoding any file, the mel spectrogram and the frame <-> mel-window rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from lipmem_core.audio import (
    clip_mel_window,
    load_audio,
    mel_window_start,
    mel_windows,
    melspectrogram,
    num_frames,
    to_model_rate,
)
from lipmem_core.errors import AudioDecodeError


def _tone(sr: int, seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_stereo_44k_is_mono_16k_and_keeps_pitch(tmp_path):
    left = _tone(44_100, 1.0, 440.0)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, left], axis=1), 44_100)
    wav = load_audio(path)
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert abs(len(wav) - 16_000) <= 2
    spectrum = np.abs(np.fft.rfft(wav))
    assert abs(np.argmax(spectrum) * 16_000 / len(wav) - 440.0) < 3.0


def test_8k_upsampled(tmp_path):
    path = tmp_path / "low.wav"
    sf.write(path, _tone(8_000, 0.5), 8_000, subtype="PCM_16")
    assert abs(len(load_audio(path)) - 8_000) <= 2


@pytest.mark.parametrize("fmt", ["flac", "ogg"])
def test_flac_and_ogg(tmp_path, fmt):
    path = tmp_path / f"a.{fmt}"
    sf.write(path, _tone(22_050, 0.5), 22_050, format=fmt.upper())
    wav = load_audio(path)
    assert abs(len(wav) - 8_000) <= 400  # ogg/vorbis may pad a little
    assert 0.1 < np.abs(wav).max() < 0.5


def test_m4a_falls_back_to_pyav(tmp_path):
    av = pytest.importorskip("av")
    path = tmp_path / "a.m4a"
    sr, wav = 16_000, _tone(16_000, 0.5)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=sr)
        frame = av.AudioFrame.from_ndarray(wav[None, :], format="flt", layout="mono")
        frame.sample_rate = sr
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    got = load_audio(path)
    assert abs(len(got) - len(wav)) < 2_048  # AAC priming/padding
    assert np.abs(got).max() > 0.1


def test_text_file_renamed_wav_raises(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio at all\n" * 20)
    with pytest.raises(AudioDecodeError):
        load_audio(path)


def test_missing_and_empty_files_raise(tmp_path):
    with pytest.raises(AudioDecodeError, match="does not exist"):
        load_audio(tmp_path / "nope.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioDecodeError, match="empty"):
        load_audio(tmp_path / "empty.wav")
    with pytest.raises(AudioDecodeError):
        to_model_rate(np.zeros(0, dtype=np.float32), 16_000)


def test_to_model_rate_int16_and_channel_first():
    pcm = (np.ones((2, 1_000)) * 16_384).astype(np.int16)  # (C, N) layout
    out = to_model_rate(pcm, 16_000)
    assert out.shape == (1_000,) and np.allclose(out, 0.5, atol=1e-3)


def test_num_frames():
    assert num_frames(640) == 1 and num_frames(641) == 2 and num_frames(0) == 0
    assert num_frames(16_000) == 25


def test_mel_shape_range_and_silence():
    mel = melspectrogram(np.zeros(6_400, dtype=np.float32))
    assert mel.shape == (80, 1 + 6_400 // 200) and mel.dtype == np.float32
    assert np.all(mel == -4.0)  # digital silence is the padding value
    loud = melspectrogram(np.random.default_rng(0).standard_normal(16_000).astype(np.float32))
    assert loud.min() >= -4.0 and loud.max() <= 4.0 and loud.max() > 0


def test_window_rule_values():
    assert mel_window_start(0) == 2 - 8  # round(1.6) = 2
    assert mel_window_start(1) == 5 - 8  # round(4.8) = 5
    assert mel_window_start(2) == 8 - 8
    assert mel_window_start(10) == round(10.5 * 3.2) - 8


@pytest.mark.parametrize("k", [0, 3, 7, 12])
def test_click_lands_in_its_frame_window(k):
    n_frames = 15
    wav = np.zeros(n_frames * 640, dtype=np.float32)
    click = int((k + 0.5) * 640)  # the centre of video frame k
    wav[click] = 1.0
    mel = melspectrogram(wav)
    windows = mel_windows(mel, range(n_frames))
    assert windows.shape == (n_frames, 80, 16)
    energy = windows.mean(axis=1)  # (N, 16) per-column loudness
    # Frame k's window is centred on the click: its loudest column is in the middle.
    assert int(np.argmax(energy[k])) in (7, 8)
    # Windows of frames at least 3 away (0.12 s) never see the click at their centre.
    far = [j for j in range(n_frames) if abs(j - k) >= 3]
    assert all(energy[j, 6:10].max() <= -3.99 for j in far)


def test_edge_windows_padded_with_silence():
    wav = np.random.default_rng(1).standard_normal(5 * 640).astype(np.float32)
    mel = melspectrogram(wav)
    w = mel_windows(mel, [0, 4])
    assert np.all(w[0, :, :6] == -4.0)  # start = -6
    np.testing.assert_array_equal(w[0, :, 6:], mel[:, :10])
    end = mel_window_start(4)
    assert end + 16 > mel.shape[1]
    np.testing.assert_array_equal(w[1, :, : mel.shape[1] - end], mel[:, end:])
    assert np.all(w[1, :, mel.shape[1] - end :] == -4.0)


def test_clip_window_is_middle_frame_window():
    mel = melspectrogram(np.random.default_rng(2).standard_normal(20 * 640).astype(np.float32))
    np.testing.assert_array_equal(clip_mel_window(mel, 9), mel_windows(mel, [9])[0])
    # A 5-frame clip centred on frame c spans 0.2 s = 16 mel frames starting near its start.
    start = mel_window_start(9)
    assert math.isclose(start, (9 - 2) * 3.2, abs_tol=1.0)


def test_real_speech_roundtrip(arctic_wav):
    wav = load_audio(arctic_wav)
    assert abs(len(wav) / 16_000 - 4.0) < 0.1
    mel = melspectrogram(wav)
    assert mel.shape[0] == 80 and mel.max() > 0
