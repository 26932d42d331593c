"""Prediction with goodness: try every label, read each layer's goodness (docs/algorithms.md#prediction).

`label_goodness` is the fast batched form: the first layer's product is shared across the 10 labels
(only one label pixel differs, and every labelled copy has the same input norm), so layer 1 costs one
matmul instead of ten. `label_goodness_reference` is the plain 10-pass form it must equal.
"""

from __future__ import annotations

import torch

from ffterm_core.data.embedding import NUM_LABELS, embed_labels, label_positions
from ffterm_core.training.networks import NORM_EPS, FFNet, goodness

EVAL_CHUNK = 256  # 2560 labelled rows per block: stays in cache; measured fastest on a 2-core CPU


@torch.no_grad()
def label_goodness(
    net: FFNet, base: torch.Tensor, v: float, shape: tuple[int, int, int], kind: str, chunk: int = EVAL_CHUNK
) -> torch.Tensor:
    """Goodness of every layer for every embedded label: (N, 10, L). `base` has cleared label pixels."""
    first = net.linears[0]
    pos = label_positions(shape).to(base.device)  # (C, 10)
    channels = pos.shape[0]
    label_cols = first.weight[:, pos].sum(dim=1).T  # (10, H): Σ_c W[:, pos[c, j]]
    out = torch.empty(base.shape[0], NUM_LABELS, len(net.linears), device=base.device)
    for start in range(0, base.shape[0], chunk):
        x0 = base[start : start + chunk]
        if net.norm == "l2":
            norm = (x0.square().sum(dim=1) + channels * v * v).sqrt()
        else:
            norm = x0.abs().sum(dim=1) + channels * abs(v)
        norm = norm.clamp_min(NORM_EPS)[:, None, None]
        shared = (x0 @ first.weight.T)[:, None, :]  # (n, 1, H)
        h = torch.relu((shared + v * label_cols[None]) / norm + first.bias)  # (n, 10, H)
        h = h.reshape(-1, h.shape[-1])
        rows = slice(start, start + x0.shape[0])
        out[rows, :, 0] = goodness(h, kind).view(-1, NUM_LABELS)
        for layer in range(1, len(net.linears)):
            h = net.layer(layer, h)
            out[rows, :, layer] = goodness(h, kind).view(-1, NUM_LABELS)
    return out


@torch.no_grad()
def label_goodness_reference(
    net: FFNet, base: torch.Tensor, v: float, shape: tuple[int, int, int], kind: str
) -> torch.Tensor:
    """The same (N, 10, L) array, one full forward pass per label."""
    per_label = []
    for label in range(NUM_LABELS):
        x = embed_labels(base, torch.full((base.shape[0],), label, device=base.device), v, shape)
        per_label.append(torch.stack([goodness(h, kind) for h in net(x)], dim=1))
    return torch.stack(per_label, dim=1)


def aggregate(g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 10, L) goodness → (prediction (N,), per-layer prediction (N, L)).

    Softmax over labels separately per layer, summed over layers, argmax; each layer alone: argmax.
    """
    prediction = torch.softmax(g, dim=1).sum(dim=2).argmax(dim=1)
    return prediction, g.argmax(dim=1)
