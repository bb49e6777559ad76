"""U-Net decoder (docs/PAPER.md "Networks"): fused audio-lip feature + face skips -> frame in [-1, 1]."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lipmem_core.config import ModelConfig
from lipmem_core.model.encoders import ConvBlock, face_levels, res_convs


class UpBlock(nn.Module):
    """ConvTranspose2d (x2 up) -> BatchNorm -> ReLU, then `n_res` residual convs."""

    def __init__(self, c_in: int, c_out: int, n_res: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.res = nn.Sequential(*res_convs(c_out, n_res))

    def forward(self, x: Tensor) -> Tensor:
        return self.res(torch.relu(self.bn(self.up(x))))


class UNetDecoder(nn.Module):
    """Transposed-conv pyramid 1 -> 4 -> 8 -> ... -> H with the face encoder's skips, Tanh out.

    At each resolution the face feature of that resolution is concatenated before going up, so
    identity and pose come from the skips and the mouth from the fused audio-lip feature.
    With stem_stride=2 the last map is H/2 and the output conv predicts 2 x 2 pixels per cell
    (a 3x3 conv to 12 channels + PixelShuffle, as ESPCN) instead of running convs at full size.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = face_levels(cfg)  # face widths at the stem resolution .. 4
        d = cfg.dim
        self.inp = ConvBlock(2 * d, d, 1, 1, 0)  # [fused, face bottom] at 1 x 1
        self.to4 = nn.Sequential(
            nn.ConvTranspose2d(d, w[-1], 4, 1, 0, bias=False), nn.BatchNorm2d(w[-1]), nn.ReLU()
        )
        # Going up from resolution i (channels: decoder w[i] + skip w[i]) to resolution i - 1.
        self.ups = nn.ModuleList(UpBlock(2 * w[i], w[i - 1], cfg.dec_res) for i in range(len(w) - 1, 0, -1))
        if cfg.stem_stride == 1:
            self.out = nn.Sequential(ConvBlock(2 * w[0], w[0], 3, 1, 1), nn.Conv2d(w[0], 3, 1))
        else:
            self.out = nn.Sequential(nn.Conv2d(2 * w[0], 12, 3, 1, 1), nn.PixelShuffle(2))
        # cfg.cond_every_stage: (scale, shift) per channel of each up stage from the fused
        # feature; zero-initialised, so training starts from the plain U-Net.
        self.film = (
            nn.ModuleList(nn.Linear(d, 2 * w[i - 1]) for i in range(len(w) - 1, 0, -1))
            if cfg.cond_every_stage
            else None
        )
        if self.film is not None:
            for lin in self.film:
                nn.init.zeros_(lin.weight)
                nn.init.zeros_(lin.bias)
        # cfg.input_skip: a residual correction at full resolution from [frame, identity input]
        self.refine = (
            nn.Sequential(nn.Conv2d(3 + 6, 16, 3, 1, 1), nn.ReLU(), nn.Conv2d(16, 3, 3, 1, 1))
            if cfg.input_skip
            else None
        )

    def forward(self, fused: Tensor, skips: list[Tensor]) -> Tensor:
        """fused (N, D), skips from FaceEncoder [(N, w0, H, W), ..., (N, D, 1, 1)] -> (N, 3, H, W)
        (with cfg.input_skip the list starts with the identity input (N, 6, H, W))."""
        if self.refine is not None:
            face, skips = skips[0], skips[1:]
        x = self.inp(torch.cat([fused[:, :, None, None], skips[-1]], dim=1))  # (N, D, 1, 1)
        x = self.to4(x)  # (N, w_n, 4, 4)
        for i, (up, skip) in enumerate(zip(self.ups, skips[-2:0:-1], strict=True)):
            x = up(torch.cat([x, skip], dim=1))  # (N, w_{i-1}, 2 h, 2 w)
            if self.film is not None:
                scale, shift = self.film[i](fused)[:, :, None, None].chunk(2, dim=1)  # (N, w_{i-1}, 1, 1)
                x = x * (1 + scale) + shift
        frame = self.out(torch.cat([x, skips[0]], dim=1))  # (N, 3, H, W), before the Tanh
        if self.refine is not None:
            frame = frame + self.refine(torch.cat([frame, face], dim=1))  # (N, 3, H, W)
        return torch.tanh(frame)  # (N, 3, H, W) in [-1, 1]
