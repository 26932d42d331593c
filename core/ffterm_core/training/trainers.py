"""Trainers: one run (`Trainer`) or N seeds in lockstep (`batched.BatchedTrainer`), advancing one batch per
`step()` around the algorithm's own step (`training.algorithms`), which both run unchanged.

A trainer's position is (stage, epoch, batch). Every random choice is derived from the seed and the
position (the epoch's permutation, resampled negatives), so a checkpoint needs no RNG state and a
resumed run repeats an uninterrupted one exactly on the same device. Per-batch metrics accumulate on
the device; `end_epoch()` reads them once (no host sync per batch).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from ffterm_core.config import RunConfig
from ffterm_core.data.embedding import embed_labels, fixed_negative_pairs, resampled_negative_labels
from ffterm_core.data.prepare import PreparedData
from ffterm_core.device import matmul_precision
from ffterm_core.training.algorithms import ALGORITHMS, Algorithm, Evaluation
from ffterm_core.training.algorithms.base import INPUT_CHUNK, adam
from ffterm_core.training.graph import GraphedStep
from ffterm_core.training.networks import BPNet, FFNet

__all__ = [
    "INPUT_CHUNK",
    "BaseTrainer",
    "EpochMetrics",
    "Evaluation",
    "NetworkCopy",
    "NetworkView",
    "ReadsNetwork",
    "Trainer",
    "TrainerView",
    "make_trainer",
]


@dataclass
class EpochMetrics:
    loss: list[float]
    g_pos: list[float]
    g_neg: list[float]
    samples: int  # training samples processed (positives + negatives)


def generator(*parts: int) -> torch.Generator:
    """A CPU generator seeded from a position, e.g. (seed, stage, epoch)."""
    seed = 0
    for p in parts:
        seed = (seed * 1_000_003 + int(p) + 1) % (2**63 - 1)
    return torch.Generator().manual_seed(seed)


def build_net(cfg: RunConfig, data: PreparedData, device: torch.device) -> FFNet | BPNet:
    """The run's network with its initial weights, drawn from the global generator seeded with cfg.seed."""
    torch.manual_seed(cfg.seed)
    hidden = cfg.hidden or data.info.hidden
    return ALGORITHMS[cfg.model].build_net(cfg, data.in_features, hidden).to(device)


class NetworkView(Protocol):
    """What evaluation reads of one run: its data and its network."""

    @property
    def data(self) -> PreparedData: ...
    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> Evaluation: ...
    def representations(self, x: torch.Tensor, y: torch.Tensor | None) -> list[torch.Tensor]: ...
    def layer_params(self) -> list[tuple[torch.Tensor, torch.Tensor]]: ...


class ReadsNetwork:
    """A run's evaluation, representations and parameters, read from its own network `net`."""

    algorithm: Algorithm
    cfg: RunConfig
    data: PreparedData
    net: FFNet | BPNet

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> Evaluation:
        return self.algorithm.evaluate(self.net, self.cfg, self.data, x, y)

    def representations(self, x: torch.Tensor, y: torch.Tensor | None) -> list[torch.Tensor]:
        """Hidden-layer outputs, label y embedded (goodness algorithms; y None: no label pixel) or plain."""
        return self.algorithm.representations(self.net, self.data, x, y)

    def layer_params(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(lin.weight.detach(), lin.bias.detach()) for lin in self.net.linears]

    def frozen(self) -> NetworkView:
        return NetworkCopy(self.algorithm, self.cfg, self.data, copy.deepcopy(self.net))  # cloned where they are


@dataclass(frozen=True)
class NetworkCopy(ReadsNetwork):
    """A run's network as it was when copied (`TrainerView.frozen()`), evaluated while training goes on."""

    algorithm: Algorithm
    cfg: RunConfig
    data: PreparedData
    net: FFNet | BPNet


class TrainerView(NetworkView, Protocol):
    """What a session records and evaluation reads of one run: a `Trainer`, or one seed of a batched
    trainer (`ffterm_core.training.batched.SeedView`)."""

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
    def state_dict(self) -> dict[str, Any]: ...
    def frozen(self) -> NetworkView:
        """A copy of the network as it is now (cheap: its parameters cloned on their device)."""
        ...


class BaseTrainer(ABC):
    """The position, the epoch's draws and metric sums of one or more seeds of one configuration, around the
    algorithm's step. Subclasses say how the seeds are laid out (`_seeded`, `_per_seed`)."""

    net: FFNet | BPNet  # the network the step trains: a run's own, or its seeds' stacked (networks.stacked)

    def __init__(
        self, cfgs: Sequence[RunConfig], data: PreparedData, device: torch.device, cuda_graph: bool | None = None
    ) -> None:
        self.cfgs = list(cfgs)
        self.cfg = cfg = cfgs[0]
        self.seeds = [c.seed for c in cfgs]
        self.data = data
        self.device = device
        self.algorithm: Algorithm = ALGORITHMS[cfg.model]
        self.stage = 0
        self.epoch = 0  # epochs completed in the current stage
        self.batch = 0  # batches completed in the current epoch
        # the step captured in a CUDA graph: by default wherever there is CUDA
        use_graph = device.type == "cuda" if cuda_graph is None else cuda_graph and device.type == "cuda"
        self.graph = GraphedStep(self) if use_graph else None
        # the eager step (`compile: true`: through torch.compile, compiled when first called)
        self._eager_step: Callable[[torch.Tensor], None] = (
            torch.compile(self.train_batch) if cfg.compile else self.train_batch
        )
        self.nets = [build_net(c, data, device) for c in cfgs]
        self.net = self._network(self.nets)
        self.optimizers: list[torch.optim.Optimizer] = [
            adam(params, cfg.lr, capturable=self.graph is not None)
            for params in self.algorithm.optimizer_groups(self.net)
        ]
        self.metric_width = self.algorithm.metric_width(cfg)
        self._seed_rows = torch.arange(len(cfgs), device=device)[:, None]
        self._perm: torch.Tensor | None = None
        self._sums: torch.Tensor | None = None  # (…, 3, width): loss, G+, G- sums weighted by batch size
        self._samples = 0
        self._seen = 0  # examples (pairs) in the epoch's sums
        self.pos_in: torch.Tensor | None = None
        self.neg_in: torch.Tensor | None = None
        if cfg.kind.goodness:
            self.pos_in = embed_labels(data.train_x, data.train_y, data.v_train, data.shape)  # one for all seeds
            if cfg.negatives == "fixed":
                self.neg_in = self._seeded([self._fixed_negatives(seed) for seed in self.seeds])
        self.stage_pos, self.stage_neg = self.pos_in, self.neg_in  # the inputs of the layer in training

    # ---- the seeds' layout ------------------------------------------------------------------
    @abstractmethod
    def _network(self, nets: list[FFNet | BPNet]) -> FFNet | BPNet:
        """The network the step trains, from each seed's."""

    @abstractmethod
    def _seeded(self, per_seed: list[torch.Tensor], dim: int = 0) -> torch.Tensor:
        """One tensor from each seed's (stacked at `dim`, or the one seed's own)."""

    def _per_seed(self, x: torch.Tensor) -> torch.Tensor:
        """x for every seed: inputs shared by all seeds are expanded where the seeds are stacked."""
        return x

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

    def batch_size(self) -> int:
        return self.cfg.effective_batch_size

    @property
    def hidden(self) -> int:
        """Width of every hidden layer: the run's setting, else the dataset's."""
        return self.cfg.hidden or self.data.info.hidden

    def step(self) -> bool:
        """Train one batch (eagerly, or by replaying the captured step); True when it ended an epoch (call
        `end_epoch()` then)."""
        perm = self._perm if self._perm is not None else self._begin_epoch()
        b = self.cfg.effective_batch_size
        idx = perm[self.batch * b : (self.batch + 1) * b].movedim(0, -1)  # (…, B): seeds first
        if self.graph is None or not self.graph.run(idx):
            self._eager_step(idx)
        n = idx.shape[-1]
        self._seen += n
        self._samples += 2 * n if self.cfg.kind.goodness else n
        self.batch += 1
        return self.batch >= self.batches_per_epoch

    def train_batch(self, idx: torch.Tensor, autocast_cache: bool = True) -> None:
        """The algorithm's step on batch `idx`, its metrics added to the epoch's sums in place (a captured
        step keeps reading that tensor); the position is `step()`'s to advance. `autocast_cache` False
        while the step is captured."""
        with matmul_precision(self.cfg.precision, self.device, autocast_cache):
            stats = self.algorithm.train_batch(self, idx)
        n = idx.shape[-1]
        sums = self._epoch_sums
        if self.cfg.stages > 1:  # only the layer in training has metrics; the others stay at zero
            sums[..., self.stage] += stats[..., 0] * n
        else:
            sums += stats * n

    def end_epoch(self) -> list[EpochMetrics]:
        """Each seed's metrics of the epoch (one host sync; a run has one seed), then advance the position."""
        sums = (self._epoch_sums / max(self._seen, 1)).reshape(-1, 3, self.metric_width).cpu().tolist()
        metrics = [EpochMetrics(loss=s[0], g_pos=s[1], g_neg=s[2], samples=self._samples) for s in sums]
        self._advance()
        return metrics

    @abstractmethod
    def sync_nets(self) -> None:
        """Bring each seed's own network up to date with the one trained."""

    @abstractmethod
    def load_states(self, states: Sequence[dict[str, Any]]) -> None:
        """Continue from each seed's checkpoint state (`TrainerView.state_dict()`)."""

    @abstractmethod
    def views(self) -> list[TrainerView]:
        """Each seed as one run: what a session records (call `sync_nets()` first)."""

    # ---- the step's inputs (StepInputs) -----------------------------------------------------
    def pairs(self, idx: torch.Tensor) -> torch.Tensor:
        """Batch `idx`'s positives then negatives at the layer in training, (…, 2B, D): each layer takes both
        in one matmul (`ffterm bench` measures the gain); normalisation and goodness are per row, and the
        loss splits the rows again at B, so the numbers are those of one matmul per half up to rounding."""
        return torch.cat([self._rows(_drawn(self.stage_pos), idx), self._rows(_drawn(self.stage_neg), idx)], dim=-2)

    def plain(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data.train_x[idx], self.data.train_y[idx]

    def _rows(self, inputs: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Each seed's batch from inputs shared by all seeds (M, D) or each seed's own (N, M, D)."""
        return inputs[idx] if inputs.dim() == 2 else inputs[self._seed_rows, idx]

    # ---- epochs and stages ------------------------------------------------------------------
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
        """Draw the epoch's permutations (returned, (M, …)) and negatives, and start its sums."""
        gens = [generator(seed, self.stage, self.epoch) for seed in self.seeds]
        self._perm = perm = self._seeded([torch.randperm(self.num_examples, generator=g) for g in gens], -1).to(
            self.device
        )
        if self.cfg.kind.goodness and self.cfg.negatives == "resample":  # drawn after the permutation
            self.neg_in = self._refill(self.neg_in, self._seeded([self._resampled_negatives(g) for g in gens]))
            self.stage_neg = self._refill(self.stage_neg, self._layer_inputs(self.neg_in, self.stage))
        if self._sums is None:  # on resume mid-epoch the loaded sums go on, the batches done are skipped
            zeros = torch.zeros(3, self.metric_width, device=self.device)
            self._sums = self._refill(self._sums_buffer, self._seeded([zeros] * len(self.seeds)))
            self._samples, self._seen = 0, 0
        self._sums_buffer = self._sums
        return perm

    _sums_buffer: torch.Tensor | None = None  # the sums tensor a captured step adds to

    def graph_reads(self) -> tuple[object, ...]:
        """What a captured step reads besides the batch's indices: when any of it is replaced (a new FF
        layer's inputs, resumed sums), the step is captured again."""
        return (self.stage, self._sums, self.stage_pos, self.stage_neg)

    def _refill(self, old: torch.Tensor | None, new: torch.Tensor) -> torch.Tensor:
        """With a captured step, new values go into the tensor it reads (same shape); else the new one."""
        if self.graph is None or old is None or old is new or old.shape != new.shape:
            return new
        return old.copy_(new)

    def _begin_stage(self) -> None:
        """A new sequential-FF stage: the next layer's inputs, through the layers trained before it."""
        if self.cfg.stages > 1:
            self.stage_pos = self._layer_inputs(_drawn(self.pos_in), self.stage)
            if self.cfg.negatives == "fixed":
                self.stage_neg = self._layer_inputs(_drawn(self.neg_in), self.stage)

    @torch.no_grad()
    def _layer_inputs(self, x: torch.Tensor, upto: int) -> torch.Tensor:
        """Outputs of layers 0..upto-1 on x (…, M, D), in chunks; x itself if upto is 0."""
        if upto == 0:
            return x
        net = self.net
        if not isinstance(net, FFNet):
            raise TypeError("only an FF network trains layer by layer")
        parts = []
        for start in range(0, x.shape[-2], INPUT_CHUNK):
            h = self._per_seed(x[..., start : start + INPUT_CHUNK, :])
            for layer in range(upto):
                h = net.layer(layer, h)
            parts.append(h)
        return torch.cat(parts, dim=-2)

    def _fixed_negatives(self, seed: int) -> torch.Tensor:
        data = self.data
        image, wrong = fixed_negative_pairs(data.train_y.cpu(), data.seen_labels, generator(seed, -1))
        return embed_labels(data.train_x[image.to(self.device)], wrong.to(self.device), data.v_train, data.shape)

    def _resampled_negatives(self, gen: torch.Generator) -> torch.Tensor:
        data = self.data
        wrong = resampled_negative_labels(data.train_y.cpu(), data.seen_labels, gen)
        return embed_labels(data.train_x, wrong.to(self.device), data.v_train, data.shape)

    @property
    def _epoch_sums(self) -> torch.Tensor:
        if self._sums is None:
            raise RuntimeError("no epoch in progress: call step() first")
        return self._sums

    def _restore_position(self, position: Sequence[int], sums: torch.Tensor | None, samples: int, seen: int) -> None:
        """Continue at `position` with the epoch's sums so far (None: at an epoch's start)."""
        self.stage, self.epoch, self.batch = (int(v) for v in position)
        if not self.done and self.stage > 0:
            self._begin_stage()
        self._perm = None
        if sums is not None and self.batch > 0:
            self._sums = sums.to(self.device)
            self._samples, self._seen = samples, seen
        else:
            self._sums = None

    def _load_optimizers(self, states: Sequence[dict[str, Any]]) -> None:
        for opt, state in zip(self.optimizers, states):
            opt.load_state_dict(state)
            for group in opt.param_groups:
                group["capturable"] = self.graph is not None


class Trainer(ReadsNetwork, BaseTrainer):
    """One run: its network is trained as it is."""

    def __init__(
        self, cfg: RunConfig, data: PreparedData, device: torch.device, cuda_graph: bool | None = None
    ) -> None:
        super().__init__([cfg], data, device, cuda_graph)

    def _network(self, nets: list[FFNet | BPNet]) -> FFNet | BPNet:
        return nets[0]

    def _seeded(self, per_seed: list[torch.Tensor], dim: int = 0) -> torch.Tensor:
        return per_seed[0]

    def views(self) -> list[TrainerView]:
        return [self]

    def sync_nets(self) -> None:
        """Nothing to do: the run's network is the one trained."""

    def load_states(self, states: Sequence[dict[str, Any]]) -> None:
        (state,) = states
        self.load_state_dict(state)

    # ---- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {
            "position": [self.stage, self.epoch, self.batch],
            "net": self.net.state_dict(),
            "optimizers": [portable_optimizer_state(opt.state_dict()) for opt in self.optimizers],
            "samples": self._samples,
            "seen": self._seen,
        }
        if self._sums is not None:
            state["sums"] = self._sums.detach().cpu()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self._load_optimizers(state["optimizers"])
        self._restore_position(
            state["position"], state.get("sums"), int(state.get("samples", 0)), int(state.get("seen", 0))
        )


def portable_optimizer_state(state: dict[str, Any]) -> dict[str, Any]:
    """An Adam state as a run without a captured step keeps it (`capturable` off), loadable anywhere."""
    groups = [{**group, "capturable": False} for group in state["param_groups"]]
    return {"state": state["state"], "param_groups": groups}


def _drawn(inputs: torch.Tensor | None) -> torch.Tensor:
    """Inputs that exist once drawn: fixed negatives from the start, resampled ones from each epoch's first step."""
    if inputs is None:
        raise RuntimeError("no inputs drawn yet: call step() first")
    return inputs


def make_trainer(cfg: RunConfig, data: PreparedData, device: torch.device) -> Trainer:
    return Trainer(cfg, data, device)
