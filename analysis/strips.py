"""The README's mouth-strip figure: does the memory model draw the mouth the audio says?

Two strips of mouth crops over time (`analysis.compare.mouth_strip`), stacked in one PNG:

1. a held-out SynthTalk test clip: the corpus's own frames (ground truth), the memory model and
   the no-memory ablation, both driven by the clip's audio on the clip's own frames (exactly
   as `lipmem_core.evaluation.evaluate` runs them);
2. real human speech (default: the CMU ARCTIC recording shipped in the pysptk sdist) on an
   identity no corpus speaker has: SynthTalk's renderer driven by the phones PocketSphinx
   force-aligns to the recording (a reference, not ground truth: the mouth the renderer would
   draw for those phones), the memory model and the ablation.

    python -m analysis.strips --memory checkpoints/lipmem-synthtalk \\
        --ablation checkpoints/lipmem-synthtalk-nomem --data data/synthtalk --out assets/mouth_strips.png
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from analysis.align import align_pocketsphinx
from analysis.compare import ground_truth_frames, mouth_strip
from lipmem_core import cli
from lipmem_core.audio import load_audio
from lipmem_core.config import SAMPLES_PER_FRAME
from lipmem_core.data import corpus
from lipmem_core.data.synth.face_render import Identity, neutral_face
from lipmem_core.errors import LipMemError
from lipmem_core.evaluation.evaluate import load_clip
from lipmem_core.infer.pipeline import TalkingFacePipeline

ARCTIC_TEXT = "and you always want to see it in the superlative degree"  # arctic_a0007


def arctic_recording() -> Path:
    """CMU ARCTIC a0007 (16 kHz, 4 s), shipped in the pysptk sdist (requirements-test.txt)."""
    spec = importlib.util.find_spec("pysptk")
    if spec is None or spec.origin is None:
        raise LipMemError(
            "pysptk is not installed: pip install -r requirements-test.txt, or pass --audio and --text"
        )
    return Path(spec.origin).parent / "example_audio_data" / "arctic_a0007.wav"


def _titled(strip: np.ndarray, title: str) -> np.ndarray:
    """A strip with a one-line title above it (white band)."""
    band = np.full((26, strip.shape[1], 3), 255, np.uint8)
    cv2.putText(band, title, (4, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([band, strip], axis=0)


def test_clip_strip(
    pipes: dict[str, TalkingFacePipeline], data: Path, split: str, index: int, max_columns: int
) -> tuple[np.ndarray, str]:
    """Ground truth and each model on the `index`-th clip of a split (sorted by speaker, utterance)."""
    manifest = corpus.read_manifest(data)
    rows = manifest[manifest["split"] == split].sort_values(["speaker", "utterance"])
    if not 0 <= index < len(rows):
        raise LipMemError(f"--clip {index}: split {split!r} of {data} has {len(rows)} clips")
    row = next(rows.iloc[[index]].itertuples(index=False))
    size = next(iter(pipes.values())).model.cfg.img_size
    clip = load_clip(data, row, size)
    renderings = {"ground truth": clip.frames}
    for name, pipe in pipes.items():
        renderings[name] = np.stack(pipe.generate(clip.frames, clip.wav, face_is_crop=True).crops)
    title = f'SynthTalk test clip {clip.key}: "{row.text}"'
    return mouth_strip(renderings, max_columns=max_columns), title


def real_speech_strip(
    pipes: dict[str, TalkingFacePipeline], audio: Path, text: str, identity_seed: int, max_columns: int
) -> tuple[np.ndarray, str]:
    """The renderer on force-aligned phones, and each model, on a real recording."""
    wav = load_audio(audio)
    n = int(np.ceil(len(wav) / SAMPLES_PER_FRAME))
    identity = Identity.sample(np.random.default_rng(identity_seed))
    reference, _ = ground_truth_frames(identity, align_pocketsphinx(wav, text).table, n)
    # the reference face the pipeline animates: the same identity, mouth at rest, head still
    face = neutral_face(identity, 128)
    renderings = {"reference: aligned phones": reference}
    for name, pipe in pipes.items():
        crops = [c for chunk in pipe.stream(face, wav, face_is_crop=True) for c in chunk.crops]
        renderings[name] = np.stack(crops)[:n]
    title = f'Real speech ({audio.name}, "{text}"), unseen identity {identity_seed}'
    return mouth_strip(renderings, max_columns=max_columns), title


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.Parser(prog="python -m analysis.strips", description=__doc__.splitlines()[0])
    p.add_argument("--memory", required=True, help="generator with the Audio-Lip Memory")
    p.add_argument("--ablation", required=True, help="the no-memory ablation")
    p.add_argument("--data", required=True, type=Path, help="a SynthTalk corpus (for the test clip)")
    p.add_argument("--split", default="test")
    p.add_argument("--clip", type=int, default=3, help="index of the clip in the split (default 3)")
    p.add_argument("--audio", type=Path, help="a real recording (default: CMU ARCTIC a0007)")
    p.add_argument("--text", default=None, help="its transcript (default: the ARCTIC sentence)")
    p.add_argument("--identity-seed", type=int, default=12345, help="an identity no corpus speaker has")
    p.add_argument("--columns", type=cli.positive_int, default=24, help="mouth crops per row")
    p.add_argument("--out", required=True, type=Path, help="PNG to write")
    args = p.parse_args(argv)
    try:
        cli.check_output(args.out, [args.memory, args.ablation, args.data, args.audio])
        pipes = {
            f"{label}: {Path(path).name}": TalkingFacePipeline(path, device="cpu")
            for label, path in (("memory", args.memory), ("no memory", args.ablation))
        }
        audio = args.audio or arctic_recording()
        text = args.text or (ARCTIC_TEXT if args.audio is None else None)
        strips = [
            test_clip_strip(pipes, args.data, args.split, args.clip, args.columns),
            real_speech_strip(pipes, audio, text, args.identity_seed, args.columns),
        ]
    except LipMemError as exc:
        return cli.fail(exc)
    width = max(s.shape[1] for s, _ in strips)
    parts = []
    for strip, title in strips:
        strip = np.pad(strip, ((0, 0), (0, width - strip.shape[1]), (0, 0)), constant_values=255)
        parts.append(_titled(strip, title))
    image = np.concatenate(parts, axis=0)
    try:
        with cli.atomic_output(args.out) as tmp:
            if not cv2.imwrite(str(tmp), image[..., ::-1]):
                raise LipMemError(f"could not encode {args.out.name} (give it a .png name)")
    except LipMemError as exc:
        return cli.fail(exc)
    print(f"wrote {args.out} ({image.shape[1]} x {image.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
