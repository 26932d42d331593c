"""Evaluation of a trainer at one moment: accuracy and the per-layer analysis of SPEC §3.

Live snapshots use a fixed, seeded subset of the test set (`analysis_samples`); the final one uses
the whole test set and adds permutation p-values.
"""

from __future__ import annotations

from typing import Any

import torch

from .analysis import analyze_heldout_layer, analyze_layer
from .analysis.microstructure import microstructure as class_microstructure
from .config import RunConfig
from .embedding import NUM_LABELS
from .trainers import Trainer


def live_subset(num_test: int, size: int, seed: int) -> torch.Tensor:
    """The fixed test subset analysed in live snapshots (sorted indices)."""
    if size >= num_test:
        return torch.arange(num_test)
    gen = torch.Generator().manual_seed(seed + 7919)
    return torch.randperm(num_test, generator=gen)[:size].sort().values


def evaluate(
    trainer: Trainer, cfg: RunConfig, subset: torch.Tensor | None, final: bool, microstructure: bool = False
) -> dict[str, Any]:
    """Accuracy and analysis on the test set (or `subset` of it), as Snapshot fields.

    microstructure: also each class's activation patterns per layer (docs/algorithms.md).
    """
    data = trainer.data
    x, y = data.test_x, data.test_y
    if subset is not None:
        idx = subset.to(x.device)
        x, y = x[idx], y[idx]
    ev = trainer.evaluate(x, y)
    result: dict[str, Any] = {
        "test_accuracy": ev.accuracy,
        "layer_accuracy": ev.layer_accuracy,
        "eval_samples": int(y.shape[0]),
    }
    heldout = cfg.heldout_class
    correct = ev.predictions == y
    if heldout is not None:
        correct &= y != heldout
    reps = trainer.representations(x[correct], y[correct])
    params = trainer.layer_params()
    y_correct = y[correct]
    result["layers"] = [
        analyze_layer(h, y_correct, NUM_LABELS, w, b, pvalues=final and cfg.final_pvalues, seed=cfg.seed)
        for h, (w, b) in zip(reps, params)
    ]
    if microstructure:
        for layer, h in zip(result["layers"], reps):
            layer["microstructure"] = class_microstructure(h, y_correct, NUM_LABELS, layer["ensembles"], seed=cfg.seed)
    if heldout is not None:
        result["heldout"] = _heldout(trainer, cfg, x, y, ev.predictions, result["layers"])
    return result


def _heldout(
    trainer: Trainer, cfg: RunConfig, x: torch.Tensor, y: torch.Tensor, pred: torch.Tensor, layers: list[dict[str, Any]]
) -> dict[str, Any]:
    """Held-out class k: accuracy on seen classes and on k; k's representations against seen ensembles.

    All class-k images are analysed (almost none are classified correctly, since label k was never
    trained), embedded with label k, or with no label pixel when `heldout_label: none`.
    """
    k = cfg.heldout_class
    seen, held = y != k, y == k
    xk = x[held]
    yk = y[held] if cfg.heldout_label == "embed" else None
    reps = trainer.representations(xk, yk) if xk.shape[0] else []
    out_layers = []
    for i, layer in enumerate(layers):
        if not reps:
            out_layers.append({"sparsity": None, "ensemble": None, "shared_with_seen": None})
            continue
        out_layers.append(analyze_heldout_layer(reps[i], y[held], k, layer["ensembles"], num_classes=NUM_LABELS))
    return {
        "class": k,
        "accuracy_seen": float((pred[seen] == y[seen]).float().mean()) if seen.any() else None,
        "accuracy_heldout": float((pred[held] == y[held]).float().mean()) if held.any() else None,
        "layers": out_layers,
    }
