"""What the memory slots hold: 2-D maps of keys K and values V, and lip images per slot.

- Maps: UMAP (umap-learn, seeded, cosine metric since addressing is cosine) of the S value
  rows V (lip side) or key rows K (audio side), labelled by each slot's dominant phone and
  viseme; and of per-frame lip features with the value slots overlaid in the same space.
  With too few points for a neighbour graph (fewer than _MIN_UMAP_POINTS) PCA is used.
- Images: decode one slot's value V_s (a one-hot address through the public
  `LipMemGenerator.decode_with_address`) for a chosen identity frame, for every slot
  (a gallery); or decode a hand-made address sequence (steering the lips through memory).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lipmem_core.infer.addressing import decode_addresses
from lipmem_core.phones import SILENCE, viseme_of

from .addressing import weights

_MIN_UMAP_POINTS = 10  # below this UMAP's k-NN graph and spectral init are meaningless
UNUSED = "unused"  # label of a slot that is never the argmax


def embed_2d(points: np.ndarray, seed: int = 0, method: str = "auto") -> tuple[np.ndarray, str]:
    """(N, D) -> ((N, 2) coordinates, method used: "umap" or "pca"). Deterministic for a seed."""
    x = np.asarray(points, dtype=np.float32)  # (N, D)
    n = len(x)
    if n == 0:
        return np.zeros((0, 2), np.float32), "pca"
    if method not in ("auto", "umap", "pca"):
        raise ValueError(f"method must be 'auto', 'umap' or 'pca', got {method!r}")
    if method == "umap" or (method == "auto" and n >= _MIN_UMAP_POINTS):
        import umap

        reducer = umap.UMAP(
            n_neighbors=min(15, n - 1),
            min_dist=0.1,
            metric="cosine",
            random_state=seed,
            n_components=2,
            n_jobs=1,
        )
        return reducer.fit_transform(x).astype(np.float32), "umap"
    centred = x - x.mean(axis=0)
    if n < 2:
        return np.zeros((n, 2), np.float32), "pca"
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ vt[:2].T  # (N, <=2)
    return np.pad(coords, ((0, 0), (0, 2 - coords.shape[1]))).astype(np.float32), "pca"


def slot_labels(counts: pd.DataFrame, top: int = 3) -> pd.DataFrame:
    """Per slot: frames it wins, its dominant phone (or UNUSED), that phone's share, viseme, the
    runner-up phone ("" if none) and the top phones with shares (a display string).

    counts: phone x slot argmax counts (addressing.slot_counts).
    """
    rows = []
    for slot in counts.columns:
        col = counts[slot]
        total = int(col.sum())
        if total == 0:
            rows.append(
                {
                    "slot": int(slot),
                    "n_frames": 0,
                    "phone": UNUSED,
                    "share": 0.0,
                    "viseme": UNUSED,
                    "second_phone": "",
                    "top_phones": "",
                }
            )
            continue
        best = col.sort_values(ascending=False, kind="stable")
        best = best[best > 0].head(top)
        rows.append(
            {
                "slot": int(slot),
                "n_frames": total,
                "phone": str(best.index[0]),
                "share": float(best.iloc[0] / total),
                "viseme": viseme_of(str(best.index[0])),
                "second_phone": str(best.index[1]) if len(best) > 1 else "",
                "top_phones": ", ".join(f"{p} {c / total:.0%}" for p, c in best.items()),
            }
        )
    return pd.DataFrame(rows)


def memory_rows(model, which: str = "value") -> np.ndarray:
    """The value memory V or key memory K of a generator: (S, D) float32."""
    if model.memory is None:
        raise ValueError("this generator has no memory (use_memory=False): there are no slots to map")
    if which not in ("value", "key"):
        raise ValueError(f"which must be 'value' or 'key', got {which!r}")
    return getattr(model.memory, which).detach().float().cpu().numpy()  # (S, D)


def slot_map(
    model, counts: pd.DataFrame | None = None, which: str = "value", seed: int = 0, method: str = "auto"
) -> pd.DataFrame:
    """2-D map of the S value (or key) slots: columns slot, x, y, method, memory + slot_labels."""
    rows = memory_rows(model, which)  # (S, D)
    xy, method = embed_2d(rows, seed, method)
    table = pd.DataFrame({"slot": np.arange(len(rows)), "x": xy[:, 0], "y": xy[:, 1]})
    table["method"], table["memory"] = method, which
    if counts is not None:
        table = table.merge(slot_labels(counts), on="slot", how="left")
    return table


def recalled_lip_features(frames: pd.DataFrame, model) -> np.ndarray:
    """Per-frame lip feature recalled by audio, r_aud = A_aud @ V: (N, S) @ (S, D) -> (N, D).

    This is the lip feature the decoder receives at inference; frames with lip-encoder features
    (GeneratorOutput.lip_query on a training forward) can be passed to `frame_map` instead.
    """
    return weights(frames) @ memory_rows(model, "value")  # (N, D)


def frame_map(
    frames: pd.DataFrame,
    model,
    features: np.ndarray | None = None,
    seed: int = 0,
    max_frames: int = 4000,
    method: str = "auto",
) -> pd.DataFrame:
    """One 2-D map of per-frame lip features and the S value slots embedded together.

    Rows: kind "frame" (with phone, viseme, slot of the frame) and kind "slot" (the value V_s,
    overlaid in the same space). At most `max_frames` frames, sampled with the seed.
    """
    feats = recalled_lip_features(frames, model) if features is None else np.asarray(features, np.float32)
    if len(feats) != len(frames):
        raise ValueError(f"features has {len(feats)} rows for {len(frames)} frames")
    keep = np.arange(len(frames))
    if len(keep) > max_frames:
        keep = np.sort(np.random.default_rng(seed).choice(len(frames), max_frames, replace=False))
    values = memory_rows(model, "value")  # (S, D)
    xy, method = embed_2d(np.concatenate([feats[keep], values]), seed, method)
    sub = frames.iloc[keep]
    frame_rows = pd.DataFrame(
        {
            "kind": "frame",
            "utterance": sub["utterance"].to_numpy(),
            "frame": sub["frame"].to_numpy(),
            "slot": sub["slot"].to_numpy(),
            "phone": sub["phone"].to_numpy() if "phone" in sub else SILENCE,
        }
    )
    slot_rows = pd.DataFrame(
        {"kind": "slot", "utterance": "", "frame": -1, "slot": np.arange(len(values)), "phone": ""}
    )
    table = pd.concat([frame_rows, slot_rows], ignore_index=True)
    table["x"], table["y"], table["method"] = xy[:, 0], xy[:, 1], method
    return table


def slot_gallery(
    model, identity: np.ndarray, slots: Sequence[int] | None = None
) -> tuple[np.ndarray, list[int]]:
    """Lip image of each slot's value for one identity: (len(slots), H, W, 3) uint8 and the slots."""
    chosen = list(range(model.cfg.n_slots)) if slots is None else [int(s) for s in slots]
    return decode_addresses(model, identity, np.eye(model.cfg.n_slots, dtype=np.float32)[chosen]), chosen


def address_sequence(segments: Sequence[tuple[int, int]], n_slots: int, blend: int = 2) -> np.ndarray:
    """A hand-made address track: [(slot, n_frames), ...] -> (T, S) rows summing to 1.

    Consecutive slots cross-fade linearly over `blend` frames at each boundary, so the decoded
    lips move from one stored shape to the next instead of jumping.
    """
    if not segments:
        raise ValueError("give at least one (slot, n_frames) segment")
    slots = np.concatenate([np.full(int(n), int(s)) for s, n in segments])  # (T,)
    if slots.min() < 0 or slots.max() >= n_slots:
        raise ValueError(f"slots must lie in [0, {n_slots})")
    track = np.eye(n_slots, dtype=np.float32)[slots]  # (T, S)
    if blend > 0 and len(track) > 1:
        kernel = np.ones(2 * blend + 1, np.float32) / (2 * blend + 1)
        padded = np.pad(track, ((blend, blend), (0, 0)), mode="edge")
        track = np.stack([np.convolve(padded[:, s], kernel, mode="valid") for s in range(n_slots)], axis=1)
    return track / track.sum(axis=1, keepdims=True)


def phone_segments(
    p_slot_given_phone: pd.DataFrame, phones: Sequence[str], frames_per_phone: int = 4
) -> tuple[list[tuple[int, int]], list[str]]:
    """Steering segments that spell a phone sequence through memory: each phone -> its most
    likely slot argmax_s P(slot | phone) (addressing.phone_slot_matrices "p_slot_given").

    Returns (segments for `address_sequence`, the phones used): phones never observed are skipped.
    """
    known = [p for p in phones if p in p_slot_given_phone.index and p_slot_given_phone.loc[p].sum() > 0]
    return [(int(p_slot_given_phone.loc[p].to_numpy().argmax()), frames_per_phone) for p in known], known
