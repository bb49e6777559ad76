"""The inference CLI end to end (random-init cpu preset: no checkpoint is needed)."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from lipmem_core.infer.command import main
from lipmem_core.infer.video import probe_video, write_image
from tests import astronaut_video as av_fix


def test_cli_video_and_audio_file(tmp_path, capsys):
    video = av_fix.write_video(tmp_path / "face.mp4", with_audio=False)
    wav = tmp_path / "speech.wav"
    sf.write(wav, np.repeat(av_fix.speechlike(0.64, seed=3)[::2, None], 2, 1), 8000)  # stereo 8 kHz
    out = tmp_path / "out" / "talk.mp4"
    addr = tmp_path / "addr.npy"
    rc = main(["--face", str(video), "--audio", str(wav), "--out", str(out), "--random-init", "cpu",
               "--save-addressing", str(addr)])  # fmt: skip
    assert rc == 0
    info = probe_video(out)
    assert (info.width, info.height, info.n_frames, info.has_audio) == (192, 160, 16, True)
    a = np.load(addr)
    assert a.shape == (16, 96)
    printed = capsys.readouterr().out
    assert "16 frames" in printed and "2 without a face" in printed and "SynthTalk" in printed


def test_cli_text_with_a_photo(tmp_path, capsys):
    face = tmp_path / "face.png"
    write_image(face, av_fix.photo())
    out = tmp_path / "hi.mp4"
    rc = main(["--face", str(face), "--text", "hi", "--out", str(out), "--random-init", "cpu", "--no-memory"])
    assert rc == 0
    info = probe_video(out)
    assert info.n_frames > 5 and info.has_audio and (info.width, info.height) == (192, 192)
    assert "Memory off" in capsys.readouterr().out


def test_cli_errors_are_messages_not_tracebacks(tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 2000)
    wav = tmp_path / "s.wav"
    sf.write(wav, av_fix.speechlike(0.2), 16000)
    assert (
        main(
            [
                "--face",
                str(bad),
                "--audio",
                str(wav),
                "--out",
                str(tmp_path / "o.mp4"),
                "--random-init",
                "cpu",
            ]
        )
        == 2
    )
    assert "error:" in capsys.readouterr().err
    missing = tmp_path / "nothing_here"
    assert main(["--face", str(bad), "--audio", str(wav), "--out", str(tmp_path / "o.mp4"),
                 "--checkpoint", str(missing)]) == 2  # fmt: skip
    assert not (tmp_path / "o.mp4").exists()
