"""TalkingFacePipeline on a real face (the moving astronaut) with a tiny random-init model."""

from __future__ import annotations

import threading

import av
import numpy as np
import pytest
import torch

from lipmem_core.errors import AudioDecodeError, LipMemError, NoFaceFoundError, VideoDecodeError
from lipmem_core.infer.face import mouth_mask
from lipmem_core.infer.pipeline import TalkingFacePipeline, pingpong
from lipmem_core.infer.video import FrameReader, probe_video
from lipmem_core.model.generator import LipMemGenerator
from tests import astronaut_video as av_fix
from tests.tiny_model import tiny_config

S = 8


@pytest.fixture(scope="module")
def pipe() -> TalkingFacePipeline:
    torch.manual_seed(0)
    return TalkingFacePipeline(LipMemGenerator(tiny_config()), chunk_frames=10, device="cpu")


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return av_fix.write_video(tmp_path_factory.mktemp("astro") / "astro.mp4")


def outside_mask(box: np.ndarray, shape: tuple[int, int], size: int = 32) -> np.ndarray:
    """Frame pixels farther than 2 px from the pasted mouth mask's footprint: must not change."""
    h, w = shape
    m = mouth_mask(size) > 0
    cx, cy, side = box
    ys, xs = np.mgrid[0:h, 0:w]
    u = ((xs + 0.5) - (cx - side / 2)) * size / side - 0.5
    v = ((ys + 0.5) - (cy - side / 2)) * size / side - 0.5
    ui, vi = np.round(u).astype(int), np.round(v).astype(int)
    inside = (ui >= 0) & (ui < size) & (vi >= 0) & (vi < size)
    near = np.zeros((h, w), bool)
    margin = 2 * size / side + 1  # crop px covering 2 frame px, plus interpolation
    grown = np.zeros_like(m)
    r = int(np.ceil(margin))
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            grown |= np.roll(np.roll(m, dy, 0), dx, 1)
    near[inside] = grown[vi[inside], ui[inside]]
    return ~near


def test_pingpong_indices():
    k = np.arange(12)
    np.testing.assert_array_equal(pingpong(k, 4), [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1])
    np.testing.assert_array_equal(pingpong(k, 1), np.zeros(12))


def test_stream_in_memory_frames_change_only_the_mouth(pipe, video):
    src = av_fix.frames()
    with FrameReader(video) as r:
        decoded = r.read(0, av_fix.N_FRAMES)  # what the pipeline sees (after H.264)
    wav = av_fix.speechlike(av_fix.N_FRAMES / 25)
    chunks = list(pipe.stream(video, wav))
    assert [c.start for c in chunks] == [0, 10]
    frames = [f for c in chunks for f in c.frames]
    boxes = [b for c in chunks for b in c.boxes]
    assert len(frames) == av_fix.N_FRAMES
    for k, (out, box) in enumerate(zip(frames, boxes, strict=True)):
        if k in av_fix.FACELESS:
            assert box is None
            np.testing.assert_array_equal(out, decoded[k])  # passed through untouched
            continue
        assert box is not None
        keep = outside_mask(box, out.shape[:2])
        np.testing.assert_array_equal(out[keep], decoded[k][keep])
        assert (out[~keep] != decoded[k][~keep]).any()  # the mouth was replaced
        assert np.abs(decoded[k].astype(int) - src[k]).mean() < 4  # sanity: codec error only
    addr = np.concatenate([c.addressing for c in chunks])
    assert addr.shape == (av_fix.N_FRAMES, S)
    np.testing.assert_allclose(addr.sum(1), 1.0, atol=1e-5)  # faceless frames addressed too


def test_generate_mp4_keeps_count_rate_size_and_carries_audio(pipe, video, tmp_path):
    out = tmp_path / "out.mp4"
    seen = []
    res = pipe.generate(
        video, av_fix.speechlike(av_fix.N_FRAMES / 25), out, progress=lambda f, m: seen.append(f)
    )
    info = probe_video(out)
    assert (info.width, info.height, info.fps, info.n_frames) == (
        av_fix.WIDTH,
        av_fix.HEIGHT,
        25.0,
        av_fix.N_FRAMES,
    )
    with av.open(str(out)) as c:
        assert c.streams.audio and c.streams.audio[0].codec_context.name == "aac"
    assert res.n_frames == av_fix.N_FRAMES and res.faceless_frames == len(av_fix.FACELESS)
    assert res.out_of_domain and any("SynthTalk" in n for n in res.notices)
    assert any("no detectable face" in n for n in res.notices)
    assert res.addressing.shape == (av_fix.N_FRAMES, S)
    assert seen[-1] == 1.0 and seen == sorted(seen)
    assert {"detect", "generate", "paste", "encode", "decode", "total"} <= set(res.timings)
    # Decoded output vs decoded input: away from the mouth only codec error remains.
    with FrameReader(out) as a, FrameReader(video) as b:
        got, ref = a.read(0, 16), b.read(0, 16)
    for k in set(range(16)) - set(av_fix.FACELESS):  # re-encoding noise is not a fair test
        diff = np.abs(got[k].astype(int) - ref[k].astype(int))
        assert diff[:40].mean() < 3  # top of the frame: hair and forehead, never pasted


def test_long_audio_pingpongs_short_audio_trims(pipe, video):
    n_video = av_fix.N_FRAMES
    with FrameReader(video) as r:
        decoded = r.read(0, n_video)
    chunks = list(pipe.stream(video, av_fix.speechlike(34 / 25)))
    frames = [f for c in chunks for f in c.frames]
    assert len(frames) == 34
    # Frame 20 of the output shows source frame pingpong(20, 16) = 10; the upper rows prove it.
    for k in (3, 16, 20, 31, 33):
        j = int(pingpong(np.array([k]), n_video)[0])
        np.testing.assert_array_equal(frames[k][:20], decoded[j][:20])
    short = [f for c in pipe.stream(video, av_fix.speechlike(5 / 25)) for f in c.frames]
    assert len(short) == 5


def test_still_image_and_face_free_image(pipe, tmp_path):
    res = pipe.generate(av_fix.photo(), av_fix.speechlike(0.5), tmp_path / "still.mp4")
    info = probe_video(res.out_path)
    assert (info.width, info.height, info.fps, info.n_frames) == (192, 192, 25.0, 13)
    assert res.faceless_frames == 0
    with pytest.raises(NoFaceFoundError, match="front-facing"):
        pipe.generate(np.zeros((64, 64, 3), np.uint8), av_fix.speechlike(0.5), tmp_path / "none.mp4")
    assert not (tmp_path / "none.mp4").exists()


def test_face_is_crop_skips_detection_and_is_in_domain(pipe, tmp_path):
    crops = np.random.default_rng(0).integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)  # no face at all
    chunks = list(pipe.stream(crops, av_fix.speechlike(7 / 25), face_is_crop=True))
    frames = [f for c in chunks for f in c.frames]
    assert all(b is not None for c in chunks for b in c.boxes)
    keep = mouth_mask(32) == 0
    for out, inp in zip(frames, crops, strict=True):
        np.testing.assert_array_equal(out[keep], inp[keep])
    res = pipe.generate(crops, av_fix.speechlike(7 / 25), tmp_path / "crop.mp4", face_is_crop=True)
    assert not res.out_of_domain and res.faceless_frames == 0


def test_memory_off_zeroes_recall_and_reports_no_addressing(tmp_path):
    torch.manual_seed(0)
    model = LipMemGenerator(tiny_config())
    with torch.no_grad():
        model.memory.value.mul_(300.0)  # a random-init recall is too faint to see otherwise
    pipe = TalkingFacePipeline(model, device="cpu")
    img = av_fix.photo()
    wav = av_fix.speechlike(0.4)
    on = [f for c in pipe.stream(img, wav) for f in c.frames]
    off_chunks = list(pipe.stream(img, wav, recall="zero"))
    off = [f for c in off_chunks for f in c.frames]
    assert all(c.addressing is None for c in off_chunks)
    assert any((a != b).any() for a, b in zip(on, off, strict=True))
    res = pipe.generate(img, wav, tmp_path / "off.mp4", recall="zero")
    assert res.addressing is None and any("recall zeroed" in n for n in res.notices)


def test_ablation_recall_draws_with_the_ablation_model_and_memoryless_model():
    torch.manual_seed(1)
    plain = LipMemGenerator(tiny_config(use_memory=False))
    torch.manual_seed(0)
    pipe = TalkingFacePipeline(LipMemGenerator(tiny_config()), ablation=plain, device="cpu")
    crops = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    wav = av_fix.speechlike(5 / 25)
    via_ablation = [
        f for c in pipe.stream(crops, wav, face_is_crop=True, recall="ablation") for f in c.frames
    ]
    direct = TalkingFacePipeline(plain, device="cpu")
    chunks = list(direct.stream(crops, wav, face_is_crop=True))
    for a, b in zip(via_ablation, [f for c in chunks for f in c.frames], strict=True):
        np.testing.assert_array_equal(a, b)
    assert all(c.addressing is None for c in chunks)
    with pytest.raises(ValueError, match="ablation"):
        direct.generate(crops, wav, face_is_crop=True, recall="ablation")  # none was given
    with pytest.raises(ValueError, match="recall"):
        direct.generate(crops, wav, face_is_crop=True, recall="off")


def test_generate_in_memory_matches_the_stream_and_the_mp4_frame_count(tmp_path):
    torch.manual_seed(0)
    pipe = TalkingFacePipeline(LipMemGenerator(tiny_config()), device="cpu")
    crops = np.random.default_rng(0).integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    wav = av_fix.speechlike(7 / 25)
    chunks = list(pipe.stream(crops, wav, face_is_crop=True))
    made = pipe.generate(crops, wav, face_is_crop=True)
    assert made.out_path is None and made.frames.shape == (7, 32, 32, 3) and made.frames.dtype == np.uint8
    np.testing.assert_array_equal(made.frames, np.stack([f for c in chunks for f in c.frames]))
    np.testing.assert_array_equal(np.stack(made.crops), np.stack([f for c in chunks for f in c.crops]))
    np.testing.assert_array_equal(made.addressing, np.concatenate([c.addressing for c in chunks]))
    written = pipe.generate(crops, wav, tmp_path / "c.mp4", face_is_crop=True)
    assert written.frames is None and written.crops is None and written.n_frames == made.n_frames
    assert written.out_path.is_file()


def test_bad_inputs_give_clear_errors(pipe, video, tmp_path):
    bad_audio = tmp_path / "speech.wav"
    bad_audio.write_bytes(b"RIFF....WAVEfmt garbage")
    with pytest.raises(AudioDecodeError):
        pipe.generate(video, bad_audio, tmp_path / "a.mp4")
    bad_video = tmp_path / "face.mp4"
    bad_video.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoDecodeError):
        pipe.generate(bad_video, av_fix.speechlike(0.4), tmp_path / "b.mp4")
    before = video.read_bytes()
    with pytest.raises(LipMemError, match="one of the inputs"):
        pipe.generate(video, av_fix.speechlike(0.4), video)
    assert video.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face.mp4", "speech.wav"]


def test_concurrent_calls_match_sequential(pipe, tmp_path):
    img = av_fix.photo()
    wavs = [av_fix.speechlike(0.4, seed=s) for s in (1, 2)]
    expected = [np.stack([f for c in pipe.stream(img, w) for f in c.frames]) for w in wavs]
    results: dict[int, np.ndarray] = {}

    def run(i: int) -> None:
        results[i] = np.stack([f for c in pipe.stream(img, wavs[i]) for f in c.frames])

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in (0, 1):
        np.testing.assert_array_equal(results[i], expected[i])


def test_bf16_autocast_keeps_frames_close_and_addressing_exact():
    torch.manual_seed(0)
    model = LipMemGenerator(tiny_config())
    crops = np.random.default_rng(0).integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    wav = av_fix.speechlike(10 / 25)
    runs = {}
    for precision in ("fp32", "bf16"):
        p = TalkingFacePipeline(model, device="cpu", precision=precision)
        chunks = list(p.stream(crops, wav, face_is_crop=True))
        runs[precision] = (np.stack([c for ch in chunks for c in ch.crops]).astype(int), chunks[0].addressing)
    assert np.abs(runs["fp32"][0] - runs["bf16"][0]).mean() < 3
    np.testing.assert_allclose(runs["fp32"][1], runs["bf16"][1], atol=1e-5)
    with pytest.raises(ValueError, match="precision"):
        TalkingFacePipeline(model, precision="fp8")


def test_checkpoint_directory_and_domain_notice(tmp_path):
    from lipmem_core.checkpoint import save_checkpoint
    from lipmem_core.errors import CheckpointError

    torch.manual_seed(0)
    model = LipMemGenerator(tiny_config())
    save_checkpoint(
        tmp_path / "synth",
        model,
        kind="generator",
        metadata={"training_data": {"path": "/d/synthtalk", "kind": "synthtalk"}},
    )
    save_checkpoint(
        tmp_path / "lrs2",
        model,
        kind="generator",
        metadata={"training_data": {"path": "/d/lrs2_crops", "kind": "real"}},
    )
    wav = av_fix.speechlike(0.2)
    synth = TalkingFacePipeline(tmp_path / "synth", device="cpu")
    assert synth.generate(av_fix.photo(), wav, tmp_path / "a.mp4").out_of_domain
    real = TalkingFacePipeline(tmp_path / "lrs2", device="cpu")
    res = real.generate(av_fix.photo(), wav, tmp_path / "b.mp4")
    assert not res.out_of_domain and not any("SynthTalk" in n for n in res.notices)
    # Same weights from disk as in memory: identical frames.
    mem = TalkingFacePipeline(model, device="cpu")
    a = [c for ch in synth.stream(av_fix.photo(), wav) for c in ch.crops]
    b = [c for ch in mem.stream(av_fix.photo(), wav) for c in ch.crops]
    np.testing.assert_array_equal(np.stack(a), np.stack(b))
    with pytest.raises(CheckpointError):
        TalkingFacePipeline(tmp_path / "missing", device="cpu")


def test_the_default_checkpoint_is_the_shipped_generator():
    from lipmem_core.checkpoint import read_config
    from lipmem_core.infer.pipeline import DEFAULT_CHECKPOINT

    assert read_config(DEFAULT_CHECKPOINT, kind="generator")["kind"] == "generator"


def test_reference_shift_takes_each_reference_from_elsewhere_in_the_clip():
    """reference_shift=s: frame i is drawn with frame (i + s) mod n as its reference, the
    target frame itself still masked; a shift of a whole clip is no shift at all."""
    from lipmem_core.audio import mel_windows, melspectrogram
    from lipmem_core.model.encoders import identity_input
    from lipmem_core.pixels import to_uint8, to_unit

    torch.manual_seed(0)
    model = LipMemGenerator(tiny_config()).eval()
    pipe = TalkingFacePipeline(model, device="cpu")
    n = 10
    crops = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    wav = av_fix.speechlike(n / 25)
    own = pipe.generate(crops, wav, face_is_crop=True).crops
    shifted = pipe.generate(crops, wav, face_is_crop=True, reference_shift=3).crops
    whole = pipe.generate(crops, wav, face_is_crop=True, reference_shift=n).crops
    np.testing.assert_array_equal(np.stack(whole), np.stack(own))
    assert not np.array_equal(np.stack(shifted), np.stack(own))
    # the first window (frames 0..4) by hand: references are frames 3..7
    unit = to_unit(torch.from_numpy(crops)).permute(3, 0, 1, 2)[None]  # (1, 3, n, H, W)
    face = identity_input(unit[:, :, 0:5], unit[:, :, 3:8])
    mel = torch.from_numpy(mel_windows(melspectrogram(wav), np.arange(5)))[None, :, None]
    with torch.inference_mode():
        want = to_uint8(model(face, mel).frames)[0].permute(1, 2, 3, 0).numpy()  # (5, H, W, 3)
    got = np.stack(shifted[:5]).astype(int)
    assert np.abs(got - want.astype(int)).max() <= 1
    with pytest.raises(ValueError, match="reference_shift"):
        pipe.generate(av_fix.photo(), wav, reference_shift=3)  # only in-memory crops
