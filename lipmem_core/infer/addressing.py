"""The memory views of a generator: audio -> addressing A_aud, addressing -> lip images.

`address_audio` gives A_aud per video frame from 16 kHz audio (no decoder run): the input of
every memory analysis (analysis.addressing joins it with phones). `decode_addresses` draws a
face from given addressing weights instead of audio; a one-hot row draws one slot's value V_s
(`decode_slot`), a hand-made track steers the lips through memory.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from lipmem_core.audio import mel_windows, melspectrogram, num_frames
from lipmem_core.errors import LipMemError
from lipmem_core.infer.face import full_frame_box, mouth_mask, paste_mouth
from lipmem_core.model.encoders import identity_input
from lipmem_core.model.generator import LipMemGenerator
from lipmem_core.pixels import to_uint8, to_unit

AddressFn = Callable[[torch.Tensor], torch.Tensor]  # mel windows (N, 1, 80, 16) -> A_aud (N, S)
SHAPE_BUCKET = 64  # address_audio's batches are padded to a multiple of this many windows


@torch.inference_mode()
def address_audio(
    model: LipMemGenerator,
    audio: np.ndarray,
    batch_size: int = 512,
    progress: bool = False,
    address_fn: AddressFn | None = None,
) -> np.ndarray:
    """A_aud of every video frame of 16 kHz `audio`: (n_samples,) -> (n_frames, S) float32.

    Frame k is addressed from its 16-mel-frame window centred on (k + 0.5) / 25 s.
    `address_fn` replaces `model.address` (e.g. by `lipmem_core.infer.fast.inference_copy(model)`'s).
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or audio.size == 0:
        raise LipMemError(f"expected non-empty mono audio (n_samples,), got shape {audio.shape}")
    was_training = model.training
    model.eval()
    address = address_fn or model.address
    try:
        mel = melspectrogram(audio)  # (80, M)
        n = num_frames(len(audio))
        param = next(model.parameters())
        out = np.empty((n, model.cfg.n_slots), dtype=np.float32)
        # batches start on a window boundary, so that model.address groups frames into the
        # windows the generator decodes (it matters with ModelConfig.audio_context)
        step = max(model.cfg.n_frames, batch_size - batch_size % model.cfg.n_frames)
        starts = range(0, n, step)
        for lo in tqdm(starts, desc="addressing", unit="batch", disable=not progress):
            idx = np.arange(lo, min(lo + step, n))
            # Pad the batch to a multiple of SHAPE_BUCKET windows (repeating the last): oneDNN
            # keeps compiled kernels per input shape, so a shape per clip length would grow a
            # server's memory with every new length (benchmarks/soak.py); rows are independent.
            padded = np.concatenate([idx, np.full(-len(idx) % SHAPE_BUCKET, idx[-1])])
            win = torch.from_numpy(mel_windows(mel, padded)).unsqueeze(1)  # (n', 1, 80, 16)
            out[lo : lo + len(idx)] = (
                address(win.to(param.device, param.dtype)).float().cpu().numpy()[: len(idx)]
            )  # (n, S)
    finally:
        model.train(was_training)
    return out


def _identity_crop(identity: np.ndarray, img_size: int) -> np.ndarray:
    """An identity crop checked and resized to the model's size: uint8 (img_size, img_size, 3)."""
    img = np.asarray(identity)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"identity must be a uint8 RGB image (H, W, 3), got {img.dtype} {img.shape}")
    if img.shape[:2] != (img_size, img_size):
        img = cv2.resize(img, (img_size, img_size), interpolation=cv2.INTER_AREA)
    return img


def _face_input(crop: np.ndarray, n: int) -> torch.Tensor:
    """Identity crop uint8 (H, W, 3) -> model face input (n, 6, 1, H, W): lower half hidden ++ reference."""
    ref = to_unit(crop).permute(2, 0, 1)  # (3, H, W) in [-1, 1]
    face = identity_input(ref[:, None], ref[:, None])  # (6, 1, H, W): the lower half always hidden
    return face.expand(n, -1, -1, -1, -1)  # (n, 6, 1, H, W)


@torch.inference_mode()
def decode_addresses(
    model: LipMemGenerator, identity: np.ndarray, address: np.ndarray, batch_size: int = 32
) -> np.ndarray:
    """Frames decoded for an identity with given addressing weights: (T, S) -> uint8 (T, H, W, 3).

    A one-hot row decodes exactly one slot's value V_s; f_aud is that of silence (mel=None,
    the model's rule for decoding without audio). Each decoded crop is pasted into the
    identity through the feathered mouth mask, as generation pastes every frame
    (TalkingFacePipeline), so a slot shows what it would put in a video: the decoder's raw
    lower half carries a tint step at the masked half's edge (docs/TRAINING.md) that generated
    videos never show.
    """
    address = np.asarray(address, dtype=np.float32)  # (T, S)
    if address.ndim != 2 or address.shape[1] != model.cfg.n_slots:
        raise ValueError(f"address must be (T, {model.cfg.n_slots}), got {address.shape}")
    was_training = model.training
    model.eval()
    param = next(model.parameters())
    size = model.cfg.img_size
    crop = _identity_crop(identity, size)
    box, mask = full_frame_box(size, size), mouth_mask(size)
    out = []
    try:
        for lo in range(0, len(address), batch_size):
            a = torch.from_numpy(address[lo : lo + batch_size]).to(param.device, param.dtype)  # (b, S)
            face = _face_input(crop, len(a)).to(param.device, param.dtype)
            frames = model.decode_with_address(face, None, a[:, None, :])  # (b, 3, 1, H, W)
            decoded = to_uint8(frames[:, :, 0]).permute(0, 2, 3, 1).cpu().numpy()  # (b, H, W, 3)
            out.extend(paste_mouth(crop, box, d, mask, colour_match=False) for d in decoded)
    finally:
        model.train(was_training)
    return np.stack(out) if out else np.zeros((0, size, size, 3), np.uint8)


def decode_slot(model: LipMemGenerator, identity: np.ndarray, slot: int) -> np.ndarray:
    """The lip image slot `slot` stores, drawn on an identity crop: uint8 (H, W, 3)."""
    if not 0 <= slot < model.cfg.n_slots:
        raise LipMemError(f"slot {slot} does not exist: this memory has slots 0..{model.cfg.n_slots - 1}")
    return decode_addresses(model, identity, np.eye(model.cfg.n_slots, dtype=np.float32)[[slot]])[0]
