"""Test-set predictions of a trained network with units removed, from cached activations.

Removing a unit (zero incoming weights and bias) makes its output exactly 0, so a pruned layer's
output is the unpruned one with the removed units dropped, and the layers before the first pruned
one do not change at all. The evaluator therefore runs the test set once through the whole network
(FF, BP/FF: once per embedded label), keeps every layer's outputs, and for a set of masks recomputes
only the layers after the first pruned one, on the kept units alone (a removed unit adds 0 to the
next layer's input norm and product): the work shrinks with the fraction kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ffterm_core.data.embedding import NUM_LABELS, embed_labels
from ffterm_core.training.algorithms.base import INPUT_CHUNK
from ffterm_core.training.networks import BPNet, FFNet, goodness, normalize
from ffterm_core.training.predict import aggregate
from ffterm_core.training.trainers import Trainer

ROWS = 512  # test images per block of the masked forward pass

Kept = dict[int, torch.Tensor]  # 0-based layer → indices of its kept units (layers absent: unpruned)


@dataclass(frozen=True)
class Predictions:
    net: np.ndarray  # (N,) the network's prediction (FF, BP/FF: the summed softmax vote over layers)
    layers: np.ndarray | None  # (N, L) each layer's own goodness argmax; None for BP


class MaskedEvaluator:
    """Predictions on fixed test images for any set of kept units."""

    def __init__(self, trainer: Trainer, x: torch.Tensor) -> None:
        net = trainer.net
        self.net = net
        self.goodness_kind = trainer.cfg.goodness
        with torch.no_grad():
            if isinstance(net, FFNet):
                width = net.linears[0].out_features
                self.cache = [x.new_empty(x.shape[0], NUM_LABELS, width) for _ in net.linears]  # layer → (N, 10, H)
                labels = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
                for c in range(NUM_LABELS):
                    labelled = embed_labels(x, labels.fill_(c), trainer.data.v_test, trainer.data.shape)
                    for layer, h in enumerate(_outputs(net, labelled)):
                        self.cache[layer][:, c] = h
                self.baseline_goodness = torch.stack([goodness(h, self.goodness_kind) for h in self.cache], dim=-1)
            else:
                self.cache = _outputs(net, x)  # layer → (N, H)
                self.baseline_goodness = torch.empty(0)  # BP reads its head, not goodness

    @property
    def num_layers(self) -> int:
        return len(self.net.linears)

    @torch.no_grad()
    def __call__(self, kept: Kept) -> Predictions:
        if not kept:
            return self._unpruned()
        first = min(kept)
        weights = self._pruned_weights(kept, first)
        if isinstance(self.net, FFNet):
            g = self.baseline_goodness.clone()
            for start in range(0, g.shape[0], ROWS):
                rows = slice(start, start + ROWS)
                h = self.cache[first][rows].index_select(-1, kept[first])
                g[rows, :, first] = goodness(h, self.goodness_kind)
                for layer, (w, b) in enumerate(weights, start=first + 1):
                    h = torch.relu(normalize(h, self.net.norm) @ w.T + b)
                    g[rows, :, layer] = goodness(h, self.goodness_kind)
            return _by_goodness(g)
        h = self.cache[first].index_select(-1, kept[first])
        for w, b in weights:
            h = torch.relu(h @ w.T + b)
        head = self.net.head
        last = kept.get(self.num_layers - 1)
        w_head = head.weight if last is None else head.weight.index_select(1, last)
        return Predictions((h @ w_head.T + head.bias).argmax(1).cpu().numpy(), None)

    def _unpruned(self) -> Predictions:
        if isinstance(self.net, FFNet):
            return _by_goodness(self.baseline_goodness)
        h = self.cache[-1]
        return Predictions(self.net.head(h).argmax(1).cpu().numpy(), None)

    def _pruned_weights(self, kept: Kept, first: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The (weight, bias) of each layer after `first`, restricted to kept outputs and kept inputs."""
        out = []
        previous = kept[first]
        for layer in range(first + 1, self.num_layers):
            linear = self.net.linears[layer]
            rows = kept.get(layer, torch.arange(linear.out_features, device=previous.device))
            out.append(
                (linear.weight.index_select(0, rows).index_select(1, previous), linear.bias.index_select(0, rows))
            )
            previous = rows
        return out


def _by_goodness(g: torch.Tensor) -> Predictions:
    pred, layer_pred = aggregate(g)
    return Predictions(pred.cpu().numpy(), layer_pred.cpu().numpy())


def _outputs(net: FFNet | BPNet, x: torch.Tensor) -> list[torch.Tensor]:
    """Every hidden layer's outputs on x, computed in blocks."""
    blocks = [net(x[s : s + INPUT_CHUNK]) if isinstance(net, FFNet) else net.hidden(x[s : s + INPUT_CHUNK])
              for s in range(0, x.shape[0], INPUT_CHUNK)]  # fmt: skip
    return [torch.cat(layer) for layer in zip(*blocks)]


def class_accuracy(pred: np.ndarray, y: np.ndarray, num_classes: int = NUM_LABELS) -> list[float | None]:
    """Accuracy on each class's test images (None for a class without images)."""
    out: list[float | None] = []
    for c in range(num_classes):
        rows = y == c
        out.append(float((pred[rows] == c).mean()) if rows.any() else None)
    return out
