"""Face (identity), audio and lip encoders of SyncTalkFace (docs/PAPER.md "Networks").

Conv blocks follow Wav2Lip: Conv2d -> BatchNorm -> ReLU, with an identity skip when the block
keeps its shape. Every image pyramid halves the resolution per stage, so any `img_size` of the
form 4 * 2^n (32, 64, 128, 256) works; widths come from ModelConfig.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lipmem_core.config import ModelConfig


def identity_input(targets: Tensor, refs: Tensor) -> Tensor:
    """The face encoder's input (docs/PAPER.md "Inputs"): the targets with their lower half zeroed,
    so the generator must draw the mouth, concatenated on channels with the references.

    targets, refs (..., 3, T, H, W) in [-1, 1] -> (..., 6, T, H, W).
    """
    masked = targets.clone()
    masked[..., targets.shape[-2] // 2 :, :] = 0.0
    return torch.cat([masked, refs], dim=-4)


class ConvBlock(nn.Module):
    """Conv2d -> BatchNorm -> ReLU; `residual=True` adds the input (same shape in and out)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 1,
        residual: bool = False,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn(self.conv(x))
        return torch.relu(y + x if self.residual else y)


def n_halvings(img_size: int) -> int:
    """n such that img_size = 4 * 2^n: the stride-2 stages from full resolution down to 4 x 4."""
    n = round(math.log2(img_size / 4))
    if img_size < 16 or 4 * 2**n != img_size:
        raise ValueError(f"img_size must be 4 * 2^n and >= 16 (e.g. 32, 64, 128), got {img_size}")
    return n


def stage_widths(widths: tuple[int, ...], n: int) -> list[int]:
    """Widths for n + 1 resolutions (full .. 4 x 4): truncate, or repeat the last width."""
    w = list(widths)[: n + 1]
    return w + [w[-1]] * (n + 1 - len(w))


def res_convs(w: int, n: int) -> list[nn.Module]:
    """n shape-keeping residual 3x3 conv blocks of width w."""
    return [ConvBlock(w, w, 3, 1, 1, residual=True) for _ in range(n)]


def strided_pyramid(c_in: int, widths: list[int]) -> nn.Sequential:
    """One stride-2 conv + one residual conv per stage: halves H and W len(widths) times."""
    layers: list[nn.Module] = []
    for w in widths:
        layers += [ConvBlock(c_in, w, 3, 2, 1), *res_convs(w, 1)]
        c_in = w
    return nn.Sequential(*layers)


def face_levels(cfg: ModelConfig) -> list[int]:
    """Channels of the face feature maps from the stem's resolution (H or H/2) down to 4 x 4."""
    if cfg.stem_stride not in (1, 2):
        raise ValueError(f"stem_stride must be 1 or 2, got {cfg.stem_stride}")
    return stage_widths(cfg.face_widths, n_halvings(cfg.img_size) - (cfg.stem_stride - 1))


class FaceEncoder(nn.Module):
    """Identity encoder: (N, 6, H, W) -> skip features, stem resolution down to 1 x 1.

    For H = 128: 128 -> 64 -> 32 -> 16 -> 8 -> 4 -> 1 (docs/PAPER.md); the last feature has `dim`
    channels. With stem_stride=2 the first map is already H/2 (the cheap CPU variant).
    Input channels: target frame with lower half zeroed ++ reference frame.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.widths = face_levels(cfg)  # channels at each resolution, stem .. 4 x 4
        # Stride 2 uses a 4x4 kernel (as the decoder's transposed convs): every input pixel then
        # falls under exactly 2 x 2 output cells; a 3x3 kernel weights even and odd pixels unequally.
        k = 3 if cfg.stem_stride == 1 else 4
        self.stem = ConvBlock(6, self.widths[0], k, cfg.stem_stride, 1)
        self.stages = nn.ModuleList(
            nn.Sequential(ConvBlock(a, b, 3, 2, 1), *res_convs(b, cfg.enc_res))
            for a, b in zip(self.widths[:-1], self.widths[1:], strict=True)
        )
        self.bottom = ConvBlock(self.widths[-1], cfg.dim, 4, 1, 0)  # 4 x 4 -> 1 x 1
        self.input_skip = cfg.input_skip

    def forward(self, x: Tensor) -> list[Tensor]:
        """(N, 6, H, W) -> [(N, w0, H/s, W/s), (N, w1, H/2s, W/2s), ..., (N, wn, 4, 4), (N, D, 1, 1)],
        preceded by the input itself (N, 6, H, W) when cfg.input_skip."""
        feats = [self.stem(x)]  # (N, w0, H/s, W/s), s = stem_stride
        for stage in self.stages:
            feats.append(stage(feats[-1]))  # (N, w_i, H / (s 2^i), W / (s 2^i))
        feats.append(self.bottom(feats[-1]))  # (N, D, 1, 1)
        return [x, *feats] if self.input_skip else feats


class AudioEncoder(nn.Module):
    """Mel window (N, C, 80, 16) -> (N, out_dim), Wav2Lip's audio encoder at width `width`.

    80 x 16 -> 27 x 16 -> 9 x 6 -> 3 x 3 -> 1 x 1. The output passes a ReLU (as in Wav2Lip), so
    features are non-negative; SyncNet relies on that for cosine similarities in [0, 1].
    C = `in_channels` is 1 (one window) except where windows of neighbouring frames are stacked.
    """

    def __init__(self, width: int, out_dim: int, in_channels: int = 1) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            ConvBlock(in_channels, w, 3, 1, 1),
            ConvBlock(w, w, 3, 1, 1, residual=True),
            ConvBlock(w, 2 * w, 3, (3, 1), 1),
            ConvBlock(2 * w, 2 * w, 3, 1, 1, residual=True),
            ConvBlock(2 * w, 4 * w, 3, 3, 1),
            ConvBlock(4 * w, 4 * w, 3, 1, 1, residual=True),
            ConvBlock(4 * w, 8 * w, 3, (3, 2), 1),
            ConvBlock(8 * w, 8 * w, 3, 1, 1, residual=True),
            ConvBlock(8 * w, out_dim, 3, 1, 0),
            nn.AdaptiveAvgPool2d(1),  # a no-op for 80 x 16 windows (already 1 x 1)
            ConvBlock(out_dim, out_dim, 1, 1, 0),
        )

    def forward(self, mel: Tensor) -> Tensor:
        """(N, C, 80, 16) -> (N, out_dim)."""
        return self.net(mel).flatten(1)  # (N, out_dim)


def half_pyramid_to_vector(c_in: int, width: int, out_dim: int, height: int, width_px: int) -> nn.Sequential:
    """A lower-half map (N, c_in, height, width_px) -> (N, out_dim, 1, 1).

    Stride-2 stages (width doubling, capped at out_dim) until the height is 2, then one valid
    conv over the remaining 2 x (2 * aspect) map.
    """
    n = round(math.log2(height / 2))
    if n < 0 or 2 * 2**n != height:
        raise ValueError(f"lower-half height must be 2 * 2^n, got {height}")
    widths = [min(width * 2 ** (i + 1), out_dim) for i in range(n)]
    pyramid = strided_pyramid(c_in, widths)
    last = widths[-1] if widths else c_in
    kernel = (2, width_px // 2**n)
    return nn.Sequential(pyramid, ConvBlock(last, out_dim, kernel, 1, 0))


class LipEncoder(nn.Module):
    """Lip-motion encoder: a 5-frame clip (N, 3, 5, H, W) -> f_lip (N, D).

    Conv3d(3, w, (5, 7, 7), stride 2, pad (0, 3, 3)) collapses the 5 frames, then a 2D residual
    CNN (docs/PAPER.md). Only the lower half of the frames is read: the lip input has its upper half
    zeroed anyway, and reading the mouth region alone halves the cost and makes the encoder
    ignore whatever a generated clip holds above the mouth (L_vv feeds it generated frames).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        n_halvings(cfg.img_size)
        h = cfg.img_size // 2
        self.conv3d = nn.Conv3d(3, cfg.lip_width, (5, 7, 7), stride=(2, 2, 2), padding=(0, 3, 3), bias=False)
        self.bn = nn.BatchNorm2d(cfg.lip_width)
        self.cnn = half_pyramid_to_vector(cfg.lip_width, cfg.lip_width, cfg.dim, h // 2, cfg.img_size // 2)
        self.input_norm = cfg.lip_input_norm

    def forward(self, clip: Tensor) -> Tensor:
        """(N, 3, 5, H, W) -> (N, D)."""
        h = clip.shape[-2]
        lower = clip[..., h // 2 :, :]  # (N, 3, 5, H/2, W)
        if self.input_norm:  # per clip and colour channel, over frames and pixels
            mean = lower.mean(dim=(2, 3, 4), keepdim=True)  # (N, 3, 1, 1, 1)
            std = lower.std(dim=(2, 3, 4), keepdim=True)  # (N, 3, 1, 1, 1)
            lower = (lower - mean) / (std + 1e-3)
        x = self.conv3d(lower)  # (N, w, 1, H/4, W/2)
        x = torch.relu(self.bn(x.squeeze(2)))  # (N, w, H/4, W/2)
        return self.cnn(x).flatten(1)  # (N, D)
