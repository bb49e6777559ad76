"""Where does a generator's mouth come from: the audio, the real lips, or the reference frame?

On test windows of a SynthTalk corpus, with each window's references taken from another
moment of the clip (as in training), the mouth-shape oracle reads:
- `audio`: the inference path (A_aud, or f_aud alone without memory);
- `lip`: the lip-addressed path, which sees the real lips (the memory's upper bound);
- `copy-ref`: the reference frames themselves, i.e. a generator that copies its reference;
- `audio, self-ref`: the inference path when the target frame is its own reference (the
  usual evaluation protocol, where the target's mouth can be copied).
Each row prints the mouth error against the oracle's reading of the real frames (% of that
reading's std per parameter, the mean over parameters) and the correlation r per parameter.

A second table puts everything against SynthTalk's exact mouth parameters (`mouth.csv`): the
oracle's reading of the real frames (the instrument's own error), its readings of each drawn
row, and, for models trained with the SynthTalk-only read-outs, the mouth the features carry
before the decoder draws it: `mouth_readout` of each path's decoder input and `recall_readout`
of each path's recall (A_aud V, and A_lip V, the recall a perfect A_aud would give). The gap
between a feature's row and its drawn row is what the decoder loses.

    python benchmarks/mouth_source.py --checkpoint DIR --data DIR [--windows 96]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lipmem_core.checkpoint import load_checkpoint  # noqa: E402
from lipmem_core.data.datasets import ClipStore, GeneratorWindows  # noqa: E402
from lipmem_core.data.synth.mouth import MOUTH_PARAMS  # noqa: E402
from lipmem_core.evaluation.oracle import load_oracle, mouth_correlation, mouth_error, predict_mouth  # noqa: E402
from lipmem_core.model.encoders import identity_input  # noqa: E402
from lipmem_core.pixels import to_uint8  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def frames_u8(x: torch.Tensor) -> np.ndarray:
    """(B, 3, T, H, W) in [-1, 1] -> (B*T, H, W, 3) uint8."""
    return to_uint8(x.float()).permute(0, 2, 3, 4, 1).flatten(0, 1).numpy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="generator checkpoint directory")
    p.add_argument("--data", required=True, help="SynthTalk corpus root")
    p.add_argument("--split", default="test")
    p.add_argument("--oracle", default=str(ROOT / "checkpoints" / "mouth-oracle"))
    p.add_argument("--windows", type=int, default=96, help="windows, evenly spaced over the split")
    p.add_argument("--seed", type=int, default=7, help="seed of the reference windows")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = load_checkpoint(args.checkpoint, kind="generator").model.float().eval()
    oracle = load_oracle(args.oracle)
    store = ClipStore(args.data, args.split, model.cfg.img_size)
    windows = GeneratorWindows(store, model.cfg.n_frames, None, args.seed, with_mouth=True)
    picks = np.linspace(0, len(windows) - 1, args.windows).astype(int)
    drawn: dict[str, list[np.ndarray]] = {"audio": [], "lip": [], "copy-ref": [], "audio, self-ref": []}
    real, exact = [], []
    features: dict[str, list[np.ndarray]] = {}  # read-out name -> [(B*T, 7)]
    with torch.inference_mode():
        for i in range(0, len(picks), 8):
            items = [windows[int(j)] for j in picks[i : i + 8]]
            b = {k: torch.stack([x[k] for x in items]) for k in ("face", "gt", "lips", "mel", "mouth")}
            out = model(b["face"], b["mel"], b["lips"])
            real.append(frames_u8(b["gt"]))
            exact.append(b["mouth"].flatten(0, 1).numpy())  # (B*T, 7)
            for name in ("mouth", "mouth_lip", "mouth_recall", "mouth_recall_lip"):
                read = getattr(out, name)  # (B, T, 7) or None without that read-out
                if read is not None:
                    features.setdefault(name, []).append(read.flatten(0, 1).float().numpy())
            drawn["audio"].append(frames_u8(out.frames))
            if out.frames_lip is not None:
                drawn["lip"].append(frames_u8(out.frames_lip))
            drawn["copy-ref"].append(frames_u8(b["face"][:, 3:]))
            own = model(identity_input(b["gt"], b["gt"]), b["mel"]).frames
            drawn["audio, self-ref"].append(frames_u8(own))
    truth = predict_mouth(oracle, np.concatenate(real))  # (N, 7)
    readings = {name: predict_mouth(oracle, np.concatenate(parts)) for name, parts in drawn.items() if parts}
    print(f"{args.checkpoint}: {len(truth)} frames of {len(picks)} {args.split} windows")
    print_table("frames, read by the oracle", readings, truth)
    exact_params = np.concatenate(exact)
    print("\nagainst the exact mouth parameters (mouth.csv)")
    rows = {"real frames, oracle": truth} | {f"{k}, oracle": v for k, v in readings.items()}
    rows |= {f"feature {k}": np.concatenate(v) for k, v in features.items()}
    print_table("what", rows, exact_params)


def print_table(title: str, rows: dict[str, np.ndarray], truth: np.ndarray) -> None:
    """One line per row: mouth error (% of truth's std, mean of the 7) and r per parameter."""
    print(f"{title:28s} {'error %':>8s}  r: " + " ".join(f"{k:>6s}" for k in MOUTH_PARAMS))
    for name, read in rows.items():
        err = mouth_error(read, truth)["mae_pct_std_mean"]
        r = mouth_correlation(read, truth)
        print(f"{name:28s} {err:8.1f}     " + " ".join(f"{v:+6.2f}" for v in r))


if __name__ == "__main__":
    main()
