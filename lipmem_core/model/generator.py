"""LipMemGenerator: SyncTalkFace's generator (face/audio/lip encoders, Audio-Lip Memory, U-Net).

Shapes (docs/ARCHITECTURE.md "Model I/O"): face (B, 6, T, H, W), mel (B, T, 1, 80, 16),
lips (B, T, 3, 5, H, W). Frames are decoded independently (N = B * T); T only groups them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lipmem_core.audio import SILENCE_VALUE
from lipmem_core.config import ModelConfig
from lipmem_core.data.synth.mouth import MOUTH_PARAMS
from lipmem_core.model.decoder import UNetDecoder
from lipmem_core.model.encoders import AudioEncoder, FaceEncoder, LipEncoder
from lipmem_core.model.memory import AudioLipMemory


@dataclass
class AudioReadout:
    """The audio path up to the decoder input for frames that are not decoded (TrainConfig.audio_frames)."""

    mouth: Tensor | None  # (B, A, 7) mouth parameters read from the decoder input (cfg.mouth_readout)
    mouth_recall: Tensor | None = None  # (B, A, 7) read from A_aud @ V (cfg.recall_readout)
    addr_aud: Tensor | None = None  # (B, A, S) A_aud; None without memory


@dataclass
class GeneratorOutput:
    """What one generator pass returns; analysis reads addressing straight from here.

    Lip-path fields (and the memory losses) are None without lips; every memory field is None
    when the model has no memory (use_memory=False).
    """

    frames: Tensor  # (B, 3, T, H, W) audio-addressed path (the inference path), in [-1, 1]
    f_aud: Tensor  # (B, T, D) audio feature
    frames_lip: Tensor | None = None  # (B, 3, T, H, W) lip-addressed path
    addr_aud: Tensor | None = None  # (B, T, S) A_aud
    addr_lip: Tensor | None = None  # (B, T, S) A_lip
    recall_aud: Tensor | None = None  # (B, T, D) A_aud @ V
    recall_lip: Tensor | None = None  # (B, T, D) A_lip @ V
    lip_query: Tensor | None = None  # (B, T, D) v = Linear_v(f_lip)
    audio_query: Tensor | None = None  # (B, T, D) q = Linear_q(f_aud)
    loss_store: Tensor | None = None  # scalar L_store
    loss_align: Tensor | None = None  # scalar L_align
    mouth: Tensor | None = None  # (B, T, 7) mouth parameters read from the audio path's decoder input
    mouth_lip: Tensor | None = None  # (B, T, 7) the same from the lip path's (cfg.mouth_readout)
    mouth_recall: Tensor | None = None  # (B, T, 7) mouth parameters read from recall_aud (cfg.recall_readout)
    mouth_recall_lip: Tensor | None = None  # (B, T, 7) the same from recall_lip
    audio_only: AudioReadout | None = None  # for forward(..., audio_mel=) only


def frames_first(x: Tensor) -> Tensor:
    """(B, C, T, H, W) -> (B * T, C, H, W)."""
    b, c, t, h, w = x.shape
    return x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)


def frames_back(x: Tensor, b: int) -> Tensor:
    """(B * T, C, H, W) -> (B, C, T, H, W)."""
    n, c, h, w = x.shape
    return x.reshape(b, n // b, c, h, w).permute(0, 2, 1, 3, 4)


def to_channels_last(module: nn.Module) -> nn.Module:
    """Store every 4-D weight channels-last (NHWC), in place; returns `module`.

    oneDNN convolutions on CPU run faster on NHWC, and a conv with an NHWC weight produces NHWC
    output, so converting the weights switches the whole 2D network. Module.to(memory_format=)
    cannot be used: it rejects the lip encoder's 5-D Conv3d weight.
    """
    for p in module.parameters():
        if p.dim() == 4:
            p.data = p.data.contiguous(memory_format=torch.channels_last)
    return module


def _read_mouth(head: nn.Module | None, x: Tensor | None, b: int) -> Tensor | None:
    """A mouth read-out (mouth_readout or recall_readout): (N, D) -> (B, T, 7); None without the
    head or without the feature (no lip path)."""
    return None if head is None or x is None else head(x).reshape(b, -1, len(MOUTH_PARAMS))


class LipMemGenerator(nn.Module):
    """Generator of SyncTalkFace, built from one ModelConfig.

    use_memory=False is the no-memory ablation: the decoder gets Linear(Dropout(f_aud)) and the
    model has no memory. Without `ablation_lip_path` it has no lip encoder either (nothing would
    train it); with it, a lip path decodes Linear(Dropout(Linear_v(f_lip))) through the same
    fusion, so the lip encoder trains as in the memory model and L_vv can be applied.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.face_encoder = FaceEncoder(cfg)
        self.audio_encoder = AudioEncoder(cfg.audio_width, cfg.dim)
        self.audio_context: nn.Conv1d | None = None
        if cfg.audio_context:
            c = cfg.audio_context
            self.audio_context = nn.Conv1d(cfg.dim, cfg.dim, 2 * c + 1, padding=c, padding_mode="replicate")
            # zero-initialised: the residual mix starts as the identity, so a model with context
            # starts where one without it does and learns how much of the neighbours to hear
            nn.init.zeros_(self.audio_context.weight)
            nn.init.zeros_(self.audio_context.bias)
        self.decoder = UNetDecoder(cfg)
        self.lip_encoder: LipEncoder | None = None
        self.memory: AudioLipMemory | None = None
        self.fusion: nn.Module | None = None
        self.lip_proj: nn.Module | None = None  # Linear_v of the ablation's lip path
        # training-only read-out of SynthTalk's 7 mouth parameters from the decoder input
        self.mouth_readout = nn.Linear(cfg.dim, len(MOUTH_PARAMS)) if cfg.mouth_readout else None
        # and from the memory's recall, so that the value slots themselves hold mouth shapes
        self.recall_readout = (
            nn.Linear(cfg.dim, len(MOUTH_PARAMS)) if cfg.recall_readout and cfg.use_memory else None
        )
        if cfg.use_memory:
            self.lip_encoder = LipEncoder(cfg)
            self.memory = AudioLipMemory(
                cfg.dim,
                cfg.n_slots,
                cfg.kappa,
                cfg.fusion_dropout,
                cfg.lip_path_audio,
                cfg.centre_queries,
                cfg.lip_path_audio_share,
                cfg.audio_query_detached,
                cfg.recall_drop,
            )
        else:
            self.fusion = nn.Sequential(nn.Dropout(cfg.fusion_dropout), nn.Linear(cfg.dim, cfg.dim))
            if cfg.ablation_lip_path:
                self.lip_encoder = LipEncoder(cfg)
                self.lip_proj = nn.Linear(cfg.dim, cfg.dim)

    def encode_audio(self, mel: Tensor) -> Tensor:
        """f_aud: (B, T, 1, 80, 16) -> (B, T, D); the T frames are consecutive.

        With cfg.audio_context = c, f_aud of frame t also hears the windows of frames t-c..t+c
        of the same row (the row's first and last frame stand in beyond its ends).
        """
        b, t = mel.shape[:2]
        f_aud = self.audio_encoder(mel.flatten(0, 1)).reshape(b, t, self.cfg.dim)  # (B, T, D)
        if self.audio_context is None:
            return f_aud
        return f_aud + self.audio_context(f_aud.transpose(1, 2)).transpose(1, 2)  # (B, T, D)

    def read_audio(self, mel: Tensor) -> AudioReadout:
        """The audio path's read-outs without decoding: mel (B, A, 1, 80, 16) -> AudioReadout (B, A, .)."""
        b = mel.shape[0]
        f_aud = self.encode_audio(mel).flatten(0, 1)  # (N, D)
        if self.memory is None:
            assert self.fusion is not None
            return AudioReadout(mouth=_read_mouth(self.mouth_readout, self.fusion(f_aud), b))
        mem = self.memory(f_aud)
        return AudioReadout(
            mouth=_read_mouth(self.mouth_readout, mem.fused_aud, b),
            mouth_recall=_read_mouth(self.recall_readout, mem.recall_aud, b),
            addr_aud=mem.addr_aud.reshape(b, -1, mem.addr_aud.shape[-1]),
        )

    def forward(
        self, face: Tensor, mel: Tensor, lips: Tensor | None = None, audio_mel: Tensor | None = None
    ) -> GeneratorOutput:
        """face (B, 6, T, H, W), mel (B, T, 1, 80, 16), lips (B, T, 3, 5, H, W) | None.

        With lips (training) both the audio-addressed and the lip-addressed paths are decoded.
        audio_mel (B, A, 1, 80, 16) | None: more frames whose audio path is read out, not decoded
        (`audio_only`); inside forward so that DDP sees one pass.
        """
        out = self._forward(face, mel, lips)
        if audio_mel is not None:
            out.audio_only = self.read_audio(audio_mel)
        return out

    def _forward(self, face: Tensor, mel: Tensor, lips: Tensor | None) -> GeneratorOutput:
        b, _, t = face.shape[:3]
        skips = self.face_encoder(frames_first(face))  # [(B*T, w0, H, W), ..., (B*T, D, 1, 1)]
        f_aud = self.encode_audio(mel)  # (B, T, D)
        f_aud_n = f_aud.reshape(b * t, -1)  # (N, D)
        f_lip = (
            None
            if lips is None or self.lip_encoder is None
            else self.lip_encoder(lips.reshape(b * t, *lips.shape[2:]))
        )  # (N, D)
        if self.memory is None:
            assert self.fusion is not None
            if f_lip is None or self.lip_proj is None:
                fused = self.fusion(f_aud_n)  # (N, D)
                frames = self.decoder(fused, skips)  # (N, 3, H, W)
                return GeneratorOutput(
                    frames=frames_back(frames, b),
                    f_aud=f_aud,
                    mouth=_read_mouth(self.mouth_readout, fused, b),
                )
            fused = self.fusion(torch.cat([f_aud_n, self.lip_proj(f_lip)]))  # (2N, D)
            frames, frames_lip = self.decoder(fused, [torch.cat([s, s]) for s in skips]).chunk(2)
            fused_aud, fused_lip = fused.chunk(2)
            return GeneratorOutput(
                frames=frames_back(frames, b), f_aud=f_aud, frames_lip=frames_back(frames_lip, b),
                mouth=_read_mouth(self.mouth_readout, fused_aud, b), mouth_lip=_read_mouth(self.mouth_readout, fused_lip, b),
            )  # fmt: skip

        mem = self.memory(f_aud_n, f_lip)

        def bt(x: Tensor | None) -> Tensor | None:
            return None if x is None else x.reshape(b, t, -1)  # (B, T, .)

        if mem.fused_lip is None:
            frames, frames_lip = self.decoder(mem.fused_aud, skips), None  # (N, 3, H, W)
        else:
            # Decode both paths as one batch: the face skips are shared, and one big batch runs
            # faster than two on CPU.
            both = self.decoder(
                torch.cat([mem.fused_aud, mem.fused_lip]), [torch.cat([s, s]) for s in skips]
            )  # (2N, 3, H, W)
            frames, frames_lip = both.chunk(2)  # (N, 3, H, W) each
        return GeneratorOutput(
            frames=frames_back(frames, b),
            f_aud=f_aud,
            frames_lip=None if frames_lip is None else frames_back(frames_lip, b),
            addr_aud=bt(mem.addr_aud),
            addr_lip=bt(mem.addr_lip),
            recall_aud=bt(mem.recall_aud),
            recall_lip=bt(mem.recall_lip),
            lip_query=bt(mem.lip_query),
            audio_query=bt(mem.audio_query),
            loss_store=mem.loss_store,
            loss_align=mem.loss_align,
            mouth=_read_mouth(self.mouth_readout, mem.fused_aud, b),
            mouth_lip=_read_mouth(self.mouth_readout, mem.fused_lip, b),
            mouth_recall=_read_mouth(self.recall_readout, mem.recall_aud, b),
            mouth_recall_lip=_read_mouth(self.recall_readout, mem.recall_lip, b),
        )

    def _require_memory(self) -> AudioLipMemory:
        if self.memory is None:
            raise ValueError("this generator was built with use_memory=False: it has no memory to address")
        return self.memory

    def address(self, mel: Tensor) -> Tensor:
        """A_aud only (audio encoder + addressing, no decoder).

        Windows of frames as the generator decodes them, (B, T, 1, 80, 16) -> (B, T, S); or the
        N consecutive frames of a clip from a window boundary, (N, 1, 80, 16) -> (N, S), grouped
        into windows of cfg.n_frames (the last one completed by repeating its last frame) as
        the inference pipeline groups them. Frames are independent unless cfg.audio_context
        mixes each frame's feature with its window's neighbours.
        """
        if mel.dim() == 4:
            n, t = mel.shape[0], self.cfg.n_frames
            padded = torch.cat([mel, mel[-1:].expand(-n % t, *mel.shape[1:])])  # (N', 1, 80, 16)
            windows = padded.reshape(len(padded) // t, t, *mel.shape[1:])  # (N' / T, T, 1, 80, 16)
            return self.address(windows).flatten(0, 1)[:n]  # (N, S)
        addr = self._require_memory().address_audio(self.encode_audio(mel).flatten(0, 1))  # (B * T, S)
        return addr.reshape(*mel.shape[:2], self.cfg.n_slots)  # (B, T, S)

    def address_lips(self, lips: Tensor) -> Tensor:
        """A_lip only (lip encoder + addressing): (N, 3, 5, H, W) -> (N, S)."""
        memory = self._require_memory()
        assert self.lip_encoder is not None
        return memory.address_lip(self.lip_encoder(lips))  # (N, S)

    def silent_mel(self, b: int, t: int) -> Tensor:
        """The mel windows of digital silence (all -4): (B, T, 1, 80, 16)."""
        p = next(self.parameters())
        return torch.full(
            (b, t, 1, self.cfg.mel_bins, self.cfg.mel_window), SILENCE_VALUE, device=p.device, dtype=p.dtype
        )

    def decode_with_address(self, face: Tensor, mel: Tensor | None, address: Tensor) -> Tensor:
        """Decode with given addressing weights instead of A_aud: -> frames (B, 3, T, H, W).

        face (B, 6, T, H, W), mel (B, T, 1, 80, 16) | None, address (B, T, S) (rows need not be
        normalised: a one-hot row decodes exactly one slot's value V_s). The fusion still needs
        f_aud; one rule: f_aud comes from `mel`, and mel=None means the silent window (all -4),
        so a slot gallery shows each slot's lips against a neutral, silent audio feature.
        """
        memory = self._require_memory()
        b, _, t = face.shape[:3]
        if mel is None:
            mel = self.silent_mel(b, t)
        f_aud = self.encode_audio(mel).reshape(b * t, -1)  # (N, D)
        recall = memory.recall(address.reshape(b * t, -1).to(f_aud.dtype))  # (N, D)
        frames = self.decoder(
            memory.fuse(f_aud, recall), self.face_encoder(frames_first(face))
        )  # (N, 3, H, W)
        return frames_back(frames, b)
