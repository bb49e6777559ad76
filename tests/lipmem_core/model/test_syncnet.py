"""SyncNet expert: embedding invariants, the cosine BCE, and that it learns a toy sync task."""

from __future__ import annotations

import torch

from lipmem_core.model.losses import syncnet_loss
from lipmem_core.model.syncnet import SyncNet, cosine_bce, lower_half, sync_probability
from tests.lipmem_core.model.test_model import H
from tests.tiny_model import tiny_config


def test_embeddings_are_unit_and_non_negative():
    torch.manual_seed(0)
    net = SyncNet(tiny_config()).eval()
    v, a = net(torch.rand(4, 3, 5, H // 2, H) * 2 - 1, torch.rand(4, 1, 80, 16) * 8 - 4)
    assert v.shape == a.shape == (4, 32)
    for e in (v, a):
        torch.testing.assert_close(e.norm(dim=1), torch.ones(4))
        assert torch.all(e >= 0)
    p = sync_probability(v, a)
    assert torch.all((p > 0) & (p < 1))


def test_frame_order_matters():
    torch.manual_seed(0)
    net = SyncNet(tiny_config()).eval()
    clip = torch.rand(2, 3, 5, H // 2, H)
    assert not torch.allclose(net.embed_video(clip), net.embed_video(clip.flip(2)))


def test_cosine_bce_extremes():
    e = torch.eye(4)
    assert cosine_bce(e, e, torch.ones(4)).item() < 1e-5  # in sync and identical
    assert cosine_bce(e, e.roll(1, 0), torch.zeros(4)).item() < 1e-5  # off sync and orthogonal
    assert cosine_bce(e, e.roll(1, 0), torch.ones(4)).item() > 10  # claimed in sync, orthogonal


def test_lower_half():
    x = torch.arange(8.0).reshape(1, 8, 1).expand(2, 8, 3)
    assert torch.equal(lower_half(x)[0, :, 0], torch.tensor([4.0, 5, 6, 7]))


def test_tiny_syncnet_learns_to_tell_sync_from_offsync():
    torch.manual_seed(0)
    net = SyncNet(tiny_config()).train()
    k = 6
    clips = torch.rand(k, 3, 5, H // 2, H) * 2 - 1  # (K, 3, 5, H/2, W)
    mels = torch.rand(k, 1, 80, 16) * 8 - 4  # (K, 1, 80, 16)
    shift = torch.arange(k).roll(1)
    batch = {
        "frames": torch.cat([clips, clips]),
        "mel": torch.cat([mels, mels[shift]]),  # first half in sync, second half mismatched
        "label": torch.cat([torch.ones(k), torch.zeros(k)]),
    }
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    history = []
    for _ in range(20):
        loss, logs = syncnet_loss(net, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(logs["sync_loss"])
    assert min(history[-5:]) < 0.3 * history[0], history
    net.eval()
    _, logs = syncnet_loss(net, batch)
    assert logs["sync_acc"] >= 0.9
