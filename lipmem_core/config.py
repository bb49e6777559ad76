"""Configuration dataclasses: the model (with `paper` and `cpu` presets) and training.

A model's constructor takes exactly one `ModelConfig`; checkpoints store it as JSON, so a
checkpoint rebuilds its model with no outside knowledge (nanoGPT's habit).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Timing constants shared by audio, data and video code (docs/PAPER.md "Inputs").
SAMPLE_RATE = 16_000  # Hz
FPS = 25  # video frames per second
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640 audio samples per video frame
MEL_HOP = 200  # samples; 80 mel frames per second
MEL_FRAMES_PER_VIDEO_FRAME = SAMPLES_PER_FRAME / MEL_HOP  # 3.2


class _Presets:
    """`paper` and `cpu` presets by name, and a JSON-ready dict, for the config dataclasses."""

    @classmethod
    def preset(cls, name: str):
        presets = {"paper": cls.paper, "cpu": cls.cpu}  # type: ignore[attr-defined]
        if name not in presets:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(presets)}")
        return presets[name]()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


@dataclass
class ModelConfig(_Presets):
    """Everything that determines the generator's architecture.

    Symbols follow docs/PAPER.md: S slots of key memory K (audio) and value memory V (lips),
    feature size `dim`, addressing inverse temperature kappa, T frames per window.
    """

    img_size: int = 128  # H = W of face crops
    n_frames: int = 5  # T, target frames per window
    mel_bins: int = 80
    mel_window: int = 16  # mel frames per video frame (0.2 s)
    dim: int = 512  # size of f_aud, f_lip, keys and values
    n_slots: int = 96  # S
    kappa: float = 16.0
    use_memory: bool = True  # False = the no-memory ablation: decoder gets f_aud alone
    # For use_memory=False: keep the lip encoder and a lip path that decodes Linear(f_lip)
    # directly, so that the ablation trains with the memory model's losses (L_vv needs a
    # trained lip encoder) and its two-path decoding; only the memory is missing. Inference is
    # unchanged (the audio path).
    ablation_lip_path: bool = False
    fusion_dropout: float = 0.5
    # True: the lip-addressed path decodes Linear(concat[f_aud, r_lip]) like the audio path.
    # False (a deviation, docs/TRAINING.md): it decodes from r_lip alone (f_aud zeroed), so the
    # lips must pass through the memory and the lip encoder has to carry the mouth shape.
    lip_path_audio: bool = True
    # Not in the paper, with lip_path_audio=False only: the share of lip-path frames that still
    # see f_aud in training (drawn per frame), so the decoder learns to correct a recall with the
    # audio as it must at inference, while the other frames still force the lips through the
    # memory. 0 = the lip path never hears the audio. In eval mode the lip path hears none.
    lip_path_audio_share: float = 0.0
    # Not in the paper: q and v minus their running means before the cosine (model/memory.py).
    centre_queries: bool = False
    # Not in the paper: the audio query reads f_aud with its gradient stopped, so the memory's
    # addressing (L_align, the slot terms, the image losses through r_aud) trains Linear_q, K and
    # V but never bends f_aud, which learns from its own branch of the fusion as the ablation's.
    audio_query_detached: bool = False
    # Not in the paper: in training, the recall r_aud is zeroed before the fusion on this share
    # of audio-path frames (drawn per frame), so the decoder also learns to draw the mouth from
    # f_aud alone and does not rest everything on a recall that a voice unlike the training
    # voices addresses worse. In eval mode every frame keeps its recall.
    recall_drop: float = 0.0
    # Not in the paper: f_aud of each frame also hears its neighbours' windows, c frames either
    # side (a residual temporal conv over the frames of a window, zero-initialised, edges
    # replicated; c = 2 spans 0.36 s of audio instead of 0.2 s). A phone's mouth shape depends
    # on the phones around it (coarticulation), which one 0.2 s window only partly holds.
    audio_context: int = 0
    face_widths: tuple[int, ...] = (32, 64, 128, 256, 512, 512)  # face maps, stem resolution .. 4 x 4
    stem_stride: int = 1  # 1: face features from full resolution; 2: from H/2 (no full-res convs)
    enc_res: int = 1  # residual convs per face-encoder stage
    dec_res: int = 1  # residual convs per decoder stage
    # With stem_stride=2 no skip is at full resolution: the decoder must redraw every pixel of
    # the upper face, which the identity input shows exactly, from H/2 features. input_skip adds
    # the paper's full-resolution skip back cheaply: two 3x3 convs over [decoded frame, input]
    # at H x W add a residual correction before the Tanh (~0.03 GFLOP per frame).
    input_skip: bool = False
    # Not in the paper: the fused audio-lip feature also modulates every decoder stage
    # (FiLM: per-channel scale and shift, zero-initialised), not only the 1 x 1 bottleneck, so
    # the mouth does not have to outvote the reference face's skips at every resolution.
    cond_every_stage: bool = False
    # Not in the paper, SynthTalk only: a linear read-out of the 7 exact mouth parameters from
    # the decoder input of each path (GeneratorOutput.mouth), trained by LossWeights.mouth_params,
    # so the feature that drives the decoder must carry the mouth's shape. Unused at inference.
    mouth_readout: bool = False
    # Not in the paper, SynthTalk only, memory only: a second linear read-out of the 7 mouth
    # parameters, from the memory's recall (A_aud @ V and A_lip @ V; GeneratorOutput.mouth_recall),
    # trained by LossWeights.recall_mouth, so the value slots must hold mouth shapes and both
    # addressings must pick them by shape. Unused at inference.
    recall_readout: bool = False
    # Not in the paper: the lip encoder standardises each lip clip per colour channel (mean 0,
    # std 1 over its 5 frames' lower halves) before the Conv3d, so skin and lip colour, which
    # differ between speakers, weigh less in the lip query and in the slot A_lip picks.
    lip_input_norm: bool = False
    audio_width: int = 32  # first conv width of the audio encoder
    lip_width: int = 64  # Conv3d width of the lip encoder
    disc_width: int = 32  # first conv width of the quality discriminator
    sync_dim: int = 512  # SyncNet embedding size
    sync_width: int = 32  # first conv width of the SyncNet encoders

    @classmethod
    def paper(cls) -> ModelConfig:
        """SyncTalkFace as published: 128 px, 96 slots, 512-d, kappa 16."""
        return cls()

    @classmethod
    def cpu(cls) -> ModelConfig:
        """Small enough to train on a 2-core CPU; same components and memory size.

        Face features start at H/2 (stem_stride=2, PixelShuffle output) with half the paper's
        per-resolution widths: 0.40 GFLOP per generated frame at inference and 0.74 for a
        training forward of both paths, 4x less than full-resolution features at these widths
        (benchmarks/train_speed.py prints the figures).
        """
        return cls(
            dim=256,
            face_widths=(16, 32, 64, 128, 256),
            stem_stride=2,
            audio_width=16,
            lip_width=16,
            disc_width=16,
            sync_dim=256,
            sync_width=16,
            lip_path_audio=False,
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"unknown ModelConfig fields {unknown}: checkpoint from a newer LipMem?")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kwargs)


@dataclass
class LossWeights:
    """total = 10 L1 + 0.2 L_av + 0.2 L_vv + 0.2 L_gan + 0.2 (L_align + L_store) (docs/PAPER.md)."""

    l1: float = 10.0
    av_sync: float = 0.2
    vv_sync: float = 0.2
    gan: float = 0.2
    memory: float = 0.2  # applies to L_align + L_store
    # Not in the paper: added to `memory` for L_align alone (`--loss align=W`). L_align is the
    # only term that teaches the audio side to address the slots the lips wrote.
    align: float = 0.0
    align_hard: float = 0.0  # not in the paper: memory.hard_alignment_loss, A_aud -> argmax A_lip
    # Not in the paper: memory.hard_alignment_loss the other way, A_lip -> argmax A_aud: the lips
    # learn to address the slot their audio picks (`--loss align_hard_lip=W`).
    align_hard_lip: float = 0.0
    usage: float = 0.0  # not in the paper: memory.usage_loss of A_lip (`--loss usage=W`)
    sharpness: float = 0.0  # not in the paper: memory.sharpness_loss of A_lip (`--loss sharpness=W`)
    # Not in the paper: an extra L1 on the lower half of the frame (where the mouth is), on
    # both paths. The full-frame L1 averages the mouth with the upper face that the identity
    # input already shows, so a mouth held still costs little (docs/TRAINING.md).
    l1_lower: float = 0.0
    # Not in the paper: an extra L1 on the mouth box (evaluation.metrics.MOUTH_BOX, the region
    # the oracle reads), both paths: the lips, teeth and tongue are a third of the lower half.
    l1_mouth: float = 0.0
    # Not in the paper, SynthTalk only (needs mouth.csv, so off for real corpora): L1 between
    # the read-out of ModelConfig.mouth_readout and the targets' exact mouth parameters, both paths.
    mouth_params: float = 0.0
    # Not in the paper, SynthTalk only, memory only: L1 between the read-out of
    # ModelConfig.recall_readout (the recall of each path) and the exact mouth parameters.
    recall_mouth: float = 0.0
    # Not in the paper, memory only: model.consensus.SlotConsensus, A_aud and A_lip both learn
    # one balanced assignment of frames to slots computed from the two together; it starts at
    # TrainConfig.memory_init_step, as the hard-alignment terms.
    consensus: float = 0.0
    # Not in the paper, SynthTalk only, memory only: model.mouth_slots.MouthSlots, the slots are
    # k-means groups of the exact mouth parameters (fitted at TrainConfig.memory_init_step, which
    # it needs) and A_aud and A_lip both learn each frame's group.
    slot_mouth: float = 0.0
    # Not in the paper, SynthTalk only, memory only (needs slot_mouth): added to slot_mouth for
    # the lip side's CE(A_lip, s*) alone. The audio side's top slot is a frame's mouth-shape group
    # about as often as one audio window allows; the lips, which see the mouth, find it less often.
    slot_mouth_lip: float = 0.0
    # Not in the paper, SynthTalk only: model.mouth_reader.DrawnMouthReader, a small CNN trained
    # alongside on the real target frames to read their exact mouth parameters, judges the drawn
    # frames of both paths (L1 against the exact parameters), so the decoder must draw the mouth
    # its input carries.
    drawn_mouth: float = 0.0
    # Not in the paper, SynthTalk only, memory only (needs slot_mouth): each step every window's
    # identity decodes one random slot alone, as the slot gallery does (f_aud of silence), and the
    # drawn-mouth reader judges the frame against that slot's mouth-shape group, so V_s must hold
    # a mouth the decoder draws.
    slot_drawn_mouth: float = 0.0


@dataclass
class TrainConfig(_Presets):
    """Optimisation settings of both training CLIs (docs/PAPER.md "Losses"; docs/TRAINING.md).

    `paper` is the published recipe (batch 40, SyncNet batch 256); `cpu` fits a 2-core CPU.
    The GAN term and the discriminator start at `gan_start_step` (a warm-up, as Wav2Lip's
    delayed sync term: the discriminator only judges once the generator draws faces).
    """

    batch_size: int = 40
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)
    disc_lr: float = 5e-4
    loss: LossWeights = field(default_factory=LossWeights)
    max_steps: int = 100_000
    val_every: int = 1000
    ckpt_every: int = 500
    seed: int = 0
    gan_start_step: int = 0
    sync_batch_size: int = 256
    sync_lr: float = 1e-4
    sync_max_steps: int = 100_000
    sync_min_offset: int = 3  # negatives: audio at least this many frames away
    val_windows: int = 256  # fixed validation subset (windows of the val split)
    log_every: int = 10
    workers: int = 2  # data-loader processes per training process
    augment: bool = True  # audio augmentation (data/augment.py)
    # Not in the paper: re-seed memory slots that A_lip stopped using (memory.DeadSlotReseeder;
    # docs/TRAINING.md "Deviations"). Off in `paper`, on in `cpu`.
    reseed_dead_slots: bool = False
    # Not in the paper: learning rate of the key and value memories K, V as a multiple of `lr`.
    # With Adam at 1e-4 a memory coordinate moves about 1e-4 per step, so in a few thousand
    # steps slots barely leave their N(0, 0.5) initialisation (docs/TRAINING.md).
    memory_lr_scale: float = 1.0
    # Not in the paper: at this step (0 = never) K and V are set from data: cosine k-means of
    # the lip queries of `memory_init_windows` fixed training windows (memory.init_from_data).
    memory_init_step: int = 0
    memory_init_windows: int = 512
    memory_init_by: str = "lip"  # which queries the k-means clusters: "lip" or "audio"
    # Frames of recent batches over which LossWeights.consensus balances its slot codes (more
    # than the S slots: a batch alone would force its frames onto different slots).
    consensus_queue: int = 1024
    consensus_eps: float = 1.0  # temperature of those codes (model.consensus.SlotConsensus)
    # Not in the paper: the share of training windows whose reference frames have their lower
    # half zeroed too (data.datasets.GeneratorWindows), so the mouth cannot be copied from them.
    ref_mouth_drop: float = 0.0
    # Not in the paper, SynthTalk only: per training window, this many more frames of the same
    # clip whose audio alone trains the audio path's mouth read-outs (and, with slot_mouth,
    # A_aud), without decoding them. A window's 5 frames give the audio encoder 40 frames a
    # step; one 0.2 s window alone predicts the mouth far better after 10x more
    # (benchmarks/audio_mouth_ceiling.py), and those frames cost no decoder pass.
    audio_frames: int = 0
    # Not in the paper, SynthTalk only: frames of pause appended to every training clip (the
    # last frame held, room tone in the audio; data.datasets.ClipStore). SynthTalk's pauses last
    # 2-3 frames, so without it a fully silent 0.2 s window, as at the start of a recording, is
    # never trained and the mouth a pause draws is left to chance.
    pause_frames: int = 0
    # Not in the paper: the generator's and discriminator's learning rates fall along a half
    # cosine from 1x to 0 over the last this-many of `max_steps` (0 = constant, as the paper).
    # A constant rate ends a run wherever Adam's noise leaves the weights. A run stopped by
    # --minutes never decays. Probe (docs/TRAINING.md): it lowered val L1, not the mouth error.
    lr_decay_steps: int = 0
    # Not in the paper: only the face encoder and the decoder train; everything that makes the
    # decoder input (audio encoder and context, lip encoder, memory or the ablation's fusion,
    # read-outs) keeps its weights. For a last stage of a finished run: the features carry the
    # mouth better than the decoder draws it (docs/TRAINING.md, "Where the mouth is lost"), and a
    # stage that trains everything also moves what the audio side learned.
    freeze_features: bool = False
    # Not in the paper, the converse: the face encoder and the decoder keep their weights and
    # only what makes the decoder input trains. A last stage that trains the renderer on the
    # mouth box teaches it to draw the memory model's jaw from the recall alone, which a real
    # voice addresses worse (docs/TRAINING.md, "A recall dropped in training").
    freeze_renderer: bool = False

    def __post_init__(self) -> None:
        if self.freeze_features and self.freeze_renderer:
            raise ValueError("freeze_features and freeze_renderer together would train nothing: choose one")
        if self.memory_init_by not in ("lip", "audio"):
            raise ValueError(f"memory_init_by={self.memory_init_by!r}: choose 'lip' or 'audio'")
        if self.audio_frames < 0:
            raise ValueError(f"audio_frames={self.audio_frames}: a number of frames, 0 for none")
        if self.pause_frames < 0:
            raise ValueError(f"pause_frames={self.pause_frames}: a number of frames, 0 for none")
        if self.lr_decay_steps < 0:
            raise ValueError(f"lr_decay_steps={self.lr_decay_steps}: a number of steps, 0 for none")

    @classmethod
    def paper(cls) -> TrainConfig:
        return cls()

    @classmethod
    def cpu(cls) -> TrainConfig:
        """Small batches and frequent checkpoints for a 2-core machine."""
        return cls(
            batch_size=8,
            sync_batch_size=32,
            max_steps=20_000,
            sync_max_steps=6_000,
            val_every=500,
            ckpt_every=250,
            gan_start_step=2_000,
            val_windows=64,
            workers=1,
            reseed_dead_slots=True,
        )


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested dict as dotted keys: {"loss": {"l1": 10}} -> {"loss.l1": 10} (empty dicts kept)."""
    flat: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def paper_deviations(
    model_config: dict[str, Any], train_config: dict[str, Any], steps: int | None = None
) -> list[str]:
    """What a checkpoint's recipe does that SyncTalkFace does not, one phrase each.

    `model_config` / `train_config` are the dicts a checkpoint's config.json stores, `steps`
    the steps it was trained for (its metadata's; then a GAN that starts at or after the last
    step is named as no GAN). Sizes (widths, batch, steps) are not listed: only changes of
    mechanism and of loss or optimiser (docs/TRAINING.md explains each).
    """
    m, t = model_config, train_config
    loss = t.get("loss") or {}
    memory = bool(m.get("use_memory", True))
    paper = TrainConfig.paper()
    lr, scale = float(t.get("lr") or paper.lr), float(t.get("memory_lr_scale") or 1.0)
    init_step = int(t.get("memory_init_step") or 0)
    usage, sharp = float(loss.get("usage") or 0.0), float(loss.get("sharpness") or 0.0)
    align, lower = float(loss.get("align") or 0.0), float(loss.get("l1_lower") or 0.0)
    mouth_box, mouth_params = float(loss.get("l1_mouth") or 0.0), float(loss.get("mouth_params") or 0.0)
    recall_mouth, consensus = float(loss.get("recall_mouth") or 0.0), float(loss.get("consensus") or 0.0)
    consensus_eps = float(t.get("consensus_eps") or 1.0)
    slot_mouth = float(loss.get("slot_mouth") or 0.0)
    drawn_mouth = float(loss.get("drawn_mouth") or 0.0)
    slot_drawn = float(loss.get("slot_drawn_mouth") or 0.0)
    slot_lip = float(loss.get("slot_mouth_lip") or 0.0)
    ref_drop = float(t.get("ref_mouth_drop") or 0.0)
    audio_frames = int(t.get("audio_frames") or 0)
    pause_frames = int(t.get("pause_frames") or 0)
    frozen = bool(t.get("freeze_features"))
    renderer_frozen = bool(t.get("freeze_renderer"))
    share = float(m.get("lip_path_audio_share") or 0.0)
    recall_drop = float(m.get("recall_drop") or 0.0)
    context = int(m.get("audio_context") or 0)
    hard, hard_lip = float(loss.get("align_hard") or 0.0), float(loss.get("align_hard_lip") or 0.0)
    gan_weight, gan_start = float(loss.get("gan", paper.loss.gan)), int(t.get("gan_start_step") or 0)
    gan_never = steps is not None and gan_start >= steps  # the run ended before the GAN's start
    # mouth-shape slots group the initial frames by mouth, whatever memory_init_by says
    init_groups = (
        "each mouth-shape group's mean queries"
        if slot_mouth > 0
        else f"k-means of {t.get('memory_init_by') or 'lip'} queries"
    )
    checks: list[tuple[bool, str]] = [
        (
            memory and m.get("lip_path_audio") is False and not share,
            "the lip-addressed path decodes from the recall alone",
        ),
        (
            memory and m.get("lip_path_audio") is False and share > 0,
            f"the lip-addressed path decodes from the recall alone on {1 - share:.0%} of training frames",
        ),
        (bool(m.get("input_skip")), "a full-resolution input skip in the decoder"),
        (context > 0, f"f_aud of each frame also hears the {context} frames either side (a temporal conv)"),
        (bool(m.get("cond_every_stage")), "the fused feature modulates every decoder stage (FiLM)"),
        (bool(m.get("lip_input_norm")), "lip clips standardised per colour channel before the lip encoder"),
        (
            mouth_params > 0,
            f"a read-out of SynthTalk's exact mouth parameters from the decoder input (weight {mouth_params:g}; "
            "SynthTalk only, off for real corpora)",
        ),
        (
            memory and recall_mouth > 0,
            f"a read-out of SynthTalk's exact mouth parameters from the memory's recall (weight {recall_mouth:g}; "
            "SynthTalk only, off for real corpora)",
        ),
        (
            audio_frames > 0 and (mouth_params > 0 or (memory and (recall_mouth > 0 or slot_mouth > 0))),
            f"{audio_frames} more frames per window train the audio path's mouth read-outs from audio alone "
            "(SynthTalk only, off for real corpora)",
        ),
        (
            memory and slot_mouth > 0,
            f"slots as k-means groups of SynthTalk's exact mouth parameters, both addressings trained towards "
            f"each frame's group (weight {slot_mouth:g}; SynthTalk only, off for real corpora)",
        ),
        (
            memory and slot_mouth > 0 and slot_lip > 0,
            f"the lip side's mouth-shape group term weighted {slot_mouth + slot_lip:g} "
            "(SynthTalk only, off for real corpora)",
        ),
        (
            drawn_mouth > 0,
            f"a reader of SynthTalk's exact mouth parameters, trained on real frames, judges the drawn mouths "
            f"(weight {drawn_mouth:g}; SynthTalk only, off for real corpora)",
        ),
        (
            memory and slot_mouth > 0 and slot_drawn > 0,
            f"single slots decoded alone and judged by a mouth reader against their mouth-shape group "
            f"(weight {slot_drawn:g}; SynthTalk only, off for real corpora)",
        ),
        (memory and bool(m.get("centre_queries")), "queries centred before the cosine addressing"),
        (
            memory and bool(m.get("audio_query_detached")),
            "the audio query reads f_aud with its gradient stopped (addressing never trains the audio encoder)",
        ),
        (
            memory and recall_drop > 0,
            f"the audio path's recall zeroed on {recall_drop:.0%} of training frames",
        ),
        (not memory and bool(m.get("ablation_lip_path")), "a lip path without memory (so L_vv applies)"),
        (memory and t.get("reseed_dead_slots") is True, "dead memory slots re-seeded in training"),
        (memory and init_step > 0, f"K and V set from data ({init_groups}) at step {init_step}"),
        (memory and scale != 1.0, f"K and V trained at {scale:g}x the learning rate"),
        (lr != paper.lr, f"learning rate {lr:g} (paper {paper.lr:g})"),
        (ref_drop > 0, f"references' lower half hidden on {ref_drop:.0%} of training windows"),
        (memory and usage > 0, f"a slot-usage loss (weight {usage:g})"),
        (memory and sharp > 0, f"an address-sharpness loss (weight {sharp:g})"),
        (memory and align > 0, f"L_align weighted {align + float(loss.get('memory') or 0.0):g}"),
        (memory and hard > 0, f"a cross-entropy of A_aud against argmax A_lip (weight {hard:g})"),
        (memory and hard_lip > 0, f"a cross-entropy of A_lip against argmax A_aud (weight {hard_lip:g})"),
        (
            memory and consensus > 0,
            f"A_aud and A_lip trained towards shared balanced slot codes (weight {consensus:g}, "
            f"temperature {consensus_eps:g})",
        ),
        (
            pause_frames > 0,
            f"{pause_frames} frames of pause (last frame held, room tone) appended to every training clip "
            "(SynthTalk only, off for real corpora)",
        ),
        (
            frozen,
            "only the face encoder and the decoder train (the features that make the decoder input are frozen)",
        ),
        (
            renderer_frozen,
            "the face encoder and the decoder are frozen (only the features that make the decoder input train)",
        ),
        (lower > 0, f"an extra lower-half L1 (weight {lower:g})"),
        (mouth_box > 0, f"an extra mouth-box L1 (weight {mouth_box:g})"),
        (gan_weight == 0, "no GAN (L_gan weight 0)"),
        (
            gan_weight > 0 and gan_never,
            f"no GAN (L_gan would start at step {gan_start}; training ended at step {steps})",
        ),
        (
            gan_weight > 0 and not gan_never and gan_start > 0,
            f"L_gan and the discriminator start at step {gan_start}",
        ),
    ]
    return [text for flag, text in checks if flag]
