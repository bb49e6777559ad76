"""Sentence generator: deterministic, varied, in-dictionary, covering every ARPAbet phone."""

from __future__ import annotations

import re

from lipmem_core.data.synth.sentences import (
    ADJECTIVES,
    ADVERB_DEGREE,
    ADVERBS,
    DETERMINERS,
    NAMES,
    NOUNS,
    NUMBERS,
    PLACES,
    PREPOSITIONS,
    VERBS,
    SentenceGenerator,
    common_words,
    load_cmudict,
    sentence_phones,
)
from lipmem_core.phones import ARPABET


def test_cmudict_loads_with_arpabet_phones():
    lex = load_cmudict()
    assert len(lex) > 100_000
    assert lex["cat"] == ("K", "AE", "T")
    assert lex["measure"] == ("M", "EH", "ZH", "ER")
    assert all(re.fullmatch("[a-z]+", w) for w in list(lex)[:5000])


def test_template_vocabulary_is_all_in_cmudict():
    lex = load_cmudict()
    words = [*NOUNS, *ADJECTIVES, *ADVERBS, *PREPOSITIONS, *NAMES, *PLACES, *NUMBERS]
    words += [*DETERMINERS, *ADVERB_DEGREE, *(v for pair in VERBS for v in pair)]
    assert [w for w in words if w not in lex] == []


def test_common_words_are_frequent_and_clean():
    words = common_words(3000)
    assert len(words) == 3000 and len(set(words)) == 3000
    assert {"people", "think", "house"} <= set(words[:1000])
    assert "porn" not in words and "usa" not in words and "zygote" not in words


def test_same_seed_same_sentences_different_seed_differs():
    a = SentenceGenerator(7).sentences(20)
    assert a == SentenceGenerator(7).sentences(20)
    b = SentenceGenerator(8).sentences(20)
    assert a != b


def test_sentences_are_varied_and_every_word_is_in_the_dictionary():
    lex = load_cmudict()
    sents = SentenceGenerator(0).sentences(200)
    assert len(set(sents)) >= 195  # practically no repeats
    words = [w for s in sents for w in re.findall("[a-z]+", s.lower())]
    assert len(set(words)) > 400
    assert [w for w in words if w not in lex] == []
    assert all(s[0].isupper() and s[-1] in ".?" for s in sents)
    assert all(4 <= len(s.split()) <= 14 for s in sents)


def test_a_modest_number_of_sentences_covers_all_39_phones():
    for seed in range(5):
        phones = {p for s in SentenceGenerator(seed).sentences(40) for p in sentence_phones(s)}
        assert phones == set(ARPABET), (seed, set(ARPABET) - phones)
