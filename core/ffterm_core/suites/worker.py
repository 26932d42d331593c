"""One unit of suite work, wherever it runs: in the driver, in a subprocess (`python -m
ffterm_core.suites.worker`), or in a Ray task.

A unit is a list of run directories prepared by the driver (each holding the run's config.yaml).
Each run is trained to its end (resumed from its checkpoint if it has one), then probed when its
tables need probes. A run that fails keeps the reason in `failed.json` in its directory and the
unit goes on with the next run. The state of a run is read back from its files (`run_state`).
"""

from __future__ import annotations

import argparse
import io
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from ffterm_core.config import ConfigError, from_dict, load_yaml_text
from ffterm_core.store import rundir
from ffterm_core.store.rundir import FAILED, PROBES


def run_state(run_dir: Path, needs_probes: bool = False) -> str:
    """queued (nothing trained), running/stopped (a checkpoint, not finished), done, or failed."""
    run_dir = Path(run_dir)
    if (run_dir / FAILED).exists():
        return "failed"
    if rundir.is_finished(run_dir) and (not needs_probes or (run_dir / PROBES).exists()):
        return "done"
    snaps = run_dir / rundir.SNAPSHOTS
    if snaps.exists() and time.time() - snaps.stat().st_mtime < 120:
        return "running"
    if (run_dir / rundir.CHECKPOINT).exists() or rundir.is_finished(run_dir):
        return "stopped"
    return "queued"


# shows one run's progress while it trains (the console's progress bar); given the run's Session
Watch = Callable[[Any], AbstractContextManager[Any]]


def run_one(
    run_dir: Path, *, probe_layer: int | None = None, needs_probes: bool = False, watch: Watch | None = None
) -> str:
    """Train (or resume) the run in `run_dir` to its end, then probe it if asked; returns its state.

    KeyboardInterrupt stops the run with a checkpoint and propagates (the suite stops there).
    """
    from ffterm_core.training.session import Session

    run_dir = Path(run_dir)
    (run_dir / FAILED).unlink(missing_ok=True)  # a run failed earlier is tried again
    cfg_text = (run_dir / rundir.CONFIG).read_text()
    try:
        if not rundir.is_finished(run_dir):
            if (run_dir / rundir.CHECKPOINT).exists():
                session = Session.resume_from(run_dir)
            else:
                session = Session(
                    from_dict(load_yaml_text(cfg_text, str(run_dir / rundir.CONFIG))), run_dir, force=True
                )
            with watch(session) if watch else nullcontext():
                session.start()
                try:
                    while session.alive:
                        session.join(0.5)
                except KeyboardInterrupt:
                    session.stop()
                    session.join()
                    raise
            if session.state != "finished":
                return _failed(run_dir, cfg_text, session.error or f"the run ended in state {session.state}")
        if needs_probes and not (run_dir / PROBES).exists():
            from ffterm_core.beyond.offline import probe_run

            probe_run(run_dir, layer=probe_layer, log=lambda _msg: None)
        return "done"
    except KeyboardInterrupt:
        raise
    except (ConfigError, ValueError, RuntimeError, OSError) as exc:
        return _failed(
            run_dir, cfg_text, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        )


def _failed(run_dir: Path, cfg_text: str, error: str) -> str:
    """Keep the reason in the run directory (which a run failing early may have removed)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / rundir.CONFIG).exists():
        rundir.atomic_write_text(run_dir / rundir.CONFIG, cfg_text)
    rundir.write_failure(run_dir, error, time.strftime("%Y-%m-%dT%H:%M:%S"))
    return "failed"


failure = rundir.read_failure  # the recorded reason a run failed, or None


def run_unit(
    run_dirs: list[Path], *, probe_layer: int | None, needs_probes: list[bool], watch: Watch | None = None
) -> list[str]:
    """Run a unit's runs one after the other (a batched executor trains them together instead)."""
    return [run_one(d, probe_layer=probe_layer, needs_probes=p, watch=watch) for d, p in zip(run_dirs, needs_probes)]


def run_unit_batched(
    run_dirs: list[Path], *, probe_layer: int | None, needs_probes: list[bool], log: Callable[[str], None] = print
) -> list[str]:
    """Train a unit's runs (one setting, several seeds) together as one batched model, then probe them.

    Falls back to one run after the other, with a line saying why, when the runs cannot share a model
    (e.g. some have checkpoints and others not) — nothing is lost either way.
    """
    from ffterm_core.training.batched import check_batchable, run_batched

    texts = [(Path(d) / rundir.CONFIG).read_text() for d in run_dirs]
    todo = [not rundir.is_finished(d) for d in run_dirs]
    dirs = [Path(d) for d, t in zip(run_dirs, todo) if t]
    resume = [(d / rundir.CHECKPOINT).exists() for d in dirs]
    try:
        configs = [
            from_dict(load_yaml_text(txt, str(Path(d) / rundir.CONFIG)))
            for d, txt, t in zip(run_dirs, texts, todo)
            if t
        ]
        if any(resume) and not all(resume):
            raise ConfigError("some of its seeds have checkpoints and some not")
        if dirs:
            check_batchable(configs)
    except ConfigError as exc:
        log(f"{run_dirs[0].parent.name}: not batched ({str(exc).splitlines()[0]}); training its runs one by one")
        return run_unit(run_dirs, probe_layer=probe_layer, needs_probes=needs_probes)
    sessions = iter(run_batched(configs, dirs, force=True, resume=all(resume)) if dirs else [])
    states = []
    for d, txt, t, probes in zip(run_dirs, texts, todo, needs_probes):
        session = next(sessions) if t else None
        if session is not None and session.state != "finished":
            states.append(_failed(Path(d), txt, session.error or f"the run ended in state {session.state}"))
        else:  # trained: run_one only probes it now
            states.append(run_one(Path(d), probe_layer=probe_layer, needs_probes=probes))
    return states


# ---- Ray: in place on a shared suite folder, or shipped to the task and back -------------------
def pack(run_dir: Path) -> bytes:
    """A run directory as tar bytes (what a Ray task without the shared folder works on)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(Path(run_dir).iterdir()):
            if path.is_file() and not path.name.startswith("."):
                tar.add(path, arcname=path.name)
    return buf.getvalue()


def unpack(data: bytes, run_dir: Path) -> None:
    """Replace the files of `run_dir` with those packed (the run as the task left it)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for path in run_dir.iterdir():
        if path.is_file():
            path.unlink()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(run_dir, filter="data")


def remote_unit(
    suite_dir: str,
    suite_id: str,
    rel_dirs: list[str],
    bundles: list[bytes],
    probe_layer: int | None,
    needs_probes: list[bool],
) -> dict[str, Any]:
    """The body of a Ray task. When the suite folder is visible here (a shared path, recognised by its
    id) the runs are written in place; otherwise they run in a temporary folder and come back packed."""
    from ffterm_core.suites.plan import read_suite_id

    shared = read_suite_id(Path(suite_dir)) == suite_id
    if shared:
        states = run_unit([Path(suite_dir) / r for r in rel_dirs], probe_layer=probe_layer, needs_probes=needs_probes)
        return {"states": states, "bundles": None}
    with tempfile.TemporaryDirectory(prefix="ffterm-suite-") as tmp:
        dirs = [Path(tmp) / r for r in rel_dirs]
        for d, data in zip(dirs, bundles):
            unpack(data, d)
        states = run_unit(dirs, probe_layer=probe_layer, needs_probes=needs_probes)
        return {"states": states, "bundles": [pack(d) for d in dirs]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ffterm_core.suites.worker", description=__doc__)
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--probe-layer", type=int)
    parser.add_argument("--probes", default="", help="comma-separated 0/1 per run dir: probe it after training")
    args = parser.parse_args(argv)
    flags = [f == "1" for f in args.probes.split(",")] if args.probes else [False] * len(args.run_dirs)
    try:
        states = run_unit(args.run_dirs, probe_layer=args.probe_layer, needs_probes=flags)
    except KeyboardInterrupt:
        return 130
    return 0 if all(s == "done" for s in states) else 1


if __name__ == "__main__":
    sys.exit(main())
