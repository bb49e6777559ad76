"""Varied English sentences for SynthTalk, deterministic by seed.

Two kinds, mixed: grammatical template sentences over a small hand-picked vocabulary (so the
corpus sounds like speech, with natural function words and prosody), and carrier phrases
("Say the word X again") over the common words of CMUdict, which bring lexical variety and
steer towards the phones seen least so far, so that a few dozen sentences cover all 39
ARPAbet phones. Every word is in CMUdict (shipped inside the pocketsphinx wheel), so
PocketSphinx can align the speech without out-of-vocabulary words. Word frequency comes
from the unigram log-probabilities of PocketSphinx's bundled English language model.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from lipmem_core.phones import ARPABET, normalize_phone


def _split(words: str) -> tuple[str, ...]:
    return tuple(words.split())


NOUNS = _split("""
apple garden window river doctor teacher kitchen letter basket village bottle picture
mountain pocket engine ladder orange pillow rabbit shadow castle blanket camera ticket
bridge candle forest jacket mirror pencil planet rocket saddle table wagon zebra anchor
bicycle button carpet cousin dragon feather guitar hammer island lemon monkey needle
ocean parrot puzzle sandwich statue tiger tunnel violin whistle beach boat chair cheese
clock cloud coin crown dream fish flag fox glass goat horse house key king lamp leaf
lion moon mouth nose queen ring road rope school sheep ship shoe song spoon star stone
storm sugar sun thumb toy train tree truck voice watch wheel wolf judge giraffe treasure
garage pleasure television measure cowboy oyster
""")
ADJECTIVES = _split("""
big small quiet noisy happy sleepy yellow purple golden silver heavy gentle clever
brave ancient modern tiny huge bright dark shiny rough smooth warm cold sweet bitter
busy lazy strange famous hungry thirsty friendly careful early narrow wide fresh old
young green red blue orange crooked soft loud lovely usual
""")
# (base, past) pairs: templates need both tenses.
VERBS: list[tuple[str, str]] = [
    (p.split("/")[0], p.split("/")[1])
    for p in _split(
        """
carry/carried paint/painted push/pushed pull/pulled wash/washed fix/fixed move/moved
watch/watched open/opened close/closed clean/cleaned follow/followed visit/visited
borrow/borrowed measure/measured enjoy/enjoyed share/shared check/checked lift/lifted
find/found bring/brought buy/bought catch/caught hold/held keep/kept leave/left
throw/threw draw/drew take/took make/made see/saw hear/heard choose/chose hide/hid
sell/sold build/built give/gave forget/forgot drop/dropped hug/hugged
"""
    )
]
ADVERBS = _split("""
quickly slowly quietly loudly gently happily carefully early today tomorrow yesterday
again together outside upstairs badly easily
""")
PREPOSITIONS = _split("near under behind beside above below inside across beyond toward with")
NAMES = _split("""
anna ben carla david emma frank grace henry isabel jack julia kevin laura michael nora
oliver paul rachel sam sophie thomas victor william zoe joseph charlotte george lucy
""")
PLACES = _split("""
london paris boston chicago texas china egypt japan canada brazil india mexico
""")
NUMBERS = _split("two three four five six seven eight nine ten twelve twenty")
DETERMINERS = _split("the a this that my your our their every one")

_TEMPLATES = (
    "{Det} {adj} {noun} {past} {det} {noun}.",
    "{Name} {past} {det} {adj} {noun} {prep} the {noun}.",
    "Please {verb} the {noun} {adverb}.",
    "Did {name} {verb} the {adj} {noun} {prep} the {noun}?",
    "We will {verb} {det} {noun} in {place} {adverb}.",
    "{Name} and {name} {past} {number} {adj} things.",
    "Why did the {noun} {verb} the {noun} {adverb}?",
    "I think {det} {noun} is {adv_deg} {adj}.",
    "{Det} {noun} {prep} the {noun} looks {adj} {adverb}.",
    "After the {noun}, {name} {past} {det} {noun} and {past} {det} {noun}.",
    "Can you {verb} {det} {adj} {noun} for {name}?",
    "{Name} never {past} the {noun} in {place}.",
)
_CARRIERS = (
    "Say the word {w} again.",
    "I will say {w} and {w} now.",
    "{W}, {w} and {w} are common words.",
    "Now say {w} {prep} the {noun}.",
    "The next word is {w}.",
    "{W} sounds like {w} to {name}.",
)
ADVERB_DEGREE = _split("very quite rather really so too")

# Kept out of the carrier lexicon (the language model is trained on web text).
_BLOCKED = frozenset(
    _split(
        """
    porn sex sexy sexual fuck fucking fucked shit damn hell ass bitch crap dick gay rape
    kill killed killing murder drug drugs gun guns dead death die suicide nazi racist
    terrorist terrorists terror bomb naked
    """
    )
)
_WORD = re.compile(r"[a-z]+")


def _model_dir() -> Path:
    from pocketsphinx import get_model_path

    return Path(get_model_path()) / "en-us"


@lru_cache(maxsize=1)
def load_cmudict() -> dict[str, tuple[str, ...]]:
    """CMUdict as shipped by pocketsphinx: lower-case word -> ARPAbet phones (first
    pronunciation, stress removed). Only plain alphabetic words."""
    lexicon: dict[str, tuple[str, ...]] = {}
    with open(_model_dir() / "cmudict-en-us.dict", encoding="utf-8") as f:
        for line in f:
            word, *phones = line.split()
            if _WORD.fullmatch(word) and word not in lexicon:
                lexicon[word] = tuple(normalize_phone(p) for p in phones)
    return lexicon


@lru_cache(maxsize=4)
def common_words(n: int = 6000) -> tuple[str, ...]:
    """The `n` most frequent pronounceable CMUdict words (by the bundled LM's unigram
    probability), most frequent first: 3+ letters, no acronyms (letter-spelled words have
    far more phones than letters), nothing from a small block list."""
    import pocketsphinx

    pocketsphinx.set_loglevel("FATAL")
    lm = pocketsphinx.NGramModel.readfile(str(_model_dir() / "en-us.lm.bin"))
    lexicon = load_cmudict()
    ok = [
        w for w, phones in lexicon.items() if len(w) >= 3 and len(phones) <= len(w) + 1 and w not in _BLOCKED
    ]
    scores = np.array([lm.prob([w]) for w in ok], dtype=np.float64)
    order = np.argsort(-scores, kind="stable")[:n]
    return tuple(ok[i] for i in order)


class SentenceGenerator:
    """English sentences deterministic by `seed`: `sentence()`, `sentences(n)`.

    `carrier_share` of the sentences are carrier phrases whose slot words are drawn from
    `common_words()`, half of them chosen to contain the phone used least so far.
    """

    def __init__(self, seed: int = 0, carrier_share: float = 0.35, vocabulary: int = 6000) -> None:
        self.rng = np.random.default_rng(seed)
        self.carrier_share = carrier_share
        self.lexicon = load_cmudict()
        self.words = common_words(vocabulary)
        self._phone_counts = dict.fromkeys(ARPABET, 0)
        self._by_phone = {p: [w for w in self.words if p in self.lexicon[w]] for p in ARPABET}

    def _pick(self, options: list[str] | tuple[str, ...]) -> str:
        return str(options[int(self.rng.integers(len(options)))])

    def _carrier_word(self) -> str:
        if self.rng.random() < 0.5:
            rarest = min(ARPABET, key=lambda p: (self._phone_counts[p], p))
            if self._by_phone[rarest]:
                return self._pick(self._by_phone[rarest])
        return self._pick(self.words)

    def _fill(self, template: str) -> str:
        fillers = {
            "det": lambda: self._pick(DETERMINERS),
            "adj": lambda: self._pick(ADJECTIVES),
            "noun": lambda: self._pick(NOUNS),
            "verb": lambda: VERBS[int(self.rng.integers(len(VERBS)))][0],
            "past": lambda: VERBS[int(self.rng.integers(len(VERBS)))][1],
            "adverb": lambda: self._pick(ADVERBS),
            "adv_deg": lambda: self._pick(ADVERB_DEGREE),
            "prep": lambda: self._pick(PREPOSITIONS),
            "name": lambda: self._pick(NAMES),
            "place": lambda: self._pick(PLACES),
            "number": lambda: self._pick(NUMBERS),
            "w": self._carrier_word,
        }

        def replace(m: re.Match[str]) -> str:
            key = m.group(1)
            word = fillers[key.lower()]()
            if key in ("name", "Name", "place"):
                word = word.capitalize()
            elif key[0].isupper():
                word = word[0].upper() + word[1:]
            return word

        return re.sub(r"\{(\w+)\}", replace, template)

    def sentence(self) -> str:
        """One sentence; updates the phone counts that steer later carrier words."""
        carrier = self.rng.random() < self.carrier_share
        text = self._fill(self._pick(_CARRIERS if carrier else _TEMPLATES))
        for word in _WORD.findall(text.lower()):
            for p in self.lexicon.get(word, ()):
                if p in self._phone_counts:
                    self._phone_counts[p] += 1
        # "a" before a vowel sound reads badly: use "an".
        return re.sub(r"\b([Aa]) (?=[aeiouAEIOU])", r"\1n ", text)

    def sentences(self, n: int) -> list[str]:
        return [self.sentence() for _ in range(n)]


def sentence_phones(text: str) -> list[str]:
    """CMUdict phones of a sentence's words (words missing from CMUdict are skipped)."""
    lexicon = load_cmudict()
    return [p for w in _WORD.findall(text.lower()) for p in lexicon.get(w, ())]
