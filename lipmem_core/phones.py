"""The one phone set of LipMem: ARPAbet (CMUdict, PocketSphinx, MFA english_us_arpa) + silence.

Everything that labels speech (espeak-ng's phoneme events, PocketSphinx alignments, MFA
TextGrids) is normalised to these labels, so memory-slot statistics, mouth targets and
evaluation all speak one language. `PHONES` has a fixed order: it is the column order of
every phone x slot table.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from lipmem_core.errors import UnknownPhoneError

ARPABET: tuple[str, ...] = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY",
    "F", "G", "HH", "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P",
    "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH",
)  # fmt: skip
SILENCE = "sil"
PHONES: tuple[str, ...] = ARPABET + (SILENCE,)

# Visual classes (docs/SYNTHTALK.md "From phones to mouth shapes"), in a fixed order.
VISEMES: dict[str, tuple[str, ...]] = {
    "bilabial": ("P", "B", "M"),
    "labiodental": ("F", "V"),
    "dental": ("TH", "DH"),
    "alveolar": ("T", "D", "N", "L", "S", "Z"),
    "postalveolar": ("SH", "ZH", "CH", "JH"),
    "velar": ("K", "G", "NG", "HH"),
    "rounded": ("W", "UW", "UH", "OW", "R", "ER"),
    "spread": ("IY", "IH", "EY", "Y"),
    "open": ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "OY"),
    "silence": (SILENCE,),
}
_VISEME_OF = {p: v for v, members in VISEMES.items() for p in members}
_ARPABET_SET = frozenset(ARPABET)
# Labels that aligners and TextGrids use for silence, short pauses and noise.
_SILENCE_LABELS = frozenset({"", "SIL", "SP", "SPN", "<EPS>", "<SIL>", "SILENCE"})


class Interval(NamedTuple):
    """A labelled time span [start, end) in seconds (a phone or a word)."""

    start: float
    end: float
    label: str


def viseme_of(phone: str) -> str:
    """Viseme class of a phone label (normalised first, so "AH0" and "sp" work)."""
    return _VISEME_OF[normalize_phone(phone)]


def normalize_phone(label: str) -> str:
    """Map an aligner's phone label to `PHONES`: strip stress digits, upper-case.

    "", "sil", "sp", "spn", "<eps>" (any case) become "sil". Anything else that is not
    ARPAbet raises UnknownPhoneError.
    """
    upper = label.strip().upper()
    if upper in _SILENCE_LABELS:
        return SILENCE
    bare = upper.rstrip("012")
    if bare in _ARPABET_SET:
        return bare
    raise UnknownPhoneError(
        f"phone label {label!r} is not ARPAbet (expected one of {' '.join(ARPABET)} or a "
        "silence label such as 'sil'/'sp'/''); convert the alignment to ARPAbet phones, "
        "e.g. align with an english_us_arpa model"
    )


# espeak-ng English phoneme mnemonics (phsource/ph_english* and the base tables they
# inherit) -> ARPAbet, written in CMUdict's style so espeak labels agree with PocketSphinx
# and MFA. A mnemonic that is one vowel + r (r-coloured, "near", "square") maps to two
# phones; syllabic consonants map to schwa + consonant as CMUdict writes them.
_ESPEAK_TO_ARPABET: dict[str, tuple[str, ...]] = {
    # stops, affricates
    "p": ("P",), "b": ("B",), "t": ("T",), "d": ("D",), "k": ("K",), "g": ("G",),
    "t#": ("T",),  # flapped t ("butter")
    "t2": ("T",), "d#": ("D",), "t[": ("T",), "d[": ("D",),
    "?": ("T",),  # glottal stop, only ever a /t/ in English ("button")
    "tS": ("CH",), "dZ": ("JH",), "tS;": ("CH",), "dZ;": ("JH",),
    "ts": ("T", "S"), "dz": ("D", "Z"),
    "p-": ("P",), "t-": ("T",), "k-": ("K",), "ph": ("P",), "kh": ("K",), "k#": ("K",),
    "c": ("K",), "c2": ("K",),
    # fricatives
    "f": ("F",), "v": ("V",), "v#": ("V",), "T": ("TH",), "D": ("DH",),
    "s": ("S",), "z": ("Z",), "s2": ("S",), "z#": ("Z",), "z/2": ("Z",),
    "S": ("SH",), "Z": ("ZH",), "S;": ("SH",), "Z;": ("ZH",),
    "h": ("HH",), "x": ("K",),  # "loch": no ARPAbet velar fricative; CMUdict writes K
    "C": ("HH",),
    # nasals, approximants
    "m": ("M",), "n": ("N",), "N": ("NG",), "n^": ("N", "Y"), "J": ("N", "Y"),
    "m-": ("AH", "M"), "n-": ("AH", "N"), "N-": ("AH", "NG"),  # syllabic
    "l": ("L",), "l/": ("L",), "l/2": ("L",), "l/3": ("L",), "L": ("L",), "l#": ("L",),
    "l-": ("AH", "L"), "@L": ("AH", "L"),  # syllabic l ("bottle")
    "r": ("R",), "r/": ("R",), "R": ("R",), "R2": ("R",),
    "j": ("Y",), "w": ("W",), "w#": ("W",),  # w# = "wh" (Scottish hw)
    # vowels: schwas and r-coloured schwa
    "@": ("AH",), "@2": ("AH",), "@5": ("AH",), "@-": ("AH",), "@#": ("AH",),
    "a#": ("AH",), "a#2": ("AH",), "a2": ("AH",),
    "3": ("ER",), "3:": ("ER",), "VR": ("ER",),
    # monophthongs
    "a": ("AE",), "aa": ("AE",), "a/": ("AE",), "A:": ("AA",), "A#": ("AA",), "A~": ("AA",),
    "E": ("EH",), "E#": ("EH",), "E2": ("EH",), "e#": ("EH",),
    "I": ("IH",), "I#": ("IH",), "I2": ("IH",), "I2#": ("IH",),
    "i": ("IY",), "i:": ("IY",), "e:": ("EY",),
    "0": ("AA",), "0#": ("AA",), "02": ("AO",), "O": ("AO",), "O:": ("AO",), "O2": ("AO",),
    "O~": ("AO",), "o:": ("OW",),
    "V": ("AH",), "U": ("UH",), "u:": ("UW",),
    # diphthongs
    "aI": ("AY",), "aI2": ("AY",), "eI": ("EY",), "OI": ("OY",), "aU": ("AW",),
    "oU": ("OW",), "oU#": ("OW",),
    # r-coloured vowels and vowel + schwa sequences
    "A@": ("AA", "R"), "O@": ("AO", "R"), "o@": ("AO", "R"), "e@": ("EH", "R"),
    "i@": ("IY", "AH"), "i@3": ("IH", "R"), "U@": ("UH", "R"), "IR": ("IH", "R"),
    "aI@": ("AY", "AH"), "aI3": ("AY", "ER"), "aU@": ("AW", "ER"),
    # marks with no sound of their own: ";" is a syllable-boundary glide ("re;active"),
    # "r-" the linking r after an r-coloured schwa ("cove3r-ing"), which CMUdict folds into
    # ER. Their time goes to the previous phone.
    ";": (), "r-": (),
    # pauses
    "_": (SILENCE,), "_:": (SILENCE,), "_!": (SILENCE,), "_|": (SILENCE,),
    "_::": (SILENCE,), "_;_": (SILENCE,), "_^_": (SILENCE,), "||": (SILENCE,),
}  # fmt: skip

# Stress and syllabicity marks that espeak writes before a phoneme name in events.
_PREFIX = re.compile(r"^[',%=]+")


def espeak_to_arpabet(mnemonic: str) -> tuple[str, ...]:
    """ARPAbet phones for one espeak-ng phoneme mnemonic.

    Usually one phone; two for r-coloured vowels and syllabic consonants; ("sil",) for a
    pause; () for a mark with no sound of its own (its time belongs to the previous phone).

    Stress marks (`'`, `,`, `%`, `=`) before the name are dropped; a trailing length mark
    `:` that is not part of a known name is dropped too. Raises UnknownPhoneError for a
    mnemonic with no mapping.
    """
    name = _PREFIX.sub("", mnemonic)
    if name in _ESPEAK_TO_ARPABET:
        return _ESPEAK_TO_ARPABET[name]
    if name.endswith(":") and name[:-1] in _ESPEAK_TO_ARPABET:
        return _ESPEAK_TO_ARPABET[name[:-1]]
    raise UnknownPhoneError(
        f"espeak-ng phoneme {mnemonic!r} has no ARPAbet mapping; add it to "
        "lipmem_core.phones._ESPEAK_TO_ARPABET (the espeak phoneme sources list its sound)"
    )
