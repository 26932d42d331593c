"""Pruning: rankings, a constructed network whose accuracy lives in known units, outputs, bad input."""

import csv
import hashlib
import io
import json

import numpy as np
import pytest
import torch

from ffterm.cli import main
from ffterm_core.beyond.offline import load_trained
from ffterm_core.beyond.prune import (
    PruneSpec,
    _Measurer,
    apply_masks,
    masks_of,
    prune_run,
    smallest_keep,
    to_csv,
    write_outputs,
)
from ffterm_core.beyond.prune_rank import (
    Margins,
    keep_count,
    largest_margin_order,
    random_orders,
    score_order,
)
from ffterm_core.config import RunConfig, dump_yaml
from ffterm_core.data.prepare import prepare
from ffterm_core.store import rundir
from ffterm_core.store.checkpoint import save_checkpoint
from ffterm_core.training.trainers import make_trainer


@pytest.fixture(scope="module")
def constructed_run(tmp_path_factory):
    """A BP network on the synthetic set, one hidden layer of 40 units, built by hand: unit c (0–9) is a
    template matcher for class c and the head reads only those ten units; units 10–39 respond weakly and
    equally to every class and feed nothing downstream. Accuracy depends only on units 0–9."""
    cfg = RunConfig(name="constructed", model="bp", dataset="synthetic", layers=1, hidden=40, epochs=1, device="cpu")
    device = torch.device("cpu")
    trainer = make_trainer(cfg, prepare(cfg, device), device)
    x, y = trainer.data.train_x, trainer.data.train_y
    mu = x.mean(0)
    templates = torch.stack([x[y == c].mean(0) - mu for c in range(10)])
    own = torch.stack([((x[y == c] - mu) @ templates[c]).mean() for c in range(10)])
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        hidden, head = trainer.net.linears[0], trainer.net.head
        hidden.weight[:10] = templates / own[:, None]  # response 1 on average for its own class
        hidden.bias[:10] = -(templates / own[:, None]) @ mu - 0.5
        hidden.weight[10:] = torch.randn(30, x.shape[1], generator=gen) * 0.02
        hidden.bias[10:] = 0.1
        head.weight.zero_()
        head.bias.zero_()
        head.weight[:, :10] = torch.eye(10)
    run_dir = tmp_path_factory.mktemp("constructed")
    rundir.atomic_write_text(run_dir / rundir.CONFIG, dump_yaml(cfg))
    save_checkpoint(run_dir / rundir.CHECKPOINT, cfg, trainer.state_dict(), 0.0)
    return run_dir


def _by_keep(result, strategy, layer="all"):
    return {e["keep"]: e for e in result["strategies"][strategy] if e["layer"] == layer}


def test_ensemble_pruning_keeps_the_units_that_matter_and_random_does_not(constructed_run):
    names = ("largest-margin", "ensemble-balanced", "random", "random-ensemble", "magnitude", "activity")
    spec = PruneSpec(targets=("all",), strategies=names, keep=(0.25, 1.0), draws=4, seed=3)
    result = prune_run(constructed_run, spec)
    baseline = result["baseline"]
    assert baseline > 0.95
    ensemble, random = _by_keep(result, "largest-margin"), _by_keep(result, "random")
    assert _by_keep(result, "ensemble-balanced")[0.25]["accuracy"] == baseline
    # 25 % of 40 = the 10 informative units: the ensemble ranking keeps exactly them, so nothing changes
    assert ensemble[0.25]["accuracy"] == baseline and ensemble[0.25]["std"] is None
    assert random[0.25]["accuracy"] < baseline - 0.3 and random[0.25]["std"] > 0
    assert random[1.0]["accuracy"] == baseline and ensemble[1.0]["accuracy"] == baseline
    # the distractors are the busier and heavier units here: activity and magnitude lose the signal
    assert _by_keep(result, "activity")[0.25]["accuracy"] < 0.5
    assert _by_keep(result, "magnitude")[0.25]["accuracy"] < 0.5
    assert result["smallest_keep"]["largest-margin"] == {"all": 0.25}
    assert result["smallest_keep"]["random"] == {"all": 1.0}
    assert result["baseline_layer_accuracy"] is None  # BP has no per-layer goodness accuracy


def test_ensemble_order_puts_the_union_first_by_margin():
    # class 0 means [0, 1, 9, 1]: margins m - 2·LOO = [-22/3, -17/3, 23/3, -17/3] → ensemble {2}
    # class 1 means [4, 1, 0, 1]: margins [8/3, -7/3, -4, -7/3] → ensemble {0}
    X = np.array([[0, 1, 9, 1], [0, 1, 9, 1], [4, 1, 0, 1], [4, 1, 0, 1]], dtype=float)
    y = np.array([0, 0, 1, 1])
    order = largest_margin_order(Margins.of(X, y, 2.0, num_classes=2))
    assert order[:2].tolist() == [2, 0]
    # outside the union, units 1 and 3 tie at best margin -7/3: by index
    assert order[2:].tolist() == [1, 3]


def test_magnitude_order_and_keep_count():
    W = np.array([[1.0, 0.0], [3.0, 4.0], [0.0, 2.0]])
    assert score_order(np.linalg.norm(W, axis=1)).tolist() == [1, 2, 0]
    assert [keep_count(f, 40) for f in (0.01, 0.25, 0.5, 1.0)] == [1, 10, 20, 40]
    assert keep_count(0.05, 10) == 1 and keep_count(0.15, 10) == 2  # round half up, at least one


def test_random_strategy_is_reproducible_by_seed(constructed_run):
    a = random_orders(40, 3, np.random.default_rng([5, 0]))
    b = random_orders(40, 3, np.random.default_rng([5, 0]))
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[0], a[1])  # the draws differ from each other
    spec = PruneSpec(strategies=("random", "random-ensemble"), keep=(0.25,), draws=3, seed=5)
    first, second = prune_run(constructed_run, spec), prune_run(constructed_run, spec)
    assert first["strategies"] == second["strategies"]


def test_outputs_beside_the_run_leave_its_files_untouched(constructed_run):
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in constructed_run.iterdir()}
    seen = []
    spec = PruneSpec(targets=("all",), strategies=("largest-margin", "random"), keep=(0.25, 0.5, 1.0), draws=2)
    result = prune_run(constructed_run, spec, progress=seen.append)
    written = write_outputs(constructed_run, result)
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in constructed_run.iterdir() if p.name in before}
    assert after == before
    assert {p.name for p in written} >= {"prune.json", "prune.csv"}
    data = json.loads((constructed_run / "prune.json").read_text())
    assert data["baseline"] == result["baseline"]
    assert set(data["strategies"]) == {"largest-margin", "random"}
    for entries in data["strategies"].values():
        assert [e["keep"] for e in entries] == [0.25, 0.5, 1.0]
        assert all({"layer", "keep", "accuracy", "std"} <= set(e) and e["layer"] == "all" for e in entries)
    rows = list(csv.DictReader(io.StringIO((constructed_run / "prune.csv").read_text())))
    assert len(rows) == 6 and rows[0]["layer_1_units"] == "10"
    assert len(data["baseline_class_accuracy"]) == 10 and len(rows[0]) == 7 + 2 + 10  # 1 layer, 10 classes
    # progress: every measurement counted (random: 2 draws per point), each finished point reported once
    assert [p.done for p in seen][-1] == seen[-1].total == 3 + 3 * 2
    assert [p.entry["keep"] for p in seen if p.entry is not None] == [0.25, 0.5, 1.0] * 2


def test_smallest_keep_needs_every_larger_fraction_within_one_point():
    entries = [
        {"layer": "all", "keep": k, "accuracy": a, "std": None}
        for k, a in ((0.1, 0.895), (0.2, 0.85), (0.5, 0.893), (1.0, 0.9))
    ]
    assert smallest_keep(0.9, {"s": entries}) == {"s": {"all": 0.5}}  # 0.1 is within, but 0.2 is not
    assert smallest_keep(0.95, {"s": entries}) == {"s": {"all": None}}
    assert to_csv({"strategies": {"s": entries[:1]}, "hidden": 10}).splitlines()[1] == "s,all,0.1,0.895,,,,1,"


@pytest.fixture(scope="module")
def ff_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("ff") / "run"
    args = ["--set", "dataset=synthetic", "--set", "epochs=1", "--set", "hidden=16", "--set", "final_pvalues=false"]
    assert main(["run", "quick-ff-synthetic", "--headless", "--out", str(run), *args, "--device", "cpu"]) == 0
    return run


def test_ff_run_reports_per_layer_accuracy(ff_run, capsys):
    code = main(["prune", str(ff_run), "--layers", "all,2", "--keep", "0.5,1", "--strategies", "magnitude"])
    assert code == 0
    out = capsys.readouterr().out
    assert code == 0 and "magnitude" in out
    data = json.loads((ff_run / "prune.json").read_text())
    entries = data["strategies"]["magnitude"]
    assert [(e["layer"], e["keep"]) for e in entries] == [("all", 0.5), ("all", 1.0), (2, 0.5), (2, 1.0)]
    assert all(len(e["layer_accuracy"]) == 3 for e in entries)
    assert entries[1]["layer_accuracy"] == data["baseline_layer_accuracy"]
    # pruning layer 2 leaves layer 1's goodness, hence its accuracy, unchanged
    assert entries[2]["layer_accuracy"][0] == data["baseline_layer_accuracy"][0]
    # a single-layer target carries that layer's own readout
    assert entries[2]["own_accuracy"] == entries[2]["layer_accuracy"][1] and "own_accuracy" not in entries[0]
    assert entries[2]["units_kept"] == [16, 8, 16] and entries[0]["units_kept"] == [8, 8, 8]


def test_finetuning_retrains_only_the_kept_units(ff_run):
    _, trainer = load_trained(ff_run, "cpu")
    original = [lin.weight.detach().clone() for lin in trainer.net.linears]
    order = score_order(np.linalg.norm(original[1].numpy(), axis=1))
    masks = masks_of({1: torch.as_tensor(np.sort(order[:8]))}, 16, trainer.device)
    measure = _Measurer(trainer, PruneSpec(finetune=1))
    apply_masks(trainer.net, masks)
    tuned = measure._finetuned(masks)
    w = tuned.net.linears[1].weight.detach()
    assert masks[1].sum() == 8 and torch.count_nonzero(w[~masks[1]]) == 0  # removed units stay removed
    assert not torch.equal(w[masks[1]], original[1][masks[1]])  # the kept units were trained
    assert not torch.equal(tuned.net.linears[0].weight, original[0])  # so were the other layers
    spec = PruneSpec(targets=("all",), strategies=("magnitude",), keep=(0.5,), finetune=1)
    result = prune_run(ff_run, spec, device="cpu")
    assert result["finetune_epochs"] == 1 and 0.0 <= result["strategies"]["magnitude"][0]["accuracy"] <= 1.0


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--layers", "4"], ["layer 4", "layers 1..1"]),
        (["--layers", "x"], ["--layers 'x'", "'global'"]),
        (["--keep", "0,0.5"], ["keep fraction 0.0", "(0, 1]"]),
        (["--keep", "1.5"], ["keep fraction 1.5", "(0, 1]"]),
        (["--keep", "half"], ["--keep 'half'"]),
        (["--strategies", "ensemble-balanced,lottery"], ["unknown pruning strategy 'lottery'", "random-ensemble"]),
        (["--draws", "0"], ["--draws", "(got 0)"]),
    ],
)
def test_bad_input_is_one_line(constructed_run, capsys, extra, words):
    code = main(["prune", str(constructed_run), *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("ffterm: error:") and err.count("\n") == 1
    for w in words:
        assert w in err


def test_run_without_checkpoint_is_one_line(tmp_path, capsys, constructed_run):
    run = tmp_path / "no-ckpt"
    run.mkdir()
    (run / rundir.CONFIG).write_text((constructed_run / rundir.CONFIG).read_text())
    assert main(["prune", str(run)]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint here" in err and err.count("\n") == 1
    assert main(["prune", str(tmp_path / "nothing")]) == 2
    assert "not an ffterm run directory" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == [rundir.CONFIG]  # nothing written


def test_report_section_lists_every_strategy(constructed_run):
    from ffterm_core.reports.markdown_page import MarkdownPage
    from ffterm_core.reports.run_report_beyond import beyond_figures, beyond_sections
    from ffterm_core.store.history import RunHistory

    spec = PruneSpec(targets=("all", 1), strategies=("ensemble-balanced", "random"), keep=(0.25, 1.0), draws=2)
    write_outputs(constructed_run, prune_run(constructed_run, spec))
    page = MarkdownPage("t")
    beyond_sections(page, RunHistory(), constructed_run)
    text = page.render()
    assert "## Pruning" in text and "| ensemble-balanced | all | net | 0.9" in text and "| random | 1 | net |" in text
    assert "| 0.25 | 1 | smallest within 1 pt |" in text
    assert "Which classes break first" in text  # random at 25 % loses some classes
    assert [s.name for s in beyond_figures(RunHistory(), constructed_run, [])] == ["prune"]


async def test_app_prune_view_fills_the_curve_and_writes_beside_the_run(ff_run):
    from ffterm.app.main import FFTermApp
    from ffterm.app.views.prune import APP_SPEC, PruneView

    (ff_run / "prune.json").unlink(missing_ok=True)
    app = FFTermApp(watch=[ff_run])
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(200):  # the watched run's snapshots arrive
            await pilot.pause(0.05)
            if app.runs.primary is not None and app.runs.primary.history.count:
                break
        view = app.dashboard.query_one("#view-prune", PruneView)
        drawn = []  # points on the curve at each draw
        draw = view.draw
        view.draw = lambda feed, feeds: (drawn.append(len(view.job.entries) if view.job else 0), draw(feed, feeds))
        await pilot.press("x")
        for _ in range(6000):
            await pilot.pause(0.05)
            if not view.job.running:
                break
        assert view.job.error is None and view.job.finished
        points = len(APP_SPEC.strategies) * len(APP_SPEC.keep)
        assert len(view.job.entries) == points
        # the worker hands each measured point to the UI thread and waits: every point is drawn
        assert set(range(1, points + 1)) <= set(drawn)
        assert app.dashboard.query_one("#tabs").active == "tab-prune"
        assert "done, unpruned accuracy" in str(view.query_one("#prune-status").render())
    assert json.loads((ff_run / "prune.json").read_text())["draws"] == APP_SPEC.draws


async def test_app_prune_without_a_checkpoint_says_why(tmp_path, ff_run):
    from ffterm.app.main import FFTermApp
    from ffterm.app.views.prune import PruneView

    run = tmp_path / "copy"
    run.mkdir()
    for name in (rundir.CONFIG, rundir.SNAPSHOTS):
        (run / name).write_bytes((ff_run / name).read_bytes())
    app = FFTermApp(watch=[run])
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(200):
            await pilot.pause(0.05)
            if app.runs.primary is not None and app.runs.primary.history.count:
                break
        await pilot.press("x")
        view = app.dashboard.query_one("#view-prune", PruneView)
        for _ in range(400):
            await pilot.pause(0.05)
            if not view.job.running:
                break
        assert "no checkpoint here" in view.job.error and "\n" not in view.job.error
    assert not (run / "prune.json").exists()
