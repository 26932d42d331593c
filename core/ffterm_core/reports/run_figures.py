"""Which of the study's figures a run gets, from its history and one evaluated snapshot.

`run_figures` lists them (name, caption, a builder returning the Figure); `render_figures` draws
each one, saves it as PNG + SVG under figures/ and lets it go before drawing the next, so a report
holds one figure in memory at a time. Every figure reuses the history's series and the snapshot's
stored analysis; nothing is recomputed here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
    seen = h.heldout_accuracy_seen if any(v is not None for v in h.heldout_accuracy_seen) else None
    if h.eval_epochs:
        specs.append(
            FigureSpec(
                "curves-accuracy",
                "Test accuracy of the network and of each layer at every evaluation (live evaluations use a fixed "
                "subset of the test set; the last point is the final evaluation)."
                + (
                    " Held-out run: the net's accuracy on all classes counts the unseen class, which it can never "
                    "get right; its accuracy on the seen classes alone is drawn beside it."
                    if seen
                    else ""
                ),
                lambda: F.accuracy_curves(
                    h.eval_epochs, h.test_accuracy, h.layer_accuracy, seen_accuracy=seen, xlabel=xlabel
                ),
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
    held = snapshot.heldout
    k = held.get("class") if held else None
    held_layers = held.get("layers") or [] if held else []
    for i, layer in enumerate(layers):
        view = LayerView.of(layer, held_layers[i] if isinstance(k, int) and i < len(held_layers) else None, k)
        specs += _layer_figures(i, view, class_names, layer.get("ensemble_factor", ensemble_factor))
    specs.append(
        FigureSpec(
            "weights",
            "Per layer: ρ⁺, the fraction of a unit's incoming weights that are positive, and the biases "
            "(dashed: the mean).",
            lambda: F.weight_histograms([lay.get("rho_plus") for lay in layers], [lay.get("bias") for lay in layers]),
        )
    )
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


HELDOUT_RULE = (
    "the held-out class (never trained on, so almost never classified correctly) from all its test images, "
    "the study's rule for an unseen class (§4.4, Fig. 4B)"
)


@dataclass(frozen=True)
class LayerView:
    """What a layer's figures draw: its analysis, with the held-out class k's own analysis put in k's place."""

    means: list[list[float] | None] | None
    ensembles: list[list[int] | None] | None
    shared: list[list[int | None]] | None
    jaccard: list[list[float | None]] | None
    amap: dict[str, Any] | None
    n_units: int | None
    heldout: int | None  # k, when the layer's figures show it

    @classmethod
    def of(cls, layer: LayerAnalysis, held: Mapping[str, Any] | None, k: int | None) -> LayerView:
        means = layer.get("class_mean_activation")
        ens = layer.get("ensembles")
        shared, jac = layer.get("shared_units"), layer.get("jaccard")
        amap: dict[str, Any] | None = dict(layer.get("activation_map") or {}) or None
        if held is None or k is None:
            return cls(means, ens, shared, jac, amap, layer.get("n_units"), None)
        ek = held.get("ensemble")
        if means is not None and held.get("mean_activation") is not None and k < len(means):
            means = [held["mean_activation"] if c == k else m for c, m in enumerate(means)]
        if ens is not None and ek is not None and k < len(ens):
            ens = [ek if c == k else e for c, e in enumerate(ens)]
            shared = _put_cross(shared, k, held.get("shared_with_seen"), len(ek))
            jac = _put_cross(jac, k, held.get("jaccard_with_seen"), 1.0)
        if held.get("activation_map"):
            amap = dict(held["activation_map"])
        return cls(means, ens, shared, jac, amap, layer.get("n_units"), k)


def _put_cross(matrix: Any, k: int, cross: Sequence[Any] | None, diagonal: float) -> Any:
    """The C×C matrix with row and column k replaced by the held-out class's values (diagonal at k)."""
    if matrix is None or cross is None:
        return matrix
    out = [list(row) for row in matrix]
    for c in range(min(len(out), len(cross))):
        value = diagonal if c == k else cross[c]
        out[k][c] = out[c][k] = value
    return out


def _layer_figures(i: int, view: LayerView, names: list[str], factor: float) -> list[FigureSpec]:
    n = i + 1
    specs = []
    k = view.heldout
    held_note = f" Class {names[k] if k < len(names) else k}: {HELDOUT_RULE}." if k is not None else ""
    if view.means:
        means = view.means
        specs.append(
            FigureSpec(
                f"profiles-layer{n}",
                f"Layer {n}: mean activation of every unit over each class's correctly classified test images; "
                f"ensemble units (class mean > {factor:g}× the mean of the other units) in colour; the line is "
                f"each unit's own threshold, {factor:g}× the leave-one-out mean.{held_note}",
                lambda: F.class_profiles(means, view.ensembles, names, factor=factor, layer=n, heldout=k),
            )
        )
    amap = view.amap
    if amap and amap.get("matrix"):
        specs.append(
            FigureSpec(
                f"activation-map-layer{n}",
                f"Layer {n}: activations of test images grouped by class, units reordered with each class's "
                "ensemble first; the strip above has one row per class, marking the columns that hold units of "
                f"that class's ensemble (a unit in several ensembles is marked in each).{held_note}",
                lambda: F.activation_map(
                    amap["matrix"],
                    amap["row_class"],
                    amap["col_class"],
                    names,
                    n_units=view.n_units,
                    layer=n,
                    membership=F.column_membership(amap, view.ensembles),
                    heldout=k,
                ),
            )
        )
    specs.append(
        FigureSpec(
            f"ensembles-layer{n}",
            f"Layer {n}: units shared by the ensembles of two classes (diagonal: ensemble size) and their "
            "Jaccard index; blank where a class has no correctly classified image (its ensemble is undefined)."
            + held_note,
            lambda: F.class_matrices(
                [("Shared units |E_c ∩ E_c'|", view.shared, 0), ("Jaccard", view.jaccard, 2)],
                names,
                title=f"Layer {n}",
                heldout=k,
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
