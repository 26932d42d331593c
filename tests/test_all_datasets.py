"""Every dataset's whole path (files → normalisation → label embedding → training → analysis) on tiny
files written in the real formats; and comparing runs across datasets is refused."""

import json

import pytest
from test_datasets import make_idx_set, write_cifar, write_svhn

from ffterm.cli import main
from ffterm_core.store import rundir

TINY = [
    "--set",
    "epochs=1",
    "--set",
    "hidden=16",
    "--set",
    "batch_size=32",
    "--set",
    "analysis_samples=20",
    "--set",
    "final_pvalues=false",
    "--device",
    "cpu",
]


def write(dataset, root):
    if dataset in ("mnist", "fashionmnist"):
        make_idx_set(root / dataset, seed=1, n_train=200, n_test=40)
    elif dataset == "svhn":
        write_svhn(root, "train", n=200, seed=2)
        write_svhn(root, "test", n=40, seed=3)
    else:
        write_cifar(root / "cifar-10-batches-py", seed=4, n_per_batch=40)


@pytest.mark.parametrize("dataset, shape", [("mnist", (1, 28, 28)), ("svhn", (3, 32, 32)), ("cifar10", (3, 32, 32))])
@pytest.mark.parametrize("model", ["ff", "bp"])
def test_each_dataset_trains_and_is_analysed(tmp_path, capsys, dataset, shape, model):
    write(dataset, tmp_path / "data")
    out = tmp_path / "run"
    code = main(
        [
            "run",
            f"{model}-{dataset}",
            "--headless",
            "--out",
            str(out),
            "--data-dir",
            str(tmp_path / "data"),
            *TINY,
            "--set",
            "lr=0.001",
        ]
    )
    assert code == 0, capsys.readouterr().out
    final = json.loads((out / rundir.FINAL).read_text())
    assert final["epochs_done"] == (3 if model == "ff" else 1)
    assert len(final["layers"]) == 3 and 0.0 <= final["test_accuracy"] <= 1.0
    if model == "ff":
        assert final["v_train"] > 0  # the label value: the max of the normalised split
    snaps = rundir.read_snapshots(out)
    profiles = snaps[-1].layers[0]["class_mean_activation"]  # None for a class with no correct sample
    assert snaps[-1].kind == "final" and len(profiles) == 10
    assert all(row is None or len(row) == 16 for row in profiles)


def test_compare_refuses_runs_on_different_datasets(tmp_path, capsys):
    for dataset in ("mnist", "cifar10"):
        write(dataset, tmp_path / "data")
        assert (
            main(
                [
                    "run",
                    f"ff-{dataset}",
                    "--headless",
                    "--out",
                    str(tmp_path / dataset),
                    "--data-dir",
                    str(tmp_path / "data"),
                    *TINY,
                ]
            )
            == 0
        )
    capsys.readouterr()
    code = main(["compare", str(tmp_path / "mnist"), str(tmp_path / "cifar10")])
    err = capsys.readouterr().err
    assert code == 2 and "different datasets" in err and err.count("\n") == 1
