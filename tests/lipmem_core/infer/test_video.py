"""Video and image I/O: streamed H.264+AAC writing, range reads with seeks, clear errors."""

from __future__ import annotations

import av
import numpy as np
import pytest

from lipmem_core.audio import load_audio
from lipmem_core.errors import VideoDecodeError
from lipmem_core.infer.video import (
    FrameReader,
    VideoWriter,
    frame_count_for_audio,
    iter_video_frames,
    probe_video,
    read_image,
    write_image,
)
from tests import astronaut_video as av_fix


def _levels(n: int, h: int = 48, w: int = 64) -> np.ndarray:
    """Frame k is flat grey at 10 + 12 k: a decoded frame says which frame it is."""
    return np.stack([np.full((h, w, 3), 10 + 12 * k, np.uint8) for k in range(n)])


def _index(frame: np.ndarray) -> int:
    return int(round((frame.mean() - 10) / 12))


@pytest.fixture(scope="module")
def levels_mp4(tmp_path_factory):
    path = tmp_path_factory.mktemp("vid") / "levels.mp4"
    audio = np.random.default_rng(0).standard_normal(20 * 640).astype(np.float32) * 0.1
    with VideoWriter(path, 64, 48, 25, audio) as w:
        frames = _levels(20)
        w.write(frames[:7])  # uneven chunks: audio must stay in step
        w.write(frames[7:])
    return path


def test_roundtrip_size_rate_count_and_audio(levels_mp4):
    info = probe_video(levels_mp4)
    assert (info.width, info.height, info.fps, info.n_frames, info.has_audio) == (64, 48, 25.0, 20, True)
    with av.open(str(levels_mp4)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert c.streams.audio[0].codec_context.name == "aac"
    got = [f for chunk in iter_video_frames(levels_mp4, chunk=6) for f in chunk]
    assert [_index(f) for f in got] == list(range(20))
    audio = load_audio(levels_mp4)
    assert abs(len(audio) - 20 * 640) <= 1024  # AAC frames round the end up
    assert np.abs(audio).max() > 0.1


def test_range_reads_forward_backward_and_repeated(levels_mp4):
    with FrameReader(levels_mp4) as r:
        assert [_index(f) for f in r.read(15, 20)] == [15, 16, 17, 18, 19]
        assert [_index(f) for f in r.read(3, 6)] == [3, 4, 5]  # backwards: seek
        assert [_index(f) for f in r.read(6, 8)] == [6, 7]  # continues the decoder
        assert [_index(f) for f in r.read(6, 8)] == [6, 7]  # the same range again
        assert [_index(f) for f in r.read(18, 40)] == [18, 19]  # clipped at the end
        assert r.read(25, 30) == []


def test_writer_leaves_nothing_on_failure_and_keeps_existing_file(tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep me")
    with pytest.raises(ValueError), VideoWriter(out, 32, 32, 25) as w:
        w.write(_levels(2, 32, 32))
        w.write(_levels(1, 16, 16))  # wrong size
    assert out.read_bytes() == b"keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no temp file left behind


def test_odd_sizes_are_padded(tmp_path):
    out = tmp_path / "odd.mp4"
    with VideoWriter(out, 33, 21, 30) as w:
        w.write(_levels(3, 21, 33))
    assert w.padded
    info = probe_video(out)
    assert (info.width, info.height, info.fps, info.n_frames, info.has_audio) == (34, 22, 30.0, 3, False)


def test_corrupt_video_gives_a_clear_error(tmp_path, levels_mp4):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoDecodeError, match="corrupt"):
        probe_video(junk)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(levels_mp4.read_bytes()[:3000])
    with pytest.raises(VideoDecodeError), FrameReader(truncated) as r:
        r.read(0, 20)
    with pytest.raises(VideoDecodeError, match="does not exist"):
        probe_video(tmp_path / "missing.mp4")


def test_images_read_write_and_corrupt(tmp_path):
    img = av_fix.photo()
    write_image(tmp_path / "a.png", img)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), img)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(VideoDecodeError, match="corrupt"):
        read_image(tmp_path / "bad.png")


def test_frame_count_for_audio():
    assert frame_count_for_audio(640 * 10, 25) == 10
    assert frame_count_for_audio(640 * 10 + 1, 25) == 11
    assert frame_count_for_audio(16000, 30) == 30
    assert frame_count_for_audio(0, 25) == 1
