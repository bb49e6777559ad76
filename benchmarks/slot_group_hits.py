"""Which side of the memory misses the mouth-shape groups: the audio's addressing or the lips'?

For a run trained with `--loss slot_mouth` (its state.safetensors keeps the mouth-shape groups),
every frame of a few clips per speaker of a split is addressed both ways, in eval mode as
`evaluate` does: argmax A_aud from the frame's mel window, argmax A_lip from the frame's own
lip clip. Each is compared with s*, the group nearest to the frame's exact mouth (mouth.csv),
and with each other (the agreement that `evaluate` reports as A_aud = A_lip). Printed over all
frames and per speaker, with agreement split by whether the lips found s*, and the mean
distance between the centres of the groups chosen (standardised mouth units; a random pair of
frames' groups as the scale).

    python benchmarks/slot_group_hits.py --checkpoint DIR --run DIR --data DIR [--split test]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slot_mouths import mouth_groups  # noqa: E402

from lipmem_core.checkpoint import load_checkpoint  # noqa: E402
from lipmem_core.data import corpus  # noqa: E402
from lipmem_core.evaluation.evaluate import audio_slots, lip_slots, load_clip  # noqa: E402


def slot_choices(model, clip) -> tuple[np.ndarray, np.ndarray]:
    """argmax A_aud and argmax A_lip of every frame of a clip: (n,), (n,)."""
    return audio_slots(model, [clip])[0], lip_slots(model, clip.frames)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a memory model's checkpoint directory")
    p.add_argument("--run", required=True, help="its run directory (for the mouth-shape groups)")
    p.add_argument("--data", required=True, help="a corpus with mouth.csv (SynthTalk)")
    p.add_argument("--split", default="test")
    p.add_argument("--clips-per-speaker", type=int, default=6)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    model = load_checkpoint(args.checkpoint, kind="generator").model.eval()
    if not model.cfg.use_memory:
        raise SystemExit(f"{args.checkpoint} has no memory: nothing addresses slots")
    groups = mouth_groups(args.run, model.cfg.n_slots)
    rows = corpus.read_manifest(args.data)
    rows = rows[rows["split"] == args.split].groupby("speaker").head(args.clips_per_speaker)
    if rows.empty:
        raise SystemExit(f"{args.data} has no clips in split {args.split!r}")
    aud, lip, target, speaker = [], [], [], []
    for row in rows.itertuples(index=False):
        clip = load_clip(Path(args.data), row, model.cfg.img_size)
        if clip.mouth is None:
            raise SystemExit(f"{clip.key} has no mouth.csv: the groups need SynthTalk's exact mouths")
        a, lp = slot_choices(model, clip)
        aud.append(a)
        lip.append(lp)
        target.append(groups.labels(torch.from_numpy(clip.mouth)).numpy())
        speaker += [clip.speaker] * len(a)
    a, lp, s, spk = (np.concatenate(x) for x in (aud, lip, target, [np.array(speaker)]))
    centres = groups.centres.numpy()

    def distance(x: np.ndarray, y: np.ndarray) -> float:
        return float(np.linalg.norm(centres[x] - centres[y], axis=1).mean())

    hit = lp == s
    print(f"{args.checkpoint}, {args.split}: {len(a)} frames of {len(rows)} clips")
    print(f"  argmax A_aud = s*: {np.mean(a == s):.1%}   argmax A_lip = s*: {np.mean(hit):.1%}")
    print(
        f"  A_aud = A_lip: {np.mean(a == lp):.1%} (where A_lip = s*: {np.mean(a[hit] == lp[hit]):.1%}; "
        f"elsewhere: {np.mean(a[~hit] == lp[~hit]):.1%})"
    )
    shuffled = np.random.default_rng(0).permutation(s)
    print(
        f"  mean distance of group centres: A_aud-s* {distance(a, s):.2f}, A_lip-s* {distance(lp, s):.2f}, "
        f"A_aud-A_lip {distance(a, lp):.2f}, random frames {distance(shuffled, s):.2f}"
    )
    for name in np.unique(spk):
        k = spk == name
        print(
            f"  {name}: A_aud = s* {np.mean(a[k] == s[k]):.1%}, A_lip = s* {np.mean(lp[k] == s[k]):.1%}, "
            f"A_aud = A_lip {np.mean(a[k] == lp[k]):.1%}"
        )


if __name__ == "__main__":
    main()
