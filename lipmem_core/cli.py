"""What every command line shares: safe output paths, atomic writes, argument types, one-line errors.

Rules (README "Limits and safety"):
- An output path may not be one of the command's inputs, nor lie inside a directory it reads
  (a checkpoint, a corpus, a folder of videos), and it must be writable: `check_output`
  refuses it before any work is done.
- Outputs are written atomically: `atomic_output` hands out a hidden temporary sibling and
  renames it into place only when the whole output is complete, so a failure never leaves a
  partial file under the final name and never touches an existing one.
- User errors end the command with exit code 2 and one line `error: ...` on stderr (argparse's
  usage errors included, see `Parser`), never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NoReturn

from lipmem_core.errors import OutputPathError

EXIT_USER_ERROR = 2  # the exit code of every refused input (argparse uses 2 too)


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error: `prog: error: ... (see --help)` instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see --help)\n")


def fail(message: object) -> int:
    """Print `error: message` as one line on stderr; returns the exit code for `main` to return."""
    text = " ".join(str(message).split())  # one line, whatever the message holds
    print(f"error: {text}", file=sys.stderr)
    return EXIT_USER_ERROR


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (clip counts, workers)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _existing(text: str, kind: str) -> Path:
    """argparse type body: `text` names an existing "file" or "directory"."""
    path = Path(text)
    if not (path.is_file() if kind == "file" else path.is_dir()):
        other = "a directory" if kind == "file" else "a file"
        what = f"{other}, not a {kind}" if path.exists() else "not found"
        raise argparse.ArgumentTypeError(f"{text} is {what}: give a {kind}")
    return path


def existing_dir(text: str) -> Path:
    """argparse type: a directory that exists."""
    return _existing(text, "directory")


def existing_file(text: str) -> Path:
    """argparse type: a file that exists."""
    return _existing(text, "file")


def device(text: str) -> str:
    """argparse type: a torch device name that exists on this machine (cpu, cuda, cuda:1)."""
    import torch

    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device: use cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError("cuda was asked for but torch sees no GPU: use cpu")
    if dev.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"{text!r}: LipMem runs on cpu or cuda")
    return text


def _is_within(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def check_output(
    out: str | os.PathLike, reads: Iterable[str | os.PathLike | None] = (), *, kind: str = "file"
) -> Path:
    """Refuse an output path that would destroy an input or cannot be written; returns it.

    `reads`: every file or directory the command reads (None entries are skipped). `kind`:
    "file" (the output is one file) or "dir" (a directory the command fills). Raises
    OutputPathError with what to do instead. Nothing is created.
    """
    out = Path(out)
    target = out.expanduser().resolve()  # symlinks and '..' resolved: aliases compare equal
    for src in reads:
        if src is None:
            continue
        source = Path(src).expanduser().resolve()
        if target == source or (target.exists() and source.exists() and os.path.samefile(target, source)):
            raise OutputPathError(f"the output {out} is also an input: choose another output path")
        if source.is_dir() and _is_within(target, source):
            raise OutputPathError(
                f"the output {out} lies inside {src}, which this command reads: write it elsewhere"
            )
    if kind == "file" and target.is_dir():
        raise OutputPathError(f"the output {out} is a directory: give a file name")
    if kind == "dir" and target.exists() and not target.is_dir():
        raise OutputPathError(f"the output {out} is a file: give a directory")
    # The nearest existing ancestor must be a writable directory (the rest is created).
    ancestor = target if kind == "dir" else target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputPathError(f"the output {out} lies under {ancestor}, which is a file: choose a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write into {ancestor} (permission denied): choose another output path")
    return out


def _write_error(path: Path, exc: OSError) -> OutputPathError:
    reason = exc.strerror or type(exc).__name__
    return OutputPathError(f"could not write {path}: {reason}; choose another output path")


def make_dirs(directory: str | os.PathLike) -> Path:
    """mkdir -p, with OSError (a file in the way, no permission, disk full) as OutputPathError."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(directory, exc) from exc
    return directory


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden temporary sibling of `path` to write; it replaces `path` only if the block
    succeeds, and is deleted otherwise. The temporary name keeps the suffix (writers such as
    soundfile and np.save choose the format by it). OSError becomes OutputPathError.
    """
    path = Path(path)
    make_dirs(path.parent)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _write_error(path, exc) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write a UTF-8 text file atomically (see `atomic_output`)."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
