"""How high can PNMI and viseme purity go when slots hold lip shapes? Bounds from the exact mouths.

The memory's slots are trained to store lip shapes (the value memory reconstructs lips, and the
alignment loss pulls the audio addressing A_aud onto the lip addressing A_lip), so the argmax
slot of a frame can carry at most what the frame's *mouth shape* says about its phone. SynthTalk
knows that shape exactly (`mouth.csv`, 7 parameters per frame), so this script measures, on a
corpus split, the statistics `evaluate` reports for slot assignments that are as good as a lip
memory could possibly be:

- `kmeans K` on the exact mouth parameters of one frame (K slots, fitted on the train split):
  an unsupervised memory with perfect lip features;
- the same on a 5-frame window of mouth parameters (the context the generator's audio window
  and the lip encoder's 5 frames see);
- `supervised viseme`: each frame's slot is the viseme predicted by a classifier trained on the
  train split's mouth windows with the true labels, the best *labelled* reader of lip shapes;
- `true visemes` / `true phones`: slots that are the labels themselves (PNMI of the viseme
  partition = H(viseme) / H(phone); phone slots give PNMI 1 and purity 1).

    python benchmarks/memory_bounds.py --data data/synthtalk --split test
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import MiniBatchKMeans
from sklearn.ensemble import HistGradientBoostingClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lipmem_core.data import corpus  # noqa: E402
from lipmem_core.data.synth.mouth import MOUTH_PARAMS  # noqa: E402
from lipmem_core.evaluation import metrics  # noqa: E402
from lipmem_core.phones import SILENCE, viseme_of  # noqa: E402

CONTEXT = 2  # frames either side: a 5-frame window, as the lip encoder sees


def load_split(root: Path, split: str, max_clips: int | None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per clip: mouth parameters (n, 7) and the phone at each frame centre (n,)."""
    manifest = corpus.read_manifest(root)
    rows = manifest[manifest["split"] == split].sort_values(["speaker", "utterance"])
    if max_clips is not None:
        rows = rows.head(max_clips)
    mouths, phones = [], []
    for row in rows.itertuples(index=False):
        d = corpus.clip_dir(root, row)
        m = corpus.read_mouth(d)[list(MOUTH_PARAMS)].to_numpy(np.float64)
        mouths.append(m)
        phones.append(np.asarray(corpus.frame_phones(corpus.read_phones(d), len(m)), dtype=object))
    return mouths, phones


def windows(mouth: np.ndarray, context: int) -> np.ndarray:
    """(n, 7) -> (n, 7 * (2 context + 1)): each frame with its neighbours, edges repeated."""
    padded = np.pad(mouth, ((context, context), (0, 0)), mode="edge")
    n = len(mouth)
    return np.concatenate([padded[i : i + n] for i in range(2 * context + 1)], axis=1)


def statistics(phones: np.ndarray, slots: np.ndarray, n_slots: int) -> dict[str, float]:
    speech = phones != SILENCE
    out = {}
    for name, keep in (("all", np.ones_like(speech)), ("speech", speech)):
        s = metrics.slot_statistics(phones[keep], slots[keep], n_slots).to_dict()
        out[f"pnmi ({name})"] = s["pnmi"]
        out[f"viseme purity ({name})"] = s["viseme_purity"]
        if name == "all":
            out["phone purity"] = s["phone_purity"]
            out["used slots"] = s["used_slots"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--split", default="test")
    p.add_argument(
        "--train-clips", type=int, default=400, help="train clips used to fit k-means / the classifier"
    )
    p.add_argument("--slots", type=int, nargs="+", default=[12, 24, 96])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    t0 = time.perf_counter()
    train_m, train_p = load_split(args.data, "train", args.train_clips)
    test_m, test_p = load_split(args.data, args.split, None)
    phones = np.concatenate(test_p)
    feats = {
        "1 frame": (np.concatenate(train_m), np.concatenate(test_m)),
        "5 frames": (
            np.concatenate([windows(m, CONTEXT) for m in train_m]),
            np.concatenate([windows(m, CONTEXT) for m in test_m]),
        ),
    }
    rows: dict[str, dict[str, float]] = {}
    for k in args.slots:
        for fname, (x_train, x_test) in feats.items():
            km = MiniBatchKMeans(k, random_state=args.seed, n_init=3, batch_size=4096).fit(x_train)
            rows[f"k-means {k} slots, exact mouth, {fname}"] = statistics(phones, km.predict(x_test), k)

    visemes = sorted({viseme_of(ph) for ph in np.concatenate(train_p)} | {viseme_of(ph) for ph in phones})
    index = {v: i for i, v in enumerate(visemes)}
    y_train = np.array([index[viseme_of(ph)] for ph in np.concatenate(train_p)])
    x_train, x_test = feats["5 frames"]
    clf = HistGradientBoostingClassifier(max_iter=200, random_state=args.seed).fit(x_train, y_train)
    rows["supervised viseme classifier, exact mouth, 5 frames"] = statistics(
        phones, clf.predict(x_test), len(visemes)
    )
    true_visemes = np.array([index[viseme_of(ph)] for ph in phones])
    rows["true viseme of each frame"] = statistics(phones, true_visemes, len(visemes))
    phone_ids = pd.factorize(phones)[0]
    rows["true phone of each frame"] = statistics(phones, phone_ids, int(phone_ids.max()) + 1)

    table = pd.DataFrame(rows).T
    print(
        f"{args.data} split {args.split}: {len(phones)} frames, {len(test_m)} clips; "
        f"fitted on {len(train_m)} train clips; {time.perf_counter() - t0:.0f} s"
    )
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 3):
        print(table)


if __name__ == "__main__":
    main()
