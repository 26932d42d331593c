"""BP/FF: the FF network trained end to end by backprop on G = Σ_l goodness_l, one Adam (docs/algorithms.md#bpff)."""

from __future__ import annotations

import torch

from ffterm_core.config import MODEL_KINDS, RunConfig
from ffterm_core.training.algorithms.base import StepInputs, fans, optimize
from ffterm_core.training.algorithms.goodness import GoodnessAlgorithm, _ff
from ffterm_core.training.losses import goodness_loss
from ffterm_core.training.networks import goodness


class BPFF(GoodnessAlgorithm):
    kind = MODEL_KINDS["bpff"]

    def train_batch(self, step: StepInputs, idx: torch.Tensor) -> torch.Tensor:
        cfg = step.cfg
        n = idx.shape[-1]
        g = torch.stack([goodness(h, cfg.goodness) for h in _ff(step.net)(step.pairs(idx))], dim=-1)  # (…, 2B, L)
        loss = goodness_loss(g[..., :n, :].sum(-1), g[..., n:, :].sum(-1), cfg.loss, cfg.threshold)
        optimize(step.optimizers[0], loss)
        g = g.detach()
        # the single loss is reported in every layer's slot; G± per layer
        every_layer = loss.detach()[..., None].expand(*loss.shape, cfg.layers)
        return torch.stack([every_layer, g[..., :n, :].mean(-2), g[..., n:, :].mean(-2)], dim=-2)

    def epoch_flops(
        self, cfg: RunConfig, examples: int, in_features: int, hidden: int, layer: int | None = None
    ) -> float:
        """Σ_l 4·P·D_l·H + Σ_{l≥2} 2·P·D_l·H, P = 2M: the input gradient of every layer above the first."""
        f, rows = fans(cfg, in_features, hidden), 2 * examples
        return sum(4.0 * rows * d * h for d, h in f) + sum(2.0 * rows * d * h for d, h in f[1:])
