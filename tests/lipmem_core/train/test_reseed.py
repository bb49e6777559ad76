"""DeadSlotReseeder: dead-slot restart of the memory (a training aid, docs/TRAINING.md)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lipmem_core.model.memory import AudioLipMemory, DeadSlotReseeder, cosine_logits, storage_loss

S, D = 16, 32


def _collapsed_memory() -> AudioLipMemory:
    """Values all but two far from the data: soft k-means then never moves the others."""
    torch.manual_seed(0)
    mem = AudioLipMemory(dim=D, n_slots=S)
    with torch.no_grad():
        mem.value.copy_(-torch.ones(S, D) + 0.01 * torch.randn(S, D))  # all point away from the data
        mem.value[:2] = torch.ones(2, D) + 0.1 * torch.randn(2, D)
    return mem


def _clustered_queries(n_clusters: int, per: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Lip queries v = shared direction + one of n well-separated offsets; labels (N,)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_clusters, D, generator=g) * 2
    labels = torch.arange(n_clusters).repeat_interleave(per)
    v = torch.ones(D) + centres[labels] + 0.05 * torch.randn(len(labels), D, generator=g)
    return v, labels


def _used_slots(mem: AudioLipMemory, v: torch.Tensor) -> int:
    return int(cosine_logits(v, mem.value, mem.kappa).argmax(-1).unique().numel())


def test_no_reseed_between_events_or_without_dead_slots():
    mem, rs = _collapsed_memory(), DeadSlotReseeder(S, every=5)
    before = mem.value.detach().clone()
    v = torch.randn(S, D)
    addr = torch.eye(S) * 0.5 + 0.5 / S  # frame i picks slot i: every slot is used equally
    assert rs.step(mem, addr, v, v, step=3) == 0 and rs.step(mem, addr, v, v, step=5) == 0
    assert torch.equal(mem.value, before)
    torch.testing.assert_close(rs.usage, torch.full((S,), 1.0 / S))


def test_usage_is_an_ema_of_argmax_counts():
    rs = DeadSlotReseeder(S, decay=0.5, every=1000)
    addr = torch.full((4, S), 0.9 / S)
    addr[:, 3] += 0.1  # soft rows: only the argmax counts
    rs.step(_collapsed_memory(), addr, torch.randn(4, D), torch.randn(4, D), step=1)
    expected = torch.full((S,), 0.5 / S)
    expected[3] += 0.5
    torch.testing.assert_close(rs.usage, expected)


def test_dead_slots_take_distinct_frames_and_live_slots_stay():
    mem, rs = _collapsed_memory(), DeadSlotReseeder(S, every=1)
    rs.usage.zero_()
    rs.usage[:2] = 0.5  # slots 0 and 1 live, the rest dead
    v, _ = _clustered_queries(3, per=5)
    q = torch.randn(len(v), D)
    live_before = mem.value[:2].detach().clone()
    n = rs.step(mem, torch.zeros(len(v), S), v, q, step=1)
    # 3 clusters of near-identical frames: farthest-point seeding takes one frame per cluster
    # (a near-duplicate would already have a slot at cosine >= 0.9) and stops
    assert 1 <= n <= 3
    assert torch.equal(mem.value[:2], live_before)
    for s in range(2, 2 + n):
        i = int((v - mem.value[s]).abs().sum(-1).argmin())
        assert torch.equal(mem.value[s], v[i]) and torch.equal(mem.key[s], q[i])  # K_s, V_s from one frame
    seeded = F.normalize(mem.value[2 : 2 + n], dim=-1)
    assert (seeded @ seeded.t() - torch.eye(n)).max() < 0.9  # no two seeds from one cluster
    assert torch.all(rs.usage[2 : 2 + n] == 1.0 / S) and torch.all(rs.usage[2 + n :] == 0)


def _train_storage(reseed: bool, steps: int = 300) -> int:
    mem = _collapsed_memory()
    rs = DeadSlotReseeder(S, decay=0.9, every=10)
    opt = torch.optim.Adam([mem.value], lr=1e-2)
    v, _ = _clustered_queries(8, per=6)
    for step in range(1, steps + 1):
        addr = cosine_logits(v, mem.value, mem.kappa).softmax(-1)
        loss = storage_loss(addr @ mem.value, v)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if reseed:
            rs.step(mem, addr, v, v, step)
    return _used_slots(mem, v)


def test_reseeding_revives_a_collapsed_memory():
    """The failure it exists for: L_store alone keeps 8 lip-shape clusters in <= 2 slots; with
    re-seeding every cluster gets its own slot."""
    assert _train_storage(reseed=False) <= 2
    assert _train_storage(reseed=True) >= 8
