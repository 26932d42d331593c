"""Suite files are untrusted: their runs stay inside the suite folder, their size is bounded before
anything is built, and a setting planned twice is run once."""

from __future__ import annotations

import json
import textwrap
import tracemalloc

import pytest

from ffterm.cli import main
from ffterm_core.store import rundir
from ffterm_core.suites.spec import MAX_RUNS, SuiteError, load_suite

TINY = ["--set", "epochs=1", "--set", "final_pvalues=false", "--set", "train_limit=200", "--set", "test_limit=100"]
TINY += ["--set", "hidden=16", "--set", "threads=1", "--device", "cpu"]
# 8 settings × 10 values each: 10⁸ combinations
VARY_10_TO_THE_8 = "".join(
    f"      {key}: [{', '.join(str(i + 1) for i in range(10))}]\n"
    for key in ("layers", "hidden", "epochs", "lr", "batch_size", "threshold", "threads", "train_limit")
)


def _suite(tmp_path, body: str):
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def _one_line(capsys, code: int, *words: str) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("ffterm: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


def _files_outside(root, inside) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and inside not in p.parents)


@pytest.mark.parametrize(
    "entry",
    [
        "label: x/../../../ESCAPED",
        'set: {name: "../../ESCAPED"}',
        'vary: {description: ["/../../../ESCAPED"]}',
    ],
)
def test_suite_settings_never_name_a_folder_outside_the_suite(tmp_path, entry):
    path = _suite(tmp_path, f"runs:\n  - preset: quick-ff-synthetic\n    {entry}\n    tables: [table1]\n")
    (run,) = load_suite(str(path), seeds=1).runs
    assert "/" not in run.setting and not run.setting.startswith(".") and run.setting.endswith("ESCAPED")
    assert (tmp_path / "o" / run.rel_dir).resolve().parent.parent == tmp_path / "o"


def test_set_name_on_the_command_line_stays_in_the_suite_folder(tmp_path, monkeypatch, capsys):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    code = main(["suite", "quick-ff-synthetic", "--seeds", "1", *TINY, "--set", "name=../../ESC", "--out", "o"])
    assert code == 0, capsys.readouterr().err
    assert _files_outside(tmp_path, work / "o") == []
    assert rundir.is_finished(work / "o" / "ESC" / "seed-0")


@pytest.mark.parametrize(
    "body, args",
    [
        ("seeds: 100000000\nruns:\n  - preset: quick-ff-synthetic\n    tables: [table1]\n", []),
        ("runs:\n  - preset: quick-ff-synthetic\n    tables: [table1]\n", ["--seeds", "100000000000"]),
        ("runs:\n  - preset: quick-ff-synthetic\n    tables: [table1]\n    vary:\n" + VARY_10_TO_THE_8, []),
    ],
    ids=["seeds-in-file", "seeds-option", "vary-product"],
)
def test_a_plan_beyond_the_limit_is_one_line_before_it_is_expanded(tmp_path, capsys, body, args):
    path = _suite(tmp_path, body)
    tracemalloc.start()
    code = main(["suite", str(path), *args, "--out", str(tmp_path / "o")])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    _one_line(capsys, code, "runs planned", f"at most {MAX_RUNS:,}")
    assert peak < 50_000_000 and not (tmp_path / "o").exists()


@pytest.mark.parametrize("seeds", ["100000000000", "1e11"])
def test_a_preset_over_too_many_seeds_is_one_line(tmp_path, capsys, seeds):
    code = main(["suite", "quick-ff-synthetic", "--seeds", seeds, "--out", str(tmp_path / "o")])
    _one_line(capsys, code, "100,000,000,000 runs planned")


def test_a_billion_laughs_anchor_tree_is_refused_before_it_is_built(tmp_path, capsys):
    levels = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    path = _suite(tmp_path, "x:\n" + "".join(f"  {line}\n" for line in levels) + "seeds: *a8\nruns: []\n")
    code = main(["suite", str(path), "--out", str(tmp_path / "o")])
    _one_line(capsys, code, "anchors", "100,000 YAML values")


def test_a_self_containing_anchor_and_deep_nesting_are_one_line(tmp_path, capsys):
    path = _suite(tmp_path, "runs: &r [*r]\n")
    _one_line(capsys, main(["suite", str(path)]), "contains itself")
    path.write_text("runs: " + "[" * 4000 + "]" * 4000 + "\n")
    _one_line(capsys, main(["suite", str(path)]), "nested too deeply")


def test_two_identical_entries_make_one_run(tmp_path, capsys):
    entry = "  - preset: quick-ff-synthetic\n    tables: [table1]\n"
    path = _suite(tmp_path, "runs:\n" + entry + entry.replace("table1]", "table2]"))
    (run,) = load_suite(str(path), seeds=1).runs
    assert run.tables == ("table1", "table2")
    assert main(["suite", str(path), "--seeds", "1", *TINY, "--out", str(tmp_path / "o")]) == 0
    plan = json.loads((tmp_path / "o" / "suite.json").read_text())
    assert [r["dir"] for r in plan["runs"]] == ["quick-ff-synthetic/seed-0"]
    assert "n=2" not in (tmp_path / "o" / "summary.md").read_text()


def test_an_unreadable_suite_file_is_one_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_bytes(b"runs: \xff\xfe\n")
    with pytest.raises(SuiteError, match="not UTF-8"):
        load_suite(str(path))
