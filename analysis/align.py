"""Aligners: speech (+ transcript) -> the phone table of `analysis.tables`.

Backends, all speaking ARPAbet without stress:
- `espeak`: synthesise the text with espeak-ng; phone times are exact (espeak's own events).
- `pocketsphinx`: forced alignment of any 16 kHz speech with its transcript (PocketSphinx
  5 ships an English acoustic model and CMUdict). Without a transcript the speech is first
  recognised, then aligned to the recognised text, which is returned.
- `mfa`: Montreal Forced Aligner, when an `mfa` executable is on PATH. MFA does not run on
  the LipMem machine (it needs Kaldi from conda-forge and downloaded models). Elsewhere:
  `conda install -c conda-forge montreal-forced-aligner`, `mfa model download acoustic
  english_us_arpa`, `mfa model download dictionary english_us_arpa`, then
  `mfa align CORPUS english_us_arpa english_us_arpa OUT` over a folder of `utt.wav` +
  `utt.lab` (transcript) pairs, and bring the TextGrids from OUT: `read_textgrid` accepts them
  as MFA writes them.

CLI: `python -m analysis.align --audio FILE [--text "..."] [--backend ...] --out FILE.TextGrid`.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from lipmem_core import cli
from lipmem_core.config import SAMPLE_RATE
from lipmem_core.errors import AlignmentError, LipMemError
from lipmem_core.limits import MAX_ALIGN_SECONDS, MIN_SPEECH_PEAK
from lipmem_core.phones import SILENCE, Interval

from .tables import phone_table
from .textgrids import read_textgrid, write_textgrid

BACKENDS = ("espeak", "pocketsphinx", "mfa")
# PocketSphinx needs silence at both ends of an utterance, or alignment fails with "Final
# result does not match the grammar" (espeak audio starts on the first phone).
_PAD_SECONDS = 0.3
_PAD_NOISE = 1e-4  # std of the padding noise: audible silence, not digital zero
_PS_FRAME_RATE = 100  # PocketSphinx frames per second (its default -frate)


@dataclass
class Alignment:
    """An aligner's result: the phone table, the transcript used, and the 16 kHz audio."""

    table: pd.DataFrame
    text: str
    audio: np.ndarray  # (n_samples,) float32 at SAMPLE_RATE


def align_espeak(text: str, voice=None, utterance: str = "utt") -> Alignment:
    """Synthesise `text` with espeak-ng (`speech.synthesize`) and return its exact alignment."""
    from lipmem_core.data.synth.speech import Voice, synthesize

    utt = synthesize(text, voice if voice is not None else Voice())
    duration = len(utt.audio) / SAMPLE_RATE
    table = phone_table(utt.phones, utt.words, utterance, duration=duration)
    return Alignment(table, text, np.asarray(utt.audio, dtype=np.float32))


def align_pocketsphinx(
    audio: np.ndarray, text: str | None = None, utterance: str = "utt", oov: str = "error"
) -> Alignment:
    """Force-align 16 kHz mono `audio` (float in [-1, 1]) to `text` with PocketSphinx.

    `text=None` recognises the speech first. `oov="espeak"` gives words missing from
    CMUdict espeak-ng's letter-to-sound pronunciation; `oov="error"` (default) raises
    AlignmentError naming them, so no pronunciation is guessed silently.
    """
    from pocketsphinx import Decoder

    audio = _check_speech(audio)
    pcm = _padded_pcm(audio)
    if text is None:
        text = recognize(audio)
    words = _words(text)
    if not words:
        raise AlignmentError("the transcript has no words; give the words spoken in the audio")
    decoder = Decoder(samprate=SAMPLE_RATE, bestpath=False, loglevel="FATAL")
    _ensure_pronunciations(decoder, words, oov)
    decoder.set_align_text(" ".join(words))
    _decode(decoder, pcm)  # pass 1 finds the word sequence through the grammar
    if decoder.hyp() is None:
        raise AlignmentError(
            f"PocketSphinx could not align {text!r} to the audio; check that the transcript "
            "matches the speech and that the audio is 16 kHz speech"
        )
    decoder.set_alignment()
    # Pass 2 finds phone and word times along it. Never call hyp() after this pass: it
    # segfaults in pocketsphinx 5.1.1; get_alignment() is the result to read.
    _decode(decoder, pcm)
    phones, spoken = _read_alignment(decoder)
    duration = len(audio) / SAMPLE_RATE
    return Alignment(phone_table(phones, spoken, utterance, duration=duration), " ".join(words), audio)


def recognize(audio: np.ndarray) -> str:
    """Recognise English speech with PocketSphinx's bundled language model (lower case words)."""
    from pocketsphinx import Decoder

    audio = _check_speech(audio)
    decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")
    decoder.start_utt()
    decoder.process_raw(_padded_pcm(audio), full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    text = hyp.hypstr.strip() if hyp is not None else ""
    if not text:
        raise AlignmentError("no words were recognised in the audio; is there speech in it?")
    return text


def align_mfa(
    audio: np.ndarray,
    text: str,
    utterance: str = "utt",
    dictionary: str = "english_us_arpa",
    acoustic_model: str = "english_us_arpa",
) -> Alignment:
    """Align with Montreal Forced Aligner (`mfa align`) when its executable is on PATH."""
    exe = shutil.which("mfa")
    if exe is None:
        raise AlignmentError(
            "no 'mfa' executable on PATH. Install Montreal Forced Aligner (conda-forge) and its "
            "english_us_arpa models, or run MFA elsewhere and read its TextGrids with read_textgrid"
        )
    audio = _check_speech(audio)
    with tempfile.TemporaryDirectory(prefix="lipmem_mfa_") as tmp:
        corpus, out = Path(tmp, "corpus", "speaker"), Path(tmp, "out")
        corpus.mkdir(parents=True)
        sf.write(corpus / f"{utterance}.wav", audio, SAMPLE_RATE, subtype="PCM_16")
        (corpus / f"{utterance}.lab").write_text(text.strip() + "\n", encoding="utf-8")
        cmd = [
            exe,
            "align",
            "--clean",
            "--single_speaker",
            str(corpus.parent),
            dictionary,
            acoustic_model,
            str(out),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        grids = sorted(out.rglob("*.TextGrid")) if out.exists() else []
        if done.returncode != 0 or not grids:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
            raise AlignmentError(f"mfa align failed (exit {done.returncode}):\n{tail}")
        table = read_textgrid(grids[0], utterance=utterance)
    return Alignment(table, text, audio)


def _decode(decoder, pcm: bytes) -> None:
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()


def _check_speech(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise AlignmentError(
            f"expected mono audio (n_samples,), got shape {audio.shape}; load it with audio.load_audio"
        )
    if len(audio) < SAMPLE_RATE // 10 or float(np.abs(audio).max(initial=0.0)) < MIN_SPEECH_PEAK:
        raise AlignmentError("the audio holds no speech (silent or shorter than 0.1 s)")
    return audio


def _padded_pcm(audio: np.ndarray) -> bytes:
    """PCM16 bytes with _PAD_SECONDS of low seeded noise at both ends (see _PAD_SECONDS)."""
    pad = np.random.default_rng(0).normal(0.0, _PAD_NOISE, int(_PAD_SECONDS * SAMPLE_RATE)).astype(np.float32)
    x = np.concatenate([pad, audio, pad])
    return (np.clip(x, -1.0, 1.0) * 32767).astype(np.int16).tobytes()


def _words(text: str) -> list[str]:
    """Lower-case words as CMUdict spells them (letters, digits, apostrophes)."""
    return re.findall(r"[a-z0-9']+", text.lower().replace("\u2019", "'"))


def _ensure_pronunciations(decoder, words: list[str], oov: str) -> None:
    missing = sorted({w for w in words if decoder.lookup_word(w) is None})
    if not missing:
        return
    if oov != "espeak":
        raise AlignmentError(
            f"words missing from the pronunciation dictionary: {', '.join(missing)}. Spell them as "
            "dictionary words (numbers as words), or pass oov='espeak' (CLI: --oov espeak) to use "
            "espeak-ng's letter-to-sound pronunciation"
        )
    from lipmem_core.data.synth.speech import Voice, synthesize

    for word in missing:
        spoken = phone_table(synthesize(word, Voice()).phones)
        phones = [p for p in spoken["phone"] if p != SILENCE]
        if not phones:
            raise AlignmentError(f"espeak-ng gave no pronunciation for {word!r}")
        decoder.add_word(word, " ".join(phones), True)


def _read_alignment(decoder) -> tuple[list[Interval], list[Interval]]:
    """Phone and word intervals (seconds, padding removed) from PocketSphinx's alignment."""
    alignment = decoder.get_alignment()
    if alignment is None:
        raise AlignmentError("PocketSphinx returned no alignment; does the transcript match the speech?")
    phones: list[Interval] = []
    words: list[Interval] = []
    for word in alignment:
        name = re.sub(r"\(\d+\)$", "", word.name)  # "and(2)" = second pronunciation of "and"
        start = word.start / _PS_FRAME_RATE - _PAD_SECONDS
        end = (word.start + word.duration) / _PS_FRAME_RATE - _PAD_SECONDS
        if name.startswith(("<", "[", "+")):  # <sil>, <s>, [NOISE], +SPN+: fillers, not words
            continue
        words.append(Interval(start, end, name))
        for ph in word:
            ph_start = ph.start / _PS_FRAME_RATE - _PAD_SECONDS
            phones.append(Interval(ph_start, ph_start + ph.duration / _PS_FRAME_RATE, ph.name))
    if not words:
        raise AlignmentError("PocketSphinx aligned no words; is there speech in the audio?")
    return phones, words


def main(argv: list[str] | None = None) -> int:
    parser = cli.Parser(
        prog="python -m analysis.align",
        description="Align speech with its transcript and write an MFA-style TextGrid (ARPAbet, words + phones).",
    )
    parser.add_argument(
        "--audio", type=Path, help="speech to align (espeak: where to SAVE the synthesised speech)"
    )
    parser.add_argument("--text", help="transcript (pocketsphinx: recognised when omitted; espeak: required)")
    parser.add_argument("--backend", choices=BACKENDS, default="pocketsphinx")
    parser.add_argument(
        "--oov", choices=("error", "espeak"), default="error", help="words missing from CMUdict"
    )
    parser.add_argument("--out", type=Path, required=True, help="output .TextGrid")
    args = parser.parse_args(argv)
    try:
        # espeak writes --audio too: both outputs are checked first and renamed into place
        # together at the end, so a failure leaves neither (no stray WAV).
        wav_out = args.audio if args.backend == "espeak" else None
        cli.check_output(args.out, [] if wav_out is not None else [args.audio])
        if wav_out is not None:
            cli.check_output(wav_out, [args.out])
        result = _run(args, parser)
        with contextlib.ExitStack() as outputs:
            grid = outputs.enter_context(cli.atomic_output(args.out))
            if wav_out is not None:
                wav = outputs.enter_context(cli.atomic_output(wav_out))
                sf.write(wav, result.audio, SAMPLE_RATE, subtype="PCM_16")
            write_textgrid(result.table, grid, duration=len(result.audio) / SAMPLE_RATE)
    except LipMemError as exc:
        return cli.fail(exc)
    n = int((result.table["phone"] != SILENCE).sum())
    print(f"{args.out}: {n} phones, {len(result.audio) / SAMPLE_RATE:.2f} s; text: {result.text}")
    return 0


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Alignment:
    """Align as the arguments say (nothing is written here; `main` writes the outputs)."""
    if args.backend == "espeak":
        # espeak's timings are exact only for speech espeak itself produced: it cannot align a
        # recording. So --audio names where the synthesised speech goes, next to its TextGrid.
        if not args.text:
            parser.error("--backend espeak synthesises --text: give --text")
        if args.audio is not None and args.audio.exists():
            parser.error(
                f"--backend espeak aligns only speech it synthesises, and {args.audio} exists (not "
                "overwritten). To align that recording use --backend pocketsphinx (or mfa); to "
                "save the synthesised speech, give --audio a new path"
            )
        return align_espeak(args.text, utterance=args.out.stem)
    if args.audio is None:
        parser.error(f"--backend {args.backend} aligns a recording: give --audio FILE")
    from lipmem_core.audio import check_duration, load_audio

    check_duration(args.audio, MAX_ALIGN_SECONDS)  # from the header: refused before decoding
    audio = load_audio(args.audio)
    if args.backend == "mfa":
        if not args.text:
            parser.error("--backend mfa needs --text (MFA does not recognise speech)")
        return align_mfa(audio, args.text, utterance=args.audio.stem)
    return align_pocketsphinx(audio, args.text, utterance=args.audio.stem, oov=args.oov)


if __name__ == "__main__":
    sys.exit(main())
