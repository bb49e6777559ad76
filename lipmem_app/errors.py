"""Every LipMemError reaches the user as a gr.Error carrying its message (what to do)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TypeVar

import gradio as gr

from lipmem_core.errors import LipMemError

F = TypeVar("F", bound=Callable)


def error_title(exc: Exception) -> str:
    """'InputTooLongError' -> 'Input too long' (a short heading for the error toast)."""
    if type(exc) is LipMemError:
        return "LipMem"
    words = re.findall(r"[A-Z][a-z]*", type(exc).__name__.removesuffix("Error")) or ["Error"]
    return " ".join([words[0]] + [w.lower() for w in words[1:]])


# An absolute path (two or more components): the server's folders are nobody's business, and
# core messages name files by path for the command lines' sake.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~])/(?:[^\s'\"/,;:()]+/)+([^\s'\"/,;:()]*)")


def without_paths(message: str) -> str:
    """The message with every absolute path cut to its last component (an upload's full
    temp-folder path becomes its file name), so no error shows where the server keeps files."""
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1) or "a folder", message)


def user_errors(fn: F) -> F:
    """Wrap a handler so LipMemError becomes gr.Error; other exceptions stay bugs.

    functools.wraps keeps the signature visible to Gradio (it looks for a gr.Progress default).
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LipMemError as exc:
            raise gr.Error(without_paths(str(exc)), title=error_title(exc), print_exception=False) from exc

    return wrapper  # type: ignore[return-value]
