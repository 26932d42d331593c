"""Evaluation of a trainer at one moment: accuracy and the per-layer analysis (docs/algorithms.md#evaluation).

Live snapshots use a fixed, seeded subset of the test set (`analysis_samples`); the final one uses
the whole test set and adds permutation p-values. On a GPU each layer's representations are reduced
where they are (sparsity, class means, the activation map's rows: one pass) and only those small
results come to the host; on the CPU the host is where they are, and the analysis reads them as they are.
"""

from __future__ import annotations

import torch

from ffterm_core.analysis import analyze_heldout_layer, analyze_layer
from ffterm_core.analysis.ensembles import split_half_jaccard
from ffterm_core.analysis.microstructure import microstructure as class_microstructure
from ffterm_core.analysis.reduced import ReducedLayer, reduce_on_device
from ffterm_core.config import RunConfig
from ffterm_core.data.embedding import NUM_LABELS
from ffterm_core.records import Heldout, HeldoutLayer, LayerAnalysis, SnapshotEvaluation
from ffterm_core.training.trainers import NetworkView

MAP_ROWS_PER_CLASS = 8  # rows of each class the activation map shows


def _reduced(h: torch.Tensor, y: torch.Tensor) -> ReducedLayer | None:
    """h reduced on its GPU; None on the CPU (the analysis reads h there, with no copy to spare)."""
    return None if h.device.type == "cpu" else reduce_on_device(h, y, NUM_LABELS, MAP_ROWS_PER_CLASS)


def live_subset(num_test: int, size: int, seed: int) -> torch.Tensor:
    """The fixed test subset analysed in live snapshots (sorted indices)."""
    if size >= num_test:
        return torch.arange(num_test)
    gen = torch.Generator().manual_seed(seed + 7919)
    return torch.randperm(num_test, generator=gen)[:size].sort().values


class NothingCorrect(ValueError):
    """No evaluated image was classified correctly, so there is no representation to analyse."""


def evaluate(
    trainer: NetworkView,
    cfg: RunConfig,
    subset: torch.Tensor | None,
    final: bool,
    microstructure: bool = False,
    stability_floor: bool = False,
) -> SnapshotEvaluation:
    """Accuracy and analysis on the test set (or `subset` of it), as Snapshot fields.

    microstructure: also each class's activation patterns per layer (docs/algorithms.md).
    stability_floor: also each layer's split-half Jaccard per class (None where ensembles are undefined).
    """
    data = trainer.data
    x, y = data.test_x, data.test_y
    if subset is not None:
        idx = subset.to(x.device)
        x, y = x[idx], y[idx]
    ev = trainer.evaluate(x, y)
    heldout = cfg.heldout_class
    correct = ev.predictions == y
    if heldout is not None:
        correct &= y != heldout
    if not bool(correct.any()):
        raise NothingCorrect(f"none of the {y.shape[0]} evaluated test images was classified correctly")
    reps = trainer.representations(x[correct], y[correct])
    params = trainer.layer_params()
    y_correct = y[correct]
    result = SnapshotEvaluation(
        test_accuracy=ev.accuracy,
        layer_accuracy=ev.layer_accuracy,
        eval_samples=int(y.shape[0]),
        layers=[
            analyze_layer(
                h,
                y_correct,
                NUM_LABELS,
                w,
                b,
                pvalues=final and cfg.final_pvalues,
                seed=cfg.seed,
                factor=cfg.ensemble_factor,
                rows_per_class=MAP_ROWS_PER_CLASS,
                reduced=_reduced(h, y_correct),
            )
            for h, (w, b) in zip(reps, params)
        ],
    )
    if microstructure:
        images = torch.arange(data.test_y.shape[0]) if subset is None else subset.cpu()
        for layer, h in zip(result["layers"], reps):
            layer["microstructure"] = class_microstructure(
                h,
                y_correct,
                NUM_LABELS,
                layer["ensembles"],
                factor=cfg.ensemble_factor,
                seed=cfg.seed,
                images=images[correct.cpu()].numpy(),
            )
    if stability_floor:
        for layer, h in zip(result["layers"], reps):
            ens = layer["ensembles"]
            # a class without rows is undefined (None) here as in its ensemble
            layer["stability_floor"] = (
                None
                if ens is None
                else split_half_jaccard(h, y_correct, NUM_LABELS, cfg.ensemble_factor, seed=cfg.seed)
            )
    if heldout is not None:
        result["heldout"] = _heldout(trainer, cfg, heldout, x, y, ev.predictions, result["layers"], reps, y_correct)
    return result


def _heldout(
    trainer: NetworkView,
    cfg: RunConfig,
    k: int,
    x: torch.Tensor,
    y: torch.Tensor,
    pred: torch.Tensor,
    layers: list[LayerAnalysis],
    seen_reps: list[torch.Tensor],
    seen_y: torch.Tensor,
) -> Heldout:
    """Held-out class k: accuracy on seen classes and on k; k's representations against seen ensembles.

    All class-k images are analysed (almost none are classified correctly, since label k was never
    trained), embedded with label k, or with no label pixel when `heldout_label: none`; the seen
    classes' correctly classified rows (`seen_reps`, `seen_y`) join them for the activation map.
    """
    seen, held = y != k, y == k
    xk = x[held]
    yk = y[held] if cfg.heldout_label == "embed" else None
    reps = trainer.representations(xk, yk) if xk.shape[0] else []
    out_layers = [
        analyze_heldout_layer(
            torch.cat([seen_reps[i], reps[i]]),
            torch.cat([seen_y, y[held]]),
            k,
            layer["ensembles"],
            num_classes=NUM_LABELS,
            factor=cfg.ensemble_factor,
        )
        if reps
        else _no_heldout_rows()
        for i, layer in enumerate(layers)
    ]
    return {
        "class": k,
        "accuracy_seen": float((pred[seen] == y[seen]).float().mean()) if bool(seen.any()) else None,
        "accuracy_heldout": float((pred[held] == y[held]).float().mean()) if bool(held.any()) else None,
        "layers": out_layers,
    }


def _no_heldout_rows() -> HeldoutLayer:
    """A layer's held-out record when the analysed test images hold no class-k image."""
    return HeldoutLayer(
        sparsity=None,
        ensemble=None,
        shared_with_seen=None,
        sparsity_ignored_rows=0,
        n_rows=0,
        ensemble_size_pct=None,
        jaccard_with_seen=None,
        shared_with_seen_total=None,
    )
