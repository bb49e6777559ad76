"""Exceptions with messages a user can act on. The app maps every LipMemError to gr.Error."""


class LipMemError(Exception):
    """Base class: the message says what went wrong and what to do."""


class AudioDecodeError(LipMemError):
    """An audio file could not be read, or holds no usable speech."""


class VideoDecodeError(LipMemError):
    """A video or image file could not be read."""


class NoFaceFoundError(LipMemError):
    """No face was found where one is required."""


class CheckpointError(LipMemError):
    """A checkpoint is missing, truncated, tampered with or of the wrong kind."""


class SpeechSynthesisError(LipMemError):
    """espeak-ng could not synthesise the text."""


class UnknownPhoneError(LipMemError):
    """A phone label is not ARPAbet (or an espeak mnemonic has no ARPAbet mapping)."""


class CorpusError(LipMemError):
    """A corpus directory does not follow the SynthTalk layout."""


class AlignmentError(LipMemError):
    """Forced alignment failed (no speech, words missing from the dictionary, bad TextGrid)."""


class InputTooLongError(LipMemError):
    """An input exceeds a stated limit (duration or size)."""


class OutputPathError(LipMemError):
    """An output path would overwrite an input, or cannot be written."""
