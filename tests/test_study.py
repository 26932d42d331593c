"""The study's tables shipped as data, and a suite's summary laid out beside them (hand-computed cells)."""

import csv
import json
import math
from html.parser import HTMLParser

import pytest
import yaml

from ffterm_core.reports.study import compare, study_tables, study_value
from ffterm_core.reports.suite_summary import write_summary
from ffterm_core.reports.suite_tables import build_summary, table_header, table_rows, to_markdown
from ffterm_core.reports.suite_tables import caption as table_caption
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
    r = next(r for r in table.rows if r.full_label == row)
    return r.cells[table.columns.index(col)]


def test_summary_of_fixed_runs_hand_computed(suite_dir):
    summary = build_summary(suite_dir, compute_similarity=False, log=lambda _m: None)
    assert summary["states"] == {"done": 8, "failed": 1}
    assert summary["failed"] == [{"run": "ff-mnist/seed-3", "error": "DatasetError: MNIST not found"}]

    acc = _cell(summary, "table1", "MNIST", "FF")  # 0.93, 0.94, 0.95 vs the study's 0.94 ± 0.008
    assert (acc.mean, acc.std, acc.n) == (pytest.approx(0.94), pytest.approx(0.01), 3)
    assert acc.deviation == pytest.approx(0.0, abs=1e-9) and not acc.off

    sp = _cell(summary, "table2", "FF · layer 1", "MNIST")  # 0.90, 0.91, 0.92 vs 0.922 ± 0.001
    assert (sp.mean, sp.std) == (pytest.approx(0.91), pytest.approx(0.01))
    assert sp.deviation == pytest.approx(-12.0) and sp.off
    sp2 = _cell(summary, "table2", "FF · layer 2", "MNIST")  # 0.8 ×3 vs 0.813 ± 0.019
    assert sp2.deviation == pytest.approx(-0.013 / 0.019) and not sp2.off

    # Table 7: layer 2's probe on the missing class; Table 8: all classes, avg over the held-out runs, baseline
    k0 = _cell(summary, "table7", "FF", "class 0")  # 0.80 vs 0.803
    assert k0.mean == pytest.approx(0.80) and k0.study_mean == 0.803 and not k0.off
    assert _cell(summary, "table7", "FF", "class 2") is None  # no run held class 2 out: the column is left out
    t7 = next(t for t in summary["tables"] if t.key == "table7")
    assert table_header(t7)[1:] == [f"class {k} {part}" for k in (0, 1) for part in ("ours", "study", "Δ")]
    assert _cell(summary, "table8", "FF", "avg").mean == pytest.approx(0.855)
    # the study's Baseline is the all-class model's own accuracy (its Table 1), not a probe on that model
    base = _cell(summary, "table8", "FF", "baseline")
    assert base.mean == pytest.approx(0.85) and base.study_mean == 0.849 and not base.off
    probed = _cell(summary, "table8", "FF", "probe, all classes")
    assert probed.mean == pytest.approx(0.84) and probed.study_mean is None
    t8 = next(t for t in summary["tables"] if t.key == "table8")
    assert "baseline: the test accuracy of the model itself trained on all classes" in t8.note

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
    row = next(r for r in rows if r["table"] == "table2" and r["column"] == "MNIST" and r["row"] == "FF · layer 1")
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


def _flagged_suite(tmp_path, did_not_learn_field=True):
    """Quick-sized FF on FashionMNIST over two seeds: ℓ1 goodness (one seed at chance) and ℓ2 (Tables 4-5)."""
    plan = []
    l1 = {"model": "ff", "dataset": "fashionmnist", "goodness": "l1", "normalize": "l1", "epochs": 8, "lr": 0.01}
    for seed, acc in ((0, 0.0721), (1, 0.80)):
        final = {"test_accuracy": acc, "layers": [_layer(0.3 if acc < 0.1 else 0.83, None if acc < 0.1 else 7.0)]}
        if did_not_learn_field:
            final["did_not_learn"] = acc < 0.2
        _run(tmp_path, "quick-l1", seed, ["table11", "table12", "table13"], l1, final, plan=plan)
    l2 = {"model": "ff", "dataset": "fashionmnist", "epochs": 8, "lr": 0.01}
    bp = {"model": "bp", "dataset": "fashionmnist", "epochs": 8, "lr": 0.01}
    for seed, rho, bias in ((0, 0.40, -0.5), (1, 0.50, -0.9)):
        layer = {**_layer(0.85, 5.0), "rho_plus": {"mean": rho, "std": 0.09}, "bias": {"mean": bias, "std": 0.6}}
        _run(
            tmp_path, "quick-ff", seed, ["table4", "table5"], l2, {"test_accuracy": 0.78, "layers": [layer]}, plan=plan
        )
        layer = {**_layer(0.35), "rho_plus": {"mean": 0.60, "std": 0.02}, "bias": {"mean": 0.0, "std": 0.02}}
        _run(
            tmp_path, "quick-bp", seed, ["table4", "table5"], bp, {"test_accuracy": 0.85, "layers": [layer]}, plan=plan
        )
    rundir.write_json(tmp_path / PLAN, {"id": "q", "name": "quick", "description": "", "runs": plan})
    return tmp_path


@pytest.mark.parametrize("stored", [True, False], ids=["flag in final.json", "older final.json"])
def test_a_seed_that_did_not_learn_is_marked_in_every_cell_that_pools_it(tmp_path, stored):
    summary = build_summary(_flagged_suite(tmp_path, stored), compute_similarity=False, log=lambda _m: None)
    assert summary["did_not_learn"] == [{"run": "quick-l1/seed-0", "test_accuracy": 0.0721}]
    acc = _cell(summary, "table11", "FashionMNIST", "FF")  # 0.0721 and 0.80
    assert (acc.mean, acc.n, acc.not_learned) == (pytest.approx(0.43605), 2, 1)
    assert _cell(summary, "table12", "FF · layer 1", "FashionMNIST").not_learned == 1  # sparsity 0.3, 0.83
    size = _cell(summary, "table13", "FF · layer 1", "FashionMNIST")  # undefined at seed 0: only seed 1 pooled
    assert (size.mean, size.n, size.not_learned) == (pytest.approx(7.0), 1, 0)
    md = to_markdown(summary)
    assert "| FashionMNIST | 0.436 ± 0.515 (n=2; 1 did not learn†) | 0.859 ± 0.002 | Δ -0.423, -211.5σ ⚠ |" in md
    assert "**⚠ 1 run did not learn (final test accuracy below 2× chance" in md
    assert "quick-l1/seed-0 (0.072)" in md
    assert md.count("† did not learn: the run's final test accuracy is below 2× chance") == 2  # Tables 11, 12
    table4 = next(t for t in summary["tables"] if t.key == "table4")
    assert not table4.not_learned and "† did not learn" not in table_caption(table4)


def test_tables_4_and_5_compare_each_seed_with_the_studys_unit_spread(tmp_path):
    summary = build_summary(_flagged_suite(tmp_path), compute_similarity=False, log=lambda _m: None)
    # FF's ρ⁺ 0.40 and 0.50 both within the study's 0.457 ± 0.099 (its units, one run): no σ, no ⚠
    ff = _cell(summary, "table4", "FashionMNIST · layer 1", "FF")
    assert ff.values == (0.40, 0.50) and ff.within == 2 and ff.deviation is None and not ff.off
    assert ff.unit_std == pytest.approx(0.09)
    # BP's ρ⁺ 0.60 in both seeds, the study's 0.491 ± 0.021: no seed within, a real deviation
    bp = _cell(summary, "table4", "FashionMNIST · layer 1", "BP")
    assert bp.within == 0 and bp.off
    bias = _cell(summary, "table5", "FashionMNIST · layer 1", "FF")  # -0.5, -0.9 vs -0.694 ± 0.706
    assert bias.within == 2 and not bias.off
    table4 = next(t for t in summary["tables"] if t.key == "table4")
    assert table_header(table4)[:3] == ["Dataset", "Layer", "FF ours"]
    (row,) = table_rows(table4)
    assert row[:5] == [
        "FashionMNIST",
        "1",
        "0.400 to 0.500, median 0.450; units ± 0.090 (n=2)",
        "0.457 ± 0.099",
        "2/2 within",
    ]
    assert row[5:8] == ["0.600; units ± 0.020 (n=2)", "0.491 ± 0.021", "0/2 within ⚠"]
    assert "the mean ± std over the units of a single run" in table4.note


def test_per_layer_tables_are_laid_out_as_the_studys(suite_dir):
    """Tables 2-3, 9, 12-13: a block of layer rows per model, a column per dataset (the study's layout)."""
    summary = build_summary(suite_dir, compute_similarity=False, log=lambda _m: None)
    table2 = next(t for t in summary["tables"] if t.key == "table2")
    assert table_header(table2)[:5] == ["Model", "Layer", "MNIST ours", "MNIST study", "MNIST Δ"]
    assert [r[:2] for r in table_rows(table2)] == [["FF", "1"], ["", "2"]]  # the model named once per block
    md = to_markdown(summary)
    assert "| FF | 1 | 0.910 ± 0.010 (n=3) | 0.922 ± 0.001 | -12.0σ ⚠ |" in md


def test_summaries_say_where_the_runs_are_not_the_studys_settings(tmp_path, suite_dir):
    summary = build_summary(suite_dir, compute_similarity=False, log=lambda _m: None)
    # the study's presets (ff-mnist, bp-mnist, the held-out runs of ff-fashionmnist) with fewer seeds than its 10
    assert summary["not_the_study"] == [
        "Table 1: at most 3 seeds per cell (the study's 10)",
        "Table 2: at most 3 seeds per cell (the study's 10)",
        "Table 10: at most 2 seeds per cell (the study's 5)",
    ]
    quick = build_summary(_flagged_suite(tmp_path / "q"), compute_similarity=False, log=lambda _m: None)
    lines = quick["not_the_study"]
    assert "quick-l1: epochs 8 (the study's 300), lr 0.01 (the study's 0.001) — against ff-fashionmnist-l1" in lines
    assert "quick-ff: epochs 8 (the study's 100) — against ff-fashionmnist" in lines
    assert "Table 11: at most 2 seeds per cell (the study's 10)" in lines
    assert "Table 13: at most 1 seed per cell (the study's 10)" in lines  # seed 0's ensembles are undefined
    md = to_markdown(quick)
    assert "**Not the study's settings (these numbers are not a reproduction of its tables):**" in md
    assert "\n- quick-ff: epochs 8 (the study's 100) — against ff-fashionmnist\n" in md
