"""Running a suite: its folder, which runs are left, and the executors that train them.

The suite folder holds `suite.json` (the plan: every run's folder, setting, seed and tables) and one
run directory per run, `SETTING/seed-N/`, each prepared with its config.yaml before anything trains.
Running a suite again skips what is done, resumes what has a checkpoint and retries what failed, so
an interrupted suite continues where it stopped. Executors:

- `InProcessExecutor`: one run after the other in this process;
- `ProcessPoolExecutor`: J runs at once as subprocesses, spread over the GPUs (CUDA_VISIBLE_DEVICES,
  several runs per GPU allowed), or on the CPU;
- `ffterm_core.suites.ray_backend.RayExecutor`: each run a task on a Ray cluster.

Work is handed to an executor in units. A unit is one run, or with `run_suite(..., batched=True)` all
the runs of one setting not yet done (same settings but the seed), for an executor that trains a
setting's seeds together in one call; it must leave each run's ordinary run directory behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from ffterm_core.config import dump_yaml, to_dict
from ffterm_core.store import rundir
from ffterm_core.store.rundir import FAILED
from ffterm_core.suites.plan import PLAN, read_plan
from ffterm_core.suites.pooling import POOLABLE_KEYS
from ffterm_core.suites.spec import PlannedRun, Suite, SuiteError
from ffterm_core.suites.worker import Watch, failure, run_state, run_unit, run_unit_batched

Log = Callable[[str], None]


@dataclass(frozen=True)
class Unit:
    """Runs handed to one executor call, with their directories."""

    runs: tuple[PlannedRun, ...]
    dirs: tuple[Path, ...]


class Executor(Protocol):
    def run(self, units: list[Unit], probe_layer: int | None, done: Callable[[Unit, list[str]], None]) -> None:
        """Run every unit; call `done(unit, states)` as each finishes. KeyboardInterrupt: stop with checkpoints."""


# ---- the suite folder ------------------------------------------------------------------------
def prepare(suite: Suite, suite_dir: Path) -> list[Unit]:
    """Write the plan and each run's config.yaml; refuse a folder whose runs have other settings."""
    suite_dir = Path(suite_dir)
    old = read_plan(suite_dir)
    for run in suite.runs:
        _check_existing(suite_dir / run.rel_dir, run)
    plan = {
        "id": old.get("id") if old else uuid.uuid4().hex,
        "name": suite.name,
        "description": suite.description,
        "source": suite.source,
        "probe_layer": suite.probe_layer,
        "runs": [
            {
                "dir": r.rel_dir,
                "setting": r.setting,
                "seed": r.seed,
                "tables": list(r.tables),
                "needs_probes": r.needs_probes,
            }
            for r in suite.runs
        ],
    }
    rundir.write_json(suite_dir / PLAN, plan)
    for run in suite.runs:
        d = suite_dir / run.rel_dir
        if not (d / rundir.CHECKPOINT).exists() and not rundir.is_finished(d):
            rundir.atomic_write_text(d / rundir.CONFIG, dump_yaml(run.config))
    return [Unit((r,), (suite_dir / r.rel_dir,)) for r in suite.runs]


def _check_existing(run_dir: Path, run: PlannedRun) -> None:
    """A run directory already there must hold the same setting (a changed suite file needs a new folder)."""
    cfg_path = run_dir / rundir.CONFIG
    if not cfg_path.exists() or not ((run_dir / rundir.CHECKPOINT).exists() or rundir.is_finished(run_dir)):
        return
    try:
        stored = yaml.safe_load(cfg_path.read_text()) or {}
    except yaml.YAMLError:
        raise SuiteError(f"{cfg_path}: unreadable; remove {run_dir} to train this run again") from None
    planned = to_dict(run.config)
    differ = sorted(k for k in planned if k not in POOLABLE_KEYS and stored.get(k) != planned[k])
    if differ:
        changes = ", ".join(f"{k}: {stored.get(k)!r} → {planned[k]!r}" for k in differ[:3])
        raise SuiteError(f"{run_dir} holds a run with other settings ({changes}); use another --out or remove it")


def work_units(units: list[Unit], batched: bool = False) -> list[Unit]:
    """The units to hand out: one per run, or with `batched` one per setting (its seeds together)."""
    if not batched:
        return units
    groups: dict[str, list[Unit]] = {}
    for u in units:
        groups.setdefault(u.runs[0].setting, []).append(u)
    return [Unit(tuple(r for u in us for r in u.runs), tuple(d for u in us for d in u.dirs)) for us in groups.values()]


def pending(units: list[Unit]) -> list[Unit]:
    """The single-run units whose run is not done."""
    return [u for u in units if run_state(u.dirs[0], u.runs[0].needs_probes) != "done"]


# ---- executors ---------------------------------------------------------------------------------
class InProcessExecutor:
    """One unit after the other, in this process; `watch` shows each run's progress."""

    def __init__(self, watch: Watch | None = None) -> None:
        self.watch = watch

    def run(self, units: list[Unit], probe_layer: int | None, done: Callable[[Unit, list[str]], None]) -> None:
        for unit in units:
            needs = [r.needs_probes for r in unit.runs]
            done(unit, run_unit(list(unit.dirs), probe_layer=probe_layer, needs_probes=needs, watch=self.watch))


class BatchedExecutor:
    """One unit after the other, in this process, each setting's seeds trained as one batched model."""

    def __init__(self, log: Log = print) -> None:
        self.log = log

    def run(self, units: list[Unit], probe_layer: int | None, done: Callable[[Unit, list[str]], None]) -> None:
        for unit in units:
            needs = [r.needs_probes for r in unit.runs]
            done(unit, run_unit_batched(list(unit.dirs), probe_layer=probe_layer, needs_probes=needs, log=self.log))


def visible_gpus() -> list[str]:
    """The GPUs runs may use: CUDA_VISIBLE_DEVICES if set, else every device torch sees."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


class ProcessPoolExecutor:
    """`jobs` units at once, each a `python -m ffterm_core.suites.worker` subprocess; slot i uses GPU i mod #GPUs."""

    def __init__(self, jobs: int, gpus: list[str] | None = None) -> None:
        self.jobs = jobs
        self.gpus = visible_gpus() if gpus is None else gpus
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

    def command(self, unit: Unit, probe_layer: int | None) -> list[str]:
        cmd = [sys.executable, "-m", "ffterm_core.suites.worker", *map(str, unit.dirs)]
        cmd += ["--probes", ",".join("1" if r.needs_probes else "0" for r in unit.runs)]
        return cmd + (["--probe-layer", str(probe_layer)] if probe_layer else [])

    def env(self, slot: int) -> dict[str, str]:
        env = dict(os.environ)
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = self.gpus[slot % len(self.gpus)]
        if self.jobs > 1:  # runs sharing the CPU: do not each start a thread per core
            env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // self.jobs)))
        return env

    def run(self, units: list[Unit], probe_layer: int | None, done: Callable[[Unit, list[str]], None]) -> None:
        slots = list(range(self.jobs))
        slot_lock = threading.Lock()

        def one(unit: Unit) -> None:
            with slot_lock:
                slot = slots.pop(0)
            try:
                log_path = unit.dirs[0] / "worker.log"
                with open(log_path, "ab") as log:
                    proc = subprocess.Popen(self.command(unit, probe_layer), env=self.env(slot), stdout=log, stderr=log)
                    with self._lock:
                        self._procs.add(proc)
                    proc.wait()
                    with self._lock:
                        self._procs.discard(proc)
                if proc.returncode == 130:  # stopped by Ctrl-C with a checkpoint: not finished, nothing to report
                    return
                states = [run_state(d, r.needs_probes) for r, d in zip(unit.runs, unit.dirs)]
                if proc.returncode not in (0, 1):  # the worker itself died (killed, out of memory)
                    reason = f"the worker process exited with status {proc.returncode}; see {log_path}"
                    states = [_record_crash(d, reason) if s != "done" else s for s, d in zip(states, unit.dirs)]
                done(unit, states)
            finally:
                with slot_lock:
                    slots.append(slot)

        with ThreadPoolExecutor(self.jobs) as pool:
            futures = [pool.submit(one, u) for u in units]
            try:
                for f in futures:
                    f.result()
            except KeyboardInterrupt:
                for f in futures:
                    f.cancel()
                self._wait_children()
                raise

    def _wait_children(self) -> None:
        """Ctrl-C reached the workers too (same process group): let them save their checkpoints."""
        with self._lock:
            procs = list(self._procs)
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()


def _record_crash(run_dir: Path, reason: str) -> str:
    if failure(run_dir) is None:
        rundir.write_json(run_dir / FAILED, {"error": reason})
    return "failed"


# ---- driving a suite ------------------------------------------------------------------------------
def run_suite(
    suite: Suite,
    suite_dir: Path,
    executor: Executor | None = None,
    *,
    batched: bool = False,
    log: Log = print,
) -> dict[str, int]:
    """Run what is left of `suite` in `suite_dir`; returns the count of runs per state at the end."""
    units = prepare(suite, suite_dir)
    todo = work_units(pending(units), batched)
    total = len(suite.runs)
    finished = total - sum(len(u.runs) for u in todo)
    if finished:
        log(f"{finished} of {total} runs finished earlier")
    counter = {"n": finished}
    lock = threading.Lock()  # executors may report from several threads

    def done(unit: Unit, states: list[str]) -> None:
        for run, d, state in zip(unit.runs, unit.dirs, states):
            detail = _result_line(d) if state == "done" else (failure(d) or state)
            with lock:
                counter["n"] += 1
                log(f"[{counter['n']}/{total}] {run.setting} seed {run.seed}: {state} {detail}".rstrip())

    if todo:
        (executor or InProcessExecutor()).run(todo, suite.probe_layer, done)
    return count_states(units)


def count_states(units: list[Unit]) -> dict[str, int]:
    out: dict[str, int] = {}
    for u in units:
        for r, d in zip(u.runs, u.dirs):
            s = run_state(d, r.needs_probes)
            out[s] = out.get(s, 0) + 1
    return out


def _result_line(run_dir: Path) -> str:
    final = rundir.read_final_if_any(run_dir)
    if final is None:
        return ""
    acc = final.get("test_accuracy")
    return f"(test accuracy {acc:.4f}, {final.get('wall_seconds', 0):.0f} s)" if isinstance(acc, (int, float)) else ""


def suite_runs(suite_dir: Path) -> list[dict[str, Any]]:
    """The plan's runs with their directory (absolute) and current state, for summaries and watchers."""
    plan = read_plan(suite_dir)
    if plan is None:
        raise SuiteError(
            f"{suite_dir}: not a suite folder (no {PLAN}); run `ffterm suite NAME --out {suite_dir}` first"
        )
    out = []
    for r in plan["runs"]:
        d = Path(suite_dir) / r["dir"]
        out.append({**r, "path": d, "state": run_state(d, r.get("needs_probes", False)), "error": failure(d)})
    return out
