"""Train the LipMem generator (SyncTalkFace) against a frozen SyncNet expert.

    python -m lipmem_core.train --data DIR --syncnet runs/syncnet/checkpoint --out runs/lipmem \\
        [--preset cpu|paper] [--no-memory] [--steps N] [--minutes M]
    torchrun --nproc_per_node N -m lipmem_core.train ...   (same arguments; DDP)

Per step (docs/PAPER.md "Losses"): the generator minimises
10 L1 + 0.2 L_av + 0.2 L_vv + 0.2 L_gan + 0.2 (L_align + L_store) with Adam(1e-4, (0.5, 0.999));
from `gan_start_step` on, the quality discriminator is trained too (Adam 5e-4) and L_gan is
added. Before that (the warm-up) the generator learns reconstruction and sync alone, so the
discriminator does not first learn to reject blurry noise. See docs/TRAINING.md.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from lipmem_core.checkpoint import load_checkpoint, save_checkpoint
from lipmem_core.config import LossWeights, ModelConfig, TrainConfig
from lipmem_core.data.augment import AudioAugment
from lipmem_core.data.datasets import ClipStore, GeneratorWindows
from lipmem_core.errors import CheckpointError
from lipmem_core.evaluation.metrics import psnr
from lipmem_core.model.consensus import SlotConsensus
from lipmem_core.model.discriminator import QualityDiscriminator
from lipmem_core.model.generator import GeneratorOutput, LipMemGenerator, to_channels_last
from lipmem_core.model.losses import av_sync_loss, decoded_paths, discriminator_loss, generator_loss, l1_loss
from lipmem_core.model.memory import DeadSlotReseeder, init_from_data
from lipmem_core.model.mouth_reader import DrawnMouthReader, drawn_loss, fit_loss, slot_drawn_loss
from lipmem_core.model.mouth_slots import MouthSlots
from lipmem_core.model.syncnet import SyncNet
from lipmem_core.train.args import (
    autocast,
    base_parser,
    loop_config,
    model_config,
    setup,
    train_config,
    write_run_json,
)
from lipmem_core.train.distributed import DistEnv, broadcast_from_first, shutdown, unwrap, wrap_ddp
from lipmem_core.train.loop import command_line, run_training
from lipmem_core.train.syncnet import to_device, val_loader


def _add_term(
    loss: torch.Tensor, logs: dict[str, float], name: str, weight: float, term: torch.Tensor | None
) -> torch.Tensor:
    """loss + weight * term, logged under `name` and in the total; a None term adds nothing."""
    if term is None:
        return loss
    logs[name] = term.item()
    logs["total"] += weight * logs[name]
    return loss + weight * term


def load_syncnet(path: str | Path, img_size: int, device: torch.device) -> SyncNet:
    """The frozen expert: eval mode (BatchNorm running statistics), no gradients."""
    loaded = load_checkpoint(path, kind="syncnet")
    if loaded.config.img_size != img_size:
        raise CheckpointError(
            f"the SyncNet in {path} was trained on {loaded.config.img_size} px faces, the generator uses "
            f"{img_size} px: train a SyncNet at this size (train_syncnet --img-size {img_size})"
        )
    net = loaded.model.to(device).eval()
    net.requires_grad_(False)
    return net


def generator_param_groups(gen: LipMemGenerator, tcfg: TrainConfig) -> list[dict[str, Any]]:
    """Adam parameter groups: K and V at `lr * memory_lr_scale`, everything else at `lr`."""
    memory = [] if gen.memory is None else [gen.memory.key, gen.memory.value]
    ids = {id(p) for p in memory}
    rest = [p for p in gen.parameters() if id(p) not in ids]
    groups: list[dict[str, Any]] = [{"params": rest}]
    if memory:
        groups.append({"params": memory, "lr": tcfg.lr * tcfg.memory_lr_scale})
    return groups


RENDERER_PARTS = ("face_encoder", "decoder")  # what draws the frame from the decoder input


def freeze_features(gen: LipMemGenerator) -> None:
    """Stop the gradient of every part of `gen` but the face encoder and the decoder: f_aud,
    the memory (K, V, Linear_q, Linear_v, the fusion), f_lip and the read-outs keep their weights.

    Their parameters stay in the optimiser (a resumed run's Adam state still matches) and
    Adam skips them, as their gradients stay None. BatchNorm statistics keep updating in
    training mode, as everywhere else in training.
    """
    for name, part in gen.named_children():
        if name not in RENDERER_PARTS:
            part.requires_grad_(False)


def freeze_renderer(gen: LipMemGenerator) -> None:
    """The converse of `freeze_features`: the face encoder and the decoder keep their weights,
    so the renderer draws the decoder input as it did, and only what makes that input trains."""
    for name in RENDERER_PARTS:
        getattr(gen, name).requires_grad_(False)


def learning_rate_factor(step: int, max_steps: int, decay_steps: int) -> float:
    """The multiplier of every learning rate at optimisation step `step` (0-based): 1, then a
    half cosine from 1 towards 0 over the last `decay_steps` of `max_steps` (0: always 1)."""
    start = max_steps - decay_steps
    if decay_steps <= 0 or step < start:
        return 1.0
    done = min(step - start, decay_steps) / decay_steps
    return 0.5 * (1.0 + math.cos(math.pi * done))


class GeneratorTask:
    """Generator + discriminator training with the SyncNet expert frozen."""

    kind = "generator"

    def __init__(
        self,
        cfg: ModelConfig,
        tcfg: TrainConfig,
        env: DistEnv,
        syncnet: SyncNet,
        val: DataLoader,
        bf16: bool,
        nhwc: bool = False,
        init_windows: DataLoader | None = None,
    ) -> None:
        self.env, self.tcfg, self.val, self.bf16, self.syncnet = env, tcfg, val, bf16, syncnet
        self.init_windows = init_windows  # training windows for memory_init_step
        self.gen = LipMemGenerator(cfg).to(env.device)
        self.disc = QualityDiscriminator(cfg).to(env.device)
        if tcfg.freeze_features:  # before DDP, which registers only parameters that need gradients
            freeze_features(self.gen)
        if tcfg.freeze_renderer:
            freeze_renderer(self.gen)
        if nhwc:  # before the DDP wrappers and the optimisers see the parameters
            for net in (self.gen, self.disc, syncnet):
                to_channels_last(net)
        self.gen_ddp, self.disc_ddp = wrap_ddp(self.gen, env), wrap_ddp(self.disc, env)
        self.opt_g = torch.optim.Adam(generator_param_groups(self.gen, tcfg), lr=tcfg.lr, betas=tcfg.betas)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=tcfg.disc_lr, betas=tcfg.betas)
        # the rates lr_decay_steps scales: a resumed optimiser's groups hold the decayed ones
        self.base_lrs = {opt: [group["lr"] for group in opt.param_groups] for opt in (self.opt_g, self.opt_d)}
        self.gen_ddp.train()
        self.disc_ddp.train()
        self.reseeder = (
            DeadSlotReseeder(cfg.n_slots).to(env.device)
            if cfg.use_memory and tcfg.reseed_dead_slots
            else None
        )
        self.consensus = (
            SlotConsensus(cfg.dim, tcfg.consensus_queue, tcfg.consensus_eps).to(env.device)
            if cfg.use_memory and tcfg.loss.consensus > 0
            else None
        )
        self.mouth_slots = (  # fitted at memory_init_step, which main() requires for it
            MouthSlots(cfg.n_slots).to(env.device) if cfg.use_memory and tcfg.loss.slot_mouth > 0 else None
        )
        # the drawn-mouth reader, trained at the generator's learning rate; it only judges and
        # is saved with the run, not exported
        judges_slots = self.mouth_slots is not None and tcfg.loss.slot_drawn_mouth > 0
        self.mouth_reader = (
            DrawnMouthReader(cfg.img_size).to(env.device)
            if tcfg.loss.drawn_mouth > 0 or judges_slots
            else None
        )
        self.reader_ddp, self.opt_r = None, None
        if self.mouth_reader is not None:
            if nhwc:
                to_channels_last(self.mouth_reader)
            self.reader_ddp = wrap_ddp(self.mouth_reader, env)
            self.opt_r = torch.optim.Adam(self.mouth_reader.parameters(), lr=tcfg.lr, betas=tcfg.betas)

    def state_modules(self) -> dict[str, nn.Module]:
        modules: dict[str, nn.Module] = {"generator": self.gen, "discriminator": self.disc}
        if self.reseeder is not None:
            modules["slot_reseeder"] = self.reseeder
        if self.consensus is not None:
            modules["slot_consensus"] = self.consensus
        if self.mouth_slots is not None:
            modules["mouth_slots"] = self.mouth_slots
        if self.mouth_reader is not None:
            modules["mouth_reader"] = self.mouth_reader
        return modules

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = {"generator": self.opt_g, "discriminator": self.opt_d}
        if self.opt_r is not None:
            opts["mouth_reader"] = self.opt_r
        return opts

    def train_step(self, batch: Mapping[str, Any], step: int) -> dict[str, float]:
        if self.gen.memory is not None and step == self.tcfg.memory_init_step > 0:
            self._init_memory()
        b = to_device(batch, self.env.device)
        gan = step >= self.tcfg.gan_start_step
        weights = self.loss_weights(step)
        with autocast(self.bf16, self.env.device):
            out = self.gen_ddp(b["face"], b["mel"], b["lips"], b.get("audio_mel"))
            # frozen judges get the plain modules: their DDP wrappers must only see their own step
            loss, logs = generator_loss(out, b, self.syncnet, self.gen, self.disc if gan else None, weights)
        if self.consensus is not None and weights.consensus > 0:
            assert self.gen.memory is not None and out.addr_aud is not None and out.addr_lip is not None
            term = self.consensus.loss(
                self.gen.memory, out.addr_aud, out.addr_lip
            )  # None until its queue is full
            loss = _add_term(loss, logs, "consensus", weights.consensus, term)
        if self.mouth_slots is not None and weights.slot_mouth > 0:
            assert out.addr_aud is not None and out.addr_lip is not None
            term = self.mouth_slots.loss(out.addr_aud, out.addr_lip, b["mouth"])
            loss = _add_term(loss, logs, "slot_mouth", weights.slot_mouth, term)
            if out.audio_only is not None:
                assert out.audio_only.addr_aud is not None
                term = self.mouth_slots.cross_entropy(out.audio_only.addr_aud, b["audio_mouth"])
                loss = _add_term(loss, logs, "audio_slot_mouth", weights.slot_mouth, term)
            if weights.slot_mouth_lip > 0:
                term = self.mouth_slots.cross_entropy(out.addr_lip, b["mouth"])
                loss = _add_term(loss, logs, "slot_mouth_lip", weights.slot_mouth_lip, term)
        if self.mouth_reader is not None and weights.drawn_mouth > 0:
            with autocast(self.bf16, self.env.device):
                term = drawn_loss(self.mouth_reader, decoded_paths(out), b["mouth"])
            loss = _add_term(loss, logs, "drawn_mouth", weights.drawn_mouth, term)
        if self.mouth_reader is not None and self.mouth_slots is not None and weights.slot_drawn_mouth > 0:
            # one random slot per window, from torch's RNG, which the loop reseeds every step, so a
            # resumed run decodes the same slots; the plain module decodes, a second use of the
            # decoder in this backward (not yet run under torchrun)
            slots = torch.randint(self.gen.cfg.n_slots, (b["face"].shape[0],), device=self.env.device)
            with autocast(self.bf16, self.env.device):
                term = slot_drawn_loss(self.gen, self.mouth_reader, self.mouth_slots, b["face"], slots)
            loss = _add_term(loss, logs, "slot_drawn_mouth", weights.slot_drawn_mouth, term)
        if self.tcfg.lr_decay_steps:
            factor = learning_rate_factor(step, self.tcfg.max_steps, self.tcfg.lr_decay_steps)
            for opt, rates in self.base_lrs.items():
                for group, rate in zip(opt.param_groups, rates, strict=True):
                    group["lr"] = rate * factor
            logs["lr_factor"] = factor
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        if self.mouth_reader is not None:
            self._fit_mouth_reader(b, logs)
        if self.consensus is not None:
            assert out.audio_query is not None and out.lip_query is not None
            self.consensus.push(out.audio_query, out.lip_query)
        if self.reseeder is not None:
            self._reseed(out, step, logs)
        if gan:
            with autocast(self.bf16, self.env.device):
                d_loss, d_logs = discriminator_loss(self.disc_ddp, b["gt"], out.frames.float())
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            logs.update(d_logs, disc=d_loss.item())
        return logs

    def _fit_mouth_reader(self, b: Mapping[str, Any], logs: dict[str, float]) -> None:
        """One step of the drawn-mouth reader on the batch's real target frames, after the
        generator's step, so the generator was judged by the reader as it stood."""
        assert self.reader_ddp is not None and self.opt_r is not None
        with autocast(self.bf16, self.env.device):
            fit = fit_loss(self.reader_ddp, b["gt"], b["mouth"])
        self.opt_r.zero_grad(set_to_none=True)
        fit.backward()
        self.opt_r.step()
        logs["mouth_reader"] = fit.item()

    def loss_weights(self, step: int) -> LossWeights:
        """The loss weights at `step`: with memory_init_step, the terms that target slots (the
        hard alignments, the consensus, the mouth slots and their drawn mouths) wait for the
        k-means (before it, a random memory's argmax is one slot for every frame, and a hard
        target collapses both addressings onto it: docs/TRAINING.md, probe N)."""
        w = self.tcfg.loss
        if step < self.tcfg.memory_init_step and (
            w.align_hard or w.align_hard_lip or w.consensus or w.slot_mouth or w.slot_drawn_mouth
        ):
            return dataclasses.replace(
                w,
                align_hard=0.0,
                align_hard_lip=0.0,
                consensus=0.0,
                slot_mouth=0.0,
                slot_mouth_lip=0.0,
                slot_drawn_mouth=0.0,
            )
        return w

    @torch.no_grad()
    def _init_memory(self) -> None:
        """K and V from k-means of the lip (or audio) queries of fixed training windows (init_from_data).

        Their Adam moments are dropped: they belonged to the random initialisation. Every
        rank computes the same windows; rank 0's result is broadcast all the same.
        """
        memory = self.gen.memory
        assert memory is not None and self.gen.lip_encoder is not None
        if self.init_windows is None:
            raise ValueError("memory_init_step needs training windows (GeneratorTask(init_windows=...))")
        self.gen.eval()
        v, q, mouth = [], [], []
        for batch in self.init_windows:
            b = to_device(batch, self.env.device)
            n = b["lips"].shape[0] * b["lips"].shape[1]
            f_lip = self.gen.lip_encoder(b["lips"].flatten(0, 1))  # (N, D)
            f_aud = self.gen.encode_audio(b["mel"]).reshape(n, -1)  # (N, D)
            v.append(memory.lip_query(f_lip).float())
            q.append(memory.audio_query(f_aud).float())
            if self.mouth_slots is not None:
                mouth.append(b["mouth"].reshape(n, -1))  # (N, 7)
        self.gen.train()
        # with mouth slots the frames are grouped by their exact mouth shape, not by k-means of queries
        labels = (
            self.mouth_slots.fit(torch.cat(mouth), self.tcfg.seed) if self.mouth_slots is not None else None
        )
        init_from_data(
            memory,
            torch.cat(v),
            torch.cat(q),
            seed=self.tcfg.seed,
            by=self.tcfg.memory_init_by,
            labels=labels,
        )
        broadcast_from_first([memory.key, memory.value], self.env)
        if self.mouth_slots is not None:
            broadcast_from_first(list(self.mouth_slots.buffers()), self.env)
        for p in (memory.key, memory.value):
            self.opt_g.state.pop(p, None)
        if self.reseeder is not None:
            self.reseeder.usage.fill_(1.0 / memory.n_slots)

    def _reseed(self, out: GeneratorOutput, step: int, logs: dict[str, float]) -> None:
        """Dead-slot re-seeding (memory.DeadSlotReseeder); rank 0 decides, the others copy."""
        assert self.reseeder is not None and self.gen.memory is not None
        assert out.addr_lip is not None and out.lip_query is not None and out.audio_query is not None
        n = self.reseeder.step(
            self.gen.memory,
            out.addr_lip.flatten(0, 1),
            out.lip_query.flatten(0, 1),
            out.audio_query.flatten(0, 1),
            step,
        )
        memory = self.gen.memory
        if self.reseeder.due(step):
            broadcast_from_first([memory.key, memory.value, self.reseeder.usage], self.env)
        logs["reseeded"] = float(n)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """The inference path (audio addressing, no lips) on fixed val windows."""
        self.gen.eval()
        l1, av, p, n, agree = 0.0, 0.0, 0.0, 0, 0.0
        slots: set[int] = set()
        for batch in self.val:
            b = to_device(batch, self.env.device)
            with autocast(self.bf16, self.env.device):
                out = self.gen(b["face"], b["mel"])
                k = len(b["gt"])
                l1 += l1_loss(out.frames.float(), b["gt"]).item() * k
                av += av_sync_loss(out.frames.float(), b["clip_mel"], self.syncnet).item() * k
            fake = out.frames.float().permute(0, 2, 3, 4, 1).flatten(0, 1).cpu().numpy()  # (B*T, H, W, 3)
            real = b["gt"].permute(0, 2, 3, 4, 1).flatten(0, 1).cpu().numpy()
            p += psnr(np.clip(fake, -1, 1), real) * k
            if out.addr_aud is not None:
                slots.update(out.addr_aud.argmax(-1).flatten().tolist())
                # A_lip from the lip encoder alone: decoding the lip path would be wasted work
                addr_lip = self.gen.address_lips(b["lips"].flatten(0, 1)).reshape(out.addr_aud.shape)
                agree += (out.addr_aud.argmax(-1) == addr_lip.argmax(-1)).float().mean().item() * k
            n += k
        self.gen.train()
        metrics = {"val_l1": l1 / n, "val_av_sync": av / n, "val_psnr": p / n}
        if self.gen.memory is not None:
            metrics["val_slots_used"] = float(len(slots))  # distinct argmax slots of A_aud
            metrics["val_agree"] = agree / n  # argmax A_aud == argmax A_lip
        return metrics

    def export(self, out_dir: Path, metadata: dict[str, Any]) -> None:
        save_checkpoint(out_dir, unwrap(self.gen), kind="generator", metadata=metadata)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = base_parser("python -m lipmem_core.train", "Train the LipMem generator.")
    parser.add_argument("--syncnet", type=Path, required=True, help="SyncNet checkpoint (train_syncnet)")
    parser.add_argument("--no-memory", action="store_true", help="the no-memory ablation")
    parser.add_argument("--gan-start", type=int, help="step at which the GAN term starts (warm-up)")
    parser.add_argument(
        "--no-reseed", action="store_true", help="no dead-slot re-seeding of the memory (as in the paper)"
    )
    args = parser.parse_args(argv)
    cfg = model_config(args, **({"use_memory": False} if args.no_memory else {}))
    tcfg = train_config(args)
    if args.gan_start is not None:
        tcfg = dataclasses.replace(tcfg, gan_start_step=args.gan_start)
    if args.steps is not None:  # lr_decay_steps counts back from the run's end
        tcfg = dataclasses.replace(tcfg, max_steps=args.steps)
    if tcfg.lr_decay_steps > tcfg.max_steps:
        parser.error(
            f"--train lr_decay_steps={tcfg.lr_decay_steps}: longer than the run ({tcfg.max_steps} steps)"
        )
    if args.no_reseed:
        tcfg = dataclasses.replace(tcfg, reseed_dead_slots=False)
    if tcfg.loss.mouth_params > 0 and not cfg.mouth_readout:  # the loss needs the read-out
        cfg = dataclasses.replace(cfg, mouth_readout=True)
    if tcfg.loss.recall_mouth > 0 and cfg.use_memory and not cfg.recall_readout:  # as L_align, memory only
        cfg = dataclasses.replace(cfg, recall_readout=True)
    mouth_slots = cfg.use_memory and tcfg.loss.slot_mouth > 0  # as L_align, memory only
    if mouth_slots and tcfg.memory_init_step <= 0:
        parser.error(
            "--loss slot_mouth fits its mouth groups at memory_init_step: add --train memory_init_step=N"
        )
    if cfg.use_memory and tcfg.loss.slot_mouth_lip > 0 and not mouth_slots:
        parser.error("--loss slot_mouth_lip adds to the lip side of slot_mouth: add --loss slot_mouth=W")
    if cfg.use_memory and tcfg.loss.slot_drawn_mouth > 0 and not mouth_slots:
        parser.error(
            "--loss slot_drawn_mouth judges slots against their mouth-shape groups: add --loss slot_mouth=W"
        )
    read_out = tcfg.loss.mouth_params > 0 or cfg.recall_readout or mouth_slots
    with_mouth = read_out or tcfg.loss.drawn_mouth > 0
    if tcfg.audio_frames and not read_out:
        parser.error(
            "--train audio_frames trains the mouth read-outs from audio alone: add --loss mouth_params=W "
            "(or recall_mouth, slot_mouth)"
        )
    env = setup(args, tcfg.seed)
    try:
        syncnet = load_syncnet(args.syncnet, cfg.img_size, env.device)
        augment = AudioAugment() if tcfg.augment else None
        train_set = GeneratorWindows(
            ClipStore(args.data, "train", cfg.img_size, args.preload, tcfg.pause_frames, tcfg.seed),
            cfg.n_frames,
            augment,
            tcfg.seed,
            tcfg.ref_mouth_drop,
            with_mouth=with_mouth,
            audio_frames=tcfg.audio_frames,
        )
        val_set = GeneratorWindows(
            ClipStore(args.data, args.val_split, cfg.img_size), cfg.n_frames, None, tcfg.seed + 1
        )
        loop = loop_config(tcfg, args, env, tcfg.max_steps, tcfg.batch_size)
        val = val_loader(val_set, tcfg.val_windows, loop.batch_size)
        init_windows = (
            val_loader(train_set, tcfg.memory_init_windows, loop.batch_size)
            if tcfg.memory_init_step
            else None
        )
        task = GeneratorTask(cfg, tcfg, env, syncnet, val, args.bf16, args.channels_last, init_windows)
        write_run_json(args.out, env, model=cfg.to_dict(), train=tcfg.to_dict(), loop=vars(loop))
        meta = {
            "model_config": cfg.to_dict(),
            "train_config": tcfg.to_dict(),
            "syncnet": str(args.syncnet),
            "world_size": env.world_size,
            "command": command_line("lipmem_core.train", argv),
        }
        return run_training(task, train_set, loop, args.out, env, args.data, meta)
    finally:
        shutdown(env)
