"""TextGrid import/export, accepting Montreal Forced Aligner output as MFA writes it.

MFA (english_us_arpa) writes one TextGrid per utterance with interval tiers `words` and
`phones` (or `<speaker> - words` / `<speaker> - phones` when a corpus has speakers), ARPAbet
phones with stress digits (`AH0`), empty intervals for silence and, in older versions,
`sil`/`sp` pauses and `spn` for words it could not pronounce. All of these read into the
phone table of `analysis.tables`; writing produces the same MFA shape (tiers `words` and
`phones`, ARPAbet, "" for silence), which is also what the SynthTalk corpus stores.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from praatio import textgrid

from lipmem_core.data import corpus
from lipmem_core.errors import AlignmentError, UnknownPhoneError
from lipmem_core.phones import Interval

from .tables import check_phone_table, phone_table, word_intervals

# Word-tier labels that mark a pause rather than a word (MFA writes "", older versions "sil"/"sp").
# Phone labels go through phones.normalize_phone, which also maps MFA's "spn" (spoken noise: an
# out-of-vocabulary word, audible but with no phone identity) to silence.
_PAUSE_WORDS = frozenset({"", "sil", "sp", "<eps>", "<sil>"})


def read_textgrid(path: str | Path, utterance: str | None = None, speaker: str | None = None) -> pd.DataFrame:
    """Read a TextGrid (Praat long/short text, or praatio JSON) into a phone table.

    Looks for a tier named `phones` or `<speaker> - phones` (case-insensitive) and the
    matching words tier if present. With several speakers in one file, pass `speaker`.
    """
    path = Path(path)
    if not path.is_file():
        raise AlignmentError(f"TextGrid {path} does not exist")
    try:
        tg = textgrid.openTextgrid(str(path), includeEmptyIntervals=True, reportingMode="silence")
    except Exception as exc:  # praatio raises many types (ValueError, IndexError, its own) on bad files
        raise AlignmentError(
            f"{path} is not a readable TextGrid ({type(exc).__name__}: {exc}): save it again from "
            "Praat or the aligner (TextGrid text format), or choose PocketSphinx alignment"
        ) from exc
    phones_name, words_name = _pick_tiers(tg.tierNames, speaker, path)
    phones_tier = tg.getTier(phones_name)
    if not isinstance(phones_tier, textgrid.IntervalTier):
        raise AlignmentError(f"tier {phones_name!r} of {path} is a point tier; phones need an interval tier")
    phones = [Interval(e.start, e.end, e.label) for e in phones_tier.entries]
    words: list[Interval] = []
    if words_name is not None:
        words = [
            Interval(e.start, e.end, e.label)
            for e in tg.getTier(words_name).entries
            if e.label.strip().lower() not in _PAUSE_WORDS
        ]
    try:
        return phone_table(phones, words, utterance or path.stem, duration=float(tg.maxTimestamp))
    except UnknownPhoneError as exc:
        raise AlignmentError(f"{path}, tier {phones_name!r}: {exc}") from exc


def write_textgrid(table: pd.DataFrame, path: str | Path, duration: float | None = None) -> Path:
    """Write one utterance's phone table as an MFA-style TextGrid (tiers `words`, `phones`).

    Silence is written as empty intervals, as MFA does. `duration` defaults to the last end.
    Times are rounded to the microsecond.
    """
    check_phone_table(table)
    if table["utterance"].nunique() > 1:
        raise AlignmentError("write_textgrid writes one utterance; filter the table by 'utterance' first")
    end = _us(duration if duration is not None else table["end"].max())
    phones = [Interval(_us(r.start), _us(r.end), r.phone) for r in table.itertuples()]
    words = [Interval(_us(w.start), _us(w.end), w.label) for w in word_intervals(table)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    corpus.write_textgrid(path, phones, words, end)  # the corpus's writer: one MFA shape
    return path


def _us(seconds: float) -> float:
    """Seconds rounded to the microsecond: sums of frame times (0.37000000000000005) are float
    noise, not precision, and a TextGrid should say 0.37."""
    return round(float(seconds), 6)


def _pick_tiers(names: list[str], speaker: str | None, path: Path) -> tuple[str, str | None]:
    """(phones tier, words tier or None) for `speaker`, MFA naming: `phones` or `<spk> - phones`."""
    by_speaker: dict[str, dict[str, str]] = {}
    for name in names:
        spk, _, kind = name.rpartition(" - ") if " - " in name else ("", "", name)
        kind = kind.strip().lower()
        if kind in ("phones", "words"):
            by_speaker.setdefault(spk.strip(), {})[kind] = name
    with_phones = {spk: tiers for spk, tiers in by_speaker.items() if "phones" in tiers}
    if not with_phones:
        raise AlignmentError(f"{path} has no 'phones' tier (tiers: {names}); expected MFA-style output")
    if speaker is not None:
        if speaker not in with_phones:
            raise AlignmentError(
                f"{path} has no phones tier for speaker {speaker!r}; speakers: {sorted(with_phones)}"
            )
        chosen = with_phones[speaker]
    elif len(with_phones) == 1:
        chosen = next(iter(with_phones.values()))
    else:
        raise AlignmentError(
            f"{path} holds several speakers {sorted(with_phones)}; pass speaker=... to pick one"
        )
    return chosen["phones"], chosen.get("words")
