"""The phone set: ARPAbet order, visemes, label normalisation, espeak mnemonic mapping."""

from __future__ import annotations

import pytest

from lipmem_core.errors import UnknownPhoneError
from lipmem_core.phones import (
    ARPABET,
    PHONES,
    SILENCE,
    VISEMES,
    Interval,
    espeak_to_arpabet,
    normalize_phone,
    viseme_of,
)


def test_phone_set_is_cmudict_arpabet_plus_silence():
    assert len(ARPABET) == 39 and len(set(ARPABET)) == 39
    assert list(ARPABET) == sorted(ARPABET)
    assert PHONES == ARPABET + ("sil",) and SILENCE == "sil"


def test_visemes_partition_the_phone_set_in_the_documented_order():
    members = [p for ps in VISEMES.values() for p in ps]
    assert sorted(members) == sorted(PHONES) and len(members) == len(PHONES)
    assert list(VISEMES) == [
        "bilabial", "labiodental", "dental", "alveolar", "postalveolar",
        "velar", "rounded", "spread", "open", "silence",
    ]  # fmt: skip
    assert viseme_of("P") == "bilabial" and viseme_of("AA1") == "open"
    assert viseme_of("sp") == "silence" and viseme_of("ER0") == "rounded"


@pytest.mark.parametrize(
    ("label", "expected"),
    [("AH0", "AH"), ("ah1", "AH"), ("IY2", "IY"), ("NG", "NG"), (" zh ", "ZH"), ("", "sil"),
     ("sil", "sil"), ("SIL", "sil"), ("sp", "sil"), ("spn", "sil"), ("<eps>", "sil")],
)  # fmt: skip
def test_normalize_phone(label, expected):
    assert normalize_phone(label) == expected


@pytest.mark.parametrize("label", ["AX", "Q", "DX", "a", "AH3", "silence?", "@"])
def test_normalize_phone_rejects_non_arpabet(label):
    with pytest.raises(UnknownPhoneError, match="ARPAbet"):
        normalize_phone(label)


def test_interval_is_a_named_tuple_in_seconds():
    iv = Interval(0.1, 0.25, "AH")
    assert iv.end - iv.start == pytest.approx(0.15) and iv.label == "AH"
    assert tuple(iv) == (0.1, 0.25, "AH")


@pytest.mark.parametrize(
    ("mnemonic", "expected"),
    [
        ("p", ("P",)), ("D", ("DH",)), ("T", ("TH",)), ("N", ("NG",)), ("tS", ("CH",)),
        ("dZ", ("JH",)), ("S", ("SH",)), ("Z", ("ZH",)), ("j", ("Y",)), ("h", ("HH",)),
        ("t#", ("T",)), ("?", ("T",)),  # flap and glottal stop are /t/
        ("'oU", ("OW",)), (",aI", ("AY",)), ("'3:", ("ER",)), ("@2", ("AH",)),
        ("'V", ("AH",)), ("'0", ("AA",)), ("'O:", ("AO",)), ("i", ("IY",)),
        ("@L", ("AH", "L")), ("n-", ("AH", "N")),  # syllabic consonants
        ("'A@", ("AA", "R")), ("'o@", ("AO", "R")), ("'e@", ("EH", "R")),  # r-coloured
        ("'i@3", ("IH", "R")), ("'aI3", ("AY", "ER")),
        ("_", ("sil",)), ("_:", ("sil",)), ("_!", ("sil",)),
        (";", ()), ("r-", ()),
    ],
)  # fmt: skip
def test_espeak_to_arpabet_known_sounds(mnemonic, expected):
    assert espeak_to_arpabet(mnemonic) == expected


def test_espeak_mapping_only_yields_phone_set_members():
    from lipmem_core.phones import _ESPEAK_TO_ARPABET

    for mnemonic, phones in _ESPEAK_TO_ARPABET.items():
        assert set(phones) <= set(PHONES), mnemonic
        assert len(phones) <= 2, mnemonic
    covered = {p for phones in _ESPEAK_TO_ARPABET.values() for p in phones}
    assert covered == set(PHONES), set(PHONES) - covered


@pytest.mark.parametrize("mnemonic", ["Q", "y", "'y", "@@@", "", "'"])
def test_espeak_to_arpabet_rejects_unmapped(mnemonic):
    with pytest.raises(UnknownPhoneError, match="no ARPAbet mapping"):
        espeak_to_arpabet(mnemonic)
