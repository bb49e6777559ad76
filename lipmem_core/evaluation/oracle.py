r"""The mouth-shape oracle: a small CNN that reads the 7 SynthTalk mouth parameters off a face.

Evaluation needs to ask "what mouth did the generator draw?" in the units the corpus was made
in (`MOUTH_PARAMS`, each in [0, 1]), so that a generated frame can be compared with the
ground-truth `mouth.csv`. The oracle learns that reading from the SynthTalk renderer itself:
it renders random identities (a new one joins the pool every step) with random and speech
mouths (face_render directly, so it has unlimited data; the speech mouths are drawn from a
corpus's train-split mouth.csv with --mouths-from, else from random phone sequences), with the
corpus's head drift, blinks and JPEG, plus some blur and down-scaling so that the softer
frames of a generator stay in its domain. It is validated on identities it never saw, rendered
clip by clip as the corpus does, and with --real-data on a corpus split's real frames.

Input: any RGB face crop, resized to 128 x 128, of which the mouth region
(`metrics.MOUTH_BOX`, the lower-middle of the face) is read at 48 x 64 (`--crop face` reads
the whole lower face instead: slower per step, and worse at equal time, docs/ARCHITECTURE.md
"Measured figures").

    python -m lipmem_core.oracle --out checkpoints/mouth-oracle --minutes 100 --threads 1 --render-workers 1 \
        --fresh 1 --mouths-from DATA --uniform-share 0.2 --balance --soften 0.4 --mirror \
        --real-data DATA --real-split val
    python -m lipmem_core.oracle --measure checkpoints/mouth-oracle --real-data DATA --real-split test
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
from torch import Tensor, nn

from lipmem_core.data.synth.build import JPEG_QUALITY
from lipmem_core.data.synth.face_render import FaceRenderer, Identity, head_motion, render_clip
from lipmem_core.data.synth.mouth import MOUTH_PARAMS, mouth_at, mouth_trajectory
from lipmem_core.errors import CheckpointError
from lipmem_core.evaluation.metrics import MOUTH_BOX, mouth_crop
from lipmem_core.phones import ARPABET, SILENCE, Interval
from lipmem_core.pixels import to_unit
from lipmem_core.provenance import portable

ORACLE_SIZE = 128  # frames are resized to this square size, then the mouth box is read
INPUT_HW = (48, 64)  # the mouth box (43 x 62 px at 128) resampled to this (H, W)
# Input framings (top, bottom, left, right as fractions of the face crop) and their (H, W):
# "mouth" is metrics.MOUTH_BOX; "face" is the lower face, cheek to cheek, so the reader also
# sees the face's width and jaw (each identity's mouth width scales with its face).
CROPS: dict[str, tuple[tuple[float, float, float, float], tuple[int, int]]] = {
    "mouth": (MOUTH_BOX, INPUT_HW),
    "face": ((0.48, 0.98, 0.1, 0.9), (64, 104)),
}
N_PARAMS = len(MOUTH_PARAMS)
_VAL_SEED_OFFSET = 1_000_003  # validation identities come from a disjoint seed stream
VAL_FRAMES = 50  # rendered validation frames per identity (train_oracle and remeasured)


class MouthOracle(nn.Module):
    """Mouth region (B, 3, 48, 64) in [-1, 1] -> mouth parameters (B, 7) in [0, 1].

    Four stride-2 stages (3x3 conv, BatchNorm, ReLU), global average pooling (the mouth moves
    with the head, so position is not a feature), then a 2-layer head and a sigmoid. With
    `mirror`, eval mode reads each region and its left-right mirror image and averages the two
    readings: SynthTalk's faces are symmetric, so the mirror image is a second look whose errors
    are partly independent of the first (training is unchanged).
    """

    def __init__(self, width: int = 24, crop: str = "mouth", mirror: bool = False) -> None:
        super().__init__()
        if crop not in CROPS:
            raise ValueError(f"crop must be one of {sorted(CROPS)}, got {crop!r}")
        self.width, self.crop, self.mirror = width, crop, mirror
        chans = [3, width, 2 * width, 4 * width, 8 * width]
        layers: list[nn.Module] = []
        for i in range(4):
            layers += _conv(chans[i], chans[i + 1], stride=2)
            if i < 3:
                layers += _conv(chans[i + 1], chans[i + 1], stride=1)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(chans[-1], 64), nn.ReLU(inplace=True), nn.Linear(64, N_PARAMS))

    def forward(self, x: Tensor) -> Tensor:
        y = self._read(x)  # (B, 7)
        if self.mirror and not self.training:
            y = 0.5 * (y + self._read(x.flip(-1)))
        return y

    def _read(self, x: Tensor) -> Tensor:
        f = self.features(x).mean(dim=(2, 3))  # (B, 8w)
        return torch.sigmoid(self.head(f))  # (B, 7)


def _conv(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def oracle_input(frames: np.ndarray, crop: str = "mouth") -> Tensor:
    """RGB uint8 face crops (N, H, W, 3) of any size -> the `crop` region (N, 3, H', W') in
    [-1, 1]: (N, 3, 48, 64) for the mouth box, (N, 3, 64, 104) for the lower face."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"oracle input must be uint8 (N, H, W, 3), got {frames.dtype} {frames.shape}")
    (top, bottom, left, right), (h, w) = CROPS[crop]
    s = ORACLE_SIZE
    if frames.shape[1:3] != (s, s):
        interp = cv2.INTER_AREA if frames.shape[1] > s else cv2.INTER_LINEAR
        frames = np.stack([cv2.resize(f, (s, s), interpolation=interp) for f in frames])
    if crop == "mouth":
        regions = mouth_crop(frames)  # (N, 43, 62, 3)
    else:
        regions = frames[:, round(top * s) : round(bottom * s), round(left * s) : round(right * s)]
    interp = cv2.INTER_AREA if regions.shape[1] >= h else cv2.INTER_LINEAR
    out = np.stack([cv2.resize(c, (w, h), interpolation=interp) for c in regions])  # (N, h, w, 3)
    return to_unit(out).permute(0, 3, 1, 2)  # (N, 3, h, w)


@torch.inference_mode()
def predict_mouth(model: MouthOracle, frames: np.ndarray, batch: int = 128) -> np.ndarray:
    """Mouth parameters (N, 7) float32 read from RGB uint8 frames (N, H, W, 3)."""
    model.eval()
    out = [model(oracle_input(frames[i : i + batch], model.crop)) for i in range(0, len(frames), batch)]
    return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, N_PARAMS), np.float32)


# ---------------------------------------------------------------------------------------------
# Training data: rendered on the fly
# ---------------------------------------------------------------------------------------------


def random_phones(rng: np.random.Generator, seconds: float) -> list[Interval]:
    """A random ARPAbet sequence (with pauses) tiling [0, seconds]: phone-driven mouths."""
    out, t = [], 0.0
    while t < seconds:
        label = SILENCE if rng.random() < 0.08 else str(rng.choice(ARPABET))
        d = float(rng.uniform(0.04, 0.18) if label != SILENCE else rng.uniform(0.1, 0.4))
        out.append(Interval(t, min(t + d, seconds), label))
        t += d
    return out


def sample_mouths(
    rng: np.random.Generator, n: int, speech: np.ndarray | None = None, uniform_share: float = 1 / 3
) -> np.ndarray:
    """(n, 7) mouths: `uniform_share` uniform on [0, 1]^7 (every combination, so no parameter
    is read off another), the rest speech: rows drawn from `speech` (M, 7) when given (the
    mouths of a corpus's train split: real sentences' phone frequencies and durations), else
    coarticulated random phone sequences."""
    n_uniform = int(n * uniform_share)
    uniform = rng.uniform(0.0, 1.0, (n_uniform, N_PARAMS))
    if speech is not None:
        spoken = speech[rng.integers(len(speech), size=n - n_uniform)]
    else:
        spoken = mouth_at(random_phones(rng, 4.0), rng.uniform(0.0, 4.0, n - n_uniform))
    mouths = np.concatenate([uniform, spoken]).astype(np.float32)
    return mouths[rng.permutation(n)]


def degrade(frame: np.ndarray, rng: np.random.Generator, soften: float = 1.0) -> np.ndarray:
    """JPEG (as the corpus stores frames), and sometimes blur or a lower resolution (as
    generated frames are softer than renders): with `soften` = 1, a quarter of the frames are
    down-scaled and 40 % blurred; `soften` scales both shares."""
    s = frame.shape[0]
    if rng.random() < 0.25 * soften:
        small = int(rng.choice([48, 64, 96]))
        frame = cv2.resize(cv2.resize(frame, (small, small), interpolation=cv2.INTER_AREA), (s, s))
    if rng.random() < 0.4 * soften:
        frame = cv2.GaussianBlur(frame, (0, 0), float(rng.uniform(0.4, 1.4)))
    # half at the corpus's own JPEG quality, the rest anywhere from 75 to 95
    quality = JPEG_QUALITY if rng.random() < 0.5 else int(rng.integers(75, 96))
    return jpeg(frame, quality)


def jpeg(frame: np.ndarray, quality: int = JPEG_QUALITY) -> np.ndarray:
    """An RGB frame through JPEG as the corpus stores it (encoded as BGR, so the chroma
    subsampling falls on the right channels), back as RGB."""
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    assert ok  # encoding an in-memory uint8 image cannot fail
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


class RenderStream:
    """Batches of (frames (B, 128, 128, 3) uint8, mouths (B, 7)) from a pool of identities.

    With `fresh` > 0, that many pool members are replaced by never-seen identities before each
    batch (a renderer costs about 30 ms), so a long run sees tens of thousands of faces: the
    reader cannot learn an identity's mouth width, lip thickness or beard by heart."""

    def __init__(
        self,
        n_identities: int,
        seed: int,
        fresh: int = 0,
        speech: np.ndarray | None = None,
        uniform_share: float = 1 / 3,
        soften: float = 1.0,
    ) -> None:
        self.rng = np.random.default_rng(seed)
        self.speech, self.uniform_share, self.soften = speech, uniform_share, soften
        self.id_rng = np.random.default_rng(seed + 1)
        self.fresh = fresh
        self.renderers = [
            FaceRenderer(Identity.sample(self.id_rng), ORACLE_SIZE) for _ in range(n_identities)
        ]

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        rng = self.rng
        for _ in range(self.fresh):
            k = int(rng.integers(len(self.renderers)))
            self.renderers[k] = FaceRenderer(Identity.sample(self.id_rng), ORACLE_SIZE)
        mouths = sample_mouths(rng, n, self.speech, self.uniform_share)
        poses, blinks = head_motion(n, rng)
        # head_motion is a smooth drift in time; shuffle so one batch spans its whole range
        poses, blinks = poses[rng.permutation(n)], blinks[rng.permutation(n)]
        frames = np.empty((n, ORACLE_SIZE, ORACLE_SIZE, 3), np.uint8)
        for i in range(n):
            r = self.renderers[int(rng.integers(len(self.renderers)))]
            frames[i] = degrade(r.render(mouths[i], tuple(poses[i]), float(blinks[i])), rng, self.soften)
        return frames, mouths


class RenderBatches(torch.utils.data.IterableDataset):
    """An endless RenderStream as a DataLoader source, so renders can be made in worker processes
    while the oracle trains (rendering is about half of a step on one core).

    One worker (or none) yields the stream's own sequence, so a run is the same with or without
    it; with several, worker w draws its mouths, poses and new identities from its own seed
    (seed, w), as copies of one stream would repeat each other's batches."""

    def __init__(self, stream: RenderStream, batch: int, seed: int) -> None:
        self.stream, self.batch, self.seed = stream, batch, seed

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        info = torch.utils.data.get_worker_info()
        if info is not None and info.num_workers > 1:
            self.stream.rng = np.random.default_rng([self.seed, info.id])
            self.stream.id_rng = np.random.default_rng([self.seed, info.id, 1])
        while True:
            yield self.stream.batch(self.batch)


def _as_is(batch: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return batch  # the DataLoader would otherwise turn the uint8 frames into tensors


def validation_set(n_identities: int, frames_per_identity: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth frames of unseen identities, rendered as the corpus renders clips
    (render_clip: phone-driven trajectory, head drift, blinks; the corpus JPEG quality)."""
    rng = np.random.default_rng(seed + _VAL_SEED_OFFSET)
    frames, mouths = [], []
    for _ in range(n_identities):
        identity = Identity.sample(rng)
        seconds = frames_per_identity / 25
        mouth = mouth_trajectory(random_phones(rng, seconds), frames_per_identity)  # (n, 7)
        clip = render_clip(identity, mouth, rng, ORACLE_SIZE)
        frames += [jpeg(f) for f in clip]
        mouths.append(mouth)
    return np.stack(frames), np.concatenate(mouths)


def corpus_mouths(root: str | Path, split: str = "train") -> np.ndarray:
    """The exact mouths (N, 7) float32 of every frame of one corpus split (mouth.csv only)."""
    from lipmem_core.data import corpus

    rows = corpus.read_manifest(root)
    rows = rows[rows["split"] == split]
    if rows.empty:
        raise ValueError(f"{root} has no clips in split {split!r}")
    return np.concatenate([corpus.read_mouth_params(corpus.clip_dir(root, r)) for r in rows.itertuples()])


def corpus_frames(
    root: str | Path, split: str, max_clips: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Real corpus frames (N, 128, 128, 3) uint8 and their exact mouths (N, 7) from one split
    of a SynthTalk corpus, read as `evaluate.load_clip` reads them. With `max_clips`, that
    many clips spread evenly over the split (every speaker)."""
    clips = corpus_clips(root, split, max_clips)
    return np.concatenate([f for _, f, _ in clips]), np.concatenate([m for _, _, m in clips])


def corpus_clips(
    root: str | Path, split: str, max_clips: int | None = None
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """`corpus_frames` clip by clip: (speaker, frames (n, 128, 128, 3) uint8, mouths (n, 7))."""
    from lipmem_core.data import corpus
    from lipmem_core.infer.face import crop_face, full_frame_box

    rows = corpus.read_manifest(root)
    rows = rows[rows["split"] == split].reset_index(drop=True)
    if rows.empty:
        raise ValueError(f"{root} has no clips in split {split!r}")
    if max_clips is not None and max_clips < len(rows):
        rows = rows.iloc[np.linspace(0, len(rows) - 1, max_clips).round().astype(int)]
    clips = []
    for row in rows.itertuples():
        d = corpus.clip_dir(root, row)
        f = corpus.read_frames(d)
        if f.shape[1:3] != (ORACLE_SIZE, ORACLE_SIZE):
            box = full_frame_box(*f.shape[1:3])
            f = np.stack([crop_face(x, box, ORACLE_SIZE) for x in f])
        clips.append((str(row.speaker), f, corpus.read_mouth_params(d)))
    return clips


# ---------------------------------------------------------------------------------------------
# Error report and training
# ---------------------------------------------------------------------------------------------


def mouth_error(pred: np.ndarray, truth: np.ndarray, spread_of: np.ndarray | None = None) -> dict[str, Any]:
    """Per-parameter MAE, MAE as % of the ground truth's std, and their means.

    pred, truth: (N, 7). `mae_pct_std` puts an error next to how much that parameter varies:
    100 % is no better than always answering the mean. The std is that of `spread_of` (N, 7)
    when given: comparing two oracle readings still divides by the real parameters' spread.
    """
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    if pred.shape != truth.shape or pred.ndim != 2 or pred.shape[1] != N_PARAMS:
        raise ValueError(f"need two (N, {N_PARAMS}) arrays, got {pred.shape} and {truth.shape}")
    spread = truth if spread_of is None else np.asarray(spread_of, np.float64)
    if spread.shape != truth.shape:
        raise ValueError(f"spread_of must be {truth.shape} like truth, got {spread.shape}")
    mae = np.abs(pred - truth).mean(axis=0)  # (7,)
    std = spread.std(axis=0)  # (7,)
    pct = np.where(std > 0, 100.0 * mae / np.where(std > 0, std, 1.0), np.nan)
    return {
        "mae": {p: float(v) for p, v in zip(MOUTH_PARAMS, mae, strict=True)},
        "mae_pct_std": {p: float(v) for p, v in zip(MOUTH_PARAMS, pct, strict=True)},
        "mae_mean": float(mae.mean()),
        "mae_pct_std_mean": float(np.nanmean(pct)) if np.isfinite(pct).any() else float("nan"),
    }


def mouth_correlation(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Pearson r over time of each mouth parameter, (7,): does the reading move with the truth.

    pred, truth: (N, 7). Unlike `mouth_error` it ignores offset and gain, so it asks whether a
    mouth moves when and where the truth does, not whether it reaches the same values.
    """
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    if pred.shape != truth.shape or pred.ndim != 2 or pred.shape[1] != N_PARAMS:
        raise ValueError(f"need two (N, {N_PARAMS}) arrays, got {pred.shape} and {truth.shape}")
    return np.array([np.corrcoef(pred[:, k], truth[:, k])[0, 1] for k in range(N_PARAMS)])


@dataclass
class OracleTraining:
    model: MouthOracle
    steps: int
    seconds: float
    val: dict[str, Any]  # mouth_error on unseen identities
    real: dict[str, Any] | None = None  # {"corpus", "split", "clips", "frames", "error"} if measured
    cpu_seconds: float | None = None  # the training loop's CPU time


def train_oracle(
    *,
    minutes: float | None = None,
    steps: int | None = None,
    cpu_minutes: float | None = None,
    batch: int = 48,
    width: int = 24,
    crop: str = "mouth",
    lr: float = 2e-3,
    n_identities: int = 200,
    fresh: int = 0,
    speech: np.ndarray | None = None,
    uniform_share: float = 1 / 3,
    balance: bool = False,
    soften: float = 1.0,
    val_identities: int = 16,
    val_frames: int = VAL_FRAMES,
    seed: int = 0,
    log_every: int = 100,
    render_workers: int = 0,
    mirror: bool = False,
) -> OracleTraining:
    """Train on fresh renders until `steps`, `minutes` (wall clock) or `cpu_minutes` (this
    process's CPU time, so a shared machine does not shrink the run) runs out, whichever comes
    first; the learning rate follows a cosine over that budget.

    render_workers: processes that render the batches ahead while this one trains (0: render
    in this process between steps). Their CPU time is not in `cpu_minutes`, which then counts
    the training alone. mirror: the oracle reads frames and their mirror images (MouthOracle);
    training is the same either way."""
    if minutes is None and steps is None and cpu_minutes is None:
        raise ValueError("give a budget: minutes, cpu_minutes, steps, or a combination")
    torch.manual_seed(seed)
    model = MouthOracle(width, crop, mirror)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    stream = RenderStream(n_identities, seed, fresh, speech, uniform_share, soften)
    batches = iter(
        torch.utils.data.DataLoader(
            RenderBatches(stream, batch, seed),
            batch_size=None,
            collate_fn=_as_is,
            num_workers=render_workers,
            prefetch_factor=4 if render_workers else None,
        )
    )
    # balance: each parameter's L1 divided by its std in speech, as the error is reported
    ref = speech if speech is not None else sample_mouths(np.random.default_rng(seed), 4000, None, 0.0)
    scale = torch.from_numpy(1.0 / ref.std(axis=0)).float() if balance else torch.ones(N_PARAMS)
    scale = scale / scale.mean()
    val_x, val_y = validation_set(val_identities, val_frames, seed)
    start, cpu_start, step = time.monotonic(), time.process_time(), 0
    while True:
        elapsed = time.monotonic() - start
        done = max(
            step / steps if steps else 0.0,
            elapsed / (60.0 * minutes) if minutes else 0.0,
            (time.process_time() - cpu_start) / (60.0 * cpu_minutes) if cpu_minutes else 0.0,
        )
        if done >= 1.0:
            break
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1.0 + np.cos(np.pi * done))
        frames, mouths = next(batches)
        model.train()
        err = (model(oracle_input(frames, crop)) - torch.from_numpy(mouths)).abs()  # (B, 7)
        loss = (err * scale).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if log_every and step % log_every == 0:
            cpu = (time.process_time() - cpu_start) / 60
            print(
                f"step {step}  {elapsed / 60:.1f} min ({cpu:.1f} CPU)  train loss {loss.item():.4f}",
                flush=True,
            )
    seconds, cpu_seconds = time.monotonic() - start, time.process_time() - cpu_start
    val = mouth_error(predict_mouth(model, val_x), val_y)
    return OracleTraining(model=model, steps=step, seconds=seconds, val=val, cpu_seconds=cpu_seconds)


def real_error(
    model: MouthOracle, root: str | Path, split: str, max_clips: int | None = None
) -> dict[str, Any]:
    """The oracle's error on a corpus split's real frames, as stored in its metadata: the
    corpus by name only (no machine path), the split, and what was read."""
    frames, mouths = corpus_frames(root, split, max_clips)
    n_clips = max_clips if max_clips is not None else "all"
    return {
        "corpus": Path(root).resolve().name,
        "split": split,
        "clips": n_clips,
        "frames": len(frames),
        "error": mouth_error(predict_mouth(model, frames), mouths),
    }


# ---------------------------------------------------------------------------------------------
# Storage: the checkpoint layout of lipmem_core.checkpoint (config.json + model.safetensors,
# sha256-verified), with kind "oracle". The oracle is not built from a ModelConfig, so it keeps
# its own two small functions instead of widening the generator/SyncNet loader.
# ---------------------------------------------------------------------------------------------

ORACLE_KIND = "oracle"


def save_oracle(
    result: OracleTraining,
    directory: str | Path,
    command: Sequence[str] = (),
    measured_by: Sequence[str] = (),
    weights: bytes | None = None,
) -> Path:
    """Write the oracle (fp32 safetensors, < 2 MB) and its validation error as metadata.

    command: the training command; measured_by: the command that re-measured and re-saved it
    (`--measure SRC --out DST`), when it was not saved by its training run. weights: the
    safetensors bytes to write instead of serialising the model again (a re-save passes its
    source's file, so the copy's sha256, which results files record, is the source's)."""
    blob = weights
    if blob is None:
        state = {k: v.detach().cpu().contiguous() for k, v in result.model.state_dict().items()}
        blob = save_safetensors_bytes(state, metadata={"format": "pt", "kind": ORACLE_KIND})
    config = {
        "format": 1,
        "kind": ORACLE_KIND,
        "oracle_config": {
            "width": result.model.width,
            "crop": result.model.crop,
            "mirror": result.model.mirror,
            "input_hw": list(CROPS[result.model.crop][1]),
            "size": ORACLE_SIZE,
        },
        "metadata": {
            "params": list(MOUTH_PARAMS),
            "steps": result.steps,
            "minutes": round(result.seconds / 60, 2),
            **({"cpu_minutes": round(result.cpu_seconds / 60, 2)} if result.cpu_seconds is not None else {}),
            "val": result.val,
            **({"real": result.real} if result.real is not None else {}),
            "command": portable(" ".join(command)),  # no absolute machine paths
            **({"measured_by": portable(" ".join(measured_by))} if measured_by else {}),
        },
        "sha256": hashlib.sha256(blob).hexdigest(),
    }
    final = Path(directory)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:  # written aside, then renamed: the final name never holds half an oracle
        (tmp / "model.safetensors").write_bytes(blob)
        (tmp / "config.json").write_text(json.dumps(config, indent=2, allow_nan=True))
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load_oracle(directory: str | Path) -> MouthOracle:
    """Load an oracle written by `save_oracle` (eval mode); CheckpointError if it is not one."""
    d = Path(directory)
    cfg_path, weights = d / "config.json", d / "model.safetensors"
    if not cfg_path.is_file() or not weights.is_file():
        raise CheckpointError(
            f"no mouth oracle at {d}: train one with `python -m lipmem_core.oracle --out {d}`"
        )
    try:
        config = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{cfg_path} is not valid JSON ({exc}): the file is damaged") from exc
    if config.get("kind") != ORACLE_KIND:
        raise CheckpointError(f"{d} is a {config.get('kind')!r} checkpoint, not a mouth oracle")
    blob = weights.read_bytes()
    if hashlib.sha256(blob).hexdigest() != config.get("sha256"):
        raise CheckpointError(f"{weights} does not match the sha256 in config.json: copy the oracle again")
    oc = config.get("oracle_config", {})
    try:
        model = MouthOracle(int(oc["width"]), str(oc.get("crop", "mouth")), bool(oc.get("mirror", False)))
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{cfg_path} has no usable oracle_config ({exc})") from exc
    try:
        model.load_state_dict(load_safetensors_bytes(blob), strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{weights} does not fit a MouthOracle: {exc}") from exc
    return model.eval()


def remeasured(
    meta: dict[str, Any], model: MouthOracle, real: dict[str, Any], val_identities: int, seed: int
) -> OracleTraining:
    """A trained oracle as `save_oracle` writes it, from its config.json's metadata (steps, time)
    and a new reading: `model` as it now reads (e.g. with mirror set), its error on the rendered
    validation identities of `seed` re-read the same way, and `real` measured by the caller."""
    val_x, val_y = validation_set(val_identities, VAL_FRAMES, seed)  # as the training CLI reads
    cpu = meta.get("cpu_minutes")
    return OracleTraining(
        model=model,
        steps=int(meta["steps"]),
        seconds=60.0 * float(meta["minutes"]),
        val=mouth_error(predict_mouth(model, val_x), val_y),
        real=real,
        cpu_seconds=None if cpu is None else 60.0 * float(cpu),
    )


def _portable(arg: str) -> str:
    """A command-line argument as stored in config.json: an absolute path becomes relative to
    the working directory when inside it, else $DATA/<its name> (no machine paths are shipped)."""
    if not arg.startswith("/"):
        return arg
    path, cwd = Path(arg), Path.cwd()
    return str(path.relative_to(cwd)) if path.is_relative_to(cwd) else f"$DATA/{path.name}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lipmem_core.oracle", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="checkpoint directory to write")
    parser.add_argument(
        "--measure",
        type=Path,
        default=None,
        help="no training: report this oracle's error on --real-data (with --out: also write it there, "
        "with --mirror if given, this measurement as its metadata.real and its validation error re-read)",
    )
    parser.add_argument("--minutes", type=float, default=8.0, help="training time budget (wall clock)")
    parser.add_argument("--cpu-minutes", type=float, default=None, help="training budget in CPU time")
    parser.add_argument("--steps", type=int, default=None, help="optional step budget")
    parser.add_argument("--batch", type=int, default=48)
    parser.add_argument("--width", type=int, default=24)
    parser.add_argument("--crop", choices=sorted(CROPS), default="mouth", help="input framing")
    parser.add_argument("--identities", type=int, default=200, help="pool of training identities")
    parser.add_argument(
        "--fresh", type=int, default=0, help="pool members replaced by new identities per step"
    )
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument(
        "--mouths-from",
        type=Path,
        default=None,
        help="a SynthTalk corpus: draw speech mouths from its TRAIN split's mouth.csv (labels only)",
    )
    parser.add_argument("--uniform-share", type=float, default=1 / 3, help="share of uniform random mouths")
    parser.add_argument("--balance", action="store_true", help="weight each parameter's L1 by 1 / its std")
    parser.add_argument(
        "--soften", type=float, default=1.0, help="scales the shares of blurred/down-scaled renders"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-identities", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--mirror",
        action="store_true",
        help="read each frame and its mirror image and average (stored in the oracle; with --measure: "
        "measure the oracle read that way)",
    )
    parser.add_argument(
        "--render-workers",
        type=int,
        default=0,
        help="processes rendering batches ahead while training (1 on a 2-core machine with --threads 1)",
    )
    parser.add_argument(
        "--real-data",
        type=Path,
        default=None,
        help="a SynthTalk corpus: also report the error on its real frames",
    )
    parser.add_argument(
        "--real-split", default="val", help="split of --real-data to measure (never trained on)"
    )
    parser.add_argument(
        "--real-clips", type=int, default=None, help="measure on this many clips of the split"
    )
    args = parser.parse_args(argv)
    # this command as config.json stores it (no machine paths)
    stored_args = [_portable(a) for a in (sys.argv[1:] if argv is None else argv)]
    command = ["python", "-m", "lipmem_core.oracle", *stored_args]
    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)  # rendering and JPEG too: --threads 1 is one thread
    if args.measure is not None:
        if args.real_data is None:
            parser.error("--measure needs --real-data")
        oracle = load_oracle(args.measure)
        oracle.mirror = oracle.mirror or args.mirror
        real = real_error(oracle, args.real_data, args.real_split, args.real_clips)
        print(json.dumps(real, indent=2))
        if args.out is not None:  # the same weights, re-saved as they were just read and measured
            meta = json.loads((args.measure / "config.json").read_text())["metadata"]
            save_oracle(
                remeasured(meta, oracle, real, args.val_identities, args.seed),
                args.out,
                command=[meta.get("command", "")],
                measured_by=command,
                weights=(args.measure / "model.safetensors").read_bytes(),
            )
            print(f"wrote {args.out}: {args.measure}'s weights, mirror {oracle.mirror}")
        return
    if args.out is None:
        parser.error("give --out (train) or --measure (report; with --out, re-save as measured)")
    result = train_oracle(
        minutes=args.minutes,
        steps=args.steps,
        cpu_minutes=args.cpu_minutes,
        batch=args.batch,
        width=args.width,
        crop=args.crop,
        lr=args.lr,
        n_identities=args.identities,
        fresh=args.fresh,
        speech=None if args.mouths_from is None else corpus_mouths(args.mouths_from, "train"),
        uniform_share=args.uniform_share,
        balance=args.balance,
        soften=args.soften,
        seed=args.seed,
        val_identities=args.val_identities,
        render_workers=args.render_workers,
        mirror=args.mirror,
    )
    if args.real_data is not None:
        result.real = real_error(result.model, args.real_data, args.real_split, args.real_clips)
        print(f"real frames ({result.real['corpus']} {args.real_split}):")
        print(json.dumps(result.real["error"]["mae_pct_std"], indent=2))
    save_oracle(result, args.out, command=command)
    print(
        json.dumps(result.val["mae_pct_std"], indent=2),
        f"\nmean {result.val['mae_pct_std_mean']:.1f} % of std",
    )
    print(f"wrote {args.out} after {result.steps} steps in {result.seconds / 60:.1f} min")
