"""SyncTalkFace's losses (docs/PAPER.md "Losses") as plain functions; the training loop lives in train.py.

total = 10 L1 + 0.2 L_av + 0.2 L_vv + 0.2 L_gan + 0.2 (L_align + L_store)

L1, L_av and L_vv are averaged over both decoding paths (audio- and lip-addressed) when the lip
path exists; L_gan applies to the audio-addressed (inference) path. Networks that only judge the
generator (SyncNet, the discriminator inside the generator loss, the lip-encoder copy of L_vv)
are run through `frozen_call`, so their parameters never receive gradients from these losses
whatever their requires_grad flags say.

Generator batches use the keys of lipmem_core.data.datasets.GeneratorWindows: face (B,6,T,H,W),
gt (B,3,T,H,W), lips (B,T,3,5,H,W), mel (B,T,1,80,16), clip_mel (B,1,80,16). SyncNet batches
use SyncWindows: frames (B,3,5,H/2,W), mel (B,1,80,16), label (B,).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from lipmem_core.config import LossWeights
from lipmem_core.evaluation.metrics import mouth_box_slices
from lipmem_core.model.generator import GeneratorOutput, LipMemGenerator
from lipmem_core.model.memory import hard_alignment_loss, sharpness_loss, usage_loss
from lipmem_core.model.syncnet import CLIP_FRAMES, SyncNet, cosine_bce, lower_half


def frozen_call(module: nn.Module, *args: Tensor) -> Any:
    """module(*args) with detached parameters and copied buffers.

    Gradients flow to the inputs only, and BatchNorm running statistics of `module` are left
    untouched (a frozen copy of the network, without copying its weights).
    """
    state = {k: v.detach() for k, v in module.named_parameters()}
    state.update({k: v.clone() for k, v in module.named_buffers()})
    return functional_call(module, state, args)


def middle_clip(frames: Tensor) -> Tensor:
    """The CLIP_FRAMES frames around the middle of a window: (B, 3, T, H, W) -> (B, 3, 5, H, W)."""
    t = frames.shape[2]
    if t < CLIP_FRAMES:
        raise ValueError(f"sync losses need windows of at least {CLIP_FRAMES} frames, got T={t}")
    s = t // 2 - CLIP_FRAMES // 2
    return frames[:, :, s : s + CLIP_FRAMES]  # (B, 3, 5, H, W)


def l1_loss(frames: Tensor, gt: Tensor) -> Tensor:
    """Reconstruction L1 between generated and ground-truth frames (B, 3, T, H, W)."""
    return F.l1_loss(frames, gt)


def lower_half_l1(frames: Tensor, gt: Tensor) -> Tensor:
    """L1 over the lower half of the frames (B, 3, T, H, W): the mouth region's reconstruction."""
    h = frames.shape[-2] // 2
    return F.l1_loss(frames[..., h:, :], gt[..., h:, :])


def mouth_box_l1(frames: Tensor, gt: Tensor) -> Tensor:
    """L1 over the evaluated mouth box (metrics.MOUTH_BOX) of frames (B, 3, T, H, W)."""
    rows, cols = mouth_box_slices(*frames.shape[-2:])
    return F.l1_loss(frames[..., rows, cols], gt[..., rows, cols])


def address_agreement(out: GeneratorOutput) -> float | None:
    """Share of frames whose argmax slot of A_aud is that of A_lip (None without a lip path).

    It decides whether inference, which addresses by audio alone, recalls what training stored
    through the lips.
    """
    if out.addr_aud is None or out.addr_lip is None:
        return None
    return (out.addr_aud.argmax(-1) == out.addr_lip.argmax(-1)).float().mean().item()


def av_sync_loss(frames: Tensor, clip_mel: Tensor, syncnet: SyncNet) -> Tensor:
    """L_av: cosine BCE (target "in sync") of the frozen SyncNet on the generated lower-half clip.

    frames (B, 3, T, H, W), clip_mel (B, 1, 80, 16).
    """
    clip = lower_half(middle_clip(frames))  # (B, 3, 5, H/2, W)
    v, a = frozen_call(syncnet, clip, clip_mel)  # (B, E) each
    return cosine_bce(v, a, torch.ones(v.shape[0], device=v.device))


def vv_sync_loss(frames: Tensor, gt: Tensor, lip_encoder: nn.Module) -> Tensor:
    """L_vv: L1 between lip-encoder features of the generated and the ground-truth clip.

    frames, gt (B, 3, T, H, W). Both go through a frozen view of the lip encoder; the
    ground-truth feature is a constant target, so only the generated frames get gradient.
    """
    f_gen = frozen_call(lip_encoder, middle_clip(frames))  # (B, D)
    with torch.no_grad():
        f_gt = frozen_call(lip_encoder, middle_clip(gt))  # (B, D)
    return F.l1_loss(f_gen, f_gt)


def gan_generator_loss(frames: Tensor, discriminator: nn.Module) -> Tensor:
    """L_gan for the generator: BCE(D(generated lower halves), real), D frozen. (B, 3, T, H, W)."""
    logits = frozen_call(discriminator, frames)  # (B*T,)
    return F.binary_cross_entropy_with_logits(logits.float(), torch.ones_like(logits, dtype=torch.float32))


def discriminator_loss(
    discriminator: nn.Module, real: Tensor, fake: Tensor
) -> tuple[Tensor, dict[str, float]]:
    """Discriminator BCE: real frames -> 1, generated (detached) frames -> 0. (B, 3, T, H, W)."""
    real_logits = discriminator(real)  # (B*T,)
    fake_logits = discriminator(fake.detach())  # (B*T,)
    loss_real = F.binary_cross_entropy_with_logits(
        real_logits.float(), torch.ones_like(real_logits, dtype=torch.float32)
    )
    loss_fake = F.binary_cross_entropy_with_logits(
        fake_logits.float(), torch.zeros_like(fake_logits, dtype=torch.float32)
    )
    logs = {
        "disc_real": loss_real.item(),
        "disc_fake": loss_fake.item(),
        "disc_acc": 0.5 * ((real_logits > 0).float().mean() + (fake_logits < 0).float().mean()).item(),
    }
    return loss_real + loss_fake, logs


def syncnet_loss(syncnet: SyncNet, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
    """SyncNet training loss (cosine BCE) on a SyncWindows batch, with accuracy at p = 0.5."""
    v, a = syncnet(batch["frames"], batch["mel"])  # (B, E) each
    label = batch["label"].to(v.device)  # (B,)
    loss = cosine_bce(v, a, label)
    with torch.no_grad():
        acc = (((v * a).sum(-1) > 0.5).float() == label).float().mean().item()
    return loss, {"sync_loss": loss.item(), "sync_acc": acc}


def decoded_paths(out: GeneratorOutput) -> list[Tensor]:
    """The frames (B, 3, T, H, W) of each decoding path: the audio path, then the lip path if decoded."""
    return [out.frames] + ([out.frames_lip] if out.frames_lip is not None else [])


def _mean(xs: list[Tensor]) -> Tensor:
    return torch.stack(xs).mean()


def mouth_readout_l1(
    reads: tuple[Tensor | None, Tensor | None],
    batch: Mapping[str, Tensor],
    name: str,
    head: str,
    labels: str = "mouth",
) -> Tensor:
    """L1 of a mouth read-out (audio path, lip path) against the exact parameters batch[labels]
    (B, T, 7), averaged over the paths present; `name` / `head` name the loss and the read-out
    in the error raised when either the read-out or the labels are missing."""
    if reads[0] is None or labels not in batch:
        raise ValueError(f"{name} needs a generator with {head} and batches with {labels!r}")
    return _mean([F.l1_loss(r.float(), batch[labels]) for r in reads if r is not None])


def generator_loss(
    out: GeneratorOutput,
    batch: Mapping[str, Tensor],
    syncnet: SyncNet | None,
    generator: LipMemGenerator,
    discriminator: nn.Module | None,
    weights: LossWeights | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """The weighted total of the paper's generator losses and a dict of floats for logging.

    syncnet / discriminator None (or a zero weight) leaves that term out, e.g. before the
    expert is trained or during a GAN warm-up. L_vv needs the generator's lip encoder, which a
    use_memory=False generator has only with `ablation_lip_path`; without it the ablation
    trains without L_vv.
    """
    w = weights or LossWeights()
    gt = batch["gt"]
    paths = decoded_paths(out)
    l1 = _mean([l1_loss(f, gt) for f in paths])
    total = w.l1 * l1
    logs: dict[str, float] = {"l1": l1.item(), "l1_aud": l1_loss(out.frames.detach(), gt).item()}
    if w.l1_lower > 0:
        lower = _mean([lower_half_l1(f, gt) for f in paths])
        total = total + w.l1_lower * lower
        logs["l1_lower"] = lower.item()
    if w.l1_mouth > 0:
        box = _mean([mouth_box_l1(f, gt) for f in paths])
        total = total + w.l1_mouth * box
        logs["l1_mouth"] = box.item()
    # the two SynthTalk-only read-outs: of each path's decoder input, and (memory only, as
    # L_align) of each path's recall; then both again on the frames read from audio alone
    # (TrainConfig.audio_frames), logged apart
    memory = out.addr_aud is not None
    audio = out.audio_only
    for name, weight, reads, labels, head in (
        ("mouth_params", w.mouth_params, (out.mouth, out.mouth_lip), "mouth", "mouth_readout"),
        ("recall_mouth", w.recall_mouth if memory else 0.0, (out.mouth_recall, out.mouth_recall_lip), "mouth",
         "recall_readout"),
        ("audio_mouth_params", w.mouth_params if audio else 0.0, (audio.mouth if audio else None, None), "audio_mouth",
         "mouth_readout"),
        ("audio_recall_mouth", w.recall_mouth if audio and memory else 0.0, (audio.mouth_recall if audio else None, None),
         "audio_mouth", "recall_readout"),
    ):  # fmt: skip
        if weight > 0:
            term = mouth_readout_l1(reads, batch, name, head, labels)
            total = total + weight * term
            logs[name] = term.item()
    if syncnet is not None and w.av_sync > 0:
        av = _mean([av_sync_loss(f, batch["clip_mel"], syncnet) for f in paths])
        total = total + w.av_sync * av
        logs["av_sync"] = av.item()
    if generator.lip_encoder is not None and w.vv_sync > 0:
        vv = _mean([vv_sync_loss(f, gt, generator.lip_encoder) for f in paths])
        total = total + w.vv_sync * vv
        logs["vv_sync"] = vv.item()
    if discriminator is not None and w.gan > 0:
        gan = gan_generator_loss(out.frames, discriminator)
        total = total + w.gan * gan
        logs["gan"] = gan.item()
    if out.loss_align is not None and out.loss_store is not None:
        total = total + w.memory * (out.loss_align + out.loss_store) + w.align * out.loss_align
        logs["align"], logs["store"] = out.loss_align.item(), out.loss_store.item()
    if out.addr_lip is not None and out.addr_aud is not None:
        # the learning side first: A_aud -> argmax A_lip, then A_lip -> argmax A_aud
        for name, weight, address, target in (
            ("align_hard", w.align_hard, out.addr_aud, out.addr_lip),
            ("align_hard_lip", w.align_hard_lip, out.addr_lip, out.addr_aud),
        ):
            if weight > 0:
                hard = hard_alignment_loss(address, target)
                total = total + weight * hard
                logs[name] = hard.item()
    if out.addr_lip is not None and w.usage > 0:
        usage = usage_loss(out.addr_lip)
        total = total + w.usage * usage
        logs["usage"] = usage.item()
    if out.addr_lip is not None and w.sharpness > 0:
        sharp = sharpness_loss(out.addr_lip)
        total = total + w.sharpness * sharp
        logs["sharpness"] = sharp.item()
    agreement = address_agreement(out)
    if agreement is not None:
        logs["agree"] = agreement
    logs["total"] = total.item()
    return total, logs
