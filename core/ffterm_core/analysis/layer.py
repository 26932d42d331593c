"""One-call analysis of a layer, producing the JSON-ready record stored in final.json."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from ffterm_core.analysis._checks import as_ensembles, as_labels, as_matrix, check_num_classes, is_tensor
from ffterm_core.analysis.ensembles import _check_factor, _ensemble_mask, _mask_to_lists
from ffterm_core.analysis.permutation import ensemble_pvalues
from ffterm_core.analysis.profiles import _activation_map, _pos_int
from ffterm_core.analysis.reduced import ReducedLayer, reduce_on_host
from ffterm_core.analysis.sparsity import _hoyer_rows, _layer_sparsity_from_rows
from ffterm_core.analysis.weights import histogram, weight_balance
from ffterm_core.records import FINAL_LAYER_KEYS as LAYER_KEYS
from ffterm_core.records import SPARSITY_CUTOFF, ActivationMap, HeldoutLayer, LayerAnalysis, Summary

__all__ = ["LAYER_KEYS", "analyze_heldout_layer", "analyze_layer"]


def _float_or_none(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _check_threshold(t: Any) -> float:
    if isinstance(t, bool) or not isinstance(t, numbers.Real) or not math.isfinite(t):
        raise ValueError(f"sparsity_threshold must be a finite number, got {t!r}")
    return float(t)


def _defined_cells(matrix: list[list[Any]], present: np.ndarray) -> list[list[Any]]:
    """A class × class matrix with None in the rows and columns of the classes that have no rows."""
    return [[v if present[i] and present[j] else None for j, v in enumerate(row)] for i, row in enumerate(matrix)]


def _summary(values: np.ndarray, bins: int, range_: tuple[float, float] | None) -> Summary:
    return Summary(mean=float(values.mean()), std=float(values.std()), hist=histogram(values, bins=bins, range=range_))


def analyze_layer(
    X: Any,
    y: Any,
    num_classes: int,
    W: Any,
    b: Any,
    *,
    pvalues: bool = False,
    n_shuffles: int = 200,
    seed: int = 0,
    factor: float = 2.0,
    sparsity_threshold: float = SPARSITY_CUTOFF,
    bins: int = 20,
    rows_per_class: int = 8,
    max_cols: int = 120,
    reduced: ReducedLayer | None = None,
) -> LayerAnalysis:
    """The full analysis of one layer (docs/algorithms.md, #sparsity to #profiles), as a JSON-ready dict.

    Parameters
    ----------
    X : (M, n) post-ReLU representations (correctly classified test samples).
        A CUDA tensor keeps the permutation test on the GPU.
    y : (M,) labels in ``[0, num_classes)``.
    W, b : the layer's Linear weight (n, n_in) and bias (n,); both may be None
        (then ``rho_plus`` and ``bias`` are None).
    pvalues : run the permutation test (``n_shuffles`` shuffles, ``seed``).
    factor, sparsity_threshold : the ensemble rule (2 and 0.5 in the paper's text; its published
        notebook uses factor 3).
    reduced : X already reduced where it lives (:func:`~ffterm_core.analysis.reduced.reduce_on_device`);
        then X itself is read only by the permutation test.

    Returns
    -------
    :class:`~ffterm_core.records.LayerAnalysis`, whose first keys are the final.json contract (:data:`LAYER_KEYS`):

    ``sparsity``              mean Hoyer sparsity over non-zero rows (None if every row is zero)
    ``sparsity_ignored_rows`` number of all-zero rows left out
    ``ensembles``             list of C sorted unit-index lists; None (undefined,
                              not empty) when sparsity < ``sparsity_threshold`` or undefined;
                              a class with no rows in ``y`` gets None in its entry
    ``ensemble_size_pct``     mean over the classes present in ``y`` of |E_c| / n · 100; None when undefined
    ``shared_units``          C×C |E_c ∩ E_c'| (diagonal |E_c|); None when undefined, and
                              None in the row and column of a class with no rows
    ``jaccard``               C×C Jaccard indices; None like ``shared_units``
    ``n_units_p_gt_0_05``     assigned units with p > 0.05 (summed over classes) when
                              ``pvalues`` and ensembles are defined, else None
    ``rho_plus``              ``{"mean", "std", "hist"}`` of ρ⁺ (hist over [0, 1])
    ``bias``                  ``{"mean", "std", "hist"}`` of the biases (hist over their range)

    followed by display extras: ``ensemble_pvalues`` (per class, same order as
    ``ensembles``; None unless computed), ``class_mean_activation`` (C×n, 4
    decimals, None for a class without rows), ``activation_map`` (see
    :func:`activation_map`), ``active_units`` (units with non-zero mean
    absolute activation over all rows), ``n_rows``, ``n_units`` and
    ``ensemble_factor`` (the ``factor`` the ensembles were found with).
    """
    C = check_num_classes(num_classes)
    factor = _check_factor(factor)
    threshold = _check_threshold(sparsity_threshold)
    rows_per_class = _pos_int(rows_per_class, "rows_per_class")
    max_cols = _pos_int(max_cols, "max_cols")
    Xn = None
    if reduced is None:
        Xn = as_matrix(X, "X", min_rows=1, min_cols=2)
        labels = as_labels(y, Xn.shape[0], C)
        reduced = reduce_on_host(Xn, labels, C, rows_per_class)
    else:
        labels = as_labels(y, reduced.n_rows, C)
    M, n = reduced.n_rows, reduced.n_units
    if (W is None) != (b is None):
        raise ValueError("pass both W and b, or neither")
    wb = None
    if W is not None:
        wb = weight_balance(W, b)
        if wb["rho_plus"].shape[0] != n:
            raise ValueError(f"W has {wb['rho_plus'].shape[0]} rows (units) but X has {n} columns")

    sparsity, ignored = reduced.sparsity, reduced.ignored_rows
    means, counts = reduced.means, reduced.counts
    defined = math.isfinite(sparsity) and sparsity >= threshold

    ensembles = size_pct = shared = jac = n_gt = pvals = None
    ens: list[np.ndarray] | None = None
    if defined:
        mask = _ensemble_mask(means, factor)
        ens = _mask_to_lists(mask)
        present = counts > 0
        size_pct = float(mask[present].sum(axis=1).mean() / n * 100.0)
        B = mask.astype(np.int64)
        inter = B @ B.T
        size = np.diag(inter)
        union = size[:, None] + size[None, :] - inter
        jac_arr = np.zeros(inter.shape, dtype=np.float64)
        np.divide(inter, union, out=jac_arr, where=union > 0)
        # a class without rows has no ensemble to speak of: undefined (None), not empty
        ensembles = [e.tolist() if present[c] else None for c, e in enumerate(ens)]
        shared = _defined_cells(inter.tolist(), present)
        jac = _defined_cells(jac_arr.tolist(), present)
        if pvalues:
            source = X if Xn is None or (is_tensor(X) and X.device.type != "cpu") else Xn
            p = ensemble_pvalues(source, labels, ens, n_shuffles=n_shuffles, seed=seed, num_classes=C)
            n_gt = int(sum(int(np.sum(pc > 0.05)) for pc in p))
            pvals = [pc.tolist() if present[c] else None for c, pc in enumerate(p)]

    cma = np.round(means, 4)
    life = reduced.lifetime[~np.isnan(reduced.lifetime)]
    return LayerAnalysis(
        sparsity=_float_or_none(sparsity),
        sparsity_ignored_rows=int(ignored),
        ensembles=ensembles,
        ensemble_size_pct=size_pct,
        shared_units=shared,
        jaccard=jac,
        n_units_p_gt_0_05=n_gt,
        rho_plus=None if wb is None else _summary(wb["rho_plus"], bins, (0.0, 1.0)),
        bias=None if wb is None else _summary(wb["bias"], bins, None),
        ensemble_pvalues=pvals,
        class_mean_activation=[row.tolist() if counts[c] else None for c, row in enumerate(cma)],
        activation_map=_shown_rows(
            _activation_map(reduced.map_rows, reduced.map_labels, C, ens, rows_per_class, max_cols), reduced
        ),
        active_units=reduced.active_units,
        n_rows=int(M),
        n_units=int(n),
        ensemble_factor=factor,
        lifetime_sparsity=_summary(life, bins, (0.0, 1.0)) if life.size else None,
    )


def _shown_rows(amap: ActivationMap, reduced: ReducedLayer) -> ActivationMap:
    """The map of the reduced rows with its row indices back in X's numbering."""
    amap["row_index"] = [int(reduced.map_index[i]) for i in amap["row_index"]]
    return amap


def analyze_heldout_layer(
    X: Any,
    y: Any,
    heldout_class: int,
    ensembles: Sequence[Any] | None,
    num_classes: int | None = None,
    *,
    factor: float = 2.0,
    sparsity_threshold: float = SPARSITY_CUTOFF,
    rows_per_class: int = 8,
    max_cols: int = 120,
) -> HeldoutLayer:
    """Analyse the held-out class ``k`` of a layer like any other class.

    Rule: ``E_k`` is computed from the rows of class ``k`` with the usual
    leave-one-out rule, and it is *defined* when the Hoyer sparsity of those
    rows is ``>= sparsity_threshold`` (the layer rule of docs/algorithms.md#ensembles, applied to the
    held-out class's own rows, since that class played no part in training).
    The seen classes' ensembles are taken as given: pass the layer's
    ``ensembles`` from :func:`analyze_layer` / :func:`find_ensembles` (entry
    ``k``, if present, is ignored), or None when they are undefined.

    Parameters
    ----------
    X, y : the layer's representations and labels. Class k's rows are *all* its test images (the
        study's rule for an unseen class, §4.4 and Fig. 4B: "averaged on all images of the unseen
        category"); the other rows (the seen classes' correctly classified images) serve only the
        activation map.
    heldout_class : k.
    ensembles : list of C per-class unit-index lists, or None.
    num_classes : C; defaults to ``len(ensembles)`` (required when ``ensembles`` is None).

    Returns
    -------
    :class:`~ffterm_core.records.HeldoutLayer`:
    ``sparsity``         sparsity of the class-k rows (None if it has no non-zero rows)
    ``ensemble``         sorted list of E_k's units, or None when undefined
    ``shared_with_seen`` list of C: ``|E_k ∩ E_c|`` for c != k, None at c = k; None
                         when E_k or the seen ensembles are undefined
    plus ``sparsity_ignored_rows``, ``n_rows``, ``ensemble_size_pct``
    (|E_k| / n · 100 or None), ``jaccard_with_seen`` (like ``shared_with_seen``)
    and ``shared_with_seen_total`` (units of E_k in at least one seen ensemble,
    a single int; None like ``shared_with_seen``); when class k has rows, ``mean_activation`` (n unit
    means over its rows, 4 decimals), and when E_k and the seen ensembles are defined,
    ``activation_map`` (all rows, E_k shown among the seen ensembles, as :func:`activation_map`).
    """
    if num_classes is None:
        if ensembles is None:
            raise ValueError("num_classes is required when ensembles is None")
        num_classes = len(ensembles)
    C = check_num_classes(num_classes)
    if (
        isinstance(heldout_class, bool)
        or not isinstance(heldout_class, numbers.Integral)
        or not (0 <= heldout_class < C)
    ):
        raise ValueError(f"heldout_class must be an integer in [0, {C}), got {heldout_class!r}")
    k = int(heldout_class)
    factor = _check_factor(factor)
    threshold = _check_threshold(sparsity_threshold)
    rows_per_class = _pos_int(rows_per_class, "rows_per_class")
    max_cols = _pos_int(max_cols, "max_cols")
    Xn = as_matrix(X, "X", min_cols=2)
    n = Xn.shape[1]
    labels = as_labels(y, Xn.shape[0], C)
    # a seen class without rows has an undefined ensemble (None): no overlap to count with it
    seen = None
    if ensembles is not None:
        given = list(ensembles)
        checked = as_ensembles([[] if e is None else e for e in given], n, C)
        seen = [None if given[c] is None or c == k else checked[c] for c in range(C)]

    Xk = Xn[labels == k]
    sparsity, ignored = _layer_sparsity_from_rows(_hoyer_rows(Xk))
    ensemble = shared = jac = size_pct = shared_total = None
    ek: np.ndarray | None = None
    if Xk.shape[0] and math.isfinite(sparsity) and sparsity >= threshold:
        m = Xk.mean(axis=0, keepdims=True)
        ek = _mask_to_lists(_ensemble_mask(m, factor))[0]
        ensemble = ek.tolist()
        size_pct = float(ek.size / n * 100.0)
        if seen is not None:
            inter = [None if e is None else int(np.intersect1d(ek, e).size) for e in seen]
            union = [None if e is None else int(np.union1d(ek, e).size) for e in seen]
            shared = inter
            jac = [None if i is None or u is None else (i / u if u else 0.0) for i, u in zip(inter, union)]
            pooled = [e for e in seen if e is not None]
            seen_any = np.unique(np.concatenate(pooled)) if pooled else np.zeros(0, dtype=np.int64)
            shared_total = int(np.intersect1d(ek, seen_any).size)
    record = HeldoutLayer(
        sparsity=_float_or_none(sparsity),
        ensemble=ensemble,
        shared_with_seen=shared,
        sparsity_ignored_rows=int(ignored),
        n_rows=int(Xk.shape[0]),
        ensemble_size_pct=size_pct,
        jaccard_with_seen=jac,
        shared_with_seen_total=shared_total,
    )
    if Xk.shape[0]:
        record["mean_activation"] = np.round(Xk.mean(axis=0), 4).tolist()
        if seen is not None and ek is not None:
            shown = [np.zeros(0, dtype=np.int64) if e is None else e for e in seen]
            shown[k] = ek
            record["activation_map"] = _activation_map(Xn, labels, C, shown, rows_per_class, max_cols)
    return record
