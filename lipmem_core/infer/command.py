"""Command line over TalkingFacePipeline: a face and speech (a file, or text for espeak-ng)
in, a lip-synced MP4 out.

    python -m lipmem_core.infer --face FACE --audio SPEECH --out OUT.mp4 [--checkpoint DIR]
    python -m lipmem_core.infer --face FACE --text "hello there" --out OUT.mp4
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import numpy as np
import torch

from lipmem_core import cli
from lipmem_core.audio import check_duration
from lipmem_core.config import ModelConfig
from lipmem_core.errors import LipMemError
from lipmem_core.infer.pipeline import DEFAULT_CHECKPOINT, TalkingFacePipeline
from lipmem_core.limits import MAX_INFER_SECONDS


def build_parser() -> argparse.ArgumentParser:
    p = cli.Parser(prog="python -m lipmem_core.infer", description=__doc__.split("\n\n")[0])
    p.add_argument("--face", required=True, type=Path, help="photo or video of a face (or a SynthTalk crop)")
    speech = p.add_mutually_exclusive_group(required=True)
    speech.add_argument("--audio", type=Path, help="speech in any audio/video format")
    speech.add_argument("--text", help="text to speak with espeak-ng instead of --audio")
    p.add_argument("--voice", default="en-us", help="espeak voice for --text, e.g. en-gb+f2")
    p.add_argument("--wpm", type=cli.positive_int, default=160, help="speaking rate for --text")
    p.add_argument("--out", required=True, type=Path, help="output .mp4 (H.264 + AAC)")
    model = p.add_mutually_exclusive_group()
    model.add_argument(
        "--checkpoint", type=Path, default=None, help=f"generator directory (default {DEFAULT_CHECKPOINT})"
    )
    model.add_argument(
        "--random-init", choices=["cpu", "paper"], default=None,
        help="an untrained generator of this preset (speed tests before any checkpoint exists)",
    )  # fmt: skip
    p.add_argument(
        "--no-memory-checkpoint", type=Path, default=None, help="no-memory ablation for --no-memory"
    )
    p.add_argument(
        "--no-memory", action="store_true",
        help="memory off: the --no-memory-checkpoint model draws, else the recall is zeroed "
        "(lipmem_core/infer/pipeline.py)",
    )  # fmt: skip
    p.add_argument(
        "--face-is-crop", action="store_true", help="frames already are face crops: skip detection"
    )
    p.add_argument("--device", type=cli.device, default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument(
        "--save-addressing", type=Path, default=None, help="write A_aud per frame (n_frames, S) as .npy"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    progress_shown = False

    def show_progress(fraction: float, msg: str) -> None:
        nonlocal progress_shown
        progress_shown = True
        print(f"\r{100 * fraction:5.1f}% {msg}", end="", file=sys.stderr, flush=True)

    try:
        # Every output is checked before any work, and all are written atomically: a failure
        # (an unwritable --save-addressing included) leaves no output at all.
        reads = [args.face, args.audio, args.no_memory_checkpoint]
        if args.random_init is None:
            reads.append(args.checkpoint or DEFAULT_CHECKPOINT)
        cli.check_output(args.out, reads)
        if args.save_addressing is not None:
            cli.check_output(args.save_addressing, [*reads, args.out])
        if args.random_init:
            torch.manual_seed(0)
            from lipmem_core.model.generator import LipMemGenerator

            model = LipMemGenerator(ModelConfig.preset(args.random_init))
            print(f"warning: untrained {args.random_init} generator (random weights)", file=sys.stderr)
        else:
            model = args.checkpoint or DEFAULT_CHECKPOINT
        pipe = TalkingFacePipeline(model, ablation=args.no_memory_checkpoint, device=args.device)
        recall = "memory"
        if args.no_memory:
            recall = "ablation" if args.no_memory_checkpoint is not None else "zero"
        if args.text is not None:
            from lipmem_core.data.synth.speech import Voice, synthesize

            audio = synthesize(args.text, Voice.parse(args.voice, wpm=args.wpm)).audio
        else:
            audio = args.audio
            check_duration(audio, MAX_INFER_SECONDS)  # from the header: refused before decoding
        with contextlib.ExitStack() as outputs:
            mp4 = outputs.enter_context(cli.atomic_output(args.out))
            npy = None
            if args.save_addressing is not None:
                npy = outputs.enter_context(cli.atomic_output(args.save_addressing))
            res = pipe.generate(
                args.face, audio, mp4, recall=recall, face_is_crop=args.face_is_crop,
                progress=show_progress, max_seconds=MAX_INFER_SECONDS,
            )  # fmt: skip
            if npy is not None:
                if res.addressing is None:
                    raise LipMemError(
                        "--save-addressing: this run has no addressing (memory off, or a checkpoint "
                        "without memory); drop --save-addressing"
                    )
                np.save(npy, res.addressing, allow_pickle=False)
    except (LipMemError, OSError) as err:
        # OSError: the output could not be written (disk full, permissions) after the checks.
        if progress_shown:
            print(file=sys.stderr)  # end the progress line
        return cli.fail(err)
    print(file=sys.stderr)
    t = res.timings
    print(f"wrote {args.out}: {res.n_frames} frames at {res.fps:g} fps, {res.faceless_frames} without a face")
    print("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in t.items()))
    for note in res.notices:
        print(f"note: {note}")
    return 0
