"""Visual-quality discriminator on the lower half of frames (docs/PAPER.md "Networks").

Wav2Lip-style: unnormalised convs with LeakyReLU, stride 2 until the mouth map is 1 row high.
Returns logits; lipmem_core.model.losses applies the BCE.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from lipmem_core.config import ModelConfig
from lipmem_core.model.encoders import n_halvings
from lipmem_core.model.generator import frames_first
from lipmem_core.model.syncnet import lower_half


class QualityDiscriminator(nn.Module):
    """Lower halves of frames (B, 3, T, H, W) -> one realness logit per frame (B * T,)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        n_halvings(cfg.img_size)
        h = cfg.img_size // 2
        layers: list[nn.Module] = [nn.Conv2d(3, cfg.disc_width, 7, 1, 3), nn.LeakyReLU(0.2)]
        c = cfg.disc_width
        for i in range(round(math.log2(h))):  # H/2 rows -> 1 row
            c_out = min(cfg.disc_width * 2 ** (i + 1), 8 * cfg.disc_width)
            layers += [nn.Conv2d(c, c_out, 4, 2, 1), nn.LeakyReLU(0.2)]
            c = c_out
        layers.append(nn.Conv2d(c, 1, 1))  # (N, 1, 1, 2): one logit per remaining cell
        self.net = nn.Sequential(*layers)

    def forward(self, frames: Tensor) -> Tensor:
        """(B, 3, T, H, W) in [-1, 1] -> logits (B * T,)."""
        x = lower_half(frames_first(frames))  # (N, 3, H/2, W)
        return self.net(x).flatten(1).mean(1)  # (N,)
