"""Slot consensus: a training aid, not in the paper (docs/TRAINING.md, `--loss consensus=W`).

Inference recalls through A_aud alone, so the slot the audio picks must be the slot the lips
wrote. L_align copies A_lip's spread into A_aud, and the hard cross-entropies of
memory.hard_alignment_loss chase one side's argmax, which, used both ways, collapses both
addressings onto one slot (docs/TRAINING.md, probes N and S). Here both sides learn one shared
target instead: for each frame, a soft assignment to slots computed from both addressings
together and balanced over the frames, so that every slot receives its share (the
Sinkhorn-Knopp codes of SwAV, shared across the two modalities as in SeLaVi's audio-visual
clustering). The balance is what stops the collapse; a batch of N = B*T frames (40 with the
`cpu` preset) is smaller than the S = 96 slots, so the codes are balanced over the batch and a
queue of recent frames' queries, re-addressed with the current K and V.

    codes = Sinkhorn((log A_aud + log A_lip) / eps)     over [batch; queue], rows sum to 1
    L_consensus = CE(codes, A_aud) + CE(codes, A_lip)   over the batch, codes detached
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lipmem_core.model.memory import AudioLipMemory, cosine_logits, log_address


def sinkhorn_codes(scores: Tensor, max_iters: int = 100, tol: float = 0.01) -> Tensor:
    """Balanced soft assignment of M frames to S slots: (M, S) log-scores -> (M, S) codes.

    Alternately normalises the frames (each row to 1) and the slots (each column to M / S
    frames), in the log domain, until every column is within `tol` of M / S (relative) or
    after `max_iters` rounds; rows sum to 1 exactly. Sharp scores need many rounds: at
    temperature 0.25, three rounds (SwAV's number) left one slot with 16 times its share of
    the frames (docs/TRAINING.md, probes AF-AI). A per-frame constant added to `scores`
    changes nothing, so log-addresses and raw logits give the same codes.
    """
    m, s = scores.shape
    log_q = scores.double().log_softmax(dim=1)  # rows first, so a per-frame constant cancels exactly
    share = math.log(m / s)
    for _ in range(max_iters):
        column = torch.logsumexp(log_q, dim=0, keepdim=True)  # (1, S)
        if (column - share).abs().max() < math.log1p(tol):
            break
        log_q = (log_q - column + share).log_softmax(dim=1)
    return log_q.exp().to(scores.dtype)  # (M, S)


def soft_cross_entropy(target: Tensor, address: Tensor) -> Tensor:
    """Mean over frames of -sum_s target_s log address_s: (N, S), (N, S) -> scalar."""
    return -(target * log_address(address)).sum(-1).mean()


class SlotConsensus(nn.Module):
    """The queue of recent (q, v) query pairs and the consensus loss over it.

    Buffers (saved with the run, so a resumed run continues exactly): `audio_queue` and
    `lip_queue` (Q, D) hold the last Q frames' audio queries q and lip queries v; `filled`
    counts how many rows are real. The loss waits until the queue is full.

    `eps` is the codes' temperature: the addresses of a young memory are soft (A_aud's largest
    weight about 0.06 of 96 slots after 600 steps), and codes computed from them at eps 1 are
    as soft, a target that only asks both sides to stay soft (docs/TRAINING.md, probe AD);
    eps < 1 sharpens the codes (eps -> 0: each frame's code is one slot).
    """

    def __init__(self, dim: int, queue_size: int = 1024, eps: float = 1.0) -> None:
        super().__init__()
        if eps <= 0:
            raise ValueError(f"consensus eps must be > 0, got {eps}")
        self.queue_size, self.eps = queue_size, eps
        self.register_buffer("audio_queue", torch.zeros(queue_size, dim))
        self.register_buffer("lip_queue", torch.zeros(queue_size, dim))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def codes(self, memory: AudioLipMemory, addr_aud: Tensor, addr_lip: Tensor) -> Tensor | None:
        """The batch's shared targets from A_aud, A_lip (..., S): (N, S), rows sum to 1; None
        until the queue is full."""
        if int(self.filled) < self.queue_size:
            return None
        n_slots = addr_aud.shape[-1]
        key_logits = cosine_logits(self.audio_queue, memory.key, memory.kappa)  # (Q, S)
        value_logits = cosine_logits(self.lip_queue, memory.value, memory.kappa)  # (Q, S)
        queued = key_logits.log_softmax(-1) + value_logits.log_softmax(-1)  # (Q, S)
        batch = (log_address(addr_aud) + log_address(addr_lip)).reshape(-1, n_slots)  # (N, S)
        return sinkhorn_codes(torch.cat([batch, queued]) / self.eps)[: len(batch)]  # (N, S)

    def loss(self, memory: AudioLipMemory, addr_aud: Tensor, addr_lip: Tensor) -> Tensor | None:
        """L_consensus for the batch's A_aud, A_lip (..., S); None until the queue is full."""
        codes = self.codes(memory, addr_aud, addr_lip)
        if codes is None:
            return None
        n_slots = addr_aud.shape[-1]
        return soft_cross_entropy(codes, addr_aud.reshape(-1, n_slots)) + soft_cross_entropy(
            codes, addr_lip.reshape(-1, n_slots)
        )

    @torch.no_grad()
    def push(self, audio_query: Tensor, lip_query: Tensor) -> None:
        """Append the batch's q, v (..., D) as the newest rows, dropping the oldest."""
        dim = self.audio_queue.shape[1]
        q, v = audio_query.detach().reshape(-1, dim).float(), lip_query.detach().reshape(-1, dim).float()
        n = min(len(q), self.queue_size)
        for queue, new in ((self.audio_queue, q[-n:]), (self.lip_queue, v[-n:])):
            queue.copy_(torch.cat([queue[n:], new]))
        self.filled.fill_(min(int(self.filled) + n, self.queue_size))
