"""What does each memory slot draw? The slot gallery, read by the mouth oracle.

Every slot's value V_s is decoded alone (`infer.addressing.decode_addresses`: a one-hot
address, f_aud of silence, pasted through the mouth mask, exactly as the app's slot gallery
draws it) on the first frame of one test clip per speaker, and the oracle reads the 7 mouth
parameters of every drawn frame. Printed per parameter, in % of the std of the split's exact
mouths (mouth.csv):

- `range`: the std over slots of the read mouth for one identity, averaged over identities.
  How different the slots look: 0 means every slot draws the same mouth; the real frames'
  own spread is 100 % by definition.
- `identity spread`: for one slot, the std over identities of its read mouth, averaged over
  slots. Whether a slot means the same mouth on every face (lower is more consistent).
- with `--run DIR` of a run trained with `--loss slot_mouth` (its state.safetensors keeps the
  mouth-shape groups, which are not exported): `vs group centre`, the error of each slot's
  read mouth against its group's centre, and the share of slots whose read mouth is nearer
  (standardised) to their own group's centre than to any other group's.

    python benchmarks/slot_mouths.py --checkpoint DIR --data DIR [--run DIR] [--split test]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lipmem_core.checkpoint import load_checkpoint  # noqa: E402
from lipmem_core.data import corpus  # noqa: E402
from lipmem_core.data.synth.mouth import MOUTH_PARAMS  # noqa: E402
from lipmem_core.evaluation.oracle import corpus_mouths, load_oracle, predict_mouth  # noqa: E402
from lipmem_core.infer.addressing import decode_addresses  # noqa: E402
from lipmem_core.model.mouth_slots import MouthSlots  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def first_frames(root: str, split: str) -> list[np.ndarray]:
    """The first frame (H, W, 3) uint8 of the first clip of every speaker of a split."""
    rows = corpus.read_manifest(root)
    rows = rows[rows["split"] == split].drop_duplicates("speaker")
    if rows.empty:
        raise SystemExit(f"{root} has no clips in split {split!r}")
    return [corpus.read_frames(corpus.clip_dir(root, r))[0] for r in rows.itertuples()]


def mouth_groups(run: str, n_slots: int) -> MouthSlots:
    """A run's mouth-shape groups (`--loss slot_mouth`), loaded from its state.safetensors."""
    state = load_file(str(Path(run) / "state.safetensors"))
    prefix = "module/mouth_slots/"
    if prefix + "centres" not in state:
        raise SystemExit(f"{run} was not trained with --loss slot_mouth: it has no mouth-shape groups")
    groups = MouthSlots(n_slots)
    groups.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
    return groups


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="generator checkpoint directory (with memory)")
    p.add_argument("--data", required=True, help="SynthTalk corpus root")
    p.add_argument("--split", default="test")
    p.add_argument("--run", help="the run directory, for the mouth-shape groups of --loss slot_mouth")
    p.add_argument("--oracle", default=str(ROOT / "checkpoints" / "mouth-oracle"))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = load_checkpoint(args.checkpoint, kind="generator").model.float().eval()
    if model.memory is None:
        raise SystemExit(f"{args.checkpoint} has no memory: there are no slots to draw")
    oracle = load_oracle(args.oracle)
    n_slots = model.cfg.n_slots
    identities = first_frames(args.data, args.split)
    one_hot = np.eye(n_slots, dtype=np.float32)
    read = np.stack(
        [predict_mouth(oracle, decode_addresses(model, f, one_hot)) for f in identities]
    )  # (I, S, 7)
    std = corpus_mouths(args.data, args.split).std(axis=0)  # (7,)
    rows = {
        "range": read.std(axis=1).mean(axis=0) / std,  # over slots, per identity
        "identity spread": read.std(axis=0).mean(axis=0) / std,  # over identities, per slot
    }
    print(f"{args.checkpoint}: {n_slots} slots drawn on {len(identities)} {args.split} identities")
    if args.run:
        groups = mouth_groups(args.run, n_slots)
        target = groups.centre_mouth(torch.arange(n_slots)).numpy()  # (S, 7) in the corpus's units
        rows["vs group centre"] = np.abs(read - target[None]).mean(axis=(0, 1)) / std
        nearest = groups.labels(torch.from_numpy(read.mean(axis=0))).numpy()  # (S,): each slot's mean reading
        print(f"slots read nearest to their own group's centre: {np.mean(nearest == np.arange(n_slots)):.0%}")
    print(f"{'% of std':16s} {'mean':>6s} " + " ".join(f"{k:>6s}" for k in MOUTH_PARAMS))
    for name, pct in rows.items():
        print(f"{name:16s} {100 * pct.mean():6.1f} " + " ".join(f"{100 * v:6.1f}" for v in pct))


if __name__ == "__main__":
    main()
