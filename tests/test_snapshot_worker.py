"""The snapshot worker: jobs in order, drained before what needs them, errors raised on the training thread;
a run records the same numbers with live snapshots computed on it as on the training thread."""

from __future__ import annotations

import json
import threading

import pytest
import torch

import ffterm_core.training.session as session_module
from ffterm_core.store import rundir
from ffterm_core.store.checkpoint import load_checkpoint
from ffterm_core.store.presets import load_preset
from ffterm_core.training.session import Session
from ffterm_core.training.snapshot_worker import SnapshotWorker

CPU = torch.device("cpu")
# what depends on the clock, not on the seed
TIMING = {"wall_time", "samples_per_s", "eta_s", "wall_seconds", "gpu"}


def test_jobs_run_in_order_on_one_thread_and_drain_waits_for_all():
    worker = SnapshotWorker(CPU, depth=1)
    gate = threading.Event()
    done: list[tuple[int, str]] = []
    worker.submit(gate.wait)  # the worker is busy: the job below waits behind it
    for i in range(5):
        worker.submit(lambda i=i: done.append((i, threading.current_thread().name)))
        gate.set()  # the next job can be handed over only once the worker has taken this one
    worker.drain()
    assert [i for i, _ in done] == [0, 1, 2, 3, 4]
    assert {name for _, name in done} == {"ffterm-snapshots"}
    worker.close()


def test_an_error_reaches_the_caller_and_the_jobs_after_it_are_dropped():
    worker = SnapshotWorker(CPU, depth=3)
    gate = threading.Event()
    done: list[int] = []

    def fail() -> None:
        raise ValueError("analysis broke")

    worker.submit(gate.wait)  # nothing fails before all three are handed over
    worker.submit(lambda: done.append(1))
    worker.submit(fail)
    worker.submit(lambda: done.append(3))
    gate.set()
    with pytest.raises(ValueError, match="analysis broke"):
        worker.drain()
    with pytest.raises(ValueError, match="analysis broke"):
        worker.submit(lambda: done.append(4))  # nothing more is taken
    worker.close()
    assert done == [1]


def test_in_the_foreground_a_job_runs_at_once():
    worker = SnapshotWorker(CPU, background=False)
    done: list[int] = []
    worker.submit(lambda: done.append(1))
    assert done == [1]
    worker.close()


def _without_timing(record):
    if isinstance(record, dict):
        return {k: _without_timing(v) for k, v in record.items() if k not in TIMING}
    if isinstance(record, list):
        return [_without_timing(v) for v in record]
    return record


def _run(tmp_path, name, background):
    cfg = load_preset("quick-ff-synthetic", {"eval_every": 2, "analysis_samples": 200, "final_pvalues": False})
    s = Session(cfg, tmp_path / name, background_snapshots=background)
    s.start()
    s.join(300)  # a ceiling: it returns when the run ends
    assert s.state == "finished", s.error
    lines = (tmp_path / name / rundir.SNAPSHOTS).read_text().splitlines()
    final = json.loads((tmp_path / name / rundir.FINAL).read_text())
    return [_without_timing(json.loads(x)) for x in lines], _without_timing(final)


def test_snapshots_on_the_worker_record_the_numbers_of_snapshots_on_the_training_thread(tmp_path):
    lines, final = _run(tmp_path, "worker", True)
    inline_lines, inline_final = _run(tmp_path, "inline", False)
    assert [x["epoch"] for x in lines if x["kind"] == "live"] == list(range(1, 31))  # in order, none skipped
    assert sum(x["test_accuracy"] is not None for x in lines) == 15  # every 2nd epoch but the last, and the final one
    assert lines == inline_lines
    assert final == inline_final


def test_a_stop_writes_every_snapshot_up_to_its_checkpoint_first(tmp_path):
    cfg = load_preset("quick-ff-synthetic", {"eval_every": 1, "analysis_samples": 200})
    s = Session(cfg, tmp_path / "s")
    s.subscribe(lambda snap: snap.kind == "live" and snap.epoch == 2 and s.stop())
    s.start()
    s.join(300)
    assert s.state == "stopped"
    stage, epoch, _ = load_checkpoint(tmp_path / "s" / rundir.CHECKPOINT)["trainer"]["position"]
    lines = rundir.read_snapshots(tmp_path / "s")
    assert [x.epoch for x in lines if x.kind == "live"] == list(range(1, stage * cfg.epochs + epoch + 1))
    assert all(x.test_accuracy is not None for x in lines if x.kind == "live")
    assert (lines[-1].kind, lines[-1].state) == ("state", "stopped")


def test_an_error_in_a_snapshot_fails_the_run_in_one_line_after_the_snapshots_before_it(tmp_path, monkeypatch):
    real = session_module.evaluate
    calls = {"n": 0}

    def breaks_at_the_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("the analysis ran out of memory\nmore detail")
        return real(*args, **kwargs)

    monkeypatch.setattr(session_module, "evaluate", breaks_at_the_third)
    cfg = load_preset("quick-ff-synthetic", {"eval_every": 1, "analysis_samples": 200})
    s = Session(cfg, tmp_path / "e")
    s.start()
    s.join(300)
    assert s.state == "failed"
    assert s.error is not None and "RuntimeError: the analysis ran out of memory" in s.error
    assert "\n" not in s.error
    assert "ran out of memory" in (tmp_path / "e" / rundir.ERROR_LOG).read_text()  # the traceback, kept
    lines = rundir.read_snapshots(tmp_path / "e")
    assert [x.epoch for x in lines if x.kind == "live"] == [1, 2]
    assert (lines[-1].kind, lines[-1].state) == ("state", "failed")
