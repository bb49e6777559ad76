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


def user_errors(fn: F) -> F:
    """Wrap a handler so LipMemError becomes gr.Error; other exceptions stay bugs.

    functools.wraps keeps the signature visible to Gradio (it looks for a gr.Progress default).
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LipMemError as exc:
            raise gr.Error(str(exc), title=error_title(exc), print_exception=False) from exc

    return wrapper  # type: ignore[return-value]
