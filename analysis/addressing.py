"""Per-frame audio addressing A_aud joined with phones; phone x slot matrices.

The frame table (one row per video frame, 25 fps) is the input of every memory analysis:

    utterance str, frame int, time float (frame centre (k + 0.5) / 25, seconds),
    slot int (argmax_s A_aud), weight float (max_s A_aud), a0 .. a{S-1} float (A_aud row),
    phone str and viseme str after `join_phones`.

A_aud comes from `lipmem_core.address_audio` (the model's public `LipMemGenerator.address`
over the mel window of each video frame, docs/ARCHITECTURE.md timing rule), batched, and is
cached to parquet keyed by a hash of the model weights and the audio. Statistics (PNMI, purities, usage entropy, dead
slots) are `lipmem_core.evaluation.metrics`' single implementation.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.cluster.hierarchy import leaves_list, linkage
from tqdm.auto import tqdm

from lipmem_core.audio import load_audio
from lipmem_core.config import FPS
from lipmem_core.data.corpus import frame_phones
from lipmem_core.errors import AlignmentError
from lipmem_core.evaluation.metrics import joint_distribution, slot_statistics
from lipmem_core.infer.addressing import AddressFn, address_audio
from lipmem_core.infer.fast import inference_copy
from lipmem_core.model.generator import LipMemGenerator
from lipmem_core.phones import PHONES, SILENCE, VISEMES, Interval, viseme_of

from .tables import check_phone_table

SLOT_PREFIX = "a"  # A_aud column of slot s is f"a{s}" (parquet needs string column names)


def slot_columns(n_slots: int) -> list[str]:
    return [f"{SLOT_PREFIX}{s}" for s in range(n_slots)]


def weights(frames: pd.DataFrame) -> np.ndarray:
    """The A_aud matrix (N, S) of a frame table."""
    cols = [c for c in frames.columns if c.startswith(SLOT_PREFIX) and c[len(SLOT_PREFIX) :].isdigit()]
    return frames[cols].to_numpy(dtype=np.float32)  # (N, S)


def model_fingerprint(model: torch.nn.Module) -> str:
    """sha256 of the model's weights (names, shapes, bytes): the cache key of its addressings."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def frame_table(address: np.ndarray, utterance: str = "utt") -> pd.DataFrame:
    """Frame table (see module docstring) from an (N, S) addressing matrix."""
    address = np.asarray(address, dtype=np.float32)  # (N, S)
    frames = pd.DataFrame(address, columns=slot_columns(address.shape[1]))
    head = pd.DataFrame(
        {
            "utterance": utterance,
            "frame": np.arange(len(address)),
            "time": (np.arange(len(address)) + 0.5) / FPS,
            "slot": address.argmax(axis=1) if len(address) else np.zeros(0, np.int64),
            "weight": address.max(axis=1) if len(address) else np.zeros(0, np.float32),
        }
    )
    return pd.concat([head, frames], axis=1)


def clip_addressing(
    model,
    audio: np.ndarray,
    utterance: str = "utt",
    cache_dir: str | Path | None = None,
    fingerprint: str | None = None,
    batch_size: int = 512,
    address_fn: AddressFn | None = None,
) -> pd.DataFrame:
    """Frame table of one clip, read from / written to `cache_dir` when given.

    The cache file is named by sha256(model weights, audio samples): retraining or other
    audio never hits a stale entry. Pass `fingerprint` (model_fingerprint) when addressing
    many clips with one model, so the weights are hashed once.
    """
    audio = np.asarray(audio, dtype=np.float32)
    path = None
    if cache_dir is not None:
        fingerprint = fingerprint or model_fingerprint(model)
        key = hashlib.sha256(fingerprint.encode() + audio.tobytes()).hexdigest()[:24]
        path = Path(cache_dir) / f"addr_{key}.parquet"
        if path.exists():
            frames = pd.read_parquet(path)
            frames["utterance"] = utterance
            return frames
    frames = frame_table(address_audio(model, audio, batch_size, address_fn=address_fn), utterance)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{np.random.default_rng().integers(1 << 30)}.tmp")
        frames.to_parquet(tmp, index=False)
        tmp.replace(path)  # atomic: a concurrent reader never sees half a file
    return frames


def corpus_addressing(
    model,
    clips: Iterable[tuple[str, np.ndarray]],
    cache_dir: str | Path | None = None,
    progress: bool = True,
    total: int | None = None,
    optimise: bool = True,
) -> pd.DataFrame:
    """Frame tables of many clips (utterance id, 16 kHz audio), concatenated, with a progress bar.

    optimise: address through `lipmem_core.infer.fast.inference_copy` of the model, made once,
    on the first clip not in the cache (worth it from about a minute of audio).
    """
    fingerprint = model_fingerprint(model) if cache_dir is not None else None
    fast: AddressFn | None = None

    def address(mel: torch.Tensor) -> torch.Tensor:
        nonlocal fast
        if fast is None:
            fast = inference_copy(model, next(model.parameters()).device).address
        return fast(mel)

    tables = [
        clip_addressing(model, audio, utt, cache_dir, fingerprint, address_fn=address if optimise else None)
        for utt, audio in tqdm(clips, desc="addressing", unit="clip", total=total, disable=not progress)
    ]
    if not tables:
        raise AlignmentError("no clips to address")
    return pd.concat(tables, ignore_index=True)


def address_speech(
    model: LipMemGenerator,
    audio: np.ndarray | str | os.PathLike,
    transcript: str | None = None,
    utterance: str = "utt",
) -> pd.DataFrame:
    """Speech -> its frame table with phones: one row per video frame with A_aud, the argmax
    slot, the phone and viseme at the frame centre (columns in the module docstring).

    `audio`: 16 kHz mono float32 (N,) or any audio file. Phones come from PocketSphinx,
    recognising the speech first when no `transcript` is given (analysis.align).
    """
    from .align import align_pocketsphinx

    wav = load_audio(audio) if isinstance(audio, (str, os.PathLike)) else np.asarray(audio, np.float32)
    phones = align_pocketsphinx(wav, transcript, utterance=utterance).table
    return join_phones(frame_table(address_audio(model, wav), utterance), phones)


def join_phones(frames: pd.DataFrame, phones: pd.DataFrame) -> pd.DataFrame:
    """Add `phone` and `viseme` to a frame table: the phone interval holding each frame centre.

    Frames of an utterance with no phone table, or past the last interval, are silence.
    """
    check_phone_table(phones)
    out = frames.copy()
    labels = np.full(len(out), SILENCE, dtype=object)
    by_utt = dict(tuple(phones.groupby("utterance", sort=False)))
    frame_ids = out["frame"].to_numpy()
    for utt, idx in out.groupby("utterance", sort=False).indices.items():
        if utt not in by_utt:
            continue
        p = by_utt[utt].sort_values("start")
        intervals = [Interval(s, e, ph) for s, e, ph in zip(p["start"], p["end"], p["phone"], strict=True)]
        k = frame_ids[idx]
        at_centres = frame_phones(intervals, int(k.max()) + 1)  # phone at each frame centre
        labels[idx] = np.asarray(at_centres, dtype=object)[k]
    out.insert(out.columns.get_loc("weight") + 1, "phone", labels)
    out.insert(out.columns.get_loc("phone") + 1, "viseme", [viseme_of(p) for p in labels])
    return out


def _label_order(by: str) -> list[str]:
    return list(PHONES) if by == "phone" else list(VISEMES)


def _ordered(table: pd.DataFrame, by: str) -> pd.DataFrame:
    known = _label_order(by)
    order = [label for label in known if label in table.index] + sorted(set(table.index) - set(known))
    table = table.loc[order]
    table.index.name = by
    return table


def slot_counts(frames: pd.DataFrame, by: str = "phone") -> pd.DataFrame:
    """How often each slot is the argmax for frames of each phone (or viseme): (labels, S) ints."""
    n_slots = weights(frames).shape[1]
    joint = joint_distribution(frames[by].astype(str), frames["slot"].to_numpy(np.int64), n_slots)
    counts = (joint * len(frames)).round().astype(np.int64)
    counts.columns = pd.RangeIndex(n_slots, name="slot")
    return _ordered(counts, by)


def mean_weights(frames: pd.DataFrame, by: str = "phone") -> pd.DataFrame:
    """Mean A_aud of the frames of each phone (or viseme): (labels, S); rows sum to 1."""
    w = pd.DataFrame(weights(frames), index=frames[by].to_numpy())
    mean = w.groupby(level=0).mean()
    mean.columns = pd.RangeIndex(w.shape[1], name="slot")
    return _ordered(mean, by)


def slot_given_phone(counts: pd.DataFrame) -> pd.DataFrame:
    """P(slot | phone) from slot_counts: rows sum to 1."""
    return counts.div(counts.sum(axis=1).replace(0, np.nan), axis=0).fillna(0.0)


def phone_given_slot(counts: pd.DataFrame) -> pd.DataFrame:
    """P(phone | slot) from slot_counts: used columns sum to 1, dead slots are all zero."""
    return counts.div(counts.sum(axis=0).replace(0, np.nan), axis=1).fillna(0.0)


def phone_slot_matrices(frames: pd.DataFrame, by: str = "phone") -> dict[str, pd.DataFrame]:
    """The four phone (or viseme) x slot matrices: counts, mean_weight, p_slot_given, p_label_given_slot."""
    if by not in ("phone", "viseme"):
        raise ValueError(f"by must be 'phone' or 'viseme', got {by!r}")
    counts = slot_counts(frames, by)
    return {
        "counts": counts,
        "mean_weight": mean_weights(frames, by),
        "p_slot_given": slot_given_phone(counts),
        "p_label_given_slot": phone_given_slot(counts),
    }


def statistics(frames: pd.DataFrame, per_utterance: bool = False) -> pd.DataFrame:
    """metrics.slot_statistics of the frames: one row ("all"), plus one per utterance if asked."""
    n_slots = weights(frames).shape[1]
    groups: list[tuple[str, pd.DataFrame]] = [("all", frames)]
    if per_utterance:
        groups += list(frames.groupby("utterance", sort=False))
    rows = []
    for name, g in groups:
        stats = slot_statistics(g["phone"].astype(str), g["slot"].to_numpy(np.int64), n_slots)
        rows.append({"utterance": name, **stats.to_dict()})
    return pd.DataFrame(rows)


def slot_order_by_label(counts: pd.DataFrame) -> list[int]:
    """Slots sorted by their dominant label (rows of a label x slot count matrix, in their
    order: ARPAbet or viseme classes), then by how much of the slot that label holds;
    unused slots last. Reads left to right like the label axis reads top to bottom."""
    m = counts.to_numpy(dtype=np.float64)  # (P, S)
    mass = m.sum(axis=0)
    used = np.flatnonzero(mass > 0)
    best = m.argmax(axis=0)
    share = m.max(axis=0) / np.maximum(mass, 1)
    ordered = sorted(used, key=lambda s: (best[s], -share[s], s))
    return [int(counts.columns[s]) for s in ordered] + [
        int(counts.columns[s]) for s in np.flatnonzero(mass <= 0)
    ]


def slot_order(matrix: pd.DataFrame) -> list[int]:
    """Slots (columns of a label x slot matrix) ordered by hierarchical clustering of their profiles.

    Each used slot is described by its column normalised to a distribution over labels;
    average-linkage clustering with optimal leaf ordering puts slots that serve the same
    phones side by side, so the heatmap reads as blocks. Unused slots go last.
    """
    m = matrix.to_numpy(dtype=np.float64)  # (P, S)
    mass = m.sum(axis=0)
    used = np.flatnonzero(mass > 0)
    dead = [int(matrix.columns[s]) for s in np.flatnonzero(mass <= 0)]
    if len(used) < 3:
        return [int(matrix.columns[s]) for s in used[np.argsort(-mass[used])]] + dead
    profiles = (m[:, used] / mass[used]).T  # (U, P)
    tree = linkage(profiles, method="average", metric="euclidean", optimal_ordering=True)
    return [int(matrix.columns[used[i]]) for i in leaves_list(tree)] + dead


BOOTSTRAP_STATISTICS = (
    "pnmi",
    "phone_purity",
    "slot_purity",
    "viseme_purity",
    "usage_entropy_norm",
    "used_slots",
)


def bootstrap_statistics(
    frames: pd.DataFrame,
    n_boot: int = 200,
    block_frames: int = 10,
    min_utterances: int = 5,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Bootstrap intervals (basic, `level`) of the memory statistics of a frame table.

    Frames of one utterance are not independent (a phone spans several frames), so whole
    units are resampled: utterances when there are at least `min_utterances`, else blocks
    of `block_frames` consecutive frames (0.4 s at 10) within each utterance. Returns one
    row per statistic of BOOTSTRAP_STATISTICS: statistic, value (on all frames), low, high,
    n_frames, unit ("utterance" or "10-frame block"), n_units.
    """
    n_slots = weights(frames).shape[1]
    phones = frames["phone"].astype(str).to_numpy()
    slots = frames["slot"].to_numpy(np.int64)
    utts = frames["utterance"].to_numpy()
    if frames["utterance"].nunique() >= min_utterances:
        units = [np.flatnonzero(utts == u) for u in pd.unique(utts)]
        unit = "utterance"
    else:
        units = []
        for idx in frames.groupby("utterance", sort=False).indices.values():
            units += [idx[i : i + block_frames] for i in range(0, len(idx), block_frames)]
        unit = f"{block_frames}-frame block"
    full = slot_statistics(phones, slots, n_slots).to_dict()
    rng = np.random.default_rng(seed)
    samples = np.empty((n_boot, len(BOOTSTRAP_STATISTICS)))
    for b in range(n_boot):
        idx = np.concatenate([units[i] for i in rng.integers(0, len(units), len(units))])
        stats = slot_statistics(phones[idx], slots[idx], n_slots).to_dict()
        samples[b] = [stats[k] for k in BOOTSTRAP_STATISTICS]
    alpha = (1.0 - level) / 2
    q_low, q_high = np.nanquantile(samples, [alpha, 1.0 - alpha], axis=0)
    # The basic (reverse-percentile) interval 2 * value - quantile: a resample repeats units, which
    # inflates plug-in mutual information and lowers slot counts, and reflecting the quantiles
    # about the estimate corrects that bias (plain percentiles can miss the estimate altogether).
    value = np.array([float(full[k]) for k in BOOTSTRAP_STATISTICS])
    upper = np.array([n_slots if k == "used_slots" else 1.0 for k in BOOTSTRAP_STATISTICS])
    # Clipping to the statistic's range can push a bound past the estimate near 0 or 1;
    # the interval always holds the estimate.
    low = np.minimum(np.clip(2 * value - q_high, 0.0, upper), value)
    high = np.maximum(np.clip(2 * value - q_low, 0.0, upper), value)
    return pd.DataFrame(
        {
            "statistic": list(BOOTSTRAP_STATISTICS),
            "value": value,
            "low": low,
            "high": high,
            "n_frames": len(frames),
            "unit": unit,
            "n_units": len(units),
        }
    )
