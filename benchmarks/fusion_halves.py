"""Which half of the memory model's fusion draws the jaw on REAL speech?

The decoder of the memory model reads Linear(concat[f_aud, r_aud]). On a real recording
(default: CMU ARCTIC a0007) and unseen SynthTalk identities, this script decodes every frame
three ways and correlates the oracle's jaw reading with the speech's log energy per frame (the
loudness r of `real_speech_check.py`):
- `as trained`: concat[f_aud, r_aud], what the app draws;
- `f_aud alone`: the recall zeroed (a zero address), concat[f_aud, 0];
- `recall alone`: f_aud of digital silence, concat[f_aud(silence), r_aud], r_aud addressed by
  the recording (`lipmem_core.infer.addressing.decode_addresses`, as the slot gallery decodes).
A half whose r stays near the `as trained` one carries the jaw's following of the voice; a
half near zero or below does not.

    python benchmarks/fusion_halves.py --checkpoint DIR [DIR ...] [--identity-seed N ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from real_speech_check import generated_mouth, log_energy  # noqa: E402  (this script's own directory)

from analysis.strips import arctic_recording  # noqa: E402
from lipmem_core.audio import load_audio  # noqa: E402
from lipmem_core.checkpoint import load_checkpoint  # noqa: E402
from lipmem_core.data.synth.face_render import Identity, neutral_face  # noqa: E402
from lipmem_core.data.synth.mouth import MOUTH_PARAMS  # noqa: E402
from lipmem_core.evaluation.oracle import load_oracle, predict_mouth  # noqa: E402
from lipmem_core.infer.addressing import address_audio, decode_addresses  # noqa: E402
from lipmem_core.infer.pipeline import TalkingFacePipeline  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
JAW = MOUTH_PARAMS.index("jaw")
WAYS = ("as trained", "f_aud alone", "recall alone")


def jaw_three_ways(
    pipe: TalkingFacePipeline, crop: np.ndarray, wav: np.ndarray, oracle
) -> dict[str, np.ndarray]:
    """One still face crop (H, W, 3) uint8 and a recording -> the oracle's jaw on each way's frames, (n,).

    The first two are the pipeline's own recalls ("memory", "zero"); the third decodes the
    recording's addresses with f_aud of silence (`decode_addresses`, as the slot views do).
    """
    recall_alone = decode_addresses(pipe.model, crop, address_audio(pipe.model, wav))  # (n, H, W, 3)
    return {
        "as trained": generated_mouth(pipe, crop, wav, oracle)[:, JAW],
        "f_aud alone": generated_mouth(pipe, crop, wav, oracle, recall="zero")[:, JAW],
        "recall alone": predict_mouth(oracle, recall_alone)[:, JAW],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", nargs="+", default=[ROOT / "checkpoints/lipmem-synthtalk"])
    p.add_argument("--oracle", default=ROOT / "checkpoints/mouth-oracle")
    p.add_argument("--audio", type=Path, help="a real recording (default: CMU ARCTIC a0007)")
    p.add_argument("--identity-seed", type=int, nargs="+", default=[12345, 12346, 12347, 12353])
    args = p.parse_args()

    wav = load_audio(args.audio or arctic_recording())
    oracle = load_oracle(args.oracle)
    faces = {
        seed: neutral_face(Identity.sample(np.random.default_rng(seed)), 128) for seed in args.identity_seed
    }
    print(f"loudness r of the jaw per identity ({', '.join(map(str, faces))}) and their mean")
    for ckpt in args.checkpoint:
        pipe = TalkingFacePipeline(load_checkpoint(ckpt, kind="generator"), precision="fp32")
        if pipe.model.memory is None:
            print(f"{ckpt}: no memory, nothing to split")
            continue
        rs: dict[str, list[float]] = {way: [] for way in WAYS}
        for crop in faces.values():
            for way, jaw in jaw_three_ways(pipe, crop, wav, oracle).items():
                rs[way].append(float(np.corrcoef(jaw, log_energy(wav, len(jaw)))[0, 1]))
        name = str(Path(*Path(ckpt).parts[-2:])) if Path(ckpt).name == "checkpoint" else Path(ckpt).name
        for way in WAYS:
            per_face = " ".join(f"{r:+.2f}" for r in rs[way])
            print(f"{name:24s} {way:13s} r {per_face}  mean {np.mean(rs[way]):+.3f}")


if __name__ == "__main__":
    main()
