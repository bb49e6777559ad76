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


# Every mnemonic (with stress prefixes) that espeak-ng 1.52 (espeakng-loader 0.2.4) emitted
# as phoneme events for 45,000 CMUdict words in each of the 8 English voices.
_OBSERVED = """
'0 '3: '@ 'A: 'A@ 'A~ 'E 'I 'I2 'IR 'O 'O2 'O: 'O@ 'OI 'U 'U@ 'V 'VR 'a 'aI 'aI2 'aI3 'aI@
'aU 'aa 'e@ 'eI 'i 'i: 'i@ 'i@3 'o@ 'oU 'u: ,0 ,3: ,A: ,A@ ,E ,I ,I2 ,IR ,O2 ,O: ,O@ ,OI ,U
,U@ ,V ,VR ,a ,aI ,aI2 ,aI3 ,aI@ ,aU ,aa ,e@ ,eI ,i ,i: ,i@ ,i@3 ,n- ,o@ ,oU ,u: 0 3 3: ; ?
@ @- @2 @5 @L A: A@ A~ D E I I# I2 IR N O O2 O: O@ OI O~ S T U U@ V VR Z _ _! _: _| a a# aI
aI2 aI3 aI@ aU aa b d dZ e@ eI f g h i i: i@ i@3 j k l l# m n n- o@ oU p r r- s t t# t2 tS
t[ u: v w w# x z
"""
OBSERVED_ESPEAK_MNEMONICS = tuple(_OBSERVED.split())


def test_every_observed_espeak_mnemonic_maps():
    assert len(OBSERVED_ESPEAK_MNEMONICS) == 149
    for mnemonic in OBSERVED_ESPEAK_MNEMONICS:
        assert set(espeak_to_arpabet(mnemonic)) <= set(PHONES), mnemonic
