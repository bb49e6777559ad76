"""Audio -> A_aud and addressing -> lip images (lipmem_core.infer.addressing), and the one CPU
fast path every inference caller uses (lipmem_core.infer.fast)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lipmem_core.audio import mel_windows, melspectrogram
from lipmem_core.errors import LipMemError
from lipmem_core.infer.addressing import SHAPE_BUCKET, address_audio, decode_addresses, decode_slot
from lipmem_core.infer.fast import inference_copy
from lipmem_core.model.generator import LipMemGenerator
from tests.tiny_model import SLOTS, tiny_config

S = SLOTS


def test_address_audio_follows_the_timing_rule(slot_model, chirp_audio):
    a = address_audio(slot_model, chirp_audio)
    assert a.shape == (33, S)  # ceil(1.3 s * 25)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-5)
    k = 17  # frame k is addressed from the mel window centred on (k + 0.5) / 25 s
    win = torch.from_numpy(mel_windows(melspectrogram(chirp_audio), [k])).unsqueeze(1)  # (1, 1, 80, 16)
    with torch.no_grad():
        np.testing.assert_allclose(a[k], slot_model.address(win)[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(address_audio(slot_model, chirp_audio, batch_size=5), a, atol=1e-6)


def test_inference_copy_addresses_as_the_model_at_any_batch_size(slot_model):
    fast = inference_copy(slot_model.train(), torch.device("cpu")).address
    assert slot_model.training  # the caller's slot_model is left as it was
    slot_model.eval()
    x = torch.randn(33, 1, 80, 16)
    with torch.no_grad():
        ref = slot_model.address(x)
        np.testing.assert_allclose(fast(x).numpy(), ref.numpy(), atol=1e-5)
        np.testing.assert_allclose(fast(x[:7]).numpy(), ref[:7].numpy(), atol=1e-5)


def test_clip_lengths_share_batch_shapes(slot_model):
    """Every clip length used to be a new input shape, and oneDNN keeps compiled kernels per
    shape: server memory grew with each new length. Batches are padded to SHAPE_BUCKET."""
    shapes = set()

    def record(win: torch.Tensor) -> torch.Tensor:
        shapes.add(tuple(win.shape))
        return slot_model.address(win)

    rng = np.random.default_rng(1)
    for n_frames in range(20, 60):
        address_audio(slot_model, rng.normal(0, 0.1, n_frames * 640).astype(np.float32), address_fn=record)
    assert len(shapes) == 1 and next(iter(shapes))[0] == SHAPE_BUCKET


def test_decode_slot_is_the_one_hot_row_of_decode_addresses(slot_model):
    identity = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    image = decode_slot(slot_model, identity, 5)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(
        image, decode_addresses(slot_model, identity, np.eye(S, dtype=np.float32)[[5]])[0]
    )
    assert not np.array_equal(image, decode_slot(slot_model, identity, 6))
    with pytest.raises(LipMemError, match="slots 0..11"):
        decode_slot(slot_model, identity, S)


def test_decoded_slots_change_only_the_mouth_region_of_the_identity(slot_model):
    """Slot images are pasted into the identity through the mouth mask, as generation pastes
    every frame: outside the mask they are the identity's pixels exactly (no tint step at the
    masked half's edge), inside it they are the decoder's, and an identity of another size is
    resized first."""
    from lipmem_core.infer.face import mouth_mask

    rng = np.random.default_rng(3)
    identity = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    images = decode_addresses(slot_model, identity, np.eye(S, dtype=np.float32)[[1, 7]])
    outside = mouth_mask(32) == 0
    assert outside.any() and (~outside).any()
    for image in images:
        np.testing.assert_array_equal(image[outside], identity[outside])
    assert not np.array_equal(images[0][~outside], identity[~outside])  # the decoder drew the mouth
    assert not np.array_equal(images[0], images[1])
    big = np.kron(identity, np.ones((2, 2, 1), np.uint8))  # (64, 64, 3), INTER_AREA gives identity back
    np.testing.assert_array_equal(
        decode_addresses(slot_model, big, np.eye(S, dtype=np.float32)[[1]])[0], images[0]
    )
    with pytest.raises(ValueError, match="uint8 RGB"):
        decode_addresses(slot_model, identity.astype(np.float32), np.eye(S, dtype=np.float32)[[1]])


def test_inference_copy_folds_batchnorm_exactly_and_leaves_the_model_alone():
    torch.manual_seed(0)
    slot_model = LipMemGenerator(tiny_config()).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, as after training
        for m in slot_model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)

    def n_bn(m: LipMemGenerator) -> int:  # on the inference path (the lip encoder is training-only)
        nets = (m.face_encoder, m.audio_encoder, m.decoder)
        return sum(isinstance(x, torch.nn.BatchNorm2d) for net in nets for x in net.modules())

    before = n_bn(slot_model)
    fast = inference_copy(slot_model, torch.device("cpu"))
    assert n_bn(fast) == 0 < before
    assert n_bn(slot_model) == before
    g = torch.Generator().manual_seed(0)
    face = torch.rand(2, 6, 5, 32, 32, generator=g) * 2 - 1
    mel = torch.rand(2, 5, 1, 80, 16, generator=g) * 8 - 4
    with torch.inference_mode():
        a, b = slot_model(face, mel), fast(face, mel)
    torch.testing.assert_close(b.frames, a.frames, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(b.addr_aud, a.addr_aud, atol=1e-5, rtol=1e-5)


def test_address_audio_with_audio_context_is_the_same_at_any_batch_size(chirp_audio):
    """With audio_context a frame's address depends on its window's neighbours, so batches must
    start on the generator's window boundaries; any batch size then gives the same addresses."""
    torch.manual_seed(0)
    model = LipMemGenerator(tiny_config(audio_context=2)).eval()
    torch.nn.init.normal_(model.audio_context.weight, std=0.1)
    a = address_audio(model, chirp_audio)  # (33, S)
    mel = torch.from_numpy(mel_windows(melspectrogram(chirp_audio), range(len(a)))).unsqueeze(1)
    with torch.no_grad():
        np.testing.assert_allclose(a, model.address(mel).numpy(), atol=1e-6)
    for batch_size in (7, 12, 64):
        np.testing.assert_allclose(address_audio(model, chirp_audio, batch_size=batch_size), a, atol=1e-6)
