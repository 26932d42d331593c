"""Where a suite stands, run by run: state, epoch, accuracy and sparsity — what a suite view lists.

Read from the suite folder alone, so it serves a suite running in this process, in subprocesses, on
a cluster writing to a shared folder, or long finished. Finished runs are read from final.json; a
run in progress from the last evaluated snapshot at the end of its snapshots.jsonl (only the tail is
read, so a refresh stays cheap however long the run).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ffterm_core.store import rundir
from ffterm_core.suites.runner import suite_runs

TAIL_BYTES = 256 * 1024  # enough for the last evaluated snapshot of a 3-layer run


@dataclass(frozen=True)
class RunStatus:
    dir: str
    path: Path
    setting: str
    seed: int
    state: str  # queued, running, stopped, done, failed
    epoch: int | None
    total_epochs: int | None
    accuracy: float | None
    sparsity: list[float | None]
    error: str | None
    final_mtime: float | None = None  # of final.json: a finished run is read again only when it changes


def suite_status(suite_dir: Path, previous: Sequence[RunStatus] = ()) -> list[RunStatus]:
    """Every run of the suite in the plan's order; finished runs in `previous` are not read again."""
    known = {p.dir: p for p in previous if p.state == "done" and p.final_mtime is not None}
    return [_status(r, known.get(r["dir"])) for r in suite_runs(suite_dir)]


def _status(r: dict[str, Any], known: RunStatus | None) -> RunStatus:
    path: Path = r["path"]
    try:
        mtime: float | None = (path / rundir.FINAL).stat().st_mtime
    except OSError:
        mtime = None
    if known is not None and mtime == known.final_mtime and r["state"] == "done":
        return known
    final = rundir.read_final_if_any(path) if mtime is not None else None
    if final is not None:
        layers = final.get("layers") or []
        return RunStatus(
            r["dir"], path, r["setting"], r["seed"], r["state"], final.get("epochs_done"), final.get("epochs_done"),
            final.get("test_accuracy"), [layer.get("sparsity") for layer in layers], r["error"], mtime,
        )  # fmt: skip
    last, evaluated = _last_snapshots(path)
    return RunStatus(
        r["dir"], path, r["setting"], r["seed"], r["state"],
        last.get("epoch") if last else None, last.get("total_epochs") if last else None,
        evaluated.get("test_accuracy") if evaluated else None,
        [layer.get("sparsity") for layer in (evaluated.get("layers") or [])] if evaluated else [],
        r["error"],
    )  # fmt: skip


def _last_snapshots(path: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the last live snapshot, the last evaluated one) among the file's final lines."""
    try:
        with open(path / rundir.SNAPSHOTS, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - TAIL_BYTES))
            tail = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return None, None
    last = evaluated = None
    for line in reversed(tail.splitlines()[1 if size > TAIL_BYTES else 0 :]):  # the first may be cut
        try:
            snap = json.loads(line)
        except ValueError:
            continue
        if not isinstance(snap, dict) or snap.get("kind") != "live":
            continue
        last = last or snap
        if snap.get("test_accuracy") is not None:
            evaluated = snap
            break
    return last, evaluated
