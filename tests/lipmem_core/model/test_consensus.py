"""Slot consensus: balanced codes, the queue, and that it teaches both addressings one partition."""

from __future__ import annotations

import pytest
import torch

from lipmem_core.model.consensus import SlotConsensus, sinkhorn_codes
from lipmem_core.model.memory import AudioLipMemory, hard_alignment_loss


def test_codes_are_distributions_and_balance_the_slots():
    torch.manual_seed(0)
    scores = torch.randn(200, 8) * 4
    scores[:, 0] += 10  # every frame prefers slot 0
    codes = sinkhorn_codes(scores)
    assert torch.allclose(codes.sum(1), torch.ones(200), atol=1e-5)
    assert torch.allclose(codes.sum(0), torch.full((8,), 25.0), rtol=0.011)  # M / S each, within tol

    # sharp scores (a low temperature) take more rounds than SwAV's three to balance
    def imbalance(codes):
        return float((codes.sum(0) / 25.0 - 1).abs().max())

    assert (
        imbalance(sinkhorn_codes(scores / 0.1)) < 0.06 < imbalance(sinkhorn_codes(scores / 0.1, max_iters=3))
    )
    assert len(codes.argmax(1).unique()) == 8  # the preference did not collapse the codes
    # a per-frame constant (log-softmax versus logits) changes nothing
    assert torch.allclose(sinkhorn_codes(scores.log_softmax(1)), sinkhorn_codes(scores), atol=1e-5)


def test_loss_waits_for_a_full_queue_which_keeps_the_newest_rows():
    memory = AudioLipMemory(dim=4, n_slots=3)
    consensus = SlotConsensus(dim=4, queue_size=5)
    addr = torch.full((2, 3), 1 / 3)
    consensus.push(torch.ones(2, 4), torch.ones(2, 4))
    assert consensus.loss(memory, addr, addr) is None and int(consensus.filled) == 2
    rows = torch.arange(16.0).reshape(4, 4)
    consensus.push(rows, -rows)
    assert int(consensus.filled) == 5
    assert torch.equal(consensus.audio_queue[-4:], rows) and torch.equal(consensus.lip_queue[-4:], -rows)
    assert torch.equal(consensus.audio_queue[0], torch.ones(4))  # the oldest survivor
    consensus.push(torch.full((7, 4), 9.0), torch.zeros(7, 4))  # more than the queue holds
    assert torch.equal(consensus.audio_queue, torch.full((5, 4), 9.0)) and int(consensus.filled) == 5
    assert consensus.loss(memory, addr, addr) is not None


def test_gradient_reaches_both_addressings_but_not_the_codes():
    torch.manual_seed(0)
    memory = AudioLipMemory(dim=8, n_slots=6)
    consensus = SlotConsensus(dim=8, queue_size=12)
    consensus.push(torch.randn(12, 8), torch.randn(12, 8))
    out = memory(torch.randn(10, 8), torch.randn(10, 8))
    consensus.loss(memory, out.addr_aud, out.addr_lip).backward()
    for p in (memory.key, memory.value, memory.query_proj.weight, memory.lip_proj.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert not consensus.audio_queue.requires_grad


def _paired_views(n: int, seed: int, n_classes: int = 12, dim: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Audio-like and lip-like features of the same n frames: each view is its own fixed random
    linear map of a shared class embedding, plus noise (the class is what both can see)."""
    world = torch.Generator().manual_seed(0)  # the classes and both maps, the same every call
    centres = torch.randn(n_classes, dim, generator=world)
    to_audio, to_lip = torch.randn(dim, dim, generator=world), torch.randn(dim, dim, generator=world)
    g = torch.Generator().manual_seed(seed)
    centre = centres[torch.randint(n_classes, (n,), generator=g)]
    a = centre @ to_audio + 0.3 * torch.randn(n, dim, generator=g)
    v = centre @ to_lip + 0.3 * torch.randn(n, dim, generator=g)
    return a, v


def _train(loss_name: str, steps: int = 300) -> tuple[float, int]:
    """Train a fresh memory on paired views with one alignment loss; returns the argmax
    agreement of A_aud and A_lip on held-out frames and the number of slots A_aud uses."""
    torch.manual_seed(0)
    memory = AudioLipMemory(dim=16, n_slots=24, dropout=0.0)
    consensus = SlotConsensus(dim=16, queue_size=256)
    opt = torch.optim.Adam(memory.parameters(), lr=1e-2)
    for step in range(steps):
        a, v = _paired_views(32, seed=step)
        out = memory(a, v)
        if loss_name == "consensus":
            loss = consensus.loss(memory, out.addr_aud, out.addr_lip)
            consensus.push(out.audio_query, out.lip_query)
        else:  # both hard cross-entropies, each against the other's argmax
            loss = hard_alignment_loss(out.addr_aud, out.addr_lip) + hard_alignment_loss(
                out.addr_lip, out.addr_aud
            )
        if loss is not None:
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        a, v = _paired_views(2000, seed=10_000)
        out = memory(a, v)
    aud, lip = out.addr_aud.argmax(1), out.addr_lip.argmax(1)
    return float((aud == lip).float().mean()), len(aud.unique())


def test_consensus_makes_the_two_addressings_agree_without_collapsing():
    agreement, slots = _train("consensus")
    # 24 slots for 12 classes: a class split over two slots is split by noise, so not 100 %
    assert agreement > 0.6 and slots >= 12  # at least one slot for each shared class (chance: 1 / 24)
    # the hard cross-entropies both ways agree by merging classes (docs/TRAINING.md, probe N)
    hard_agreement, hard_slots = _train("hard")
    assert hard_agreement > 0.9 and hard_slots < 12


def test_a_lower_temperature_sharpens_the_codes_and_a_non_positive_one_is_refused():
    torch.manual_seed(0)
    memory = AudioLipMemory(dim=8, n_slots=6)
    out = memory(torch.randn(40, 8), torch.randn(40, 8))
    queued = torch.randn(40, 8), torch.randn(40, 8)
    largest = []
    for eps in (1.0, 0.25):
        consensus = SlotConsensus(dim=8, queue_size=40, eps=eps)
        consensus.push(*queued)
        largest.append(float(consensus.codes(memory, out.addr_aud, out.addr_lip).max(1).values.mean()))
    assert largest[1] > largest[0] + 0.1
    with pytest.raises(ValueError, match="eps"):
        SlotConsensus(dim=8, eps=0.0)
