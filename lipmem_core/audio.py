"""The one audio front end: decode any file to 16 kHz mono, mel spectrogram, mel windows.

Numbers follow docs/PAPER.md ("Inputs"): pre-emphasis 0.97, n_fft 800, hop 200, win 800 (80 mel
frames per second), 80 mel bands 55-7600 Hz, min level -100 dB, ref 20 dB, normalised
symmetrically to [-4, 4]. The window of video frame k is the 16 mel frames centred on the frame
centre (docs/ARCHITECTURE.md, "Time and sizes").
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from lipmem_core.config import MEL_FRAMES_PER_VIDEO_FRAME, MEL_HOP, SAMPLE_RATE, SAMPLES_PER_FRAME
from lipmem_core.errors import AudioDecodeError
from lipmem_core.limits import MIN_SPEECH_PEAK

PREEMPHASIS = 0.97
N_FFT = 800
WIN_LENGTH = 800
N_MELS = 80
FMIN, FMAX = 55.0, 7600.0
MIN_LEVEL_DB = -100.0
REF_LEVEL_DB = 20.0
MAX_ABS_VALUE = 4.0
MEL_WINDOW = 16  # mel frames per video frame window (0.2 s)
SILENCE_VALUE = -MAX_ABS_VALUE  # the normalised level of digital silence, used for padding


def to_model_rate(array: np.ndarray, sr: int) -> np.ndarray:
    """An already-decoded signal -> float32 (N,) mono at 16 kHz.

    `array` is (N,) or (N, C) (soundfile's layout) or (C, N) when C < N; integer PCM is scaled
    to [-1, 1]. Channels are averaged; other rates are resampled with soxr (high quality).
    """
    a = np.asarray(array)
    if a.size == 0:
        raise AudioDecodeError("the audio holds no samples: give a recording with speech in it")
    if np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32) / float(np.iinfo(a.dtype).max)
    a = a.astype(np.float32, copy=False)
    if a.ndim == 2:
        # Average over the channel axis: the shorter one (audio has far more samples than channels).
        a = a.mean(axis=1 if a.shape[0] >= a.shape[1] else 0)
    elif a.ndim != 1:
        raise AudioDecodeError(f"audio array has shape {a.shape}; expected (N,) or (N, channels)")
    if not np.all(np.isfinite(a)):
        raise AudioDecodeError("the audio contains NaN or infinite samples: re-export the file")
    if sr <= 0:
        raise AudioDecodeError(f"invalid sample rate {sr}")
    if sr != SAMPLE_RATE:
        import soxr

        a = soxr.resample(a, sr, SAMPLE_RATE, quality="HQ").astype(np.float32, copy=False)
    return np.ascontiguousarray(a)


def _decode_with_pyav(path: Path) -> tuple[np.ndarray, int]:
    """Formats soundfile cannot read (mp3 on old libsndfile, m4a/aac, video containers)."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioDecodeError(
                    f"{path.name} has no audio stream: give an audio or video file with sound"
                )
            stream = container.streams.audio[0]
            # Resample inside PyAV to planar float mono so every codec yields one layout.
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            chunks = []
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except AudioDecodeError:
        raise
    except Exception as exc:  # PyAV raises many codec-specific error types
        raise AudioDecodeError(
            f"could not decode {path.name} as audio ({type(exc).__name__}: {exc}); "
            "give a wav, flac, ogg, mp3 or m4a file"
        ) from exc
    if not chunks:
        raise AudioDecodeError(f"{path.name} decoded to no samples: the file is empty or silent-length")
    return np.concatenate(chunks).astype(np.float32), SAMPLE_RATE


def load_audio(path: str | Path) -> np.ndarray:
    """Read any common audio (or video) file -> float32 (N,) mono at 16 kHz in [-1, 1].

    soundfile (libsndfile) first: wav/flac/ogg/mp3 exactly; then PyAV (ffmpeg) for the rest.
    Raises AudioDecodeError for missing, unreadable or empty files.
    """
    p = Path(path)
    if not p.is_file():
        raise AudioDecodeError(f"audio file {str(p)!r} does not exist")
    if p.stat().st_size == 0:
        raise AudioDecodeError(f"{p.name} is empty (0 bytes)")
    import soundfile as sf

    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)  # (N, C)
    except Exception:  # libsndfile's RuntimeError/LibsndfileError: fall back to ffmpeg
        data, sr = _decode_with_pyav(p)
    if data.size == 0:
        raise AudioDecodeError(f"{p.name} holds no audio samples")
    return to_model_rate(data, sr)


def check_speech(audio: np.ndarray) -> np.ndarray:
    """The one rule for silent input (app and CLIs alike): a recording whose peak stays below
    MIN_SPEECH_PEAK (-60 dBFS) holds no speech and would only animate a closed mouth."""
    if audio.size == 0 or float(np.abs(audio).max()) < MIN_SPEECH_PEAK:
        raise AudioDecodeError(
            "the audio is silent (no sound above -60 dBFS): record again closer to the "
            "microphone, or use a file with speech"
        )
    return audio


def media_duration(path: str | Path, what: str = "audio") -> float:
    """Seconds of audio/video from the file header (no decoding); raises if unreadable.

    A 20-minute recording must be refused in milliseconds, not after decoding it: durations
    come from container metadata (soundfile's header, PyAV's container duration).
    """
    from lipmem_core.errors import VideoDecodeError

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
                raise error(f"{p.name} holds no audio or video stream: give a recording")
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
            "use a WAV, MP3, FLAC, OGG or M4A recording, or an MP4/WebM/MOV video"
        ) from exc


def check_duration(path: str | Path, limit_seconds: float, what: str = "audio") -> float:
    """The file's duration from its header; InputTooLongError above `limit_seconds`."""
    from lipmem_core.errors import InputTooLongError

    seconds = media_duration(path, what)
    if seconds > limit_seconds:
        raise InputTooLongError(
            f"the {what} is {seconds:.0f} s long; the limit is {limit_seconds:.0f} s: trim it"
        )
    return seconds


def num_frames(n_samples: int) -> int:
    """Video frames (25 fps) covering n audio samples: ceil(n / 640)."""
    return math.ceil(n_samples / SAMPLES_PER_FRAME)


@lru_cache(maxsize=1)
def _mel_basis() -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX).astype(
        np.float32
    )  # (80, 401)


def melspectrogram(wav: np.ndarray) -> np.ndarray:
    """16 kHz mono float (N,) -> normalised log-mel (80, M) float32 in [-4, 4], M = 1 + N // 200.

    Mel frame m is centred on sample 200 m (centred STFT), so video frame k's centre
    (k + 0.5) / 25 s sits at mel index (k + 0.5) * 3.2.
    """
    import librosa

    x = np.asarray(wav, dtype=np.float32).reshape(-1)
    if x.size == 0:
        raise AudioDecodeError("cannot compute a mel spectrogram of an empty signal")
    # Pre-emphasis y[n] = x[n] - 0.97 x[n-1] (Wav2Lip's lfilter([1, -k], [1], x)).
    y = np.empty_like(x)
    y[0] = x[0]
    y[1:] = x[1:] - PREEMPHASIS * x[:-1]
    spec = np.abs(librosa.stft(y=y, n_fft=N_FFT, hop_length=MEL_HOP, win_length=WIN_LENGTH))  # (401, M)
    mel = _mel_basis() @ spec  # (80, M)
    min_level = 10.0 ** (MIN_LEVEL_DB / 20.0)
    db = 20.0 * np.log10(np.maximum(min_level, mel)) - REF_LEVEL_DB
    norm = 2 * MAX_ABS_VALUE * (db - MIN_LEVEL_DB) / (-MIN_LEVEL_DB) - MAX_ABS_VALUE
    return np.clip(norm, -MAX_ABS_VALUE, MAX_ABS_VALUE).astype(np.float32)  # (80, M)


def mel_window_start(k: int) -> int:
    """First mel frame of video frame k's 16-frame window: round((k + 0.5) * 3.2) - 8.

    (k + 0.5) * 3.2 never ends in .5 exactly, so the rounding mode does not matter.
    """
    return int(math.floor((k + 0.5) * MEL_FRAMES_PER_VIDEO_FRAME + 0.5)) - MEL_WINDOW // 2


def mel_windows(mel: np.ndarray, frame_indices: np.ndarray | list[int] | range) -> np.ndarray:
    """Mel windows of the given video frames: (80, M) -> (N, 80, 16) float32.

    Frames near the ends read past the spectrogram; those columns are the silence value -4.
    """
    idx = np.asarray(
        list(frame_indices) if isinstance(frame_indices, range) else frame_indices, dtype=np.int64
    )
    n_mels, m = mel.shape
    starts = np.array([mel_window_start(int(k)) for k in idx.reshape(-1)], dtype=np.int64)  # (N,)
    if starts.size == 0:
        return np.zeros((0, n_mels, MEL_WINDOW), dtype=np.float32)
    pad_left = max(0, -int(starts.min()))
    pad_right = max(0, int(starts.max()) + MEL_WINDOW - m)
    padded = np.pad(mel, ((0, 0), (pad_left, pad_right)), constant_values=SILENCE_VALUE)  # (80, M')
    cols = starts[:, None] + pad_left + np.arange(MEL_WINDOW)[None, :]  # (N, 16)
    return np.ascontiguousarray(padded[:, cols].transpose(1, 0, 2)).astype(np.float32)  # (N, 80, 16)


def clip_mel_window(mel: np.ndarray, centre_frame: int) -> np.ndarray:
    """The sync-loss mel of a 5-frame clip centred on `centre_frame`: (80, 16).

    A 5-frame clip lasts 0.2 s = 16 mel frames, so it is the 16-frame window of its middle frame.
    """
    return mel_windows(mel, [centre_frame])[0]
