"""The typical form of FF training and evaluation code, the baseline `ffterm bench` measures against.

As the published code does it: the data in a CPU `TensorDataset` read through a `DataLoader` with
`shuffle=True`, each batch moved with `.to(device)`, positives and negatives through separate
matmuls, the default (unfused) Adam, the loss read with `.item()` every batch, and evaluation as ten
full forward passes, one per label. Same networks, initial weights and settings as ffterm's own
trainers, so only the form differs.
"""

from __future__ import annotations

import operator
from functools import reduce

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from ffterm_core.config import RunConfig
from ffterm_core.data.embedding import NUM_LABELS, embed_labels, fixed_negative_pairs
from ffterm_core.data.prepare import PreparedData
from ffterm_core.training.losses import goodness_loss
from ffterm_core.training.networks import BPNet, FFNet, goodness
from ffterm_core.training.predict import aggregate
from ffterm_core.training.trainers import Trainer, generator, make_trainer


class TwoMatmulFFNet(FFNet):
    """An FFNet whose layers take a batch of positives then negatives (2B, D) as two matmuls, one per
    half, as typical FF code does; ffterm's trainers take both in one."""

    def layer(self, index: int, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0] // 2
        return torch.cat([super().layer(index, x[:n]), super().layer(index, x[n:])])  # (2B, H)


def two_matmul_trainer(cfg: RunConfig, data: PreparedData, device: torch.device) -> Trainer:
    """ffterm's FF or BP/FF trainer with only that changed: positives and negatives as two matmuls per layer."""
    trainer = make_trainer(cfg, data, device)
    trainer.net.__class__ = TwoMatmulFFNet  # the same parameters, which the trainer's optimizers hold
    return trainer


def _loader(*tensors: torch.Tensor, batch_size: int, shuffle: bool) -> DataLoader[tuple[torch.Tensor, ...]]:
    return DataLoader(TensorDataset(*(t.cpu() for t in tensors)), batch_size=batch_size, shuffle=shuffle)


def pairs(cfg: RunConfig, data: PreparedData) -> tuple[torch.Tensor, torch.Tensor]:
    """Embedded positives and fixed negatives, on the CPU (made once, before the epochs)."""
    x, y = data.train_x.cpu(), data.train_y.cpu()
    image, wrong = fixed_negative_pairs(y, data.seen_labels, generator(cfg.seed, -1))
    return embed_labels(x, y, data.v_train, data.shape), embed_labels(x[image], wrong, data.v_train, data.shape)


def ff_epoch(
    cfg: RunConfig, net: FFNet, data: tuple[torch.Tensor, torch.Tensor], device: torch.device, layers: list[int]
) -> float:
    """One epoch training `layers` (FF: each its own loss and Adam) on `pairs()`; returns the summed loss."""
    optimizers = [torch.optim.Adam(lin.parameters(), lr=cfg.lr) for lin in net.linears]
    total = 0.0
    for x_pos, x_neg in _loader(*data, batch_size=cfg.effective_batch_size, shuffle=True):
        x_pos, x_neg = x_pos.to(device), x_neg.to(device)
        for layer in layers:
            h_pos, h_neg = net.layer(layer, x_pos), net.layer(layer, x_neg)
            loss = goodness_loss(goodness(h_pos, cfg.goodness), goodness(h_neg, cfg.goodness), cfg.loss, cfg.threshold)
            optimizers[layer].zero_grad()
            loss.backward()
            optimizers[layer].step()
            total += loss.item()
            x_pos, x_neg = h_pos.detach(), h_neg.detach()
    return total


def bpff_epoch(cfg: RunConfig, net: FFNet, data: tuple[torch.Tensor, torch.Tensor], device: torch.device) -> float:
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    total = 0.0
    for x_pos, x_neg in _loader(*data, batch_size=cfg.effective_batch_size, shuffle=True):
        x_pos, x_neg = x_pos.to(device), x_neg.to(device)
        g_pos = reduce(operator.add, (goodness(h, cfg.goodness) for h in net(x_pos)))
        g_neg = reduce(operator.add, (goodness(h, cfg.goodness) for h in net(x_neg)))
        loss = goodness_loss(g_pos, g_neg, cfg.loss, cfg.threshold)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total


def bp_epoch(cfg: RunConfig, net: BPNet, data: tuple[torch.Tensor, torch.Tensor], device: torch.device) -> float:
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    total = 0.0
    for x, y in _loader(*data, batch_size=cfg.effective_batch_size, shuffle=True):
        x, y = x.to(device), y.to(device)
        loss = F.cross_entropy(net(x)[0], y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total


@torch.no_grad()
def ten_pass_accuracy(net: FFNet, data: PreparedData, device: torch.device, kind: str, batch_size: int = 1024) -> float:
    """Test accuracy by ten full forward passes per batch, one per embedded label."""
    correct = 0
    for x, y in _loader(data.test_x, data.test_y, batch_size=batch_size, shuffle=False):
        x, y = x.to(device), y.to(device)
        per_label = []
        for label in range(NUM_LABELS):
            embedded = embed_labels(x, torch.full_like(y, label), data.v_test, data.shape)
            per_label.append(torch.stack([goodness(h, kind) for h in net(embedded)], dim=1))
        prediction, _ = aggregate(torch.stack(per_label, dim=1))
        correct += (prediction == y).sum().item()
    return correct / data.test_y.shape[0]
