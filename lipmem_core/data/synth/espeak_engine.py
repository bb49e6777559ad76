"""espeak-ng through ctypes, made deterministic with forked processes (used by speech.py).

espeak-ng keeps synthesis state in C statics that survive between utterances (and even
espeak_Terminate/espeak_Initialize): pitch-flutter phase, wave phase, sample counters, and
state that depends on how many voices were loaded before. The same text therefore gives
slightly different audio and phone times depending on what the process did earlier. So the
process that owns the engine initialises espeak once and never synthesises itself:

- for each voice it forks a *zygote* that loads that voice (the ~15 ms part) and then waits;
- for each utterance the voice's zygote forks a child that sets speed and pitch, synthesises
  and writes PCM + events straight back to the owner through a pipe (raw arrays, no pickle).

Every utterance thus runs from the same state: pristine espeak + that one voice loaded.
Zygotes are kept in a small LRU; they exit when their request pipe closes (eviction, or the
owner exiting).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import struct
from collections import OrderedDict
from typing import Any

import numpy as np

from lipmem_core.errors import SpeechSynthesisError

_RATE_WPM, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4  # espeak_PARAMETER
EVENT_WORD, EVENT_PHONEME, _EVENT_LIST_TERMINATED = 1, 7, 0
# What a child sends back per event: type, exact sample, text position/length, mnemonic.
EVENT_DTYPE = np.dtype([("type", "<i4"), ("sample", "<i8"), ("pos", "<i4"), ("len", "<i4"), ("name", "S8")])
_REQUEST = struct.Struct("<4i")  # text bytes, wpm, pitch, pitch range
_RESPONSE = struct.Struct("<bqq")  # status (0 ok, 1 error), n_pcm or message bytes, n_events
MAX_ZYGOTES = 4


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """espeak_EVENT (speak_lib.h)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


def _read_exact(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Zygote:
    """A forked process holding espeak with one voice loaded; forks a child per utterance."""

    def __init__(self, engine: EspeakEngine, voice_name: str) -> None:
        req_r, self.req_w = os.pipe()
        self.resp_r, resp_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            # Keep only stdio and our two pipe ends: an inherited end of someone else's pipe
            # (a browser driver's, a subprocess's) held open here would stop its owner ever
            # seeing EOF, and its owner would hang on exit.
            lo = 3
            for fd in sorted((req_r, resp_w)):
                os.closerange(lo, fd)
                lo = fd + 1
            os.closerange(lo, os.sysconf("SC_OPEN_MAX"))
            code = 1
            try:
                code = engine.serve(voice_name, req_r, resp_w)
            finally:
                os._exit(code)
        os.close(req_r)
        os.close(resp_w)

    def request(self, text: bytes, wpm: int, pitch: int, pitch_range: int) -> tuple[np.ndarray, np.ndarray]:
        _write_all(self.req_w, _REQUEST.pack(len(text), wpm, pitch, pitch_range) + text)
        status, n, n_events = _RESPONSE.unpack(_read_exact(self.resp_r, _RESPONSE.size))
        if status != 0:
            raise SpeechSynthesisError(f"espeak-ng synthesis failed: {_read_exact(self.resp_r, n).decode()}")
        pcm = np.frombuffer(_read_exact(self.resp_r, 2 * n), dtype="<i2")
        events = np.frombuffer(_read_exact(self.resp_r, EVENT_DTYPE.itemsize * n_events), dtype=EVENT_DTYPE)
        return pcm, events

    def close(self) -> None:
        _close(self.req_w, self.resp_r)  # EOF on its request pipe ends the zygote
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


class EspeakEngine:
    """The process's one espeak-ng instance (not thread-safe: callers hold a lock)."""

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        data = espeakng_loader.get_data_path().encode()
        # AUDIO_OUTPUT_SYNCHRONOUS = 2, default buffer, options 1 = phoneme events.
        rate = lib.espeak_Initialize(2, 0, data, 1)
        if rate <= 0:
            raise SpeechSynthesisError(
                f"espeak-ng failed to initialise (code {rate}) with data at {data.decode()}; "
                "reinstall espeakng-loader"
            )
        self.lib = lib
        self.rate = rate  # 22050 Hz
        self._pcm: list[bytes] = []
        self._events: list[tuple[int, int, int, int, bytes]] = []
        # Keep a reference: espeak calls this pointer for as long as the process lives.
        self._callback = _Callback(self._on_audio)
        lib.espeak_SetSynthCallback(self._callback)
        self._zygotes: OrderedDict[str, _Zygote] = OrderedDict()

    def synth(
        self, text: bytes, voice_name: str, wpm: int, pitch: int, pitch_range: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(pcm int16 (N,) at self.rate, events as EVENT_DTYPE) for UTF-8 `text`."""
        zygote = self._zygotes.pop(voice_name, None)
        if zygote is None:
            zygote = _Zygote(self, voice_name)
        try:
            result = zygote.request(text, wpm, pitch, pitch_range)
        except (EOFError, OSError) as exc:
            zygote.close()
            raise SpeechSynthesisError(f"the espeak-ng process for {voice_name!r} died ({exc!r})") from exc
        except SpeechSynthesisError:
            self._keep(voice_name, zygote)
            raise
        self._keep(voice_name, zygote)
        return result

    def _keep(self, voice_name: str, zygote: _Zygote) -> None:
        self._zygotes[voice_name] = zygote
        while len(self._zygotes) > MAX_ZYGOTES:
            self._zygotes.popitem(last=False)[1].close()

    def close(self) -> None:
        """End every zygote and reap it (their CPU time then counts for this process)."""
        while self._zygotes:
            self._zygotes.popitem(last=False)[1].close()

    def forget_inherited(self) -> None:
        """In a forked child: drop (without waiting for) the parent's zygotes."""
        for z in self._zygotes.values():
            _close(z.req_w, z.resp_r)
        self._zygotes.clear()

    # --- zygote side ------------------------------------------------------------------

    def serve(self, voice_name: str, req_r: int, resp_w: int) -> int:
        """Zygote main loop: load the voice once, then fork one child per request."""
        self.lib.espeak_ng_SetRandSeed(1)
        loaded = self.lib.espeak_SetVoiceByName(voice_name.encode()) == 0
        while True:
            try:
                n_text, wpm, pitch, pitch_range = _REQUEST.unpack(_read_exact(req_r, _REQUEST.size))
                text = _read_exact(req_r, n_text)
            except EOFError:
                return 0
            if not loaded:
                _send_error(resp_w, f"espeak-ng has no voice {voice_name!r}")
                continue
            pid = os.fork()
            if pid == 0:
                status = 1
                try:
                    pcm, events = self._synth_here(text, wpm, pitch, pitch_range)
                    _write_all(
                        resp_w, _RESPONSE.pack(0, len(pcm), len(events)) + pcm.tobytes() + events.tobytes()
                    )
                    status = 0
                except BaseException as exc:  # noqa: BLE001 - reported to the owner as text
                    _send_error(resp_w, f"{type(exc).__name__}: {exc}")
                finally:
                    os._exit(status)
            _, wait_status = os.waitpid(pid, 0)
            if os.WIFSIGNALED(wait_status):  # crashed before answering
                _send_error(resp_w, f"espeak-ng crashed (signal {os.WTERMSIG(wait_status)})")

    def _synth_here(
        self, text: bytes, wpm: int, pitch: int, pitch_range: int
    ) -> tuple[np.ndarray, np.ndarray]:
        lib = self.lib
        # Set after the voice: selecting a voice resets these.
        for param, value in ((_RATE_WPM, wpm), (_VOLUME, 100), (_PITCH, pitch), (_RANGE, pitch_range)):
            lib.espeak_SetParameter(param, value, 0)
        self._pcm, self._events = [], []
        # position 0, POS_CHARACTER = 1, no end position, flags espeakCHARS_UTF8 = 1.
        code = lib.espeak_Synth(text, len(text) + 1, 0, 1, 0, 1, None, None)
        if code != 0:
            raise SpeechSynthesisError(f"espeak_Synth failed with code {code}")
        lib.espeak_Synchronize()
        pcm = np.frombuffer(b"".join(self._pcm), dtype="<i2")
        events = np.array(self._events, dtype=EVENT_DTYPE)
        return pcm, events

    def _on_audio(self, wav: Any, n: int, events: Any) -> int:
        if n > 0:
            self._pcm.append(ctypes.string_at(wav, 2 * n))
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            e = events[i]
            name = bytes(e.id.string).split(b"\0")[0] if e.type == EVENT_PHONEME else b""
            self._events.append((e.type, e.sample, e.text_position, e.length, name))
            i += 1
        return 0  # continue synthesis


def _close(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _send_error(fd: int, message: str) -> None:
    data = message.encode(errors="replace")
    _write_all(fd, _RESPONSE.pack(1, len(data), 0) + data)
