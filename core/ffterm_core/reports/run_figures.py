"""Which of the study's figures a run gets, from its history and one evaluated snapshot.

`run_figures` lists them (name, caption, a builder returning the Figure); `render_figures` draws
each one, saves it as PNG + SVG under figures/ and lets it go before drawing the next, so a report
holds one figure in memory at a time. Every figure reuses the history's series and the snapshot's
stored analysis; nothing is recomputed here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ffterm_core.config import goodness_model, layerwise
from ffterm_core.figures import draw as F
from ffterm_core.records import SPARSITY_CUTOFF, LayerAnalysis
from ffterm_core.store.history import RunHistory
from ffterm_core.store.snapshot import Snapshot


@dataclass(frozen=True)
class FigureSpec:
    name: str  # file stem under figures/
    caption: str
    build: Callable[[], Any]  # → matplotlib Figure


@dataclass(frozen=True)
class FigureFiles:
    name: str
    caption: str
    png: Path
    svg: Path

    @property
    def paths(self) -> list[Path]:
        return [self.png, self.svg]


def epoch_label(history: RunHistory, snapshot: Snapshot) -> str:
    if layerwise(snapshot.model) and snapshot.epochs_per_stage and history.num_layers > 1:
        return f"epoch (layer by layer, {snapshot.epochs_per_stage} per layer)"
    return "epoch"


def run_figures(
    snapshot: Snapshot, history: RunHistory, class_names: list[str], ensemble_factor: float = 2.0
) -> list[FigureSpec]:
    """The figures of one run; per-layer analysis figures only when the snapshot was evaluated."""
    h = history
    xlabel = epoch_label(h, snapshot)
    loss_label = "loss" if goodness_model(snapshot.model) else "cross-entropy"
    specs = [
        FigureSpec(
            "curves-training",
            "Training loss per layer and, for goodness-trained models, the mean goodness of positive (G⁺) and "
            "negative (G⁻) data.",
            lambda: F.training_curves(h.epochs, h.loss, h.g_pos, h.g_neg, loss_label=loss_label, xlabel=xlabel),
        )
    ]
    if h.eval_epochs:
        specs.append(
            FigureSpec(
                "curves-accuracy",
                "Test accuracy of the network and of each layer at every evaluation (live evaluations use a fixed "
                "subset of the test set; the last point is the final evaluation).",
                lambda: F.accuracy_curves(h.eval_epochs, h.test_accuracy, h.layer_accuracy, xlabel=xlabel),
            )
        )
        specs.append(
            FigureSpec(
                "curves-ensembles",
                "Mean ensemble size (% of the layer's units) and ensemble stability (mean over classes of the "
                "Jaccard index of a class's ensemble with the previous evaluation's); gaps where sparsity < "
                f"{SPARSITY_CUTOFF:g}.",
                lambda: F.ensemble_curves(
                    h.eval_epochs, h.per_layer["ensemble_size_pct"], h.stability_mean, xlabel=xlabel
                ),
            )
        )
    layers = snapshot.layers or []
    if not snapshot.evaluated or not layers:
        return specs
    specs.append(
        FigureSpec(
            "sparsity",
            "Hoyer sparsity of each layer's representations of correctly classified test images (dashed: "
            f"{SPARSITY_CUTOFF:g}, "
            "above which ensembles are defined).",
            lambda: F.layer_bars(
                {snapshot.run_name: [layer.get("sparsity") for layer in layers]}, threshold=SPARSITY_CUTOFF
            ),
        )
    )
    for i, layer in enumerate(layers):
        specs += _layer_figures(i, layer, class_names, layer.get("ensemble_factor", ensemble_factor))
    specs.append(
        FigureSpec(
            "weights",
            "Per layer: ρ⁺, the fraction of a unit's incoming weights that are positive, and the biases "
            "(dashed: the mean).",
            lambda: F.weight_histograms([lay.get("rho_plus") for lay in layers], [lay.get("bias") for lay in layers]),
        )
    )
    held = snapshot.heldout
    if held and held.get("layers") and isinstance(held.get("class"), int):
        specs.append(
            FigureSpec(
                "heldout",
                f"The held-out class's ensemble E_k (k = {held['class']}, never trained on) against the seen "
                "classes' ensembles E_c: their sizes and the units they share with E_k.",
                lambda: F.heldout_ensembles(
                    held["class"], held["layers"], [lay.get("ensembles") for lay in layers], class_names
                ),
            )
        )
    return specs


def _layer_figures(i: int, layer: LayerAnalysis, names: list[str], factor: float) -> list[FigureSpec]:
    n = i + 1
    specs = []
    means = layer.get("class_mean_activation")
    if means:
        specs.append(
            FigureSpec(
                f"profiles-layer{n}",
                f"Layer {n}: mean activation of every unit over each class's correctly classified test images; "
                f"ensemble units (class mean > {factor:g}× the mean of the other units) in colour.",
                lambda: F.class_profiles(means, layer.get("ensembles"), names, factor=factor, layer=n),
            )
        )
    amap = layer.get("activation_map")
    if amap and amap.get("matrix"):
        specs.append(
            FigureSpec(
                f"activation-map-layer{n}",
                f"Layer {n}: activations of test images grouped by class, units reordered with each class's "
                "ensemble first; the strip above marks whose ensemble a column's units belong to.",
                lambda: F.activation_map(
                    amap["matrix"], amap["row_class"], amap["col_class"], names, n_units=layer.get("n_units"), layer=n
                ),
            )
        )
    specs.append(
        FigureSpec(
            f"ensembles-layer{n}",
            f"Layer {n}: units shared by the ensembles of two classes (diagonal: ensemble size) and their "
            "Jaccard index.",
            lambda: F.class_matrices(
                [("Shared units |E_c ∩ E_c'|", layer.get("shared_units"), 0), ("Jaccard", layer.get("jaccard"), 2)],
                names,
                title=f"Layer {n}",
            ),
        )
    )
    return specs


def render_figures(specs: list[FigureSpec], out_dir: Path) -> list[FigureFiles]:
    """Draw and save every figure into out_dir (PNG + SVG each)."""
    files = []
    for spec in specs:
        png, svg = F.save_figure(spec.build(), out_dir, spec.name)
        files.append(FigureFiles(spec.name, spec.caption, png, svg))
    return files
