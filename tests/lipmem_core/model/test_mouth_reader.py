"""The drawn-mouth reader: it learns to read mouths from real frames, judges without learning."""

from __future__ import annotations

import torch

from lipmem_core.model.mouth_reader import DrawnMouthReader, drawn_loss, fit_loss, slot_drawn_loss

SIZE = 32


def _frames(mouth: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Windows (B, 3, T, 32, 32) whose lower half shows a dark box of height mouth[..., 0] and
    width mouth[..., 1] on noisy skin; the upper half is noise that says nothing of the mouth."""
    g = torch.Generator().manual_seed(seed)
    b, t = mouth.shape[:2]
    x = 0.3 + 0.1 * torch.randn(b, 3, t, SIZE, SIZE, generator=g)
    for i in range(b):
        for j in range(t):
            h = 1 + int(mouth[i, j, 0] * 12)
            w = 2 + int(mouth[i, j, 1] * 24)
            x[i, :, j, 18 : 18 + h, 16 - w // 2 : 16 + w // 2 + 1] = -0.8
    return x.clamp(-1, 1)


def _mouths(b: int, seed: int) -> torch.Tensor:
    """(B, 5, 7): jaw and spread vary, the other five parameters are constant."""
    g = torch.Generator().manual_seed(seed)
    m = torch.full((b, 5, 7), 0.5)
    m[..., :2] = torch.rand(b, 5, 2, generator=g)
    return m


def test_the_reader_learns_mouths_from_real_frames_and_reads_unseen_ones():
    torch.manual_seed(0)
    reader = DrawnMouthReader(SIZE)
    opt = torch.optim.Adam(reader.parameters(), lr=3e-3)
    train_mouth = _mouths(16, seed=1)
    train = _frames(train_mouth, seed=1)
    for _ in range(150):
        opt.zero_grad()
        fit_loss(reader, train, train_mouth).backward()
        opt.step()
    test_mouth = _mouths(8, seed=2)
    test = _frames(test_mouth, seed=2)
    # judged in eval mode: unseen frames are read far better than by their mean shape ...
    guess = torch.nn.functional.l1_loss(test_mouth.mean((0, 1)).expand_as(test_mouth), test_mouth)
    right = drawn_loss(reader, [test], test_mouth)
    assert right < 0.5 * guess
    # ... and frames drawn with other mouths are read as other mouths
    assert drawn_loss(reader, [test], test_mouth.flip(0)) > 2 * right


def test_judging_trains_the_frames_only_and_leaves_the_reader_as_it_was():
    reader = DrawnMouthReader(SIZE).train()
    mouth = _mouths(2, seed=0)
    fit_loss(reader, _frames(mouth), mouth)  # real frames move the BatchNorm statistics
    before = {k: v.clone() for k, v in reader.state_dict().items()}
    frames = _frames(mouth).requires_grad_(True)
    other = (_frames(mouth, seed=3) * 0.5).requires_grad_(True)
    drawn_loss(reader, [frames, other], mouth).backward()
    assert reader.training  # the judging switched to eval mode and back
    assert all(p.grad is None for p in reader.parameters())
    for k, v in reader.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert frames.grad.abs().sum() > 0 and other.grad.abs().sum() > 0
    # only the lower half is read: no gradient reaches the upper half of a frame
    assert frames.grad[..., : SIZE // 2, :].abs().sum() == 0


def test_the_reader_fit_does_not_reach_the_frames():
    reader = DrawnMouthReader(SIZE)
    mouth = _mouths(2, seed=0)
    gt = _frames(mouth).requires_grad_(True)
    fit_loss(reader, gt, mouth).backward()
    assert gt.grad is None
    assert all(p.grad is not None for p in reader.parameters())


def test_the_reader_runs_under_bf16_autocast_as_training_does():
    """--bf16 trains under CPU autocast; the reader's resampling has no bf16 kernel of its own."""
    reader = DrawnMouthReader(SIZE)
    mouth = _mouths(2, seed=0)
    frames = _frames(mouth).bfloat16().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = drawn_loss(reader, [frames], mouth) + fit_loss(reader, frames, mouth)
    loss.backward()
    assert torch.isfinite(loss) and frames.grad.abs().sum() > 0


def test_slot_drawn_loss_trains_the_decoded_slots_values_never_the_keys_or_the_reader():
    """L_slot_drawn_mouth decodes the given slots alone: V gets gradient on exactly those rows,
    K none (the address is given), the frozen reader none; its target is the slot's group centre."""
    from lipmem_core.model.generator import LipMemGenerator
    from lipmem_core.model.mouth_slots import MouthSlots
    from tests.tiny_model import tiny_config

    torch.manual_seed(0)
    gen = LipMemGenerator(tiny_config()).train()
    slots_model = MouthSlots(gen.cfg.n_slots)
    slots_model.fit(torch.rand(64, 7, generator=torch.Generator().manual_seed(1)))
    reader = DrawnMouthReader(SIZE)
    face = torch.rand(3, 6, 5, SIZE, SIZE, generator=torch.Generator().manual_seed(2)) * 2 - 1
    chosen = torch.tensor([3, 3, 6])
    loss = slot_drawn_loss(gen, reader, slots_model, face, chosen)
    loss.backward()
    assert torch.isfinite(loss)
    memory = gen.memory
    assert memory.key.grad is None or memory.key.grad.abs().sum() == 0
    touched = memory.value.grad.abs().sum(1) > 0  # (S,)
    assert touched.nonzero().flatten().tolist() == [3, 6]
    assert all(p.grad is None for p in reader.parameters())
    # the target: each slot's group centre, back in the corpus's units
    centres = slots_model.centre_mouth(chosen)  # (3, 7)
    assert centres.shape == (3, 7)
    assert torch.allclose((centres - slots_model.mean) / slots_model.std, slots_model.centres[chosen])
