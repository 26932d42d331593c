"""Detached training: a run in its own process, which outlives the terminal that started it.

`start_detached` spawns `python -m ffterm_core.running.detached` in a new session (no controlling
terminal, so a hang-up, a closed SSH connection or tmux pane never reaches it) with its output
in RUN_DIR/train.log. That process hosts an ordinary Session, owns the run directory's lock and
serves the control socket (`control.py`); the starter gets a `RemoteSession` with the Session's
interface. The child reports over a pipe whether the run could start (one JSON line), so a bad
run directory or config is the starter's one-line error, not a silent log entry.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ffterm_core.config import RunConfig, from_dict, to_dict
from ffterm_core.store.rundir import TRAIN_LOG, RunDirError


class DetachError(RunDirError):
    """The detached training process could not start the run; its one-line reason."""


def start_detached(
    cfg: RunConfig | None,
    run_dir: Path,
    *,
    force: bool = False,
    resume: bool = False,
    previous: bool = False,
    device: str | None = None,
    timeout: float = 120.0,
) -> Any:
    """Start (or, with `resume`, continue) a run in a detached process; its RemoteSession."""
    from ffterm_core.running.remote import RemoteSession

    cmd = [sys.executable, "-m", "ffterm_core.running.detached", str(Path(run_dir).absolute())]
    if resume:
        cmd += ["--resume"] + (["--previous"] if previous else []) + (["--device", device] if device else [])
    else:
        assert cfg is not None
        cmd += ["--config", json.dumps(to_dict(cfg))] + (["--force"] if force else [])
    read_fd, write_fd = os.pipe()
    try:
        cmd += ["--status-fd", str(write_fd)]
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(write_fd,),
            start_new_session=True,
        )
    finally:
        os.close(write_fd)
    with os.fdopen(read_fd, "rb") as status:
        line = _read_line(status, timeout)
    try:
        reply = json.loads(line)
    except ValueError:
        proc.poll()
        raise DetachError(
            f"{run_dir}: the training process ended before starting the run (exit status {proc.returncode}); "
            f"see {Path(run_dir) / TRAIN_LOG} if it exists"
        ) from None
    if "error" in reply:
        raise DetachError(str(reply["error"]))
    return RemoteSession(run_dir, process=proc)


def _read_line(stream: Any, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([stream], [], [], left)[0]:
            break
        chunk = os.read(stream.fileno(), 4096)
        if not chunk:
            break
        data += chunk
    return data


# ---- the detached process ----------------------------------------------------------------------
def _log_progress(snap: Any) -> None:
    """One plain line per state change and evaluated epoch into train.log (stdout)."""
    if snap.kind == "state":
        text = f"{snap.state}" + (f": {snap.message}" if snap.message else "")
    elif snap.evaluated:
        text = f"epoch {snap.epoch}/{snap.total_epochs}  test accuracy {snap.test_accuracy:.4f}"
    else:
        return
    print(time.strftime("%Y-%m-%d %H:%M:%S"), text, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ffterm_core.running.detached", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--config", help="the run's settings as JSON (a new run)")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--previous", action="store_true")
    parser.add_argument("--device")
    parser.add_argument("--status-fd", type=int, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # belt and braces: no terminal should reach us anyway
    status = os.fdopen(args.status_fd, "w")

    from ffterm_core.running.control import ControlServer, socket_path
    from ffterm_core.training.session import Session

    try:
        if args.resume:
            session = Session.resume_from(args.run_dir, device=args.device, previous=args.previous)
        else:
            session = Session(from_dict(json.loads(args.config)), args.run_dir, force=args.force)
        log = open(args.run_dir / TRAIN_LOG, "a", encoding="utf-8")  # noqa: SIM115 (lives as long as we do)
        server = ControlServer(session, socket_path(args.run_dir))
        server.start()
        what = f"resume {args.run_dir}" if args.resume else f"run {session.config.name}"
        session.record_owner(control=str(server.path), detached=True, command=f"ffterm {what} (detached)")
    except Exception as exc:  # ConfigError, RunDirError, CheckpointError, DeviceError, OSError…
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        status.write(json.dumps({"error": text}) + "\n")
        status.close()
        return 2
    os.dup2(log.fileno(), sys.stdout.fileno())
    os.dup2(log.fileno(), sys.stderr.fileno())
    session.subscribe(_log_progress)
    session.subscribe_notices(lambda line: print("note:", line, flush=True))
    signal.signal(signal.SIGTERM, lambda *_: session.stop())  # `kill PID` stops with a checkpoint
    session.start()
    try:
        status.write(json.dumps({"ok": True, "pid": os.getpid()}) + "\n")
        status.close()
    except OSError:  # the starter is gone already (hung up while we started): train on regardless
        pass
    try:
        while session.alive:
            session.join(0.5)
    finally:
        server.close()
    return {"finished": 0, "stopped": 130}.get(session.state, 1)


if __name__ == "__main__":
    sys.exit(main())
