"""Memory-analysis report: a self-contained HTML page plus CSV/parquet tables.

    python -m analysis.report --checkpoint DIR --audio FILE [--text "..."] --out DIR
    python -m analysis.report --checkpoint DIR --data CORPUS --split test --out DIR

One clip: the speech is aligned (PocketSphinx with the transcript, or recognised first; or
`--textgrid FILE` from MFA), addressed frame by frame (A_aud) and analysed. A corpus: every
clip of the split with its phones.TextGrid. The page embeds plotly.js once (no CDN: it opens
offline) and shows the statistics (PNMI, purities, usage), the phone and viseme x slot
heatmaps, a timeline of one utterance, UMAP maps of value and key slots and of per-frame lip
features, and the lip image each slot stores, decoded for one identity.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from lipmem_core import cli
from lipmem_core.config import SAMPLE_RATE
from lipmem_core.errors import CheckpointError, CorpusError, LipMemError
from lipmem_core.infer.addressing import decode_addresses

from . import plots
from .addressing import (
    corpus_addressing,
    join_phones,
    model_fingerprint,
    phone_slot_matrices,
    slot_order,
    statistics,
)
from .slots import (
    address_sequence,
    frame_map,
    phone_segments,
    slot_gallery,
    slot_labels,
    slot_map,
)

# Phones the steering strip spells through memory: closed, open, closed, spread, rounded, labiodental.
STEER_PHONES = ("M", "AA", "M", "IY", "UW", "F", "AA")

_STAT_COLUMNS = ["utterance", "n_frames", "pnmi", "phone_purity", "slot_purity", "viseme_purity",
                 "usage_entropy_norm", "used_slots", "dead_slots"]  # fmt: skip


@dataclass
class Utterance:
    """One utterance to analyse: id, 16 kHz audio (n_samples,) and its phone table."""

    utterance: str
    audio: np.ndarray
    phones: pd.DataFrame


@dataclass
class Report:
    """Everything the report shows: tables (written as files) and figures (in the page)."""

    tables: dict[str, pd.DataFrame]
    figures: list[tuple[str, str, go.Figure]] = field(default_factory=list)  # (heading, caption, figure)


def analyse(
    model,
    clips: list[Utterance],
    identity: np.ndarray,
    cache_dir: Path | None = None,
    seed: int = 0,
    map_method: str = "auto",
    progress: bool = False,
) -> Report:
    """Address every clip, join phones, compute matrices, statistics, maps and the gallery.

    map_method: "auto" (UMAP, PCA for very few points), "umap" or "pca" for the 2-D maps.
    """
    if not clips:
        raise CorpusError("nothing to analyse: no clips")
    clip_audio = ((c.utterance, c.audio) for c in clips)
    seconds = sum(len(c.audio) for c in clips) / SAMPLE_RATE
    frames = corpus_addressing(model, clip_audio, cache_dir, progress, len(clips), optimise=seconds > 60)
    phones = pd.concat([c.phones for c in clips], ignore_index=True)
    frames = join_phones(frames, phones)
    by_phone = phone_slot_matrices(frames, "phone")
    by_viseme = phone_slot_matrices(frames, "viseme")
    order = slot_order(by_phone["counts"])
    info = slot_labels(by_phone["counts"])
    stats = statistics(frames, per_utterance=len(clips) > 1)
    cache = _ResultCache(cache_dir, model_fingerprint(model) if cache_dir is not None else "")
    maps = f"{seed}/{map_method}"
    value_map = cache.table(
        f"value_map/{maps}", lambda: slot_map(model, None, "value", seed, map_method)
    ).merge(info, on="slot", how="left")
    key_map = cache.table(f"key_map/{maps}", lambda: slot_map(model, None, "key", seed, map_method)).merge(
        info, on="slot", how="left"
    )
    fmap = cache.table(
        f"frame_map/{maps}", lambda: frame_map(frames, model, seed=seed, method=map_method), frames
    )
    gallery_slots = list(order)
    images = cache.array(
        "gallery",
        lambda: slot_gallery(model, identity, gallery_slots)[0],
        identity,
        np.asarray(gallery_slots),
    )
    segments, steer_phones = phone_segments(by_phone["p_slot_given"], STEER_PHONES, frames_per_phone=3)
    tables = {
        "frames": frames,
        "phones": phones,
        "statistics": stats,
        "slots": info.assign(order=[order.index(s) for s in info["slot"]]),
        "phone_slot_counts": by_phone["counts"],
        "phone_given_slot": by_phone["p_label_given_slot"],
        "slot_given_phone": by_phone["p_slot_given"],
        "phone_mean_weight": by_phone["mean_weight"],
        "viseme_slot_counts": by_viseme["counts"],
        "viseme_given_slot": by_viseme["p_label_given_slot"],
        "slot_maps": pd.concat([value_map, key_map], ignore_index=True),
        "frame_map": fmap,
    }
    first = clips[0]
    figures = [
        ("Phone x slot", "P(phone | slot): each column shows which phones a slot serves (slots in "
         "clustered order, so slots serving the same phones sit together).",
         plots.slot_phone_heatmap(by_phone["p_label_given_slot"], order, by_phone["counts"], info)),
        ("Viseme x slot", "P(viseme | slot): lip-shape classes; the memory stores pictures, so "
         "look-alike phones (P/B/M) may share slots.",
         plots.slot_phone_heatmap(by_viseme["p_label_given_slot"], order, by_viseme["counts"], info,
                                  title="P(viseme | slot)")),
        (f"Timeline of {first.utterance}", "Waveform, aligned phones and A_aud (slots x time); "
         "white ticks mark the argmax slot of each frame.",
         plots.utterance_timeline(frames[frames["utterance"] == first.utterance], first.phones, first.audio, order)),
        ("Value slots V", "The S value (lip) slots embedded in 2-D, coloured by the viseme of "
         "the phone they serve most.", plots.map_scatter(value_map, "viseme")),
        ("Key slots K", "The S key (audio) slots, same colours.", plots.map_scatter(key_map, "viseme")),
        ("Frames and slots", "Per-frame recalled lip features A_aud V with the value slots "
         "overlaid, coloured by the viseme of the phone at each frame.", plots.map_scatter(fmap, "viseme")),
        ("Lips stored in each slot", "One-hot address of each slot decoded for one identity "
         "(clustered order); hover for the slot's top phones.",
         plots.gallery_figure(images, gallery_slots, info)),
    ]  # fmt: skip
    if segments:  # none when the speech holds none of STEER_PHONES (e.g. "hello")
        steer_slots = [s for s, n in segments for _ in range(n)]
        steer_labels = [
            f"{p} s{s}" for p, (s, n) in zip(steer_phones, segments, strict=True) for _ in range(n)
        ]
        steered = decode_addresses(model, identity, address_sequence(segments, model.cfg.n_slots, blend=1))
        figures.append((
            "Steering the lips through memory",
            f"Frames decoded from a hand-made address track: the most likely slot of each phone of "
            f"{' '.join(steer_phones)}, 3 frames each, cross-faded; labels give the phone and its slot.",
            plots.gallery_figure(steered, steer_slots, info, cols=len(steer_slots), labels=steer_labels),
        ))  # fmt: skip
    return Report(tables, figures)


class _ResultCache:
    """The report's slow results (UMAP maps: ~35 s with numba's first compile; the decoded
    gallery: ~7 s) stored in `directory` as parquet / .npy, keyed by sha256 of the model
    weights, the result's name and parameters, and the data it was computed from. Addressings
    are cached next to them by `addressing.clip_addressing`. No directory, no caching."""

    def __init__(self, directory: Path | None, fingerprint: str) -> None:
        self.directory = None if directory is None else Path(directory)
        self.fingerprint = fingerprint

    def _path(self, name: str, inputs: tuple, suffix: str) -> Path | None:
        if self.directory is None:
            return None
        h = hashlib.sha256(f"{self.fingerprint}/{name}".encode())
        for item in inputs:
            if isinstance(item, pd.DataFrame):
                h.update(pd.util.hash_pandas_object(item, index=True).to_numpy().tobytes())
                h.update(",".join(map(str, item.columns)).encode())
            else:
                h.update(np.ascontiguousarray(item).tobytes())
        return self.directory / f"{name.split('/')[0]}_{h.hexdigest()[:24]}{suffix}"

    def table(self, name: str, build, *inputs) -> pd.DataFrame:
        path = self._path(name, inputs, ".parquet")
        if path is not None and path.exists():
            return pd.read_parquet(path)
        table = build()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            table.to_parquet(path, index=False)
        return table

    def array(self, name: str, build, *inputs) -> np.ndarray:
        path = self._path(name, inputs, ".npy")
        if path is not None and path.exists():
            return np.load(path, allow_pickle=False)
        array = build()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, array, allow_pickle=False)
        return array


def write_report(report: Report, out_dir: str | Path, title: str, notes: list[str] | None = None) -> Path:
    """Write index.html (plotly.js embedded once) and every table as CSV (frames: parquet)."""
    out = cli.make_dirs(out_dir)
    # Each file is written to a temporary name and renamed: no partial file on failure.
    for name, table in report.tables.items():
        if name == "frames":
            with cli.atomic_output(out / "frames.parquet") as tmp:
                table.to_parquet(tmp, index=False)
        else:
            with cli.atomic_output(out / f"{name}.csv") as tmp:
                table.to_csv(tmp, index=not isinstance(table.index, pd.RangeIndex))
    stats = report.tables["statistics"]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
        "p.caption{color:#444}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        *[f"<p>{html.escape(n)}</p>" for n in notes or []],
        "<h2>Statistics</h2>",
        "<p>Frames labelled by the phone at their centre and by their argmax slot. PNMI = "
        "I(phone; slot) / H(phone): 1 when the slot determines the phone, 0 when independent.</p>",
        stats[[c for c in _STAT_COLUMNS if c in stats]].to_html(index=False, float_format="%.3f"),
    ]
    for i, (heading, caption, fig) in enumerate(report.figures):
        parts += [f"<h2>{html.escape(heading)}</h2>", f"<p class='caption'>{html.escape(caption)}</p>"]
        # plotly.js goes into the page once, inline with the first figure: the file opens offline.
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False}))
    files = ", ".join(sorted(p.name for p in out.iterdir() if p.suffix in (".csv", ".parquet")))
    parts += [f"<h2>Tables</h2><p>{html.escape(files)}</p>", "</body></html>"]
    return cli.write_text_atomic(out / "index.html", "\n".join(parts))


def _load_generator(path: Path):
    from lipmem_core.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path, kind="generator")
    if ckpt.model.memory is None:
        raise CheckpointError(f"{path} is a generator without memory (use_memory=False): nothing to analyse")
    return ckpt.model.eval(), ckpt.metadata


def _default_identity(img_size: int, seed: int) -> np.ndarray:
    """A SynthTalk face with the mouth at rest, for the gallery when no identity is given."""
    from lipmem_core.data.synth.face_identity import Identity
    from lipmem_core.data.synth.face_render import neutral_face

    return neutral_face(Identity.sample(np.random.default_rng(seed)), img_size)


def _read_identity(path: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise LipMemError(f"cannot read the identity image {path}: give a face crop as JPEG or PNG")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _audio_clip(args: argparse.Namespace) -> tuple[Utterance, list[str]]:
    from lipmem_core.audio import check_duration, load_audio
    from lipmem_core.limits import MAX_ALIGN_SECONDS

    from .align import align_pocketsphinx
    from .textgrids import read_textgrid

    check_duration(args.audio, MAX_ALIGN_SECONDS)  # from the header: refused before decoding
    audio = load_audio(args.audio)
    utt = args.audio.stem
    if args.textgrid is not None:
        return Utterance(utt, audio, read_textgrid(args.textgrid, utterance=utt)), [
            f"Alignment: {args.textgrid}."
        ]
    result = align_pocketsphinx(audio, args.text, utterance=utt, oov=args.oov)
    how = "the given transcript" if args.text else "recognised text (no transcript given)"
    return Utterance(utt, audio, result.table), [
        f"Aligned with PocketSphinx to {how}: \u201c{result.text}\u201d."
    ]


def _corpus_clips(
    root: Path, split: str, max_clips: int | None
) -> tuple[list[Utterance], np.ndarray, list[str]]:
    from lipmem_core.data import corpus

    from .textgrids import read_textgrid

    manifest = corpus.read_manifest(root)
    rows = manifest[manifest["split"] == split]
    if rows.empty:
        raise CorpusError(
            f"{root} has no {split!r} clips in manifest.csv; choose one of {sorted(set(manifest['split']))}"
        )
    if max_clips is not None:
        rows = rows.head(max_clips)
    clips = []
    for row in rows.itertuples(index=False):
        d = corpus.clip_dir(root, row)
        utt = f"{row.split}/{row.speaker}/{row.utterance}"
        clips.append(
            Utterance(utt, corpus.read_audio(d), read_textgrid(d / "phones.TextGrid", utterance=utt))
        )
    first = corpus.clip_dir(root, rows.iloc[0])
    identity = _read_identity(corpus.frame_paths(first)[0])
    seconds = sum(len(c.audio) for c in clips) / SAMPLE_RATE
    return clips, identity, [f"Corpus {root}, split {split}: {len(clips)} clips, {seconds / 60:.1f} min."]


def main(argv: list[str] | None = None) -> int:
    parser = cli.Parser(prog="python -m analysis.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="generator checkpoint directory")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--audio", type=Path, help="one speech file to analyse")
    src.add_argument("--data", type=Path, help="a corpus in the SynthTalk layout")
    parser.add_argument("--text", help="transcript of --audio (recognised when omitted)")
    parser.add_argument(
        "--textgrid", type=Path, help="alignment of --audio (e.g. from MFA) instead of PocketSphinx"
    )
    parser.add_argument(
        "--oov", choices=("error", "espeak"), default="error", help="words missing from CMUdict"
    )
    parser.add_argument("--split", default="test", help="corpus split (with --data)")
    parser.add_argument(
        "--max-clips", type=cli.positive_int, help="analyse only the first N clips of the split"
    )
    parser.add_argument("--identity", type=Path, help="face crop for the slot gallery")
    parser.add_argument("--seed", type=int, default=0, help="seed of the UMAP maps and the default identity")
    parser.add_argument(
        "--map", choices=("umap", "pca"), default="umap", help="2-D embedding of the slot maps"
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    args = parser.parse_args(argv)
    if args.data is not None and (args.text or args.textgrid):
        parser.error("--text and --textgrid go with --audio; a corpus brings its own phones.TextGrid")
    try:
        reads = [args.checkpoint, args.audio, args.data, args.textgrid, args.identity]
        cli.check_output(args.out, reads, kind="dir")
        model, metadata = _load_generator(args.checkpoint)
        if args.audio is not None:
            clip, notes = _audio_clip(args)
            clips = [clip]
            identity = None
        else:
            clips, identity, notes = _corpus_clips(args.data, args.split, args.max_clips)
        if args.identity is not None:
            identity = _read_identity(args.identity)
        if identity is None:
            identity = _default_identity(model.cfg.img_size, args.seed)
            notes.append(
                f"Gallery identity: a SynthTalk face (seed {args.seed}); pass --identity to use another."
            )
        notes.insert(0, f"Checkpoint {args.checkpoint} ({metadata.get('steps', '?')} steps).")
        method = "auto" if args.map == "umap" else "pca"
        report = analyse(
            model, clips, identity, cache_dir=args.out / "cache", seed=args.seed, map_method=method
        )
        page = write_report(report, args.out, f"LipMem memory analysis: {args.checkpoint.name}", notes)
    except LipMemError as exc:
        return cli.fail(exc)
    stats = report.tables["statistics"].iloc[0]
    print(
        f"{page}: {int(stats['n_frames'])} frames, PNMI {stats['pnmi']:.3f}, used slots {int(stats['used_slots'])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
