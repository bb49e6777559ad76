"""The paper's losses: gradient routing (frozen judges), weighting, and that training works."""

from __future__ import annotations

import pytest
import torch

from lipmem_core.config import LossWeights
from lipmem_core.model.discriminator import QualityDiscriminator
from lipmem_core.model.generator import LipMemGenerator
from lipmem_core.model.losses import (
    av_sync_loss,
    discriminator_loss,
    frozen_call,
    generator_loss,
    vv_sync_loss,
)
from lipmem_core.model.syncnet import SyncNet
from tests.lipmem_core.model.test_model import B, H, T, tiny_inputs
from tests.tiny_model import tiny_config


def _batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """A learnable batch laid out like GeneratorWindows: smooth frames, masked targets, refs."""
    g = torch.Generator().manual_seed(seed)
    _, mel, _ = tiny_inputs(seed)
    coarse = torch.rand(B, 3, T + 4, 4, 4, generator=g) * 2 - 1
    video = torch.nn.functional.interpolate(coarse, size=(T + 4, H, H), mode="trilinear")  # (B, 3, T+4, H, W)
    gt = video[:, :, 2:-2]  # (B, 3, T, H, W)
    masked = gt.clone()
    masked[..., H // 2 :, :] = 0.0
    face = torch.cat([masked, gt.flip(2)], dim=1)  # (B, 6, T, H, W)
    lips = torch.stack([video[:, :, i : i + 5] for i in range(T)], dim=1).clone()  # (B, T, 3, 5, H, W)
    lips[..., : H // 2, :] = 0.0
    return {"face": face, "mel": mel, "lips": lips, "gt": gt, "clip_mel": mel[:, T // 2]}


def _nets(**cfg_overrides):
    torch.manual_seed(0)
    cfg = tiny_config(**cfg_overrides)
    return LipMemGenerator(cfg).train(), SyncNet(cfg).eval(), QualityDiscriminator(cfg).train()


@pytest.mark.parametrize("lip_path_audio", [True, False])
def test_total_loss_reaches_every_generator_parameter_and_no_judge(lip_path_audio):
    gen, sync, disc = _nets(lip_path_audio=lip_path_audio)
    batch = _batch()
    sync_state = {k: v.clone() for k, v in sync.state_dict().items()}
    total, logs = generator_loss(gen(batch["face"], batch["mel"], batch["lips"]), batch, sync, gen, disc)
    total.backward()
    missing = [n for n, p in gen.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing
    assert all(p.grad is None for p in sync.parameters())
    assert all(p.grad is None for p in disc.parameters())
    for k, v in sync.state_dict().items():
        assert torch.equal(v, sync_state[k]), k
    assert set(logs) >= {"l1", "av_sync", "vv_sync", "gan", "align", "store", "total"}


def test_total_is_the_weighted_sum():
    gen, sync, disc = _nets()
    gen.eval()  # deterministic dropout so the two passes agree
    batch = _batch()
    out = gen(batch["face"], batch["mel"], batch["lips"])
    w = LossWeights(
        l1=1.5,
        av_sync=0.3,
        vv_sync=0.7,
        gan=0.11,
        memory=2.0,
        usage=0.4,
        l1_lower=3.0,
        align=0.9,
        sharpness=0.7,
        align_hard=0.6,
        align_hard_lip=0.25,
    )
    total, logs = generator_loss(out, batch, sync, gen, disc, w)
    expected = (
        w.l1 * logs["l1"]
        + w.av_sync * logs["av_sync"]
        + w.vv_sync * logs["vv_sync"]
        + w.gan * logs["gan"]
        + w.memory * (logs["align"] + logs["store"])
        + w.align * logs["align"]
        + w.sharpness * logs["sharpness"]
        + w.usage * logs["usage"]
        + w.l1_lower * logs["l1_lower"]
        + w.align_hard * logs["align_hard"]
        + w.align_hard_lip * logs["align_hard_lip"]
    )
    assert abs(total.item() - expected) < 1e-4 * max(1.0, abs(expected))
    l1_both = 0.5 * ((out.frames - batch["gt"]).abs().mean() + (out.frames_lip - batch["gt"]).abs().mean())
    assert abs(logs["l1"] - l1_both.item()) < 1e-5
    h = batch["gt"].shape[-2] // 2
    lower = [(f[..., h:, :] - batch["gt"][..., h:, :]).abs().mean() for f in (out.frames, out.frames_lip)]
    assert abs(logs["l1_lower"] - 0.5 * (lower[0] + lower[1]).item()) < 1e-5
    agree = (out.addr_aud.argmax(-1) == out.addr_lip.argmax(-1)).float().mean().item()
    assert logs["agree"] == agree
    only_l1, logs1 = generator_loss(out, batch, None, gen, None, LossWeights(vv_sync=0.0, memory=0.0))
    # memory terms and the A_aud/A_lip agreement are logged at weight 0
    assert set(logs1) == {"l1", "l1_aud", "align", "store", "agree", "total"}
    assert abs(only_l1.item() - 10 * logs["l1"]) < 1e-4


def test_vv_loss_gives_no_gradient_to_the_lip_encoder():
    gen, _, _ = _nets()
    frames = (torch.rand(B, 3, T, H, H) * 2 - 1).requires_grad_()
    loss = vv_sync_loss(frames, torch.rand(B, 3, T, H, H), gen.lip_encoder)
    loss.backward()
    assert frames.grad is not None and frames.grad.abs().sum() > 0
    assert all(p.grad is None for p in gen.lip_encoder.parameters())
    # Only the mouth region is read by the lip encoder.
    assert frames.grad[..., : H // 2, :].abs().sum() == 0


def test_live_lip_encoder_learns_from_its_own_path():
    gen, _, _ = _nets()
    batch = _batch()
    out = gen(batch["face"], batch["mel"], batch["lips"])
    torch.nn.functional.l1_loss(out.frames_lip, batch["gt"]).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in gen.lip_encoder.parameters())


def test_av_loss_frozen_and_depends_on_mouth_only():
    _, sync, _ = _nets()
    sync.train()  # even in train mode the BatchNorm statistics must stay untouched
    before = {k: v.clone() for k, v in sync.state_dict().items()}
    frames = (torch.rand(B, 3, T, H, H) * 2 - 1).requires_grad_()
    av_sync_loss(frames, torch.rand(B, 1, 80, 16), sync).backward()
    assert all(p.grad is None for p in sync.parameters())
    assert all(torch.equal(v, before[k]) for k, v in sync.state_dict().items())
    assert frames.grad[..., H // 2 :, :].abs().sum() > 0 and frames.grad[..., : H // 2, :].abs().sum() == 0


def test_discriminator_loss_trains_only_the_discriminator():
    gen, _, disc = _nets()
    batch = _batch()
    fake = gen(batch["face"], batch["mel"]).frames
    loss, logs = discriminator_loss(disc, batch["gt"], fake)
    loss.backward()
    assert all(p.grad is not None for p in disc.parameters())
    assert all(p.grad is None for p in gen.parameters())
    assert 0.0 <= logs["disc_acc"] <= 1.0


def test_frozen_call_matches_module_in_eval():
    _, sync, _ = _nets()
    clip, mel = torch.rand(3, 3, 5, H // 2, H), torch.rand(3, 1, 80, 16)
    v1, a1 = sync(clip, mel)
    v2, a2 = frozen_call(sync, clip, mel)
    torch.testing.assert_close(v1, v2)
    torch.testing.assert_close(a1, a2)


def test_tiny_generator_overfits_a_tiny_batch():
    gen, _, _ = _nets(fusion_dropout=0.0)
    batch = _batch()
    opt = torch.optim.Adam(gen.parameters(), lr=5e-3, betas=(0.5, 0.999))
    history = []
    for _ in range(60):
        out = gen(batch["face"], batch["mel"], batch["lips"])
        total, logs = generator_loss(out, batch, None, gen, None)
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append(logs["l1"])
    assert min(history[-5:]) < history[0] / 2.5, history


@pytest.mark.parametrize("use_memory", [True, False])
def test_mouth_params_loss_reads_both_paths_and_trains_the_feature_that_drives_the_decoder(use_memory):
    """--loss mouth_params: L1 of the read-out of each path's decoder input against the exact
    mouth parameters, averaged over the two paths; its gradient reaches the encoders (the
    feature must carry the mouth), and it refuses to run without the read-out or the labels."""
    gen, sync, disc = _nets(mouth_readout=True, use_memory=use_memory, ablation_lip_path=not use_memory)
    gen.eval()  # no dropout: the read-outs below are recomputed by hand
    batch = _batch()
    batch["mouth"] = torch.rand(B, T, 7, generator=torch.Generator().manual_seed(1))
    out = gen(batch["face"], batch["mel"], batch["lips"])
    assert out.mouth.shape == (B, T, 7) and out.mouth_lip.shape == (B, T, 7)
    total, logs = generator_loss(
        out, batch, None, gen, None, LossWeights(l1=0.0, vv_sync=0.0, memory=0.0, mouth_params=2.0)
    )
    want = 0.5 * ((out.mouth - batch["mouth"]).abs().mean() + (out.mouth_lip - batch["mouth"]).abs().mean())
    assert abs(logs["mouth_params"] - want.item()) < 1e-6
    assert abs(total.item() - 2.0 * want.item()) < 1e-5
    total.backward()
    for part in (gen.audio_encoder, gen.lip_encoder, gen.mouth_readout):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in gen.decoder.parameters())  # only L1 draws
    del batch["mouth"]
    with pytest.raises(ValueError, match="mouth_params"):
        generator_loss(out, batch, None, gen, None, LossWeights(mouth_params=1.0))
    plain = _nets()[0]
    with pytest.raises(ValueError, match="mouth_params"):
        generator_loss(plain(batch["face"], batch["mel"], batch["lips"]), {**batch, "mouth": out.mouth}, None, plain,
                       None, LossWeights(mouth_params=1.0))  # fmt: skip


def test_recall_mouth_loss_reads_both_recalls_and_trains_the_memory_and_both_addressings():
    """--loss recall_mouth: L1 of the recall read-out (A_aud @ V and A_lip @ V) against the exact
    mouth parameters, averaged over the two recalls. Its gradient must reach V, K and both
    encoders (so the slots hold mouth shapes and both sides address them by shape) but not the
    decoder; without a memory the term has nothing to read and adds nothing, as L_align."""
    gen, _, _ = _nets(recall_readout=True)
    gen.eval()
    batch = _batch()
    batch["mouth"] = torch.rand(B, T, 7, generator=torch.Generator().manual_seed(2))
    out = gen(batch["face"], batch["mel"], batch["lips"])
    assert out.mouth_recall.shape == (B, T, 7) and out.mouth_recall_lip.shape == (B, T, 7)
    by_hand = gen.recall_readout(out.recall_aud)  # the head reads the recall itself
    assert torch.allclose(by_hand, out.mouth_recall, atol=1e-6)
    weights = LossWeights(l1=0.0, vv_sync=0.0, memory=0.0, recall_mouth=3.0)
    total, logs = generator_loss(out, batch, None, gen, None, weights)
    want = 0.5 * (
        (out.mouth_recall - batch["mouth"]).abs().mean()
        + (out.mouth_recall_lip - batch["mouth"]).abs().mean()
    )
    assert abs(logs["recall_mouth"] - want.item()) < 1e-6
    assert abs(total.item() - 3.0 * want.item()) < 1e-5
    total.backward()
    assert gen.memory.value.grad.abs().sum() > 0 and gen.memory.key.grad.abs().sum() > 0
    for part in (gen.audio_encoder, gen.lip_encoder, gen.recall_readout):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in gen.decoder.parameters())
    with pytest.raises(ValueError, match="recall_mouth"):
        generator_loss(out, {k: v for k, v in batch.items() if k != "mouth"}, None, gen, None, weights)
    ablation = _nets(recall_readout=True, use_memory=False, ablation_lip_path=True)[0]
    assert ablation.recall_readout is None
    plain = ablation(batch["face"], batch["mel"], batch["lips"])
    assert plain.mouth_recall is None
    _, logs = generator_loss(plain, batch, None, ablation, None, weights)
    assert "recall_mouth" not in logs


@pytest.mark.parametrize("use_memory", [True, False])
def test_audio_only_frames_are_read_as_the_audio_path_reads_and_train_it_without_the_decoder(use_memory):
    """forward(..., audio_mel=): the extra frames' read-outs are what the audio path reads from
    the same mel windows (the decoded frames unchanged), their L1 terms use the read-outs'
    weights, and their gradient reaches the audio side (encoder, memory) but not the decoder."""
    gen, _, _ = _nets(mouth_readout=True, recall_readout=True, use_memory=use_memory, ablation_lip_path=True)
    gen.eval()  # no dropout, so two passes can be compared
    batch = _batch()
    g = torch.Generator().manual_seed(3)
    batch["mouth"] = torch.rand(B, T, 7, generator=g)
    batch["audio_mel"] = torch.cat([batch["mel"], batch["mel"].flip(1)], dim=1)  # (B, 2T, 1, 80, 16)
    batch["audio_mouth"] = torch.rand(B, 2 * T, 7, generator=g)
    plain = gen(batch["face"], batch["mel"], batch["lips"])
    out = gen(batch["face"], batch["mel"], batch["lips"], batch["audio_mel"])
    assert plain.audio_only is None and torch.equal(out.frames, plain.frames)
    extra = out.audio_only
    assert extra.mouth.shape == (B, 2 * T, 7)
    assert torch.allclose(extra.mouth[:, :T], out.mouth, atol=1e-5)  # same windows, same read-out
    if use_memory:
        assert torch.allclose(extra.addr_aud[:, :T], out.addr_aud, atol=1e-5)
        assert torch.allclose(extra.mouth_recall[:, T:], out.mouth_recall.flip(1), atol=1e-5)
    else:
        assert extra.addr_aud is None and extra.mouth_recall is None
    weights = LossWeights(l1=0.0, av_sync=0.0, vv_sync=0.0, memory=0.0, mouth_params=2.0, recall_mouth=3.0)
    total, logs = generator_loss(out, batch, None, gen, None, weights)
    want = (extra.mouth - batch["audio_mouth"]).abs().mean()
    assert abs(logs["audio_mouth_params"] - want.item()) < 1e-6
    assert ("audio_recall_mouth" in logs) == use_memory
    _, base = generator_loss(plain, batch, None, gen, None, weights)
    assert (
        abs(logs["total"] - base["total"] - 2.0 * want.item() - 3.0 * logs.get("audio_recall_mouth", 0.0))
        < 1e-4
    )
    _, extra_only = generator_loss(out, batch, None, gen, None, LossWeights(
        l1=0.0, av_sync=0.0, vv_sync=0.0, memory=0.0, mouth_params=0.0))  # fmt: skip
    assert "audio_mouth_params" not in extra_only
    want.backward()  # the extra frames' term alone
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in gen.audio_encoder.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in gen.decoder.parameters())
    with pytest.raises(ValueError, match="audio_mouth"):
        generator_loss(out, {k: v for k, v in batch.items() if k != "audio_mouth"}, None, gen, None, weights)


def test_mouth_box_l1_is_the_l1_of_the_evaluated_mouth_crop_on_both_paths():
    from lipmem_core.evaluation.metrics import mouth_crop

    gen, _, _ = _nets(img_size=64, face_widths=(8, 16, 16, 16))
    gen.eval()
    g = torch.Generator().manual_seed(2)
    face, mel, lips = (torch.rand(B, 6, T, 64, 64, generator=g), torch.rand(B, T, 1, 80, 16, generator=g),
                       torch.rand(B, T, 3, 5, 64, 64, generator=g))  # fmt: skip
    gt = torch.rand(B, 3, T, 64, 64, generator=g) * 2 - 1
    out = gen(face, mel, lips)
    _, logs = generator_loss(
        out, {"gt": gt}, None, gen, None, LossWeights(vv_sync=0.0, memory=0.0, l1_mouth=5.0)
    )

    def box(x):  # (B, 3, T, H, W) -> the evaluation's mouth crop (B*T, h, w, 3)
        return torch.from_numpy(mouth_crop(x.permute(0, 2, 3, 4, 1).flatten(0, 1).detach().numpy()))

    want = 0.5 * sum((box(f) - box(gt)).abs().mean() for f in (out.frames, out.frames_lip))
    assert abs(logs["l1_mouth"] - want.item()) < 1e-6
    moved = out.frames.detach().clone()
    moved[..., :20, :] = 5.0  # far above the mouth box (rows 36..57 of 64): the term does not see it
    _, same = generator_loss(
        type(out)(frames=moved, f_aud=out.f_aud, frames_lip=out.frames_lip), {"gt": gt}, None, gen, None,
        LossWeights(vv_sync=0.0, memory=0.0, l1_mouth=5.0),
    )  # fmt: skip
    assert abs(same["l1_mouth"] - logs["l1_mouth"]) < 1e-6
