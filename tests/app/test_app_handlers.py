"""The app's handlers called directly (no server): limits, inputs, generation, analysis."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lipmem_app import limits
from lipmem_app.inputs import check_speech
from lipmem_core.audio import media_duration
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
    assert media_duration(wav) == pytest.approx(2.5, abs=1e-3)
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
    assert media_duration(mp4) == pytest.approx(3.0, abs=0.1)
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


# ---- generation through the handler -----------------------------------------------------------
def _no_progress(*args, **kwargs) -> None:
    return None


@pytest.fixture(scope="module")
def handlers(tmp_path_factory):
    from lipmem_app.context import AppContext
    from lipmem_app.handlers import Handlers

    root = tmp_path_factory.mktemp("app")
    ctx = AppContext(checkpoints_root=root / "no_checkpoints", work_root=root / "work")
    return Handlers(ctx)


def _generate(h, **overrides):
    """Handlers.generate with the ground-truth renderer unless overridden."""
    from lipmem_app.generate_view import GROUND_TRUTH
    from tests.app.app_support import generate_args

    return h.generate(**generate_args(**{"checkpoint": GROUND_TRUTH, **overrides}), progress=_no_progress)


def test_ground_truth_generation_from_text(handlers):
    import av

    from lipmem_core.config import SAMPLE_RATE, SAMPLES_PER_FRAME

    video, _, notices, clip = _generate(handlers)
    assert "ground-truth renderer" in notices
    assert clip.phones["start"].iloc[0] == 0.0  # exact espeak phones tile the clip
    assert clip.phones["end"].iloc[-1] == pytest.approx(len(clip.audio) / SAMPLE_RATE, abs=1e-3)
    assert {"B", "M", "P"} & set(clip.phones["phone"])
    with av.open(video) as c:
        assert c.streams.audio and c.streams.video
        n = sum(1 for _ in c.decode(video=0))
    assert n == -(-len(clip.audio) // SAMPLES_PER_FRAME)  # ceil: one frame per 640 samples


def test_requests_get_separate_directories(handlers):
    a = _generate(handlers, text="One two three.")[0]
    b = _generate(handlers, text="Four five six.")[0]
    assert a != b and Path(a).parent != Path(b).parent


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(text="   "), "type some text"),
        (dict(speech_source="audio"), "no audio was given"),
        (dict(face_source="image"), "no image was given"),
        (dict(face_source="video"), "no video was given"),
        (dict(voice="xx-nowhere"), "unknown voice"),
        (dict(checkpoint="lipmem-synthtalk"), "no generator checkpoint found"),
    ],
)
def test_bad_inputs_become_gradio_errors(handlers, overrides, message):
    import gradio as gr

    with pytest.raises(gr.Error, match=message):
        _generate(handlers, **overrides)


def test_oracle_refuses_a_photo(handlers, tmp_path):
    import cv2
    import gradio as gr

    photo = tmp_path / "face.png"
    cv2.imwrite(str(photo), np.full((64, 64, 3), 128, np.uint8))
    with pytest.raises(gr.Error, match="SynthTalk identities only"):
        _generate(handlers, face_source="image", image=str(photo))


def test_silent_upload_and_non_audio_upload_are_refused(handlers, tmp_path):
    import gradio as gr

    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16_000, np.float32), 16_000)
    with pytest.raises(gr.Error, match="silent"):
        _generate(handlers, speech_source="audio", audio=str(silent))
    text = tmp_path / "speech.mp3"
    text.write_text("not audio\n" * 100)
    with pytest.raises(gr.Error, match="not a readable audio file"):
        _generate(handlers, speech_source="audio", audio=str(text))


def test_model_card_without_checkpoint_says_so(handlers):
    card = handlers.model_card(None)
    assert "No model card" in card and "no generator checkpoint found" in card and "SynthTalk" in card


# ---- memory playground: the sequence language ----------------------------------------------------
def test_parse_sequence_slots_phones_and_lengths():
    from lipmem_app.slot_views import parse_sequence

    steps = parse_sequence("3 5*6, M aa1 sil", 16, {"M": 9, "AA": 2, "sil": 0}, 4).steps
    assert steps["slot"].tolist() == [3, 5, 9, 2, 0]
    assert steps["frames"].tolist() == [4, 6, 4, 4, 4]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "type a sequence"),
        ("16", "does not exist"),
        ("QQ", "neither a slot number nor an ARPAbet phone"),
        ("ZH", "never occurs in the probe set"),
        ("3*x", "frame count"),
        ("3*0", "between 1 and 100"),
        (" ".join(["1"] * 65), "limit is 64"),
        (" ".join(["1*100"] * 6), "limit is 500"),
    ],
)
def test_parse_sequence_rejects_bad_sequences(text, message):
    from lipmem_app.slot_views import parse_sequence

    with pytest.raises(LipMemError, match=message):
        parse_sequence(text, 16, {"M": 9}, 4)


def test_model_card_names_the_shipped_models_deviations():
    from lipmem_app.context import AppContext
    from lipmem_app.model_card import model_card

    root = Path(__file__).resolve().parents[2] / "checkpoints"
    if not (root / "lipmem-synthtalk").is_dir():
        pytest.skip("no shipped checkpoints in this checkout")
    ctx = AppContext(checkpoints_root=root)
    card = model_card(ctx, "lipmem-synthtalk")
    for phrase in ("Deviations from the paper", "input skip", "lower-half L1",
                   "mouth-shape group's mean queries", "from the memory's recall", "SynthTalk only, off for real corpora"):  # fmt: skip
        assert phrase in card, phrase
    assert "re-seeded" not in card  # the shipped memory model is trained with --no-reseed
    ablation = model_card(ctx, "lipmem-synthtalk-nomem")
    # the shipped pair ends its training before the GAN's start (--gan-start 3000, 2,500 steps)
    assert "no GAN (L_gan would start at step 3000; training ended at step 2500)" in card
    assert "no GAN" in ablation
    assert "lip path without memory" in ablation and "lower-half L1" in ablation
    # the shipped recipe puts every SynthTalk-only term in the memory, so the ablation has none
    assert "SynthTalk only" not in ablation and "memory's recall" not in ablation
    # memory-only options are not named for a model without memory
    assert "re-seeded" not in ablation and "audio queries" not in ablation and "slot-usage" not in ablation


def test_model_card_names_the_usage_loss(tmp_path):
    from lipmem_app.context import AppContext
    from lipmem_app.model_card import model_card
    from lipmem_core.checkpoint import save_checkpoint
    from lipmem_core.config import LossWeights, TrainConfig
    from lipmem_core.model.generator import LipMemGenerator
    from tests.app.app_support import APP_MODEL
    from tests.tiny_model import tiny_config

    for name, usage in (("with-usage", 1.0), ("without-usage", 0.0)):
        train = TrainConfig(loss=LossWeights(usage=usage)).to_dict()
        save_checkpoint(
            tmp_path / name,
            LipMemGenerator(tiny_config(**APP_MODEL)).eval(),
            "generator",
            {"train_config": train},
        )
    ctx = AppContext(checkpoints_root=tmp_path)
    assert "slot-usage loss (weight 1)" in model_card(ctx, "with-usage")
    assert "slot-usage loss" not in model_card(ctx, "without-usage")


def test_model_card_says_when_each_training_stage_began(tmp_path):
    from lipmem_app.context import AppContext
    from lipmem_app.model_card import model_card
    from lipmem_core.checkpoint import save_checkpoint
    from lipmem_core.model.generator import LipMemGenerator
    from tests.app.app_support import APP_MODEL
    from tests.tiny_model import tiny_config

    new_fields = {"model.recall_drop": [None, 0.0], "train.freeze_renderer": [None, True]}
    staged = [
        {"from_step": 0},
        {"from_step": 600, "changes": {"model.audio_context": [None, 0]}},
        {"from_step": 2500, "changes": {"train.loss.l1_mouth": [0.0, 30.0], **new_fields}},
    ]
    legacy = [{"from_step": 2500, "earlier_steps": "not recorded"}]
    for name, stages in (("staged", staged), ("legacy", legacy), ("plain", None)):
        metadata = {"stages": stages} if stages else {}
        save_checkpoint(
            tmp_path / name, LipMemGenerator(tiny_config(**APP_MODEL)).eval(), "generator", metadata
        )
    ctx = AppContext(checkpoints_root=tmp_path)
    assert "Trained in stages" in (card := model_card(ctx, "staged"))
    # a field the code gained since is counted when it holds its default, and shown when it does not
    assert (
        "from step 0; from step 600 (1 option added to the code since, at the default); from step 2,500, "
        "train.freeze_renderer unset -> True, train.loss.l1_mouth 0.0 -> 30.0 "
        "(1 option added to the code since, at the default)"
    ) in card
    assert "from step 2,500 (the configuration of the steps before was not recorded)" in model_card(
        ctx, "legacy"
    )
    assert "Trained in stages" not in model_card(ctx, "plain")
