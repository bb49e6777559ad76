"""Audio-Lip Memory invariants: addressing, recall, storage and alignment losses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lipmem_core.model.memory import (
    AudioLipMemory,
    address_entropy,
    alignment_loss,
    cosine_logits,
    hard_alignment_loss,
    init_from_data,
    sharpness_loss,
    spherical_kmeans,
    storage_loss,
    usage_loss,
)


@pytest.fixture
def mem() -> AudioLipMemory:
    torch.manual_seed(0)
    return AudioLipMemory(dim=32, n_slots=12, kappa=16.0, dropout=0.5).eval()


def test_init_statistics():
    torch.manual_seed(0)
    m = AudioLipMemory(dim=256, n_slots=96)
    for p in (m.key, m.value):
        assert p.shape == (96, 256)
        assert abs(p.std().item() - 0.5) < 0.02 and abs(p.mean().item()) < 0.02


def test_one_hot_address_recalls_exactly_that_slot(mem):
    onehot = torch.eye(mem.n_slots)  # (S, S)
    torch.testing.assert_close(mem.recall(onehot), mem.value, rtol=0, atol=0)
    batched = torch.eye(mem.n_slots)[[3, 7]].reshape(1, 2, -1)  # (1, 2, S)
    assert torch.equal(mem.recall(batched)[0, 1], mem.value[7])


def test_addresses_sum_to_one_and_sharpen_with_kappa(mem):
    torch.manual_seed(1)
    f = torch.randn(64, 32)
    entropies = []
    for kappa in (1.0, 4.0, 16.0, 64.0):
        mem.kappa = kappa
        out = mem(f, torch.randn(64, 32))
        for a in (out.addr_aud, out.addr_lip):
            assert a.shape == (64, 12) and torch.all(a >= 0)
            torch.testing.assert_close(a.sum(-1), torch.ones(64))
        entropies.append(address_entropy(out.addr_aud).mean().item())
    assert all(a > b for a, b in zip(entropies, entropies[1:], strict=False)), entropies


def test_alignment_kl_zero_for_equal_and_positive_otherwise():
    logits = torch.randn(10, 12)
    a = logits.softmax(-1)
    assert alignment_loss(a, logits.log_softmax(-1)).abs().item() < 1e-6
    other = torch.randn(10, 12).log_softmax(-1)
    assert alignment_loss(a, other).item() > 0.01


def test_usage_loss_bounds_and_direction():
    S = 8
    uniform_use = torch.eye(S).repeat(3, 1)  # (24, S): every slot picked equally often
    assert usage_loss(uniform_use).item() == pytest.approx(0.0, abs=1e-6)
    one_slot = torch.zeros(2, 5, S)
    one_slot[..., 3] = 1.0
    assert usage_loss(one_slot).item() == pytest.approx(1.0, abs=1e-6)
    half = torch.zeros(4, S)
    half[:, :4] = 0.25  # four of eight slots used: 1 - log 4 / log 8
    assert usage_loss(half).item() == pytest.approx(1 - math.log(4) / math.log(8), abs=1e-6)
    # gradient descent on the logits spreads the usage of a peaked batch
    logits = torch.randn(16, S).mul(0.1).add(torch.arange(S) * 2.0).requires_grad_()
    before = usage_loss(logits.softmax(-1))
    before.backward()
    after = usage_loss((logits - 1.0 * logits.grad).softmax(-1))
    assert after.item() < before.item()


def test_alignment_gradient_goes_only_to_audio_side(mem):
    f_aud, f_lip = torch.randn(8, 32), torch.randn(8, 32)
    out = mem(f_aud, f_lip)
    out.loss_align.backward()
    assert mem.query_proj.weight.grad is not None and mem.query_proj.weight.grad.abs().sum() > 0
    assert mem.key.grad is not None
    assert mem.lip_proj.weight.grad is None and mem.value.grad is None  # A_lip is detached


def test_storage_loss_target_is_detached(mem):
    out = mem(torch.randn(8, 32), torch.randn(8, 32))
    v = out.lip_query
    grad_v = torch.autograd.grad(storage_loss(out.recall_lip, v), v, retain_graph=True, allow_unused=True)[0]
    # v enters L_store only through A_lip (the target is detached) - not through the MSE target.
    direct = torch.autograd.grad(
        torch.nn.functional.mse_loss(out.recall_lip.detach(), v), v, allow_unused=True
    )[0]
    assert grad_v is not None and direct is not None
    assert not torch.allclose(grad_v, direct)


def test_storage_loss_falls_when_only_value_memory_is_optimised(mem):
    torch.manual_seed(2)
    f_aud, f_lip = torch.randn(8, 32), torch.randn(8, 32)  # fewer frames than slots
    key_before = mem.key.detach().clone()
    opt = torch.optim.Adam([mem.value], lr=0.05)
    losses = []
    for _ in range(60):
        out = mem(f_aud, f_lip)
        opt.zero_grad()
        out.loss_store.backward()
        opt.step()
        losses.append(out.loss_store.item())
    assert losses[-1] < 0.3 * losses[0], (losses[0], losses[-1])
    assert torch.equal(mem.key, key_before)


def test_audio_only_forward_has_no_lip_fields(mem):
    out = mem(torch.randn(5, 32))
    assert out.fused_aud.shape == (5, 32) and out.recall_aud.shape == (5, 32)
    assert out.addr_lip is None and out.loss_store is None and out.loss_align is None


def test_fusion_uses_recall(mem):
    f = torch.randn(4, 32)
    r1, r2 = torch.randn(4, 32), torch.randn(4, 32)
    assert not torch.allclose(mem.fuse(f, r1), mem.fuse(f, r2))
    out = mem(f)
    torch.testing.assert_close(out.fused_aud, mem.fuse(f, mem.recall(mem.address_audio(f))))


def test_dropout_only_in_training(mem):
    f = torch.randn(16, 32)
    torch.testing.assert_close(mem(f).fused_aud, mem(f).fused_aud)
    mem.train()
    torch.manual_seed(3)
    a = mem(f).fused_aud
    torch.manual_seed(4)
    assert not torch.allclose(a, mem(f).fused_aud)


@pytest.mark.parametrize("lip_path_audio", [True, False])
def test_lip_path_sees_audio_only_when_configured(lip_path_audio):
    torch.manual_seed(0)
    mem = AudioLipMemory(dim=32, n_slots=12, lip_path_audio=lip_path_audio).eval()
    f_lip, f_a, f_b = torch.randn(6, 32), torch.randn(6, 32), torch.randn(6, 32)
    out_a, out_b = mem(f_a, f_lip), mem(f_b, f_lip)
    assert not torch.allclose(out_a.fused_aud, out_b.fused_aud)  # the audio path always hears
    torch.testing.assert_close(out_a.recall_lip, out_b.recall_lip)  # A_lip depends on lips alone
    assert torch.allclose(out_a.fused_lip, out_b.fused_lip) is not lip_path_audio
    if not lip_path_audio:  # decoded from the recall alone: Linear(concat[0, r_lip])
        torch.testing.assert_close(out_a.fused_lip, mem.fuse(torch.zeros_like(f_a), out_a.recall_lip))


def test_lip_path_audio_share_lets_that_share_of_frames_hear_the_audio_in_training_only():
    """Each lip-path frame fuses either all of f_aud or none of it; about `share` of them hear it."""
    torch.manual_seed(0)
    mem = AudioLipMemory(dim=16, n_slots=8, dropout=0.0, lip_path_audio=False, lip_path_audio_share=0.3)
    f_aud, f_lip = torch.randn(4000, 16), torch.randn(4000, 16)
    out = mem.train()(f_aud, f_lip)
    deaf = mem.fuse(torch.zeros_like(f_aud), out.recall_lip)
    hearing = mem.fuse(f_aud, out.recall_lip)
    is_deaf = torch.isclose(out.fused_lip, deaf, atol=1e-6).all(-1)
    is_hearing = torch.isclose(out.fused_lip, hearing, atol=1e-6).all(-1)
    assert bool((is_deaf ^ is_hearing).all())  # whole frames, never a mix
    assert abs(is_hearing.float().mean().item() - 0.3) < 0.03
    torch.testing.assert_close(mem.eval()(f_aud, f_lip).fused_lip, deaf)  # eval: the recall alone


def test_recall_drop_fuses_zeros_for_that_share_of_audio_frames_in_training_only():
    """Each audio-path frame fuses either its whole recall or none of it; about `recall_drop` of
    them none. The returned r_aud keeps every frame's recall, and eval mode drops nothing."""
    torch.manual_seed(0)
    mem = AudioLipMemory(dim=16, n_slots=8, dropout=0.0, recall_drop=0.3)
    f_aud = torch.randn(4000, 16)
    out = mem.train()(f_aud)
    full = mem.fuse(f_aud, out.recall_aud)
    dropped = mem.fuse(f_aud, torch.zeros_like(out.recall_aud))
    is_full = torch.isclose(out.fused_aud, full, atol=1e-6).all(-1)
    is_dropped = torch.isclose(out.fused_aud, dropped, atol=1e-6).all(-1)
    assert bool((is_full ^ is_dropped).all())  # whole frames, never a mix
    assert abs(is_dropped.float().mean().item() - 0.3) < 0.03
    torch.testing.assert_close(out.recall_aud, mem.recall(out.addr_aud))
    torch.testing.assert_close(mem.eval()(f_aud).fused_aud, full)
    with pytest.raises(ValueError, match="recall_drop"):
        AudioLipMemory(dim=8, n_slots=4, recall_drop=1.0)


@pytest.mark.parametrize(("lip_path_audio", "share"), [(False, 1.5), (False, -0.1), (True, 0.5)])
def test_lip_path_audio_share_is_refused_out_of_range_or_without_the_deviation(lip_path_audio, share):
    with pytest.raises(ValueError, match="lip_path_audio_share"):
        AudioLipMemory(dim=8, n_slots=4, lip_path_audio=lip_path_audio, lip_path_audio_share=share)


def test_addressing_is_float32_under_bf16_autocast(mem):
    """The cosine logits ignore autocast: the same kappa * cos as in plain float32."""
    x = torch.randn(20, 32)
    plain = cosine_logits(x, mem.key, mem.kappa)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = cosine_logits(x, mem.key, mem.kappa)
        addr = mem.address_audio(x)
    assert auto.dtype == torch.float32 and addr.dtype == torch.float32
    assert torch.allclose(auto, plain, atol=1e-5)
    # bf16 rounding of the normalised vectors would move logits by up to ~kappa / 128
    xb, kb = (F.normalize(t, dim=-1).bfloat16().float() for t in (x, mem.key))
    assert (mem.kappa * xb @ kb.t() - plain).abs().max() > 1e-3


def test_address_lip_matches_the_training_forward(mem):
    f_aud, f_lip = torch.randn(6, 32), torch.randn(6, 32)
    assert torch.allclose(mem.address_lip(f_lip), mem(f_aud, f_lip).addr_lip)


def test_spherical_kmeans_recovers_separated_directions():
    g = torch.Generator().manual_seed(1)
    centres = F.normalize(torch.randn(6, 32, generator=g), dim=-1)
    truth = torch.arange(300) % 6
    # different lengths and small angular noise: only the directions define the clusters
    x = (centres[truth] + 0.05 * torch.randn(300, 32, generator=g)) * torch.rand(300, 1, generator=g).add(0.5)
    labels = spherical_kmeans(x, 6, seed=3)
    pairs = set(zip(truth.tolist(), labels.tolist(), strict=True))
    assert len(pairs) == 6 and len({c for _, c in pairs}) == 6  # a bijection between groups and clusters
    with pytest.raises(ValueError, match="at least 6"):
        spherical_kmeans(x[:5], 6)


def test_init_from_data_sets_values_and_keys_to_cluster_means(mem):
    g = torch.Generator().manual_seed(2)
    v = torch.randn(120, 32, generator=g)
    q = torch.randn(120, 32, generator=g)
    init_from_data(mem, v, q, seed=0)
    labels = spherical_kmeans(v, mem.n_slots, seed=0)
    for s in range(mem.n_slots):
        members = labels == s
        assert members.any()  # every slot gets frames
        torch.testing.assert_close(mem.value[s], v[members].mean(0))
        torch.testing.assert_close(mem.key[s], q[members].mean(0))
    # each frame's lip query is nearest (cosine) to the value of its own cluster, mostly
    nearest = cosine_logits(v, mem.value, 1.0).argmax(-1)
    assert (nearest == labels).float().mean() > 0.9


def test_init_from_audio_clusters_what_is_said_and_averages_the_speakers_out(mem):
    # Lip queries = mouth shape (the phone) + a larger speaker look; audio queries = the phone.
    g = torch.Generator().manual_seed(3)
    n_phones, n_speakers, dim = mem.n_slots, 3, 32
    phone_dirs = torch.randn(n_phones, dim, generator=g)
    speaker_dirs = 3.0 * torch.randn(n_speakers, dim, generator=g)
    phone = torch.arange(n_phones).repeat_interleave(n_speakers * 4)  # (N,)
    speaker = torch.arange(n_speakers).repeat_interleave(4).repeat(n_phones)  # (N,)
    noise = 0.05 * torch.randn(len(phone), dim, generator=g)
    v = phone_dirs[phone] + speaker_dirs[speaker] + noise
    q = phone_dirs[phone] + noise
    init_from_data(mem, v, q, seed=0, by="audio")
    labels = spherical_kmeans(q, mem.n_slots, seed=0)
    for s in range(mem.n_slots):
        members = labels == s
        torch.testing.assert_close(mem.value[s], v[members].mean(0))
        torch.testing.assert_close(mem.key[s], q[members].mean(0))
    # each slot holds one phone, spoken by every speaker
    for s in range(mem.n_slots):
        assert len(set(phone[labels == s].tolist())) == 1
        assert len(set(speaker[labels == s].tolist())) == n_speakers
    with pytest.raises(ValueError, match="choose 'lip' or 'audio'"):
        init_from_data(mem, v, q, by="both")


def test_sharpness_loss_bounds_and_what_usage_misses():
    S = 12
    uniform = torch.full((10, S), 1.0 / S)
    one_hot = torch.eye(S)[torch.arange(10) % S]
    assert sharpness_loss(one_hot).item() == pytest.approx(0.0, abs=1e-6)
    assert sharpness_loss(uniform).item() == pytest.approx(1.0, abs=1e-6)
    # every frame addressing all slots evenly satisfies the usage loss, not the sharpness loss
    assert usage_loss(uniform).item() == pytest.approx(0.0, abs=1e-6)
    assert usage_loss(one_hot[:1].expand(10, S)).item() == pytest.approx(1.0, abs=1e-6)
    soft = torch.softmax(torch.randn(10, S), -1)
    assert 0.0 < sharpness_loss(soft).item() < 1.0


def test_hard_alignment_loss_targets_the_lip_argmax_and_trains_the_audio_side_only():
    S = 8
    lip_logits = torch.randn(20, S, requires_grad=True)
    addr_lip = lip_logits.softmax(-1)
    target = addr_lip.argmax(-1)
    # A_aud that puts all its weight on A_lip's top slot costs nothing, on another slot a lot
    assert hard_alignment_loss(torch.eye(S)[target], addr_lip).item() == pytest.approx(0.0, abs=1e-6)
    assert hard_alignment_loss(torch.eye(S)[(target + 1) % S], addr_lip).item() > 50
    # a uniform A_aud costs log S whatever A_lip is; a soft A_lip does not soften the target
    uniform = torch.full((20, S), 1.0 / S)
    assert hard_alignment_loss(uniform, addr_lip).item() == pytest.approx(math.log(S), rel=1e-6)
    assert hard_alignment_loss(torch.eye(S)[target], (lip_logits.detach() * 0.01).softmax(-1)).item() < 1e-6
    aud_logits = torch.randn(20, S, requires_grad=True)
    hard_alignment_loss(aud_logits.softmax(-1), addr_lip).backward()
    assert aud_logits.grad.abs().sum() > 0 and lip_logits.grad is None
    # lowering the loss raises the target slot's weight: one gradient step on the logits
    with torch.no_grad():
        before = aud_logits.softmax(-1).gather(1, target[:, None]).mean()
        after = (aud_logits - 1.0 * aud_logits.grad).softmax(-1).gather(1, target[:, None]).mean()
    assert after > before


def test_centred_queries_follow_the_running_mean_in_training_only():
    torch.manual_seed(0)
    mem = AudioLipMemory(dim=16, n_slots=6, centre_queries=True)
    offset = torch.full((16,), 5.0)  # a large direction shared by every query
    f = torch.randn(64, 16)
    mem.train()
    for _ in range(200):
        mem.audio_query(f + offset)
    torch.testing.assert_close(
        mem.audio_centre, mem.query_proj(f + offset).mean(0).detach(), atol=1e-3, rtol=0
    )
    mem.eval()
    frozen = mem.audio_centre.clone()
    q = mem.audio_query(f + offset)
    assert torch.equal(mem.audio_centre, frozen)  # inference never moves it
    assert q.mean(0).abs().max() < 1e-2  # the shared direction is gone
    out = mem(f + offset, f)
    torch.testing.assert_close(out.audio_query, q)
    torch.testing.assert_close(out.addr_lip, mem.address_lip(f))
    assert "audio_centre" not in dict(AudioLipMemory(16, 6).named_buffers())  # old checkpoints still load


@pytest.mark.parametrize("detached", [False, True])
def test_a_detached_audio_query_keeps_addressing_gradients_out_of_f_aud_only(detached):
    """With audio_query_detached, L_align and r_aud reach Linear_q, K and V but not f_aud;
    f_aud still learns through its own branch of the fusion. The forward values are unchanged."""
    torch.manual_seed(0)
    mem = AudioLipMemory(dim=16, n_slots=8, dropout=0.0, audio_query_detached=detached)
    f_aud = torch.randn(12, 16, requires_grad=True)
    out = mem(f_aud, torch.randn(12, 16))
    out.loss_align.backward(retain_graph=True)
    assert (f_aud.grad is None) is detached
    assert mem.query_proj.weight.grad.abs().sum() > 0 and mem.key.grad.abs().sum() > 0
    f_aud.grad = None
    out.recall_aud.sum().backward(retain_graph=True)  # the image losses' route through r_aud
    assert (f_aud.grad is None) is detached
    out.fused_aud.sum().backward()  # the fusion's own f_aud branch always trains f_aud
    assert f_aud.grad is not None and f_aud.grad.abs().sum() > 0
    torch.manual_seed(0)
    other = AudioLipMemory(dim=16, n_slots=8, dropout=0.0, audio_query_detached=not detached)
    torch.testing.assert_close(other.address_audio(f_aud), mem.address_audio(f_aud))
