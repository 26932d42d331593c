"""The command line: headless runs, resume, presets, analysis commands, and one-line errors."""

import json

import pytest

from ffterm.cli import main
from ffterm_core.store import rundir

FAST = [
    "--set",
    "dataset=synthetic",
    "--set",
    "epochs=2",
    "--set",
    "batch_size=200",
    "--set",
    "final_pvalues=false",
    "--device",
    "cpu",
]


def run_cli(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_presets_lists_names_and_descriptions(capsys):
    code, out, _ = run_cli(capsys, "presets")
    assert code == 0 and "quick-ff-fashionmnist" in out and "ff-mnist-l1" in out


def test_headless_run_writes_the_run_directory(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "run", "quick-ff-synthetic", "--headless", "--out", str(tmp_path / "r"), *FAST)
    assert code == 0 and "test accuracy" in out
    final = json.loads((tmp_path / "r" / rundir.FINAL).read_text())
    assert final["epochs_done"] == 6 and final["config"]["dataset"] == "synthetic"
    # a finished run is not overwritten without --force
    code, _, err = run_cli(capsys, "run", "quick-ff-synthetic", "--headless", "--out", str(tmp_path / "r"), *FAST)
    assert code == 2 and "finished run" in err and "--force" in err and err.count("\n") == 1
    assert json.loads((tmp_path / "r" / rundir.FINAL).read_text()) == final
    code, _, err = run_cli(capsys, "resume", str(tmp_path / "r"))
    assert code == 2 and "already finished" in err


@pytest.mark.parametrize(
    "args, words",
    [
        (["run", "nope", "--headless"], ["unknown preset 'nope'", "quick-ff-fashionmnist"]),
        (["run", "quick-ff-synthetic", "--headless", "--set", "epoch=3"], ["unknown key 'epoch'", "epochs"]),
        (["run", "quick-ff-synthetic", "--headless", "--set", "heldout_class=12"], ["heldout_class", "<= 9"]),
        (["run", "quick-ff-synthetic", "--headless", "--set", "dataset=imagenet"], ["dataset", "cifar10"]),
        (["run", "quick-ff-synthetic", "--headless", "--set", "epochs"], ["key=value"]),
        (["resume", "/nonexistent/run"], ["no config.yaml"]),
        (["analyze", "/nonexistent/run"], ["not an ffterm run directory"]),
    ],
)
def test_bad_input_is_one_clear_line(capsys, args, words):
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert err.startswith("ffterm: error:") and err.count("\n") == 1
    for w in words:
        assert w in err


def test_missing_dataset_fails_with_the_paths_searched(capsys, tmp_path):
    code, _, err = run_cli(
        capsys,
        "run",
        "ff-mnist",
        "--headless",
        "--out",
        str(tmp_path / "m"),
        "--data-dir",
        str(tmp_path / "nodata"),
        "--device",
        "cpu",
    )
    assert code == 1 and err.count("\n") == 1  # one line on stderr
    assert "MNIST" in err and str(tmp_path / "nodata") in err and "fix:" in err
    assert not (tmp_path / "m").exists()  # nothing was computed: no run directory left behind


def test_analyze_probe_compare(capsys, tmp_path):
    for name, model in (("a", "ff"), ("b", "bp")):
        code, _, _ = run_cli(
            capsys,
            "run",
            "quick-ff-synthetic",
            "--headless",
            "--out",
            str(tmp_path / name),
            *FAST,
            "--set",
            f"model={model}",
            "--set",
            "lr=0.003",
        )
        assert code == 0
    code, out, _ = run_cli(capsys, "analyze", str(tmp_path / "a"), "--samples", "300")
    assert code == 0 and "sparsity" in out
    analysis = json.loads((tmp_path / "a" / "analysis.json").read_text())
    assert analysis["eval_samples"] == 300 and len(analysis["layers"]) == 3
    assert analysis["layers"][0]["n_units_p_gt_0_05"] is not None or analysis["layers"][0]["ensembles"] is None
    code, out, _ = run_cli(capsys, "probe", str(tmp_path / "a"), "--layer", "1")
    assert code == 0
    probes = json.loads((tmp_path / "a" / "probes.json").read_text())
    assert probes["layers"][0]["layer"] == 1 and probes["layers"][0]["accuracy"] > 0.5
    code, out, _ = run_cli(capsys, "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--samples", "200", "--json")
    assert code == 0
    result = json.loads(out)
    assert len(result["pairs"]) == 9
    assert all(0.0 <= p["cka"] <= 1.0 + 1e-6 for p in result["pairs"])


def test_app_entry_points_reach_the_app(capsys, tmp_path, monkeypatch):
    import ffterm.app

    calls = []
    monkeypatch.setattr(ffterm.app, "run_app", lambda **kw: calls.append(kw) or 0)
    run_cli(capsys, "run", "quick-ff-synthetic", "--headless", "--out", str(tmp_path / "r"), *FAST)
    assert run_cli(capsys, "watch", str(tmp_path / "r"))[0] == 0
    assert calls[-1]["watch"] == [tmp_path / "r"]
    assert run_cli(capsys, "quick-ff-synthetic", "--set", "epochs=3")[0] == 0
    assert calls[-1]["preset"] == "quick-ff-synthetic" and calls[-1]["overrides"] == {"epochs": 3}
    assert run_cli(capsys)[0] == 0
    assert calls[-1]["preset"] is None
    code, _, err = run_cli(capsys, "watch", str(tmp_path / "nothing"))
    assert code == 2 and "not an ffterm run directory" in err
    code, _, err = run_cli(capsys, "nope-preset")
    assert code == 2 and "unknown preset" in err


def test_app_refuses_a_finished_run_directory_before_opening(capsys, tmp_path, monkeypatch):
    import ffterm.app

    monkeypatch.setattr(ffterm.app, "run_app", lambda **kw: pytest.fail("the app must not open"))
    run_cli(capsys, "run", "quick-ff-synthetic", "--headless", "--out", str(tmp_path / "r"), *FAST)
    code, _, err = run_cli(capsys, "run", "quick-ff-synthetic", "--out", str(tmp_path / "r"))
    assert code == 2 and "finished run" in err
