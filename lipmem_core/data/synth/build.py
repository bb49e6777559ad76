"""SynthTalk corpus builder (docs/SYNTHTALK.md), a CLI:

    python -m lipmem_core.data.synth --out DIR --speakers N --utterances M --seed S \
        [--size 128] [--workers K]

A speaker is a face identity + an espeak voice. Whole speakers are held out for val and test
(unseen faces, and voices whose variant, the timbre, no train speaker uses), and so are their
sentences: no val/test sentence occurs in train.
Everything derives from the seed: the plan (speakers, splits, sentences) is made up front in
the parent, and each utterance draws its randomness (head drift, blinks) from a generator
seeded by (seed, speaker, utterance), so worker count and order never change a byte.

Each utterance is written into a hidden temporary directory renamed into place when
complete, so an interrupted build leaves no half clip behind; re-running the same command
skips finished utterances and completes the rest. manifest.csv is rewritten at the end from
the utterances that exist.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from lipmem_core.config import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from lipmem_core.errors import CorpusError, LipMemError
from lipmem_core.phones import Interval

VAL_SHARE = TEST_SHARE = 0.1
HELD_OUT_VARIANTS = 0.2  # share of espeak voice variants heard only by val/test speakers
JPEG_QUALITY = 90
_TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class Job:
    """One utterance to build: where, what to say, who says it, and its RNG seed."""

    root: str
    split: str
    speaker: str
    utterance: str
    text: str
    voice: dict[str, Any]
    identity: dict[str, Any]
    seed: tuple[int, ...]  # (corpus seed, speaker index, utterance index)
    size: int

    @property
    def path(self) -> Path:
        return Path(self.root) / self.split / self.speaker / self.utterance


def assign_splits(n_speakers: int, rng: np.random.Generator) -> list[str]:
    """Split per speaker: ~10% val and ~10% test (at least one each when n >= 3), rest train."""
    n_eval = max(1, round(n_speakers * VAL_SHARE)) if n_speakers >= 3 else 0
    splits = ["test"] * n_eval + ["val"] * n_eval + ["train"] * (n_speakers - 2 * n_eval)
    return [splits[i] for i in np.argsort(rng.permutation(n_speakers), kind="stable")]


def plan_corpus(
    root: str | Path, n_speakers: int, n_utterances: int, seed: int, size: int
) -> tuple[dict, list[Job]]:
    """speakers.json content and the list of jobs, a pure function of the arguments."""
    from lipmem_core.data.synth.face_render import Identity
    from lipmem_core.data.synth.sentences import SentenceGenerator
    from lipmem_core.data.synth.speech import VARIANTS, Voice

    width = max(3, len(str(n_speakers - 1)))
    ids = [f"spk{i:0{width}d}" for i in range(n_speakers)]
    splits = assign_splits(n_speakers, np.random.default_rng([seed, 1]))
    # Unseen voices: val/test speakers use voice variants (timbres) that no train speaker has.
    shuffled = [VARIANTS[k] for k in np.random.default_rng([seed, 2]).permutation(len(VARIANTS))]
    n_held = round(len(VARIANTS) * HELD_OUT_VARIANTS) if "train" in splits and len(set(splits)) > 1 else 0
    variants = {"train": shuffled[n_held:], "val": shuffled[:n_held], "test": shuffled[:n_held]}
    speakers = {}
    for i, sid in enumerate(ids):
        rng = np.random.default_rng([seed, 0, i])
        speakers[sid] = {
            "split": splits[i],
            "identity": Identity.sample(rng).to_dict(),
            "voice": Voice.sample(rng, variants[splits[i]]).to_dict(),
        }
    # Sentences: all distinct; held-out speakers draw theirs first and train never reuses them.
    generator = SentenceGenerator(seed)
    seen: set[str] = set()
    texts: dict[str, list[str]] = {}
    order = sorted(range(n_speakers), key=lambda i: (splits[i] == "train", i))
    for i in order:
        texts[ids[i]] = []
        while len(texts[ids[i]]) < n_utterances:
            s = generator.sentence()
            if s not in seen:
                seen.add(s)
                texts[ids[i]].append(s)
    jobs = [
        Job(
            str(root),
            splits[i],
            sid,
            f"utt{j:04d}",
            texts[sid][j],
            speakers[sid]["voice"],
            speakers[sid]["identity"],
            (seed, i, j),
            size,
        )
        for i, sid in enumerate(ids)
        for j in range(n_utterances)
    ]
    meta = {
        "seed": seed,
        "size": size,
        "fps": FPS,
        "sample_rate": SAMPLE_RATE,
        "utterances_per_speaker": n_utterances,
        "speakers": speakers,
    }
    return meta, jobs


def pad_to_frames(audio: np.ndarray, phones: list[Interval]) -> tuple[np.ndarray, list[Interval], int]:
    """Pad audio with trailing silence to n = ceil(len / 640) frames; extend the last phone."""
    n_frames = math.ceil(len(audio) / SAMPLES_PER_FRAME)
    padded = np.zeros(n_frames * SAMPLES_PER_FRAME, np.float32)
    padded[: len(audio)] = audio
    last = phones[-1]
    return padded, [*phones[:-1], Interval(last.start, n_frames / FPS, last.label)], n_frames


def build_utterance(job: Job) -> dict[str, Any]:
    """Synthesise, animate, render and write one utterance; returns its manifest row."""
    import cv2
    import soundfile as sf

    from lipmem_core.data.corpus import frame_phones, write_textgrid
    from lipmem_core.data.synth.face_render import head_motion
    from lipmem_core.data.synth.mouth import MOUTH_PARAMS, mouth_trajectory
    from lipmem_core.data.synth.speech import Voice, synthesize

    final = job.path
    if final.is_dir():
        return _row(job, len(list(final.glob("*.jpg"))))
    rng = np.random.default_rng(list(job.seed))
    utt = synthesize(job.text, Voice.from_dict(job.voice))
    audio, phones, n_frames = pad_to_frames(utt.audio, utt.phones)
    mouth = mouth_trajectory(phones, n_frames)  # (n, 7)
    # As face_render.render_clip, but with the speaker's renderer cached across utterances
    # (building one pre-renders the face: ~0.5 s) and each frame encoded as it is drawn.
    renderer = _renderer(json.dumps(job.identity, sort_keys=True), job.size)
    poses, blinks = head_motion(n_frames, rng)
    frame = np.empty((job.size, job.size, 3), np.uint8)
    bgr = np.empty_like(frame)

    tmp = final.parent / f"{_TMP_PREFIX}{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    for k in range(n_frames):
        renderer.render(mouth[k], poses[k], blinks[k], out=frame)  # (S, S, 3) RGB
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR, dst=bgr), params)
        if not ok:
            raise CorpusError(f"JPEG encoding failed for frame {k} of {final}")
        (tmp / f"{k:05d}.jpg").write_bytes(buf.tobytes())
    sf.write(str(tmp / "audio.wav"), audio, SAMPLE_RATE, subtype="PCM_16")
    write_textgrid(tmp / "phones.TextGrid", phones, utt.words, n_frames / FPS)
    labels = frame_phones(phones, n_frames)
    with open(tmp / "mouth.csv", "w", encoding="utf-8", newline="\n") as f:
        f.write(",".join(["frame", *MOUTH_PARAMS, "phone"]) + "\n")
        for k in range(n_frames):
            f.write(f"{k}," + ",".join(f"{v:.4f}" for v in mouth[k]) + f",{labels[k]}\n")
    tmp.rename(final)  # the completion marker: a clip directory exists only when whole
    return _row(job, n_frames)


@lru_cache(maxsize=2)
def _renderer(identity_json: str, size: int) -> Any:
    """This process's FaceRenderer for a speaker (jobs arrive grouped by speaker)."""
    from lipmem_core.data.synth.face_render import FaceRenderer, Identity

    return FaceRenderer(Identity.from_dict(json.loads(identity_json)), size)


def _row(job: Job, n_frames: int) -> dict[str, Any]:
    return {
        "split": job.split,
        "speaker": job.speaker,
        "utterance": job.utterance,
        "text": job.text,
        "seconds": n_frames / FPS,
        "frames": n_frames,
    }


def _clean_partial(root: Path) -> None:
    """Remove temporary directories left by an interrupted build."""
    for split in ("train", "val", "test"):
        for tmp in (root / split).glob(f"*/{_TMP_PREFIX}*"):
            shutil.rmtree(tmp, ignore_errors=True)


def _write_speakers(root: Path, meta: dict) -> None:
    path = root / "speakers.json"
    text = json.dumps(meta, indent=1, sort_keys=True) + "\n"
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        if old != json.loads(text):
            raise CorpusError(
                f"{root} already holds a corpus built with other settings (seed, speakers, "
                "utterances or size differ): use a new --out directory, or the same settings "
                "to complete it"
            )
        return
    path.write_text(text, encoding="utf-8")


def _init_worker() -> None:
    import multiprocessing.util

    import cv2

    from lipmem_core.data.synth import speech

    cv2.setNumThreads(1)  # one process per core already; OpenCV's own pool would oversubscribe
    # Reap this worker's espeak processes when it exits (pool.close/join, not terminate).
    multiprocessing.util.Finalize(None, speech.shutdown, exitpriority=10)


def _run(jobs: list[Job], workers: int, per_speaker: int) -> Iterator[dict[str, Any]]:
    if workers <= 1:
        yield from map(build_utterance, jobs)
        return
    import multiprocessing as mp

    # Jobs are ordered by speaker: chunks of one speaker's utterances let a worker reuse its
    # renderer, while enough chunks remain to keep every worker busy.
    chunk = max(1, min(per_speaker, len(jobs) // (4 * workers)))
    # fork: workers inherit the imported modules; the parent never initialised espeak.
    # forkserver, not fork: forking a process that already runs threads (a Gradio server,
    # torch pools) can copy a held lock into a worker, which then never starts.
    with mp.get_context("forkserver").Pool(workers, initializer=_init_worker) as pool:
        yield from pool.imap_unordered(build_utterance, jobs, chunksize=chunk)
        pool.close()
        pool.join()


def build_corpus(
    out: str | Path,
    speakers: int,
    utterances: int,
    seed: int = 0,
    size: int = 128,
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Build (or complete) a SynthTalk corpus at `out`; returns the manifest path."""
    from tqdm import tqdm

    from lipmem_core.data.corpus import write_manifest

    if speakers < 1 or utterances < 1:
        raise CorpusError("--speakers and --utterances must both be at least 1")
    if size < 32 or size % 2:
        raise CorpusError(f"--size {size}: use an even size of at least 32 (128 is standard)")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    meta, jobs = plan_corpus(root, speakers, utterances, seed, size)
    _write_speakers(root, meta)
    _clean_partial(root)
    for job in jobs:
        job.path.parent.mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1
    rows = []
    bar = tqdm(total=len(jobs), unit="utt", disable=not progress, desc="SynthTalk")
    for row in _run(jobs, min(workers, len(jobs)), utterances):
        rows.append(row)
        bar.update(1)
        bar.set_postfix(frames=sum(r["frames"] for r in rows), refresh=False)
    bar.close()
    return write_manifest(root, rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m lipmem_core.data.synth",
        description="Build a SynthTalk corpus: espeak-ng speech + a rendered talking face.",
    )
    p.add_argument("--out", required=True, help="corpus directory (created or completed)")
    p.add_argument("--speakers", type=int, required=True, help="number of speakers (face + voice)")
    p.add_argument("--utterances", type=int, required=True, help="utterances per speaker")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=128, help="frame size in pixels (square)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    try:
        path = build_corpus(
            args.out, args.speakers, args.utterances, args.seed, args.size, args.workers, not args.quiet
        )
    except LipMemError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0
