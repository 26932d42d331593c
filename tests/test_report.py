"""ffterm.core.report: snapshot.json + report.md carry the snapshot's numbers."""

from __future__ import annotations

import json
from datetime import datetime

from ffterm.core.history import RunHistory
from ffterm.core.report import class_names, render_markdown, report_dir, write_report
from ffterm.core.snapshot import Snapshot


def _layer(sparsity, ensembles, shared, jac, size, rho=(0.4321, 0.05), bias=(-0.1234, 0.2)):
    return {
        "sparsity": sparsity,
        "sparsity_ignored_rows": 2,
        "ensembles": ensembles,
        "ensemble_size_pct": size,
        "shared_units": shared,
        "jaccard": jac,
        "n_units_p_gt_0_05": 1,
        "rho_plus": {"mean": rho[0], "std": rho[1], "hist": {"counts": [1, 2], "edges": [0, 0.5, 1]}},
        "bias": {"mean": bias[0], "std": bias[1], "hist": {"counts": [2, 1], "edges": [-1, 0, 1]}},
        "class_mean_activation": [[0.1, 0.9], [0.8, 0.0]],
        "activation_map": {"matrix": [[0, 1], [1, 0]], "row_class": [0, 1], "unit_order": [1, 0], "col_class": [0, 1]},
        "active_units": 17,
    }


def _snapshot():
    return Snapshot(
        run_name="paper-ff-fashionmnist",
        model="ff",
        dataset="fashionmnist",
        device="cuda",
        num_layers=2,
        kind="final",
        state="finished",
        stage=1,
        stage_epoch=5,
        epochs_per_stage=5,
        epoch=10,
        total_epochs=10,
        wall_time=123.4,
        loss=[None, 0.25],
        g_pos=[None, 6.0],
        g_neg=[None, 1.0],
        test_accuracy=0.8765,
        layer_accuracy=[0.85, 0.8765],
        eval_samples=10000,
        layers=[
            _layer(0.7312, [[0, 1], [1, 2]], [[2, 1], [1, 2]], [[1.0, 1 / 3], [1 / 3, 1.0]], 12.5),
            _layer(0.4107, None, None, None, None),
        ],
        heldout={
            "class": 3,
            "accuracy_seen": 0.88,
            "accuracy_heldout": 0.42,
            "layers": [
                {"sparsity": 0.7, "ensemble": [4, 5, 6], "shared_with_seen": 2},
                {"sparsity": 0.4, "ensemble": None, "shared_with_seen": None},
            ],
        },
    )


def test_write_report_files_and_numbers(tmp_path):
    snap = _snapshot()
    history = RunHistory.from_snapshots([snap])
    out = report_dir(tmp_path, datetime(2024, 5, 1, 12, 0, 0))
    assert out == tmp_path / "reports" / "20240501-120000"
    paths = write_report(snap, history, out)
    assert [p.name for p in paths] == ["snapshot.json", "history.json", "report.md"]
    assert all(p.exists() for p in paths)
    data = json.loads(paths[0].read_text())
    assert data["test_accuracy"] == 0.8765 and data["layers"][0]["sparsity"] == 0.7312
    hist = json.loads(paths[1].read_text())
    assert hist["eval_epochs"] == [10] and hist["test_accuracy"] == [0.8765]
    md = paths[2].read_text()
    assert "# Snapshot report — paper-ff-fashionmnist" in md
    assert "87.65%" in md and "85.00%" in md  # test and layer-1 accuracy
    assert "0.731" in md and "0.411" in md  # sparsity per layer
    assert "12.50" in md  # ensemble size %
    assert "0.432 ± 0.050" in md and "-0.123 ± 0.200" in md  # ρ⁺ and bias
    assert "| 1 | 0.731 | 2 | 12.50 | 17 |" in md
    assert "held-out class 3 Dress" in md and "42.00%" in md
    assert "undefined (layer sparsity < 0.5" in md  # layer 2's matrices
    assert "| **0 T-shirt** | 2 | 1 |" in md  # the shared-units matrix
    assert "| **1 Trouser** | 0.33 | 1.00 |" in md  # Jaccard
    # a second report in the same second gets its own folder
    paths[0].parent.mkdir(exist_ok=True)
    assert report_dir(tmp_path, datetime(2024, 5, 1, 12, 0, 0)).name == "20240501-120000-2"


def test_unevaluated_snapshot_report_says_so():
    snap = Snapshot(
        run_name="r", model="bp", dataset="mnist", device="cpu", num_layers=1, epoch=3, total_epochs=9, loss=[0.4]
    )
    md = render_markdown(snap, None)
    assert "not evaluated" in md


def test_progress_names_the_layer_only_when_layers_train_one_at_a_time():
    sequential = _snapshot()  # FF, 2 layers of 5 epochs each
    assert sequential.stages == 2
    assert "epoch 10/10 (layer 2, epoch 5/5 of it)" in render_markdown(sequential)
    simultaneous = _snapshot()
    simultaneous.stage, simultaneous.stage_epoch, simultaneous.epoch, simultaneous.total_epochs = 0, 5, 5, 5
    assert simultaneous.stages == 1
    md = render_markdown(simultaneous)
    assert "epoch 5/5," in md and "of it)" not in md


def test_class_names():
    assert class_names("fashionmnist")[9] == "Boot"
    assert class_names("mnist") == [str(i) for i in range(10)]
