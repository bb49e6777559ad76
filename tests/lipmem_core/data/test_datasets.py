"""Training windows: exact frame/audio alignment, clip edges, masking, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lipmem_core.audio import clip_mel_window, mel_window_start, mel_windows, melspectrogram
from lipmem_core.data.augment import AudioAugment
from lipmem_core.data.datasets import ClipStore, GeneratorWindows, SyncWindows
from lipmem_core.errors import CorpusError
from tests.tiny_corpus import frame_of, make_tiny_corpus

N_A, N_B, CLICK = 14, 9, 6
NO_AUG = AudioAugment(p_gain=0, p_speed=0, p_pitch=0, p_eq=0, p_reverb=0, p_noise=0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    clips = [("train", "s1", "a", N_A), ("train", "s1", "b", N_B), ("val", "s2", "c", 6)]
    return make_tiny_corpus(root, clips, size=32, clicks={"a": CLICK})


@pytest.fixture(scope="module")
def store(corpus):
    return ClipStore(corpus, "train", img_size=32)


def _frames(x: torch.Tensor) -> list[int]:
    """Frame index of each image in a (3, T, H, W) block, read from its top-left pixel."""
    return [frame_of(float(x[0, t, 0, 0])) for t in range(x.shape[1])]


def test_window_count_and_shapes(store):
    ds = GeneratorWindows(store, n_frames=5)
    assert len(ds) == (N_A - 4) + (N_B - 4)
    s = ds[0]
    assert s["face"].shape == (6, 5, 32, 32) and s["gt"].shape == (3, 5, 32, 32)
    assert s["lips"].shape == (5, 3, 5, 32, 32)
    assert s["mel"].shape == (5, 1, 80, 16) and s["clip_mel"].shape == (1, 80, 16)
    for k in ("face", "gt", "lips", "mel"):
        assert s[k].dtype == torch.float32
    assert s["gt"].min() >= -1 and s["gt"].max() <= 1
    assert s["clip_id"] == "train/s1/a" and s["start"] == 0


@pytest.mark.parametrize("index", [0, 3, N_A - 5])  # first, middle and last window of clip a
def test_targets_references_lips_and_masks(store, index):
    ds = GeneratorWindows(store)
    s = ds[index]
    start = int(s["start"])
    assert _frames(s["gt"]) == list(range(start, start + 5))
    targets, refs = s["face"][:3], s["face"][3:]
    assert torch.equal(targets[:, :, :16], s["gt"][:, :, :16])  # upper half kept
    assert torch.all(targets[:, :, 16:] == 0)  # lower half zeroed
    ref = int(s["ref_start"])
    assert _frames(refs) == list(range(ref, ref + 5))
    assert abs(ref - start) >= 5  # clip a is long enough for a non-overlapping reference
    for i in range(5):
        lip = s["lips"][i]  # (3, 5, H, W)
        want = [min(max(start + i + d, 0), N_A - 1) for d in range(-2, 3)]  # edge-replicated
        assert [frame_of(float(lip[0, j, 20, 0])) for j in range(5)] == want
        assert torch.all(lip[:, :, :16] == 0)  # upper half zeroed


def test_click_lands_in_its_frame_window(store):
    """Audio click at the centre of frame CLICK: centred in that frame's mel window."""
    ds = GeneratorWindows(store)
    for index in range(N_A - 4):
        s = ds[index]
        start = int(s["start"])
        if not start <= CLICK < start + 5:
            continue
        i = CLICK - start
        peak = int(s["mel"][i, 0].mean(0).argmax())  # loudest of the 16 mel columns
        assert peak in (7, 8)  # the centre of the window
        for j in range(5):  # a neighbour sees it 3.2 columns per frame off-centre
            if abs(j - i) == 1:
                assert abs(int(s["mel"][j, 0].mean(0).argmax()) - (7.5 + 3.2 * (i - j))) <= 1


def test_mels_match_the_audio_module_and_clip_mel_is_middle_window(store):
    full = melspectrogram(store.audio(0))
    ds = GeneratorWindows(store)
    for index in (0, 5, N_A - 5):
        s = ds[index]
        start = int(s["start"])
        np.testing.assert_array_equal(s["mel"][:, 0].numpy(), mel_windows(full, range(start, start + 5)))
        np.testing.assert_array_equal(s["clip_mel"][0].numpy(), clip_mel_window(full, start + 2))
    assert mel_window_start(0) < 0  # the first window reads padding: covered by index 0


@pytest.mark.parametrize("index", [0, 4, N_A - 5])
def test_augmented_path_without_perturbation_equals_full_clip_mels(store, index):
    plain, crop = GeneratorWindows(store), GeneratorWindows(store, augment=NO_AUG)
    np.testing.assert_allclose(crop[index]["mel"].numpy(), plain[index]["mel"].numpy(), atol=1e-4)


def test_augmentation_changes_mels_but_keeps_the_click_centred(store):
    aug = AudioAugment(p_gain=1, p_speed=1, p_pitch=0, p_eq=1, p_reverb=0, p_noise=1, snr_db=(30.0, 35.0))
    ds, plain = GeneratorWindows(store, augment=aug, seed=1), GeneratorWindows(store)
    index = CLICK - 2  # the click is the middle target (frame s + 2)
    s = ds[index]
    assert not torch.allclose(s["mel"], plain[index]["mel"])
    assert int(s["mel"][2, 0].mean(0).argmax()) in (7, 8)


def test_samples_are_deterministic_per_epoch_and_index(store):
    a, b = GeneratorWindows(store, seed=3), GeneratorWindows(store, seed=3)
    x, y = a[(1, 2)], b[(1, 2)]
    assert all(torch.equal(x[k], y[k]) for k in ("face", "mel", "lips"))
    refs = {int(a[(e, 2)]["ref_start"]) for e in range(8)}
    assert len(refs) > 1  # a new epoch draws new reference frames


def test_resize_on_the_fly_and_preload_agree(corpus):
    lazy = GeneratorWindows(ClipStore(corpus, "train", img_size=24))
    pre = GeneratorWindows(ClipStore(corpus, "train", img_size=24, preload=True))
    x, y = lazy[7], pre[7]
    assert x["gt"].shape == (3, 5, 24, 24)
    assert torch.equal(x["face"], y["face"]) and torch.equal(x["lips"], y["lips"])


def test_sync_pairs(store):
    ds = SyncWindows(store, min_offset=3, seed=0)
    full = [melspectrogram(store.audio(ci)) for ci in range(2)]
    labels = []
    for index in range(len(ds)):
        s = ds[index]
        assert s["frames"].shape == (3, 5, 16, 32)
        assert _frames(s["frames"]) == list(range(int(s["start"]), int(s["start"]) + 5))
        ci, a = int(s["clip"]), int(s["audio_start"])
        if s["label"] == 1:
            assert a == int(s["start"])
            np.testing.assert_array_equal(s["mel"][0].numpy(), clip_mel_window(full[ci], a + 2))
        else:
            assert abs(a - int(s["start"])) >= 3
        labels.append(float(s["label"]))
    assert 0.2 < np.mean(labels) < 0.8


def test_missing_split_and_short_clips_raise(corpus):
    with pytest.raises(CorpusError, match="test"):
        ClipStore(corpus, "test", img_size=32)
    with pytest.raises(CorpusError, match="frames or more"):
        GeneratorWindows(ClipStore(corpus, "val", img_size=32), n_frames=7)


def test_ref_mouth_drop_hides_the_references_lower_half_on_its_share_only(store):
    """ref_mouth_drop=p zeroes the references' lower half on about p of the windows, and
    changes nothing else: targets, lips, audio and the reference window are drawn as without it."""
    plain = GeneratorWindows(store, seed=3)
    half = GeneratorWindows(store, seed=3, ref_mouth_drop=0.5)
    hidden = 0
    for i in range(len(plain)):
        a, b = plain[i], half[i]
        for k in ("gt", "lips", "mel", "clip_mel"):
            assert torch.equal(a[k], b[k]), k
        assert a["ref_start"] == b["ref_start"]
        assert torch.equal(a["face"][:, :, :16], b["face"][:, :, :16])  # upper halves untouched
        if torch.equal(a["face"], b["face"]):
            continue
        hidden += 1
        assert torch.all(b["face"][3:, :, 16:] == 0) and not torch.all(a["face"][3:, :, 16:] == 0)
    assert 0.2 * len(plain) < hidden < 0.8 * len(plain)
    always = GeneratorWindows(store, seed=3, ref_mouth_drop=1.0)
    assert all(torch.all(always[i]["face"][3:, :, 16:] == 0) for i in range(len(always)))
    with pytest.raises(ValueError, match="ref_mouth_drop"):
        GeneratorWindows(store, ref_mouth_drop=1.5)


def _write_mouths(root, n: int, last_phone: str = "AA") -> np.ndarray:
    """A mouth.csv for the corpus's first clip whose rows encode (frame, parameter): (n, 7)."""
    import pandas as pd

    from lipmem_core.data.corpus import clip_dir, read_manifest
    from lipmem_core.data.synth.mouth import MOUTH_PARAMS

    row = next(read_manifest(root).itertuples(index=False))
    table = pd.DataFrame({"frame": range(n)})
    for j, name in enumerate(MOUTH_PARAMS):
        table[name] = (np.arange(n) + 100 * j) / 1000.0
    table["phone"] = "AA"
    table.loc[n - 1, "phone"] = last_phone
    table.to_csv(clip_dir(root, row) / "mouth.csv", index=False)
    return table[list(MOUTH_PARAMS)].to_numpy(np.float32)


def test_with_mouth_gives_the_targets_exact_mouths_and_real_corpora_refuse(tmp_path):
    root = make_tiny_corpus(tmp_path / "c", [("train", "s1", "a", N_A)], size=32)
    real = GeneratorWindows(ClipStore(root, "train", 32), with_mouth=True)
    with pytest.raises(CorpusError, match="mouth.csv"):
        real[0]  # a corpus without SynthTalk's mouth.csv (a real one)
    table = _write_mouths(root, N_A)
    ds = GeneratorWindows(ClipStore(root, "train", 32), with_mouth=True)
    for i in (0, 4, len(ds) - 1):
        s = ds[i]
        start = int(s["start"])
        assert s["mouth"].shape == (5, 7) and s["mouth"].dtype == torch.float32
        np.testing.assert_array_equal(s["mouth"].numpy(), table[start : start + 5])
    assert "mouth" not in GeneratorWindows(ClipStore(root, "train", 32))[0]


@pytest.mark.parametrize("n_audio", [6, N_A + 3])  # a block inside the clip; one longer than the clip
def test_audio_frames_add_consecutive_mel_windows_with_their_mouths_and_change_nothing_else(
    tmp_path, n_audio
):
    """audio_frames=A: A consecutive frames of the same clip (edge-replicated past its end), each
    mel window the clip's own for that frame and each mouth row that frame's; every other key
    is drawn exactly as without the option, and it refuses to run without the mouths."""
    root = make_tiny_corpus(tmp_path / "c", [("train", "s1", "a", N_A)], size=32, clicks={"a": CLICK})
    table = _write_mouths(root, N_A)
    store = ClipStore(root, "train", 32)
    plain = GeneratorWindows(store, seed=5, with_mouth=True)
    extra = GeneratorWindows(store, seed=5, with_mouth=True, audio_frames=n_audio)
    mel = melspectrogram(store.audio(0))
    starts = set()
    for i in range(len(plain)):
        a, b = plain[i], extra[i]
        for k in ("face", "gt", "lips", "mel", "clip_mel", "mouth"):
            assert torch.equal(a[k], b[k]), k
        assert b["audio_mel"].shape == (n_audio, 1, 80, 16) and b["audio_mouth"].shape == (n_audio, 7)
        frames = np.rint(b["audio_mouth"][:, 0].numpy() * 1000).astype(int)  # column 0 encodes the frame
        assert np.all(np.diff(frames) == 1) or (n_audio > N_A and frames[-1] == N_A - 1)
        np.testing.assert_array_equal(b["audio_mouth"].numpy(), table[frames])
        np.testing.assert_allclose(b["audio_mel"][:, 0].numpy(), mel_windows(mel, frames), atol=1e-5)
        starts.add(int(frames[0]))
    assert len(starts) > 1 if n_audio < N_A else starts == {0}  # random starts; none left in a short clip
    with pytest.raises(ValueError, match="with_mouth"):
        GeneratorWindows(store, audio_frames=4)


def test_pause_frames_hold_the_last_frame_and_mouth_over_room_tone(tmp_path):
    """pause_frames=P: each clip gains P frames that repeat its last image and mouth row, with
    room tone (quiet, not silent, fixed by the seed) after its own audio, which is untouched;
    the windows run into the pause, and a clip that does not end in silence is refused."""
    P = 6
    root = make_tiny_corpus(tmp_path / "c", [("train", "s1", "a", N_A)], size=32)
    table = _write_mouths(root, N_A, last_phone="sil")
    plain, paused = ClipStore(root, "train", 32), ClipStore(root, "train", 32, pause_frames=P, seed=3)
    assert paused.clips[0].n_frames == N_A + P and paused.clips[0].recorded_frames == N_A
    wav, spoken = paused.audio(0), plain.audio(0)
    assert wav.shape == ((N_A + P) * 640,)
    np.testing.assert_array_equal(wav[: N_A * 640], spoken)
    tone_rms, speech_rms = np.sqrt(np.mean(wav[N_A * 640 :] ** 2)), np.sqrt(np.mean(spoken**2))
    assert 10 ** (-60 / 20) <= tone_rms / speech_rms <= 10 ** (-20 / 20)
    np.testing.assert_array_equal(wav, ClipStore(root, "train", 32, pause_frames=P, seed=3).audio(0))
    assert not np.array_equal(wav, ClipStore(root, "train", 32, pause_frames=P, seed=4).audio(0))
    mouths = paused.mouth(0)
    np.testing.assert_array_equal(mouths[:N_A], table)
    np.testing.assert_array_equal(mouths[N_A:], np.repeat(table[-1:], P, axis=0))
    idx = np.arange(N_A - 2, N_A + P)
    held = np.minimum(idx, N_A - 1)
    np.testing.assert_array_equal(paused.frames(0, idx), plain.frames(0, held))
    preloaded = ClipStore(root, "train", 32, preload=True, pause_frames=P, seed=3)
    np.testing.assert_array_equal(preloaded.frames(0, idx), plain.frames(0, held))

    ds = GeneratorWindows(paused, with_mouth=True)
    assert len(ds) == N_A + P - 4
    last = ds[len(ds) - 1]  # wholly inside the pause
    assert _frames(last["gt"]) == [N_A - 1] * 5
    np.testing.assert_array_equal(last["mouth"].numpy(), np.repeat(table[-1:], 5, axis=0))
    np.testing.assert_allclose(
        last["mel"][:, 0].numpy(),
        mel_windows(melspectrogram(wav), list(range(N_A + P - 5, N_A + P))),
        atol=1e-5,
    )
    assert float(last["mel"].std()) < float(ds[0]["mel"].std())  # room tone is near-flat, speech is not

    _write_mouths(root, N_A, last_phone="AA")
    with pytest.raises(CorpusError, match="not silence"):
        ClipStore(root, "train", 32, pause_frames=P).audio(0)
    bare = make_tiny_corpus(tmp_path / "real", [("train", "s1", "a", N_A)], size=32)
    with pytest.raises(CorpusError, match="pause_frames"):
        ClipStore(bare, "train", 32, pause_frames=P).audio(0)  # a real corpus has no mouth.csv
    with pytest.raises(ValueError, match="pause_frames"):
        ClipStore(root, "train", 32, pause_frames=-1)
