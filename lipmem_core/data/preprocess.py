"""Real talking-face videos (LRS2, LRW, your own) -> the corpus layout SynthTalk uses.

    python -m lipmem_core.data.preprocess --videos DIR --out DIR [--workers K]
        [--alignments DIR_OF_TEXTGRIDS] [--split-lists DIR] [--size 128] [--min-frames 25]

Each video `.../SPEAKER/UTT.mp4` (LRS2: `main/SPEAKERID/UTT.mp4`) becomes
`OUT/SPLIT/SPEAKER/UTT/` with face crops framed like SynthTalk (lipmem_core.infer.face), audio.wav
(16 kHz mono, exactly frames * 640 samples) and, when `--alignments` holds an MFA TextGrid for
it, phones.TextGrid. Frames are resampled to 25 fps. The longest run of consecutive frames with
a face is kept (a cut-away or a lost face would break audio-lip sync inside a window).
Everything goes to train unless `--split-lists` names a directory with LRS2-style lists
(pretrain.txt, train.txt, val.txt, test.txt; one `SPEAKER/UTT` per line).

Resumable: an utterance directory appears only when complete (written under a temporary name,
then renamed); re-running skips finished videos. Skipped videos (corrupt, no face, no audio,
too short) are listed with the reason in OUT/skipped.csv and summarised on stdout.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lipmem_core import cli
from lipmem_core.config import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from lipmem_core.errors import CorpusError, LipMemError
from lipmem_core.phones import SILENCE, Interval

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
SPLIT_FILES = {"pretrain.txt": "train", "train.txt": "train", "val.txt": "val", "test.txt": "test"}
JPEG_QUALITY = 90
_TMP_PREFIX = ".tmp-"
_SILENCE_LABELS = {"", "sil", "sp", "spn", "<eps>"}


@dataclass(frozen=True)
class Job:
    video: Path
    speaker: str
    utterance: str
    split: str
    out: Path  # the final utterance directory
    size: int
    min_frames: int
    alignment: Path | None


def find_videos(root: Path) -> list[Path]:
    """Video files under root, sorted (deterministic job order)."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())


def read_split_lists(folder: Path | None) -> dict[str, str]:
    """`SPEAKER/UTT` -> split from LRS2-style lists (first token of each line)."""
    splits: dict[str, str] = {}
    if folder is None:
        return splits
    found = [name for name in SPLIT_FILES if (folder / name).is_file()]
    if not found:
        raise CorpusError(f"{folder} has none of {sorted(SPLIT_FILES)}: pass LRS2's list files")
    for name in found:
        for line in (folder / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                splits[line.split()[0]] = SPLIT_FILES[name]
    return splits


def read_lrs2_text(video: Path) -> str:
    """The transcript in LRS2's sibling UTT.txt ("Text:  WORDS"), lower case; "" if none."""
    txt = video.with_suffix(".txt")
    if not txt.is_file():
        return ""
    for line in txt.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("Text:"):
            return line[len("Text:") :].strip().lower()
    return ""


def plan_jobs(
    videos_root: Path,
    out: Path,
    size: int,
    min_frames: int,
    alignments: Path | None = None,
    split_lists: Path | None = None,
) -> list[Job]:
    """One job per video; speaker = name of the folder holding it, utterance = file stem."""
    splits = read_split_lists(split_lists)
    jobs, seen = [], set()
    for video in find_videos(videos_root):
        speaker = video.parent.resolve().name
        key = f"{speaker}/{video.stem}"
        split = splits.get(key, "train")
        utterance = video.stem
        if (speaker, utterance) in seen:  # LRS2's pretrain/ and main/ reuse SPEAKER/UTT names
            utterance = f"{video.parent.parent.name}_{video.stem}"
        seen.add((speaker, utterance))
        align = None
        if alignments is not None:
            for cand in (
                alignments / speaker / f"{video.stem}.TextGrid",
                alignments / f"{video.stem}.TextGrid",
            ):
                if cand.is_file():
                    align = cand
                    break
        jobs.append(
            Job(video, speaker, utterance, split, out / split / speaker / utterance, size, min_frames, align)
        )
    return jobs


def longest_run(has_face: np.ndarray) -> tuple[int, int]:
    """[start, stop) of the longest run of True (the earliest on ties); (0, 0) if none."""
    best, start = (0, 0), None
    for k, v in enumerate([*has_face.tolist(), False]):
        if v and start is None:
            start = k
        elif not v and start is not None:
            if k - start > best[1] - best[0]:
                best = (start, k)
            start = None
    return best


def _tier(tg: Any, name: str) -> Any:
    """A tier by MFA name: "phones", or per speaker "<speaker> - phones"."""
    names = tg.tierNames
    for cand in names:
        if cand == name or cand.endswith(f" - {name}"):
            return tg.getTier(cand)
    raise CorpusError(f"TextGrid tiers {list(names)} include no {name!r} tier (MFA writes words and phones)")


def crop_alignment(path: Path, start: float, stop: float) -> tuple[list[Interval], list[Interval]]:
    """Phones (tiling [0, stop - start], silence in gaps) and words of an MFA TextGrid cut to
    [start, stop] and shifted to start at 0."""
    from praatio import textgrid

    try:
        tg = textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
        tiers = _tier(tg, "phones"), _tier(tg, "words")
    except CorpusError:
        raise
    except Exception as exc:  # praatio raises many types for malformed files
        raise CorpusError(f"{path} is not a readable TextGrid ({type(exc).__name__}: {exc})") from exc
    duration = stop - start
    out: list[list[Interval]] = []
    for tier in tiers:
        items = []
        for e in tier.entries:
            a, b = max(e.start, start) - start, min(e.end, stop) - start
            if b - a > 1e-6:
                label = e.label.strip()
                items.append(Interval(a, b, SILENCE if label.lower() in _SILENCE_LABELS else label))
        out.append(items)
    phones, t = [], 0.0
    for p in out[0]:
        if p.start > t + 1e-6:
            phones.append(Interval(t, p.start, SILENCE))
        phones.append(p)
        t = p.end
    if duration > t + 1e-6 or not phones:
        phones.append(Interval(t, duration, SILENCE))
    words = [w for w in out[1] if w.label != SILENCE]
    return phones, words


def _row(job: Job, n_frames: int, text: str) -> dict[str, Any]:
    return {
        "split": job.split,
        "speaker": job.speaker,
        "utterance": job.utterance,
        "text": text,
        "seconds": n_frames / FPS,
        "frames": n_frames,
    }


def process_video(job: Job) -> dict[str, Any]:
    """Crop, cut and write one video. Returns {"row": manifest row} or {"skip": reason}."""
    import cv2
    import soundfile as sf

    from lipmem_core.audio import load_audio
    from lipmem_core.data.corpus import write_textgrid
    from lipmem_core.infer.face import FaceTracker, crop_face
    from lipmem_core.infer.video import FrameReader

    text = read_lrs2_text(job.video)
    if job.out.is_dir():
        return {"row": _row(job, len(list(job.out.glob("*.jpg"))), text)}
    cv2.setNumThreads(1)  # parallelism comes from the worker processes
    tmp = job.out.parent / f"{_TMP_PREFIX}{job.utterance}-{os.getpid()}"
    try:
        with FrameReader(job.video) as reader:
            fps, n_src = reader.info.fps, reader.info.n_frames
            audio = load_audio(job.video)
            n_out = int(np.floor(n_src * FPS / fps + 1e-6))  # 25 fps frames inside the video
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
            tracker = FaceTracker()
            has_face = np.zeros(n_out, bool)
            params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
            chunk = 64
            for j0 in range(0, n_out, chunk):
                js = np.arange(j0, min(n_out, j0 + chunk))
                src = np.minimum(np.floor((js + 0.5) * fps / FPS).astype(int), n_src - 1)  # nearest in time
                got = reader.read(int(src[0]), int(src[-1]) + 1)
                for j, s in zip(js, src, strict=True):
                    frame = got[min(s - src[0], len(got) - 1)]
                    box = tracker.update(frame)
                    if box is None:
                        continue
                    has_face[j] = True
                    crop = crop_face(frame, box, job.size)
                    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(crop[:, :, ::-1]), params)
                    if not ok:
                        raise CorpusError(f"JPEG encoding failed for frame {j} of {job.video}")
                    (tmp / f"src{j:06d}.jpg").write_bytes(buf.tobytes())
        a, b = longest_run(has_face)
        n = b - a
        if n < job.min_frames:
            reason = (
                "no face found" if n == 0 else f"face in at most {n} consecutive frames (< {job.min_frames})"
            )
            shutil.rmtree(tmp)
            return {"skip": reason}
        for j in range(n_out):
            f = tmp / f"src{j:06d}.jpg"
            if a <= j < b:
                f.rename(tmp / f"{j - a:05d}.jpg")
            else:
                f.unlink(missing_ok=True)
        seg = np.zeros(n * SAMPLES_PER_FRAME, np.float32)
        piece = audio[a * SAMPLES_PER_FRAME : b * SAMPLES_PER_FRAME]
        seg[: len(piece)] = piece
        sf.write(str(tmp / "audio.wav"), seg, SAMPLE_RATE, subtype="PCM_16")
        if job.alignment is not None:
            phones, words = crop_alignment(job.alignment, a / FPS, b / FPS)
            write_textgrid(tmp / "phones.TextGrid", phones, words, n / FPS)
        job.out.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(job.out)  # the completion marker
        return {"row": _row(job, n, text)}
    except LipMemError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        return {"skip": f"{type(err).__name__}: {err}"}


def _run(jobs: list[Job], workers: int) -> Iterator[tuple[Job, dict[str, Any]]]:
    if workers <= 1:
        for job in jobs:
            yield job, process_video(job)
        return
    import multiprocessing as mp

    # forkserver, not fork: forking a process that already runs threads (a Gradio server,
    # torch pools) can copy a held lock into a worker, which then never starts.
    with mp.get_context("forkserver").Pool(workers, maxtasksperchild=100) as pool:
        yield from zip(jobs, pool.imap(process_video, jobs, chunksize=1), strict=True)


def _write_speakers(root: Path, rows: list[dict[str, Any]]) -> None:
    """speakers.json for real data: no rendered identity or espeak voice; a speaker's split is
    the one most of their utterances fall in."""
    by_speaker: dict[str, Counter] = {}
    for r in rows:
        by_speaker.setdefault(r["speaker"], Counter())[r["split"]] += 1
    meta = {
        "seed": None,
        "source": "preprocess",
        "speakers": {
            s: {"split": c.most_common(1)[0][0], "identity": {}, "voice": {}}
            for s, c in sorted(by_speaker.items())
        },
    }
    tmp = root / "speakers.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(root / "speakers.json")


def preprocess(
    videos: str | Path,
    out: str | Path,
    workers: int = 1,
    size: int = 128,
    min_frames: int = 25,
    alignments: str | Path | None = None,
    split_lists: str | Path | None = None,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Preprocess every video under `videos` into the corpus at `out`.

    Returns (manifest rows, [(video, reason) skipped]); writes manifest.csv, speakers.json
    and skipped.csv.
    """
    from tqdm import tqdm

    from lipmem_core.data.corpus import write_manifest

    videos, root = Path(videos), Path(out)
    if not videos.is_dir():
        raise CorpusError(f"--videos {videos} is not a directory")
    if size < 32 or size % 2:
        raise CorpusError(f"--size {size}: use an even size of at least 32 (128 is standard)")
    jobs = plan_jobs(
        videos, root, size, min_frames,
        None if alignments is None else Path(alignments),
        None if split_lists is None else Path(split_lists),
    )  # fmt: skip
    if not jobs:
        raise CorpusError(f"no videos ({', '.join(sorted(VIDEO_SUFFIXES))}) under {videos}")
    cli.make_dirs(root)
    for tmp in root.glob(f"*/*/{_TMP_PREFIX}*"):  # partial work of an interrupted run
        shutil.rmtree(tmp, ignore_errors=True)
    rows, skipped = [], []
    bar = tqdm(total=len(jobs), unit="video", disable=not progress, desc="preprocess")
    for job, result in _run(jobs, max(1, min(workers, len(jobs)))):
        if "row" in result:
            rows.append(result["row"])
        else:
            skipped.append((str(job.video), result["skip"]))
        bar.update(1)
    bar.close()
    write_manifest(root, rows)
    _write_speakers(root, rows)
    with cli.atomic_output(root / "skipped.csv") as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["video", "reason"])
        w.writerows(skipped)
    return rows, skipped


def main(argv: list[str] | None = None) -> int:
    p = cli.Parser(prog="python -m lipmem_core.data.preprocess", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--videos", required=True, help="directory of videos (LRS2: the folder holding main/ or main/)"
    )
    p.add_argument("--out", required=True, help="corpus directory (created or completed)")
    p.add_argument("--workers", type=cli.positive_int, default=os.cpu_count() or 1, help="parallel processes")
    p.add_argument("--size", type=cli.positive_int, default=128, help="face crop size in pixels")
    p.add_argument(
        "--min-frames", type=cli.positive_int, default=25, help="skip videos with a shorter face run"
    )
    p.add_argument(
        "--alignments",
        type=cli.existing_dir,
        default=None,
        help="MFA TextGrids: DIR/SPEAKER/UTT.TextGrid or DIR/UTT.TextGrid",
    )
    p.add_argument(
        "--split-lists",
        type=cli.existing_dir,
        default=None,
        help="directory with pretrain/train/val/test.txt",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    try:
        cli.check_output(args.out, [args.videos, args.alignments, args.split_lists], kind="dir")
        rows, skipped = preprocess(
            args.videos, args.out, args.workers, args.size, args.min_frames,
            args.alignments, args.split_lists, progress=not args.quiet,
        )  # fmt: skip
    except LipMemError as err:
        return cli.fail(err)
    frames = sum(r["frames"] for r in rows)
    print(f"{len(rows)} utterances ({frames} frames, {frames / FPS / 3600:.2f} h) in {args.out}")
    if skipped:
        print(f"skipped {len(skipped)} videos (see {Path(args.out) / 'skipped.csv'}):")
        for reason, count in Counter(r.split(":")[0] for _, r in skipped).most_common():
            print(f"  {count:6d}  {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
