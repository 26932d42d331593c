"""Pruning's rankings and pooling on hand-computed cases; the old strategy name; the cached evaluator
against the plain masked forward pass; bad input for several runs."""

import json
import shutil

import numpy as np
import pytest
import torch

from ffterm.cli import main
from ffterm_core.beyond.offline import load_trained
from ffterm_core.beyond.prune import apply_masks, current_names, masks_of
from ffterm_core.beyond.prune_eval import MaskedEvaluator
from ffterm_core.beyond.prune_pool import pool
from ffterm_core.beyond.prune_rank import (
    Margins,
    balanced_order,
    keep_count,
    largest_margin_order,
    random_within_orders,
    score_order,
    split_global,
    zscore,
)
from ffterm_core.store import rundir

# 3 classes × 6 units; members are the positive margins:
# class 0: {0, 1, 3} by margin 0 (5), 1 (4), 3 (3); class 1: {0, 2}: 0 (6), 2 (2); class 2: {3}
MARGIN = np.array(
    [
        [5.0, 4.0, -1.0, 3.0, -2.0, -1.0],
        [6.0, -1.0, 2.0, -1.0, -2.0, -3.0],
        [-1.0, -1.0, -1.0, 1.0, -2.0, -0.5],
    ]
)
M = Margins(MARGIN, MARGIN > 0)


def test_round_robin_takes_one_unit_per_class_in_turn():
    # round 1: class 0 takes 0; class 1's best (0) is taken, so it takes 2; class 2 takes 3.
    # round 2: class 0 takes 1; classes 1 and 2 are used up. Then the rest by largest margin: 5 (−0.5), 4 (−2).
    assert balanced_order(M).tolist() == [0, 2, 3, 1, 5, 4]
    # the old ranking: union first by each unit's largest margin (6, 4, 3, 2), then the rest
    assert largest_margin_order(M).tolist() == [0, 1, 3, 2, 5, 4]


def test_round_robin_of_margins_from_activations_is_balanced():
    # class 0 means [9, 8, 0, 0], class 1 means [0, 0, 1, 1]: with f = 1 class 0's ensemble is {0, 1},
    # class 1's {2, 3}; the largest margins all belong to class 0, the round-robin alternates
    X = np.array([[9, 8, 0, 0], [0, 0, 1, 1]], dtype=float)
    m = Margins.of(X, np.array([0, 1]), factor=1.0, num_classes=2)
    assert largest_margin_order(m).tolist()[:2] == [0, 1]
    assert balanced_order(m).tolist() == [0, 2, 1, 3]


def test_global_ranking_compares_z_scores_across_layers():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([10.0, 10.0, 40.0])
    # z(a) = [−1.22, 0, 1.22]; z(b) = [−0.71, −0.71, 1.41]: b's one standout first, then a's best two
    np.testing.assert_allclose(zscore(b), [-1 / np.sqrt(2), -1 / np.sqrt(2), np.sqrt(2)])
    order = score_order(np.concatenate([zscore(a), zscore(b)]))
    assert order.tolist() == [5, 2, 1, 3, 4, 0]
    kept = split_global(order, 0.5, n=3, layers=2)  # 3 of 6 units: layer 1 keeps two, layer 2 one
    assert [k.tolist() for k in kept] == [[1, 2], [2]]
    assert [k.tolist() for k in split_global(order, 0.01, n=3, layers=2)] == [[], [2]]
    # margins: each class row z-scored per layer, so layer 2's margin 10 weighs as layer 1's 3
    layer1 = Margins(np.array([[1.0, 3.0]]), np.array([[True, True]]))
    layer2 = Margins(np.array([[0.0, 10.0]]), np.array([[False, True]]))
    joined = Margins.joined([layer1, layer2])
    np.testing.assert_allclose(joined.margin, [[-1, 1, -1, 1]])
    assert balanced_order(joined).tolist() == [1, 3, 0, 2]


def test_random_within_ensembles_draws_only_ensemble_units_first():
    union = np.array([True, False, True, False, True, False])
    orders = random_within_orders(union, 20, np.random.default_rng(0))
    for order in orders:
        assert sorted(order[:3].tolist()) == [0, 2, 4] and sorted(order[3:].tolist()) == [1, 3, 5]
    kept = {tuple(sorted(o[: keep_count(1 / 3, 6)].tolist())) for o in orders}
    assert kept <= {(0, 2), (0, 4), (2, 4)} and len(kept) > 1  # random, but only from the union


def _result(run, accs, own=None):
    entry = {
        "layer": 1,
        "keep": 0.1,
        "units_kept": [10, 100],
        "accuracy": accs[0],
        "std": 0.02,
        "layer_accuracy": [accs[0], 0.5],
        "class_accuracy": [accs[0], None],
        "own_accuracy": own,
        "own_std": None,
        "own_class_accuracy": [own, None],
    }
    full = {**entry, "keep": 1.0, "accuracy": accs[1], "own_accuracy": 0.9, "units_kept": [100, 100]}
    return {
        "run": run,
        "seed": 0,
        "baseline": accs[1],
        "baseline_layer_accuracy": [0.9, 0.5],
        "baseline_class_accuracy": [0.9, None],
        "strategies": {"random": [entry, full]},
        "hidden": 100,
        "layers": 2,
    }


def test_pooling_gives_mean_and_std_over_runs():
    pooled = pool([_result("a", (0.6, 0.90), own=0.85), _result("b", (0.8, 0.92), own=0.89)])
    low = pooled["strategies"]["random"][0]
    assert low["accuracy"] == pytest.approx(0.7) and low["std"] == pytest.approx(np.sqrt(0.02))  # ddof 1
    assert low["own_accuracy"] == pytest.approx(0.87) and low["own_std"] == pytest.approx(np.sqrt(0.0008))
    assert low["class_accuracy"] == [pytest.approx(0.7), None]
    assert pooled["baseline"] == pytest.approx(0.91) and pooled["runs"] == ["a", "b"]
    # within 1 point of the pooled baseline 0.91 only at 100 %; the layer's own readout (0.87 vs 0.9) neither
    assert pooled["smallest_keep"] == {"random": {"1": 1.0}}
    assert pooled["smallest_keep_own"] == {"random": {"1": 1.0}}


def test_old_strategy_name_is_accepted_with_a_note():
    assert current_names(["ensemble", "random", "largest-margin"]) == (
        ("largest-margin", "random"),
        ["strategy 'ensemble' is now called 'largest-margin'"],
    )
    assert current_names(["random"]) == (("random",), [])


def test_old_prune_json_still_renders_in_the_report(tmp_path):
    from ffterm_core.reports.markdown_page import MarkdownPage
    from ffterm_core.reports.run_report_beyond import beyond_figures, beyond_sections
    from ffterm_core.store.history import RunHistory

    old = {
        "baseline": 0.78,
        "strategies": {"ensemble": [{"layer": "all", "keep": 0.1, "accuracy": 0.5, "std": None}]},
        "smallest_keep": {"ensemble": {"all": None}},
        "baseline_layer_accuracy": [0.7, 0.6],
        "model": "ff",
        "hidden": 1000,
        "finetune_epochs": 0,
    }
    (tmp_path / rundir.PRUNE).write_text(json.dumps(old))
    page = MarkdownPage("t")
    beyond_sections(page, RunHistory(), tmp_path)
    assert "| ensemble (= largest-margin) | all | net | 0.500 | — |" in page.render()
    figure = beyond_figures(RunHistory(), tmp_path, [])[-1]
    assert figure.name == "prune" and figure.build() is not None


@pytest.fixture(scope="module")
def ff_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("ff") / "run"
    args = ["--set", "dataset=synthetic", "--set", "epochs=1", "--set", "hidden=16", "--set", "final_pvalues=false"]
    assert main(["run", "quick-ff-synthetic", "--headless", "--out", str(run), *args, "--device", "cpu"]) == 0
    return run


@pytest.mark.parametrize(
    "kept",
    [
        {},
        {0: [0, 2, 4, 6, 8, 10, 12, 14]},
        {1: [1, 5]},
        {2: [0, 1, 2]},
        {0: [0, 1, 2, 3], 1: [5, 6, 7, 8], 2: []},  # a layer with nothing kept (the global target can do that)
    ],
)
def test_cached_evaluation_equals_the_masked_network(ff_run, kept):
    _, trainer = load_trained(ff_run, "cpu")
    x, y = trainer.data.test_x, trainer.data.test_y
    kept = {layer: torch.tensor(units, dtype=torch.long) for layer, units in kept.items()}
    fast = MaskedEvaluator(trainer, x)(kept)
    apply_masks(trainer.net, masks_of(kept, 16, trainer.device))
    slow = trainer.evaluate(x, y)
    assert np.array_equal(fast.net, slow.predictions.numpy())
    assert np.array_equal(fast.layers, slow.layer_predictions.numpy())


def test_pooled_runs_write_mean_and_std(ff_run, tmp_path, capsys):
    second = tmp_path / "seed-b"
    shutil.copytree(ff_run, second)
    out = tmp_path / "pooled"
    args = ["--strategies", "ensemble,random", "--keep", "0.25,1", "--layers", "all,global,2", "--draws", "2"]
    assert main(["prune", str(ff_run), str(second), "--out", str(out), *args]) == 0
    captured = capsys.readouterr()
    assert "now called 'largest-margin'" in captured.err and "2 runs pooled" in captured.out
    pooled = json.loads((out / rundir.PRUNE).read_text())
    single = json.loads((ff_run / rundir.PRUNE).read_text())
    assert pooled["runs"] == [ff_run.name, second.name] and (out / rundir.PRUNE_CSV).exists()
    for name in ("largest-margin", "random"):
        for p, s in zip(pooled["strategies"][name], single["strategies"][name]):
            # the same checkpoint twice: the mean is that run's value and the spread over runs is 0
            assert p["accuracy"] == pytest.approx(s["accuracy"]) and p["std"] == pytest.approx(0.0, abs=1e-12)
    assert {str(e["layer"]) for e in pooled["strategies"]["random"]} == {"all", "global", "2"}


def test_runs_of_different_datasets_are_not_pooled(ff_run, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(ff_run, other)
    config = (other / rundir.CONFIG).read_text().replace("dataset: synthetic", "dataset: mnist")
    (other / rundir.CONFIG).write_text(config)
    (ff_run / rundir.PRUNE).unlink(missing_ok=True)
    assert main(["prune", str(ff_run), str(other)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot pool" in err and "dataset synthetic vs mnist" in err
    assert not (ff_run / rundir.PRUNE).exists()  # checked before anything is measured
