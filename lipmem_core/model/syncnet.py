"""SyncNet expert (docs/PAPER.md "Networks"): lower-half 5-frame clip vs its 0.2 s mel window.

Trained first with a cosine-similarity binary cross-entropy, then frozen and used by L_av and by
the LSE-D / LSE-C metrics (lipmem_core.evaluation.metrics). Both embeddings pass a ReLU before L2
normalisation (as Wav2Lip's expert), so their cosine similarity lies in [0, 1] and is read as
the probability that clip and audio are in sync.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lipmem_core.config import ModelConfig
from lipmem_core.model.encoders import AudioEncoder, ConvBlock, half_pyramid_to_vector, n_halvings

CLIP_FRAMES = 5  # frames per sync clip (0.2 s at 25 fps)


def lower_half(frames: Tensor) -> Tensor:
    """The mouth region: (..., H, W) -> (..., H/2, W)."""
    return frames[..., frames.shape[-2] // 2 :, :]


class SyncNet(nn.Module):
    """Video branch: (B, 3, 5, H/2, W) -> (B, E); audio branch: (B, 1, 80, 16) -> (B, E).

    E = cfg.sync_dim. The 5 frames are stacked on channels (15 inputs) as in Wav2Lip's expert.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        n_halvings(cfg.img_size)
        w, h = cfg.sync_width, cfg.img_size // 2
        self.face = nn.Sequential(
            ConvBlock(3 * CLIP_FRAMES, w, 7, 1, 3),
            half_pyramid_to_vector(w, w, cfg.sync_dim, h, cfg.img_size),
            ConvBlock(cfg.sync_dim, cfg.sync_dim, 1, 1, 0),
        )
        self.audio = AudioEncoder(w, cfg.sync_dim)

    def embed_video(self, clip: Tensor) -> Tensor:
        """Lower-half clip (B, 3, 5, H/2, W) -> unit-norm, non-negative embedding (B, E)."""
        b, c, t, h, w = clip.shape
        x = clip.permute(0, 2, 1, 3, 4).reshape(b, c * t, h, w)  # (B, 15, H/2, W), frame-major
        return F.normalize(self.face(x).flatten(1), dim=1)  # (B, E)

    def embed_audio(self, mel: Tensor) -> Tensor:
        """Clip mel window (B, 1, 80, 16) -> unit-norm, non-negative embedding (B, E)."""
        return F.normalize(self.audio(mel), dim=1)  # (B, E)

    def forward(self, clip: Tensor, mel: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 3, 5, H/2, W), (B, 1, 80, 16) -> video and audio embeddings, (B, E) each."""
        return self.embed_video(clip), self.embed_audio(mel)


def sync_probability(video_emb: Tensor, audio_emb: Tensor) -> Tensor:
    """Cosine similarity of unit embeddings, in [0, 1]: (B, E), (B, E) -> (B,)."""
    return (video_emb * audio_emb).sum(-1).clamp(1e-7, 1 - 1e-7)  # (B,)


def cosine_bce(video_emb: Tensor, audio_emb: Tensor, in_sync: Tensor) -> Tensor:
    """Cosine-similarity BCE: BCE(cos(v, a), y), y = 1 for in-sync pairs, 0 for shifted ones."""
    p = sync_probability(video_emb, audio_emb)  # (B,)
    # BCE in float32: under bf16 autocast 1 - 1e-7 rounds to 1 and log(0) would follow.
    return F.binary_cross_entropy(p.float(), in_sync.to(torch.float32).expand_as(p))
