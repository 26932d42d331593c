"""The protocol every algorithm implements, and what its training step reads of a trainer.

An algorithm's step is written once for one run and for N seeds trained together: tensors may carry a
leading seed dimension (…), the network is a run's own or its seeds' stacked one (`networks.stacked`),
and every reduction is over trailing dimensions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from ffterm_core.config import ModelKind, RunConfig
from ffterm_core.data.prepare import PreparedData
from ffterm_core.training.networks import BPNet, FFNet

INPUT_CHUNK = 4096  # rows per forward pass outside training (evaluation, a stage's inputs)


def chunk_starts(rows: int) -> range:
    """Where each INPUT_CHUNK-row pass starts; no rows still make one (empty) pass, so outputs keep their
    shapes (a class subset where nothing was classified correctly gives (0, units) representations)."""
    return range(0, max(rows, 1), INPUT_CHUNK)


@dataclass
class Evaluation:
    predictions: torch.Tensor  # (N,)
    layer_predictions: torch.Tensor | None  # (N, L); None for a classifier
    accuracy: float
    layer_accuracy: list[float]


class StepInputs(Protocol):
    """What an algorithm's step reads of the trainer that calls it."""

    @property
    def cfg(self) -> RunConfig: ...
    @property
    def net(self) -> FFNet | BPNet: ...
    @property
    def optimizers(self) -> list[torch.optim.Optimizer]: ...
    @property
    def stage(self) -> int: ...
    def pairs(self, idx: torch.Tensor) -> torch.Tensor:
        """Batch `idx`'s positives then negatives at the current stage's input, (…, 2B, D)."""
        ...

    def plain(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch `idx`'s plain images (…, B, D) and labels (…, B)."""
        ...


class Algorithm(ABC):
    """One way to train a network: its network, step, evaluation, representations and matmul FLOPs."""

    kind: ModelKind

    @abstractmethod
    def build_net(self, cfg: RunConfig, in_features: int, hidden: int) -> FFNet | BPNet:
        """The network with fresh weights, drawn from torch's global generator."""

    def optimizer_groups(self, net: FFNet | BPNet) -> list[list[nn.Parameter]]:
        """The parameters of each Adam: by default one Adam over all of them."""
        return [list(net.parameters())]

    def metric_width(self, cfg: RunConfig) -> int:
        """Columns of the per-epoch loss and goodness: one per layer by default."""
        return cfg.layers

    @abstractmethod
    def train_batch(self, step: StepInputs, idx: torch.Tensor) -> torch.Tensor:
        """Train on batch `idx`; its metrics (…, 3, k): loss, mean G⁺, mean G⁻ of the k columns trained."""

    @abstractmethod
    def evaluate(
        self, net: FFNet | BPNet, cfg: RunConfig, data: PreparedData, x: torch.Tensor, y: torch.Tensor
    ) -> Evaluation:
        """Predictions of one run's network on test images x with labels y."""

    @abstractmethod
    def representations(
        self, net: FFNet | BPNet, data: PreparedData, x: torch.Tensor, y: torch.Tensor | None
    ) -> list[torch.Tensor]:
        """Hidden-layer outputs of one run's network on x (labelled y where the algorithm embeds labels)."""

    @abstractmethod
    def epoch_flops(
        self, cfg: RunConfig, examples: int, in_features: int, hidden: int, layer: int | None = None
    ) -> float:
        """Matmul FLOPs of one training epoch (of `layer` only, where layers train one at a time)."""


def fans(cfg: RunConfig, in_features: int, hidden: int) -> list[tuple[int, int]]:
    """(in, out) of each hidden layer."""
    return [(in_features, hidden)] + [(hidden, hidden)] * (cfg.layers - 1)


def optimize(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One Adam step on `loss`: a scalar, or one loss per seed, each reaching only its seed's slice, so the
    gradient of their sum is every seed's own."""
    optimizer.zero_grad(set_to_none=True)
    (loss if loss.dim() == 0 else loss.sum()).backward()
    optimizer.step()


def adam(params: Iterable[nn.Parameter], lr: float, capturable: bool = False) -> torch.optim.Adam:
    """Adam (β 0.9, 0.999, eps 1e-8, no weight decay), fused: one kernel for all parameters.

    `capturable`: its step count stays on the GPU, so a CUDA graph can hold the update.
    """
    return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, fused=True, capturable=capturable)


def accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    return float((pred == y).float().mean()) if y.numel() else float("nan")
