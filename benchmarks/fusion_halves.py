"""Which half of the memory model's fusion draws the jaw on REAL speech?

The decoder of the memory model reads Linear(concat[f_aud, r_aud]). On a real recording
(default: CMU ARCTIC a0007) and unseen SynthTalk identities, this script decodes every frame
three ways and correlates the oracle's jaw reading with the speech's log energy per frame (the
loudness r of `real_speech_check.py`):
- `as trained`: concat[f_aud, r_aud], what the app draws;
- `f_aud alone`: the recall zeroed (a zero address), concat[f_aud, 0];
- `recall alone`: f_aud of digital silence, concat[f_aud(silence), r_aud], r_aud addressed by
  the recording (`LipMemGenerator.decode_with_address` with mel=None).
A half whose r stays near the `as trained` one carries the jaw's following of the voice; a
half near zero or below does not.

    python benchmarks/fusion_halves.py --checkpoint DIR [DIR ...] [--identity-seed N ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from real_speech_check import log_energy  # noqa: E402  (this script's own directory)

from analysis.strips import arctic_recording  # noqa: E402
from lipmem_core.audio import load_audio, mel_windows, melspectrogram  # noqa: E402
from lipmem_core.checkpoint import load_checkpoint  # noqa: E402
from lipmem_core.config import SAMPLES_PER_FRAME  # noqa: E402
from lipmem_core.data.synth.face_render import Identity, neutral_face  # noqa: E402
from lipmem_core.data.synth.mouth import MOUTH_PARAMS  # noqa: E402
from lipmem_core.evaluation.oracle import load_oracle, predict_mouth  # noqa: E402
from lipmem_core.model.encoders import identity_input  # noqa: E402
from lipmem_core.model.generator import LipMemGenerator  # noqa: E402
from lipmem_core.pixels import to_uint8, to_unit  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
JAW = MOUTH_PARAMS.index("jaw")
WAYS = ("as trained", "f_aud alone", "recall alone")


@torch.inference_mode()
def decode_three_ways(model: LipMemGenerator, crop: np.ndarray, wav: np.ndarray) -> dict[str, np.ndarray]:
    """One still face crop (H, W, 3) uint8 and a recording -> the frames of each way, (n, H, W, 3) uint8."""
    n, t = int(np.ceil(len(wav) / SAMPLES_PER_FRAME)), model.cfg.n_frames
    idx = np.minimum(np.arange(-(-n // t) * t), n - 1)  # whole windows, the last frame repeated
    windows = torch.from_numpy(mel_windows(melspectrogram(wav), idx))  # (W * T, 80, 16)
    mel = windows.reshape(-1, t, 1, *windows.shape[1:])  # (W, T, 1, 80, 16)
    target = to_unit(torch.from_numpy(crop)).permute(2, 0, 1)  # (3, H, W)
    target = target[None, :, None].expand(len(mel), -1, t, -1, -1)  # (W, 3, T, H, W)
    face = identity_input(target, target)  # (W, 6, T, H, W): the still face is its own reference
    address = model.address(mel)  # (W, T, S)
    frames = {
        "as trained": model(face, mel).frames,
        "f_aud alone": model.decode_with_address(face, mel, torch.zeros_like(address)),
        "recall alone": model.decode_with_address(face, None, address),
    }  # each (W, 3, T, H, W)
    return {way: to_uint8(f).permute(0, 2, 3, 4, 1).flatten(0, 1)[:n].numpy() for way, f in frames.items()}


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
        loaded = load_checkpoint(ckpt, kind="generator")
        model = loaded.model.eval()
        if model.memory is None:
            print(f"{ckpt}: no memory, nothing to split")
            continue
        rs: dict[str, list[float]] = {way: [] for way in WAYS}
        for crop in faces.values():
            for way, frames in decode_three_ways(model, crop, wav).items():
                jaw = predict_mouth(oracle, frames)[:, JAW]
                rs[way].append(float(np.corrcoef(jaw, log_energy(wav, len(jaw)))[0, 1]))
        name = str(Path(*Path(ckpt).parts[-2:])) if Path(ckpt).name == "checkpoint" else Path(ckpt).name
        for way in WAYS:
            per_face = " ".join(f"{r:+.2f}" for r in rs[way])
            print(f"{name:24s} {way:13s} r {per_face}  mean {np.mean(rs[way]):+.3f}")


if __name__ == "__main__":
    main()
