"""Run and suite reports: report.md's numbers and settings, every figure as valid PNG + SVG, a
self-contained report.html (checked in a real browser when Chromium is installed), curves.csv
against the snapshots file, one-line errors on bad input, and the ensemble_factor setting."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ffterm.cli import main
from ffterm_core.analysis import analyze_layer, find_ensembles
from ffterm_core.config import ConfigError, RunConfig, from_dict
from ffterm_core.reports.common import report_dir
from ffterm_core.reports.run_report import class_names, render_markdown, write_report
from ffterm_core.store import rundir
from ffterm_core.store.history import RunHistory
from ffterm_core.store.snapshot import Snapshot

DATA = Path(__file__).parent / "data"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


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
            {
                **_layer(0.7312, [[0, 1], [1, 2]], [[2, 1], [1, 2]], [[1.0, 1 / 3], [1 / 3, 1.0]], 12.5),
                "lifetime_sparsity": {"mean": 0.6543, "std": 0.125, "hist": {"counts": [1, 1], "edges": [0, 0.5, 1]}},
            },
            _layer(0.4107, None, None, None, None),  # as written before lifetime sparsity
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
    assert [p.name for p in paths] == ["snapshot.json", "history.json", "report.md", "report.html", "curves.csv"]
    assert all(p.exists() for p in paths)
    data = json.loads(paths[0].read_text())
    assert data["test_accuracy"] == 0.8765 and data["layers"][0]["sparsity"] == 0.7312
    hist = json.loads(paths[1].read_text())
    assert hist["eval_epochs"] == [10] and hist["test_accuracy"] == [0.8765]
    md = paths[2].read_text()
    assert "# Run report — paper-ff-fashionmnist" in md
    assert "87.65%" in md and "85.00%" in md  # test and layer-1 accuracy
    assert "0.731" in md and "0.411" in md  # sparsity per layer
    assert "12.50" in md  # ensemble size %
    assert "0.432 ± 0.050" in md and "-0.123 ± 0.200" in md  # ρ⁺ and bias
    assert "| layer | sparsity | all-zero rows | lifetime sparsity mean ± std | ensemble size % | active units |" in md
    assert "| 1 | 0.731 | 2 | 0.654 ± 0.125 | 12.50 | 17 |" in md
    assert "| 2 | 0.411 | 2 | — | — | 17 |" in md
    assert "held-out class 3 Dress" in md and "42.00%" in md
    appendix = md[md.index("## Appendix") :]
    assert "Undefined: the layer's sparsity is below 0.5, so it has no ensembles" in appendix  # layer 2's matrices
    assert "| 0 T-shirt | 2 | 1 |" in appendix  # the shared-units matrix
    assert "| 1 Trouser | 0.33 | 1.00 |" in appendix  # Jaccard
    assert "| 0 T-shirt | 2 | 1 |" not in md[: md.index("## Appendix")]
    # a second report in the same second gets its own folder
    paths[0].parent.mkdir(exist_ok=True)
    assert report_dir(tmp_path, datetime(2024, 5, 1, 12, 0, 0)).name == "20240501-120000-2"


def test_report_of_a_run_that_did_not_learn_opens_with_a_warning():
    snap = _snapshot()
    md = render_markdown(snap)
    assert "did not learn" not in md  # 87.65%
    snap.test_accuracy = 0.0721
    md = render_markdown(snap)
    warning = "⚠ This run did not learn: its final test accuracy 7.21% is below 2× chance (20% for 10 classes)"
    assert warning in md and md.index(warning) < md.index("| model |")
    snap.kind = "live"  # a run still training is not judged
    assert "did not learn" not in render_markdown(snap)


def test_unevaluated_snapshot_report_says_so():
    snap = Snapshot(
        run_name="r", model="bp", dataset="mnist", device="cpu", num_layers=1, epoch=3, total_epochs=9, loss=[0.4]
    )
    md = render_markdown(snap, None)
    assert "not evaluated" in md
    assert "settings were not found" in md


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


# ---- a run directory from a fixed snapshots file ----------------------------------------------
def make_run(tmp_path: Path, jsonl: str, config: str, edit=None) -> Path:
    run = tmp_path / jsonl.removesuffix(".jsonl")
    run.mkdir()
    lines = (DATA / jsonl).read_text().splitlines()
    if edit is not None:
        lines = [json.dumps(edit(json.loads(line))) for line in lines]
    (run / rundir.SNAPSHOTS).write_text("\n".join(lines) + "\n")
    (run / rundir.CONFIG).write_text(config)
    return run


FF_CONFIG = "name: ff-fashionmnist\nmodel: ff\ndataset: fashionmnist\nepochs: 6\nhidden: 24\nseed: 3\nlr: 0.02\n"


def lower_final_accuracy(snap: dict) -> dict:
    """The final evaluation below an earlier one, so peak and final differ."""
    if snap["kind"] == "final":
        snap["test_accuracy"] = 0.86
    return snap


@pytest.fixture(scope="module")
def ff_report(tmp_path_factory):
    """`ffterm report` on the FF run (written once, shared by the checks below)."""
    tmp = tmp_path_factory.mktemp("ff")
    run = make_run(tmp, "ff_run.jsonl", FF_CONFIG, lower_final_accuracy)
    assert main(["report", str(run), "--out", str(tmp / "out")]) == 0
    return run, tmp / "out"


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    with Image.open(path) as im:
        im.load()
        assert im.width > 200 and im.height > 100


def assert_svg(path: Path) -> None:
    assert ET.parse(path).getroot().tag == "{http://www.w3.org/2000/svg}svg", path


class Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.figures: list[str] = []
        self.srcs: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "figure":
            self.figures.append(a["id"])
        if tag == "img":
            self.srcs.append(a["src"])


RUN_FIGURES = {
    "curves-training",
    "curves-accuracy",
    "curves-ensembles",
    "sparsity",
    "weights",
    *(f"{kind}-layer{i}" for kind in ("profiles", "activation-map", "ensembles") for i in (1, 2, 3)),
    *(f"ensemble-life-layer-{i}" for i in (1, 2, 3)),
}


def test_report_command_writes_every_file(ff_report):
    _, out = ff_report
    assert sorted(p.name for p in out.iterdir()) == [
        "curves.csv",
        "figures",
        "history.json",
        "report.html",
        "report.md",
        "snapshot.json",
    ]
    figs = out / "figures"
    assert {p.stem for p in figs.iterdir()} == RUN_FIGURES
    for name in RUN_FIGURES:
        assert_png(figs / f"{name}.png")
        assert_svg(figs / f"{name}.svg")


def test_report_html_is_self_contained_and_holds_every_figure(ff_report):
    _, out = ff_report
    text = (out / "report.html").read_text()
    assert "http://" not in text and "https://" not in text
    parser = Images()
    parser.feed(text)
    parser.close()
    assert set(parser.figures) == {f"fig-{name}" for name in RUN_FIGURES}
    assert len(parser.srcs) == len(RUN_FIGURES) and all(s.startswith("data:image/svg+xml;base64,") for s in parser.srcs)
    assert "<title>Run report — ff-fashionmnist</title>" in text


def test_report_md_settings_result_and_appendix(ff_report):
    run, out = ff_report
    md = (out / "report.md").read_text()
    for row in (
        "| seed | 3 |",
        "| learning rate | 0.02 |",
        "| epochs | 6 per layer |",
        "| batch size | 1024 |",
        "| hidden layers × width | 3 × 24 |",
        "| threshold θ | 3 |",
        "| loss | threshold |",
        "| schedule | sequential |",
        "| goodness | l2 |",
        "| normalize | l2 (auto) |",
        "| precision | fp32 |",
        "| negatives | fixed |",
        "| ensemble factor | 2 |",
        "| ffterm version | 0.1.0 |",
        f"| run directory | {run} |",
        "| final test accuracy | 86.00% |",
    ):
        assert row in md, row
    # the peak (epoch 15, 86.82%) is reported as monitoring only, after the result
    assert "Peak test accuracy seen during training: 86.82% (epoch 15) — a monitoring figure, not a result" in md
    assert md.index("## Result") < md.index("## Figures") < md.index("## Appendix")
    assert md.index("Shared units |E_c ∩ E_c'|") > md.index("## Appendix")
    assert "![curves-training](figures/curves-training.png)" in md


def test_curves_csv_one_row_per_epoch_from_the_snapshots(ff_report):
    _, out = ff_report
    with open(out / "curves.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    raw = [json.loads(line) for line in (DATA / "ff_run.jsonl").read_text().splitlines()]
    assert [int(r["epoch"]) for r in rows] == [s["epoch"] for s in raw] == list(range(1, 19))
    for row, snap in zip(rows, raw):
        assert float(row["wall_time_s"]) == snap["wall_time"]
        for i in range(3):
            for key in ("loss", "g_pos", "g_neg"):
                value = snap[key][i]
                assert row[f"{key}_L{i + 1}"] == ("" if value is None else repr(value))
            if snap["test_accuracy"] is None:
                assert row[f"accuracy_L{i + 1}"] == row[f"sparsity_L{i + 1}"] == ""
            else:
                assert float(row[f"accuracy_L{i + 1}"]) == snap["layer_accuracy"][i]
                assert float(row[f"sparsity_L{i + 1}"]) == snap["layers"][i]["sparsity"]
            assert row[f"lifetime_sparsity_mean_L{i + 1}"] == ""  # a file written before lifetime sparsity
    assert rows[0]["loss_L1"] == "0.52836" and rows[0]["loss_L2"] == ""
    assert rows[2]["test_accuracy"] == "0.7106" and rows[3]["test_accuracy"] == ""
    assert rows[17]["test_accuracy"] == "0.86"  # the final evaluation
    # stability: none at the first evaluation, a Jaccard index in [0, 1] afterwards
    assert rows[2]["stability_L1_class0"] == ""
    later = [float(r["stability_mean_L1"]) for r in rows if r["stability_mean_L1"]]
    assert later and all(0.0 <= v <= 1.0 for v in later)


def test_heldout_run_gets_the_unseen_class_figure(tmp_path):
    config = "name: bpff-heldout3\nmodel: bpff\ndataset: fashionmnist\nepochs: 8\nhidden: 24\nheldout_class: 3\n"
    run = make_run(tmp_path, "bpff_heldout_run.jsonl", config)
    assert main(["report", str(run)]) == 0
    (out,) = (run / "reports").iterdir()  # default: RUN_DIR/reports/<date-time>/
    assert_png(out / "figures" / "heldout.png")
    assert_svg(out / "figures" / "heldout.svg")
    md = (out / "report.md").read_text()
    assert "| held-out class 3 Dress | 40.00% |" in md and "| 3 | 0.684 | 2 | 1 | 4 Dress: 1 |" not in md
    assert "| 3 | 0.684 | 2 | 1 | 4 Coat: 1 |" in md
    assert "| held-out class | 3 (test images labelled: embed) |" in md


def test_export_finds_the_settings_from_the_report_folder(tmp_path):
    """The app's export passes only RUN_DIR/reports/<stamp>/; the settings are found from there."""
    run = make_run(tmp_path, "bp_run.jsonl", "name: bp-fashionmnist\nmodel: bp\ndataset: fashionmnist\nseed: 5\n")
    history = RunHistory.from_snapshots(rundir.read_snapshots(run))
    paths = write_report(history.latest_evaluated, history, report_dir(run))
    md = paths[2].read_text()
    assert "| seed | 5 |" in md and "| batch size | 2048 |" in md and "threshold θ" not in md
    assert f"| run directory | {run} |" in md


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda d: d / "missing", "no such directory"),
        (lambda d: d, "neither a run directory (no config.yaml) nor a suite directory"),
        (lambda d: (d / rundir.CONFIG).write_text("model: ff\n") and d, "the run has no snapshots yet"),
        (lambda d: (d / rundir.CONFIG).write_text("modle: ff\n") and d, "config.yaml: unknown key 'modle'"),
        (lambda d: (d / rundir.CONFIG).write_text("model: [ff\n") and d, "not valid YAML"),
    ],
)
def test_report_bad_input_is_one_line(tmp_path, capsys, setup, expected):
    path = setup(tmp_path)
    assert main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1
    assert not (tmp_path / "reports").exists()  # nothing written


def damage_layers(snap: dict) -> dict:
    if snap["layers"] is not None:
        snap["layers"] = ["not a layer record"]
    return snap


def test_report_skips_damaged_snapshot_lines_naming_each_and_a_bad_out_is_one_line(tmp_path, capsys):
    run = make_run(tmp_path, "ff_run.jsonl", FF_CONFIG, damage_layers)
    evaluated = [
        i for i, line in enumerate((run / rundir.SNAPSHOTS).read_text().splitlines(), 1) if "not a layer" in line
    ]
    assert main(["report", str(run), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": skipped a bad snapshot line")[0] for line in err] == [
        f"ffterm: {run / rundir.SNAPSHOTS}:{i}" for i in evaluated
    ]
    assert "This snapshot was not evaluated" in (tmp_path / "out" / "report.md").read_text()  # the good lines remain
    (tmp_path / "file").write_text("")
    assert main(["report", str(run), "--out", str(tmp_path / "file")]) == 2
    assert "file: is a file; give --out a folder" in capsys.readouterr().err


def test_report_before_any_evaluation_has_the_training_curves_only(tmp_path):
    run = make_run(tmp_path, "ff_run.jsonl", FF_CONFIG)
    lines = (run / rundir.SNAPSHOTS).read_text().splitlines()[:2]  # epochs 1–2, not evaluated
    (run / rundir.SNAPSHOTS).write_text("\n".join(lines) + "\n")
    assert main(["report", str(run), "--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out" / "figures").iterdir()) == [
        "curves-training.png",
        "curves-training.svg",
    ]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "This snapshot was not evaluated" in md and "Peak test accuracy" not in md
    with open(tmp_path / "out" / "curves.csv", newline="") as fh:
        assert [r["loss_L1"] for r in csv.DictReader(fh)] == ["0.52836", "0.3594"]


# ---- suites -----------------------------------------------------------------------------------
def fake_suite_run(
    run: Path, seed: int, acc: float, sparsity: list[float], name: str = "ff-mnist", lr: float = 0.01
) -> None:
    run.mkdir(parents=True)
    (run / rundir.CONFIG).write_text(f"name: {name}\nmodel: ff\ndataset: mnist\nseed: {seed}\nlr: {lr}\n")
    layers = [{"sparsity": s, "ensemble_size_pct": 10 * s} for s in sparsity]
    final = {"config": {"seed": seed}, "test_accuracy": acc, "layer_accuracy": [acc - 0.1, acc], "layers": layers}
    final["wall_seconds"] = 1.0  # a complete final.json, as a run writes it
    rundir.write_json(run / rundir.FINAL, final)
    for epoch in (1, 2):
        snap = Snapshot(
            run_name=name,
            model="ff",
            dataset="mnist",
            device="cpu",
            num_layers=2,
            epoch=epoch,
            total_epochs=2,
            loss=[0.5 / epoch + seed, None],
            test_accuracy=acc - 0.1 * (2 - epoch),
        )
        rundir.append_snapshot(run, snap)


def test_suite_report_error_bars_and_table(tmp_path):
    suite = tmp_path / "suite"
    fake_suite_run(suite / "seed-0", 0, 0.80, [0.6, 0.7])
    fake_suite_run(suite / "seed-1", 1, 0.90, [0.8, 0.9])
    (suite / "seed-2").mkdir()  # an unfinished run: listed, left out of the means
    (suite / "seed-2" / rundir.CONFIG).write_text("name: ff-mnist\nmodel: ff\ndataset: mnist\nseed: 2\n")
    assert main(["report", str(suite), "--out", str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    for name in ("curves-accuracy", "sparsity", "ensemble-size", "accuracy"):
        assert_png(out / "figures" / f"{name}.png")
        assert_svg(out / "figures" / f"{name}.svg")
    md = (out / "report.md").read_text()
    # mean ± sample std over the two finished seeds: accuracy (0.80, 0.90) → 0.8500 ± 0.0707
    assert "| ff-mnist | ff | mnist | 2/3 | 0.8500 ± 0.0707 |" in md
    assert "| 1 | 0.7500 ± 0.0707 | 0.700 ± 0.141 | 7.00 ± 1.41 |" in md
    assert "| seed-2 | ff-mnist | 2 | no final.json yet (last snapshot: starting, epoch 0) |" in md
    html = (out / "report.html").read_text()
    assert "http://" not in html and "https://" not in html and html.count("<img ") == 4
    with open(out / "curves.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["run"], r["seed"], r["epoch"], r["loss_L1"]) for r in rows] == [
        ("seed-0", "0", "1", "0.5"),
        ("seed-0", "0", "2", "0.25"),
        ("seed-1", "1", "1", "1.5"),
        ("seed-1", "1", "2", "1.25"),
    ]


def test_suite_with_a_damaged_final_json_is_one_line(tmp_path, capsys):
    suite = tmp_path / "suite"
    fake_suite_run(suite / "seed-0", 0, 0.80, [0.6, 0.7])
    final = json.loads((suite / "seed-0" / rundir.FINAL).read_text())
    final["test_accuracy"] = "high"
    rundir.write_json(suite / "seed-0" / rundir.FINAL, final)
    assert main(["report", str(suite)]) == 2
    err = capsys.readouterr().err
    assert f"{suite / 'seed-0' / rundir.FINAL}: test_accuracy: expected a fraction in 0..1" in err
    assert err.count("\n") == 1


def test_suite_runs_are_grouped_by_setting(tmp_path):
    from ffterm_core.reports.suite_report import find_runs, group_runs

    suite = tmp_path / "suite"
    fake_suite_run(suite / "a" / "seed-0", 0, 0.80, [0.6, 0.7], name="a")
    fake_suite_run(suite / "a" / "seed-1", 1, 0.90, [0.8, 0.9], name="a")
    fake_suite_run(suite / "b" / "seed-0", 0, 0.70, [0.3, 0.4], name="b", lr=0.001)
    fake_suite_run(suite / "c" / "seed-0", 0, 0.75, [0.5, 0.5], name="c")  # a's settings under another name
    settings = group_runs(find_runs(suite))
    assert [s.label for s in settings] == ["ff-mnist", "b"]
    assert [r.path.parent.name for r in settings[0].runs] == ["a", "a", "c"]
    assert settings[0].per_layer("sparsity")[0] == pytest.approx({"mean": 0.6333333333, "std": 0.1527525232, "n": 3})
    assert settings[1].per_layer("sparsity")[1] == {"mean": 0.4, "std": 0.0, "n": 1}
    # test accuracy over the epochs, in %: epoch 1 (70, 80, 65), epoch 2 (80, 90, 75) for a, a, c
    epochs, means, stds = settings[0].accuracy_over_epochs()
    assert epochs == [1, 2]
    assert means == pytest.approx([71.6666667, 81.6666667]) and stds == pytest.approx([7.6376262, 7.6376262])


# ---- a real browser ---------------------------------------------------------------------------
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_report_html_renders_in_headless_chromium(ff_report, tmp_path):
    _, out = ff_report
    url = (out / "report.html").resolve().as_uri()
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    shot = tmp_path / "shot.png"
    subprocess.run(
        [CHROMIUM, *flags, "--hide-scrollbars", "--window-size=1280,4000", f"--screenshot={shot}", url],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with Image.open(shot) as im:
        assert im.size == (1280, 4000)
        rgb = np.asarray(im.convert("RGB")).astype(int)
    grey = rgb.mean(axis=2)
    assert (grey < 200).mean() > 0.02  # text and tables drawn, not a blank page
    # the page's own text and tables are grey; colour comes only from the decoded figures
    saturated = (rgb.max(axis=2) - rgb.min(axis=2)) > 80
    assert saturated.sum() > 5000
    dom = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    assert dom.count('<img src="data:image/svg+xml;base64,') == len(RUN_FIGURES)
    assert "Run report — ff-fashionmnist" in dom


# ---- the ensemble factor ----------------------------------------------------------------------
def test_ensemble_factor_hand_computed():
    # class 0's unit means (2.5, 1, 1, 1): unit 0 is 2.5× the mean of the others → in with 2, out with 3
    X = np.array([[2.5, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 4.0]])
    y = np.array([0, 1])
    assert [e.tolist() for e in find_ensembles(X, y, 2, factor=2.0)] == [[0], [3]]
    assert [e.tolist() for e in find_ensembles(X, y, 2, factor=3.0)] == [[], [3]]
    rec = analyze_layer(X[[1, 1]], np.array([1, 1]), 2, None, None, factor=3.0)
    assert rec["ensemble_factor"] == 3.0 and rec["ensembles"] == [None, [3]]  # class 0 has no row: undefined


def test_ensemble_factor_setting():
    assert RunConfig().ensemble_factor == 2.0
    assert from_dict({"ensemble_factor": 3}).ensemble_factor == 3.0
    with pytest.raises(ConfigError, match=r"ensemble_factor: 0.5 is out of range; it must be >= 1.0"):
        from_dict({"ensemble_factor": 0.5})


@pytest.mark.slow
def test_ensemble_factor_flows_through_training_and_analyze(tmp_path, capsys):
    fast = ["--set", "dataset=synthetic", "--set", "epochs=2", "--set", "batch_size=200", "--device", "cpu"]
    run = tmp_path / "r"
    args = ["run", "quick-ff-synthetic", "--headless", "--out", str(run), *fast]
    assert main([*args, "--set", "final_pvalues=false", "--set", "ensemble_factor=3"]) == 0
    final = rundir.read_snapshots(run)[-1]
    assert final.kind == "final" and {layer["ensemble_factor"] for layer in final.layers} == {3.0}
    assert main(["analyze", str(run), "--no-pvalues", "--ensemble-factor", "2"]) == 0
    assert "ensemble factor 2.00" in capsys.readouterr().out
    redone = json.loads((run / "analysis.json").read_text())
    for strict, loose in zip(final.layers, redone["layers"]):
        assert loose["ensemble_factor"] == 2.0
        if strict["ensembles"] is not None:  # same weights, same test set: the 3× ensembles sit inside the 2× ones
            assert all(set(s) <= set(lo) for s, lo in zip(strict["ensembles"], loose["ensembles"]))
            assert sum(map(len, loose["ensembles"])) >= sum(map(len, strict["ensembles"]))
