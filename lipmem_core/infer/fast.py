"""The CPU fast path of a trained generator, used by every inference caller (the pipeline and
audio addressing alike): one implementation.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from lipmem_core.model.generator import LipMemGenerator


def inference_copy(model: LipMemGenerator, device: torch.device) -> LipMemGenerator:
    """A copy of the generator arranged for fast inference; the caller's model is untouched.

    Each BatchNorm that follows a convolution (encoders.ConvBlock's `conv`/`bn`,
    decoder.UpBlock's `up`/`bn`, and Conv -> BatchNorm pairs inside nn.Sequential) is folded
    into the convolution's weights (exact in eval mode), and the 2D image networks use
    channels_last, which oneDNN runs faster (docs/ARCHITECTURE.md, "CPU fast path"). Values
    match the model's to float rounding (tests/lipmem_core/infer).
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    fast = copy.deepcopy(model).eval()
    convs = (nn.Conv2d, nn.ConvTranspose2d)
    for mod in fast.modules():
        bn = getattr(mod, "bn", None)
        if isinstance(bn, nn.BatchNorm2d):
            for name in ("conv", "up"):
                conv = getattr(mod, name, None)
                if isinstance(conv, convs):
                    setattr(
                        mod, name, fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))
                    )
                    mod.bn = nn.Identity()
                    break
        if isinstance(mod, nn.Sequential):
            for i in range(len(mod) - 1):
                if isinstance(mod[i], convs) and isinstance(mod[i + 1], nn.BatchNorm2d):
                    mod[i] = fuse_conv_bn_eval(
                        mod[i], mod[i + 1], transpose=isinstance(mod[i], nn.ConvTranspose2d)
                    )
                    mod[i + 1] = nn.Identity()
    for net in (fast.face_encoder, fast.audio_encoder, fast.decoder):
        net.to(memory_format=torch.channels_last)
    return fast.to(device)
