"""Evaluate a generator on held-out clips: quality, mouth shape, lip sync and memory statistics.

    python -m lipmem_core.evaluate --checkpoint checkpoints/lipmem-synthtalk --data data/synthtalk \
        --split test --out results/memory.json --syncnet checkpoints/syncnet \
        --oracle checkpoints/mouth-oracle [--max-clips N]

Rows of the results (docs/EVALUATION.md defines every number):
- `ground_truth`: the corpus frames themselves (PSNR inf, SSIM 1; the oracle's own mouth error;
  the SyncNet's LSE on real sync): the reference every model row is read against.
- `model`: frames generated through the real inference path (`TalkingFacePipeline.stream` on
  the clip's own frames as face input, exactly as the app and `infer` run it), and the memory
  statistics of its argmax A_aud against the exact phones of phones.TextGrid. With
  `--reference other` each frame's reference is the frame half the clip away instead of itself
  (as in training), so its own mouth cannot be copied from the reference.
- `untrained`: the same architecture at random init (seeded): the chance level of the memory
  statistics.
Results go to one JSON file with the exact command, so docs/RESULTS.md can be rebuilt from it
(`python -m lipmem_core.results`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lipmem_core import cli
from lipmem_core.audio import clip_mel_window, mel_windows, melspectrogram
from lipmem_core.checkpoint import load_checkpoint
from lipmem_core.data import corpus
from lipmem_core.data.datasets import lip_frame_indices, lip_input
from lipmem_core.data.synth.mouth import MOUTH_PARAMS
from lipmem_core.errors import CorpusError, LipMemError
from lipmem_core.evaluation import metrics
from lipmem_core.evaluation.oracle import MouthOracle, load_oracle, mouth_error, predict_mouth
from lipmem_core.infer.face import crop_face, full_frame_box
from lipmem_core.infer.pipeline import TalkingFacePipeline
from lipmem_core.model.generator import LipMemGenerator
from lipmem_core.model.syncnet import CLIP_FRAMES, SyncNet, lower_half
from lipmem_core.phones import SILENCE
from lipmem_core.pixels import to_unit
from lipmem_core.provenance import corpus_provenance, git_commit, portable

_SYNC_BATCH = 64
_JAW = MOUTH_PARAMS.index("jaw")
REFERENCES = ("self", "other")  # identity-input references: see evaluate()


@dataclass
class EvalClip:
    """One held-out utterance, at the generator's resolution."""

    key: str  # split/speaker/utterance
    speaker: str
    frames: np.ndarray  # (n, S, S, 3) uint8, S = img_size
    wav: np.ndarray  # (n * 640,) float32
    mel: np.ndarray  # (80, M)
    phones: list[str]  # (n,) phone at each frame centre
    mouth: np.ndarray | None  # (n, 7) ground-truth mouth parameters (SynthTalk only)


def load_clip(root: Path, row: Any, img_size: int) -> EvalClip:
    """Read a clip and bring its frames to img_size as the pipeline does (crop_face)."""
    d = corpus.clip_dir(root, row)
    frames = corpus.read_frames(d)  # (n, H, W, 3)
    n = len(frames)
    if frames.shape[1:3] != (img_size, img_size):
        box = full_frame_box(*frames.shape[1:3])
        frames = np.stack([crop_face(f, box, img_size) for f in frames])
    wav = corpus.read_audio(d)
    mouth = None
    if (d / "mouth.csv").exists():
        mouth = corpus.read_mouth_params(d).astype(np.float64)  # (n, 7)
    return EvalClip(
        key=f"{row.split}/{row.speaker}/{row.utterance}",
        speaker=str(row.speaker),
        frames=frames,
        wav=wav,
        mel=melspectrogram(wav),
        phones=corpus.frame_phones(corpus.read_phones(d), n),
        mouth=mouth,
    )


@torch.inference_mode()
def sync_embeddings(syncnet: SyncNet, frames: np.ndarray, mel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SyncNet embeddings of every full 5-frame window of a clip and of its mel.

    frames (n, H, W, 3) uint8, mel (80, M) -> video, audio embeddings (n - 4, E) each; row i
    is the window centred on frame i + 2 (lower half of frames i..i+4 vs that frame's 0.2 s mel).
    """
    size = syncnet.cfg.img_size
    if frames.shape[1:3] != (size, size):
        box = full_frame_box(*frames.shape[1:3])
        frames = np.stack([crop_face(f, box, size) for f in frames])
    pix = to_unit(frames).permute(3, 0, 1, 2)  # (3, n, S, S)
    half = lower_half(pix)  # (3, n, S/2, S)
    centres = list(range(CLIP_FRAMES // 2, len(frames) - CLIP_FRAMES // 2))
    video, audio = [], []
    for b0 in range(0, len(centres), _SYNC_BATCH):
        ks = centres[b0 : b0 + _SYNC_BATCH]
        clips = torch.stack([half[:, k - 2 : k + 3] for k in ks])  # (B, 3, 5, S/2, S)
        mels = torch.from_numpy(np.stack([clip_mel_window(mel, k) for k in ks]))[:, None]  # (B, 1, 80, 16)
        video.append(syncnet.embed_video(clips).numpy())
        audio.append(syncnet.embed_audio(mels).numpy())
    return np.concatenate(video), np.concatenate(audio)


def _image_scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    return {
        "psnr": metrics.psnr(pred, truth),
        "ssim": metrics.ssim(pred, truth),
        "psnr_mouth": metrics.psnr(metrics.mouth_crop(pred), metrics.mouth_crop(truth)),
        "ssim_mouth": metrics.ssim(metrics.mouth_crop(pred), metrics.mouth_crop(truth)),
    }


@dataclass
class _RowAccumulator:
    """Per-clip scores of one row, and the pooled per-frame quantities."""

    per_clip: list[dict[str, Any]]
    mouth_pred: list[np.ndarray]
    mouth_true: list[np.ndarray]
    phones: list[str]
    slots: list[np.ndarray]


def _new_acc() -> _RowAccumulator:
    return _RowAccumulator([], [], [], [], [])


def _score_frames(
    acc: _RowAccumulator,
    clip: EvalClip,
    frames: np.ndarray,
    syncnet: SyncNet | None,
    oracle: MouthOracle | None,
) -> None:
    scores: dict[str, Any] = {"clip": clip.key, **_image_scores(frames, clip.frames)}
    if oracle is not None and clip.mouth is not None:
        pred = predict_mouth(oracle, frames)  # (n, 7)
        acc.mouth_pred.append(pred)
        acc.mouth_true.append(clip.mouth)
        scores["mouth_mae"] = float(np.abs(pred - clip.mouth).mean())
        scores["jaw_std"] = float(pred[:, _JAW].std())  # how much the drawn jaw moves over the clip
    if syncnet is not None and len(frames) >= CLIP_FRAMES:
        v, a = sync_embeddings(syncnet, frames, clip.mel)
        s = metrics.lse(v, a)
        scores.update(lse_d=s.lse_d, lse_c=s.lse_c, offset=s.offset)
    acc.per_clip.append(scores)


def _memory_stats(phones: list[str], slots: list[np.ndarray], n_slots: int) -> dict[str, Any] | None:
    if not slots:
        return None
    s = np.concatenate(slots)
    p = np.asarray(phones, dtype=object)
    out = {"all": metrics.slot_statistics(p, s, n_slots).to_dict()}
    speech = p != SILENCE
    out["speech"] = metrics.slot_statistics(p[speech], s[speech], n_slots).to_dict() if speech.any() else None
    return out


def _summarise(name: str, label: str, acc: _RowAccumulator, n_slots: int) -> dict[str, Any]:
    """Means over clips (image and sync scores), pooled frames (mouth and memory)."""
    row: dict[str, Any] = {"name": name, "label": label}
    for key in ("psnr", "ssim", "psnr_mouth", "ssim_mouth", "lse_d", "lse_c", "jaw_std"):
        vals = [c[key] for c in acc.per_clip if key in c]
        row[key] = float(np.mean(vals)) if vals else None
    offsets = [c["offset"] for c in acc.per_clip if "offset" in c]
    row["offset_zero_share"] = float(np.mean([o == 0 for o in offsets])) if offsets else None
    row["offset_mean_abs"] = float(np.mean(np.abs(offsets))) if offsets else None
    row["mouth"] = (
        mouth_error(np.concatenate(acc.mouth_pred), np.concatenate(acc.mouth_true))
        if acc.mouth_pred
        else None
    )
    row["mouth_mae"] = row["mouth"]["mae_mean"] if row["mouth"] else None
    stats = _memory_stats(acc.phones, acc.slots, n_slots)
    row["memory"] = stats["all"] if stats else None
    row["memory_speech"] = stats["speech"] if stats else None
    row["per_clip"] = acc.per_clip
    return row


@torch.inference_mode()
def lip_slots(model: LipMemGenerator, frames: np.ndarray, batch: int = 32) -> np.ndarray:
    """argmax A_lip per frame of a clip's own frames (n, S, S, 3) uint8 -> (n,).

    What the lip-addressed training path would store for these frames; compared with the
    argmax of A_aud it tells whether inference recalls the slot that training wrote.
    """
    pix = to_unit(frames)  # (n, S, S, 3)
    idx = lip_frame_indices(np.arange(len(frames)), len(frames))  # (n, 5)
    out = [
        model.address_lips(lip_input(pix[idx[i : i + batch]])).argmax(-1).numpy()
        for i in range(0, len(frames), batch)
    ]
    return np.concatenate(out)


@torch.inference_mode()
def audio_slots(model: LipMemGenerator, clips: Sequence[EvalClip]) -> list[np.ndarray]:
    """argmax A_aud per frame of each clip, (n,) each: audio addressing only, no decoding
    (the untrained row, and benchmarks that compare A_aud with A_lip)."""
    out = []
    for clip in clips:
        mel = torch.from_numpy(mel_windows(clip.mel, range(len(clip.frames))))[:, None]  # (n, 1, 80, 16)
        out.append(model.address(mel).argmax(dim=1).numpy())  # (n,)
    return out


def json_safe(x: Any) -> Any:
    """JSON has no infinity: +-inf become the strings "inf"/"-inf", NaN becomes null."""
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        x = x.item()
    if isinstance(x, float):
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
    return x


def evaluate(
    checkpoint: str | Path,
    data: str | Path,
    split: str = "test",
    syncnet: str | Path | None = None,
    oracle: str | Path | None = None,
    max_clips: int | None = None,
    seed: int = 0,
    progress: bool = True,
    reference: str = "self",
    clips_per_speaker: int | None = None,
) -> dict[str, Any]:
    """Everything `main` writes, as a dict (see the module docstring for the rows).

    Clips are taken in (speaker, utterance) order: `clips_per_speaker` keeps the first K of each
    speaker (a subset that still spans every speaker; the first N clips of a split are often
    one speaker's), then `max_clips` the first N of those.

    reference: "self" (each frame is its own reference, as `infer` runs on a video) or "other"
    (the reference of frame i is frame i + n // 2 of the n-frame clip, wrapping).
    """
    if reference not in REFERENCES:
        raise ValueError(f"reference {reference!r}: choose one of {REFERENCES}")
    root = Path(data)
    manifest = corpus.read_manifest(root)
    rows = manifest[manifest["split"] == split].sort_values(["speaker", "utterance"])
    if rows.empty:
        raise CorpusError(
            f"{root} has no clips in split {split!r}: choose one of {sorted(set(manifest['split']))}"
        )
    if clips_per_speaker is not None:
        rows = rows.groupby("speaker", sort=False).head(clips_per_speaker)
    if max_clips is not None:
        rows = rows.head(max_clips)

    loaded = load_checkpoint(checkpoint, kind="generator")
    model: LipMemGenerator = loaded.model.eval()
    cfg = model.cfg
    pipe = TalkingFacePipeline(loaded, device="cpu")
    sync_model, sync_digest = None, None
    if syncnet is not None:
        sync_loaded = load_checkpoint(syncnet, kind="syncnet")
        sync_model, sync_digest = sync_loaded.model.eval(), weights_digest(sync_loaded.path)
    oracle_model = load_oracle(oracle) if oracle is not None else None

    gt, gen = _new_acc(), _new_acc()
    clips: list[EvalClip] = []
    lip_argmax: list[np.ndarray] = []  # argmax A_lip per frame, memory models only
    for i, row in enumerate(rows.itertuples(index=False)):
        clip = load_clip(root, row, cfg.img_size)
        clips.append(clip)
        # The face input is the clip itself (each window's own frames are the reference, lower
        # half masked for the target), the audio its own speech; the generated crops are scored.
        shift = len(clip.frames) // 2 if reference == "other" else 0
        made = pipe.generate(clip.frames, clip.wav, face_is_crop=True, reference_shift=shift)
        frames, addr = np.stack(made.crops), made.addressing
        _score_frames(gt, clip, clip.frames, sync_model, oracle_model)
        _score_frames(gen, clip, frames, sync_model, oracle_model)
        if addr is not None:
            gen.phones += clip.phones
            gen.slots.append(addr.argmax(axis=1))
            lip_argmax.append(lip_slots(model, clip.frames))
        if progress:
            print(f"[{i + 1}/{len(rows)}] {clip.key}: {len(frames)} frames", file=sys.stderr, flush=True)

    memory_label = "memory" if cfg.use_memory else "no memory"
    name = Path(checkpoint).name
    if name == "checkpoint":  # a training run's export, runs/NAME/checkpoint: name it by the run
        name = f"{Path(checkpoint).resolve().parent.name}/{name}"
    result_rows = [
        _summarise("ground_truth", "ground truth", gt, cfg.n_slots),
        _summarise("model", f"{name} ({memory_label})", gen, cfg.n_slots),
    ]
    if gen.mouth_pred:
        # The oracle's reading of the generated frames against its reading of the real frames:
        # its own bias on a frame (an identity's mouth width read as spread) cancels, so what
        # is left is how far the generated mouth is from the real one, by the same reader.
        result_rows[1]["mouth_vs_gt_reading"] = mouth_error(
            np.concatenate(gen.mouth_pred),
            np.concatenate(gt.mouth_pred),
            spread_of=np.concatenate(gt.mouth_true),
        )
    if gt.per_clip and "jaw_std" in gt.per_clip[0]:
        # Visible motion: how much the drawn jaw moves over a clip, against the real frames'
        # (both read by the oracle, so its bias cancels to first order).
        result_rows[1]["jaw_motion_ratio"] = result_rows[1]["jaw_std"] / result_rows[0]["jaw_std"]
    if lip_argmax:
        aud = np.concatenate(gen.slots)
        result_rows[1]["address_agreement"] = float(np.mean(aud == np.concatenate(lip_argmax)))
    if cfg.use_memory:
        torch.manual_seed(seed)
        untrained = _new_acc()
        untrained.phones = [p for c in clips for p in c.phones]
        untrained.slots = audio_slots(LipMemGenerator(cfg).eval(), clips)
        result_rows.append(_summarise("untrained", "untrained (random init)", untrained, cfg.n_slots))

    return {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git": git_commit(),
        "checkpoint": {
            "path": str(checkpoint),
            "kind": loaded.kind,
            "model_config": cfg.to_dict(),
            "metadata": dict(loaded.metadata or {}),
        },  # fmt: skip
        "syncnet": None if syncnet is None else str(syncnet),
        "oracle": None if oracle is None else str(oracle),
        # which weights measured: a judge retrained under the same path gives other figures
        "syncnet_sha256": sync_digest,
        "oracle_sha256": None if oracle is None else weights_digest(oracle),
        "data": {
            "root": str(root),
            "corpus": corpus_provenance(root),  # name and generator seed, for a reader
            "split": split,
            "n_clips": len(clips),
            "n_frames": int(sum(len(c.frames) for c in clips)),
            "speakers": sorted({c.speaker for c in clips}),
            "clips": [c.key for c in clips],
        },
        "seed": seed,
        "reference": reference,
        "rows": result_rows,
    }


def weights_digest(directory: str | Path) -> str:
    """The sha256 of a loaded checkpoint's (or oracle's) weights, as its config.json records it
    (the loaders have checked it against the file)."""
    return json.loads((Path(directory) / "config.json").read_text())["sha256"]


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = cli.Parser(prog="python -m lipmem_core.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="generator checkpoint directory")
    p.add_argument("--data", required=True, help="corpus root (SynthTalk layout)")
    p.add_argument("--split", default="test", help="manifest split to evaluate (default: test)")
    p.add_argument("--out", required=True, type=Path, help="results.json to write")
    p.add_argument("--syncnet", default=None, help="SyncNet checkpoint: adds LSE-D, LSE-C and AV offset")
    p.add_argument("--oracle", default=None, help="mouth-oracle checkpoint: adds the mouth-shape error")
    p.add_argument("--max-clips", type=cli.positive_int, default=None, help="evaluate only the first N clips")
    p.add_argument(
        "--clips-per-speaker",
        type=cli.positive_int,
        default=None,
        help="evaluate only the first K clips of each speaker (a subset spanning every speaker)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the untrained (random-init) row")
    p.add_argument(
        "--threads", type=cli.positive_int, default=None, help="torch CPU threads (default: torch's)"
    )
    p.add_argument("--quiet", action="store_true", help="no per-clip progress")
    p.add_argument(
        "--reference",
        choices=REFERENCES,
        default="self",
        help="reference frames of the identity input: each frame itself (self, as infer on a video) "
        "or the frame half the clip away (other, as in training: its own mouth cannot be copied)",
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cli.check_output(args.out, [args.checkpoint, args.data, args.syncnet, args.oracle])
        result = evaluate(
            args.checkpoint, args.data, args.split, args.syncnet, args.oracle, args.max_clips, args.seed,
            progress=not args.quiet, reference=args.reference, clips_per_speaker=args.clips_per_speaker,
        )  # fmt: skip
        result = {"command": shlex.join(["python", "-m", "lipmem_core.evaluate", *argv]), **result}
        # paths made portable (lipmem_core.provenance): the file is read on other machines
        cli.write_text_atomic(
            args.out, json.dumps(json_safe(portable(result)), indent=1, allow_nan=False) + "\n"
        )
    except LipMemError as exc:
        return cli.fail(exc)
    for row in result["rows"]:
        mem = row["memory"] or {}
        cells = [(k, row[k]) for k in ("psnr", "ssim", "mouth_mae", "lse_d", "lse_c", "offset_zero_share")]
        cells += [("pnmi", mem.get("pnmi")), ("slots", mem.get("used_slots"))]
        cells += [(k, row.get(k)) for k in ("jaw_motion_ratio", "address_agreement")]
        vs_gt = row.get("mouth_vs_gt_reading")
        if vs_gt:
            cells.append(("mouth_pct_std_vs_gt", vs_gt["mae_pct_std_mean"]))
        print(f"{row['label']:36s} " + "  ".join(f"{k} {_fmt(v)}" for k, v in cells))
    print(f"wrote {args.out}")
    return 0
