"""Label embedding and negative data (docs/algorithms.md#label-embedding).

The label of an image is written into the first 10 entries of its first row (the same 10 positions
in every channel), after normalisation: all 10 are set to 0, then the labelled one to `v`, the
maximum value of the whole normalised split.
"""

from __future__ import annotations

import torch

NUM_LABELS = 10


def label_positions(shape: tuple[int, int, int]) -> torch.Tensor:
    """(C, 10) flattened indices of the label pixels: row 0, columns 0–9 of every channel."""
    c, h, w = shape
    if w < NUM_LABELS:
        raise ValueError(f"images {w} pixels wide cannot hold {NUM_LABELS} label pixels in their first row")
    return torch.arange(c)[:, None] * (h * w) + torch.arange(NUM_LABELS)[None, :]


def clear_label_pixels(x: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """A copy of flattened images (N, D) with every label pixel set to 0."""
    out = x.clone()
    out[:, label_positions(shape).flatten().to(x.device)] = 0.0
    return out


def embed_labels(base: torch.Tensor, labels: torch.Tensor, v: float, shape: tuple[int, int, int]) -> torch.Tensor:
    """Images with cleared label pixels (N, D) → a copy with pixel `labels[i]` set to v in each channel."""
    out = base.clone()
    pos = label_positions(shape).to(base.device)  # (C, 10)
    cols = pos[:, labels].T  # (N, C)
    rows = torch.arange(base.shape[0], device=base.device)[:, None].expand_as(cols)
    out[rows, cols] = v
    return out


def wrong_label_table(allowed: list[int]) -> torch.Tensor:
    """(10, K) table: row t lists the allowed labels other than t (K = len(allowed) - 1)."""
    k = len(allowed) - 1
    table = torch.full((NUM_LABELS, k), -1, dtype=torch.long)
    for t in allowed:
        table[t] = torch.tensor([a for a in allowed if a != t], dtype=torch.long)
    return table


def fixed_negative_pairs(
    labels: torch.Tensor, allowed: list[int], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw N (image, wrong label) pairs without replacement from the N×K possible ones.

    See docs/algorithms.md#positive-and-negative-data.

    Returns (image index, wrong label), each (N,). Drawn once per run; never redrawn.
    """
    n = labels.shape[0]
    table = wrong_label_table(allowed)
    k = table.shape[1]
    pick = torch.randperm(n * k, generator=generator)[:n]
    image = pick // k
    wrong = table[labels[image], pick % k]
    return image, wrong


def resampled_negative_labels(labels: torch.Tensor, allowed: list[int], generator: torch.Generator) -> torch.Tensor:
    """One wrong label per image, uniform over the allowed wrong labels (option `negatives: resample`)."""
    table = wrong_label_table(allowed)
    k = table.shape[1]
    choice = torch.randint(0, k, (labels.shape[0],), generator=generator)
    return table[labels, choice]
