"""Goodness losses (docs/algorithms.md). Inputs (…, B): one loss per leading index (a seed, when batched)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def threshold_loss(g_pos: torch.Tensor, g_neg: torch.Tensor, theta: float) -> torch.Tensor:
    """Mean over the 2B terms softplus(θ − G⁺) and softplus(G⁻ − θ) (the published code)."""
    return torch.cat([F.softplus(theta - g_pos), F.softplus(g_neg - theta)], dim=-1).mean(dim=-1)


def symmetric_loss(g_pos: torch.Tensor, g_neg: torch.Tensor) -> torch.Tensor:
    """Mean over pairs of softplus(G⁻ − G⁺) (the formula printed in the paper)."""
    return F.softplus(g_neg - g_pos).mean(dim=-1)


def goodness_loss(g_pos: torch.Tensor, g_neg: torch.Tensor, kind: str, theta: float) -> torch.Tensor:
    return threshold_loss(g_pos, g_neg, theta) if kind == "threshold" else symmetric_loss(g_pos, g_neg)
