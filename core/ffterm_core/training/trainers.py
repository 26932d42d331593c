"""Trainers for FF, BP/FF and BP, advancing one batch per `step()` (docs/algorithms.md#ff-training and after).

A trainer's position is (stage, epoch, batch). Every random choice is derived from the seed and the
position (the epoch's permutation, resampled negatives), so a checkpoint needs no RNG state and a
resumed run repeats an uninterrupted one exactly on the same device. Per-batch metrics accumulate on
the device; `end_epoch()` reads them once (no host sync per batch).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from ffterm_core.config import RunConfig
from ffterm_core.data.embedding import embed_labels, fixed_negative_pairs, resampled_negative_labels
from ffterm_core.data.prepare import PreparedData
from ffterm_core.device import matmul_precision
from ffterm_core.training.losses import goodness_loss
from ffterm_core.training.networks import BPNet, FFNet, goodness
from ffterm_core.training.predict import aggregate, label_goodness

INPUT_CHUNK = 4096


@dataclass
class EpochMetrics:
    loss: list[float]
    g_pos: list[float]
    g_neg: list[float]
    samples: int  # training samples processed (positives + negatives)


@dataclass
class Evaluation:
    predictions: torch.Tensor  # (N,)
    layer_predictions: torch.Tensor | None  # (N, L); None for BP
    accuracy: float
    layer_accuracy: list[float]


def _generator(*parts: int) -> torch.Generator:
    """A CPU generator seeded from a position, e.g. (seed, stage, epoch)."""
    seed = 0
    for p in parts:
        seed = (seed * 1_000_003 + int(p) + 1) % (2**63 - 1)
    return torch.Generator().manual_seed(seed)


def build_net(cfg: RunConfig, data: PreparedData, device: torch.device) -> FFNet | BPNet:
    """The run's network with its initial weights, drawn from the global generator seeded with cfg.seed."""
    torch.manual_seed(cfg.seed)
    hidden = cfg.hidden or data.info.hidden  # as Trainer.hidden
    if cfg.model == "bp":
        return BPNet(data.in_features, hidden, cfg.layers).to(device)
    return FFNet(data.in_features, hidden, cfg.layers, cfg.effective_normalize).to(device)


@torch.no_grad()
def goodness_evaluation(net: FFNet, cfg: RunConfig, data: PreparedData, x: torch.Tensor, y: torch.Tensor) -> Evaluation:
    """Predictions of an FF network by goodness over the 10 labels (docs/algorithms.md)."""
    g = label_goodness(net, x, data.v_test, data.shape, cfg.goodness)
    pred, layer_pred = aggregate(g)
    return Evaluation(
        pred, layer_pred, _accuracy(pred, y), [_accuracy(layer_pred[:, i], y) for i in range(layer_pred.shape[1])]
    )


@torch.no_grad()
def goodness_representations(
    net: FFNet, data: PreparedData, x: torch.Tensor, y: torch.Tensor | None
) -> list[torch.Tensor]:
    """Hidden-layer outputs of an FF network on x with label y embedded (y None: no label pixel)."""
    if y is not None:
        x = embed_labels(x, y, data.v_test, data.shape)
    outs: list[list[torch.Tensor]] = [[] for _ in net.linears]
    for start in range(0, x.shape[0], INPUT_CHUNK):
        for i, h in enumerate(net(x[start : start + INPUT_CHUNK])):
            outs[i].append(h)
    return [torch.cat(o) for o in outs]


@torch.no_grad()
def bp_evaluation(net: BPNet, x: torch.Tensor, y: torch.Tensor) -> Evaluation:
    pred = torch.cat([net(x[s : s + INPUT_CHUNK])[0].argmax(1) for s in range(0, x.shape[0], INPUT_CHUNK)])
    return Evaluation(pred, None, _accuracy(pred, y), [])


@torch.no_grad()
def bp_representations(net: BPNet, x: torch.Tensor) -> list[torch.Tensor]:
    outs: list[list[torch.Tensor]] = [[] for _ in net.linears]
    for start in range(0, x.shape[0], INPUT_CHUNK):
        for i, h in enumerate(net.hidden(x[start : start + INPUT_CHUNK])):
            outs[i].append(h)
    return [torch.cat(o) for o in outs]


def _adam(params: Iterable[torch.nn.Parameter], lr: float, capturable: bool = False) -> torch.optim.Adam:
    """Adam (β 0.9, 0.999, eps 1e-8, no weight decay), fused: one kernel for all parameters.

    `capturable`: its step count stays on the GPU, so a CUDA graph can hold the update.
    """
    return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, fused=True, capturable=capturable)


def _accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    return float((pred == y).float().mean()) if y.numel() else float("nan")


def positives_then_negatives(pos: torch.Tensor, neg: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Batch `idx` (B,) of the positives and of the negatives (M, D each) as one input (2B, D), positives first.

    Each layer then takes both in one matmul, and its backward in one per gradient (`ffterm bench`
    measures the gain). The numbers are those of two matmuls, one per half, up to float rounding:
    normalisation and goodness are per row, and the loss splits the rows again at B.
    """
    return torch.cat([pos[idx], neg[idx]])


class TrainerView(Protocol):
    """What a session records and evaluation reads of a trainer: a `Trainer`, or one seed of a batched
    trainer (`ffterm_core.training.batched.SeedView`)."""

    @property
    def data(self) -> PreparedData: ...
    @property
    def stage(self) -> int: ...
    @property
    def epoch(self) -> int: ...
    @property
    def batch(self) -> int: ...
    @property
    def epochs_done(self) -> int: ...
    @property
    def done(self) -> bool: ...
    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> Evaluation: ...
    def representations(self, x: torch.Tensor, y: torch.Tensor | None) -> list[torch.Tensor]: ...
    def layer_params(self) -> list[tuple[torch.Tensor, torch.Tensor]]: ...
    def state_dict(self) -> dict[str, Any]: ...


class Trainer:
    """The interface the session drives. Subclasses build `net` and `optimizers` and implement the hooks."""

    net: FFNet | BPNet
    optimizers: list[torch.optim.Optimizer]

    def __init__(self, cfg: RunConfig, data: PreparedData, device: torch.device) -> None:
        self.cfg = cfg
        self.data = data
        self.device = device
        self.stage = 0
        self.epoch = 0  # epochs completed in the current stage
        self.batch = 0  # batches completed in the current epoch
        self.net = build_net(cfg, data, device)
        self._perm: torch.Tensor | None = None
        self._sums: torch.Tensor | None = None  # (3, L): loss, G+, G- sums weighted by batch size
        self._samples = 0
        self._seen = 0  # examples (pairs) in the epoch's sums

    @property
    def hidden(self) -> int:
        """Width of every hidden layer: the run's setting, else the dataset's."""
        return self.cfg.hidden or self.data.info.hidden

    # ---- progress -------------------------------------------------------------------------
    @property
    def num_stages(self) -> int:
        return self.cfg.stages

    @property
    def done(self) -> bool:
        return self.stage >= self.num_stages

    @property
    def epochs_done(self) -> int:
        return self.stage * self.cfg.epochs + self.epoch

    @property
    def num_examples(self) -> int:
        return self.data.train_y.shape[0]

    @property
    def batches_per_epoch(self) -> int:
        return -(-self.num_examples // self.cfg.effective_batch_size)

    def step(self) -> bool:
        """Train one batch; True when it ended an epoch (call `end_epoch()` then)."""
        perm = self._perm if self._perm is not None else self._begin_epoch()
        b = self.cfg.effective_batch_size
        idx = perm[self.batch * b : (self.batch + 1) * b]
        with matmul_precision(self.cfg.precision, self.device):
            self._train_batch(idx)
        self.batch += 1
        return self.batch >= self.batches_per_epoch

    def end_epoch(self) -> EpochMetrics:
        """Read the epoch's metrics (one host sync) and advance the position."""
        n = max(self._seen, 1)
        sums = (self._epoch_sums / n).cpu().tolist()
        metrics = EpochMetrics(loss=sums[0], g_pos=sums[1], g_neg=sums[2], samples=self._samples)
        self._advance()
        return metrics

    def _advance(self) -> None:
        """Move the position past the epoch just ended (and into the next stage after the last epoch)."""
        self._perm, self._sums, self._samples, self._seen = None, None, 0, 0
        self.batch = 0
        self.epoch += 1
        if self.epoch >= self.cfg.epochs:
            self.stage += 1
            self.epoch = 0
            if not self.done:
                self._begin_stage()

    def _begin_epoch(self) -> torch.Tensor:
        """Draw the epoch's permutation (returned) and start its sums."""
        gen = _generator(self.cfg.seed, self.stage, self.epoch)
        self._perm = perm = torch.randperm(self.num_examples, generator=gen).to(self.device)
        self._epoch_setup(gen)
        if self._sums is None:
            self._sums = torch.zeros(3, self.metric_width, device=self.device)
            self._samples, self._seen = 0, 0
        # on resume mid-epoch the batches already done are skipped by position
        return perm

    @property
    def _epoch_sums(self) -> torch.Tensor:
        if self._sums is None:
            raise RuntimeError("no epoch in progress: call step() first")
        return self._sums

    def _accumulate(
        self,
        loss: torch.Tensor,
        g_pos: torch.Tensor,
        g_neg: torch.Tensor,
        n: int,
        samples: int,
        layer: int | None = None,
    ) -> None:
        """Add a batch's metrics (per layer, or to one `layer`'s column only) to the epoch's sums."""
        sums = self._epoch_sums if layer is None else self._epoch_sums[:, layer]  # a view: updated in place
        sums[0] += loss.detach() * n
        sums[1] += g_pos.detach() * n
        sums[2] += g_neg.detach() * n
        self._seen += n
        self._samples += samples

    # ---- hooks ----------------------------------------------------------------------------
    metric_width = 1

    def _epoch_setup(self, gen: torch.Generator) -> None:
        """Per-epoch preparation after the permutation is drawn (e.g. resampled negatives)."""

    def _begin_stage(self) -> None:
        """Called when a new stage begins (sequential FF: build the next layer's inputs)."""

    def _train_batch(self, idx: torch.Tensor) -> None:
        raise NotImplementedError

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> Evaluation:
        raise NotImplementedError

    def representations(self, x: torch.Tensor, y: torch.Tensor | None) -> list[torch.Tensor]:
        """Hidden-layer outputs, label y embedded (ff/bpff; y None: no label pixel) or plain (bp)."""
        raise NotImplementedError

    def layer_params(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(lin.weight.detach(), lin.bias.detach()) for lin in self.net.linears]

    # ---- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {
            "position": [self.stage, self.epoch, self.batch],
            "net": self.net.state_dict(),
            "optimizers": [opt.state_dict() for opt in self.optimizers],
            "samples": self._samples,
            "seen": self._seen,
        }
        if self._sums is not None:
            state["sums"] = self._sums.detach().cpu()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.stage, self.epoch, self.batch = (int(v) for v in state["position"])
        if not self.done and self.stage > 0:
            self._begin_stage()
        for opt, opt_state in zip(self.optimizers, state["optimizers"]):
            opt.load_state_dict(opt_state)
        self._perm = None
        if "sums" in state and self.batch > 0:
            self._sums = state["sums"].to(self.device)
            self._samples, self._seen = int(state["samples"]), int(state["seen"])
        else:
            self._sums = None


class _GoodnessTrainer(Trainer):
    """Shared by FF and BP/FF: embedded positives and negatives, goodness-based prediction."""

    net: FFNet

    def __init__(self, cfg: RunConfig, data: PreparedData, device: torch.device) -> None:
        super().__init__(cfg, data, device)
        self.metric_width = cfg.layers
        self.pos_in = embed_labels(data.train_x, data.train_y, data.v_train, data.shape)
        if cfg.negatives == "fixed":
            image, wrong = fixed_negative_pairs(data.train_y.cpu(), data.seen_labels, _generator(cfg.seed, -1))
            self.neg_in = embed_labels(data.train_x[image.to(device)], wrong.to(device), data.v_train, data.shape)
        else:
            self.neg_in = torch.empty_like(self.pos_in)  # filled each epoch

    def _resample_negatives(self, gen: torch.Generator) -> torch.Tensor:
        wrong = resampled_negative_labels(self.data.train_y.cpu(), self.data.seen_labels, gen)
        return embed_labels(self.data.train_x, wrong.to(self.device), self.data.v_train, self.data.shape)

    def _loss(self, g_pos: torch.Tensor, g_neg: torch.Tensor) -> torch.Tensor:
        return goodness_loss(g_pos, g_neg, self.cfg.loss, self.cfg.threshold)

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> Evaluation:
        return goodness_evaluation(self.net, self.cfg, self.data, x, y)

    def representations(self, x: torch.Tensor, y: torch.Tensor | None) -> list[torch.Tensor]:
        return goodness_representations(self.net, self.data, x, y)


class FFTrainer(_GoodnessTrainer):
    """Forward-Forward: each layer has its own loss and Adam; sequential (default) or simultaneous."""

    def __init__(self, cfg: RunConfig, data: PreparedData, device: torch.device) -> None:
        super().__init__(cfg, data, device)
        self.sequential = cfg.schedule == "sequential"
        self.optimizers = [_adam(lin.parameters(), cfg.lr) for lin in self.net.linears]
        self.stage_pos, self.stage_neg = self.pos_in, self.neg_in

    @torch.no_grad()
    def _layer_inputs(self, x: torch.Tensor, upto: int) -> torch.Tensor:
        """Outputs of layers 0..upto-1 on x (no grad), in chunks."""
        parts = []
        for start in range(0, x.shape[0], INPUT_CHUNK):
            h = x[start : start + INPUT_CHUNK]
            for layer in range(upto):
                h = self.net.layer(layer, h)
            parts.append(h)
        return torch.cat(parts)

    def _begin_stage(self) -> None:
        if self.sequential:
            self.stage_pos = self._layer_inputs(self.pos_in, self.stage)
            if self.cfg.negatives == "fixed":
                self.stage_neg = self._layer_inputs(self.neg_in, self.stage)

    def _epoch_setup(self, gen: torch.Generator) -> None:
        if self.cfg.negatives == "resample":
            self.neg_in = self._resample_negatives(gen)
            self.stage_neg = self._layer_inputs(self.neg_in, self.stage) if self.sequential else self.neg_in

    def _train_batch(self, idx: torch.Tensor) -> None:
        n = idx.shape[0]
        x = positives_then_negatives(self.stage_pos, self.stage_neg, idx)  # (2B, D)
        layers = [self.stage] if self.sequential else range(len(self.net.linears))
        losses, gps, gns = [], [], []
        for layer in layers:
            h = self.net.layer(layer, x)  # (2B, H)
            g = goodness(h, self.cfg.goodness)  # (2B,)
            g_pos, g_neg = g[:n], g[n:]
            loss = self._loss(g_pos, g_neg)
            opt = self.optimizers[layer]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
            gps.append(g_pos.detach().mean())
            gns.append(g_neg.detach().mean())
            x = h.detach()
        if self.sequential:
            # only the layer in training has metrics; the others stay at zero and are reported as None
            self._accumulate(losses[0], gps[0], gns[0], n, 2 * n, layer=self.stage)
        else:
            self._accumulate(torch.stack(losses), torch.stack(gps), torch.stack(gns), n, 2 * n)


class BPFFTrainer(_GoodnessTrainer):
    """The FF network trained end to end by backprop on G = Σ_l goodness_l, one Adam."""

    def __init__(self, cfg: RunConfig, data: PreparedData, device: torch.device) -> None:
        super().__init__(cfg, data, device)
        self.optimizers = [_adam(self.net.parameters(), cfg.lr)]

    def _epoch_setup(self, gen: torch.Generator) -> None:
        if self.cfg.negatives == "resample":
            self.neg_in = self._resample_negatives(gen)

    def _train_batch(self, idx: torch.Tensor) -> None:
        n = idx.shape[0]
        x = positives_then_negatives(self.pos_in, self.neg_in, idx)  # (2B, D)
        g = torch.stack([goodness(h, self.cfg.goodness) for h in self.net(x)], dim=1)  # (2B, L)
        g_pos, g_neg = g[:n], g[n:]
        loss = self._loss(g_pos.sum(dim=1), g_neg.sum(dim=1))
        opt = self.optimizers[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        # the single loss is reported in every layer's slot; G± per layer
        self._accumulate(
            loss.detach().expand(self.metric_width), g_pos.detach().mean(0), g_neg.detach().mean(0), n, 2 * n
        )


class BPTrainer(Trainer):
    """Backprop with cross-entropy on plain images; optional activation ℓ1 penalty."""

    net: BPNet

    def __init__(self, cfg: RunConfig, data: PreparedData, device: torch.device) -> None:
        super().__init__(cfg, data, device)
        self.optimizers = [_adam(self.net.parameters(), cfg.lr)]

    def _train_batch(self, idx: torch.Tensor) -> None:
        logits, hs = self.net(self.data.train_x[idx])
        loss = F.cross_entropy(logits, self.data.train_y[idx])
        if self.cfg.act_l1:
            loss = loss + self.cfg.act_l1 * sum(h.abs().sum() for h in hs)
        opt = self.optimizers[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        zero = torch.zeros(1, device=self.device)
        self._accumulate(loss.detach().reshape(1), zero, zero, idx.shape[0], idx.shape[0])

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> Evaluation:
        return bp_evaluation(self.net, x, y)

    def representations(self, x: torch.Tensor, y: torch.Tensor | None) -> list[torch.Tensor]:
        return bp_representations(self.net, x)


TRAINERS = {"ff": FFTrainer, "bpff": BPFFTrainer, "bp": BPTrainer}


def make_trainer(cfg: RunConfig, data: PreparedData, device: torch.device) -> Trainer:
    return TRAINERS[cfg.model](cfg, data, device)
