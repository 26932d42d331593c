"""Typed records of what a run computes, exactly as they are stored in snapshots.jsonl and final.json.

They are TypedDicts, so a record is a plain dict at run time: what is written to disk and what the
views read (``layer["sparsity"]``) stay the same, while the type checker knows every key. What each
figure means is in docs/algorithms.md; which functions fill them is named on each record.
"""

from __future__ import annotations

from typing import Any, TypedDict

from typing_extensions import NotRequired


class Histogram(TypedDict):
    """Equal-width bins: ``len(edges) == len(counts) + 1``; the last bin includes its right edge."""

    counts: list[int]
    edges: list[float]


class Summary(TypedDict):
    """Mean, standard deviation and histogram of one quantity over a layer's units (ρ⁺, bias)."""

    mean: float
    std: float
    hist: Histogram


class ActivationMap(TypedDict):
    """Per-sample activations grouped by class, columns pooled to at most ``max_cols`` (docs/algorithms.md#profiles)."""

    matrix: list[list[float]]  # rows × columns, mean activation of the units pooled into each column
    row_class: list[int]  # class of each row
    row_index: list[int]  # index of each row in the analysed representations
    unit_order: list[int]  # units in display order: ensemble units first, grouped by class
    col_edges: list[int]  # column j pools unit_order[col_edges[j]:col_edges[j + 1]]
    col_class: list[int]  # class whose ensemble dominates each column, -1 for none


class FinalLayer(TypedDict):
    """The per-layer figures kept in final.json (the study's tables); see :data:`FINAL_LAYER_KEYS`.

    Ensemble fields are None when ensembles are undefined (layer sparsity below the threshold), not empty.
    """

    sparsity: float | None  # mean Hoyer sparsity over non-zero rows; None when every row is zero
    sparsity_ignored_rows: int  # all-zero rows left out of the mean
    ensembles: list[list[int] | None] | None  # per class, sorted unit indices; None for a class without rows
    ensemble_size_pct: float | None  # mean over the classes present of |E_c| / n · 100
    shared_units: list[list[int | None]] | None  # C×C |E_c ∩ E_c'| (diagonal |E_c|); None at classes without rows
    jaccard: list[list[float | None]] | None  # C×C |E_c ∩ E_c'| / |E_c ∪ E_c'|; None like shared_units
    n_units_p_gt_0_05: int | None  # assigned units with permutation p > 0.05; None when not computed
    rho_plus: Summary | None  # fraction of positive incoming weights per unit; None without weights
    bias: Summary | None  # bias per unit; None without weights


#: The keys of :class:`FinalLayer`, in order: the one list of what final.json keeps per layer.
FINAL_LAYER_KEYS: tuple[str, ...] = tuple(FinalLayer.__annotations__)


class LayerAnalysis(FinalLayer):
    """Everything :func:`ffterm_core.analysis.analyze_layer` computes for one layer (a snapshot's ``layers``)."""

    ensemble_pvalues: list[list[float] | None] | None  # per class, per ensemble unit; None unless computed
    class_mean_activation: list[list[float] | None]  # C×n, None for a class without rows
    activation_map: ActivationMap
    active_units: int  # units with a non-zero activation on some row
    n_rows: int
    n_units: int
    ensemble_factor: float  # the m_i > factor·LOO_i rule the ensembles were found with
    microstructure: NotRequired[list[dict[str, Any]]]  # per class; only from `ffterm analyze --microstructure`


def final_layer(layer: LayerAnalysis) -> FinalLayer:
    """The final.json part of a layer's analysis."""
    return FinalLayer(
        sparsity=layer["sparsity"],
        sparsity_ignored_rows=layer["sparsity_ignored_rows"],
        ensembles=layer["ensembles"],
        ensemble_size_pct=layer["ensemble_size_pct"],
        shared_units=layer["shared_units"],
        jaccard=layer["jaccard"],
        n_units_p_gt_0_05=layer["n_units_p_gt_0_05"],
        rho_plus=layer["rho_plus"],
        bias=layer["bias"],
    )


class HeldoutLayer(TypedDict):
    """The held-out class k in one layer (:func:`ffterm_core.analysis.analyze_heldout_layer`).

    Ensemble fields are None when E_k is undefined (the class-k rows' sparsity is below the threshold);
    the ``*_with_seen`` fields also when the seen classes' ensembles are, and hold None at c = k.
    """

    sparsity: float | None
    ensemble: list[int] | None  # E_k, sorted unit indices
    shared_with_seen: list[int | None] | None  # per class c: |E_k ∩ E_c|
    sparsity_ignored_rows: int
    n_rows: int  # class-k rows analysed
    ensemble_size_pct: float | None  # |E_k| / n · 100
    jaccard_with_seen: list[float | None] | None  # per class c: |E_k ∩ E_c| / |E_k ∪ E_c|
    shared_with_seen_total: int | None  # units of E_k in at least one seen ensemble
    mean_activation: NotRequired[list[float]]  # per unit, over all class-k rows (the study's rule for Fig. 4B)
    activation_map: NotRequired[ActivationMap]  # seen rows and class-k rows, E_k among the seen ensembles


# A run trained without class k (docs/algorithms.md#held-out-class). Functional form: "class" is a keyword.
Heldout = TypedDict(
    "Heldout",
    {
        "class": int,
        "accuracy_seen": float | None,  # accuracy on the test images of the seen classes
        "accuracy_heldout": float | None,  # accuracy on class k's test images
        "layers": list[HeldoutLayer],
    },
)


class GpuStats(TypedDict, total=False):
    """Memory and utilisation of a CUDA device; ``utilization_pct`` needs pynvml."""

    memory_used_mb: float
    memory_total_mb: float
    utilization_pct: float


class _SnapshotEvaluationRequired(TypedDict):
    test_accuracy: float
    layer_accuracy: list[float]
    eval_samples: int
    layers: list[LayerAnalysis]


class SnapshotEvaluation(_SnapshotEvaluationRequired, total=False):
    """Accuracy and analysis at one moment (:func:`ffterm_core.training.evaluate.evaluate`), as Snapshot fields."""

    heldout: Heldout  # only for runs with a held-out class


class _FinalRequired(TypedDict):
    config: dict[str, Any]  # the run's settings (ffterm_core.config.to_dict)
    test_accuracy: float | None
    layer_accuracy: list[float] | None
    epochs_done: int
    wall_seconds: float
    device: str
    v_train: float  # the label-pixel value of each split (docs/algorithms.md#label-embedding)
    v_test: float
    layers: list[FinalLayer]


class ClassLifeRecord(TypedDict):
    """One class's ensemble over the evaluations (docs/algorithms.md#ensemble-life)."""

    stable_epoch: int | None
    joined: dict[str, int]  # unit → epoch of its last entry into the ensemble
    left: dict[str, int]  # unit → epoch of its last exit (absent: never left)


class FinalRecord(_FinalRequired, total=False):
    """final.json: the finished run, on the whole test set."""

    heldout: Heldout  # only for runs with a held-out class
    ensemble_life: list[list[ClassLifeRecord]]  # per layer, per class
