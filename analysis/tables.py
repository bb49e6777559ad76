"""The phone table: the one shape every aligner returns and every analysis reads.

One row per phone interval of one utterance, in time order, tiling `[0, duration]`:

    utterance  str    id of the clip (file stem, or split/speaker/utt for a corpus)
    phone      str    ARPAbet without stress (`phones.normalize_phone`), SILENCE for pauses
    start      float  seconds
    end        float  seconds
    word       str    the word this phone belongs to, "" for silence
    word_index int    position of that word in the utterance, -1 for silence (keeps
                      "had had" as two words when the table is written back to a TextGrid)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from lipmem_core.errors import AlignmentError
from lipmem_core.phones import SILENCE, Interval, normalize_phone

PHONE_COLUMNS = ["utterance", "phone", "start", "end", "word", "word_index"]

# Gaps shorter than this (seconds) between consecutive intervals are closed rather than
# filled with a silence row: they are rounding noise of 10 ms aligner frames.
_GAP_TOLERANCE = 1e-3


def phone_table(
    phones: Sequence[Interval],
    words: Sequence[Interval] = (),
    utterance: str = "utt",
    duration: float | None = None,
) -> pd.DataFrame:
    """Build a phone table from phone and word intervals (labels normalised, gaps -> silence).

    Each phone takes the word whose interval contains its midpoint. With `duration`, the
    table is extended (or clipped) so the intervals tile exactly `[0, duration]`.
    """
    rows: list[dict] = []
    cursor = 0.0
    for iv in sorted(phones, key=lambda iv: iv.start):
        start, end = max(float(iv.start), 0.0), float(iv.end)
        if duration is not None:
            end = min(end, duration)
        if end <= start:
            continue
        if start - cursor > _GAP_TOLERANCE:
            rows.append(_row(utterance, SILENCE, cursor, start))
        elif rows:
            start = cursor  # close tiny gaps and overlaps so the tiling is exact
        rows.append(_row(utterance, normalize_phone(iv.label), start, end))
        cursor = end
    end_time = duration if duration is not None else cursor
    if end_time - cursor > _GAP_TOLERANCE or not rows:
        rows.append(_row(utterance, SILENCE, cursor, end_time))
    elif rows:
        rows[-1]["end"] = end_time
    table = pd.DataFrame(rows, columns=PHONE_COLUMNS)
    table = _merge_silences(table)
    return attach_words(table, words)


def attach_words(table: pd.DataFrame, words: Iterable[Interval]) -> pd.DataFrame:
    """Fill `word`/`word_index` from word intervals, by each phone's midpoint; silence gets none."""
    table = table.copy()
    table["word"] = ""
    table["word_index"] = -1
    spoken = [w for w in sorted(words, key=lambda w: w.start) if w.label.strip()]
    if not spoken or table.empty:
        return table
    mid = ((table["start"] + table["end"]) / 2).to_numpy()
    speech = (table["phone"] != SILENCE).to_numpy()
    for index, w in enumerate(spoken):
        inside = (mid >= w.start) & (mid < w.end) & speech
        table.loc[inside, "word"] = w.label.strip().lower()
        table.loc[inside, "word_index"] = index
    return table


def word_intervals(table: pd.DataFrame) -> list[Interval]:
    """The word intervals of one utterance's phone table (spoken words only, in order)."""
    spoken = table[table["word_index"] >= 0]
    out: list[Interval] = []
    for _, group in spoken.groupby("word_index", sort=True):
        out.append(Interval(float(group["start"].min()), float(group["end"].max()), group["word"].iloc[0]))
    return out


def check_phone_table(table: pd.DataFrame) -> None:
    """Raise AlignmentError unless `table` has the phone-table columns and sane intervals."""
    missing = [c for c in PHONE_COLUMNS if c not in table.columns]
    if missing:
        raise AlignmentError(
            f"phone table lacks columns {missing}; build it with analysis.tables.phone_table"
        )
    bad = table[table["end"] <= table["start"]]
    if len(bad):
        first = bad.iloc[0]
        raise AlignmentError(
            f"phone interval {first['phone']!r} of {first['utterance']!r} ends at {first['end']:.3f} s, "
            f"not after its start {first['start']:.3f} s"
        )


def _row(utterance: str, phone: str, start: float, end: float) -> dict:
    return {"utterance": utterance, "phone": phone, "start": start, "end": end, "word": "", "word_index": -1}


def _merge_silences(table: pd.DataFrame) -> pd.DataFrame:
    """Join runs of consecutive silence rows (aligners emit sil + sp + sil around pauses)."""
    if table.empty:
        return table
    is_sil = table["phone"] == SILENCE
    run_start = ~(is_sil & is_sil.shift(fill_value=False))
    run_id = run_start.cumsum()
    merged = table.groupby(run_id, sort=True).agg(
        utterance=("utterance", "first"),
        phone=("phone", "first"),
        start=("start", "first"),
        end=("end", "last"),
        word=("word", "first"),
        word_index=("word_index", "first"),
    )
    return merged.reset_index(drop=True)[PHONE_COLUMNS]
