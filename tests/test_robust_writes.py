"""Writes that fail (a full disk, an error.log that cannot be written) and folders that hold more
than a run (a user's files, symlinks) end in one line, and lose nothing."""

from __future__ import annotations

import errno
import threading

import pytest

import ffterm_core.store.rundir as rundir_module
from ffterm.cli import main
from ffterm_core.store import rundir

FAST = ["--set", "dataset=synthetic", "--set", "epochs=2", "--set", "final_pvalues=false", "--device", "cpu"]
FAST += ["--set", "train_limit=300", "--set", "test_limit=100", "--set", "hidden=16", "--set", "threads=1"]


@pytest.fixture(autouse=True)
def _own_runtime_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FFTERM_RUNTIME_DIR", str(tmp_path / "runtime"))


@pytest.fixture
def thread_tracebacks(monkeypatch):
    """Exceptions that ended a thread (they would print a traceback)."""
    seen: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_value))
    return seen


def _one_line(err: str, *words: str) -> None:
    assert err.startswith("ffterm:") and err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err


def test_a_full_disk_during_a_run_is_one_line_and_resume_continues(tmp_path, monkeypatch, capsys, thread_tracebacks):
    real = rundir_module.append_snapshot
    calls = {"n": 0}

    def append_until_full(run_dir, snap):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(run_dir / rundir.SNAPSHOTS))
        real(run_dir, snap)

    monkeypatch.setattr(rundir_module, "append_snapshot", append_until_full)
    out = tmp_path / "r"
    assert main(["run", "quick-ff-synthetic", "--headless", "--out", str(out), *FAST]) == 1
    _one_line(capsys.readouterr().err, "run failed", "No space left on device", "ffterm resume")
    assert thread_tracebacks == []
    monkeypatch.setattr(rundir_module, "append_snapshot", real)  # space freed
    if (out / rundir.CHECKPOINT).exists():
        assert main(["resume", str(out)]) == 0
    else:
        assert main(["run", "quick-ff-synthetic", "--headless", "--out", str(out), "--force", *FAST]) == 0
    assert rundir.is_finished(out)


def test_resume_where_error_log_cannot_be_written_is_one_line(tmp_path, monkeypatch, capsys, thread_tracebacks):
    out = tmp_path / "r"
    assert main(["run", "quick-ff-synthetic", "--headless", "--out", str(out), *FAST]) == 0
    (out / rundir.FINAL).unlink()  # as if it had stopped after its last checkpoint
    (out / rundir.ERROR_LOG).mkdir()  # error.log cannot be written
    from ffterm_core.training.loop import TrainingLoop

    def broken(*args, **kw):
        raise RuntimeError("a bug in training")

    monkeypatch.setattr(TrainingLoop, "run", broken)
    capsys.readouterr()
    assert main(["resume", str(out)]) == 1
    _one_line(capsys.readouterr().err, "RuntimeError: a bug in training", "traceback could not be saved")
    assert thread_tracebacks == []


def test_a_folder_with_a_users_temp_file_needs_force_and_keeps_it(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / ".notes.tmp").write_text("keep me")
    assert main(["run", "quick-ff-synthetic", "--headless", "--out", str(out), *FAST]) == 2
    _one_line(capsys.readouterr().err, ".notes.tmp", "--force")
    assert main(["run", "quick-ff-synthetic", "--headless", "--out", str(out), "--force", *FAST]) == 0
    assert (out / ".notes.tmp").read_text() == "keep me" and rundir.is_finished(out)


def test_force_checks_everything_before_deleting_anything(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", "quick-ff-synthetic", "--headless", "--out", str(out), *FAST]) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("keep me")
    (out / "reports").symlink_to(elsewhere)
    before = sorted(p.name for p in out.iterdir())
    capsys.readouterr()
    assert main(["run", "quick-ff-synthetic", "--headless", "--out", str(out), "--force", *FAST]) == 2
    _one_line(capsys.readouterr().err, "reports", "symlink")
    assert sorted(p.name for p in out.iterdir()) == before  # nothing was deleted
    assert (elsewhere / "precious.txt").read_text() == "keep me"


def test_report_md_carries_no_raw_html_from_run_files(tmp_path):
    import dataclasses

    from ffterm.app.demo import demo_snapshots
    from ffterm_core.reports.markdown_page import MarkdownPage
    from ffterm_core.reports.run_report import write_report
    from ffterm_core.store.history import RunHistory

    evil = "<script>alert(1)</script> & <svg onload=alert(2)>"
    snaps = [dataclasses.replace(s, run_name=evil) for s in demo_snapshots(epochs_per_stage=1, layers=2, n_units=20)]
    paths = write_report(snaps[-1], RunHistory.from_snapshots(snaps), tmp_path / "out")
    md = paths[2].read_text()
    assert "<script" not in md and "<svg" not in md
    assert md.startswith("# Run report — &lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;svg onload=alert(2)&gt;\n")
    page = MarkdownPage("suite")
    page.table(["setting"], [["ff-<img src=x onerror=alert(3)>"]], caption="labels <b>")
    page.paragraph("a label\x1b]0;x\x07")
    text = page.render()
    assert "<img" not in text and "<b>" not in text and "\x1b" not in text
    assert "| ff-&lt;img src=x onerror=alert(3)&gt; |" in text
