"""A mouth reader of drawn frames: a SynthTalk-only training aid, not in the paper (`--loss drawn_mouth=W`).

The mouth read-outs (`mouth_params`, `recall_mouth`) make the decoder's input carry the mouth,
but measured against SynthTalk's exact mouths the decoder then loses most of it: the audio
path's decoder input carries the mouth to 36-46 % of the parameters' std, the drawn frames to
57-69 % (benchmarks/mouth_source.py, docs/TRAINING.md "Where the mouth is lost"). Pixel L1
barely sees a mouth that is a few pixels off. This reader closes the loop on the drawn image:

    L_drawn_mouth = |R(G(.)) - m|_1,   R trained alongside with |R(gt) - m|_1

for every target frame of both decoding paths, m the frame's exact 7 mouth parameters. R is a
small CNN over the lower half of one frame, trained on the real target frames of the training
windows only, and judges generated frames as a frozen network (losses.frozen_call, BatchNorm
with the running statistics of real frames), so the generator cannot train it to agree.

R is deliberately not the evaluation's mouth oracle (evaluation.oracle): another network with
another input (the whole lower half, filtered to half resolution, not the resampled mouth box),
trained on other data (the training split's frames, not unlimited renders), so the figures the
oracle reads are not the quantity the generator was fitted to. Needs mouth.csv: SynthTalk only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lipmem_core.data.synth.mouth import MOUTH_PARAMS
from lipmem_core.model.encoders import half_pyramid_to_vector
from lipmem_core.model.generator import LipMemGenerator, frames_first
from lipmem_core.model.losses import frozen_call
from lipmem_core.model.mouth_slots import MouthSlots


class DrawnMouthReader(nn.Module):
    """R: the lower half of single frames (N, 3, H, W) -> their 7 mouth parameters (N, 7).

    R reads the lower half at half resolution, through an antialiasing filter, then stride-2
    stages down to 2 x 4, widths 16 .. `dim` (about 0.01 GFLOP a frame at 128 px, against 0.74
    for the cpu generator's training forward). Why half resolution: read at full resolution, the
    generator lowered R's loss with a pixel-scale green-red checkerboard over the mouth
    (docs/TRAINING.md, probe DM), which a filtered input does not pass.
    """

    def __init__(self, img_size: int, width: int = 8, dim: int = 64) -> None:
        super().__init__()
        self.features = half_pyramid_to_vector(3, width, dim, img_size // 4, img_size // 2)
        self.head = nn.Linear(dim, len(MOUTH_PARAMS))

    def forward(self, frames: Tensor) -> Tensor:
        """(N, 3, H, W) in [-1, 1] -> (N, 7)."""
        h = frames.shape[-2]
        # in float32: the antialiased resampling has no bf16 kernel on CPU (autocast passes it through)
        lower = F.interpolate(
            frames[..., h // 2 :, :].float(),
            scale_factor=0.5,
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )  # (N, 3, H/4, W/2)
        return self.head(self.features(lower).flatten(1))  # (N, 7)


def fit_loss(reader: nn.Module, gt: Tensor, mouth: Tensor) -> Tensor:
    """R's own loss: L1 of its reading of the real frames gt (B, 3, T, H, W), taken as constants,
    against their exact mouths (B, T, 7). Trains R only; `reader` may be R's DDP wrapper."""
    return F.l1_loss(reader(frames_first(gt.detach())).float().reshape(mouth.shape), mouth)


def drawn_loss(reader: DrawnMouthReader, paths: list[Tensor], mouth: Tensor) -> Tensor:
    """L_drawn_mouth: L1 of R's reading of generated frames (B, 3, T, H, W), one tensor per
    decoding path, against the exact mouths (B, T, 7), averaged over the paths.

    R is frozen and in eval mode here: gradient reaches the frames only, and BatchNorm
    normalises generated frames with the statistics of real ones, so a generated batch is read
    by the same rule as real frames, not standardised against itself.
    """
    was_training = reader.training
    reader.eval()
    try:
        reads = [frozen_call(reader, frames_first(f)).float().reshape(mouth.shape) for f in paths]
    finally:
        reader.train(was_training)
    return torch.stack([F.l1_loss(r, mouth) for r in reads]).mean()


def slot_drawn_loss(
    gen: LipMemGenerator, reader: DrawnMouthReader, mouth_slots: MouthSlots, face: Tensor, slots: Tensor
) -> Tensor:
    """L_slot_drawn_mouth (`--loss slot_drawn_mouth=W`, with `slot_mouth`): the slot gallery as a loss.

    Window b's identity (face (B, 6, T, H, W), its first frame) decodes slot slots[b] (B,) alone:
    a one-hot address, f_aud of silence (LipMemGenerator.decode_with_address, as
    infer.addressing.decode_slot draws a slot). The frozen reader reads the drawn frame, and the
    L1 is taken against the centre of the slot's mouth-shape group (MouthSlots.centre_mouth):

        L = |R(G(face, V_s)) - c_s|_1

    Gradient reaches V_s of the decoded slots, the decoder, the face encoder and the audio
    encoder (through f_aud of silence), never K: the address is given, not computed.
    """
    address = F.one_hot(slots, gen.cfg.n_slots).to(face.dtype)[:, None, :]  # (B, 1, S)
    frames = gen.decode_with_address(face[:, :, :1], None, address)  # (B, 3, 1, H, W)
    return drawn_loss(reader, [frames], mouth_slots.centre_mouth(slots)[:, None, :])  # mouth (B, 1, 7)
