"""Inference: a face (photo, video or SynthTalk crop) + speech -> lip-synced frames (or an MP4).

`TalkingFacePipeline` owns the model, the device, inference mode and batching. A video is
streamed in chunks of `chunk_frames` output frames: read, track, crop, generate, paste and
encode, so peak memory does not grow with the length of the video.

Timing: output frame k covers `[k / fps, (k + 1) / fps)`; its mel window is that of the 25 fps
frame whose centre is nearest (audio.mel_windows works on the 25 fps grid; at other frame rates
this is within half a 25 fps frame, 20 ms). Audio longer than the video plays the video
forward and back (ping-pong); shorter audio trims it.

What drives the decoder is `recall`, one of RECALLS:
- "memory": the generator as trained (its recall r_aud = A_aud V, or f_aud alone for a
  generator built without memory);
- "zero": the recall of a memory-trained generator is zeroed, i.e. the decoder is driven by
  `decode_with_address(face, mel, 0)` so it sees f_aud alone (the fusion layer was trained with
  dropout on its input, so a missing recall is not foreign to it);
- "ablation": the no-memory ablation generator given to the pipeline as `ablation=` draws
  instead, which is the fairer comparison.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lipmem_core.audio import check_speech, load_audio, mel_windows, melspectrogram
from lipmem_core.checkpoint import LoadedCheckpoint, check_kind, load_checkpoint
from lipmem_core.config import FPS, SAMPLE_RATE
from lipmem_core.errors import CheckpointError, InputTooLongError, LipMemError, NoFaceFoundError
from lipmem_core.infer.face import FaceTracker, crop_face, full_frame_box, mouth_mask, paste_mouth, still_box
from lipmem_core.infer.fast import inference_copy
from lipmem_core.infer.video import (
    FrameReader,
    VideoWriter,
    frame_count_for_audio,
    image_size,
    is_image_path,
    read_image,
)
from lipmem_core.limits import WORK_SIDE
from lipmem_core.model.encoders import identity_input
from lipmem_core.model.generator import LipMemGenerator
from lipmem_core.pixels import to_uint8, to_unit
from lipmem_core.provenance import PROJECT_ROOT

DEFAULT_CHECKPOINT = PROJECT_ROOT / "checkpoints" / "lipmem-synthtalk"
Progress = Callable[[float, str], None]
RECALLS = ("memory", "zero", "ablation")

OUT_OF_DOMAIN = (
    "This face is a real photo or video, far outside the synthetic SynthTalk faces the model "
    "was trained on: expect a cartoon-like, blurry mouth. The lip timing is still the model's."
)


@dataclass
class GenerationResult:
    """What `generate` made. `addressing` is A_aud per output frame `(n_frames, S)` (None when
    the recall is not the memory's or the model has none). In memory (no `out_path`): `frames`
    `(n_frames, H, W, 3)` uint8 RGB, the input with the mouth replaced, and `crops`, the
    generated face crops `(img_size, img_size, 3)` per frame (None where no face was found)."""

    out_path: Path | None
    n_frames: int
    fps: float
    faceless_frames: int
    addressing: np.ndarray | None
    timings: dict[str, float]
    notices: list[str] = field(default_factory=list)
    out_of_domain: bool = False
    frames: np.ndarray | None = None
    crops: list[np.ndarray | None] | None = None


@dataclass
class Chunk:
    """One streamed chunk: output frames `start .. start + len(frames) - 1`."""

    start: int
    frames: list[np.ndarray]  # RGB uint8 (H, W, 3), the face's mouth replaced
    boxes: list[np.ndarray | None]  # crop box [cx, cy, size] per frame, None = no face
    crops: list[np.ndarray | None]  # generated crops (img_size, img_size, 3) uint8
    addressing: np.ndarray | None  # (n, S)


def pingpong(k: np.ndarray, n: int) -> np.ndarray:
    """Source frame of output frame k when a video of n frames plays forward, back, forward..."""
    if n == 1:
        return np.zeros_like(k)
    r = k % (2 * n - 2)
    return np.where(r < n, r, 2 * n - 2 - r)


class _FaceSource:
    """The face input as indexable frames: a still image, an in-memory clip or a video file."""

    def __init__(self, face: str | os.PathLike | np.ndarray):
        self.reader: FrameReader | None = None
        self.path: Path | None = None
        self.source_size: tuple[int, int] | None = None  # the file's (width, height) when downscaled
        width = height = None
        if isinstance(face, np.ndarray):
            clip = face if face.ndim == 4 else face[None]
            if clip.ndim != 4 or clip.shape[-1] != 3 or clip.dtype != np.uint8:
                raise LipMemError(f"face array must be uint8 (H, W, 3) or (N, H, W, 3), got {face.shape}")
            self.clip, self.fps = clip, float(FPS)
        else:
            # Files are checked against MAX_IMAGE_SIDE from their headers and decoded at most
            # WORK_SIDE a side (video.read_image, video.FrameReader).
            self.path = Path(face)
            if is_image_path(self.path):
                self.clip, self.fps = read_image(self.path, max_side=WORK_SIDE)[None], float(FPS)
                width, height = image_size(self.path)
            else:
                self.reader = FrameReader(self.path, max_side=WORK_SIDE)
                self.clip, self.fps = None, self.reader.info.fps
                width, height = self.reader.source_info.width, self.reader.source_info.height
        if self.reader is not None:
            info = self.reader.info
            self.n, self.height, self.width = info.n_frames, info.height, info.width
        else:
            self.n, self.height, self.width = self.clip.shape[:3]
        if width is not None and (width, height) != (self.width, self.height):
            self.source_size = (width, height)
        self.still = self.n == 1

    def frames(self, idx: np.ndarray) -> list[np.ndarray]:
        if self.reader is None:
            return [self.clip[i] for i in idx]
        lo, hi = int(idx.min()), int(idx.max()) + 1
        got = self.reader.read(lo, hi)
        # A header may overstate the frame count; hold the last decoded frame rather than fail.
        return [got[min(int(i) - lo, len(got) - 1)] for i in idx]

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


def _fast_bf16(device: torch.device) -> bool:
    """bf16 autocast pays off only with native bf16 units (AVX512-BF16/AMX on CPU)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def _same_file(a: Path, b: str | os.PathLike | None) -> bool:
    return b is not None and Path(b).exists() and a.exists() and os.path.samefile(a, b)


class TalkingFacePipeline:
    """Audio + face -> lip-synced frames and per-frame memory addressing.

    `model`: a checkpoint directory (or Hub id), a `LoadedCheckpoint`, or a `LipMemGenerator`
    (e.g. a random-init one before any checkpoint is trained); `ablation`: the same for the
    no-memory ablation, used by `recall="ablation"`. Loaded once, reused by every call;
    calls may run concurrently (no state is shared between calls apart from the read-only
    model). `precision="auto"` runs the generator under bf16 autocast where the hardware has
    native bf16 (faster there, docs/ARCHITECTURE.md "Measured figures"; pixels differ by a level or two) and computes
    the returned addressing A_aud in fp32 either way.
    """

    def __init__(
        self,
        model: str | os.PathLike | LoadedCheckpoint | LipMemGenerator | None = None,
        *,
        ablation: str | os.PathLike | LoadedCheckpoint | LipMemGenerator | None = None,
        device: str | None = None,
        chunk_frames: int = 20,
        batch_windows: int = 4,
        detect_every: int = 5,
        precision: str = "auto",
    ):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision {precision!r}: choose auto, fp32 or bf16")
        self.bf16 = precision == "bf16" or (precision == "auto" and _fast_bf16(self.device))
        self.model, self.metadata = self._load(model if model is not None else DEFAULT_CHECKPOINT)
        self.ablation = None
        if ablation is not None:
            self.ablation, _ = self._load(ablation)
        cfg = self.model.cfg
        self.img_size, self.T = cfg.img_size, cfg.n_frames
        self.chunk_frames = max(1, math.ceil(chunk_frames / self.T)) * self.T
        self.batch_windows = batch_windows
        self.detect_every = detect_every
        self._mask = mouth_mask(self.img_size)

    def _load(
        self, model: str | os.PathLike | LoadedCheckpoint | LipMemGenerator
    ) -> tuple[LipMemGenerator, dict]:
        """An inference copy of the generator (see `inference_copy`) and its metadata."""
        if isinstance(model, LipMemGenerator):
            return inference_copy(model, self.device), {}
        if isinstance(model, (str, os.PathLike)):
            if Path(model) == DEFAULT_CHECKPOINT and not DEFAULT_CHECKPOINT.exists():
                raise CheckpointError(
                    f"no checkpoint was given and the default {DEFAULT_CHECKPOINT} is not there: "
                    "train one (python -m lipmem_core.train) or pass a generator checkpoint"
                )
            model = load_checkpoint(model, kind="generator")
        if not isinstance(model, LoadedCheckpoint):
            raise CheckpointError(
                f"expected a generator: a checkpoint directory, a LoadedCheckpoint or a LipMemGenerator, "
                f"not {type(model).__name__}"
            )
        check_kind(model.kind, "generator", model.path)
        return inference_copy(model.model, self.device), dict(model.metadata or {})

    @property
    def trained_on_synthtalk(self) -> bool:
        """True unless the checkpoint's metadata records real training data (the corpus kind
        that training stores, `training_data.kind`, see provenance.corpus_provenance). Unknown
        provenance counts as SynthTalk, the only data this project ships."""
        return (self.metadata.get("training_data") or {}).get("kind") != "real"

    # ---------------------------------------------------------------- model
    def _drawer(self, recall: str) -> LipMemGenerator:
        """The generator that draws for `recall` (see the module docstring)."""
        if recall not in RECALLS:
            raise ValueError(f"recall {recall!r}: choose one of {RECALLS}")
        if recall != "ablation":
            return self.model
        if self.ablation is None:
            raise ValueError(
                'recall="ablation" needs the ablation generator: TalkingFacePipeline(..., ablation=)'
            )
        return self.ablation

    def _run_windows(
        self, crops: np.ndarray, mels: np.ndarray, recall: str, refs: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Generate W windows of T frames: crops (W, T, H, W, 3) uint8, mels (W, T, 80, 16)
        -> frames (W, T, H, W, 3) uint8 and A_aud (W, T, S) or None. `refs` (W, T, H, W, 3) are
        the identity input's reference frames; by default the crops themselves."""
        model = self._drawer(recall)
        zero_recall = recall == "zero" and model.memory is not None
        with torch.inference_mode():
            target = to_unit(torch.from_numpy(crops).to(self.device)).permute(
                0, 4, 1, 2, 3
            )  # (W, 3, T, H, W)
            ref = (
                target
                if refs is None
                else to_unit(torch.from_numpy(refs).to(self.device)).permute(0, 4, 1, 2, 3)
            )
            face = identity_input(target, ref)  # (W, 6, T, H, W): target's lower half hidden, as in training
            mel = torch.from_numpy(mels).to(self.device).unsqueeze(2)  # (W, T, 1, 80, 16)
            addr = None
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                if zero_recall:
                    zeros = torch.zeros(*mel.shape[:2], model.cfg.n_slots, device=self.device)  # (W, T, S)
                    frames = model.decode_with_address(face, mel, zeros)  # (W, 3, T, H, W)
                else:
                    out = model(face, mel)
                    frames = out.frames  # (W, 3, T, H, W)
            if recall == "memory" and model.memory is not None:
                if self.bf16:  # addressing for analysis stays exact: fp32 audio path only
                    addr = self.model.address(mel.float()).float().cpu().numpy()  # (W, T, S)
                else:
                    addr = out.addr_aud.float().cpu().numpy()  # (W, T, S)
            img = to_uint8(frames)
            img = img.permute(0, 2, 3, 4, 1).cpu().numpy()  # (W, T, H, W, 3)
        return img, addr

    def _address_only(self, mels: np.ndarray) -> np.ndarray:
        """A_aud for whole windows that have no face, concatenated: mels (N, 80, 16) -> (N, S)."""
        with torch.inference_mode():
            mel = torch.from_numpy(mels).to(self.device).unsqueeze(1)  # (N, 1, 80, 16)
            return self.model.address(mel).float().cpu().numpy()  # (N, S)

    # ---------------------------------------------------------------- streaming
    def stream(
        self,
        face: str | os.PathLike | np.ndarray,
        audio: np.ndarray | str | os.PathLike,
        *,
        recall: str = "memory",
        face_is_crop: bool = False,
        timings: dict[str, float] | None = None,
        progress: Progress | None = None,
        max_seconds: float | None = None,
        reference_shift: int = 0,
    ) -> Iterator[Chunk]:
        """Yield output chunks in order (see `generate`); nothing is written to disk.

        Raises NoFaceFoundError when a still image holds no face (a video's faceless frames
        pass through instead).
        """
        t = timings if timings is not None else {}
        for key in ("decode", "detect", "audio", "generate", "paste"):
            t.setdefault(key, 0.0)
        wav = load_audio(audio) if isinstance(audio, (str, os.PathLike)) else np.asarray(audio, np.float32)
        if max_seconds is not None and len(wav) > max_seconds * SAMPLE_RATE:
            raise InputTooLongError(
                f"the audio lasts {len(wav) / SAMPLE_RATE:.1f} s; the limit here is {max_seconds:.0f} s: trim it"
            )
        check_speech(wav)  # silent input is an error everywhere (audio.check_speech)
        self._drawer(recall)  # an unknown or unavailable recall fails before any work
        if reference_shift and not (face_is_crop and isinstance(face, np.ndarray)):
            raise ValueError("reference_shift needs in-memory crops (a uint8 array with face_is_crop=True)")
        source = _FaceSource(face)
        try:
            yield from self._stream(source, wav, recall, face_is_crop, t, progress, reference_shift)
        finally:
            source.close()

    def _stream(self, source, wav, recall, face_is_crop, t, progress, reference_shift=0) -> Iterator[Chunk]:
        tic = time.perf_counter()
        mel = melspectrogram(wav)  # (80, M)
        n_out = frame_count_for_audio(len(wav), source.fps)
        t["audio"] += time.perf_counter() - tic
        fixed_box = None
        if face_is_crop:
            fixed_box = full_frame_box(source.height, source.width)
        elif source.still:
            tic = time.perf_counter()
            fixed_box = still_box(source.frames(np.array([0]))[0])
            t["detect"] += time.perf_counter() - tic
            if fixed_box is None:
                raise NoFaceFoundError(
                    "no frontal face found in the image: use a well-lit, front-facing photo "
                    "where the face is at least ~80 px tall"
                )
        tracker = FaceTracker(every=self.detect_every)
        want_addr = recall == "memory" and self.model.memory is not None
        for start in range(0, n_out, self.chunk_frames):
            k = np.arange(start, min(n_out, start + self.chunk_frames))
            tic = time.perf_counter()
            src = pingpong(k, source.n)
            frames = source.frames(src)
            # Crops only (stream checks): the reference of frame i is frame i + shift, wrapping.
            refs = source.frames((src + reference_shift) % source.n) if reference_shift else None
            t["decode"] += time.perf_counter() - tic

            tic = time.perf_counter()
            if fixed_box is not None:
                boxes = [fixed_box] * len(k)
                # A still face: one crop serves every frame.
                crop0 = crop_face(frames[0], fixed_box, self.img_size)
                crops = [crop0 if source.still else crop_face(f, fixed_box, self.img_size) for f in frames]
            else:
                boxes = [tracker.update(f) for f in frames]
                crops = [
                    None if b is None else crop_face(f, b, self.img_size)
                    for f, b in zip(frames, boxes, strict=True)
                ]
            t["detect"] += time.perf_counter() - tic

            tic = time.perf_counter()
            k25 = np.floor((k + 0.5) * FPS / source.fps).astype(np.int64)
            mels = mel_windows(mel, k25)  # (n, 80, 16)
            t["audio"] += time.perf_counter() - tic

            tic = time.perf_counter()
            out_crops, addr = self._generate_chunk(crops, mels, recall, want_addr, refs)
            t["generate"] += time.perf_counter() - tic

            tic = time.perf_counter()
            out = [
                f if c is None else paste_mouth(f, b, c, self._mask)
                for f, b, c in zip(frames, boxes, out_crops, strict=True)
            ]
            t["paste"] += time.perf_counter() - tic
            if progress is not None:
                progress(min(1.0, (start + len(k)) / n_out), f"frame {start + len(k)} of {n_out}")
            yield Chunk(start, out, boxes, out_crops, addr)

    def _generate_chunk(
        self,
        crops: list[np.ndarray | None],
        mels: np.ndarray,
        recall: str,
        want_addr: bool,
        refs: list[np.ndarray] | None = None,
    ) -> tuple[list[np.ndarray | None], np.ndarray | None]:
        """Model pass over one chunk, grouped in windows of T frames (the last one padded by
        repeating its final frame). Frames without a face borrow the nearest face crop of
        their window as filler (their output is discarded); windows with no face at all are
        skipped and only addressed. `refs` (one crop per frame): the references, when they are
        not the crops themselves."""
        n, T = len(crops), self.T
        out: list[np.ndarray | None] = [None] * n
        addr = np.zeros((n, self.model.cfg.n_slots), np.float32) if want_addr else None
        jobs = []  # (frame indices of the window, filled crops)
        faceless = []
        for w0 in range(0, n, T):
            idx = list(range(w0, min(n, w0 + T)))
            have = [i for i in idx if crops[i] is not None]
            if not have:
                faceless.extend(idx)
                continue
            filled = [crops[min(have, key=lambda j: abs(j - i))] for i in idx]
            jobs.append((idx, filled))
        for b0 in range(0, len(jobs), self.batch_windows):
            batch = jobs[b0 : b0 + self.batch_windows]
            pad = lambda seq: list(seq) + [seq[-1]] * (T - len(seq))  # noqa: E731
            crop_arr = np.stack([np.stack(pad(filled)) for _, filled in batch])  # (W, T, H, W, 3)
            mel_arr = np.stack([mels[pad(idx)] for idx, _ in batch])  # (W, T, 80, 16)
            ref_arr = (
                None
                if refs is None
                else np.stack([np.stack([refs[i] for i in pad(idx)]) for idx, _ in batch])
            )
            img, a = self._run_windows(crop_arr, mel_arr, recall, ref_arr)
            for w, (idx, _) in enumerate(batch):
                for j, i in enumerate(idx):
                    if crops[i] is not None:
                        out[i] = img[w, j]
                    if addr is not None and a is not None:
                        addr[i] = a[w, j]
        if addr is not None and faceless:
            addr[faceless] = self._address_only(mels[faceless])
        return out, addr

    # ---------------------------------------------------------------- whole inputs
    def generate(
        self,
        face: str | os.PathLike | np.ndarray,
        audio: np.ndarray | str | os.PathLike,
        out_path: str | os.PathLike | None = None,
        *,
        progress: Progress | None = None,
        recall: str = "memory",
        face_is_crop: bool = False,
        max_seconds: float | None = None,
        reference_shift: int = 0,
    ) -> GenerationResult:
        """Lip-synced frames at the face input's size and frame rate (25 fps for a photo), with
        A_aud per frame; kept in memory, or written as an H.264/AAC MP4 when `out_path` is given
        (then streamed: memory does not grow with the video).

        `face`: image or video path, or uint8 frames `(H, W, 3)` / `(N, H, W, 3)`; `audio`:
        16 kHz mono float32 `(N,)` or any audio file. `face_is_crop=True` skips detection
        (the frame already is a SynthTalk-style crop). Frames with no face pass through
        unchanged and are counted in `faceless_frames`. `recall`: see the module docstring.
        `reference_shift` (in-memory crops only, for evaluation): the identity input's reference
        for frame i is frame i + shift (wrapping) instead of frame i itself, so the generator
        cannot copy the target's own mouth from its reference, as in training.
        """
        if out_path is not None:
            out_path = Path(out_path)
            for src in (face, audio):
                if isinstance(src, (str, os.PathLike)) and _same_file(out_path, src):
                    raise LipMemError(f"output {out_path} is one of the inputs: choose another output path")
        timings: dict[str, float] = {"encode": 0.0}
        tic_total = time.perf_counter()
        wav = load_audio(audio) if isinstance(audio, (str, os.PathLike)) else np.asarray(audio, np.float32)
        source_fps, size, source_size = self._probe(face)
        addressing, faceless, n_frames = [], 0, 0
        frames: list[np.ndarray] = []
        crops: list[np.ndarray | None] = []
        chunks = self.stream(
            face, wav, recall=recall, face_is_crop=face_is_crop, timings=timings,
            progress=progress, max_seconds=max_seconds, reference_shift=reference_shift,
        )  # fmt: skip
        writer = None if out_path is None else VideoWriter(out_path, size[1], size[0], source_fps, wav)
        try:
            for chunk in chunks:
                if writer is None:
                    frames += chunk.frames
                    crops += chunk.crops
                else:
                    tic = time.perf_counter()
                    writer.write(chunk.frames)
                    timings["encode"] += time.perf_counter() - tic
                faceless += sum(b is None for b in chunk.boxes)
                n_frames += len(chunk.frames)
                if chunk.addressing is not None:
                    addressing.append(chunk.addressing)
            if n_frames and faceless == n_frames and not face_is_crop:
                # Faceless frames pass through; with no face anywhere the output would be the
                # input unchanged: a failed request, not a result (the same rule as a photo).
                raise NoFaceFoundError(
                    "no face was found in any frame of the video: use a video where a face is "
                    "clearly visible, frontal and not too small"
                )
            if writer is not None:
                tic = time.perf_counter()
                writer.close()
                timings["encode"] += time.perf_counter() - tic
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        timings["total"] = time.perf_counter() - tic_total
        notices = []
        out_of_domain = not face_is_crop and self.trained_on_synthtalk
        if out_of_domain:
            notices.append(OUT_OF_DOMAIN)
        if faceless:
            notices.append(f"{faceless} of {n_frames} frames had no detectable face and were left unchanged.")
        if recall != "memory":
            how = "the no-memory ablation model" if recall == "ablation" else "recall zeroed"
            notices.append(f"Memory off: {how}.")
        elif self.model.memory is None:
            notices.append("This checkpoint has no memory (the no-memory ablation): no addressing to show.")
        if writer is not None and writer.padded:
            notices.append("The frame size is odd; the video was padded by one pixel for H.264.")
        if source_size is not None:
            notices.append(
                f"The face input is {source_size[0]} x {source_size[1]} px; it was processed and "
                f"written at {size[1]} x {size[0]} (at most {WORK_SIDE} px a side)."
            )
        return GenerationResult(
            out_path=out_path,
            n_frames=n_frames,
            fps=source_fps,
            faceless_frames=faceless,
            addressing=np.concatenate(addressing) if addressing else None,
            timings=timings,
            notices=notices,
            out_of_domain=out_of_domain,
            frames=np.stack(frames) if writer is None and frames else None,
            crops=crops if writer is None else None,
        )

    @staticmethod
    def _probe(face: str | os.PathLike | np.ndarray) -> tuple[float, tuple[int, int], tuple[int, int] | None]:
        """(fps, (height, width) of the output, the input's (width, height) when it was
        downscaled else None) for this face input, without decoding it all."""
        source = _FaceSource(face)
        try:
            return source.fps, (source.height, source.width), source.source_size
        finally:
            source.close()
