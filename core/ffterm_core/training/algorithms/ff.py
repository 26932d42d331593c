"""Forward-Forward: each layer its own goodness loss and Adam, trained one after another (sequential, the
default) or all on each batch (simultaneous). docs/algorithms.md#ff-training."""

from __future__ import annotations

import torch
from torch import nn

from ffterm_core.config import MODEL_KINDS, RunConfig
from ffterm_core.training.algorithms.base import StepInputs, fans, optimize
from ffterm_core.training.algorithms.goodness import GoodnessAlgorithm, _ff
from ffterm_core.training.losses import goodness_loss
from ffterm_core.training.networks import BPNet, FFNet, goodness


class FF(GoodnessAlgorithm):
    kind = MODEL_KINDS["ff"]

    def optimizer_groups(self, net: FFNet | BPNet) -> list[list[nn.Parameter]]:
        return [list(lin.parameters()) for lin in net.linears]  # one Adam per layer

    def train_batch(self, step: StepInputs, idx: torch.Tensor) -> torch.Tensor:
        cfg, net = step.cfg, _ff(step.net)
        n = idx.shape[-1]
        x = step.pairs(idx)  # (…, 2B, D)
        layers = [step.stage] if cfg.stages > 1 else range(cfg.layers)
        stats = []
        for layer in layers:
            h = net.layer(layer, x)  # (…, 2B, H)
            g = goodness(h, cfg.goodness)  # (…, 2B)
            loss = goodness_loss(g[..., :n], g[..., n:], cfg.loss, cfg.threshold)
            optimize(step.optimizers[layer], loss)
            g = g.detach()
            stats.append(torch.stack([loss.detach(), g[..., :n].mean(-1), g[..., n:].mean(-1)], dim=-1))
            x = h.detach()
        return torch.stack(stats, dim=-1)  # (…, 3, layers trained)

    def epoch_flops(
        self, cfg: RunConfig, examples: int, in_features: int, hidden: int, layer: int | None = None
    ) -> float:
        """4·P·D_l·H per layer trained, P = 2M rows (positives and negatives)."""
        chosen = fans(cfg, in_features, hidden)
        if layer is not None:
            chosen = [chosen[layer]]
        return sum(4.0 * 2 * examples * d * h for d, h in chosen)
