"""LipMemGenerator: shapes, both decoding paths, memory-off equivalence, address decoding."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lipmem_core.config import ModelConfig
from lipmem_core.model.encoders import AudioEncoder, LipEncoder, identity_input
from lipmem_core.model.generator import (
    GeneratorOutput,
    LipMemGenerator,
    frames_back,
    frames_first,
    to_channels_last,
)
from tests.tiny_model import tiny_config

B, T, H = 2, 5, 32


def tiny_inputs(seed: int = 0, b: int = B) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    face = torch.rand(b, 6, T, H, H, generator=g) * 2 - 1  # (B, 6, T, H, W)
    mel = torch.rand(b, T, 1, 80, 16, generator=g) * 8 - 4  # (B, T, 1, 80, 16)
    lips = torch.rand(b, T, 3, 5, H, H, generator=g) * 2 - 1  # (B, T, 3, 5, H, W)
    return face, mel, lips


@pytest.fixture
def gen() -> LipMemGenerator:
    torch.manual_seed(0)
    return LipMemGenerator(tiny_config()).eval()


def test_shapes_with_and_without_lips(gen):
    face, mel, lips = tiny_inputs()
    out = gen(face, mel, lips)
    assert isinstance(out, GeneratorOutput)
    assert out.frames.shape == out.frames_lip.shape == (B, 3, T, H, H)
    assert out.addr_aud.shape == out.addr_lip.shape == (B, T, 8)
    for x in (out.recall_aud, out.recall_lip, out.f_aud, out.lip_query):
        assert x.shape == (B, T, 32)
    assert out.loss_store.ndim == 0 and out.loss_align.ndim == 0
    assert out.frames.abs().max() <= 1.0
    audio_only = gen(face, mel)
    assert audio_only.frames_lip is None and audio_only.addr_lip is None and audio_only.loss_store is None
    # The audio path does not depend on whether the lip path was decoded alongside it (eval mode).
    torch.testing.assert_close(audio_only.frames, out.frames, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(audio_only.addr_aud, out.addr_aud)


def test_paths_differ_and_lips_matter(gen):
    face, mel, lips = tiny_inputs()
    out = gen(face, mel, lips)
    assert not torch.allclose(out.frames, out.frames_lip)
    other = gen(face, mel, torch.flip(lips, dims=[0]))
    assert not torch.allclose(other.frames_lip, out.frames_lip)


def test_frames_are_decoded_independently_and_in_order(gen):
    face, mel, lips = tiny_inputs()
    out = gen(face, mel, lips)
    perm_t = torch.tensor([4, 2, 0, 1, 3])
    swapped = gen(face[:, :, perm_t], mel[:, perm_t], lips[:, perm_t])
    torch.testing.assert_close(swapped.frames, out.frames[:, :, perm_t], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(swapped.addr_lip, out.addr_lip[:, perm_t])
    flipped = gen(face.flip(0), mel.flip(0), lips.flip(0))
    torch.testing.assert_close(flipped.frames, out.frames.flip(0), atol=1e-5, rtol=1e-5)


def test_audio_encoder_reads_stacked_windows_and_each_of_them():
    """in_channels=C takes C stacked mel windows (benchmarks/audio_mouth_ceiling.py --context);
    the default is the generator's single window. Each window must reach the output."""
    torch.manual_seed(0)
    one, five = AudioEncoder(4, 8), AudioEncoder(4, 8, in_channels=5)
    assert one(torch.randn(3, 1, 80, 16)).shape == five(torch.randn(3, 5, 80, 16)).shape == (3, 8)
    with pytest.raises(RuntimeError):
        one(torch.randn(3, 5, 80, 16))
    five.eval()
    x = torch.randn(2, 5, 80, 16)
    base = five(x)
    for c in range(5):
        y = x.clone()
        y[:, c] += 1.0
        assert not torch.allclose(five(y), base), c


@pytest.mark.parametrize("lead", [(), (4,)])
def test_identity_input_hides_only_the_targets_lower_half(lead):
    targets, refs = torch.randn(*lead, 3, 5, 8, 6), torch.randn(*lead, 3, 5, 8, 6)
    before = targets.clone()
    face = identity_input(targets, refs)
    assert face.shape == (*lead, 6, 5, 8, 6)
    assert torch.equal(face[..., :3, :, :4, :], targets[..., :4, :])  # upper half kept
    assert not face[..., :3, :, 4:, :].any()  # lower half zero: the mouth must be drawn
    assert torch.equal(face[..., 3:, :, :, :], refs)  # references whole
    assert torch.equal(targets, before)  # the caller's frames are not touched


def test_frame_reshapes_are_inverse():
    x = torch.randn(3, 4, 5, 6, 7)
    assert torch.equal(frames_back(frames_first(x), 3), x)
    assert torch.equal(frames_first(x)[5], x[1, :, 0])  # sample 1, frame 0


def test_address_matches_forward(gen):
    face, mel, _ = tiny_inputs()
    out = gen(face, mel)
    torch.testing.assert_close(gen.address(mel.reshape(B * T, 1, 80, 16)), out.addr_aud.reshape(B * T, -1))


def test_decode_with_own_address_reproduces_forward(gen):
    face, mel, _ = tiny_inputs()
    out = gen(face, mel)
    again = gen.decode_with_address(face, mel, out.addr_aud)
    torch.testing.assert_close(again, out.frames, atol=1e-5, rtol=1e-5)


def test_one_hot_address_decodes_that_slot_on_silence(gen):
    face, _, _ = tiny_inputs()
    s = 5
    onehot = torch.zeros(B, T, 8)
    onehot[..., s] = 1.0
    frames = gen.decode_with_address(face, None, onehot)
    f_sil = gen.audio_encoder(torch.full((B * T, 1, 80, 16), -4.0))  # (N, D)
    fused = gen.memory.fuse(f_sil, gen.memory.value[s].expand(B * T, -1))
    by_hand = frames_back(gen.decoder(fused, gen.face_encoder(frames_first(face))), B)
    torch.testing.assert_close(frames, by_hand, atol=1e-6, rtol=1e-6)
    other = torch.zeros_like(onehot)
    other[..., 2] = 1.0
    assert not torch.allclose(gen.decode_with_address(face, None, other), frames)


def test_memory_off_equals_plain_audio_path():
    torch.manual_seed(0)
    gen = LipMemGenerator(tiny_config(use_memory=False)).eval()
    names = [n for n, _ in gen.named_parameters()]
    assert not any(n.startswith(("memory.", "lip_encoder.")) for n in names)
    assert gen.lip_encoder is None and gen.memory is None
    face, mel, lips = tiny_inputs()
    out = gen(face, mel, lips)
    skips = gen.face_encoder(frames_first(face))
    f_aud = gen.audio_encoder(mel.reshape(B * T, 1, 80, 16))
    by_hand = frames_back(gen.decoder(gen.fusion(f_aud), skips), B)
    torch.testing.assert_close(out.frames, by_hand, atol=0, rtol=0)
    assert out.frames_lip is None and out.addr_aud is None and out.loss_align is None
    with pytest.raises(ValueError, match="use_memory=False"):
        gen.address(mel[0])


@pytest.mark.parametrize("size", [16, 64])
def test_other_image_sizes(size):
    cfg = tiny_config(img_size=size)
    gen = LipMemGenerator(cfg).eval()
    out = gen(
        torch.zeros(1, 6, T, size, size), torch.zeros(1, T, 1, 80, 16), torch.zeros(1, T, 3, 5, size, size)
    )
    assert out.frames.shape == (1, 3, T, size, size)


def test_bad_image_size_rejected():
    with pytest.raises(ValueError, match="img_size"):
        LipMemGenerator(tiny_config(img_size=96))


def test_presets_build_and_round_trip_config():
    for name in ("cpu", "paper"):
        cfg = ModelConfig.preset(name)
        assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    n_cpu = sum(p.numel() for p in LipMemGenerator(ModelConfig.cpu()).parameters())
    assert 1e6 < n_cpu < 2e7


def test_channels_last_gives_the_same_frames(gen):
    face, mel, lips = tiny_inputs()
    ref = gen(face, mel, lips)
    to_channels_last(gen)
    assert gen.face_encoder.stem.conv.weight.is_contiguous(memory_format=torch.channels_last)
    out = gen(face, mel, lips)
    torch.testing.assert_close(out.frames, ref.frames, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out.frames_lip, ref.frames_lip, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("overrides", [{"stem_stride": 2}, {"stem_stride": 2, "enc_res": 0, "dec_res": 2}])
def test_lean_variants(overrides):
    torch.manual_seed(0)
    gen = LipMemGenerator(tiny_config(**overrides)).eval()
    face, mel, lips = tiny_inputs()
    out = gen(face, mel, lips)
    assert out.frames.shape == out.frames_lip.shape == (B, 3, T, H, H)
    skips = gen.face_encoder(frames_first(face))
    assert skips[0].shape[-1] == H // overrides["stem_stride"] and skips[-1].shape[-1] == 1
    # Every output pixel depends on the face input at its own location (no dead sub-pixels).
    face2 = face.clone()
    face2[..., 7, 9] += 1.0
    assert torch.all((gen(face2, mel).frames - out.frames)[..., 7, 9].abs() > 0)


def test_bad_stem_stride_rejected():
    with pytest.raises(ValueError, match="stem_stride"):
        LipMemGenerator(tiny_config(stem_stride=3))


def test_ablation_lip_path_trains_the_lip_encoder_and_leaves_inference_alone():
    torch.manual_seed(0)
    gen = LipMemGenerator(tiny_config(use_memory=False, ablation_lip_path=True)).eval()
    assert gen.memory is None and gen.lip_encoder is not None
    face, mel, lips = tiny_inputs()
    out = gen(face, mel, lips)
    assert out.frames_lip is not None and out.frames_lip.shape == out.frames.shape
    assert out.addr_aud is None and out.loss_store is None  # no memory, no memory terms
    # the inference path does not depend on the lips
    torch.testing.assert_close(gen(face, mel).frames, out.frames)
    by_hand = gen.decoder(
        gen.fusion(gen.lip_proj(gen.lip_encoder(lips.reshape(B * T, 3, 5, H, H)))),
        gen.face_encoder(frames_first(face)),
    )
    torch.testing.assert_close(out.frames_lip, frames_back(by_hand, B))
    out.frames_lip.mean().backward()
    assert all(
        p.grad is not None and p.grad.abs().sum() > 0 for p in gen.lip_encoder.parameters() if p.dim() > 1
    )


def test_input_skip_reaches_every_pixel_at_full_resolution():
    """With input_skip (stem_stride 2) an output pixel responds to its own input pixel through
    the full-resolution refine convs, and a model without it is unchanged in structure."""
    torch.manual_seed(0)
    gen = LipMemGenerator(tiny_config(stem_stride=2, input_skip=True)).eval()
    face, mel, _ = tiny_inputs()
    skips = gen.face_encoder(frames_first(face))
    torch.testing.assert_close(skips[0], frames_first(face))  # the input leads the skip list
    base = gen(face, mel).frames
    face2 = face.clone()
    face2[:, :, :, 7, 9] += 1.0
    d = (gen(face2, mel).frames - base).abs()
    assert torch.all(d[..., 7, 9] > 0)
    with torch.no_grad():
        gen.decoder.refine[-1].weight.zero_()
        gen.decoder.refine[-1].bias.zero_()
    plain = LipMemGenerator(tiny_config(stem_stride=2)).eval()
    plain.load_state_dict({k: v for k, v in gen.state_dict().items() if "refine" not in k})
    torch.testing.assert_close(gen(face, mel).frames, plain(face, mel).frames)  # a zero refine adds nothing


def test_paper_deviations_name_every_non_paper_mechanism():
    from lipmem_core.config import LossWeights, TrainConfig, paper_deviations

    assert paper_deviations(ModelConfig.paper().to_dict(), TrainConfig.paper().to_dict()) == []
    cpu = paper_deviations(ModelConfig.cpu().to_dict(), TrainConfig.cpu().to_dict())
    assert cpu == [
        "the lip-addressed path decodes from the recall alone",
        "dead memory slots re-seeded in training",
        "L_gan and the discriminator start at step 2000",
    ]
    # a run that ends at or before the GAN's start never trained one: named as no GAN
    for steps, phrase in ((2000, "no GAN (L_gan would start at step 2000; training ended at step 2000)"),
                          (2001, "L_gan and the discriminator start at step 2000")):  # fmt: skip
        text = paper_deviations(ModelConfig.cpu().to_dict(), TrainConfig.cpu().to_dict(), steps)
        assert text[-1] == phrase and sum("GAN" in d or "L_gan" in d for d in text) == 1
    no_gan = dataclasses.replace(TrainConfig.paper(), loss=LossWeights(gan=0.0)).to_dict()
    assert paper_deviations(ModelConfig.paper().to_dict(), no_gan, 10) == ["no GAN (L_gan weight 0)"]
    renderer_frozen = dataclasses.replace(TrainConfig.cpu(), freeze_renderer=True).to_dict()
    assert (
        "the face encoder and the decoder are frozen (only the features that make the decoder input train)"
        in paper_deviations(ModelConfig.cpu().to_dict(), renderer_frozen)
    )
    shared = dataclasses.replace(ModelConfig.cpu(), lip_path_audio_share=0.25).to_dict()
    assert paper_deviations(shared, TrainConfig.cpu().to_dict())[0] == (
        "the lip-addressed path decodes from the recall alone on 75% of training frames"
    )
    model = dataclasses.replace(
        ModelConfig.paper(), input_skip=True, centre_queries=True, cond_every_stage=True, mouth_readout=True,
        recall_readout=True, lip_input_norm=True, audio_query_detached=True, audio_context=2, recall_drop=0.25,
    ).to_dict()  # fmt: skip
    train_config = dataclasses.replace(
        TrainConfig.paper(), lr=3e-4, memory_lr_scale=10.0, memory_init_step=150, memory_init_by="audio",
        ref_mouth_drop=0.5, consensus_eps=0.25, audio_frames=20, pause_frames=10,
        freeze_features=True, loss=LossWeights(usage=1.0, sharpness=0.5, align=1.8, l1_lower=4.0, align_hard=0.3, align_hard_lip=0.2,
                         mouth_params=10.0, l1_mouth=2.0, recall_mouth=5.0, consensus=0.5, slot_mouth=2.0, drawn_mouth=3.0,
                         slot_drawn_mouth=4.0),
    )  # fmt: skip
    train = train_config.to_dict()
    text = "; ".join(paper_deviations(model, train))
    for phrase in ("input skip", "centred", "gradient stopped", "learning rate 0.0003", "10x", "step 150", "slot-usage loss (weight 1)",
                   "sharpness loss (weight 0.5)", "L_align weighted 2", "lower-half L1 (weight 4)", "mouth-shape group's mean queries) at step 150",
                   "argmax A_lip (weight 0.3)", "argmax A_aud (weight 0.2)", "every decoder stage (FiLM)",
                   "hidden on 50% of training windows", "exact mouth parameters from the decoder input (weight 10; SynthTalk only",
                   "mouth-box L1 (weight 2)", "exact mouth parameters from the memory's recall (weight 5; SynthTalk only",
                   "standardised per colour channel", "balanced slot codes (weight 0.5, temperature 0.25)",
                   "groups of SynthTalk's exact mouth parameters, both addressings trained towards each frame's group (weight 2",
                   "trained on real frames, judges the drawn mouths (weight 3; SynthTalk only",
                   "single slots decoded alone and judged by a mouth reader against their mouth-shape group (weight 4; SynthTalk only",
                   "20 more frames per window train the audio path's mouth read-outs from audio alone",
                   "f_aud of each frame also hears the 2 frames either side",
                   "the audio path's recall zeroed on 25% of training frames"):  # fmt: skip
        assert phrase in text, phrase
    # mouth-shape slots group the initial frames by mouth, so memory_init_by is not what happened
    assert "k-means of audio queries" not in text
    no_slots = dataclasses.replace(train_config, loss=LossWeights(slot_mouth=0.0)).to_dict()
    text = "; ".join(paper_deviations(model, no_slots))
    assert (
        "K and V set from data (k-means of audio queries) at step 150" in text
        and "mouth-shape group" not in text
    )
    ablation = dataclasses.replace(
        ModelConfig.paper(), use_memory=False, ablation_lip_path=True, recall_drop=0.25
    ).to_dict()
    # memory-only options do not apply to a model without memory; the drawn-mouth reader does
    assert paper_deviations(ablation, train) == [
        "a read-out of SynthTalk's exact mouth parameters from the decoder input (weight 10; SynthTalk only, off for real corpora)",
        "20 more frames per window train the audio path's mouth read-outs from audio alone (SynthTalk only, off for real corpora)",
        "a reader of SynthTalk's exact mouth parameters, trained on real frames, judges the drawn mouths (weight 3; SynthTalk only, off for real corpora)",
        "a lip path without memory (so L_vv applies)", "learning rate 0.0003 (paper 0.0001)",
        "references' lower half hidden on 50% of training windows",
        "10 frames of pause (last frame held, room tone) appended to every training clip (SynthTalk only, off for real corpora)",
        "only the face encoder and the decoder train (the features that make the decoder input are frozen)",
        "an extra lower-half L1 (weight 4)", "an extra mouth-box L1 (weight 2)",
    ]  # fmt: skip


def test_cond_every_stage_starts_as_the_plain_unet_and_then_conditions_every_stage():
    """FiLM from the fused feature at every up stage: zero-initialised, so a fresh model draws
    exactly what the same weights draw without it; once trained, the fused feature changes
    each stage's maps (the mouth is no longer decided at the 1 x 1 bottleneck alone)."""
    torch.manual_seed(0)
    gen = LipMemGenerator(tiny_config(cond_every_stage=True)).eval()
    face, mel, _ = tiny_inputs()
    plain = LipMemGenerator(tiny_config()).eval()
    plain.load_state_dict({k: v for k, v in gen.state_dict().items() if ".film." not in k})
    torch.testing.assert_close(gen(face, mel).frames, plain(face, mel).frames)
    assert len(gen.decoder.film) == len(gen.decoder.ups)
    gen.train()
    gen(face, mel).frames.square().sum().backward()
    for lin in gen.decoder.film:  # every stage's modulation learns from the first step
        assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0


def test_lip_input_norm_makes_the_lip_feature_blind_to_a_clip_s_colour_and_brightness():
    """--model lip_input_norm=true: a lip clip and the same clip with every colour channel
    scaled and shifted (another skin and lip tone, another exposure) give the same f_lip; without
    the option they do not. The upper half is still not read."""
    torch.manual_seed(0)
    clip = torch.rand(2, 3, 5, H, H) * 2 - 1
    tinted = clip * torch.tensor([0.6, 1.3, 0.9]).view(1, 3, 1, 1, 1) + torch.tensor([0.2, -0.1, 0.05]).view(
        1, 3, 1, 1, 1
    )
    normed = LipEncoder(tiny_config(lip_input_norm=True)).eval()
    plain = LipEncoder(tiny_config()).eval()
    with torch.no_grad():
        torch.testing.assert_close(normed(tinted), normed(clip), atol=1e-4, rtol=1e-4)
        assert not torch.allclose(plain(tinted), plain(clip), atol=1e-3)
        upper = clip.clone()
        upper[..., : H // 2, :] = 5.0
        torch.testing.assert_close(normed(upper), normed(clip))


def _context_model(c: int) -> LipMemGenerator:
    """A tiny generator with audio_context=c whose temporal conv is no longer the identity."""
    torch.manual_seed(0)
    gen = LipMemGenerator(tiny_config(audio_context=c)).eval()
    assert gen.audio_context is not None
    torch.nn.init.normal_(gen.audio_context.weight, std=0.1)
    return gen


def test_audio_context_starts_as_the_plain_model_and_trains_from_the_first_step():
    torch.manual_seed(0)
    gen = LipMemGenerator(tiny_config(audio_context=2)).eval()
    plain = LipMemGenerator(tiny_config()).eval()
    plain.load_state_dict({k: v for k, v in gen.state_dict().items() if not k.startswith("audio_context.")})
    face, mel, lips = tiny_inputs()
    torch.testing.assert_close(gen(face, mel).frames, plain(face, mel).frames)
    gen.train()
    gen(face, mel, lips).frames.square().sum().backward()
    assert gen.audio_context is not None and gen.audio_context.weight.grad.abs().sum() > 0


def test_audio_context_hears_only_neighbours_within_c_frames_of_the_same_window():
    c = 1
    gen = _context_model(c)
    _, mel, _ = tiny_inputs()
    with torch.no_grad():
        base = gen.encode_audio(mel)  # (B, T, D)
        changed = mel.clone()
        changed[0, 0] = -4.0  # frame 0 of window 0 falls silent
        moved = (gen.encode_audio(changed) - base).abs().amax(-1)  # (B, T)
    assert (moved[0, : c + 1] > 0).all()  # the frame itself and its c right-hand neighbours
    assert (moved[0, c + 1 :] == 0).all() and (moved[1] == 0).all()  # nothing further, no other window


def test_address_groups_a_clip_into_the_windows_the_generator_decodes():
    gen = _context_model(2)
    n = 13  # two whole windows and a last one of 3 frames
    mel = torch.rand(n, 1, 80, 16, generator=torch.Generator().manual_seed(3)) * 8 - 4
    windows = torch.cat([mel, mel[-1:].expand(2, 1, 80, 16)]).reshape(3, T, 1, 80, 16)
    face = torch.rand(3, 6, T, H, H) * 2 - 1
    with torch.no_grad():
        a = gen.address(mel)  # (N, S)
        torch.testing.assert_close(a, gen(face, windows).addr_aud.flatten(0, 1)[:n])
        torch.testing.assert_close(a[:T], gen.address(mel[:T]))  # a window does not hear the next one
        # the same frames in a window shifted by one frame hear other neighbours
        assert not torch.allclose(gen.address(mel[1 : T + 1])[: T - 1], a[1:T])
