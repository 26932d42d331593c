"""ffterm_core.records: the typed records match what the analysis and a run really write."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ffterm_core.analysis import LAYER_KEYS, analyze_heldout_layer, analyze_layer
from ffterm_core.data.datasets import DATASETS, class_label, class_names
from ffterm_core.records import (
    FINAL_LAYER_KEYS,
    ActivationMap,
    FinalLayer,
    HeldoutLayer,
    Histogram,
    LayerAnalysis,
    Summary,
    final_layer,
)
from ffterm_core.training.evaluate import _no_heldout_rows


def _two_class_layer():
    """Class 0 drives unit 0, class 1 drives unit 3; every other unit is almost silent."""
    X = np.full((6, 5), 0.01)
    X[:3, 0] = 2.0
    X[3:, 3] = 3.0
    y = np.array([0, 0, 0, 1, 1, 1])
    W = np.array([[1.0, -1.0], [1.0, 1.0], [-1.0, -1.0], [1.0, -2.0], [0.5, 0.5]])
    b = np.array([-0.5, 0.0, 0.25, -1.0, 0.5])
    return X, y, W, b


def test_layer_analysis_has_exactly_the_typed_keys():
    X, y, W, b = _two_class_layer()
    r = analyze_layer(X, y, 2, W, b)
    # microstructure: only from `ffterm analyze --microstructure`; the live-image fields: only in a final snapshot
    optional = {"microstructure", "live_ensembles", "stability_floor"}
    assert list(r) == [k for k in LayerAnalysis.__annotations__ if k not in optional]
    assert set(r["rho_plus"]) == set(Summary.__annotations__) == {"mean", "std", "hist"}
    assert set(r["rho_plus"]["hist"]) == set(Histogram.__annotations__)
    assert set(r["activation_map"]) == set(ActivationMap.__annotations__)
    # the values behind the keys: the planted ensembles and the weights' signs
    assert r["ensembles"] == [[0], [3]]
    assert r["shared_units"] == [[1, 0], [0, 1]]
    assert r["rho_plus"]["mean"] == pytest.approx((0.5 + 1.0 + 0.0 + 0.5 + 1.0) / 5)
    assert r["bias"]["mean"] == pytest.approx((-0.5 + 0.0 + 0.25 - 1.0 + 0.5) / 5)


def test_final_layer_keeps_the_final_json_keys_in_order():
    assert FINAL_LAYER_KEYS == (
        "sparsity",
        "sparsity_ignored_rows",
        "ensembles",
        "ensemble_size_pct",
        "shared_units",
        "jaccard",
        "n_units_p_gt_0_05",
        "rho_plus",
        "bias",
    )
    assert LAYER_KEYS is FINAL_LAYER_KEYS  # one list, re-exported by the analysis package
    assert tuple(FinalLayer.__annotations__) == FINAL_LAYER_KEYS
    X, y, W, b = _two_class_layer()
    full = analyze_layer(X, y, 2, W, b)
    kept = final_layer(full)
    assert tuple(kept) == FINAL_LAYER_KEYS
    assert kept == {k: full[k] for k in FINAL_LAYER_KEYS}
    json.dumps(kept, allow_nan=False)


def test_heldout_records_have_exactly_the_typed_keys():
    X, y, _, _ = _two_class_layer()
    r = analyze_heldout_layer(X, y, 1, [[0], [3]])
    assert list(r) == list(HeldoutLayer.__annotations__)
    assert r["ensemble"] == [3] and r["shared_with_seen"] == [0, None]
    empty = _no_heldout_rows()
    assert set(HeldoutLayer.__annotations__) - set(empty) == {"mean_activation", "activation_map"}  # no rows
    assert empty["n_rows"] == 0 and empty["ensemble"] is None


def test_class_names_live_in_the_dataset_description():
    assert DATASETS["fashionmnist"].class_names[3] == "Dress"
    assert DATASETS["cifar10"].class_names[0] == "plane"
    assert DATASETS["mnist"].class_names == tuple(str(c) for c in range(10))
    assert class_names("Fashion-MNIST", 3) == ["T-shirt", "Trouser", "Pullover"]
    assert class_names("unknown", 2) == ["0", "1"]
    assert class_label("fashionmnist", 3) == "3 Dress"
    assert class_label("svhn", 3) == "3"


def test_a_run_did_not_learn_below_twice_chance():
    from ffterm_core.records import did_not_learn, near_chance_limit

    assert near_chance_limit(10) == pytest.approx(0.2)
    assert did_not_learn(0.0721, 10)  # the quick ℓ1 run that answers one class
    assert not did_not_learn(0.78, 10)  # a quick FF run
    assert not did_not_learn(0.70, 10)  # a held-out run (its unseen class can never be right)
    assert did_not_learn(0.1999, 10) and not did_not_learn(0.2, 10)
    assert near_chance_limit(2) == 0.75 and not did_not_learn(0.9, 2)  # 2× chance would be 1.0
    assert did_not_learn(None, 10) is None and did_not_learn(float("nan"), 10) is None


def test_final_json_did_not_learn_is_optional_and_computed_for_older_files():
    from ffterm_core.config import RunConfig, to_dict
    from ffterm_core.store.validation import check_final, final_did_not_learn

    final = {
        "config": to_dict(RunConfig(dataset="fashionmnist")),
        "test_accuracy": 0.0721,
        "layer_accuracy": [],
        "layers": [],
        "wall_seconds": 1.0,
    }
    assert check_final(final) is None and final_did_not_learn(final) is True  # absent: the same rule
    assert final_did_not_learn({**final, "test_accuracy": 0.78}) is False
    assert final_did_not_learn({**final, "did_not_learn": False}) is False  # written: the file's word
    assert check_final({**final, "did_not_learn": "no"}) == "did_not_learn: expected true or false"
