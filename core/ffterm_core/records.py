"""Typed records of what a run computes, exactly as they are stored in snapshots.jsonl and final.json.

They are TypedDicts, so a record is a plain dict at run time: what is written to disk and what the
views read (``layer["sparsity"]``) stay the same, while the type checker knows every key. What each
figure means is in docs/algorithms.md; which functions fill them is named on each record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from typing_extensions import NotRequired

#: A layer's ensembles are defined only when its sparsity reaches this (docs/algorithms.md#ensembles).
SPARSITY_CUTOFF = 0.5

#: A run "did not learn" when its final test accuracy stays below this multiple of chance (1 / classes).
#: On a balanced test set a network that only ever answers k classes scores at most k / classes, so an
#: accuracy under 2 / classes is worse than telling two classes apart and ignoring the rest.
CHANCE_MULTIPLE = 2.0


def near_chance_limit(num_classes: int) -> float:
    """The accuracy below which a run did not learn: CHANCE_MULTIPLE × chance (0.2 for ten classes), never
    above halfway from chance to perfect (which only binds with two classes, where 2× chance is 1)."""
    chance = 1.0 / num_classes
    return min(CHANCE_MULTIPLE * chance, (1.0 + chance) / 2)


def did_not_learn(accuracy: float | None, num_classes: int) -> bool | None:
    """Whether a final test accuracy is near chance (below :func:`near_chance_limit`); None when unknown.

    The one rule behind final.json's ``did_not_learn``, the reports' warnings and the app's mark
    (docs/algorithms.md#runs-that-did-not-learn)."""
    if accuracy is None or isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)) or num_classes < 1:
        return None
    if not math.isfinite(accuracy):
        return None
    return bool(accuracy < near_chance_limit(num_classes))


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
    # per-unit lifetime sparsity over the rows; None when no unit responds. Absent in files of earlier versions
    lifetime_sparsity: NotRequired[Summary | None]
    microstructure: NotRequired[list[dict[str, Any]]]  # per class; only from `ffterm analyze --microstructure`
    # the final snapshot only (absent in files of earlier versions): the final model's ensembles on the live
    # evaluations' image set, and their split-half Jaccard per class (the noise floor of ensemble stability)
    live_ensembles: NotRequired[list[list[int] | None] | None]
    stability_floor: NotRequired[list[float | None] | None]


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


_MAX_COUNT = 10_000_000  # a bound on unit and row counts read back from a file
_MAX_BIAS = 1e9  # far beyond any trained bias, far below what a plot's arithmetic overflows on


@dataclass(frozen=True)
class LayerStat:
    """One per-layer statistic, declared once: this drives the records' validation when read back, the
    history's series, the app's Layers view, curves.csv and the report's per-layer table.

    ``kind``: ``number`` (a float), ``count`` (a whole number) or ``summary`` (a :class:`Summary` over the
    layer's units, shown as mean ± std). ``low``/``high``: the valid range of the value (of a summary's
    mean, its histogram edges, and — as ``high - low`` — its std). ``live``: computed at every evaluation
    (else only when asked, e.g. the permutation test). ``final``: kept in final.json. ``series``: the
    :class:`~ffterm_core.store.history.RunHistory` series (and curves.csv column) following it over the
    evaluations, None for none. ``needs_ensembles``: shown as undefined when the layer has no ensembles.
    """

    name: str  # the key in a layer record
    label: str  # a narrow column's header (the app)
    title: str  # a table's header (the report)
    computed: str  # how it is computed, in one line (docs/algorithms.md has the definitions)
    kind: Literal["number", "count", "summary"]
    low: float
    high: float
    digits: int = 3  # report
    view_digits: int = 3  # the app's narrower table
    live: bool = True
    final: bool = True
    series: str | None = None
    needs_ensembles: bool = False


#: Every per-layer statistic, in the order tables show them.
LAYER_STATS: tuple[LayerStat, ...] = (
    LayerStat(
        "sparsity", "sparsity", "sparsity", "mean Hoyer sparsity of the rows (all-zero rows left out)",
        "number", 0.0, 1.0, series="sparsity",
    ),
    LayerStat(
        "sparsity_ignored_rows", "0-rows", "all-zero rows", "rows left out of the sparsity (all zero)",
        "count", 0, _MAX_COUNT,
    ),
    LayerStat(
        "lifetime_sparsity", "life μ±σ", "lifetime sparsity mean ± std",
        "per unit, Treves–Rolls sparsity of its activations across the rows; mean ± std over the units",
        "summary", 0.0, 1.0, view_digits=2, final=False, series="lifetime_sparsity_mean",
    ),
    LayerStat(
        "ensemble_size_pct", "ens %", "ensemble size %", "mean over the classes of |E_c| / n · 100",
        "number", 0.0, 100.0, digits=2, view_digits=1, series="ensemble_size_pct", needs_ensembles=True,
    ),
    LayerStat(
        "active_units", "active", "active units", "units with a non-zero activation on some row",
        "count", 0, _MAX_COUNT, final=False, series="active_units",
    ),
    LayerStat(
        "rho_plus", "ρ⁺ μ±σ", "ρ⁺ mean ± std", "per unit, the fraction of its incoming weights that are positive",
        "summary", 0.0, 1.0, view_digits=2, series="rho_plus_mean",
    ),
    LayerStat(
        "bias", "bias μ±σ", "bias mean ± std", "the units' biases",
        "summary", -_MAX_BIAS, _MAX_BIAS, view_digits=2, series="bias_mean",
    ),
    LayerStat(
        "n_units_p_gt_0_05", "p>.05", "units p>0.05", "ensemble units whose permutation-test p exceeds 0.05",
        "count", 0, _MAX_COUNT, live=False,
    ),
)  # fmt: skip

#: The statistics followed over the evaluations, by series name.
LAYER_SERIES: dict[str, LayerStat] = {s.series: s for s in LAYER_STATS if s.series is not None}


def stat_value(layer: Any, stat: LayerStat) -> float | None:
    """The number a series follows: the value, or a summary's mean; None where absent or undefined."""
    value: Any = layer.get(stat.name) if isinstance(layer, dict) else None
    if stat.kind == "summary":
        value = value.get("mean") if isinstance(value, dict) else None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


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
    # a frozen layer (sequential FF): the epoch from which its membership is on a fixed image set, and the
    # observed ensemble's turnover after it (the image set's drift); absent otherwise and in earlier files
    frozen_from: NotRequired[int]
    drift: NotRequired[int]


class FinalRecord(_FinalRequired, total=False):
    """final.json: the finished run, on the whole test set."""

    heldout: Heldout  # only for runs with a held-out class
    ensemble_life: list[list[ClassLifeRecord]]  # per layer, per class
    matmul_precision: str  # what the training matmuls ran in: 'ieee' (float32), 'tf32' or 'bf16'; absent in older runs
    did_not_learn: bool  # :func:`did_not_learn` of the test accuracy; absent in older runs (computed when read)
