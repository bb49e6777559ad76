"""Mouth-shape slots: groups of the exact mouth parameters, and the loss towards them."""

from __future__ import annotations

import pytest
import torch

from lipmem_core.model.mouth_slots import MouthSlots


def _mouths(n: int, seed: int = 0, shape: list[torch.Tensor] | None = None) -> torch.Tensor:
    """n frames around 4 well-separated mouth shapes, with parameters on different scales;
    the shape index of each frame is appended to `shape` if given."""
    g = torch.Generator().manual_seed(seed)
    shapes = torch.tensor([[0.0] * 7, [1.0] * 7, [0, 1, 0, 1, 0, 1, 0.0], [1, 0, 1, 0, 1, 0, 1.0]])
    index = torch.randint(4, (n,), generator=g)
    if shape is not None:
        shape.append(index)
    x = shapes[index] + 0.02 * torch.randn(n, 7, generator=g)
    return x * torch.tensor([1, 10, 0.1, 1, 1, 1, 1.0])  # standardisation makes the scales equal


def test_fit_finds_the_shapes_and_labels_are_the_nearest_group():
    slots = MouthSlots(n_slots=4)
    with pytest.raises(ValueError, match="not fitted"):
        slots.loss(torch.full((2, 4), 0.25), torch.full((2, 4), 0.25), _mouths(2))
    shape: list[torch.Tensor] = []
    mouth = _mouths(400, shape=shape)
    labels = slots.fit(mouth)
    # frames of one shape share a group and no group holds two shapes
    assert torch.equal(shape[0][:, None] == shape[0][None], labels[:, None] == labels[None])
    fresh = _mouths(50, seed=1)
    assert torch.equal(slots.labels(fresh.reshape(5, 10, 7)).reshape(-1), slots.labels(fresh))
    with pytest.raises(ValueError, match="at least 4"):
        MouthSlots(n_slots=4).fit(mouth[:3])


def test_loss_is_low_for_addresses_on_the_frames_group_and_trains_both():
    slots = MouthSlots(n_slots=4)
    mouth = _mouths(64)
    target = slots.fit(mouth)
    right = torch.nn.functional.one_hot(target, 4).float() * 0.97 + 0.01  # (64, 4), rows sum to 1
    wrong = right.roll(1, dims=1)
    assert slots.loss(right, right, mouth) < 0.1 < slots.loss(wrong, right, mouth)
    logits_aud, logits_lip = torch.zeros(64, 4, requires_grad=True), torch.zeros(64, 4, requires_grad=True)
    slots.loss(logits_aud.softmax(-1), logits_lip.softmax(-1), mouth).backward()
    assert logits_aud.grad.abs().sum() > 0 and logits_lip.grad.abs().sum() > 0
