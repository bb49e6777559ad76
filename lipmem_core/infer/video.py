"""Reading and writing video and still images with PyAV (its wheel carries ffmpeg).

Frames are RGB uint8 arrays `(H, W, 3)`. Reading is by frame range so callers can stream a
long video chunk by chunk (and walk it backwards for ping-pong loops) in bounded memory.
Writing goes to a hidden temporary file beside the target and is renamed into place only once
the file is complete, so an interrupted run never leaves a half-written MP4 under the final
name and never touches an input.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import cv2
import numpy as np

from lipmem_core.config import SAMPLE_RATE
from lipmem_core.errors import InputTooLongError, VideoDecodeError
from lipmem_core.limits import MAX_IMAGE_SIDE, WORK_SIDE

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
TAIL_SLACK = 2  # frames a header may promise beyond the last decodable one
AAC_FRAME = 1024  # samples per AAC frame: the native encoder wants exactly this many


def is_image_path(path: str | os.PathLike) -> bool:
    """True when the suffix names a still-image format (the face is then a photo)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of an image file from its header alone (Pillow reads no pixels here)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise VideoDecodeError(
            f"could not read image {Path(path).name}: it is corrupt or not an image; "
            "save it again as PNG or JPEG"
        ) from exc


def check_frame_size(width: int, height: int, what: str) -> None:
    """Refuse images and video frames larger than MAX_IMAGE_SIDE on either side."""
    if max(width, height) > MAX_IMAGE_SIDE:
        raise InputTooLongError(
            f"the {what} is {width} x {height} px; the limit is {MAX_IMAGE_SIDE} px a side: "
            "downscale it and try again"
        )


def working_size(width: int, height: int, max_side: int | None = WORK_SIDE) -> tuple[int, int]:
    """The size a face input is processed at: unchanged up to `max_side` on the long side,
    else scaled down to it (aspect kept)."""
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def read_image(path: str | os.PathLike, max_side: int | None = None) -> np.ndarray:
    """Read a still image as RGB uint8 `(H, W, 3)` (grey and alpha images are converted).

    The size is checked from the header first (MAX_IMAGE_SIDE); with `max_side`, a larger
    image is decoded at reduced resolution (JPEG's DCT scaling, so the full-size pixels never
    exist in memory) and resized to `working_size`.
    """
    if not Path(path).is_file():
        raise VideoDecodeError(f"image {Path(path).name} does not exist: check the path")
    width, height = image_size(path)
    check_frame_size(width, height, "image")
    target = working_size(width, height, max_side)
    data = np.fromfile(str(path), dtype=np.uint8)
    flag = cv2.IMREAD_COLOR
    for factor, reduced in (
        (8, cv2.IMREAD_REDUCED_COLOR_8),
        (4, cv2.IMREAD_REDUCED_COLOR_4),
        (2, cv2.IMREAD_REDUCED_COLOR_2),
    ):
        if width // factor >= target[0] and height // factor >= target[1]:
            flag = reduced
            break
    bgr = cv2.imdecode(data, flag)
    if bgr is None:
        raise VideoDecodeError(
            f"could not decode image {Path(path).name}: it is corrupt or not an image; save it again as PNG or JPEG"
        )
    if (bgr.shape[1], bgr.shape[0]) != target:
        bgr = cv2.resize(bgr, target, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_image(path: str | os.PathLike, rgb: np.ndarray, quality: int = 95) -> None:
    """Write an RGB uint8 image (JPEG quality `quality` when the suffix is .jpg)."""
    ok = cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"could not write image {path}")


@dataclass(frozen=True)
class VideoInfo:
    """What a caller needs to plan a streamed pass over a video."""

    width: int
    height: int
    fps: float
    n_frames: int
    has_audio: bool


def _decode_error(path: str | os.PathLike, err: Exception) -> VideoDecodeError:
    return VideoDecodeError(
        f"could not read video {path}: {err}. The file is corrupt, truncated or not a video; "
        "re-encode it as MP4 (H.264), or use a still image of the face"
    )


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Size, frame rate and frame count of a video file (counting packets when the header
    does not say, which reads the file but decodes nothing)."""
    if not Path(path).is_file():
        raise VideoDecodeError(f"video {path} does not exist: check the path")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoDecodeError(f"{path} holds no video stream: pass a video or an image")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
            n_frames = stream.frames
            if n_frames <= 0:
                n_frames = sum(1 for p in container.demux(stream) if p.size > 0)
            width, height = stream.codec_context.width, stream.codec_context.height
            has_audio = bool(container.streams.audio)
    except av.FFmpegError as err:
        raise _decode_error(path, err) from err
    if n_frames <= 0 or width <= 0 or height <= 0:
        raise VideoDecodeError(f"video {path} has no frames: pass a video with a visible face")
    check_frame_size(width, height, "video")
    return VideoInfo(width, height, float(rate), int(n_frames), has_audio)


class FrameReader:
    """Random-range access to the frames of a video, decoding forward from the last keyframe.

    `read(start, stop)` returns frames `start..stop-1`. Consecutive ranges continue the open
    decoder; any other range seeks (so a ping-pong pass backwards costs a seek per chunk,
    not a decode from the start). Frame indices come from timestamps, so a seek lands on the
    same frames a straight decode would give.
    """

    def __init__(self, path: str | os.PathLike, max_side: int | None = None):
        self.path = str(path)
        self.source_info = probe_video(path)
        # Frames come out at working_size: a large video is scaled by FFmpeg frame by frame,
        # so no full-size RGB frame is ever held (info reports the delivered size).
        width, height = working_size(self.source_info.width, self.source_info.height, max_side)
        self.info = dataclasses.replace(self.source_info, width=width, height=height)
        self._scaled = (width, height) != (self.source_info.width, self.source_info.height)
        try:
            self._container = av.open(self.path)
        except av.FFmpegError as err:
            raise _decode_error(path, err) from err
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        start = self._stream.start_time
        self._t0 = float(start * self._stream.time_base) if start is not None else 0.0
        self._frames = None  # the open decode iterator
        self._next = 0  # index of the frame the open iterator yields next

    def _index_of(self, frame: av.VideoFrame, fallback: int) -> int:
        if frame.time is None:
            return fallback
        return int(round((frame.time - self._t0) * self.info.fps))

    def _seek(self, index: int) -> None:
        if index == 0 or self._frames is None or index < self._next:
            target = self._t0 + index / self.info.fps
            ts = int(target / self._stream.time_base) if self._stream.time_base else 0
            self._container.seek(max(ts, 0), stream=self._stream, backward=True)
            self._frames = self._container.decode(self._stream)
            self._next = -1  # unknown until the first frame's timestamp is seen

    def read(self, start: int, stop: int) -> list[np.ndarray]:
        """RGB uint8 frames `(H, W, 3)` with indices in `[start, stop)` (fewer at the end)."""
        stop = min(stop, self.info.n_frames)
        if start >= stop:
            return []
        if self._frames is None or start != self._next:
            self._seek(start)
        out: list[np.ndarray] = []
        try:
            for frame in self._frames:
                index = self._index_of(frame, self._next)
                self._next = index + 1
                if index < start:
                    continue
                if self._scaled:
                    frame = frame.reformat(self.info.width, self.info.height, "rgb24", interpolation="AREA")
                out.append(frame.to_ndarray(format="rgb24"))
                if self._next >= stop:
                    break
        except av.FFmpegError as err:
            raise _decode_error(self.path, err) from err
        # Headers may overstate the count by a frame or two; more missing means truncation.
        if start + len(out) < min(stop, self.info.n_frames - TAIL_SLACK):
            raise VideoDecodeError(
                f"could not decode frames {start + len(out)}..{stop - 1} of {self.path} "
                f"(the header promises {self.info.n_frames}): the file is truncated or corrupt; "
                "re-encode it"
            )
        return out

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_video_frames(path: str | os.PathLike, chunk: int = 64):
    """Yield the frames of a video in lists of at most `chunk` (bounded memory)."""
    with FrameReader(path) as reader:
        for start in range(0, reader.info.n_frames, chunk):
            frames = reader.read(start, start + chunk)
            if not frames:
                return
            yield frames


class VideoWriter:
    """H.264 (yuv420p) + AAC MP4 writer, streamed frame chunk by frame chunk.

    The audio `(N,)` float32 at `sample_rate` is muxed alongside: after each chunk of video
    the audio up to the same time is encoded, so the file stays interleaved and memory does
    not depend on length. The file appears at `out_path` only after `close()` succeeds.
    Odd sizes are padded by one edge pixel (yuv420p needs even sizes); `padded` reports it.
    """

    def __init__(
        self,
        out_path: str | os.PathLike,
        width: int,
        height: int,
        fps: float,
        audio: np.ndarray | None = None,
        sample_rate: int = SAMPLE_RATE,
        crf: int = 18,
        preset: str = "veryfast",
    ):
        self.out_path = Path(out_path)
        self.out_path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.out_path.with_name(f".{self.out_path.stem}.{uuid.uuid4().hex}.tmp.mp4")
        self.width, self.height = width, height
        self.padded = (width % 2, height % 2) != (0, 0)
        rate = Fraction(fps).limit_denominator(1001)
        self._container = av.open(str(self._tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
        self._video = self._container.add_stream("libx264", rate=rate)
        self._video.width, self._video.height = width + width % 2, height + height % 2
        self._video.pix_fmt = "yuv420p"
        self._video.options = {"crf": str(crf), "preset": preset}
        self._fps = float(rate)
        self._n_video = 0
        self._audio_stream = None
        self._audio = None
        self._n_audio = 0
        self._sample_rate = sample_rate
        if audio is not None and len(audio):
            self._audio = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
            self._audio_stream = self._container.add_stream("aac", rate=sample_rate)
            self._audio_stream.layout = "mono"
            self._audio_stream.bit_rate = 96_000
        self._closed = False

    def _encode_audio_until(self, n_samples: int) -> None:
        if self._audio_stream is None:
            return
        n_samples = min(n_samples, len(self._audio))
        # Whole AAC frames only until the end, where the short remainder goes too.
        if n_samples < len(self._audio):
            n_samples = self._n_audio + (n_samples - self._n_audio) // AAC_FRAME * AAC_FRAME
        while self._n_audio < n_samples:
            stop = min(self._n_audio + AAC_FRAME, n_samples)
            frame = av.AudioFrame.from_ndarray(
                self._audio[None, self._n_audio : stop], format="fltp", layout="mono"
            )
            frame.sample_rate = self._sample_rate
            frame.pts = self._n_audio
            frame.time_base = Fraction(1, self._sample_rate)
            self._container.mux(self._audio_stream.encode(frame))
            self._n_audio = stop

    def write(self, frames: list[np.ndarray] | np.ndarray) -> None:
        """Append RGB uint8 frames `(H, W, 3)` of the size given at construction."""
        for rgb in frames:
            if rgb.shape != (self.height, self.width, 3):
                raise ValueError(f"frame shape {rgb.shape} != {(self.height, self.width, 3)}")
            if self.padded:
                rgb = np.pad(rgb, ((0, self.height % 2), (0, self.width % 2), (0, 0)), "edge")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            self._container.mux(self._video.encode(frame))
            self._n_video += 1
        self._encode_audio_until(int(round(self._n_video / self._fps * self._sample_rate)))

    @property
    def n_frames(self) -> int:
        return self._n_video

    def close(self) -> Path:
        """Flush encoders, finish the file and rename it to `out_path`."""
        if self._closed:
            return self.out_path
        try:
            self._container.mux(self._video.encode(None))
            if self._audio_stream is not None:
                self._encode_audio_until(len(self._audio))
                self._container.mux(self._audio_stream.encode(None))
            self._container.close()
            os.replace(self._tmp, self.out_path)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        return self.out_path

    def abort(self) -> None:
        """Drop the partial file; the target path is left as it was."""
        self._closed = True
        with contextlib.suppress(av.FFmpegError):
            self._container.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def frame_count_for_audio(n_samples: int, fps: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Video frames needed to cover `n_samples` of audio at `fps` (at least one)."""
    return max(1, math.ceil(n_samples * fps / sample_rate - 1e-6))
