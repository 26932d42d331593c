"""The life of ensemble units: a hand-made snapshot history against a hand-computed raster."""

from __future__ import annotations

import json

from ffterm_core.analysis.ensemble_life import EnsembleLife, ensemble_life_of_run
from ffterm_core.config import RunConfig
from ffterm_core.store import rundir
from ffterm_core.store.history import RunHistory
from ffterm_core.store.snapshot import Snapshot
from ffterm_core.training.session import Session

# one layer, two classes; None: the layer's ensembles are undefined at that evaluation
HISTORY = [
    (1, [[1, 2], [5]]),
    (2, [[1, 2, 3], []]),
    (3, None),
    (4, [[2, 3], []]),
    (5, [[1, 2, 3], []]),
    (6, [[1, 2, 3], []]),
]


def _snap(epoch: int, ensembles, kind: str = "live") -> Snapshot:
    layer = {"sparsity": 0.8 if ensembles is not None else 0.3, "ensembles": ensembles}
    return Snapshot(
        run_name="t",
        model="ff",
        dataset="mnist",
        device="cpu",
        num_layers=1,
        kind=kind,
        epoch=epoch,
        total_epochs=6,
        loss=[0.5],
        test_accuracy=0.5,
        layer_accuracy=[0.5],
        layers=[layer],
    )


def _life(history=HISTORY) -> EnsembleLife:
    return EnsembleLife.from_history(RunHistory.from_snapshots(_snap(e, ens) for e, ens in history))


def test_raster_joins_leaves_and_stable_epoch_by_hand():
    life = _life()
    assert life.epochs == [1, 2, 3, 4, 5, 6]
    cls0 = life.of(0, 0)
    units, rows = cls0.raster()
    assert units == [1, 2, 3]
    assert rows == [
        [True, True, None, False, True, True],  # unit 1 leaves at 4, rejoins at 5
        [True, True, None, True, True, True],
        [False, True, None, True, True, True],
    ]
    assert cls0.joins == [2, 1, None, 0, 1, 0]
    assert cls0.leaves == [0, 0, None, 1, 0, 0]
    assert cls0.turnover == [2, 1, None, 1, 1, 0]
    # Jaccard to {1,2,3}: 6 → 1, 5 → 1, 4 → 2/3 < 0.9: stable from epoch 5
    assert cls0.stable_epoch() == 5
    assert cls0.to_json() == {"stable_epoch": 5, "joined": {"1": 5, "2": 1, "3": 2}, "left": {"1": 4}}
    # class 1's only unit leaves at epoch 2; its final ensemble is empty: never stable
    assert life.of(0, 1).to_json() == {"stable_epoch": None, "joined": {"5": 1}, "left": {"5": 2}}


def test_undefined_evaluations_are_skipped_for_stability():
    history = [(e, [[1, 2, 3], []] if e in (2, 4) else ens) for e, ens in HISTORY]
    # epochs 2, 4, 5, 6 hold {1,2,3}; epoch 3 is undefined (skipped); epoch 1 {1,2} has Jaccard 2/3
    assert _life(history).of(0, 0).stable_epoch() == 2
    assert _life(history).of(0, 0).stable_epoch(threshold=0.6) == 1


def test_a_class_first_defined_later_is_undefined_before():
    life = _life([(1, None), (2, [[4]])])
    assert life.of(0, 0).raster() == ([4], [[None, True]])
    assert life.of(0, 0).to_json() == {"stable_epoch": 2, "joined": {"4": 2}, "left": {}}
    assert life.of(0, 1) is None and life.of(3, 0) is None


def test_incremental_updates_equal_a_rebuild_and_follow_replacements():
    history = RunHistory()
    life = EnsembleLife()
    added = []
    for epoch, ens in HISTORY:
        history.add(_snap(epoch, ens))
        added.append(life.update(history))
    assert added == [1] * 6
    assert life.to_json() == _life().to_json()
    assert life.update(history) == 0
    # the final snapshot replaces the epoch-6 evaluation with other ensembles: the life starts over
    history.add(_snap(6, [[2, 3], [5]], kind="final"))
    life.update(history)
    assert life.of(0, 0).to_json() == {"stable_epoch": 6, "joined": {"1": 5, "2": 1, "3": 2}, "left": {"1": 6}}
    assert life.to_json() == _life([*HISTORY[:5], (6, [[2, 3], [5]])]).to_json()


def test_final_json_holds_the_ensemble_life(tmp_path):
    cfg = RunConfig(dataset="synthetic", epochs=1, hidden=16, batch_size=200, final_pvalues=False, device="cpu")
    session = Session(cfg, tmp_path / "r")
    session.start()
    session.join()
    assert session.state == "finished"
    final = json.loads((tmp_path / "r" / rundir.FINAL).read_text())
    assert final["ensemble_life"] == ensemble_life_of_run(tmp_path / "r")
    assert len(final["ensemble_life"]) == cfg.layers


def test_report_section_and_raster_figure(tmp_path):
    from ffterm_core.figures.draw import save_figure
    from ffterm_core.reports.markdown_page import MarkdownPage
    from ffterm_core.reports.run_report_beyond import beyond_figures, beyond_sections

    history = RunHistory.from_snapshots(_snap(e, ens) for e, ens in HISTORY)
    page = MarkdownPage("t")
    beyond_sections(page, history)
    text = page.render()
    assert "## The life of ensemble units" in text
    assert "| 0 | 5 | 3 | 3 | 3 | 0 |" in text  # stable from 5; 3 ever; final 3; turnover 1+1+1+0 after the first
    assert "| 1 | — | 1 | 0 | 1 | 0 |" in text
    (spec,) = beyond_figures(history, None, ["a", "b"])
    png, svg = save_figure(spec.build(), tmp_path, spec.name)
    assert png.stat().st_size > 0 and "<svg" in svg.read_text()


def test_app_panels_show_the_raster_and_the_patterns():
    from ffterm.app.views.life import patterns_text, raster_text

    text = raster_text(_life().of(0, 0), "L1 class 0", 40, 10).plain
    assert "3 units ever · stable from epoch 5 · turnover last 0" in text
    assert "    1 ██ ·██\n    2 ██ ███\n    3 ·█ ███" in text  # earliest joiners first
    assert "no ensemble units yet" in raster_text(None, "t", 40, 10).plain
    entry = {
        "class": 0,
        "dominant": 0,
        "patterns": [{"size": 30, "jaccard_with_class": 1.0}, {"size": 10, "jaccard_with_class": 0.5}],
    }
    lines = patterns_text(entry, 46).plain.splitlines()
    assert lines[1] == "P1* " + "▇" * 15 + " 30 img · J 1.00" and lines[2] == "P2  " + "▇" * 5 + " 10 img · J 0.50"


def test_a_resumed_run_keeps_the_life_of_its_earlier_evaluations(tmp_path):
    """The session follows ensembles in memory; a resume picks up the evaluations already on disk."""
    cfg = RunConfig(dataset="synthetic", epochs=2, hidden=16, batch_size=200, final_pvalues=False, device="cpu")
    session = Session(cfg, tmp_path / "r")
    session.subscribe(lambda snap: snap.kind == "live" and snap.epoch == 3 and session.stop())
    session.start()
    session.join()
    assert session.state == "stopped"
    resumed = Session.resume_from(tmp_path / "r")
    resumed.start()
    resumed.join()
    assert resumed.state == "finished"
    final = json.loads((tmp_path / "r" / rundir.FINAL).read_text())
    history = RunHistory.from_snapshots(rundir.read_snapshots(tmp_path / "r"))
    assert history.eval_epochs[0] < 3 < history.eval_epochs[-1]  # evaluations from both sessions count
    assert final["ensemble_life"] == EnsembleLife.from_history(history).to_json()


def test_a_class_without_rows_stays_undefined_in_life_and_stability():
    # class 1 has no correctly classified image at epoch 2: its ensemble is None, not empty
    history = RunHistory()
    for epoch, ens in [(1, [[1, 2], [5, 6]]), (2, [[1, 2], None]), (3, [[1, 2], [5, 6]])]:
        history.add(_snap(epoch, ens))
    assert history.stability[0][1] == [None, None, None]  # nothing to compare with the evaluation before
    assert history.stability_mean[0] == [None, 1.0, 1.0]  # not pulled down by a Jaccard of 0
    life = EnsembleLife.from_history(history)
    assert life.of(0, 1).turnover == [2, None, 0]
    assert life.of(0, 1).raster() == ([5, 6], [[True, None, True], [True, None, True]])


def _staged(epoch: int, layers, kind: str = "live", samples: int = 100) -> Snapshot:
    """Sequential FF with two layers of two epochs each; `layers`: per layer (ensembles, live_ensembles)."""
    analysed = []
    for ens, live in layers:
        layer = {"sparsity": 0.3 if ens is None else 0.8, "ensembles": ens}
        if kind == "final" and live is not ...:
            layer["live_ensembles"] = live
        analysed.append(layer)
    return Snapshot(
        run_name="t",
        model="ff",
        dataset="mnist",
        device="cpu",
        num_layers=2,
        kind=kind,
        epoch=epoch,
        epochs_per_stage=2,
        total_epochs=4,
        test_accuracy=0.5,
        layer_accuracy=[0.5, 0.5],
        eval_samples=samples,
        layers=analysed,
    )


# class 1 never has a correctly classified image: undefined throughout
STAGED = [
    _staged(1, [([[1, 2], None], None), (None, None)]),
    _staged(2, [([[1, 2, 3], None], None), ([[5], None], None)]),  # layer 1 frozen from here on
    _staged(3, [([[2, 3], None], None), ([[5, 6], None], None)]),
    # the final snapshot: the whole test set, and the final model again on the live images
    _staged(4, [([[9], None], [[1, 2, 3, 4], None]), ([[7], None], [[5, 6, 7], None])], "final", 1000),
]


def test_like_with_like_and_the_frozen_layer_by_hand():
    history = RunHistory.from_snapshots(STAGED)
    # layer 1 is frozen from epoch 2: on the images correct then its ensemble stays {1,2,3}
    assert [history.ensembles_at(i, 0)[0] for i in range(4)] == [{1, 2}, {1, 2, 3}, {1, 2, 3}, {1, 2, 3}]
    assert history.stability[0][0] == [None, 2 / 3, 1.0, 1.0]
    assert history.stability[0][1] == [None] * 4 and history.stability_mean[0] == [None, 2 / 3, 1.0, 1.0]
    # layer 2: the final point on the live images ({5,6,7}), not the whole test set's {7}
    assert history.stability[1][0] == [None, None, 1 / 2, 2 / 3]
    life = EnsembleLife.from_history(history)
    frozen, trained = life.of(0, 0), life.of(1, 0)
    assert frozen.turnover == [2, 1, 0, 0]
    # what the evaluations saw changed by {1} at epoch 3 and by {1, 4} at epoch 4: the image set's drift
    assert frozen.drift == [None, None, 1, 2]
    assert frozen.to_json() == {
        "stable_epoch": 2,
        "joined": {"1": 1, "2": 1, "3": 2},
        "left": {},
        "frozen_from": 2,
        "drift": 3,
    }
    assert trained.turnover == [None, 1, 1, 1] and trained.drift == [None] * 4
    assert trained.to_json() == {"stable_epoch": 4, "joined": {"5": 2, "6": 3, "7": 4}, "left": {}}
    # the class without a correct image: undefined everywhere, never an empty ensemble
    assert life.of(0, 1).raster() == ([], []) and life.of(0, 1).turnover == [None] * 4
    assert life.of(0, 1).to_json()["stable_epoch"] is None


def test_a_final_snapshot_of_an_earlier_version_is_not_compared_with_a_subset():
    old = _staged(4, [([[9], None], ...), ([[7], None], ...)], "final", 1000)
    history = RunHistory.from_snapshots([*STAGED[:3], old])
    assert history.ensembles_at(3, 1) is None and history.stability[1][0][3] is None
    assert history.ensembles_at(3, 0)[0] == {1, 2, 3}  # the frozen layer keeps its fixed image set
    # the whole test set analysed live too: the final ensembles are on the same images
    same = [_staged(e, [([[1]], None), ([[2]], None)], samples=1000) for e in (1, 2)]
    history = RunHistory.from_snapshots([*same, _staged(4, [([[1]], ...), ([[2, 3]], ...)], "final", 1000)])
    assert history.stability[1][0] == [None, 1.0, 1 / 2]


def test_a_class_without_correct_images_is_undefined_end_to_end():
    """analyze_layer on rows without class 1 → the snapshot → history, life and the matrices."""
    import numpy as np

    from ffterm_core.analysis import analyze_layer

    X = np.zeros((6, 8))
    X[:3, :2] = 1.0
    X[3:, 4:6] = 1.0
    y = np.array([0, 0, 0, 2, 2, 2])
    layer = analyze_layer(X, y, 3, None, None)
    assert layer["ensembles"] == [[0, 1], None, [4, 5]]
    assert layer["shared_units"][1] == [None, None, None] and layer["jaccard"][0][1] is None
    snaps = [_snap(e, layer["ensembles"]) for e in (1, 2)]
    history = RunHistory.from_snapshots(snaps)
    assert history.stability[0][1] == [None, None] and history.stability[0][0] == [None, 1.0]
    life = EnsembleLife.from_history(history)
    assert life.of(0, 1).turnover == [None, None] and life.of(0, 1).raster() == ([], [])


def test_the_report_says_when_the_final_snapshot_is_of_an_earlier_version():
    from ffterm_core.reports.markdown_page import MarkdownPage
    from ffterm_core.reports.run_report_beyond import beyond_sections

    def text(snapshots) -> str:
        page = MarkdownPage("t")
        beyond_sections(page, RunHistory.from_snapshots(snapshots))
        return page.render()

    old = _staged(4, [([[9], None], ...), ([[7], None], ...)], "final", 1000)
    earlier = text([*STAGED[:3], old])
    assert "of an earlier version" in earlier
    # layer 2 (still training at the end): {5}, {5, 6}, undefined: no final size, no stable-from epoch
    assert "| 0 | — | 2 | — | 1 | 1 | — |" in earlier  # turnover 1 at epoch 3 after the first
    assert "of an earlier version" not in text(STAGED)


def test_the_raster_starts_at_the_layers_first_ensembles_and_marks_the_freeze():
    from ffterm_core.figures.beyond import life_raster_figure

    life = EnsembleLife.from_history(RunHistory.from_snapshots(STAGED))
    deeper = life_raster_figure(life.layers[1], 1)  # undefined at epoch 1, before its stage
    ax = deeper.axes[0]
    assert ax.images[0].get_array().shape == (3, 3)  # units 5, 6, 7 over epochs 2, 3, 4
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "3", "4"]
    frozen = life_raster_figure(life.layers[0], 0).axes[0]
    assert [line.get_xdata()[0] for line in frozen.lines if line.get_linestyle() == "--"] == [1.5]  # after epoch 2
    assert not [line for line in ax.lines if line.get_linestyle() == "--"]
