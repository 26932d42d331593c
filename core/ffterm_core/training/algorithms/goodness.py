"""What FF and BP/FF share: the FF network, prediction by goodness over the ten labels, and representations
with the label embedded (docs/algorithms.md#prediction)."""

from __future__ import annotations

import torch

from ffterm_core.config import RunConfig
from ffterm_core.data.embedding import embed_labels
from ffterm_core.data.prepare import PreparedData
from ffterm_core.training.algorithms.base import INPUT_CHUNK, Algorithm, Evaluation, accuracy, chunk_starts
from ffterm_core.training.networks import BPNet, FFNet
from ffterm_core.training.predict import aggregate, label_goodness


class GoodnessAlgorithm(Algorithm):
    """An FF network read out by goodness; subclasses say how it is trained."""

    def build_net(self, cfg: RunConfig, in_features: int, hidden: int) -> FFNet:
        return FFNet(in_features, hidden, cfg.layers, cfg.effective_normalize)

    @torch.no_grad()
    def evaluate(
        self, net: FFNet | BPNet, cfg: RunConfig, data: PreparedData, x: torch.Tensor, y: torch.Tensor
    ) -> Evaluation:
        g = label_goodness(_ff(net), x, data.v_test, data.shape, cfg.goodness)
        pred, layer_pred = aggregate(g)
        return Evaluation(
            pred, layer_pred, accuracy(pred, y), [accuracy(layer_pred[:, i], y) for i in range(layer_pred.shape[1])]
        )

    @torch.no_grad()
    def representations(
        self, net: FFNet | BPNet, data: PreparedData, x: torch.Tensor, y: torch.Tensor | None
    ) -> list[torch.Tensor]:
        """Hidden-layer outputs on x with label y embedded (y None: no label pixel)."""
        if y is not None:
            x = embed_labels(x, y, data.v_test, data.shape)
        outs: list[list[torch.Tensor]] = [[] for _ in net.linears]
        for start in chunk_starts(x.shape[0]):
            for i, h in enumerate(_ff(net)(x[start : start + INPUT_CHUNK])):
                outs[i].append(h)
        return [torch.cat(o) for o in outs]


def _ff(net: FFNet | BPNet) -> FFNet:
    if not isinstance(net, FFNet):
        raise TypeError(f"a goodness algorithm runs an FFNet, not a {type(net).__name__}")
    return net
