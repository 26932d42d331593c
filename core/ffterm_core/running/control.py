"""The control socket of a detached run: commands for the training process from any terminal.

A Unix socket (RUN_DIR/control.sock, or a hashed name in the per-user runtime dir when that path
is too long for a socket address) speaking one JSON object per line each way:

    → {"cmd": "pause"}          ← {"ok": true, "state": "paused", ...}

Commands: status, pause, resume, stop, checkpoint, snapshot. Only the owner of the run can
connect: the socket file is mode 0600 and the peer's uid is checked (SO_PEERCRED) on Linux. Every
line gets a reply, a malformed one an error object; at most `MAX_CONNECTIONS` are served at once
(more are told so and closed) and a connection idle for `IDLE_S` is closed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import struct
import threading
from pathlib import Path
from typing import Any

from ffterm_core.store.lock import private_dir, registry_dir
from ffterm_core.store.rundir import CONTROL_SOCKET as SOCKET
from ffterm_core.store.rundir import RunDirError

COMMANDS = ("status", "pause", "resume", "stop", "checkpoint", "snapshot")
_MAX_REQUEST = 4096
MAX_CONNECTIONS = 16
IDLE_S = 300.0
_USAGE = 'expected one JSON object per line, e.g. {"cmd": "status"}'
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, 104 on macOS


class ControlError(RunDirError):
    """The training process of a run cannot be reached or refused a command; one line."""


def socket_path(run_dir: Path) -> Path:
    path = Path(run_dir).resolve() / SOCKET
    if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
        return path
    return registry_dir().parent / f"{hashlib.sha256(os.fsencode(path)).hexdigest()[:16]}.sock"


def _peer_uid(conn: socket.socket) -> int | None:
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    uid: int = struct.unpack("3i", creds)[1]  # struct ucred: pid, uid, gid
    return uid


class ControlServer:
    """Serves a session's commands on a Unix socket, one thread per connection."""

    def __init__(self, session: Any, path: Path) -> None:
        self.session = session
        self.path = Path(path)
        self._sock: socket.socket | None = None
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def start(self) -> None:
        if self.path.name != SOCKET:  # the hashed name in the runtime dir: that folder must be ours alone
            private_dir(self.path.parent)
        self.path.unlink(missing_ok=True)  # a socket left by a crash (we hold the run's lock)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # born 0600: no moment where another user could connect
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        sock.listen(64)
        self._sock = sock
        threading.Thread(target=self._accept_loop, name="ffterm-control", daemon=True).start()

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self.path.unlink(missing_ok=True)
            self._sock = None

    def _accept_loop(self) -> None:
        sock = self._sock
        while sock is not None:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            uid = _peer_uid(conn)
            if uid is not None and uid not in (os.getuid(), 0):
                conn.close()
                continue
            if not self._slots.acquire(blocking=False):
                with contextlib.suppress(OSError), conn:
                    conn.sendall(b'{"ok": false, "error": "too many connections; close one and retry"}\n')
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(IDLE_S)
            with conn, conn.makefile("rwb") as stream:
                while True:
                    line = stream.readline(_MAX_REQUEST)
                    if not line:
                        return
                    reply = self.handle(line)
                    stream.write(json.dumps(reply).encode() + b"\n")
                    stream.flush()
        except OSError:  # the peer went away, or stayed idle too long
            pass
        finally:
            self._slots.release()

    def handle(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except (ValueError, RecursionError):
            return {"ok": False, "error": _USAGE}
        cmd = request.get("cmd") if isinstance(request, dict) else None
        if not isinstance(cmd, str):
            return {"ok": False, "error": _USAGE}
        s = self.session
        actions = {
            "status": lambda: None,
            "pause": s.pause,
            "resume": s.resume,
            "stop": s.stop,
            "checkpoint": s.request_checkpoint,
            "snapshot": s.request_snapshot,
        }
        if cmd not in actions:
            return {"ok": False, "error": f"unknown command {cmd!r:.40}; one of {', '.join(COMMANDS)}"}
        actions[cmd]()
        return {"ok": True, "state": s.state, "error": s.error, "pid": os.getpid(), "run_dir": str(s.run_dir)}


def send(path: Path, cmd: str, timeout: float = 5.0) -> dict[str, Any]:
    """Send one command to a run's control socket; its reply, or ControlError."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(json.dumps({"cmd": cmd}).encode() + b"\n")
            with sock.makefile("rb") as stream:
                line = stream.readline(65536)
    except OSError as exc:
        raise ControlError(
            f"{path}: the training process does not answer ({exc.strerror or exc}); has it ended?"
        ) from None
    try:
        reply = json.loads(line)
    except ValueError:
        raise ControlError(f"{path}: the training process sent no valid reply") from None
    if not isinstance(reply, dict) or not reply.get("ok"):
        error = reply.get("error") if isinstance(reply, dict) else None
        raise ControlError(f"{path}: command {cmd!r} refused: {error}")
    return reply
