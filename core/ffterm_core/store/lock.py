"""Ownership of a run directory: one process at a time trains it.

The owner holds an exclusive `flock` on RUN_DIR/.lock and writes who it is there (pid, host,
command, and the control socket of a detached run). The kernel drops the lock when the owner
exits for any reason, crash and SIGKILL included, so a stale lock file never blocks anyone: a
lock file nobody holds is free. Every owner is also listed in a per-user registry
(`registry_dir()`), so `ffterm runs` can say what is training right now and where.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from ffterm_core.store.rundir import LOCK, RunDirError


class RunDirBusy(RunDirError):
    """Another live process owns the run directory."""


def registry_dir() -> Path:
    """Per-user folder of live-run entries (the runtime dir, e.g. /run/user/UID/ffterm/runs)."""
    override = os.environ.get("FFTERM_RUNTIME_DIR")
    if override:
        return Path(override) / "runs"
    try:
        import platformdirs  # imported here: a bare GPU box may lack it, and the engine must still run
    except ImportError:
        xdg = os.environ.get("XDG_RUNTIME_DIR", "").strip()
        return (Path(xdg) if xdg else Path(f"/tmp/runtime-{os.getuid()}")) / "ffterm" / "runs"
    with warnings.catch_warnings():  # without XDG_RUNTIME_DIR platformdirs falls back to /tmp/runtime-UID
        warnings.simplefilter("ignore")
        return Path(platformdirs.user_runtime_dir("ffterm")) / "runs"


def private_dir(path: Path) -> Path:
    """`path`, created 0700 if missing; OSError unless it is ours and closed to other users (a
    shared /tmp fallback could otherwise be prepared by someone else)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = path.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise PermissionError(f"{path} belongs to another user or others can write to it")
    return path


def _entry_path(run_dir: Path) -> Path:
    key = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:16]
    return registry_dir() / f"{key}.json"


def _describe(info: dict[str, Any]) -> str:
    host = info.get("host", "?")
    where = "" if host == socket.gethostname() else f" on {host}"
    return f"pid {info.get('pid', '?')}{where} ({info.get('command', '?')})"


def read_holder(run_dir: Path) -> dict[str, Any] | None:
    """Who owns `run_dir` now (the lock file's record), or None when nobody holds its lock."""
    path = Path(run_dir) / LOCK
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                info = json.loads(os.read(fd, 65536).decode("utf-8", "replace") or "{}")
            except (ValueError, RecursionError):
                info = {}
            return info if isinstance(info, dict) else {}
        return None
    finally:
        os.close(fd)


class RunLock:
    """The exclusive lock of one run directory, held from `acquire` until `release` (or exit)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self._fd: int | None = None
        self.info: dict[str, Any] = {}

    def acquire(self, **extra: Any) -> RunLock:
        """Take the lock or raise RunDirBusy naming the holder. `extra` is recorded (e.g. control=)."""
        path = self.run_dir / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunDirError(
                f"{self.run_dir}: cannot create its lock file ({exc.strerror}); choose a writable folder"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = read_holder(self.run_dir) or {}
            raise RunDirBusy(
                f"{self.run_dir}: in use by {_describe(holder)}; wait for it to end or stop it "
                f"(`ffterm attach {self.run_dir}`)"
            ) from None
        self._fd = fd
        self.update(**extra)
        return self

    def update(self, **extra: Any) -> None:
        """Rewrite the owner's record (and its registry entry) with `extra` added."""
        assert self._fd is not None, "update() needs the lock"
        self.info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv))[:300],
            "run_dir": str(self.run_dir.resolve()),
            "started": self.info.get("started", time.time()),
            **{k: v for k, v in self.info.items() if k not in ("pid", "host", "command", "run_dir", "started")},
            **extra,
        }
        data = json.dumps(self.info).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)
        with contextlib.suppress(OSError):  # the registry is a convenience: never fail a run over it
            entry = _entry_path(self.run_dir)
            private_dir(entry.parent.parent)
            private_dir(entry.parent)
            entry.write_text(json.dumps(self.info))

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            _entry_path(self.run_dir).unlink(missing_ok=True)
        os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing drops the flock
        self._fd = None


def live_runs() -> list[dict[str, Any]]:
    """The runs training now (registry entries whose lock is still held), oldest first.

    Entries left by a process that died (its lock is free) are removed on the way; entries and lock
    records are files anyone of this user may have edited: a `started` that is not a number sorts last.
    """
    out = []
    folder = registry_dir()
    for entry in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if not entry.is_file() or entry.is_symlink():
            continue  # not one we wrote: leave it alone
        try:
            info = json.loads(entry.read_text())
            run_dir = Path(info["run_dir"])
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            with contextlib.suppress(OSError):
                entry.unlink(missing_ok=True)
            continue
        holder = read_holder(run_dir)
        if holder is None or holder.get("pid") != info.get("pid"):
            with contextlib.suppress(OSError):
                entry.unlink(missing_ok=True)
            continue
        out.append(holder)
    return sorted(out, key=_started_key)


def _started_key(info: dict[str, Any]) -> float:
    started = info.get("started")
    if isinstance(started, bool) or not isinstance(started, (int, float)):
        return float("inf")
    return float(started)
