"""Frame tables for the memory tabs: which frames, which phones, which slots.

Every memory view starts from a *frame table* (analysis.addressing: one row per 25 fps video
frame with A_aud, its argmax slot, and the phone at the frame centre). It comes from one of:
- the clip just generated (exact phones when it was typed text, else PocketSphinx);
- an uploaded clip, aligned with PocketSphinx (transcript optional) or a TextGrid (e.g. MFA);
- the precomputed analysis of the test corpus in assets/analysis/ (when shipped);
- a *probe set* of synthetic sentences with exact phones, made on demand per checkpoint, so
  slot maps and galleries are labelled with phones even when nothing else is at hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lipmem_app.choices import check, label
from lipmem_app.context import AppContext
from lipmem_app.inputs import CLIP_ID, check_speech
from lipmem_app.limits import check_media, check_size
from lipmem_core.errors import AlignmentError, CheckpointError, LipMemError

ANALYSIS_SOURCES = (
    ("Clip just made", "clip"),
    ("Upload a clip", "upload"),
    ("Test corpus (precomputed)", "corpus"),
)
ALIGNERS = (("PocketSphinx", "pocketsphinx"), ("TextGrid (e.g. Montreal Forced Aligner)", "textgrid"))
# Values: the matrices of analysis.addressing.phone_slot_matrices.
STATISTICS = (
    ("P(phone | slot)", "p_label_given_slot"),
    ("P(slot | phone)", "p_slot_given"),
    ("Mean addressing weight", "mean_weight"),
    ("Argmax count", "counts"),
)
LEVELS = ("phone", "viseme")
PROBE_SENTENCES = 14  # ~35 s of speech: the fewest (seed 0) with every ARPAbet phone
PROBE_VOICES = ("en-us", "en-gb+f2", "en-us+m3")


@dataclass
class Analysis:
    """What the Phonemes <-> slots tab shows, kept in gr.State between its events."""

    frames: pd.DataFrame  # frame table joined with phones (analysis.addressing)
    phones: pd.DataFrame | None  # phone table of `frames` (None for precomputed corpora)
    audio: np.ndarray | None  # (N,) 16 kHz of a single clip, for the timeline's waveform
    checkpoint: str  # checkpoint directory name the addressing came from
    title: str


def generator(ctx: AppContext, checkpoint: str | None):
    """The generator model of a checkpoint (cached); raises if it has no memory to analyse."""
    model = ctx.checkpoint(checkpoint).model
    if getattr(model, "memory", None) is None:
        raise CheckpointError(
            f"checkpoint {ctx.checkpoint_dir(checkpoint).name!r} has no Audio-Lip Memory (the "
            "no-memory ablation): choose a checkpoint with memory to look at slots"
        )
    return model


def address_clip(
    ctx: AppContext, checkpoint: str | None, audio: np.ndarray, phones: pd.DataFrame, utterance: str = CLIP_ID
) -> pd.DataFrame:
    """Frame table of one clip: A_aud per frame (cached by weights + audio) joined with phones."""
    from analysis.addressing import clip_addressing, join_phones

    frames = clip_addressing(
        generator(ctx, checkpoint), audio, utterance, cache_dir=ctx.work_root / "addressing"
    )
    return join_phones(frames, phones)


def align_upload(
    audio: np.ndarray, aligner: str, transcript: str | None, textgrid: str | None
) -> pd.DataFrame:
    """The phone table of an uploaded clip: a TextGrid as given, or PocketSphinx alignment."""
    if check(aligner, ALIGNERS, "aligner") == "textgrid":
        from analysis.textgrids import read_textgrid

        if not textgrid:
            raise AlignmentError("choose a TextGrid file (tiers 'words' and 'phones', as MFA writes them)")
        return read_textgrid(check_size(textgrid), utterance=CLIP_ID)
    from analysis.align import align_pocketsphinx

    text = (transcript or "").strip() or None
    return align_pocketsphinx(audio, text, utterance=CLIP_ID).table


def upload_analysis(
    ctx: AppContext,
    checkpoint: str | None,
    path: str | None,
    aligner: str,
    transcript: str | None,
    textgrid: str | None,
) -> Analysis:
    """Analysis of an uploaded audio or video file (its sound track)."""
    from lipmem_core.audio import load_audio

    if not path:
        raise LipMemError("upload an audio or video file to analyse, or choose another source")
    check_media(path, "audio")
    audio = check_speech(load_audio(path))
    phones = align_upload(audio, aligner, transcript, textgrid)
    frames = address_clip(ctx, checkpoint, audio, phones)
    return Analysis(frames, phones, audio, ctx.checkpoint_dir(checkpoint).name, Path(path).name)


def clip_analysis(ctx: AppContext, checkpoint: str | None, clip) -> Analysis:
    """Analysis of the clip just made on the Generate tab (generate_view.GeneratedClip)."""
    if clip is None:
        raise LipMemError("no clip yet: make one on the Generate tab first, or upload a clip")
    phones = clip.phones
    if phones is None:
        from analysis.align import align_pocketsphinx

        phones = align_pocketsphinx(clip.audio, clip.text, utterance=CLIP_ID).table
    # The tab's checkpoint addresses the clip's audio (the choice on screen is the one used);
    # with none chosen, the model that made the clip does.
    name = checkpoint or clip.checkpoint
    frames = address_clip(ctx, name, clip.audio, phones)
    title = f"'{clip.text}'" if clip.text else "the clip just made"
    return Analysis(frames, phones, clip.audio, ctx.checkpoint_dir(name).name, title)


def corpus_analysis(ctx: AppContext) -> Analysis:
    """The precomputed test-corpus analysis in assets/analysis/ (analysis.report's tables:
    frames.parquet and phones.csv; checkpoint.txt may name the checkpoint it was made with)."""
    root = Path(ctx.analysis_dir)
    for name in ("frames.parquet", "frames.csv"):
        path = root / name
        if path.is_file():
            frames = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
            break
    else:
        raise LipMemError(
            f"no precomputed corpus analysis in {root}: build one with `python -m analysis.report "
            "--checkpoint DIR --data DIR --split test --out assets/analysis`, or analyse a clip"
        )
    phones_path = root / "phones.csv"
    phones = pd.read_csv(phones_path, keep_default_na=False) if phones_path.is_file() else None
    info = root / "checkpoint.txt"
    checkpoint = info.read_text().strip() if info.is_file() else ""
    n_utts = frames["utterance"].nunique()
    return Analysis(frames, phones, None, checkpoint, f"test corpus ({n_utts} clips, {len(frames)} frames)")


def probe_frames(ctx: AppContext, checkpoint: str | None) -> pd.DataFrame:
    """Frame table of the probe set (synthetic sentences, exact phones) for a checkpoint; cached."""
    directory = ctx.checkpoint_dir(checkpoint)

    def build() -> pd.DataFrame:
        from analysis.addressing import corpus_addressing, join_phones
        from analysis.align import align_espeak
        from lipmem_core.data.synth.sentences import SentenceGenerator
        from lipmem_core.data.synth.speech import Voice

        sentences = SentenceGenerator(seed=0).sentences(PROBE_SENTENCES)
        aligned = [
            align_espeak(s, Voice.parse(PROBE_VOICES[i % len(PROBE_VOICES)]), utterance=f"probe{i:02d}")
            for i, s in enumerate(sentences)
        ]
        frames = corpus_addressing(
            generator(ctx, checkpoint),
            [(f"probe{i:02d}", a.audio) for i, a in enumerate(aligned)],
            progress=False,
        )
        return join_phones(frames, pd.concat([a.table for a in aligned], ignore_index=True))

    return ctx.cached(("probe", str(directory)), build)


def reference_counts(ctx: AppContext, checkpoint: str | None, level: str = "phone") -> pd.DataFrame:
    """Label x slot argmax counts used to name slots: the probe set of this checkpoint."""
    from analysis.addressing import slot_counts

    return slot_counts(probe_frames(ctx, checkpoint), by=level)


# ---- figures and tables of the Phonemes <-> slots tab ----------------------------------------
def analysis_for(
    ctx: AppContext,
    source: str,
    checkpoint: str | None,
    clip,
    upload: str | None,
    aligner: str,
    transcript: str | None,
    textgrid: str | None,
) -> Analysis:
    """The Analysis of the chosen source with the chosen checkpoint."""
    check(source, ANALYSIS_SOURCES, "source")
    if source == "clip":
        return clip_analysis(ctx, checkpoint, clip)
    if source == "upload":
        return upload_analysis(ctx, checkpoint, upload, aligner, transcript, textgrid)
    analysis = corpus_analysis(ctx)
    if checkpoint and analysis.checkpoint and checkpoint != analysis.checkpoint:
        raise LipMemError(
            f"the precomputed test corpus was addressed by {analysis.checkpoint!r} only: choose it, "
            "or compare checkpoints on a clip (the clip just made, or an upload)"
        )
    return analysis


def heatmap_parts(analysis: Analysis, statistic: str, level: str, show_all: bool = False):
    """(label x slot heatmap of the statistic, the matrix drawn). Slots are sorted by their
    dominant phone (or viseme); unused slots are left out unless `show_all`, and the title
    says how many there are."""
    from analysis.addressing import phone_slot_matrices, slot_counts, slot_order_by_label
    from analysis.plots import slot_phone_heatmap
    from analysis.slots import slot_labels

    check(statistic, STATISTICS, "statistic")
    if level not in LEVELS:
        raise LipMemError(f"unknown level {level!r}; choose one of {LEVELS}")
    matrices = phone_slot_matrices(analysis.frames, by=level)
    counts = matrices["counts"]
    used = int((counts.sum(axis=0) > 0).sum())
    n_slots = counts.shape[1]
    order = slot_order_by_label(counts)
    if not show_all:
        order = order[:used]
    matrix = matrices[statistic][order]
    info = slot_labels(slot_counts(analysis.frames, "phone"))
    unused = n_slots - used
    shown = "shown" if show_all else "hidden"
    title = (
        f"{label(STATISTICS, statistic)} by {level} · {analysis.checkpoint or 'checkpoint'} · {analysis.title}<br>"
        f"<sup>{used} slots used; {unused} of {n_slots} slots unused ({shown}); "
        f"{len(analysis.frames)} frames</sup>"
    )
    figure = slot_phone_heatmap(
        matrix, order, counts=counts, slot_info=info, title=title, order_name=f"sorted by dominant {level}"
    )
    return figure, matrix


def heatmap_figure(analysis: Analysis, statistic: str, level: str, show_all: bool = False):
    """The label x slot heatmap alone (see heatmap_parts)."""
    return heatmap_parts(analysis, statistic, level, show_all)[0]


_STAT_NAMES = {
    "pnmi": "PNMI",
    "phone_purity": "phone purity",
    "slot_purity": "slot purity",
    "viseme_purity": "viseme purity",
    "usage_entropy_norm": "slot-usage entropy (normalised)",
    "used_slots": "used slots",
}


def statistics_table(analyses: list[Analysis]) -> pd.DataFrame:
    """One row per statistic, one column per analysed checkpoint: the value on all frames and
    its 95 % bootstrap interval (analysis.addressing.bootstrap_statistics); the first rows
    give the frame count and what was resampled."""
    from analysis.addressing import bootstrap_statistics

    columns = {}
    for analysis in analyses:
        boot = bootstrap_statistics(analysis.frames)
        n_slots = int(analysis.frames.filter(regex=r"^a\d+$").shape[1])
        cells = [str(len(analysis.frames)), f"{boot['n_units'].iloc[0]} × {boot['unit'].iloc[0]}"]
        for row in boot.itertuples():
            if row.statistic == "used_slots":
                cells.append(f"{row.value:.0f} of {n_slots} [{row.low:.0f}, {row.high:.0f}]")
            else:
                # "+ 0.0" turns a rounded -0.0 into 0.0, which prints without a sign
                cells.append(f"{row.value + 0.0:.3f} [{row.low + 0.0:.3f}, {row.high + 0.0:.3f}]")
        columns[f"{analysis.checkpoint or 'checkpoint'}: value [95 % interval]"] = cells
    names = ["frames", "bootstrap resamples"] + [_STAT_NAMES[s] for s in boot["statistic"]]
    return pd.DataFrame({"statistic": names, **columns})


def statistics_note(analyses: list[Analysis]) -> str:
    """What the statistics can and cannot say for this much data."""
    analysis = analyses[0]
    n_utts = analysis.frames["utterance"].nunique()
    text = (
        f"**{len(analysis.frames)} frames** from {n_utts} clip{'s' if n_utts > 1 else ''}. "
        "Brackets: 95 % bootstrap intervals (resampling whole clips, or 0.4 s blocks within one clip). "
    )
    if n_utts < 5:
        text += (
            "**A single short clip overstates PNMI**: with few frames per phone, chance coincidences "
            "between phones and slots count as information (per-clip PNMI of the shipped model ranges "
            "about 0.25-0.60 while the whole test corpus gives 0.157). Judge a memory on a corpus."
        )
    return text


def timeline_figure(analysis: Analysis, utterance: str | None = None):
    """Waveform, phones and A_aud over time of one utterance (the clip, or the corpus' first)."""
    from analysis.addressing import slot_counts, slot_order_by_label
    from analysis.plots import utterance_timeline

    utt = utterance or str(analysis.frames["utterance"].iloc[0])
    frames = analysis.frames[analysis.frames["utterance"] == utt]
    if frames.empty:
        raise LipMemError(f"no utterance {utt!r} in this analysis")
    order = slot_order_by_label(slot_counts(analysis.frames, "phone"))  # as the heatmap's columns
    phones = analysis.phones[analysis.phones["utterance"] == utt] if analysis.phones is not None else None
    title = f"A_aud over time · {analysis.checkpoint or 'checkpoint'} · {utt}"
    return utterance_timeline(frames, phones, analysis.audio, order, title=title)


def analysis_export(analyses: list[Analysis], statistic: str, level: str, show_all: bool):
    """The Phonemes <-> slots export: per checkpoint, the heatmap and its matrix; the statistics."""
    from analysis.exports import Export, export_metadata

    first = analyses[0]
    meta = export_metadata(
        "phonemes-slots",
        " vs ".join(a.checkpoint for a in analyses),
        f"{first.title}, {len(first.frames)} frames",
        statistic=label(STATISTICS, statistic),
        level=level,
        unused_slots="shown" if show_all else "hidden",
    )
    out = Export(meta, tables={"statistics": statistics_table(analyses)})
    for a in analyses:
        figure, matrix = heatmap_parts(a, statistic, level, show_all)
        out.figures[f"heatmap_{a.checkpoint}"] = figure
        out.tables[f"matrix_{a.checkpoint}"] = matrix
    return out


def slot_phones_table(frames: pd.DataFrame, slot: int, top: int = 6) -> pd.DataFrame:
    """The phones a slot answers to: frames won, P(phone | slot), P(slot | phone)."""
    from analysis.addressing import slot_counts

    counts = slot_counts(frames, "phone")
    if slot not in counts.columns:
        raise LipMemError(f"slot {slot} does not exist: choose 0..{len(counts.columns) - 1}")
    col = counts[slot]
    won = col[col > 0].sort_values(ascending=False, kind="stable").head(top)
    per_phone = counts.sum(axis=1)
    return pd.DataFrame(
        {
            "phone": won.index.astype(str),
            "frames": won.to_numpy(),
            "P(phone | slot)": [f"{c / col.sum():.2f}" for c in won],
            "P(slot | phone)": [f"{c / per_phone[p]:.2f}" for p, c in won.items()],
        }
    )


def clip_timeline(ctx: AppContext, clip) -> object | None:
    """The Generate tab's timeline of a model-made clip (None for the oracle or a no-memory model)."""
    from analysis.addressing import clip_addressing, join_phones
    from analysis.plots import utterance_timeline

    if clip.checkpoint is None:
        return None
    model = ctx.checkpoint(clip.checkpoint).model
    if getattr(model, "memory", None) is None:
        return None
    frames = clip_addressing(model, clip.audio, CLIP_ID, cache_dir=ctx.work_root / "addressing")
    if clip.phones is not None:
        frames = join_phones(frames, clip.phones)
    title = f"A_aud over time ({clip.checkpoint})"
    return utterance_timeline(frames, clip.phones, clip.audio, title=title)
