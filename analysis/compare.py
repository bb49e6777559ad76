"""Ground truth, memory model and ablation on one input: mouth strips and oracle-read curves.

The comparison the paper's study is about, as plain functions (no gradio, no model loading):

- `ground_truth_frames`: SynthTalk's own renderer driven by the exact phones (espeak), at the
  neutral pose the generators' reference face has, so the three renderings line up pixel for pixel.
- `mouth_strip`: the mouth region (`metrics.MOUTH_BOX`) of every k-th frame of each rendering,
  one labelled row per rendering, as one uint8 image (the figure for a README or a paper).
- `oracle_curves`: the mouth oracle's (lipmem_core.evaluation.oracle) reading of every frame of each
  rendering, as a long table (source, frame, time, param, value); `curve_errors` sums it up
  as each rendering's mean absolute difference from the ground truth's reading.

Figures of these tables are in `analysis.plots` (`mouth_curves`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np
import pandas as pd

from lipmem_core.config import FPS
from lipmem_core.data.synth.mouth import MOUTH_PARAMS, mouth_trajectory
from lipmem_core.evaluation.metrics import mouth_crop
from lipmem_core.phones import Interval

CURVE_PARAMS = ("jaw", "close", "round")  # opening, bilabial closure, lip rounding: what a viewer sees
_LABEL_WIDTH = 150  # px of the strip's left margin holding each row's name
_TICK_HEIGHT = 18  # px of the strip's bottom margin holding the frame times


def ground_truth_frames(
    identity, phones: pd.DataFrame, n_frames: int, size: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """SynthTalk's ground truth for a phone table: (frames (n, size, size, 3) uint8, mouth (n, 7)).

    `identity` is a `face_render.Identity`. The head stays still and the eyes open: the
    generators draw on a still reference face, and a moving head would shift the mouth box.
    """
    from lipmem_core.data.synth.face_render import FaceRenderer

    intervals = [Interval(float(r.start), float(r.end), str(r.phone)) for r in phones.itertuples()]
    mouth = mouth_trajectory(intervals, n_frames, FPS)  # (n, 7)
    renderer = FaceRenderer(identity, size=size)
    frames = np.empty((n_frames, size, size, 3), np.uint8)
    for i in range(n_frames):
        renderer.render(mouth[i], out=frames[i])
    return frames, mouth


def _same_size(frames: np.ndarray, size: int) -> np.ndarray:
    if frames.shape[1:3] == (size, size):
        return frames
    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])


def mouth_strip(
    renderings: Mapping[str, np.ndarray],
    every: int = 2,
    max_columns: int = 40,
    face_size: int = 128,
    scale: float = 1.5,
) -> np.ndarray:
    """Mouth crops over time: one row per rendering (its name on the left), a column every
    `every` frames (at most `max_columns`, then spaced wider), the time of each column below.

    renderings: name -> frames (n, H, W, 3) uint8 of equal n; faces are resized to `face_size`
    first so every row crops the same box. Returns an RGB uint8 image.
    """
    if not renderings:
        raise ValueError("give at least one rendering")
    lengths = {len(f) for f in renderings.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(f"renderings must have the same, non-zero number of frames, got {sorted(lengths)}")
    n = lengths.pop()
    step = max(every, -(-n // max_columns))
    picks = np.arange(0, n, step)
    rows = []
    for frames in renderings.values():
        crops = mouth_crop(_same_size(np.asarray(frames), face_size)[picks])  # (k, h, w, 3)
        h, w = crops.shape[1:3]
        size = (round(w * scale), round(h * scale))
        tiles = [cv2.resize(c, size, interpolation=cv2.INTER_CUBIC) for c in crops]
        # a white 2 px gap between columns keeps neighbouring mouths apart
        row = np.concatenate(
            [np.pad(t, ((0, 0), (0, 2), (0, 0)), constant_values=255) for t in tiles], axis=1
        )
        rows.append(np.pad(row, ((0, 2), (0, 0), (0, 0)), constant_values=255))
    tile_w = rows[0].shape[1] // len(picks)
    body = np.concatenate(rows, axis=0)
    canvas = np.full((body.shape[0] + _TICK_HEIGHT, _LABEL_WIDTH + body.shape[1], 3), 255, np.uint8)
    canvas[: body.shape[0], _LABEL_WIDTH:] = body
    row_h = rows[0].shape[0]
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i, name in enumerate(renderings):
        # "memory: lipmem-synthtalk" is written on two lines: the margin fits ~20 characters a line
        lines = [part[:22] for part in name.split(": ", 1)]
        y0 = i * row_h + row_h // 2 + 5 - 8 * (len(lines) - 1)
        for k, line in enumerate(lines):
            cv2.putText(canvas, line, (4, y0 + 16 * k), font, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    label_every = max(1, len(picks) // 10)
    for j in range(0, len(picks), label_every):
        x = _LABEL_WIDTH + j * tile_w + 2
        cv2.putText(
            canvas,
            f"{picks[j] / FPS:.2f}s",
            (x, canvas.shape[0] - 5),
            font,
            0.35,
            (60, 60, 60),
            1,
            cv2.LINE_AA,
        )
    cv2.putText(canvas, "time", (4, canvas.shape[0] - 5), font, 0.35, (60, 60, 60), 1, cv2.LINE_AA)
    return canvas


def oracle_curves(
    oracle, renderings: Mapping[str, np.ndarray], params: Sequence[str] = CURVE_PARAMS
) -> pd.DataFrame:
    """The mouth oracle's reading of every frame of each rendering: a long table with columns
    source, frame, time (frame centre, s), param, value (in [0, 1], SynthTalk's units)."""
    from lipmem_core.evaluation.oracle import predict_mouth

    unknown = [p for p in params if p not in MOUTH_PARAMS]
    if unknown:
        raise ValueError(f"unknown mouth parameters {unknown}; choose from {MOUTH_PARAMS}")
    cols = [MOUTH_PARAMS.index(p) for p in params]
    tables = []
    for name, frames in renderings.items():
        read = predict_mouth(oracle, np.asarray(frames))[:, cols]  # (n, len(params))
        n = len(read)
        tables.append(
            pd.DataFrame(
                {
                    "source": name,
                    "frame": np.repeat(np.arange(n), len(params)),
                    "time": np.repeat((np.arange(n) + 0.5) / FPS, len(params)),
                    "param": np.tile(list(params), n),
                    "value": read.reshape(-1),
                }
            )
        )
    return pd.concat(tables, ignore_index=True)


def curve_errors(curves: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Mean absolute difference of each source's oracle reading from `reference`'s, per param
    (and the mean over params): one row per source other than the reference."""
    wide = curves.pivot_table(index=["frame", "param"], columns="source", values="value")
    if reference not in wide:
        raise ValueError(f"no source {reference!r} in the curves; sources: {list(wide.columns)}")
    rows = []
    for source in [s for s in dict.fromkeys(curves["source"]) if s != reference]:
        err = (wide[source] - wide[reference]).abs().groupby(level="param").mean()
        params = list(dict.fromkeys(curves["param"]))
        rows.append({"source": source, **{p: float(err[p]) for p in params}, "mean": float(err.mean())})
    return pd.DataFrame(rows)
