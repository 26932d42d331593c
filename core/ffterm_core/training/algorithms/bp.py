"""BP: a plain MLP with a 10-way head, cross-entropy on plain images, an optional activation ℓ1 penalty."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ffterm_core.config import MODEL_KINDS, RunConfig
from ffterm_core.data.prepare import PreparedData
from ffterm_core.training.algorithms.base import (
    INPUT_CHUNK,
    Algorithm,
    Evaluation,
    StepInputs,
    accuracy,
    chunk_starts,
    fans,
    optimize,
)
from ffterm_core.training.networks import BPNet, FFNet


class BP(Algorithm):
    kind = MODEL_KINDS["bp"]

    def build_net(self, cfg: RunConfig, in_features: int, hidden: int) -> BPNet:
        return BPNet(in_features, hidden, cfg.layers)

    def metric_width(self, cfg: RunConfig) -> int:
        return 1  # one loss, no goodness

    def train_batch(self, step: StepInputs, idx: torch.Tensor) -> torch.Tensor:
        cfg = step.cfg
        x, y = step.plain(idx)
        logits, hs = _bp(step.net)(x)
        loss = _cross_entropy(logits, y)
        if cfg.act_l1:
            loss = loss + cfg.act_l1 * sum(h.abs().flatten(-2).sum(-1) for h in hs)
        optimize(step.optimizers[0], loss)
        zero = torch.zeros_like(loss)
        return torch.stack([loss.detach(), zero, zero], dim=-1)[..., None]  # (…, 3, 1)

    @torch.no_grad()
    def evaluate(
        self, net: FFNet | BPNet, cfg: RunConfig, data: PreparedData, x: torch.Tensor, y: torch.Tensor
    ) -> Evaluation:
        pred = torch.cat([_bp(net)(x[s : s + INPUT_CHUNK])[0].argmax(1) for s in range(0, x.shape[0], INPUT_CHUNK)])
        return Evaluation(pred, None, accuracy(pred, y), [])

    @torch.no_grad()
    def representations(
        self, net: FFNet | BPNet, data: PreparedData, x: torch.Tensor, y: torch.Tensor | None
    ) -> list[torch.Tensor]:
        """Hidden-layer outputs on the plain images x (no label: y is not used)."""
        outs: list[list[torch.Tensor]] = [[] for _ in net.linears]
        for start in chunk_starts(x.shape[0]):
            for i, h in enumerate(_bp(net).hidden(x[start : start + INPUT_CHUNK])):
                outs[i].append(h)
        return [torch.cat(o) for o in outs]

    def epoch_flops(
        self, cfg: RunConfig, examples: int, in_features: int, hidden: int, layer: int | None = None
    ) -> float:
        """P = M rows, the 10-way head as a last layer: Σ 4·P·D·H + Σ_{all but the first} 2·P·D·H."""
        f = [*fans(cfg, in_features, hidden), (hidden, 10)]
        return sum(4.0 * examples * d * h for d, h in f) + sum(2.0 * examples * d * h for d, h in f[1:])


def _cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy: a scalar for one run's (B, C) logits, one per seed for (N, B, C)."""
    if logits.dim() == 2:
        return F.cross_entropy(logits, y)
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none")
    return ce.view(y.shape).mean(-1)


def _bp(net: FFNet | BPNet) -> BPNet:
    if not isinstance(net, BPNet):
        raise TypeError(f"backprop runs a BPNet, not a {type(net).__name__}")
    return net
