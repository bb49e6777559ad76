"""Training CLIs on a tiny corpus: they train, log, export, stop on budget and resume exactly."""

from __future__ import annotations

import csv
import dataclasses
import json
import math

import pytest
import torch
from safetensors.torch import load_file

from lipmem_core.checkpoint import load_checkpoint
from lipmem_core.config import LossWeights, TrainConfig
from lipmem_core.errors import CheckpointError, CorpusError
from lipmem_core.train import generator as train_generator
from lipmem_core.train import syncnet as train_syncnet
from lipmem_core.train.args import base_parser, train_config
from lipmem_core.train.distributed import DistEnv, ResumableSampler
from lipmem_core.train.loop import CsvLog
from tests.tiny_corpus import make_tiny_corpus
from tests.tiny_model import model_flags, tiny_config

CFG = tiny_config(face_widths=(8, 8, 16, 16), audio_width=8)
TINY = [*model_flags(CFG), "--workers", "0", "--device", "cpu"]
CLIPS = [("train", "s1", "a", 12), ("train", "s2", "b", 10), ("val", "s3", "c", 12)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_tiny_corpus(tmp_path_factory.mktemp("corpus"), CLIPS, size=32)


@pytest.fixture(scope="module")
def mouth_corpus(tmp_path_factory):
    """The same clips with SynthTalk's mouth.csv (a real corpus has none: `corpus`)."""
    return _with_mouths(make_tiny_corpus(tmp_path_factory.mktemp("mouth-corpus"), CLIPS, size=32))


@pytest.fixture(scope="module")
def syncnet_run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("sync")
    metrics = train_syncnet.main(
        ["--data", str(corpus), "--out", str(out), "--steps", "3", "--batch-size", "4", "--log-every", "1",
         "--val-every", "2", *TINY]
    )  # fmt: skip
    return out, metrics


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _gen_args(corpus, syncnet_dir, out, steps, *extra):
    return ["--data", str(corpus), "--out", str(out), "--syncnet", str(syncnet_dir / "checkpoint"),
            "--steps", str(steps), "--batch-size", "2", "--log-every", "1", "--val-every", "100",
            "--gan-start", "1", *TINY, *extra]  # fmt: skip


def _run_states(*runs):
    """The saved training state (modules, optimisers, counters) of each run directory."""
    return tuple(load_file(str(run / "state.safetensors")) for run in runs)


def _assert_tensors_equal(a, b):
    """Every tensor of state `a` equals the one of the same name in `b`, bit for bit."""
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _refusal(corpus, syncnet_dir, out, capsys, *extra) -> str:
    """Run a one-step command that training must refuse (argparse's exit); return its stderr."""
    with pytest.raises(SystemExit):
        train_generator.main(_gen_args(corpus, syncnet_dir, out, 1, *extra))
    return capsys.readouterr().err


def test_syncnet_trains_logs_and_exports(syncnet_run, corpus):
    out, metrics = syncnet_run
    rows = _rows(out / "log.csv")
    assert [r["step"] for r in rows[:3]] == ["1", "2", "3"]
    assert rows[1]["val_sync_loss"] != "" and float(rows[0]["sync_loss"]) > 0
    assert set(metrics) == {"val_sync_loss", "val_sync_acc"}
    loaded = load_checkpoint(out / "checkpoint")
    assert loaded.kind == "syncnet"
    meta = json.loads((out / "checkpoint" / "config.json").read_text())["metadata"]
    assert meta["steps"] == 3 and meta["training_data"]["train"]["clips"] == 2
    assert meta["training_data"]["kind"] == "synthtalk"  # read by the pipeline's domain notice
    assert meta["final_metrics"] == pytest.approx(metrics)
    assert "--steps" in meta["command"] and "git_commit" in meta


def test_generator_resumes_exactly(corpus, syncnet_run, tmp_path):
    sync_dir, _ = syncnet_run
    straight, split = tmp_path / "straight", tmp_path / "split"
    train_generator.main(_gen_args(corpus, sync_dir, straight, 4))
    train_generator.main(_gen_args(corpus, sync_dir, split, 2))
    assert json.loads((split / "state.json").read_text())["step"] == 2
    before = load_file(str(split / "state.safetensors"))
    train_generator.main(_gen_args(corpus, sync_dir, split, 4))  # the same command, longer: resumes at 2
    a, b = _run_states(straight, split)
    assert a.keys() == b.keys() and any(k.startswith("optim/discriminator/") for k in a)
    assert "module/slot_reseeder/usage" in a  # the re-seeder's counts resume with the run
    _assert_tensors_equal(a, b)
    changed = [k for k in before if k.startswith("module/") and not torch.equal(before[k], b[k])]
    assert changed  # steps 3 and 4 did train
    assert [r["step"] for r in _rows(split / "log.csv")] == [r["step"] for r in _rows(straight / "log.csv")]
    assert {"l1", "av_sync", "vv_sync", "gan", "align", "store", "disc", "reseeded"} <= set(
        _rows(split / "log.csv")[-2]
    )
    assert load_checkpoint(split / "checkpoint").kind == "generator"


def test_a_resume_with_another_configuration_is_recorded_as_a_stage(corpus, syncnet_run, tmp_path):
    """A longer --steps continues the same stage; a resume that adds a loss starts a new stage
    from its step, with the fields it changed; the exported metadata lists the stages, and a
    run in one stage lists none."""
    sync_dir, _ = syncnet_run
    out = tmp_path / "staged"
    train_generator.main(_gen_args(corpus, sync_dir, out, 1))
    train_generator.main(_gen_args(corpus, sync_dir, out, 2))  # longer, the same configuration
    assert "stages" not in load_checkpoint(out / "checkpoint").metadata
    train_generator.main(_gen_args(corpus, sync_dir, out, 3, "--loss", "l1_mouth=2", "--workers", "0"))
    stages = [{"from_step": 0}, {"from_step": 2, "changes": {"train.loss.l1_mouth": [0.0, 2.0]}}]
    assert load_checkpoint(out / "checkpoint").metadata["stages"] == stages
    train_generator.main(_gen_args(corpus, sync_dir, out, 4, "--loss", "l1_mouth=2"))  # resumed as it was
    assert json.loads((out / "state.json").read_text())["stages"] == stages
    assert load_checkpoint(out / "checkpoint").metadata["stages"] == stages


def test_time_budget_stops_cleanly_and_no_memory_ablation(corpus, syncnet_run, tmp_path):
    sync_dir, _ = syncnet_run
    out = tmp_path / "budget"
    metrics = train_generator.main(
        _gen_args(corpus, sync_dir, out, 1000, "--minutes", "0.0001", "--no-memory")
    )
    assert json.loads((out / "state.json").read_text())["step"] == 1
    assert "val_slots_used" not in metrics and metrics["val_psnr"] > 0
    assert load_checkpoint(out / "checkpoint").config.use_memory is False


@pytest.mark.parametrize("flag", ["--bf16", "--channels-last"])
def test_speed_flags_train(corpus, syncnet_run, tmp_path, flag):
    sync_dir, _ = syncnet_run
    metrics = train_generator.main(_gen_args(corpus, sync_dir, tmp_path / "run", 2, flag))
    row = _rows(tmp_path / "run" / "log.csv")[-1]
    assert all(math.isfinite(float(row[k])) for k in ("l1", "av_sync", "vv_sync", "gan", "disc"))
    assert all(math.isfinite(v) for v in metrics.values())


def test_resuming_with_another_model_is_refused(corpus, syncnet_run, tmp_path):
    sync_dir, _ = syncnet_run
    out = tmp_path / "mismatch"
    train_generator.main(_gen_args(corpus, sync_dir, out, 1))
    with pytest.raises(CheckpointError, match="start the run over"):
        train_generator.main(_gen_args(corpus, sync_dir, out, 2, "--model", "n_slots=4"))


def test_syncnet_checkpoint_is_required_for_the_generator(corpus, syncnet_run, tmp_path):
    sync_dir, _ = syncnet_run
    gen = tmp_path / "gen"
    train_generator.main(_gen_args(corpus, sync_dir, gen, 1))
    args = _gen_args(corpus, sync_dir, tmp_path / "bad", 1)
    args[args.index("--syncnet") + 1] = str(gen / "checkpoint")
    with pytest.raises(CheckpointError, match="SyncNet"):
        train_generator.main(args)


def test_csv_log_widens_and_drops_steps_a_resume_repeats(tmp_path):
    path = tmp_path / "log.csv"
    log = CsvLog(path, keep_until=0)
    log.write({"step": 1, "time": 0.1, "l1": 0.5})
    log.write({"step": 2, "time": 0.2, "l1": 0.4, "val_l1": 0.3})
    log.write({"step": 3, "time": 0.3, "l1": 0.3})
    log.write({"step": 3, "time": 0.35, "val_psnr": 20.0})  # final validation of the same step
    rows = _rows(path)
    assert [r["val_l1"] for r in rows] == ["", "0.3", ""]
    assert [r["val_psnr"] for r in rows] == ["", "", "20.0"] and rows[2]["l1"] == "0.3"
    CsvLog(path, keep_until=2).write({"step": 3, "time": 9.0, "l1": 0.2})
    rows = _rows(path)
    assert [(r["step"], r["l1"]) for r in rows] == [("1", "0.5"), ("2", "0.4"), ("3", "0.2")]


def test_sampler_shards_resume_and_tag_epochs():
    data = list(range(10))
    one = ResumableSampler(data, DistEnv(0, 1, 0, torch.device("cpu")), seed=5)
    one.set_position(3, 0)
    order = list(one)
    assert sorted(i for _, i in order) == data and {e for e, _ in order} == {3}
    one.set_position(3, 4)  # resume after 4 samples of epoch 3
    assert list(one) == order[4:] and len(one) == 6
    ranks = [ResumableSampler(data, DistEnv(r, 2, r, torch.device("cpu")), seed=5) for r in (0, 1)]
    for r in ranks:
        r.set_position(3, 0)
    shards = [list(r) for r in ranks]
    assert [x for pair in zip(*shards, strict=True) for x in pair] == order  # interleaved = one process
    one.set_position(4, 0)
    assert [i for _, i in one] != [i for _, i in order]  # a new epoch, a new order


def test_no_reseed_trains_without_the_reseeder(corpus, syncnet_run, tmp_path):
    sync_dir, _ = syncnet_run
    train_generator.main(_gen_args(corpus, sync_dir, tmp_path / "plain", 1, "--no-reseed"))
    state = load_file(str(tmp_path / "plain" / "state.safetensors"))
    assert not any(k.startswith("module/slot_reseeder/") for k in state)
    meta = json.loads((tmp_path / "plain" / "checkpoint" / "config.json").read_text())["metadata"]
    assert meta["train_config"]["reseed_dead_slots"] is False


def test_loss_weights_from_the_command_line():
    parser = base_parser("train", "test")
    args = parser.parse_args(["--data", "d", "--out", "o", "--loss", "memory=1", "--loss", "gan=0"])
    loss = train_config(args).loss
    assert (loss.memory, loss.gan, loss.l1) == (1.0, 0.0, LossWeights().l1)
    for bad in ("memory", "sparsity=1", "memory=lots"):
        with pytest.raises(SystemExit, match="TERM=WEIGHT"):
            train_config(parser.parse_args(["--data", "d", "--out", "o", "--loss", bad]))


def test_train_overrides_and_memory_learning_rate():
    from lipmem_core.model.generator import LipMemGenerator
    from lipmem_core.train.generator import generator_param_groups

    parser = base_parser("train", "test")
    args = parser.parse_args(
        ["--data", "d", "--out", "o", "--train", "lr=3e-4", "--train", "memory_lr_scale=10"]
    )
    tcfg = train_config(args)
    assert (tcfg.lr, tcfg.memory_lr_scale) == (3e-4, 10.0)
    by_audio = train_config(
        parser.parse_args(["--data", "d", "--out", "o", "--train", "memory_init_by=audio"])
    )
    assert by_audio.memory_init_by == "audio" and tcfg.memory_init_by == "lip"
    with pytest.raises(SystemExit, match="choose 'lip' or 'audio'"):
        train_config(parser.parse_args(["--data", "d", "--out", "o", "--train", "memory_init_by=face"]))
    for bad in ("lr", "loss=1", "nonsense=2"):
        with pytest.raises(SystemExit):
            train_config(parser.parse_args(["--data", "d", "--out", "o", "--train", bad]))
    cfg = tiny_config(dim=16, face_widths=(8, 8, 16, 16), audio_width=8)
    gen = LipMemGenerator(cfg)
    opt = torch.optim.Adam(generator_param_groups(gen, tcfg), lr=tcfg.lr)
    rest, memory = opt.param_groups
    assert rest["lr"] == 3e-4 and memory["lr"] == pytest.approx(3e-3)
    assert memory["params"] == [gen.memory.key, gen.memory.value]
    assert len(rest["params"]) + 2 == len(list(gen.parameters()))  # every parameter exactly once
    nomem = LipMemGenerator(dataclasses.replace(cfg, use_memory=False))
    assert len(generator_param_groups(nomem, tcfg)) == 1


def test_train_step_reseeds_dead_slots(corpus):
    """On a re-seeding step, dead value/key rows are replaced, live rows only trained, and the
    re-seeded rows get a fresh usage share."""
    from torch.utils.data import DataLoader

    from lipmem_core.config import TrainConfig
    from lipmem_core.data.datasets import ClipStore, GeneratorWindows
    from lipmem_core.model.syncnet import SyncNet
    from lipmem_core.train.generator import GeneratorTask

    cfg = dataclasses.replace(CFG, lip_path_audio=False)
    env = DistEnv(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    torch.manual_seed(0)
    syncnet = SyncNet(cfg).eval().requires_grad_(False)
    task = GeneratorTask(cfg, TrainConfig(reseed_dead_slots=True), env, syncnet, val=None, bf16=False)
    windows = GeneratorWindows(ClipStore(corpus, "train", 32), cfg.n_frames, None, seed=0)
    batch = next(iter(DataLoader(windows, batch_size=4)))
    task.reseeder.usage.zero_()  # every slot dead before the step
    before = task.gen.memory.value.detach().clone()
    logs = task.train_step(batch, task.reseeder.every)
    after = task.gen.memory.value.detach()
    moved = (after - before).norm(dim=1) / before.norm(dim=1)
    n = int(logs["reseeded"])
    assert 1 <= n <= cfg.n_slots
    assert torch.all(moved[:n] > 0.5)  # replaced by lip queries, not nudged by one Adam step
    assert torch.all(moved[n:] < 0.01)
    assert torch.all(task.reseeder.usage[:n] == 1.0 / cfg.n_slots)


def test_memory_initialised_from_data_at_its_step(corpus):
    """At memory_init_step K and V jump to k-means means of lip/audio queries, and their Adam
    moments start again; before that step nothing of the kind happens."""
    from torch.utils.data import DataLoader

    from lipmem_core.config import TrainConfig
    from lipmem_core.data.datasets import ClipStore, GeneratorWindows
    from lipmem_core.model.syncnet import SyncNet
    from lipmem_core.train.generator import GeneratorTask
    from lipmem_core.train.syncnet import val_loader

    cfg = CFG
    env = DistEnv(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    torch.manual_seed(0)
    windows = GeneratorWindows(ClipStore(corpus, "train", 32), cfg.n_frames, None, seed=0)
    tcfg = TrainConfig(memory_init_step=2, memory_init_windows=8)
    task = GeneratorTask(
        cfg, tcfg, env, SyncNet(cfg).eval().requires_grad_(False), val=None, bf16=False,
        init_windows=val_loader(windows, tcfg.memory_init_windows, 4),
    )  # fmt: skip
    batch = next(iter(DataLoader(windows, batch_size=2)))
    memory = task.gen.memory
    task.train_step(batch, 1)
    before = memory.value.detach().clone()
    task.train_step(batch, 1)  # not the init step: an ordinary Adam step
    assert ((memory.value - before).norm(dim=1) / before.norm(dim=1)).max() < 0.01
    assert task.opt_g.state[memory.value]["step"] == 2
    before = memory.value.detach().clone()
    task.train_step(batch, 2)
    assert ((memory.value - before).norm(dim=1) / before.norm(dim=1)).min() > 0.5  # every slot moved
    assert task.opt_g.state[memory.value]["step"] == 1  # moments restarted at the init


def test_hard_alignment_waits_for_the_memory_initialisation():
    """With memory_init_step, both hard-alignment terms are off before the k-means and on from
    it (probe N: from step 0 they collapse both addressings onto one slot); other weights and
    runs without memory_init_step are untouched."""
    from types import SimpleNamespace

    from lipmem_core.config import LossWeights, TrainConfig
    from lipmem_core.train.generator import GeneratorTask

    w = LossWeights(align_hard=0.5, align_hard_lip=1.0, usage=1.0)
    task = SimpleNamespace(tcfg=TrainConfig(memory_init_step=150, loss=w))
    early = GeneratorTask.loss_weights(task, 149)
    assert early.align_hard == 0 and early.align_hard_lip == 0 and early.usage == 1.0
    assert GeneratorTask.loss_weights(task, 150) == w
    never = SimpleNamespace(tcfg=TrainConfig(memory_init_step=0, loss=w))
    assert GeneratorTask.loss_weights(never, 0) == w


def _with_mouths(root):
    """Give every clip of a tiny corpus SynthTalk's mouth.csv (the 7 exact parameters per frame)."""
    import numpy as np
    import pandas as pd

    from lipmem_core.data.corpus import clip_dir, read_manifest
    from lipmem_core.data.synth.mouth import MOUTH_PARAMS

    for row in read_manifest(root).itertuples(index=False):
        n = int(row.frames)
        table = pd.DataFrame({"frame": range(n)})
        for j, name in enumerate(MOUTH_PARAMS):
            table[name] = np.linspace(0.0, 1.0, n) * (j + 1) / 7
        table["phone"] = "AA"
        table.to_csv(clip_dir(root, row) / "mouth.csv", index=False)
    return root


def test_recall_mouth_builds_the_recall_read_out_for_a_memory_only_and_needs_mouth_csv(
    mouth_corpus, corpus, syncnet_run, tmp_path
):
    """--loss recall_mouth switches on ModelConfig.recall_readout for a memory model (the
    exported checkpoint carries it and its head), never for the ablation, and a corpus without
    SynthTalk's mouth.csv (a real one) is refused with a message naming the file."""
    sync_dir, _ = syncnet_run
    with pytest.raises(CorpusError, match="mouth.csv"):
        train_generator.main(_gen_args(corpus, sync_dir, tmp_path / "refused", 1, "--loss", "recall_mouth=1"))
    out = tmp_path / "memory"
    train_generator.main(_gen_args(mouth_corpus, sync_dir, out, 2, "--loss", "recall_mouth=1"))
    assert all(math.isfinite(float(r["recall_mouth"])) for r in _rows(out / "log.csv"))
    loaded = load_checkpoint(out / "checkpoint")
    assert loaded.config.recall_readout and not loaded.config.mouth_readout
    assert any(k.startswith("recall_readout.") for k in load_file(out / "checkpoint" / "model.safetensors"))
    ablation = tmp_path / "ablation"
    train_generator.main(
        _gen_args(mouth_corpus, sync_dir, ablation, 1, "--loss", "recall_mouth=1", "--no-memory")
    )
    assert load_checkpoint(ablation / "checkpoint").config.recall_readout is False
    assert "recall_mouth" not in _rows(ablation / "log.csv")[-1]


def test_audio_frames_train_the_audio_read_outs_and_need_a_mouth_loss(
    mouth_corpus, syncnet_run, tmp_path, capsys
):
    """--train audio_frames=A: the extra frames' read-out terms are logged for both models (the
    recall and slot terms for the memory only, the slot term from the k-means on); without a
    mouth loss there is nothing for those frames to train, and the command is refused."""
    sync_dir, _ = syncnet_run
    assert "add --loss mouth_params" in _refusal(
        mouth_corpus, sync_dir, tmp_path / "refused", capsys, "--train", "audio_frames=4"
    )
    flags = ["--train", "audio_frames=4", "--loss", "mouth_params=1", "--loss", "recall_mouth=1",
             "--loss", "slot_mouth=1", "--train", "memory_init_step=2", "--model", f"n_slots={CFG.n_slots}"]  # fmt: skip
    out = tmp_path / "memory"
    train_generator.main(_gen_args(mouth_corpus, sync_dir, out, 3, *flags))
    rows = _rows(out / "log.csv")
    assert all(float(r["audio_mouth_params"]) > 0 and float(r["audio_recall_mouth"]) > 0 for r in rows)
    assert [bool(r.get("audio_slot_mouth")) for r in rows] == [False, False, True]
    assert load_checkpoint(out / "checkpoint").metadata["train_config"]["audio_frames"] == 4
    ablation = tmp_path / "ablation"
    train_generator.main(_gen_args(mouth_corpus, sync_dir, ablation, 2, *flags, "--no-memory"))
    last = _rows(ablation / "log.csv")[-1]
    assert float(last["audio_mouth_params"]) > 0
    assert not {"audio_recall_mouth", "audio_slot_mouth"} & {k for k, v in last.items() if v}


def test_memory_only_options_leave_the_ablation_unchanged(mouth_corpus, syncnet_run, tmp_path):
    """The README trains the ablation without the memory-only options and calls it the same
    recipe: with --no-memory they must have nothing to act on, so both commands give the same
    weights bit for bit."""
    sync_dir, _ = syncnet_run
    base = ["--no-memory", "--model", "ablation_lip_path=true", "--loss", "mouth_params=1"]
    memory_only = ["--loss", "align=1", "--loss", "recall_mouth=1", "--loss", "usage=1", "--loss", "consensus=1",
                   "--loss", "slot_mouth=1",
                   "--train", "memory_lr_scale=10", "--train", "memory_init_step=1", "--train", "memory_init_by=audio"]  # fmt: skip
    train_generator.main(_gen_args(mouth_corpus, sync_dir, tmp_path / "plain", 2, *base))
    train_generator.main(_gen_args(mouth_corpus, sync_dir, tmp_path / "with", 2, *base, *memory_only))
    plain = load_file(tmp_path / "plain" / "checkpoint" / "model.safetensors")
    other = load_file(tmp_path / "with" / "checkpoint" / "model.safetensors")
    assert plain.keys() == other.keys()
    _assert_tensors_equal(plain, other)


def test_a_run_resumed_with_a_later_gan_start_repeats_a_straight_run(corpus, syncnet_run, tmp_path):
    """The shipped memory model was trained to the GAN's start (step 2,000) and resumed with
    --gan-start 3000: nothing uses the discriminator before its start step, so that split run
    must end bit-identical to a straight run with the later start, and neither logs L_gan."""
    sync_dir, _ = syncnet_run
    straight, split = tmp_path / "straight", tmp_path / "split"
    train_generator.main(_gen_args(corpus, sync_dir, straight, 3, "--gan-start", "10"))
    train_generator.main(_gen_args(corpus, sync_dir, split, 2, "--gan-start", "2"))
    train_generator.main(_gen_args(corpus, sync_dir, split, 3, "--gan-start", "10"))
    assert not any(r.get("gan") for r in _rows(straight / "log.csv") + _rows(split / "log.csv"))
    a, b = _run_states(straight, split)
    assert a.keys() == b.keys()
    _assert_tensors_equal(a, b)


def test_consensus_starts_with_a_full_queue_after_the_k_means_and_resumes_exactly(
    corpus, syncnet_run, tmp_path
):
    """--loss consensus: no term before memory_init_step (its queue of 10 frames, one batch of
    2 windows x 5, is full by then), then logged; its queue is saved with the run,
    so a split run ends bit-identical to a straight one."""
    sync_dir, _ = syncnet_run
    flags = ["--loss", "consensus=1", "--train", "consensus_queue=10", "--train", "memory_init_step=2"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    train_generator.main(_gen_args(corpus, sync_dir, straight, 4, *flags))
    train_generator.main(_gen_args(corpus, sync_dir, split, 3, *flags))
    train_generator.main(_gen_args(corpus, sync_dir, split, 4, *flags))
    rows = _rows(straight / "log.csv")
    # logged steps count from 1: the k-means runs in the third; the first filled the queue
    assert [bool(r.get("consensus")) for r in rows] == [False, False, True, True]
    assert float(rows[2]["consensus"]) > 0
    a, b = _run_states(straight, split)
    assert int(a["module/slot_consensus/filled"]) == 10
    _assert_tensors_equal(a, b)


def test_slot_mouth_groups_the_memory_by_mouth_shape_at_the_k_means_step(
    mouth_corpus, corpus, syncnet_run, tmp_path, capsys
):
    """--loss slot_mouth: refused without memory_init_step and for a corpus without mouth.csv;
    at the k-means step the mouth groups are fitted (saved with the run) and the term is logged
    from then on; a no-memory run ignores it."""
    sync_dir, _ = syncnet_run
    assert "add --train memory_init_step=N" in _refusal(
        mouth_corpus, sync_dir, tmp_path / "refused", capsys, "--loss", "slot_mouth=1"
    )
    flags = ["--loss", "slot_mouth=1", "--train", "memory_init_step=2", "--model", f"n_slots={CFG.n_slots}"]
    with pytest.raises(CorpusError, match="slot_mouth"):  # real corpora have no exact mouths
        train_generator.main(_gen_args(corpus, sync_dir, tmp_path / "real-run", 3, *flags))
    out = tmp_path / "run"
    train_generator.main(_gen_args(mouth_corpus, sync_dir, out, 3, *flags))
    assert [bool(r.get("slot_mouth")) for r in _rows(out / "log.csv")] == [False, False, True]
    state = load_file(str(out / "state.safetensors"))
    assert bool(state["module/mouth_slots/fitted"]) and state["module/mouth_slots/centres"].abs().sum() > 0
    ablation = tmp_path / "ablation"
    train_generator.main(
        _gen_args(mouth_corpus, sync_dir, ablation, 1, "--loss", "slot_mouth=1", "--no-memory")
    )
    assert "slot_mouth" not in _rows(ablation / "log.csv")[-1]


def test_slot_mouth_lip_weighs_the_lip_side_of_the_mouth_slots_from_the_k_means_step(
    mouth_corpus, syncnet_run, tmp_path, capsys
):
    """--loss slot_mouth_lip: refused without slot_mouth; logged from the k-means step on, and
    what it logs is the lip side of slot_mouth (CE(A_aud, s*) + CE(A_lip, s*)), so never more."""
    sync_dir, _ = syncnet_run
    assert "add --loss slot_mouth=W" in _refusal(
        mouth_corpus, sync_dir, tmp_path / "refused", capsys, "--loss", "slot_mouth_lip=1"
    )
    flags = ["--loss", "slot_mouth=1", "--loss", "slot_mouth_lip=2", "--train", "memory_init_step=2",
             "--model", f"n_slots={CFG.n_slots}"]  # fmt: skip
    out = tmp_path / "run"
    train_generator.main(_gen_args(mouth_corpus, sync_dir, out, 3, *flags))
    rows = _rows(out / "log.csv")
    assert [bool(r.get("slot_mouth_lip")) for r in rows] == [False, False, True]
    assert 0 < float(rows[2]["slot_mouth_lip"]) < float(rows[2]["slot_mouth"])


def test_slot_drawn_mouth_starts_with_the_mouth_slots_and_resumes_exactly(
    mouth_corpus, syncnet_run, tmp_path, capsys
):
    """--loss slot_drawn_mouth: refused without slot_mouth (no groups to judge slots against);
    logged from the k-means step on, with the reader fitted from the first step but no
    drawn_mouth term; a split run ends bit-identical to a straight one (the decoded slots are
    drawn from the reseeded RNG)."""
    sync_dir, _ = syncnet_run
    assert "add --loss slot_mouth=W" in _refusal(
        mouth_corpus, sync_dir, tmp_path / "refused", capsys, "--loss", "slot_drawn_mouth=1"
    )
    flags = ["--loss", "slot_mouth=1", "--loss", "slot_drawn_mouth=1", "--train", "memory_init_step=2",
             "--model", f"n_slots={CFG.n_slots}"]  # fmt: skip
    straight, split = tmp_path / "straight", tmp_path / "split"
    train_generator.main(_gen_args(mouth_corpus, sync_dir, straight, 3, *flags))
    train_generator.main(_gen_args(mouth_corpus, sync_dir, split, 2, *flags))
    train_generator.main(_gen_args(mouth_corpus, sync_dir, split, 3, *flags))
    rows = _rows(straight / "log.csv")
    assert [bool(r.get("slot_drawn_mouth")) for r in rows] == [False, False, True]
    assert float(rows[2]["slot_drawn_mouth"]) > 0
    assert all(float(r["mouth_reader"]) > 0 and not r.get("drawn_mouth") for r in rows)
    a, b = _run_states(straight, split)
    _assert_tensors_equal(a, b)


def test_drawn_mouth_judges_both_models_and_resumes_exactly(
    mouth_corpus, corpus, syncnet_run, tmp_path, capsys
):
    """--loss drawn_mouth: logged with the reader's own fit for the memory model and the
    ablation; the reader and its optimiser resume with the run (a split run ends bit-identical
    to a straight one) but are not exported; refused for a corpus without mouth.csv, and
    audio_frames still needs a read-out loss (the reader only judges decoded frames)."""
    sync_dir, _ = syncnet_run
    flags = ["--loss", "drawn_mouth=1"]
    with pytest.raises(CorpusError, match="drawn_mouth"):  # real corpora have no exact mouths
        train_generator.main(_gen_args(corpus, sync_dir, tmp_path / "real-run", 1, *flags))
    assert "add --loss mouth_params" in _refusal(
        mouth_corpus, sync_dir, tmp_path / "refused", capsys, *flags, "--train", "audio_frames=4"
    )
    straight, split = tmp_path / "straight", tmp_path / "split"
    train_generator.main(_gen_args(mouth_corpus, sync_dir, straight, 3, *flags))
    train_generator.main(_gen_args(mouth_corpus, sync_dir, split, 2, *flags))
    train_generator.main(_gen_args(mouth_corpus, sync_dir, split, 3, *flags))
    a, b = _run_states(straight, split)
    assert any(k.startswith("module/mouth_reader/") for k in a)
    assert any(k.startswith("optim/mouth_reader/") for k in a)
    _assert_tensors_equal(a, b)
    rows = _rows(straight / "log.csv")
    assert all(float(r["drawn_mouth"]) > 0 and float(r["mouth_reader"]) > 0 for r in rows)
    assert not any("reader" in k for k in load_file(straight / "checkpoint" / "model.safetensors"))
    ablation = tmp_path / "ablation"
    train_generator.main(_gen_args(mouth_corpus, sync_dir, ablation, 1, *flags, "--no-memory"))
    assert float(_rows(ablation / "log.csv")[-1]["drawn_mouth"]) > 0


def test_learning_rate_factor_is_constant_then_a_half_cosine_to_zero():
    from lipmem_core.train.generator import learning_rate_factor

    assert [learning_rate_factor(s, 10, 0) for s in range(10)] == [1.0] * 10  # off: the paper's constant
    factors = [learning_rate_factor(s, 10, 4) for s in range(10)]
    assert factors[:7] == [1.0] * 7  # steps 0-6 before the last 4 (6 is where the cosine starts)
    assert factors[7:] == pytest.approx([0.5 * (1 + math.cos(math.pi * k / 4)) for k in (1, 2, 3)])
    assert all(a > b for a, b in zip(factors[6:], factors[7:], strict=False))
    assert 0 < learning_rate_factor(9999, 10000, 400) < 1e-4  # the last step still learns, barely


def test_lr_decay_scales_every_group_over_the_last_steps_and_resumes_exactly(corpus, syncnet_run, tmp_path):
    """With lr_decay_steps the generator's groups (K and V at their own scale) and the
    discriminator's fall together over the run's last steps, counted from --steps; a run split
    in two ends bit-identical to a straight one, and a decay longer than the run is refused."""
    sync_dir, _ = syncnet_run
    decay = ("--train", "lr_decay_steps=2", "--train", "memory_lr_scale=10")
    straight, split, constant = tmp_path / "straight", tmp_path / "split", tmp_path / "constant"
    train_generator.main(_gen_args(corpus, sync_dir, straight, 4, *decay))
    train_generator.main(_gen_args(corpus, sync_dir, split, 3, "--train", "memory_lr_scale=10"))
    train_generator.main(_gen_args(corpus, sync_dir, split, 4, *decay))  # resumed into the decay
    train_generator.main(_gen_args(corpus, sync_dir, constant, 4, "--train", "memory_lr_scale=10"))
    factors = [float(r["lr_factor"]) for r in _rows(straight / "log.csv") if r.get("lr_factor")]
    assert factors == pytest.approx([1.0, 1.0, 1.0, 0.5])  # steps 0-3; the cosine starts at step 2
    groups = json.loads((straight / "state.json").read_text())["optimizers"]
    assert [g["lr"] for g in groups["generator"]["param_groups"]] == pytest.approx([5e-5, 5e-4])
    assert groups["discriminator"]["param_groups"][0]["lr"] == pytest.approx(2.5e-4)
    _assert_tensors_equal(*_run_states(straight, split))
    a, b = _run_states(straight, constant)
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("module/"))  # the last step differs
    for bad in ("lr_decay_steps=3", "lr_decay_steps=-1"):  # longer than the 2-step run; negative
        with pytest.raises(SystemExit):
            train_generator.main(_gen_args(corpus, sync_dir, tmp_path / "refused", 2, "--train", bad))
    assert not (tmp_path / "refused").exists()  # refused before anything is written


@pytest.mark.parametrize("flag", ["freeze_features", "freeze_renderer"])
@pytest.mark.parametrize("model", [(), ("--no-memory", "--model", "ablation_lip_path=true")])
def test_freezing_the_features_or_the_renderer_trains_only_the_other_part(
    corpus, syncnet_run, tmp_path, model, flag
):
    """A run resumed with freeze_features moves every weight of the renderer (face encoder,
    decoder) and none of the features that make the decoder input (memory, encoders of audio
    and lips, fusion); freeze_renderer the converse. The resume is recorded as a stage (the
    model card's phrase: test_paper_deviations_name_every_non_paper_mechanism)."""
    sync_dir, _ = syncnet_run
    out = tmp_path / "frozen"
    train_generator.main(_gen_args(corpus, sync_dir, out, 2, *model))
    (before,) = _run_states(out)
    train_generator.main(_gen_args(corpus, sync_dir, out, 4, *model, "--train", f"{flag}=true"))
    (after,) = _run_states(out)
    buffers = ("running_mean", "running_var", "num_batches_tracked")  # BatchNorm statistics still update
    names = [k.removeprefix("module/generator/") for k in after if k.startswith("module/generator/")]
    names = [n for n in names if not n.endswith(buffers)]
    renderer = [n for n in names if n.split(".")[0] in train_generator.RENDERER_PARTS]
    features = [n for n in names if n not in renderer]
    assert renderer and {n.split(".")[0] for n in features} >= {"audio_encoder", "lip_encoder"}
    assert ("memory" in {n.split(".")[0] for n in features}) == (not model)
    frozen, trained = (features, renderer) if flag == "freeze_features" else (renderer, features)
    changed = {
        n: not torch.equal(before[f"module/generator/{n}"], after[f"module/generator/{n}"]) for n in names
    }
    for n in frozen:
        assert not changed[n], n
    if flag == "freeze_features":  # every renderer weight learns
        assert all(changed[n] for n in trained)
    else:  # the parts on the audio and lip paths learn (a read-out without its loss has no gradient)
        moved = {n.split(".")[0] for n in trained if changed[n]}
        assert moved >= {"audio_encoder", "lip_encoder", "memory" if not model else "fusion"}
    metadata = load_checkpoint(out / "checkpoint").metadata
    assert metadata["stages"][1] == {"from_step": 2, "changes": {f"train.{flag}": [False, True]}}


def test_freeze_features_and_freeze_renderer_together_are_refused():
    with pytest.raises(ValueError, match="train nothing"):
        TrainConfig(freeze_features=True, freeze_renderer=True)
