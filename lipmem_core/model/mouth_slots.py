"""Mouth-shape slots: a SynthTalk-only training aid, not in the paper (`--loss slot_mouth=W`).

Inference recalls through A_aud, so the slot the audio picks must be the slot the lips wrote.
Measured on probe AA (docs/TRAINING.md): a linear probe from the audio query predicts the lips'
argmax slot on 18 % of test frames, and even SynthTalk's exact mouth parameters predict it on
only 38 %: the lips' slots also split by what an unseen speaker's audio cannot know. Here the
partition is fixed from what both sides should share, the mouth's shape: at
`TrainConfig.memory_init_step` the exact 7 mouth parameters of the initialisation frames are
clustered into S groups (k-means on standardised parameters), K and V start as each group's mean
audio and lip query, and from then on both addressings learn each frame's group:

    L_slot_mouth = CE(A_aud, s*) + CE(A_lip, s*),   s* = nearest centre to the frame's mouth

Needs mouth.csv, so SynthTalk only; off for real corpora.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from torch import Tensor, nn

from lipmem_core.data.synth.mouth import MOUTH_PARAMS
from lipmem_core.model.memory import log_address

N_MOUTH_PARAMS = len(MOUTH_PARAMS)  # jaw, spread, round, close, tuck, teeth, tongue


class MouthSlots(nn.Module):
    """The S mouth-shape centres (buffers, saved with the run) and the loss towards them."""

    def __init__(self, n_slots: int) -> None:
        super().__init__()
        self.register_buffer("centres", torch.zeros(n_slots, N_MOUTH_PARAMS))  # (S, 7) standardised
        self.register_buffer("mean", torch.zeros(N_MOUTH_PARAMS))
        self.register_buffer("std", torch.ones(N_MOUTH_PARAMS))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def fit(self, mouth: Tensor, seed: int = 0) -> Tensor:
        """k-means of N frames' mouth parameters (N, 7) into S groups -> each frame's group (N,)."""
        n_slots = len(self.centres)
        if len(mouth) < n_slots:
            raise ValueError(
                f"mouth slots from {len(mouth)} frames into {n_slots} groups: collect at least {n_slots}"
            )
        x = mouth.float().cpu()
        mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
        km = KMeans(n_clusters=n_slots, n_init=1, random_state=seed).fit(((x - mean) / std).numpy())
        self.mean.copy_(mean)
        self.std.copy_(std)
        self.centres.copy_(torch.from_numpy(km.cluster_centers_).float())
        self.fitted.fill_(True)
        return self.labels(mouth)

    def labels(self, mouth: Tensor) -> Tensor:
        """Nearest centre of each frame's mouth parameters: (..., 7) -> (...,) long."""
        z = (mouth.float() - self.mean) / self.std  # (..., 7)
        return torch.cdist(z.reshape(-1, N_MOUTH_PARAMS), self.centres).argmin(-1).reshape(mouth.shape[:-1])

    def centre_mouth(self, slots: Tensor) -> Tensor:
        """The mouth parameters at the centre of each slot's group, in the corpus's units:
        slots (...,) long -> (..., 7)."""
        if not bool(self.fitted):
            raise ValueError("mouth slots are not fitted yet: they are fitted at memory_init_step")
        return self.centres[slots] * self.std + self.mean

    def cross_entropy(self, address: Tensor, mouth: Tensor) -> Tensor:
        """CE(A, s*) for one addressing A (..., S) and its frames' mouth parameters (..., 7)."""
        if not bool(self.fitted):
            raise ValueError("mouth slots are not fitted yet: they are fitted at memory_init_step")
        n_slots = address.shape[-1]
        return F.nll_loss(log_address(address).reshape(-1, n_slots), self.labels(mouth).reshape(-1))

    def loss(self, addr_aud: Tensor, addr_lip: Tensor, mouth: Tensor) -> Tensor:
        """CE(A_aud, s*) + CE(A_lip, s*) for A (..., S) and mouth parameters (..., 7)."""
        return self.cross_entropy(addr_aud, mouth) + self.cross_entropy(addr_lip, mouth)
