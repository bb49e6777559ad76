"""Bad inputs to every command line (issue 15): each ends with exit code 2 and one line
`error: ...` (no traceback), leaves its inputs byte-for-byte unchanged, and writes nothing.

CLIs run as subprocesses (as a user runs them), with PYTHONPATH pointing at this checkout.
The app's side is in tests/test_bad_input_app.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lipmem_core.config import SAMPLE_RATE
from lipmem_core.infer.video import VideoWriter, probe_video, write_image
from lipmem_core.limits import MAX_IMAGE_SIDE, WORK_SIDE
from tests import astronaut_video as av_fix
from tests.app.app_support import make_checkpoint_root

REPO = Path(__file__).resolve().parent.parent


def run_cli(
    module: str, *args: str | Path, cwd: Path | None = None, fresh: bool = False
) -> subprocess.CompletedProcess:
    """Run `python -m module args`; returns its exit code, stdout and stderr.

    fresh=True: in a new interpreter, exactly as a user runs it (a few seconds of imports);
    otherwise the `main(args)` that `python -m module` runs (the module's, or its package's
    `__main__`'s) in this process with stdout/stderr captured, which checks the same things (an
    uncaught exception would fail the test) at a fraction of the cost.
    """
    argv = [str(a) for a in args]
    if fresh:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        cmd = [sys.executable, "-m", module, *argv]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    out, err = io.StringIO(), io.StringIO()
    here = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = _command_main(module)(argv)
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess([module, *argv], code, out.getvalue(), err.getvalue())


def _command_main(module: str):
    """The `main` that `python -m module` calls: a module's own, or its package's `__main__`'s."""
    mod = importlib.import_module(module)
    if hasattr(mod, "__path__"):  # a package: python -m runs its __main__
        mod = importlib.import_module(module + ".__main__")
    return mod.main


def digest(path: Path) -> dict[str, str]:
    """sha256 of a file, or of every file under a directory (relative names)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def assert_refused(proc: subprocess.CompletedProcess, *words: str) -> str:
    """Exit code 2, exactly one non-empty stderr line carrying 'error', no traceback; returns it."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    errors = [line for line in lines if "error" in line]
    assert len(errors) == 1, proc.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A photo, a speech file, a tiny generator checkpoint, an empty corpus folder, and a file
    standing where a directory is expected."""
    root = tmp_path_factory.mktemp("inputs")
    photo = root / "face.png"
    write_image(photo, av_fix.photo())
    speech = root / "speech.wav"
    sf.write(speech, av_fix.speechlike(0.4), SAMPLE_RATE)
    blocker = root / "not_a_dir"
    blocker.write_text("a file where a directory is expected")
    checkpoints = make_checkpoint_root(root / "checkpoints")
    corpus = root / "corpus"  # an empty folder standing for a corpus or a folder of videos
    corpus.mkdir()
    return {
        "photo": photo,
        "speech": speech,
        "blocker": blocker,
        "checkpoint": checkpoints / "lipmem-synthtalk",
        "corpus": corpus,
        "root": root,
    }


# ---- outputs that would destroy an input ------------------------------------------------------
def test_align_refuses_to_overwrite_its_recording(files):
    before = digest(files["speech"])
    proc = run_cli("analysis.align", "--audio", files["speech"], "--out", files["speech"], fresh=True)
    assert_refused(proc, "also an input")
    assert digest(files["speech"]) == before


def test_evaluate_refuses_to_write_into_the_checkpoint(files):
    before = digest(files["checkpoint"])
    out = files["checkpoint"] / "config.json"
    proc = run_cli(
        "lipmem_core.evaluate", "--checkpoint", files["checkpoint"], "--data", files["corpus"], "--out", out,
        fresh=True,
    )  # fmt: skip
    assert_refused(proc, "inside")
    assert digest(files["checkpoint"]) == before


def test_infer_refuses_its_input_and_report_the_checkpoint_directory(files):
    before = digest(files["photo"])
    proc = run_cli(
        "lipmem_core.infer", "--face", files["photo"], "--audio", files["speech"], "--out", files["photo"]
    )
    assert_refused(proc, "also an input")
    assert digest(files["photo"]) == before
    ckpt_before = digest(files["checkpoint"])
    proc = run_cli(
        "analysis.report", "--checkpoint", files["checkpoint"], "--audio", files["speech"],
        "--out", files["checkpoint"],
    )  # fmt: skip
    assert_refused(proc, "also an input")
    assert digest(files["checkpoint"]) == ckpt_before


# ---- outputs that cannot be written -----------------------------------------------------------
@pytest.mark.parametrize(
    "module, args",
    [
        ("lipmem_core.infer", ["--face", "{photo}", "--audio", "{speech}", "--random-init", "cpu", "--out"]),
        ("analysis.align", ["--backend", "espeak", "--text", "hello", "--out"]),
        ("analysis.report", ["--checkpoint", "{checkpoint}", "--audio", "{speech}", "--out"]),
        ("lipmem_core.evaluate", ["--checkpoint", "{checkpoint}", "--data", "{corpus}", "--out"]),
        ("lipmem_core.data.preprocess", ["--videos", "{corpus}", "--out"]),
    ],
)
def test_output_under_a_file_is_a_message(files, module, args):
    args = [a.format(**files) for a in args]
    before = digest(files["blocker"])
    proc = run_cli(module, *args, files["blocker"] / "out" / "result.x")
    assert_refused(proc, "which is a file")
    assert digest(files["blocker"]) == before


def test_infer_writes_no_video_when_the_addressing_cannot_be_written(files, tmp_path):
    out = tmp_path / "talk.mp4"
    proc = run_cli(
        "lipmem_core.infer", "--face", files["photo"], "--audio", files["speech"], "--random-init", "cpu",
        "--out", out, "--save-addressing", files["blocker"] / "a.npy",
    )  # fmt: skip
    assert_refused(proc, "which is a file")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs a /proc that refuses new files")
def test_infer_late_write_failure_leaves_nothing(files, tmp_path):
    """/proc passes the up-front checks (even for root) and refuses the write itself: the video
    must not appear either (the outputs are renamed into place together, at the end)."""
    out = tmp_path / "talk.mp4"
    proc = run_cli(
        "lipmem_core.infer", "--face", files["photo"], "--audio", files["speech"], "--random-init", "cpu",
        "--out", out, "--save-addressing", "/proc/lipmem-no-such-dir/a.npy", fresh=True,
    )  # fmt: skip
    assert_refused(proc, "could not write")
    assert list(tmp_path.iterdir()) == []


def test_align_leaves_no_stray_wav(files, tmp_path):
    wav = tmp_path / "speech.wav"
    proc = run_cli(
        "analysis.align", "--backend", "espeak", "--text", "hello", "--audio", wav,
        "--out", files["blocker"] / "x.TextGrid",
    )  # fmt: skip
    assert_refused(proc)
    assert list(tmp_path.iterdir()) == []


# ---- arguments ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "module, args, words",
    [
        ("lipmem_core.infer", ["--face", "{photo}", "--text", "hi", "--out", "{tmp}/o.mp4", "--device", "banana"],
         ["banana"]),
        ("lipmem_core.evaluate", ["--checkpoint", "{checkpoint}", "--data", "{corpus}", "--out", "{tmp}/r.json",
                                  "--max-clips", "0"], ["at least 1"]),
        ("analysis.report", ["--checkpoint", "{checkpoint}", "--data", "{corpus}", "--out", "{tmp}/r",
                             "--max-clips", "-3"], ["at least 1"]),
        ("lipmem_core.data.preprocess", ["--videos", "{corpus}", "--out", "{tmp}/c", "--alignments", "{speech}"],
         ["not a directory"]),
    ],
)  # fmt: skip
def test_bad_arguments_are_one_line(files, tmp_path, module, args, words):
    args = [a.format(tmp=tmp_path, **files) for a in args]
    assert_refused(run_cli(module, *args), *words)
    assert list(tmp_path.iterdir()) == []


# ---- checkpoints ----------------------------------------------------------------------------
def _damaged_copy(files, tmp_path: Path, edit, keep_hash: bool = True) -> Path:
    copy = tmp_path / "ckpt"
    shutil.copytree(files["checkpoint"], copy)
    config = json.loads((copy / "config.json").read_text())
    edit(config["model_config"])
    if not keep_hash:
        del config["config_sha256"]  # as saved before config.json carried its own hash
    (copy / "config.json").write_text(json.dumps(config))
    return copy


@pytest.mark.parametrize(
    "edit, keep_hash, words",
    [
        (lambda c: c.update(kappa=17.0), True, ["does not match its config_sha256"]),
        (lambda c: c.update(n_slots=10**12), False, ["n_slots", "outside"]),
        (lambda c: c.update(n_slots="96"), False, ["n_slots", "wrong type"]),
        (lambda c: c.update(face_widths=[4096] * 6), False, ["parameters"]),
    ],
)
def test_damaged_config_json_is_refused_before_building(files, tmp_path, edit, keep_hash, words):
    ckpt = _damaged_copy(files, tmp_path, edit, keep_hash)
    out = tmp_path / "o.mp4"
    proc = run_cli(
        "lipmem_core.infer", "--face", files["photo"], "--text", "hi", "--checkpoint", ckpt, "--out", out
    )
    assert_refused(proc, *words)
    assert not out.exists()


def test_mistyped_local_checkpoint_is_missing_not_a_hub_id(files, tmp_path):
    # Run from the inputs folder so that "checkpoints/..." is a relative path, as a user types it.
    proc = run_cli(
        "lipmem_core.infer", "--face", files["photo"], "--text", "hi", "--out", tmp_path / "o.mp4",
        "--checkpoint", "checkpoints/lipmem-synthtlk", cwd=files["root"],
    )  # fmt: skip
    line = assert_refused(proc, "no checkpoint at", "did you mean")
    assert "Hub" not in line


def test_hub_id_needs_a_pinned_revision(tmp_path, files):
    proc = run_cli(
        "lipmem_core.infer", "--face", files["photo"], "--text", "hi", "--out", tmp_path / "o.mp4",
        "--checkpoint", "some-org/some-model",
    )  # fmt: skip
    assert_refused(proc, "pinned revision")


# ---- sizes and lengths ------------------------------------------------------------------------
def _solid_png(path: Path, width: int, height: int) -> Path:
    """A one-colour PNG: a few kB on disk, width x height once decoded."""
    import cv2

    cv2.imwrite(str(path), np.full((height, width, 3), 90, np.uint8))
    return path


def test_oversized_image_and_image_in_the_video_input_are_refused_from_the_header(files, tmp_path):
    big = _solid_png(files["root"] / "huge.png", MAX_IMAGE_SIDE + 1, 64)
    bomb = files["root"] / "bomb.mp4"  # a PNG under a video name goes to the video decoder
    shutil.copy(big, bomb)
    for face in (big, bomb):
        proc = run_cli(
            "lipmem_core.infer", "--face", face, "--audio", files["speech"], "--random-init", "cpu",
            "--out", tmp_path / "o.mp4",
        )  # fmt: skip
        assert_refused(proc, f"{MAX_IMAGE_SIDE + 1} x 64", "limit")
    assert list(tmp_path.iterdir()) == []


def test_large_accepted_image_is_downscaled_early(files, tmp_path):
    import cv2

    photo = cv2.resize(av_fix.photo(), (WORK_SIDE + 100, WORK_SIDE + 100), interpolation=cv2.INTER_LINEAR)
    face = tmp_path / "large.jpg"
    write_image(face, photo)
    out = tmp_path / "o.mp4"
    proc = run_cli(
        "lipmem_core.infer", "--face", face, "--audio", files["speech"], "--random-init", "cpu", "--out", out
    )
    assert proc.returncode == 0, proc.stderr
    assert (probe_video(out).width, probe_video(out).height) == (WORK_SIDE, WORK_SIDE)
    assert f"at most {WORK_SIDE} px" in proc.stdout


def test_silent_audio_and_a_faceless_video_are_errors_in_the_cli_too(files, tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(SAMPLE_RATE // 2, np.float32), SAMPLE_RATE)
    out = tmp_path / "o.mp4"
    proc = run_cli(
        "lipmem_core.infer", "--face", files["photo"], "--audio", silent, "--random-init", "cpu", "--out", out
    )
    assert_refused(proc, "silent")
    faceless = tmp_path / "noface.mp4"
    with VideoWriter(faceless, 96, 64, 25) as writer:
        writer.write(np.full((5, 64, 96, 3), 40, np.uint8))
    before = digest(faceless)
    proc = run_cli(
        "lipmem_core.infer",
        "--face",
        faceless,
        "--audio",
        files["speech"],
        "--random-init",
        "cpu",
        "--out",
        out,
    )
    assert_refused(proc, "no face")
    assert digest(faceless) == before and not out.exists()


def test_too_long_speech_is_refused_before_decoding(files, tmp_path, monkeypatch):
    import analysis.align
    import lipmem_core.infer.command

    # The real limits are minutes; lowered here so a 0.4 s file is "too long".
    monkeypatch.setattr(lipmem_core.infer.command, "MAX_INFER_SECONDS", 0.2)
    monkeypatch.setattr(analysis.align, "MAX_ALIGN_SECONDS", 0.2)
    proc = run_cli(
        "lipmem_core.infer", "--face", files["photo"], "--audio", files["speech"], "--random-init", "cpu",
        "--out", tmp_path / "o.mp4",
    )  # fmt: skip
    assert_refused(proc, "limit")
    proc = run_cli("analysis.align", "--audio", files["speech"], "--out", tmp_path / "a.TextGrid")
    assert_refused(proc, "limit")
    assert list(tmp_path.iterdir()) == []
