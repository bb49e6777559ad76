"""Face renderer speed: frames/s on one core at several sizes, and peak RSS.

    python benchmarks/bench_render.py [--frames 2000] [--repeats 5]

Prints the median over repeats (per CPU-second of this process, which is what one free core
gives, and per wall-clock second, which depends on what else the machine runs), also with the
corpus writer's JPEG encoding of `FaceRenderer.render` with speech-like mouth parameters,
head drift and blinks (the corpus path), plus the one-off static-layer time per identity.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import cv2
import numpy as np

from lipmem_core.data.face_render import FaceRenderer, Identity, head_motion
from lipmem_core.data.mouth import mouth_trajectory
from lipmem_core.data.synth import JPEG_QUALITY
from lipmem_core.phones import ARPABET, Interval


def speech_mouth(n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 7) mouth parameters of random phones, 40-200 ms each."""
    phones, t = [], 0.0
    while t < n_frames / 25:
        d = float(rng.uniform(0.04, 0.2))
        phones.append(Interval(t, t + d, str(rng.choice(ARPABET))))
        t += d
    return mouth_trajectory(phones, n_frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    mouth = speech_mouth(args.frames, rng)
    poses, blinks = head_motion(args.frames, rng)
    jpeg = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    for size in args.sizes:
        setups, rates, cpu_rates, jpeg_rates = [], [], [], []
        for r in range(args.repeats):
            identity = Identity.sample(np.random.default_rng(100 + r))
            c0 = time.process_time()
            renderer = FaceRenderer(identity, size)
            setups.append(time.process_time() - c0)
            out = np.empty((size, size, 3), np.uint8)
            t0, c0 = time.perf_counter(), time.process_time()
            for i in range(args.frames):
                renderer.render(mouth[i], poses[i], blinks[i], out=out)
            rates.append(args.frames / (time.perf_counter() - t0))
            cpu_rates.append(args.frames / (time.process_time() - c0))
            c0 = time.process_time()
            for i in range(args.frames):  # what the corpus writer does per frame
                frame = renderer.render(mouth[i], poses[i], blinks[i], out=out)
                cv2.imencode(".jpg", np.ascontiguousarray(frame[:, :, ::-1]), jpeg)
            jpeg_rates.append(args.frames / (time.process_time() - c0))
        print(
            f"size {size:4d}: {statistics.median(cpu_rates):7.0f} frames per CPU-second on 1 core "
            f"({statistics.median(rates):.0f} frames/s wall-clock on this machine's load), "
            f"{statistics.median(jpeg_rates):.0f} with JPEG encoding; static layers "
            f"{1000 * statistics.median(setups):.0f} CPU-ms per identity "
            f"(median of {args.repeats} identities x {args.frames} frames)"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
