"""Suites: mean ± std over seeds, as the study reports its tables."""

import json
import math

import pytest

from ffterm.cli import main
from ffterm.core import rundir
from ffterm.core.suite import SuiteError, mean_std, summarize, to_markdown


def fake_final(path, seed, acc, sparsity, model="ff", dataset="mnist", epochs=10):
    layer = {
        "sparsity": sparsity,
        "sparsity_ignored_rows": 0,
        "ensembles": None,
        "ensemble_size_pct": None,
        "shared_units": None,
        "jaccard": None,
        "n_units_p_gt_0_05": None,
        "rho_plus": {"mean": 0.4, "std": 0.1, "hist": None},
        "bias": {"mean": -0.1, "std": 0.1, "hist": None},
    }
    path.mkdir(parents=True)
    rundir.write_json(
        path / rundir.FINAL,
        {
            "config": {"model": model, "dataset": dataset, "seed": seed, "epochs": epochs},
            "test_accuracy": acc,
            "layer_accuracy": [acc - 0.01],
            "epochs_done": 1,
            "wall_seconds": 10.0,
            "device": "cpu",
            "layers": [layer],
        },
    )


def test_mean_std_hand_values():
    s = mean_std([0.90, 0.92, 0.94])
    assert s["mean"] == pytest.approx(0.92) and s["std"] == pytest.approx(0.02) and s["n"] == 3
    assert mean_std([None, math.nan]) == {"mean": None, "std": None, "n": 0}
    assert mean_std([0.5])["std"] == 0.0


def test_summarize_finished_runs(tmp_path):
    for seed, acc, sp in ((0, 0.90, 0.6), (1, 0.94, 0.8)):
        fake_final(tmp_path / f"seed-{seed}", seed, acc, sp)
    (tmp_path / "seed-2").mkdir()  # unfinished: ignored
    summary = summarize([tmp_path / f"seed-{i}" for i in range(3)])
    assert summary["runs"] == 2 and summary["seeds"] == [0, 1]
    assert summary["skipped"] == [str(tmp_path / "seed-2")]
    assert summary["test_accuracy"]["mean"] == pytest.approx(0.92)
    assert summary["test_accuracy"]["std"] == pytest.approx(math.sqrt(2 * 0.02**2))
    assert summary["layers"][0]["sparsity"]["mean"] == pytest.approx(0.7)
    assert summary["layers"][0]["ensemble size %"]["n"] == 0  # undefined in every run
    md = to_markdown(summary)
    assert "0.9200 ± 0.0283" in md and "| 1 |" in md and "left out" in md


def test_summarize_refuses_mixed_settings_and_nothing_finished(tmp_path):
    fake_final(tmp_path / "a", 0, 0.9, 0.6, dataset="mnist")
    fake_final(tmp_path / "b", 0, 0.8, 0.6, dataset="cifar10")
    with pytest.raises(SuiteError, match="differ in dataset"):
        summarize([tmp_path / "a", tmp_path / "b"])
    fake_final(tmp_path / "c", 1, 0.8, 0.6, epochs=600)
    with pytest.raises(SuiteError, match="differ in epochs"):
        summarize([tmp_path / "a", tmp_path / "c"])
    fake_final(tmp_path / "d", 0, 0.8, 0.6)
    with pytest.raises(SuiteError, match="seeds repeat"):
        summarize([tmp_path / "a", tmp_path / "d"])
    with pytest.raises(SuiteError, match="no finished runs"):
        summarize([tmp_path / "none"])


def test_suite_command_runs_seeds_and_continues(tmp_path, capsys):
    args = [
        "suite",
        "quick-ff-synthetic",
        "--seeds",
        "2",
        "--out",
        str(tmp_path / "s"),
        "--device",
        "cpu",
        "--set",
        "epochs=1",
        "--set",
        "final_pvalues=false",
    ]
    assert main(args) == 0
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["seeds"] == [0, 1]
    finals = [json.loads((tmp_path / "s" / f"seed-{i}" / rundir.FINAL).read_text()) for i in range(2)]
    assert [f["config"]["seed"] for f in finals] == [0, 1]
    capsys.readouterr()
    assert main(args) == 0
    assert capsys.readouterr().out.count("finished earlier") == 2
    assert main(["summary", str(tmp_path / "s"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"] == 2
    # a suite directory and a run directory together: the suite is expanded
    assert (
        main(
            [
                "run",
                "quick-ff-synthetic",
                "--headless",
                "--out",
                str(tmp_path / "extra"),
                "--seed",
                "5",
                "--device",
                "cpu",
                "--set",
                "epochs=1",
                "--set",
                "final_pvalues=false",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["summary", str(tmp_path / "s"), str(tmp_path / "extra"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["seeds"] == [0, 1, 5]
    assert main(["summary", str(tmp_path / "nowhere")]) == 2
    assert "no such directory" in capsys.readouterr().err
