"""Does a SynthTalk-trained model move its mouth with REAL human speech?

Drives a generator with a real recording (default: CMU ARCTIC a0007, shipped in the pysptk
sdist) on an unseen SynthTalk identity, reads the jaw opening of every generated frame with the
mouth-shape oracle, and correlates it with the speech's log energy per video frame. A
circularly shifted envelope gives the chance level. The same is printed for espeak speech of
the same sentence, where the exact mouth trajectory gives the ground-truth correlation.

Loudness is a loose proxy for the mouth: on espeak speech the exact jaw follows the log energy at
only r 0.35. So for the real recording the script also prints `phones r`: the correlation of the
oracle's reading of the generated frames with its reading of SynthTalk's renderer driven by the
phones PocketSphinx aligns to the recording (the reference of `analysis.strips`), per mouth
parameter, and its mean over the 7 parameters. On the espeak speech the truth is exact, so it
prints `exact r`: the same correlation against the oracle's reading of SynthTalk's renderer
driven by espeak's own phone times. A model whose loudness r on espeak is far above the exact
jaw's own (about 0.35) follows loudness more than the mouth it should draw does.

    python benchmarks/real_speech_check.py [--checkpoint DIR ...] [--audio FILE [--text T]] [--identity-seed N ...]

One identity's r moves by up to 0.3 from face to face; with several `--identity-seed` values the
script ends with each checkpoint's mean r over them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.align import align_pocketsphinx  # noqa: E402
from analysis.compare import ground_truth_frames  # noqa: E402
from analysis.strips import ARCTIC_TEXT, arctic_recording  # noqa: E402
from lipmem_core.audio import load_audio  # noqa: E402
from lipmem_core.config import SAMPLES_PER_FRAME  # noqa: E402
from lipmem_core.data.synth.face_render import Identity, neutral_face  # noqa: E402
from lipmem_core.data.synth.mouth import MOUTH_PARAMS, mouth_trajectory  # noqa: E402
from lipmem_core.data.synth.speech import synthesize  # noqa: E402
from lipmem_core.evaluation.oracle import load_oracle, mouth_correlation, predict_mouth  # noqa: E402
from lipmem_core.infer.pipeline import TalkingFacePipeline  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
JAW = MOUTH_PARAMS.index("jaw")


def log_energy(wav: np.ndarray, n_frames: int) -> np.ndarray:
    """Log RMS per video frame (640 samples), (n_frames,)."""
    wav = np.pad(wav, (0, max(0, n_frames * SAMPLES_PER_FRAME - len(wav))))[: n_frames * SAMPLES_PER_FRAME]
    rms = np.sqrt((wav.reshape(n_frames, SAMPLES_PER_FRAME) ** 2).mean(1) + 1e-10)
    return np.log(rms)


def correlation_with_chance(
    jaw: np.ndarray, env: np.ndarray, rng: np.random.Generator
) -> tuple[float, float]:
    """Pearson r(jaw, envelope) and the 95th percentile of |r| under circular shifts (chance)."""
    r = float(np.corrcoef(jaw, env)[0, 1])
    n = len(env)
    shifts = rng.integers(n // 5, n - n // 5, size=200)
    chance = [abs(np.corrcoef(jaw, np.roll(env, s))[0, 1]) for s in shifts]
    return r, float(np.percentile(chance, 95))


def generated_mouth(
    pipe: TalkingFacePipeline, face: np.ndarray, wav: np.ndarray, oracle, recall: str = "memory"
) -> np.ndarray:
    """The oracle's reading of every generated frame, (n_frames, 7); `recall` as the pipeline's."""
    crops = [c for chunk in pipe.stream(face, wav, recall=recall, face_is_crop=True) for c in chunk.crops]
    return predict_mouth(oracle, np.stack(crops))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--checkpoint",
        nargs="+",
        default=[ROOT / "checkpoints/lipmem-synthtalk", ROOT / "checkpoints/lipmem-synthtalk-nomem"],
    )
    p.add_argument("--oracle", default=ROOT / "checkpoints/mouth-oracle")
    p.add_argument("--audio", type=Path, help="a real recording (default: CMU ARCTIC a0007)")
    p.add_argument(
        "--text",
        help="the recording's transcript, for the phone alignment and the espeak rendering "
        "(default: a0007's; with --audio and no --text, PocketSphinx recognises the words)",
    )
    p.add_argument(
        "--identity-seed",
        type=int,
        nargs="+",
        default=[12345],
        help="identities no corpus speaker has; with several, a summary over them follows",
    )
    args = p.parse_args()

    rng = np.random.default_rng(0)
    real = load_audio(args.audio or arctic_recording())
    synth = synthesize(args.text or ARCTIC_TEXT)
    oracle = load_oracle(args.oracle)

    n_syn = int(np.ceil(len(synth.audio) / SAMPLES_PER_FRAME))
    truth_jaw = mouth_trajectory(synth.phones, n_syn)[:, JAW]
    r, chance = correlation_with_chance(truth_jaw, log_energy(synth.audio, n_syn), rng)
    print(
        f"reference: exact SynthTalk jaw vs espeak log-energy        r = {r:+.3f} (chance |r| < {chance:.3f})"
    )

    # keyed by the path as given: two runs' checkpoints are often both named `checkpoint`
    pipes = {str(ckpt): TalkingFacePipeline(ckpt) for ckpt in args.checkpoint}
    label = {
        ckpt: str(Path(*Path(ckpt).parts[-2:])) if Path(ckpt).name == "checkpoint" else Path(ckpt).name
        for ckpt in pipes
    }
    real_r: dict[str, list[float]] = {ckpt: [] for ckpt in pipes}
    phones_r: dict[str, list[np.ndarray]] = {ckpt: [] for ckpt in pipes}
    exact_r: dict[str, list[np.ndarray]] = {ckpt: [] for ckpt in pipes}
    synth_phones = pd.DataFrame(
        [(p.start, p.end, p.label) for p in synth.phones], columns=["start", "end", "phone"]
    )
    n_real = int(np.ceil(len(real) / SAMPLES_PER_FRAME))
    transcript = args.text or (None if args.audio else ARCTIC_TEXT)
    real_phones = align_pocketsphinx(real, transcript).table
    for seed in args.identity_seed:
        identity = Identity.sample(np.random.default_rng(seed))
        face = neutral_face(identity, 128)
        reference = predict_mouth(oracle, ground_truth_frames(identity, real_phones, n_real)[0])
        exact = predict_mouth(oracle, ground_truth_frames(identity, synth_phones, n_syn)[0])
        if len(args.identity_seed) > 1:
            print(f"identity {seed}")
        for ckpt, pipe in pipes.items():
            for name, wav in (("real ARCTIC speech", real), ("espeak speech", synth.audio)):
                mouth = generated_mouth(pipe, face, wav, oracle)
                jaw = mouth[:, JAW]
                energy = log_energy(wav, len(jaw))
                r, chance = correlation_with_chance(jaw, energy, rng)
                truth, kept = (reference, phones_r) if name == "real ARCTIC speech" else (exact, exact_r)
                n = min(len(mouth), len(truth))  # compare the frames both have
                kept[ckpt].append(mouth_correlation(mouth[:n], truth[:n]))
                if name == "real ARCTIC speech":
                    real_r[ckpt].append(r)
                quiet = energy < np.percentile(energy, 20)
                print(
                    f"{label[ckpt]:28s} {name:20s} r = {r:+.3f} (chance |r| < {chance:.3f}); "
                    f"jaw quiet {jaw[quiet].mean():.3f} vs speech {jaw[~quiet].mean():.3f}, "
                    f"jaw std {jaw.std():.3f}"
                )
            print(
                f"{label[ckpt]:28s} real ARCTIC speech   phones r = {phones_r[ckpt][-1].mean():+.3f} (mean of 7); "
                f"espeak speech exact r = {exact_r[ckpt][-1].mean():+.3f} (jaw {exact_r[ckpt][-1][JAW]:+.3f})"
            )
    if len(args.identity_seed) > 1:
        for ckpt, rs in real_r.items():
            print(
                f"{label[ckpt]:28s} real ARCTIC speech over {len(rs)} identities: mean r = {np.mean(rs):+.3f}, "
                f"min {min(rs):+.3f}, {sum(r >= 0.6 for r in rs)} of {len(rs)} at least 0.6"
            )
        for title, table in (("phones r", phones_r), ("espeak exact r", exact_r)):
            for ckpt, rs in table.items():
                per_param = np.mean(rs, axis=0)
                print(
                    f"{label[ckpt]:28s} {title} over {len(rs)} identities: mean {per_param.mean():+.3f}; "
                    + ", ".join(f"{name} {r:+.2f}" for name, r in zip(MOUTH_PARAMS, per_param, strict=True))
                )


if __name__ == "__main__":
    main()
