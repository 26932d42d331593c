"""Suites: suite files (validation with line numbers), runs over seeds and settings, failures, resuming,
subprocess and Ray executors; and pooling one setting's seeds as mean ± std."""

import json
import math
import os
import sys
import textwrap
from contextlib import nullcontext

import pytest

from ffterm.cli import main
from ffterm_core.store import rundir
from ffterm_core.store.rundir import FAILED
from ffterm_core.suites import runner as suite
from ffterm_core.suites.pooling import mean_std, summarize, to_markdown
from ffterm_core.suites.spec import SuiteError, load_suite, preset_suite
from ffterm_core.suites.worker import remote_unit, run_state, unpack

# tiny runs on generated data: about half a second each
TINY = {
    "epochs": 1,
    "final_pvalues": False,
    "train_limit": 200,
    "test_limit": 100,
    "hidden": 16,
    "threads": 1,
    "device": "cpu",
}
TINY_ARGS = [a for k, v in TINY.items() if k != "device" for a in ("--set", f"{k}={v}")] + ["--device", "cpu"]


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


def test_summarize_says_what_did_not_learn_and_where_the_runs_are_not_the_studys(tmp_path):
    fake_final(tmp_path / "seed-0", 0, 0.0721, 0.3)  # FF on MNIST at chance
    fake_final(tmp_path / "seed-1", 1, 0.90, 0.8)
    summary = summarize([tmp_path / "seed-0", tmp_path / "seed-1"])
    assert summary["did_not_learn"] == [str(tmp_path / "seed-0")]
    assert summary["not_the_study"][0] == "epochs 10 (the study's 1200) — against ff-mnist"
    assert summary["not_the_study"][1] == "2 seeds (the study's 10)"
    md = to_markdown(summary)
    assert f"**⚠ Did not learn (final test accuracy below 2× chance), pooled as they are: {tmp_path / 'seed-0'}**" in md
    assert "**Not the study's settings: epochs " in md


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


# ---- suite files ---------------------------------------------------------------------------------
def test_builtin_suites_expand_to_the_study_runs():
    paper = load_suite("paper")
    assert len(paper.runs) == 120 and len(paper.groups()) == 12
    assert {g.runs[0].config.model for g in paper.groups()} == {"ff", "bpff", "bp"}
    assert all(len(g.runs) == 10 for g in paper.groups())
    heldout = load_suite("heldout")
    held = [r for r in heldout.runs if r.config.heldout_class is not None]
    assert len(held) == 30 and sorted({r.config.heldout_class for r in held}) == list(range(10))
    assert len(heldout.runs) == 33 and all(r.needs_probes for r in heldout.runs)
    assert {r.config.dataset for r in heldout.runs} == {"fashionmnist"}
    bp_l1 = load_suite("bp-l1")
    assert {r.setting for r in bp_l1.runs if r.config.act_l1 == 2.5e-6} == {"bp-mnist-act-l1", "bp-fashionmnist-act-l1"}
    assert len(load_suite("l1").runs) == 40 and len(load_suite("similarity").runs) == 60
    quick = load_suite("quick", seeds=1, overrides={"epochs": 1})
    assert len(quick.runs) == 5 and all(r.config.epochs == 1 for r in quick.runs)


@pytest.mark.parametrize("preset", ["ff-mnist-l1", "ff-fashionmnist-l1", "bpff-mnist-l1", "bpff-fashionmnist-l1"])
def test_l1_presets_follow_appendix_k(preset):
    from ffterm_core.store.presets import load_preset

    cfg = load_preset(preset)
    assert (cfg.lr, cfg.epochs, cfg.effective_batch_size, cfg.goodness) == (0.001, 300, 1024, "l1")


SUITE_ERRORS = [
    ("runs:\n  - preset: ff-mnist\n    tables: [table1]\n    colour: red\n", "line 4: unknown run entry key 'colour'"),
    ("runs:\n  - presets: [ff-mnist, no-such]\n    tables: [table1]\n", "line 2: unknown preset 'no-such'"),
    ("runs:\n  - preset: ff-mnist\n    tables: [table1, table99]\n", "line 3: unknown table 'table99'"),
    ("seeds: 2\nrunz: []\n", "line 2: unknown suite key 'runz'"),
    (
        "runs:\n  - preset: ff-mnist\n    set:\n      epochs: 3\n      epoks: 3\n    tables: [table1]\n",
        "line 5: unknown setting 'epoks'",
    ),
    (
        "runs:\n  - preset: ff-mnist\n    set: {epochs: -1}\n    tables: [table1]\n",
        "line 3: ff-mnist: epochs: -1 is out of range",
    ),
    ("runs:\n  - preset: ff-mnist\n    tables: [table1\n", "line 4: not valid YAML"),
    ("runs:\n  - preset: ff-mnist\n", "line 2: `tables:` must list"),
    ("seeds: 0\nruns: []\n", "line 1: `seeds:` must be a whole number >= 1"),
    (
        "set: {act_l1: 0.1}\nruns:\n  - preset: ff-mnist\n    tables: [table1]\n",
        "line 1: ff-mnist: act_l1: only the bp model",
    ),
]


@pytest.mark.parametrize(("text", "message"), SUITE_ERRORS)
def test_suite_file_errors_name_file_and_line(tmp_path, capsys, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SuiteError, match=message) as err:
        load_suite(str(path))
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)
    # the command refuses before anything starts
    assert main(["suite", str(path), "--out", str(tmp_path / "out")]) == 2
    assert f"{path}" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_unknown_suite_or_preset_is_one_line(capsys):
    assert main(["suite", "no-such-suite"]) == 2
    err = capsys.readouterr().err
    assert "'no-such-suite' is neither a suite (bp-l1, heldout, l1, paper, quick, similarity) nor a preset" in err
    assert err.count("\n") == 1


# ---- running suites ---------------------------------------------------------------------------------
def _args(out, *extra):
    return ["suite", "quick-ff-synthetic", "--out", str(out), *TINY_ARGS, *extra]


def test_preset_suite_runs_seeds_and_skips_finished(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(_args(out, "--seeds", "2")) == 0
    finals = [json.loads((out / "quick-ff-synthetic" / f"seed-{i}" / rundir.FINAL).read_text()) for i in range(2)]
    assert [f["config"]["seed"] for f in finals] == [0, 1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["states"] == {"done": 2}
    assert [t["key"] for t in summary["tables"]] == ["table1", "table2", "table3", "table4", "table5"]
    mtimes = [(out / "quick-ff-synthetic" / f"seed-{i}" / rundir.FINAL).stat().st_mtime_ns for i in range(2)]
    capsys.readouterr()
    assert main(_args(out, "--seeds", "2")) == 0
    assert "2 of 2 runs finished earlier" in capsys.readouterr().out
    assert [(out / "quick-ff-synthetic" / f"seed-{i}" / rundir.FINAL).stat().st_mtime_ns for i in range(2)] == mtimes
    # a setting's seeds still pool as before; the suite folder gives the study layout
    assert main(["summary", str(out / "quick-ff-synthetic"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["seeds"] == [0, 1]
    assert main(["summary", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["states"] == {"done": 2}
    # other settings in the same folder are refused, naming the run and the change
    assert main(_args(out, "--seeds", "2", "--set", "lr=0.5")) == 2
    assert "holds a run with other settings (lr: 0.01 → 0.5)" in capsys.readouterr().err


def test_failing_run_is_recorded_and_the_others_finish(tmp_path, capsys):
    """Two runs at once in subprocesses: one has a corrupt checkpoint and fails, the other finishes."""
    out = tmp_path / "s"
    spec = preset_suite("quick-ff-synthetic", seeds=2, overrides=TINY)
    suite.prepare(spec, out)
    bad = out / "quick-ff-synthetic" / "seed-1"
    (bad / rundir.CHECKPOINT).write_bytes(b"not a checkpoint")
    assert main(_args(out, "--seeds", "2", "--jobs", "2")) == 1
    assert run_state(out / "quick-ff-synthetic" / "seed-0") == "done"
    error = json.loads((bad / FAILED).read_text())["error"]
    assert "checkpoint" in error.lower()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["states"] == {"done": 1, "failed": 1}
    assert summary["failed"] == [{"run": "quick-ff-synthetic/seed-1", "error": error}]
    assert error in (out / "summary.md").read_text()
    assert "1 runs failed" in capsys.readouterr().out


def test_interrupted_suite_resumes_without_redoing_finished_runs(tmp_path, monkeypatch):
    from ffterm_core.training.session import Session

    out = tmp_path / "s"
    spec = preset_suite("quick-ff-synthetic", seeds=2, overrides={**TINY, "epochs": 2})
    real_join = Session.join
    interrupted = []

    def watch(session):  # seed 1 pauses after its first epoch: Ctrl-C arrives while it is mid-run
        if session.run_dir.name == "seed-1":
            session.subscribe(lambda snap: session.pause() if snap.kind == "live" and snap.epoch >= 1 else None)
        return nullcontext()

    def join(self, timeout=None):
        real_join(self, timeout)
        if self.paused and not interrupted:
            interrupted.append(self.run_dir)
            raise KeyboardInterrupt

    monkeypatch.setattr(Session, "join", join)
    with pytest.raises(KeyboardInterrupt):
        suite.run_suite(spec, out, suite.InProcessExecutor(watch=watch), log=lambda _m: None)
    seed0, seed1 = out / "quick-ff-synthetic" / "seed-0", out / "quick-ff-synthetic" / "seed-1"
    assert rundir.is_finished(seed0) and not rundir.is_finished(seed1)
    assert (seed1 / rundir.CHECKPOINT).exists()
    first_snapshot = (seed1 / rundir.SNAPSHOTS).read_text().splitlines()[0]
    done_at = (seed0 / rundir.FINAL).stat().st_mtime_ns

    monkeypatch.setattr(Session, "join", real_join)
    lines = []
    states = suite.run_suite(spec, out, log=lines.append)
    assert states == {"done": 2}
    assert lines[0] == "1 of 2 runs finished earlier"
    assert (seed0 / rundir.FINAL).stat().st_mtime_ns == done_at  # not redone
    assert (seed1 / rundir.SNAPSHOTS).read_text().splitlines()[0] == first_snapshot  # resumed, not restarted
    assert json.loads((seed1 / rundir.FINAL).read_text())["epochs_done"] == 2 * 3  # 2 epochs per layer


def test_batched_units_hand_a_setting_over_whole(tmp_path):
    text = "seeds: 3\nruns:\n  - presets: [quick-ff-synthetic, quick-bp-fashionmnist]\n    tables: [table1]\n"
    (tmp_path / "two.yaml").write_text(text)
    spec = load_suite(str(tmp_path / "two.yaml"))
    units = suite.prepare(spec, tmp_path / "s")
    assert len(units) == 6 and all(len(u.runs) == 1 for u in units)
    batched = suite.work_units(units, batched=True)
    assert [(u.runs[0].setting, [r.seed for r in u.runs]) for u in batched] == [
        ("quick-ff-synthetic", [0, 1, 2]),
        ("quick-bp-fashionmnist", [0, 1, 2]),
    ]
    assert batched[1].dirs[2] == tmp_path / "s" / "quick-bp-fashionmnist" / "seed-2"
    assert [(g.setting, len(g.runs)) for g in spec.groups()] == [
        ("quick-ff-synthetic", 3),
        ("quick-bp-fashionmnist", 3),
    ]


def test_jobs_spread_over_the_gpus():
    pool = suite.ProcessPoolExecutor(3, gpus=["0", "1"])
    assert [pool.env(slot)["CUDA_VISIBLE_DEVICES"] for slot in range(3)] == ["0", "1", "0"]
    cpu_only = suite.ProcessPoolExecutor(2, gpus=[]).env(0)  # no GPU: the environment is left as it is
    assert cpu_only.get("CUDA_VISIBLE_DEVICES") == os.environ.get("CUDA_VISIBLE_DEVICES")


# ---- Ray ------------------------------------------------------------------------------------------------
def test_ray_quick_suite_end_to_end(tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        out = tmp_path / "q"
        args = ["suite", "quick", "--backend", "ray", "--seeds", "1", "--out", str(out), "--set", "dataset=synthetic"]
        assert main(args + TINY_ARGS) == 0
    finally:
        ray.shutdown()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["states"] == {"done": 5}
    keys = [t["key"] for t in summary["tables"]]
    assert {"table1", "table2", "table11", "table12", "heldout-ensembles"} <= set(keys)
    assert run_state(out / "quick-ff-fashionmnist-heldout" / "seed-0") == "done"


def test_ray_task_ships_the_run_back_when_the_folder_is_not_shared(tmp_path):
    spec = preset_suite("quick-ff-synthetic", seeds=1, overrides=TINY)
    (unit,) = suite.prepare(spec, tmp_path / "s")
    from ffterm_core.suites.worker import pack

    result = remote_unit(
        str(tmp_path / "elsewhere"), "another-id", ["quick-ff-synthetic/seed-0"], [pack(unit.dirs[0])], None, [False]
    )
    assert result["states"] == ["done"] and not rundir.is_finished(unit.dirs[0])
    unpack(result["bundles"][0], unit.dirs[0])
    assert run_state(unit.dirs[0]) == "done"


def test_ray_backend_problems_are_one_line(tmp_path, capsys, monkeypatch):
    args = ["suite", "quick-ff-synthetic", "--backend", "ray", "--out", str(tmp_path / "s")]
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed
    assert main(args) == 2
    assert "pip install 'ffterm[ray]'" in capsys.readouterr().err
    monkeypatch.undo()
    pytest.importorskip("ray")
    assert main([*args, "--address", "127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "no Ray cluster answers there" in err and "ray start --head" in err and err.count("\n") == 1
    assert main(["suite", "quick-ff-synthetic", "--address", "127.0.0.1:9"]) == 2
    assert "are for --backend ray" in capsys.readouterr().err


def test_probes_and_similarity_feed_their_tables(tmp_path):
    """A held-out run is probed after training (Tables 7-8); FF vs BP similarity is computed once (Table 10)."""
    from ffterm_core.reports.suite_tables import build_summary

    text = textwrap.dedent(
        """\
        seeds: 1
        probe_layer: 2
        runs:
          - preset: quick-ff-synthetic
            vary: {heldout_class: [1]}
            tables: [table7, table8]
          - preset: quick-ff-synthetic
            tables: [table10, fig13]
          - preset: quick-ff-synthetic
            label: bp
            set: {model: bp}
            tables: [table10]
        """
    )
    (tmp_path / "a.yaml").write_text(text)
    spec = load_suite(str(tmp_path / "a.yaml"), overrides=TINY)
    assert suite.run_suite(spec, tmp_path / "s", log=lambda _m: None) == {"done": 3}
    probes = json.loads((tmp_path / "s" / "quick-ff-synthetic-heldout_class1" / "seed-0" / "probes.json").read_text())
    assert [p["layer"] for p in probes["layers"]] == [2]
    assert 0.0 <= probes["layers"][0]["heldout_accuracy"] <= 1.0
    summary = build_summary(tmp_path / "s", log=lambda _m: None)
    tables = {t.key: t for t in summary["tables"]}
    (row,) = tables["table7"].rows
    assert row.cells[1].mean == probes["layers"][0]["heldout_accuracy"] and row.cells[1].n == 1
    assert [r.label for r in tables["table10"].rows] == [
        "synthetic · SVCCA · FF vs BP",
        "synthetic · CKA · FF vs BP",
        "synthetic · dCor · FF vs BP",
    ]
    assert all(c.n == 1 and 0.0 <= c.mean <= 1.0 + 1e-9 for r in tables["table10"].rows for c in r.cells)
    (cka,) = [m for m in summary["matrices"] if m.key == "fig13"]
    assert [round(cka.values[i][i], 6) for i in range(3)] == [1.0, 1.0, 1.0]  # a layer against itself
    cached = sorted(p.name for p in (tmp_path / "s" / "similarity").iterdir())
    assert len(cached) == 2  # FF vs BP seed 0, FF against itself


def test_suite_status_lists_each_run(tmp_path):
    from ffterm_core.suites.status import suite_status

    spec = preset_suite("quick-ff-synthetic", seeds=4, overrides=TINY)
    units = suite.prepare(spec, tmp_path)
    d0, d1, d2, _ = (u.dirs[0] for u in units)
    fake_layers = [{"sparsity": 0.8}, {"sparsity": 0.6}]
    finished = {"config": {"layers": 2}, "layer_accuracy": [], "wall_seconds": 1.0, "epochs_done": 3}
    rundir.write_json(d0 / rundir.FINAL, {**finished, "test_accuracy": 0.9, "layers": fake_layers})
    evaluated = {"kind": "live", "epoch": 1, "total_epochs": 3, "test_accuracy": 0.5, "layers": fake_layers}
    later = {"kind": "live", "epoch": 2, "total_epochs": 3, "test_accuracy": None, "layers": None}
    state = {"kind": "state", "state": "running", "epoch": 2}
    (d1 / rundir.SNAPSHOTS).write_text("\n".join(json.dumps(s) for s in (evaluated, later, state)) + "\n")
    (d1 / rundir.CHECKPOINT).write_bytes(b"")
    rundir.write_json(d2 / FAILED, {"error": "DatasetError: no data"})
    rows = suite_status(tmp_path)
    assert [(r.seed, r.state) for r in rows] == [(0, "done"), (1, "running"), (2, "failed"), (3, "queued")]
    assert (rows[0].accuracy, rows[0].sparsity, rows[0].epoch) == (0.9, [0.8, 0.6], 3)
    assert (rows[1].epoch, rows[1].total_epochs, rows[1].accuracy, rows[1].sparsity) == (2, 3, 0.5, [0.8, 0.6])
    assert rows[2].error == "DatasetError: no data" and rows[3].accuracy is None and rows[3].sparsity == []
    # a finished run is not read again while its final.json is unchanged, and is when it changes
    again = suite_status(tmp_path, rows)
    assert again[0] is rows[0] and again[1] is not rows[1]
    rundir.write_json(d0 / rundir.FINAL, {**finished, "test_accuracy": 0.7, "layers": fake_layers})
    os.utime(d0 / rundir.FINAL, (1, 1))
    assert suite_status(tmp_path, rows)[0].accuracy == 0.7


@pytest.mark.asyncio
async def test_suite_view_lists_runs_and_fills_the_tables(tmp_path):
    pytest.importorskip("textual")
    from rich.console import Console
    from textual.app import App
    from textual.widgets import DataTable, Static

    from ffterm.app.suiteview import SuiteView

    spec = preset_suite("quick-ff-synthetic", seeds=2, overrides=TINY)
    units = suite.prepare(spec, tmp_path)
    layers = [{"sparsity": 0.8, "ensemble_size_pct": 5.0, "rho_plus": {"mean": 0.5}, "bias": {"mean": 0.0}}]
    final = {"config": {"model": "ff", "dataset": "mnist", "seed": 0}, "test_accuracy": 0.93, "layers": layers}
    rundir.write_json(
        units[0].dirs[0] / rundir.FINAL, {**final, "layer_accuracy": [], "wall_seconds": 1.0, "epochs_done": 3}
    )
    opened = []

    class Host(App):
        def compose(self):
            yield SuiteView(tmp_path, poll_s=0.1)

        def on_suite_view_open_run(self, message):
            opened.append(message.run_dir)

    async with Host().run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.5)
        table = pilot.app.query_one("#suite-runs", DataTable)
        assert table.row_count == 2
        assert [str(table.get_row_at(i)[2]) for i in range(2)] == ["done", "queued"]
        assert str(table.get_row_at(0)[4]) == "0.9300"
        assert "1 done, 1 queued" in str(pilot.app.query_one("#suite-title", Static).render())
        console = Console(width=200, record=True)
        console.print(pilot.app.query_one("#suite-summary", Static).content)
        summary = console.export_text()
        assert "Table 1: test accuracy" in summary and "0.930 ± 0.000 (n=1)" in summary
        # the second run finishes: its row and the tables follow
        rundir.write_json(units[1].dirs[0] / rundir.FINAL, {**final, "test_accuracy": 0.95, "epochs_done": 3})
        await pilot.pause(0.6)
        assert str(table.get_row_at(1)[2]) == "done"
        table.focus()
        await pilot.press("enter")
        await pilot.pause(0.1)
    assert opened == [units[0].dirs[0]]


async def _until(pilot, cond, timeout=30.0):
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        await pilot.pause(0.05)
    raise AssertionError("the app never got there")


@pytest.mark.asyncio
async def test_app_watches_a_suite_folder_and_opens_its_runs(tmp_path):
    pytest.importorskip("textual")
    from textual.widgets import DataTable

    from ffterm.app.dashboard import Dashboard
    from ffterm.app.demo import DemoPresets
    from ffterm.app.main import FFTermApp
    from ffterm.app.suiteview import SuiteScreen

    out = tmp_path / "s"
    suite.run_suite(preset_suite("quick-ff-synthetic", seeds=1, overrides=TINY), out, log=lambda _m: None)
    run_dir = out / "quick-ff-synthetic" / "seed-0"
    app = FFTermApp(watch=[out], run_root=tmp_path / "runs", presets=DemoPresets())
    async with app.run_test(size=(120, 40)) as pilot:
        await _until(pilot, lambda: isinstance(app.screen, SuiteScreen))
        table = app.screen.query_one("#suite-runs", DataTable)
        await _until(pilot, lambda: table.row_count == 1)
        assert str(table.get_row_at(0)[2]) == "done"
        await pilot.press("enter")  # the run's dashboard
        await _until(pilot, lambda: isinstance(app.screen, Dashboard) and app.runs.primary is not None)
        assert app.runs.primary.run_dir == run_dir
        await _until(pilot, lambda: app.runs.primary.history.count > 0)
        await pilot.press("u")  # back to the suite
        await _until(pilot, lambda: isinstance(app.screen, SuiteScreen))
        await pilot.press("escape")
        await _until(pilot, lambda: isinstance(app.screen, Dashboard))


@pytest.mark.asyncio
async def test_picker_offers_the_built_in_suites(tmp_path, monkeypatch):
    pytest.importorskip("textual")
    from textual.widgets import Input, OptionList

    from ffterm.app.demo import DemoPresets
    from ffterm.app.main import FFTermApp
    from ffterm.app.screens import PresetPicker
    from ffterm.app.suiteview import SuiteScreen

    started = []

    def start_suite(name, run_root):  # the real one starts `ffterm suite NAME` as a process of its own
        started.append(name)
        suite.prepare(load_suite(name, overrides=TINY), run_root / f"{name}-suite")
        return run_root / f"{name}-suite"

    monkeypatch.setattr("ffterm.app.main.start_suite", start_suite)
    app = FFTermApp(run_root=tmp_path / "runs", presets=DemoPresets())
    async with app.run_test(size=(120, 40)) as pilot:
        await _until(pilot, lambda: isinstance(app.screen, PresetPicker))
        options = app.screen.query_one(OptionList)
        await _until(pilot, lambda: options.option_count > 0)
        names = [str(options.get_option_at_index(i).id) for i in range(options.option_count)]
        assert {"suite:paper", "suite:heldout", "suite:l1", "suite:bp-l1", "suite:similarity", "suite:quick"} <= set(
            names
        )
        app.screen.query_one(Input).value = "suite:quick"
        await pilot.pause(0.2)
        await pilot.press("enter")
        await _until(pilot, lambda: isinstance(app.screen, SuiteScreen))
        assert app.screen.suite_dir == tmp_path / "runs" / "quick-suite"
    assert started == ["quick"]
