"""Where does the mouth oracle err? Its error on a SynthTalk split's real frames, taken apart.

The oracle (`lipmem_core/evaluation/oracle.py`) reads the 7 mouth parameters off single frames;
every mouth figure of `lipmem_core.evaluate` goes through it. This prints its error against the
exact parameters (`mouth.csv`, MAE in % of each parameter's std, as evaluate reports it):
- per speaker, with two identity traits that matter to a reader (beard, mouth width factor);
- `error`: all frames, as `python -m lipmem_core.oracle --measure` reports it;
- `minus clip bias`: each clip's mean signed error removed (what a reader that knew each face's
  constant offset would score);
- `per-clip affine`: each clip's readings mapped to the truth by the least-squares offset and
  gain fitted on that clip's own truth, per parameter: a bound, not a reader, for anything that
  only corrects for who is speaking (an identity's mouth width, lip thickness or beard).
If the bound stays far above a target, knowing the identity cannot reach it: the error is in the
reading of single frames. `averaged over 3 frames` smooths each clip's readings in time: whether
the frame errors are noise that time would average away.

    python benchmarks/oracle_errors.py --data DIR [--oracle checkpoints/mouth-oracle] [--split test]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import uniform_filter1d

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lipmem_core.data.synth.mouth import MOUTH_PARAMS  # noqa: E402
from lipmem_core.evaluation.oracle import corpus_clips, load_oracle, predict_mouth  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def per_clip_affine(read: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """read (n, 7) mapped to truth (n, 7) by a least-squares offset and gain per parameter."""
    out = np.empty_like(read, dtype=np.float64)
    for k in range(read.shape[1]):
        x = np.stack([read[:, k], np.ones(len(read))], axis=1)  # (n, 2)
        w, *_ = np.linalg.lstsq(x, truth[:, k], rcond=None)
        out[:, k] = x @ w
    return out


def row(label: str, pct: dict[str, float]) -> str:
    values = [pct[p] for p in MOUTH_PARAMS]
    return f"{label:<34s}" + "".join(f"{v:8.1f}" for v in values) + f"{np.mean(values):8.1f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="SynthTalk corpus root")
    p.add_argument("--oracle", type=Path, default=ROOT / "checkpoints" / "mouth-oracle")
    p.add_argument("--split", default="test")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    oracle = load_oracle(args.oracle)
    clips = corpus_clips(args.data, args.split)
    speakers = [spk for spk, _, _ in clips]
    read = [predict_mouth(oracle, frames) for _, frames, _ in clips]  # per clip (n, 7)
    truth = [mouths for _, _, mouths in clips]
    all_truth = np.concatenate(truth)
    std = all_truth.std(axis=0)  # (7,): every row divides by the whole split's std, as evaluate does

    def pct(r: list[np.ndarray], t: np.ndarray = all_truth) -> dict[str, float]:
        mae = np.abs(np.concatenate(r) - t).mean(axis=0)  # (7,)
        return dict(zip(MOUTH_PARAMS, 100.0 * mae / std, strict=True))

    traits = json.loads((args.data / "speakers.json").read_text())["speakers"]
    print(f"{args.oracle.name} on {args.data.name} {args.split}: {len(all_truth)} frames, {len(read)} clips")
    print(
        f"MAE in % of each parameter's std\n{'':<34s}"
        + "".join(f"{q:>8s}" for q in MOUTH_PARAMS)
        + "    mean"
    )
    for spk in dict.fromkeys(speakers):
        mine = [i for i, s in enumerate(speakers) if s == spk]
        face = traits.get(spk, {}).get("identity", {})
        label = f"{spk} beard {face.get('beard', '?')}, mouth x{face.get('mouth_width', float('nan')):.2f}"
        print(row(label, pct([read[i] for i in mine], np.concatenate([truth[i] for i in mine]))))
    print(row("error", pct(read)))
    unbiased = [r - (r - t).mean(axis=0) for r, t in zip(read, truth, strict=True)]
    print(row("minus clip bias", pct(unbiased)))
    smoothed = [uniform_filter1d(r, 3, axis=0, mode="nearest") for r in read]
    print(row("averaged over 3 frames", pct(smoothed)))
    print(
        row("per-clip affine (bound)", pct([per_clip_affine(r, t) for r, t in zip(read, truth, strict=True)]))
    )


if __name__ == "__main__":
    main()
