"""The study's tables shipped as data, and a suite's summary laid out beside them (hand-computed cells)."""

import csv
import json
import math
from html.parser import HTMLParser

import pytest
import yaml

from ffterm_core.reports.study import compare, study_tables, study_value
from ffterm_core.reports.suite_summary import write_summary
from ffterm_core.reports.suite_tables import build_summary, table_header, to_markdown
from ffterm_core.store import rundir
from ffterm_core.suites.plan import PLAN
from ffterm_core.suites.similarity import CACHE


def test_study_data_is_shipped_and_indexed():
    tables = study_tables()
    assert tables["table1_test_accuracy"]["fashionmnist"]["ff"] == [0.849, 0.002]
    assert study_value(("table2_sparsity", "ff", "mnist", 2)) == [0.618, 0.074]
    assert study_value(("table3_ensemble_size_pct", "bpff", "svhn", 2)) is None  # "-" in the study
    assert study_value(("table7_probe_accuracy_on_missing_class", "bp", 6)) == 0.632
    assert study_value(("table8_probe_accuracy_all_classes", "bpff", "baseline")) == 0.877
    assert study_value(("table1_test_accuracy", "synthetic", "ff")) is None


def test_cell_deviation_and_marks():
    # ours 0.95 ± 0.01 vs the study's 0.94 ± 0.008: +1.25σ; an accuracy 0.01 off is not "more than 0.01"
    cell = compare({"mean": 0.95, "std": 0.01, "n": 3}, [0.94, 0.008], "accuracy")
    assert cell.deviation == pytest.approx(1.25) and cell.difference == pytest.approx(0.01)
    assert not compare({"mean": 0.949, "std": 0.0, "n": 1}, [0.94, 0.008], "accuracy").off
    assert compare({"mean": 0.9511, "std": 0.0, "n": 1}, [0.94, 0.008], "accuracy").off
    # other figures: off beyond 3 of the study's standard deviations
    assert not compare({"mean": 0.9249, "std": 0.0, "n": 2}, [0.922, 0.001], "value").off  # +2.9σ
    assert compare({"mean": 0.926, "std": 0.0, "n": 2}, [0.922, 0.001], "value").off  # +4σ
    single = compare({"mean": 0.9, "std": 0.0, "n": 1}, 0.955)  # the study gives no std
    assert single.deviation is None and single.difference == pytest.approx(-0.055) and not single.off
    assert compare({"mean": None, "std": None, "n": 0}, [0.1, 0.01]).difference is None


def _layer(sparsity, ens=None, jac=None):
    return {
        "sparsity": sparsity,
        "ensemble_size_pct": ens,
        "jaccard": jac,
        "rho_plus": {"mean": 0.6, "std": 0.05},
        "bias": {"mean": -1.0, "std": 0.5},
    }


def _run(suite_dir, setting, seed, tables, config, final=None, probes=None, failed=None, plan=None):
    d = suite_dir / setting / f"seed-{seed}"
    d.mkdir(parents=True)
    rundir.atomic_write_text(d / rundir.CONFIG, yaml.safe_dump({**config, "seed": seed}))
    if final is not None:
        written = {"config": {**config, "seed": seed}, "layer_accuracy": [], "wall_seconds": 1.0}
        rundir.write_json(d / rundir.FINAL, {**written, **final})
    if probes is not None:
        rundir.write_json(d / "probes.json", {"layers": probes})
    if failed is not None:
        rundir.write_json(d / "failed.json", {"error": failed})
    plan.append(
        {
            "dir": f"{setting}/seed-{seed}",
            "setting": setting,
            "seed": seed,
            "tables": tables,
            "needs_probes": bool(probes),
        }
    )


@pytest.fixture()
def suite_dir(tmp_path):
    """A suite folder with fixed results: FF on MNIST (3 seeds, one failed), held-out probes, similarity."""
    plan = []
    ff = {"model": "ff", "dataset": "mnist", "act_l1": 0.0, "heldout_class": None}
    for seed, acc, sp in ((0, 0.93, 0.90), (1, 0.94, 0.91), (2, 0.95, 0.92)):
        final = {"test_accuracy": acc, "layers": [_layer(sp, 3.5, [[1.0, 0.5], [0.5, 1.0]]), _layer(0.8)]}
        _run(tmp_path, "ff-mnist", seed, ["table1", "table2", "fig12", "table10"], ff, final, plan=plan)
    _run(tmp_path, "ff-mnist", 3, ["table1"], ff, failed="DatasetError: MNIST not found", plan=plan)
    bp = {"model": "bp", "dataset": "mnist", "act_l1": 0.0, "heldout_class": None}
    for seed in (0, 1):
        _run(tmp_path, "bp-mnist", seed, ["table10"], bp, {"test_accuracy": 0.98, "layers": [_layer(0.3)]}, plan=plan)
    for k, acc_k, acc in ((0, 0.80, 0.85), (1, 0.90, 0.86)):
        cfg = {"model": "ff", "dataset": "fashionmnist", "act_l1": 0.0, "heldout_class": k}
        probes = [
            {"layer": 1, "accuracy": 0.5, "heldout_accuracy": 0.1},
            {"layer": 2, "accuracy": acc, "heldout_accuracy": acc_k},
        ]
        final = {"test_accuracy": 0.8, "layers": [_layer(0.9)]}
        _run(tmp_path, f"ff-fmnist-h{k}", 0, ["table7", "table8"], cfg, final, probes, plan=plan)
    base = {"model": "ff", "dataset": "fashionmnist", "act_l1": 0.0, "heldout_class": None}
    probes = [{"layer": 2, "accuracy": 0.84, "heldout_accuracy": None}]
    _run(
        tmp_path, "ff-fmnist", 0, ["table8"], base, {"test_accuracy": 0.85, "layers": [_layer(0.9)]}, probes, plan=plan
    )
    rundir.write_json(tmp_path / PLAN, {"id": "x", "name": "fixed", "description": "", "probe_layer": 2, "runs": plan})
    # cached similarity of the seed-matched pairs FF/BP (seeds 0 and 1): SVCCA 0.5 and 0.7 at layer 1
    for seed, value in ((0, 0.5), (1, 0.7)):
        pairs = [{"layer_a": 1, "layer_b": 1, "svcca": value, "cka": 0.2, "dcor": 0.6}]
        name = f"ff-mnist-seed{seed}__bp-mnist-seed{seed}.json"
        rundir.write_json(tmp_path / CACHE / name, {"pairs": pairs})
    return tmp_path


def _cell(summary, key, row, col):
    table = next(t for t in summary["tables"] if t.key == key)
    r = next(r for r in table.rows if r.label == row)
    return r.cells[table.columns.index(col)]


def test_summary_of_fixed_runs_hand_computed(suite_dir):
    summary = build_summary(suite_dir, compute_similarity=False, log=lambda _m: None)
    assert summary["states"] == {"done": 8, "failed": 1}
    assert summary["failed"] == [{"run": "ff-mnist/seed-3", "error": "DatasetError: MNIST not found"}]

    acc = _cell(summary, "table1", "MNIST", "FF")  # 0.93, 0.94, 0.95 vs the study's 0.94 ± 0.008
    assert (acc.mean, acc.std, acc.n) == (pytest.approx(0.94), pytest.approx(0.01), 3)
    assert acc.deviation == pytest.approx(0.0, abs=1e-9) and not acc.off

    sp = _cell(summary, "table2", "FF · MNIST", "layer 1")  # 0.90, 0.91, 0.92 vs 0.922 ± 0.001
    assert (sp.mean, sp.std) == (pytest.approx(0.91), pytest.approx(0.01))
    assert sp.deviation == pytest.approx(-12.0) and sp.off
    sp2 = _cell(summary, "table2", "FF · MNIST", "layer 2")  # 0.8 ×3 vs 0.813 ± 0.019
    assert sp2.deviation == pytest.approx(-0.013 / 0.019) and not sp2.off

    # Table 7: layer 2's probe on the missing class; Table 8: all classes, avg over the held-out runs, baseline
    k0 = _cell(summary, "table7", "FF", "class 0")  # 0.80 vs 0.803
    assert k0.mean == pytest.approx(0.80) and k0.study_mean == 0.803 and not k0.off
    assert _cell(summary, "table7", "FF", "class 2") is None  # no run held class 2 out: the column is left out
    t7 = next(t for t in summary["tables"] if t.key == "table7")
    assert table_header(t7)[1:] == [f"class {k} {part}" for k in (0, 1) for part in ("ours", "study", "Δ")]
    assert _cell(summary, "table8", "FF", "avg").mean == pytest.approx(0.855)
    base = _cell(summary, "table8", "FF", "baseline")
    assert base.mean == pytest.approx(0.84) and base.study_mean == 0.849 and not base.off

    svcca = _cell(summary, "table10", "MNIST · SVCCA · FF vs BP", "layer 1")  # pairs 0.5, 0.7 vs 0.55
    assert (svcca.mean, svcca.std, svcca.n) == (pytest.approx(0.6), pytest.approx(math.sqrt(0.02)), 2)
    assert svcca.difference == pytest.approx(0.05) and svcca.deviation is None

    (jac,) = [m for m in summary["matrices"] if m.key == "fig12"]
    assert jac.values == [[1.0, 0.5], [0.5, 1.0]] and jac.n == 3

    md = to_markdown(summary)
    assert "| MNIST | 0.940 ± 0.010 (n=3) | 0.940 ± 0.008 | Δ +0.000, +0.0σ |" in md
    assert "0.910 ± 0.010 (n=3) | 0.922 ± 0.001 | -12.0σ ⚠" in md
    assert "`ff-mnist/seed-3`: DatasetError: MNIST not found" in md


def test_summary_files(suite_dir):
    write_summary(suite_dir, compute_similarity=False, log=lambda _m: None)
    rows = list(csv.DictReader((suite_dir / "summary.csv").open()))
    row = next(r for r in rows if r["table"] == "table2" and r["column"] == "layer 1")
    assert float(row["mean"]) == pytest.approx(0.91) and float(row["deviation"]) == pytest.approx(-12.0)
    assert row["off"] == "True" and row["n"] == "3"
    data = json.loads((suite_dir / "summary.json").read_text())
    t1 = next(t for t in data["tables"] if t["key"] == "table1")
    assert t1["rows"][0]["cells"][0]["study_mean"] == 0.94
    page = (suite_dir / "summary.html").read_text()
    assert "http://" not in page and "https://" not in page
    images = []

    class Images(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "img":
                images.append(dict(attrs)["src"])

    Images().feed(page)
    assert images and all(src.startswith("data:image/") for src in images)
    for name in ("table2", "fig12-0"):  # Fig. 2's bars, Fig. 12's Jaccard matrices
        assert (suite_dir / "figures" / f"{name}.svg").exists() and (suite_dir / "figures" / f"{name}.png").exists()
