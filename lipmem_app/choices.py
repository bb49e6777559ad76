"""The app's choices as (label, value) pairs.

The label is what a radio button or dropdown shows and may be reworded freely; the value is
what the handlers and the HTTP API (`/generate`, `/analyse`, `/gallery`, ...) receive, and
stays the same.
"""

from __future__ import annotations

from lipmem_core.errors import LipMemError

Choices = tuple[tuple[str, str], ...]


def values(choices: Choices) -> tuple[str, ...]:
    return tuple(value for _, value in choices)


def label(choices: Choices, value: str) -> str:
    return dict((v, k) for k, v in choices)[value]


def check(value: str | None, choices: Choices, what: str) -> str:
    """`value` if it is one of the choices' values, else a LipMemError naming them."""
    if value not in values(choices):
        raise LipMemError(f"unknown {what} {value!r}; choose one of {', '.join(values(choices))}")
    return value
