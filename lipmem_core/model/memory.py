"""Audio-Lip Memory (SyncTalkFace, docs/PAPER.md "Audio-Lip Memory"). Pure tensor maths, no I/O.

S slots: key memory K (S x D) is addressed by audio, value memory V (S x D) stores lip motion.

    q = Linear_q(f_aud)                  A_aud = softmax(kappa * cos(q, K))
    v = Linear_v(f_lip)                  A_lip = softmax(kappa * cos(v, V))
    r_aud = A_aud @ V  (inference)       r_lip = A_lip @ V  (lip path, training)
    L_store = MSE(A_lip @ V, v.detach()) L_align = KL(A_lip.detach() || A_aud)
    fused = Linear(Dropout(concat[f_aud, r]))   (2D -> D), fed to the decoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class MemoryOutput:
    """Everything the generator, the losses and the analysis need from one memory pass.

    N is the number of frames (B * T flattened). Lip-side fields are None without f_lip.
    """

    fused_aud: Tensor  # (N, D) decoder input of the audio-addressed path
    addr_aud: Tensor  # (N, S) A_aud, rows sum to 1
    recall_aud: Tensor  # (N, D) r_aud = A_aud @ V
    audio_query: Tensor  # (N, D) q = Linear_q(f_aud)
    fused_lip: Tensor | None = None  # (N, D) decoder input of the lip-addressed path
    addr_lip: Tensor | None = None  # (N, S) A_lip
    recall_lip: Tensor | None = None  # (N, D) r_lip = A_lip @ V
    lip_query: Tensor | None = None  # (N, D) v = Linear_v(f_lip)
    loss_store: Tensor | None = None  # scalar L_store
    loss_align: Tensor | None = None  # scalar L_align


def cosine_logits(x: Tensor, memory: Tensor, kappa: float) -> Tensor:
    """kappa * cos(x_n, M_s): (N, D), (S, D) -> (N, S), always computed in float32.

    Under bf16 autocast the cosine would be rounded to 8 significant bits: near cos 0.9 that
    moves kappa * cos in steps of about 0.06, a quarter of the typical gap between a frame's
    best and second-best slot, so the argmax would flip on rounding noise.
    """
    with torch.autocast(x.device.type, enabled=False):
        return kappa * F.normalize(x.float(), dim=-1) @ F.normalize(memory.float(), dim=-1).t()  # (N, S)


class AudioLipMemory(nn.Module):
    """Key memory K (audio side) and value memory V (lip side), both S x D, init N(0, 0.5).

    kappa is the inverse temperature ("radius") of the cosine addressing: larger kappa gives
    sharper (lower-entropy) addresses.
    """

    def __init__(
        self,
        dim: int,
        n_slots: int,
        kappa: float = 16.0,
        dropout: float = 0.5,
        lip_path_audio: bool = True,
        centre_queries: bool = False,
        lip_path_audio_share: float = 0.0,
        audio_query_detached: bool = False,
        recall_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= recall_drop < 1.0:
            raise ValueError(f"recall_drop={recall_drop}: a share of frames, from 0 to below 1")
        if not 0.0 <= lip_path_audio_share <= 1.0:
            raise ValueError(f"lip_path_audio_share={lip_path_audio_share}: a share of frames, from 0 to 1")
        if lip_path_audio and lip_path_audio_share > 0:
            raise ValueError(
                "lip_path_audio_share applies with lip_path_audio=False (the lip path hears f_aud always)"
            )
        self.dim, self.n_slots, self.kappa, self.lip_path_audio = dim, n_slots, kappa, lip_path_audio
        self.lip_path_audio_share = lip_path_audio_share
        self.centre_queries = centre_queries
        self.audio_query_detached = audio_query_detached
        self.recall_drop = recall_drop
        if centre_queries:  # running means of q and v (ModelConfig.centre_queries)
            self.register_buffer("audio_centre", torch.zeros(dim))
            self.register_buffer("lip_centre", torch.zeros(dim))
        self.key = nn.Parameter(torch.randn(n_slots, dim) * 0.5)  # K (S, D), N(0, 0.5)
        self.value = nn.Parameter(torch.randn(n_slots, dim) * 0.5)  # V (S, D), N(0, 0.5)
        self.query_proj = nn.Linear(dim, dim)  # Linear_q
        self.lip_proj = nn.Linear(dim, dim)  # Linear_v
        self.fusion = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * dim, dim))

    def audio_query(self, f_aud: Tensor) -> Tensor:
        """q = Linear_q(f_aud), minus its running mean with centre_queries: (N, D) -> (N, D).

        With audio_query_detached the query reads f_aud with its gradient stopped: addressing
        then trains Linear_q and K only, and f_aud learns from its own branch of the fusion.
        """
        q = self.query_proj(f_aud.detach() if self.audio_query_detached else f_aud)
        return self._centred(q, self.audio_centre) if self.centre_queries else q

    def lip_query(self, f_lip: Tensor) -> Tensor:
        """v = Linear_v(f_lip), minus its running mean with centre_queries: (N, D) -> (N, D)."""
        v = self.lip_proj(f_lip)
        return self._centred(v, self.lip_centre) if self.centre_queries else v

    def _centred(self, x: Tensor, centre: Tensor) -> Tensor:
        """x minus a running mean of x (EMA 0.05, updated in training mode only).

        Not in the paper. Queries that share a large common direction have cosines of about the
        same size to every slot, so kappa * cos barely separates slots and every address is
        nearly uniform; without the common part the cosines spread out.
        """
        if self.training:
            with torch.no_grad():
                centre.lerp_(x.detach().float().mean(0), 0.05)
        return x - centre

    def address_audio(self, f_aud: Tensor) -> Tensor:
        """A_aud = softmax(kappa * cos(q, K)), q = audio_query(f_aud): (N, D) -> (N, S)."""
        return cosine_logits(self.audio_query(f_aud), self.key, self.kappa).softmax(-1)  # (N, S)

    def address_lip(self, f_lip: Tensor) -> Tensor:
        """A_lip = softmax(kappa * cos(v, V)), v = lip_query(f_lip): (N, D) -> (N, S)."""
        return cosine_logits(self.lip_query(f_lip), self.value, self.kappa).softmax(-1)  # (N, S)

    def recall(self, address: Tensor) -> Tensor:
        """r = A @ V for given addressing weights: (..., S) -> (..., D).

        A one-hot address returns exactly that slot's value row.
        """
        return address @ self.value  # (..., D)

    def fuse(self, f_aud: Tensor, recall: Tensor) -> Tensor:
        """Decoder input: Linear(Dropout(concat[f_aud, r])): (N, D), (N, D) -> (N, D)."""
        return self.fusion(torch.cat([f_aud, recall], dim=-1))  # (N, D)

    def forward(self, f_aud: Tensor, f_lip: Tensor | None = None) -> MemoryOutput:
        """f_aud (N, D) [, f_lip (N, D)] -> MemoryOutput.

        With f_lip (training) both paths are computed along with L_store and L_align.
        """
        q = self.audio_query(f_aud)  # (N, D)
        logits_aud = cosine_logits(q, self.key, self.kappa)  # (N, S)
        addr_aud = logits_aud.softmax(-1)  # (N, S)
        recall_aud = self.recall(addr_aud)  # (N, D)
        out = MemoryOutput(
            fused_aud=self.fuse(f_aud, self._fused_recall(recall_aud)),
            addr_aud=addr_aud,
            recall_aud=recall_aud,
            audio_query=q,
        )
        if f_lip is None:
            return out
        v = self.lip_query(f_lip)  # (N, D)
        addr_lip = cosine_logits(v, self.value, self.kappa).softmax(-1)  # (N, S)
        recall_lip = self.recall(addr_lip)  # (N, D)
        out.fused_lip = self.fuse(self._heard_by_lip_path(f_aud), recall_lip)  # (N, D)
        out.addr_lip, out.recall_lip, out.lip_query = addr_lip, recall_lip, v
        out.loss_store = storage_loss(recall_lip, v)
        out.loss_align = alignment_loss(addr_lip, logits_aud.log_softmax(-1))
        return out

    def _fused_recall(self, recall_aud: Tensor) -> Tensor:
        """The recall the audio path fuses with f_aud: (N, D) -> (N, D).

        In training a share `recall_drop` of frames, drawn per frame, fuses zeros instead, so the
        decoder learns to draw from f_aud alone too; the returned r_aud (read-outs, losses) keeps
        every frame's recall. In eval mode nothing is dropped.
        """
        if not self.training or self.recall_drop == 0.0:
            return recall_aud
        keeps = torch.rand(recall_aud.shape[0], 1, device=recall_aud.device) >= self.recall_drop  # (N, 1)
        return recall_aud * keeps.to(recall_aud.dtype)

    def _heard_by_lip_path(self, f_aud: Tensor) -> Tensor:
        """The audio feature the lip path fuses with r_lip: (N, D) -> (N, D).

        lip_path_audio=False: none (zeros), so the lips must pass through the memory; in
        training a share `lip_path_audio_share` of frames, drawn per frame, still hears f_aud.
        """
        if self.lip_path_audio:
            return f_aud
        if not self.training or self.lip_path_audio_share == 0.0:
            return torch.zeros_like(f_aud)
        hears = torch.rand(f_aud.shape[0], 1, device=f_aud.device) < self.lip_path_audio_share  # (N, 1)
        return f_aud * hears.to(f_aud.dtype)


def storage_loss(recall_lip: Tensor, lip_query: Tensor) -> Tensor:
    """L_store = MSE(A_lip @ V, v.detach()): the value memory learns to reconstruct v."""
    return F.mse_loss(recall_lip, lip_query.detach())


def alignment_loss(addr_lip: Tensor, log_addr_aud: Tensor) -> Tensor:
    """L_align = KL(A_lip.detach() || A_aud), averaged over frames.

    Takes log A_aud (from log_softmax, for stability). Zero when the addressings are equal.
    """
    return F.kl_div(log_addr_aud, addr_lip.detach(), reduction="batchmean")


def hard_alignment_loss(address: Tensor, target_address: Tensor) -> Tensor:
    """Not in the paper: cross-entropy of one addressing against the other's argmax slot.

    address, target_address (..., S) -> scalar >= 0, averaged over frames; the target's argmax
    is detached, so only `address` learns. Used both ways (LossWeights.align_hard: A_aud learns
    argmax A_lip; LossWeights.align_hard_lip: A_lip learns argmax A_aud). L_align (a KL to the
    whole of A_lip) asks A_aud to copy A_lip's spread: when A_lip is soft, so is the target,
    and the audio side learns to spread its weight rather than to pick. Inference recalls
    through A_aud alone, so what matters is that its top slot is the one the lips wrote.
    """
    n_slots = address.shape[-1]
    target = target_address.detach().reshape(-1, n_slots).argmax(-1)  # (N,)
    return F.nll_loss(log_address(address).reshape(-1, n_slots), target)


def log_address(address: Tensor) -> Tensor:
    """log A in float32, finite where a weight underflowed to 0: (..., S) -> (..., S)."""
    return address.float().clamp_min(1e-30).log()


def usage_loss(address: Tensor) -> Tensor:
    """Not in the paper: 1 - H(mean address) / log S, the batch's slot usage made uniform.

    address (..., S) -> scalar in [0, 1]: 0 when the frames of the batch use every slot
    equally on average, 1 when all of them put their weight on one slot (wav2vec 2.0's codebook
    diversity loss, for the memory collapse of docs/TRAINING.md).
    """
    mean = address.reshape(-1, address.shape[-1]).mean(0)  # (S,)
    return 1.0 - address_entropy(mean) / math.log(address.shape[-1])


def sharpness_loss(address: Tensor) -> Tensor:
    """Not in the paper: mean per-frame entropy of the addresses / log S, in [0, 1].

    address (..., S) -> scalar: 0 when every frame puts all its weight on one slot, 1 when every
    frame spreads it evenly. `usage_loss` alone is also satisfied by every frame addressing all
    slots evenly (the batch mean is then uniform too); together they ask for what a clustering
    of frames into slots needs: each frame commits to one slot, and the slots are shared out
    (their difference is the mutual information between frames and slots, as in IIC).
    """
    return address_entropy(address).mean() / math.log(address.shape[-1])


def address_entropy(address: Tensor) -> Tensor:
    """Shannon entropy (nats) of each address row: (..., S) -> (...)."""
    return -(address * address.clamp_min(1e-12).log()).sum(-1)


@torch.no_grad()
def spherical_kmeans(x: Tensor, k: int, iters: int = 25, seed: int = 0) -> Tensor:
    """Cluster the directions of x (N, D) into k groups (cosine k-means) -> labels (N,).

    Seeds are picked farthest-point first from a random start (k-means++ without the
    sampling, deterministic for a seed); a cluster that empties takes the point farthest from
    its centre. N must be at least k.
    """
    if len(x) < k:
        raise ValueError(f"k-means of {len(x)} points into {k} clusters: collect at least {k} frames")
    u = F.normalize(x.float(), dim=-1)  # (N, D)
    g = torch.Generator().manual_seed(seed)
    chosen = [int(torch.randint(len(u), (1,), generator=g))]
    best = u @ u[chosen[0]]  # (N,) cosine to the nearest seed so far
    for _ in range(k - 1):
        i = int(best.argmin())
        chosen.append(i)
        best = torch.maximum(best, u @ u[i])
    centres = u[chosen].clone()  # (k, D)
    for _ in range(iters):
        sim = u @ centres.t()  # (N, k)
        labels = sim.argmax(-1)  # (N,)
        sums = torch.zeros_like(centres).index_add_(0, labels, u)  # (k, D)
        counts = torch.bincount(labels, minlength=k)  # (k,)
        for c in (counts == 0).nonzero().flatten().tolist():
            far = int(sim.amax(-1).argmin())
            sums[c], counts[c] = u[far], 1
            sim[far] = float("inf")  # no two empty clusters take the same point
        centres = F.normalize(sums, dim=-1)
    return (u @ centres.t()).argmax(-1)  # (N,)


@torch.no_grad()
def init_from_data(
    memory: AudioLipMemory,
    lip_query: Tensor,
    audio_query: Tensor,
    seed: int = 0,
    by: str = "lip",
    labels: Tensor | None = None,
) -> None:
    """Not in the paper: set V and K from data instead of N(0, 0.5) (docs/TRAINING.md).

    lip_query v (N, D) and audio_query q (N, D) of the same N training frames. The frames are
    clustered into S groups by cosine k-means of their lip queries (`by="lip"`) or of their
    audio queries (`by="audio"`); V_s becomes the mean v of group s (what L_store asks
    A_lip @ V to reproduce) and K_s the mean q of the same frames, so each slot's key starts
    where the audio of the lips it stores is. Lip queries also carry the speaker's look, so
    lip clusters split by identity as well as by mouth shape; audio clusters group frames by
    what is said, and their mean lip query averages the speakers out. Given `labels` (N,) in
    [0, S), the frames are grouped by them instead (model.mouth_slots: by mouth shape).
    """
    if by not in ("lip", "audio"):
        raise ValueError(f"memory initialisation by {by!r}: choose 'lip' or 'audio'")
    if labels is None:
        labels = spherical_kmeans(
            lip_query if by == "lip" else audio_query, memory.n_slots, seed=seed
        )  # (N,)
    counts = torch.bincount(labels, minlength=memory.n_slots).clamp_min(1)[:, None].float()  # (S, 1)
    v_mean = torch.zeros_like(memory.value, dtype=torch.float32).index_add_(0, labels, lip_query.float())
    q_mean = torch.zeros_like(memory.key, dtype=torch.float32).index_add_(0, labels, audio_query.float())
    memory.value.copy_(v_mean / counts)
    memory.key.copy_(q_mean / counts)


class DeadSlotReseeder(nn.Module):
    """Training aid, not in the paper: re-seed slots that the lip addressing has abandoned.

    With randomly initialised memories in D dimensions and lip queries v that share a large
    common direction, the soft k-means that L_store performs lets the few slots nearest to the
    queries win every frame; the others get almost no gradient and stay dead (the shipped
    3000-step run ended with 2 of 96 argmax slots in use). VQ codebooks have the same failure
    and the same remedy (dead-code restart): every `every` steps, each slot that is the argmax
    of A_lip for less than a `threshold / S` share of recent frames gets V_s <- v_i and
    K_s <- q_i of a frame i of the current batch, chosen farthest-point first (lowest cosine
    to every live or newly seeded value), so the revived slot starts where unrepresented lip
    shapes are and its key starts where the matching audio is. Inference and the model's parameters are unchanged.

    `usage` (S,) is the exponential moving average (factor `decay`) of the share of frames
    whose argmax slot of A_lip is s. Hard counts, as VQ codebooks count: the soft A_lip mass
    never quite vanishes (every slot keeps ~1e-3 of it) although no frame ever picks the slot.
    It is a buffer, so a resumed run continues bit-exactly.
    """

    def __init__(self, n_slots: int, decay: float = 0.99, threshold: float = 0.1, every: int = 25) -> None:
        super().__init__()
        self.n_slots, self.decay, self.threshold, self.every = n_slots, decay, threshold, every
        self.register_buffer("usage", torch.full((n_slots,), 1.0 / n_slots))

    def due(self, step: int) -> bool:
        """True on the steps where dead slots are re-seeded."""
        return step % self.every == 0

    @torch.no_grad()
    def step(
        self, memory: AudioLipMemory, addr_lip: Tensor, lip_query: Tensor, audio_query: Tensor, step: int
    ) -> int:
        """Update `usage` with A_lip (N, S); on every `every`-th step re-seed dead slots from
        the frames' v (N, D) and q (N, D). Returns the number of slots re-seeded."""
        picked = F.one_hot(addr_lip.detach().argmax(-1), self.n_slots).float().mean(0)  # (S,)
        self.usage.mul_(self.decay).add_(picked, alpha=1.0 - self.decay)
        if not self.due(step):
            return 0
        is_dead = self.usage < self.threshold / self.n_slots  # (S,)
        dead = is_dead.nonzero().flatten()  # (M,)
        if dead.numel() == 0:
            return 0
        v = F.normalize(lip_query.detach().float(), dim=-1)  # (N, D)
        live = F.normalize(memory.value.detach().float()[~is_dead], dim=-1)  # (S - M, D)
        # best cosine of each frame to the values that stay: (N,)
        fit = (v @ live.t()).amax(-1) if len(live) else v.new_full((len(v),), -1.0)
        chosen: list[int] = []
        for _ in range(min(dead.numel(), len(v))):
            i = int(fit.argmin())
            if fit[i] >= 0.9:  # every frame of the batch already has a close slot
                break
            chosen.append(i)
            fit = torch.maximum(fit, v @ v[i])  # frames close to the new seed are now represented
            fit[i] = float("inf")
        if not chosen:
            return 0
        slots = dead[: len(chosen)]
        idx = torch.tensor(chosen, device=v.device)
        memory.value[slots] = lip_query.detach()[idx].to(memory.value.dtype)
        memory.key[slots] = audio_query.detach()[idx].to(memory.key.dtype)
        self.usage[slots] = 1.0 / self.n_slots
        return len(chosen)
