"""End-to-end inference speed and memory on a synthetic 720p talking-head video.

    python benchmarks/infer_speed.py [--seconds 10] [--runs 3] [--rss-minutes 1 10]
        [--checkpoint DIR]

The input is skimage's astronaut photo drawn into a 1280x720 frame and moving (a real face,
so detection and tracking do real work), 25 fps, with a buzzing speech-like signal as audio.
Inputs are written chunk by chunk so the benchmark itself stays bounded in memory.

Prints: the real-time factor (processing seconds per second of audio; median of --runs), the
breakdown by stage with the face detection + tracking share, and the peak RSS of a fresh
process generating a 1-minute and a 10-minute video (flat in length = streaming works).
Uses checkpoints/lipmem-synthtalk when present, else a random-init `cpu` preset generator
(same architecture and cost as the trained one) and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import skimage.data

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lipmem_core.config import SAMPLE_RATE, ModelConfig  # noqa: E402
from lipmem_core.infer.pipeline import DEFAULT_CHECKPOINT, TalkingFacePipeline  # noqa: E402
from lipmem_core.infer.video import VideoWriter  # noqa: E402

W, H, FPS = 1280, 720, 25


def make_video(path: Path, seconds: float, with_audio: bool = False) -> Path:
    """The astronaut (512 px, face ~95 px) sliding left and right across a 720p frame."""
    face = skimage.data.astronaut()
    n = int(round(seconds * FPS))
    with VideoWriter(path, W, H, FPS, None, crf=23) as w:
        for k0 in range(0, n, 50):
            chunk = []
            for k in range(k0, min(n, k0 + 50)):
                frame = np.full((H, W, 3), 60, np.uint8)
                x = int(384 + 300 * np.sin(2 * np.pi * k / 250))
                y = int(104 + 20 * np.sin(2 * np.pi * k / 90))
                frame[y : y + 512, x : x + 512] = face[: H - y]
                chunk.append(frame)
            w.write(chunk)
    return path


def make_audio(seconds: float) -> np.ndarray:
    """A voiced buzz with a 4 Hz syllable envelope (content does not change the cost)."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    buzz = np.sign(np.sin(2 * np.pi * 120 * t))
    return (0.2 * buzz * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) ** 2).astype(np.float32)


def load_pipeline(checkpoint: str | None) -> tuple[TalkingFacePipeline, str]:
    path = Path(checkpoint) if checkpoint else DEFAULT_CHECKPOINT
    if path.exists():
        return TalkingFacePipeline(path), str(path)
    import torch

    from lipmem_core.model.generator import LipMemGenerator

    torch.manual_seed(0)
    return TalkingFacePipeline(
        LipMemGenerator(ModelConfig.cpu())
    ), "random-init cpu preset (no checkpoint shipped)"


def rss_child(video: str, seconds: float, checkpoint: str | None) -> None:
    """Run in a fresh process: one generate, then report peak RSS as JSON on stdout."""
    pipe, _ = load_pipeline(checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        res = pipe.generate(video, make_audio(seconds), Path(tmp) / "out.mp4")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"frames": res.n_frames, "peak_rss_mb": peak_mb, "total_s": res.timings["total"]}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--rss-minutes", type=float, nargs="*", default=[1.0, 10.0])
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--rss-child", nargs=2, metavar=("VIDEO", "SECONDS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    cv2.setNumThreads(2)
    if args.rss_child:
        rss_child(args.rss_child[0], float(args.rss_child[1]), args.checkpoint)
        return

    pipe, which = load_pipeline(args.checkpoint)
    print(f"model: {which}; torch threads {__import__('torch').get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video = make_video(tmp / "in.mp4", args.seconds)
        audio = make_audio(args.seconds)
        pipe.generate(video, audio[:SAMPLE_RATE], tmp / "warm.mp4")  # warm-up (oneDNN kernels)
        runs = []
        for _ in range(args.runs):
            cpu0 = time.process_time()
            res = pipe.generate(video, audio, tmp / "out.mp4")
            runs.append({**res.timings, "cpu": time.process_time() - cpu0, "load": os.getloadavg()[0]})
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"{args.seconds:g} s of {W}x{H} @ {FPS} fps, {res.n_frames} frames, {args.runs} runs (median)")
        print(f"real-time factor: {med['total'] / args.seconds:.2f} (target <= 1.0)")
        # The machine is shared: say how busy it was, and how much CPU the run itself used.
        print(
            f"  process CPU time {med['cpu']:.1f} s for {med['total']:.1f} s wall; "
            f"1-min load average {med['load']:.1f} on {os.cpu_count()} cores"
        )
        for k in ("decode", "detect", "audio", "generate", "paste", "encode"):
            print(f"  {k:9s} {med[k]:7.2f} s  {100 * med[k] / med['total']:5.1f} %")
        print(
            f"face detection + tracking + crop: {100 * med['detect'] / med['total']:.1f} % of the time (target <= 30 %)"
        )

        for minutes in args.rss_minutes:
            seconds = 60 * minutes
            t0 = time.perf_counter()
            long_video = make_video(tmp / f"long{minutes:g}.mp4", seconds)
            made = time.perf_counter() - t0
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--rss-child",
                str(long_video),
                str(seconds),
            ]
            if args.checkpoint:
                cmd += ["--checkpoint", args.checkpoint]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            stats = json.loads(out.strip().splitlines()[-1])
            print(
                f"{minutes:g} min video ({stats['frames']} frames; input made in {made:.0f} s): "
                f"peak RSS {stats['peak_rss_mb']:.0f} MB, RTF {stats['total_s'] / seconds:.2f}"
            )
            long_video.unlink()


if __name__ == "__main__":
    main()
