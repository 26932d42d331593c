"""ffterm_core.store.history.RunHistory: snapshots → per-epoch series, with hand-computed values."""

from __future__ import annotations

import math

import pytest

from ffterm_core.store.history import RunHistory, ema, jaccard
from ffterm_core.store.snapshot import Snapshot


def _layer(ensembles, sparsity=0.8, size=None, rho=0.4, bias=-0.1, active=7):
    return {
        "sparsity": sparsity,
        "sparsity_ignored_rows": 0,
        "ensembles": ensembles,
        "ensemble_size_pct": size,
        "shared_units": None,
        "jaccard": None,
        "n_units_p_gt_0_05": None,
        "rho_plus": {"mean": rho, "std": 0.1, "hist": {"counts": [1], "edges": [0, 1]}},
        "bias": {"mean": bias, "std": 0.2, "hist": {"counts": [1], "edges": [-1, 1]}},
        "class_mean_activation": [[0.0]],
        "activation_map": {"matrix": [], "row_class": [], "unit_order": [], "col_class": []},
        "active_units": active,
    }


def _snap(
    epoch,
    loss,
    acc=None,
    layers=None,
    layer_acc=None,
    state="running",
    kind="live",
    g_pos=None,
    g_neg=None,
    heldout=None,
):
    return Snapshot(
        run_name="t",
        model="ff",
        dataset="mnist",
        device="cpu",
        num_layers=2,
        epoch=epoch,
        total_epochs=6,
        loss=loss,
        g_pos=g_pos or [None, None],
        g_neg=g_neg or [None, None],
        test_accuracy=acc,
        layer_accuracy=layer_acc,
        layers=layers,
        state=state,
        kind=kind,
        heldout=heldout,
    )


def test_jaccard_and_ema():
    assert jaccard({1, 2, 3}, {2, 3, 4}) == pytest.approx(2 / 4)
    assert jaccard(set(), set()) == 0.0
    assert jaccard({1}, set()) == 0.0
    assert ema([1.0, None, 3.0], 0) == [1.0, None, 3.0]
    # debiased EMA: first value is itself; second = (0.5*0.5*1 + 0.5*3) / (1 - 0.25)
    out = ema([1.0, None, 3.0], 0.5)
    assert out[0] == pytest.approx(1.0) and out[1] is None
    assert out[2] == pytest.approx((0.25 * 1 + 0.5 * 3) / 0.75)


def test_training_series_per_layer_with_gaps():
    h = RunHistory()
    h.add(_snap(1, [0.7, None], g_pos=[3.5, None], g_neg=[2.5, None]))
    h.add(_snap(2, [0.5, None], g_pos=[4.0, None], g_neg=[2.0, None]))
    h.add(_snap(3, [None, 0.6]))
    assert h.epochs == [1, 2, 3]
    assert h.loss == [[0.7, 0.5, None], [None, None, 0.6]]
    assert h.series("loss", 0) == ([1, 2], [0.7, 0.5])
    assert h.series("loss", 1) == ([3], [0.6])
    assert h.series("g_pos", 0) == ([1, 2], [3.5, 4.0])
    assert h.num_layers == 2 and h.count == 3 and h.latest.epoch == 3 and h.latest_evaluated is None


def test_evaluation_series_and_stability():
    h = RunHistory()
    e1 = [[0, 1, 2], [3, 4]]
    e2 = [[1, 2, 5], [3, 4]]  # class 0: {0,1,2} vs {1,2,5} → 2/4; class 1 unchanged → 1
    assert h.add(
        _snap(
            2, [0.5, None], acc=0.8, layer_acc=[0.78, 0.8], layers=[_layer(e1, size=25.0), _layer(None, sparsity=0.3)]
        )
    )
    assert not h.add(_snap(3, [0.4, None]))
    h.add(
        _snap(
            4,
            [0.3, None],
            acc=0.85,
            layer_acc=[0.8, 0.85],
            layers=[_layer(e2, size=30.0, rho=0.45, bias=-0.2, active=9), _layer(None, sparsity=0.35)],
        )
    )
    assert h.eval_epochs == [2, 4]
    assert h.test_accuracy == [0.8, 0.85]
    assert h.layer_accuracy == [[0.78, 0.8], [0.8, 0.85]]
    assert h.per_layer["sparsity"] == [[0.8, 0.8], [0.3, 0.35]]
    assert h.per_layer["ensemble_size_pct"] == [[25.0, 30.0], [None, None]]
    assert h.per_layer["rho_plus_mean"][0] == [0.4, 0.45] and h.per_layer["bias_mean"][0] == [-0.1, -0.2]
    assert h.per_layer["active_units"][0] == [7, 9]
    assert h.per_layer["lifetime_sparsity_mean"] == [[None, None], [None, None]]  # a file of an earlier version
    assert h.stability[0][0] == [None, 0.5]
    assert h.stability[0][1] == [None, 1.0]
    assert h.stability_mean[0] == [None, 0.75]
    assert h.stability_mean[1] == [None, None]  # undefined ensembles: no stability
    assert h.stability_series(0, 0) == ([4], [0.5])
    assert h.best_accuracy() == (4, 0.85)
    assert h.latest_evaluated.epoch == 4
    assert h.ensembles_at(1, 0)[0] == frozenset({1, 2, 5})


def test_final_snapshot_at_same_epoch_replaces_the_point():
    h = RunHistory()
    h.add(_snap(1, [0.7, None]))
    h.add(_snap(2, [0.6, None], acc=0.5, layers=[_layer([[0]]), _layer([[1]])]))
    final = _snap(2, [None, None], acc=0.55, layers=[_layer([[0]]), _layer([[2]])], state="finished", kind="final")
    h.add(final)
    assert h.epochs == [1, 2]
    assert h.loss[0] == [0.7, 0.6]  # the final snapshot's missing metrics keep the live values
    assert h.eval_epochs == [2] and h.test_accuracy == [0.55]
    assert h.state == "finished"


def test_resume_rewrite_truncates():
    h = RunHistory()
    for e in range(1, 5):
        h.add(
            _snap(
                e,
                [1.0 / e, None],
                acc=0.1 * e if e % 2 == 0 else None,
                layers=[_layer([[e]]), _layer(None)] if e % 2 == 0 else None,
            )
        )
    assert h.eval_epochs == [2, 4]
    h.add(_snap(3, [0.9, None]))  # the run was resumed from epoch 2's checkpoint
    assert h.epochs == [1, 2, 3]
    assert h.loss[0] == [1.0, 0.5, 0.9]
    assert h.eval_epochs == [2]
    assert h.latest_evaluated is None or h.latest_evaluated.epoch <= 2


def test_heldout_series_and_nan():
    h = RunHistory()
    h.add(
        _snap(
            1,
            [math.nan, None],
            acc=0.5,
            layers=[_layer(None), _layer(None)],
            heldout={"class": 3, "accuracy_seen": 0.6, "accuracy_heldout": 0.1, "layers": []},
        )
    )
    assert h.loss[0] == [None]
    assert h.heldout_accuracy_seen == [0.6] and h.heldout_accuracy_heldout == [0.1]


def test_layers_grow_when_a_later_snapshot_has_more():
    h = RunHistory()
    s = _snap(1, [0.5])
    s.num_layers = 1
    h.add(s)
    h.add(_snap(2, [0.4, 0.3]))
    assert h.loss == [[0.5, 0.4], [None, 0.3]]


def test_state_announcements_change_only_the_state():
    h = RunHistory()
    h.add(_snap(1, [0.7, None]))
    h.add(
        Snapshot(
            run_name="t",
            model="ff",
            dataset="mnist",
            device="cpu",
            num_layers=2,
            kind="state",
            state="paused",
            epoch=1,
            total_epochs=6,
        )
    )
    assert h.state == "paused" and h.latest.epoch == 1 and h.latest.kind == "live"
    assert h.epochs == [1] and h.loss[0] == [0.7]
    h.add(
        Snapshot(
            run_name="t",
            model="ff",
            dataset="mnist",
            device="cpu",
            num_layers=2,
            kind="state",
            state="failed",
            message="loss became NaN",
            epoch=1,
            total_epochs=6,
        )
    )
    assert h.state == "failed" and h.message == "loss became NaN"


def test_split_half_floor_of_deterministic_toys():
    import numpy as np

    from ffterm_core.analysis.ensembles import split_half_jaccard

    # class 0: two rows, one per half whatever the split: E({1,0,0,0}) = {0}, E({1,1,0,0}) = {0,1} → 1/2;
    # class 1: four identical rows → the same ensemble in both halves → 1; class 2: one row → undefined
    X = np.array(
        [[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 0], [0, 0, 1, 0], [0, 0, 1, 0], [0, 1, 0, 0]], dtype=float
    )
    y = np.array([0, 0, 1, 1, 1, 1, 2])
    assert split_half_jaccard(X, y, 4) == [0.5, 1.0, None, None]
    assert split_half_jaccard(X, y, 4, splits=1, seed=3) == [0.5, 1.0, None, None]
