"""RemoteSession: a run training in another process, driven with the Session interface.

Snapshots come from following RUN_DIR/snapshots.jsonl (what every run writes); commands go over
the run's control socket (`control.py`); the run is over when its directory's lock is free. The
app and the CLI use it exactly as an in-process Session: subscribe, start, pause, resume, stop,
request_checkpoint, request_snapshot, join, alive, state, error, final.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ffterm_core.running.control import ControlError, send
from ffterm_core.store import rundir
from ffterm_core.store.lock import read_holder
from ffterm_core.store.snapshot import Snapshot

Subscriber = Callable[[Snapshot], None]
NoticeHandler = Callable[[str], None]
_STATUS_TTL_S = 0.3  # how long a status reply is reused (the app asks on every redraw)


class RemoteSession:
    detached = True  # the run goes on when whoever drives this session goes away

    def __init__(self, run_dir: Path, *, process: Any = None, poll_s: float = 0.25) -> None:
        self.run_dir = Path(run_dir)
        self.config = rundir.read_config(self.run_dir)
        holder = read_holder(self.run_dir)
        if holder is None:
            raise ControlError(f"{self.run_dir}: nothing is training there now; open it with `ffterm watch`")
        if not holder.get("control"):
            raise ControlError(
                f"{self.run_dir}: trained by {holder.get('command', '?')} (pid {holder.get('pid', '?')}), "
                "which takes no commands; `ffterm watch` follows it"
            )
        self.pid = holder.get("pid")
        self._socket = Path(holder["control"])
        self._process = process  # the Popen of a run this process started (reaped when it ends)
        self._poll_s = poll_s
        self._subscribers: list[Subscriber] = []
        self._notice_handlers: list[NoticeHandler] = []
        self._stop_following = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._status: dict[str, Any] = {}
        self._status_at = 0.0
        self._last_state = "starting"
        self.error: str | None = None
        self.final: dict[str, Any] | None = None

    # ---- the Session interface -------------------------------------------------------------
    def subscribe(self, fn: Subscriber) -> None:
        self._subscribers.append(fn)

    def subscribe_notices(self, fn: NoticeHandler) -> None:
        """`fn(line)` for each bad snapshot line skipped while following."""
        self._notice_handlers.append(fn)

    def start(self) -> None:
        """Start following the run (the training itself is already going)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._follow, name=f"remote-{self.run_dir.name}", daemon=True)
            self._thread.start()

    def pause(self) -> None:
        self._command("pause")

    def resume(self) -> None:
        self._command("resume")

    def stop(self) -> None:
        self._command("stop")

    def request_checkpoint(self) -> None:
        self._command("checkpoint")

    def request_snapshot(self) -> None:
        self._command("snapshot")

    def join(self, timeout: float | None = None) -> None:
        """Wait until the training process has let go of the run directory."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ended():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            self._done.wait(min(self._poll_s, left) if left is not None else self._poll_s)

    @property
    def alive(self) -> bool:
        return not self._ended()

    @property
    def paused(self) -> bool:
        return self.state == "paused"

    @property
    def state(self) -> str:
        if self._ended():
            return self._last_state
        if time.monotonic() - self._status_at > _STATUS_TTL_S:
            try:
                self._status = send(self._socket, "status", timeout=1.0)
            except ControlError:
                return self._last_state  # ending right now
            self._status_at = time.monotonic()
        return str(self._status.get("state", self._last_state))

    def detach(self) -> None:
        """Stop following; the run goes on."""
        self._stop_following.set()

    # ---- internals ------------------------------------------------------------------------------
    def _command(self, cmd: str) -> dict[str, Any]:
        reply = send(self._socket, cmd)
        self._status, self._status_at = reply, time.monotonic()
        return reply

    def _ended(self) -> bool:
        if self._done.is_set():
            return True
        holder = read_holder(self.run_dir)
        if holder is not None and holder.get("pid") == self.pid:
            return False
        self._conclude()
        return True

    def _conclude(self) -> None:
        """The process is gone: settle state, error and final from what it left."""
        if self._process is not None:
            self._process.poll()
        final_path = self.run_dir / rundir.FINAL
        snaps = rundir.read_snapshots(self.run_dir, on_bad=None)  # the follower reported bad lines
        last = next((s for s in reversed(snaps) if s.kind == "state"), None)
        if final_path.exists():
            try:
                self.final = rundir.read_final(self.run_dir)
                self._last_state = "finished"
            except rundir.RunDirError as exc:
                self._last_state = "failed"
                self.error = str(exc)
        elif last is not None and last.state in ("stopped", "failed"):
            self._last_state = last.state
            self.error = last.message if last.state == "failed" else None
        else:
            self._last_state = "failed"
            self.error = f"the training process ended without a word; see {self.run_dir / rundir.TRAIN_LOG}"
        self._done.set()

    def _follow(self) -> None:
        def on_bad(line: str) -> None:
            for fn in list(self._notice_handlers):
                fn(line)

        stop = threading.Event()
        watcher = threading.Thread(target=self._stop_when_over, args=(stop,), daemon=True)
        watcher.start()
        for snap in rundir.follow_snapshots(self.run_dir, stop, poll_s=self._poll_s, on_bad=on_bad):
            self._deliver(snap)

    def _stop_when_over(self, stop: threading.Event) -> None:
        while not self._stop_following.is_set() and not self._ended():
            self._done.wait(self._poll_s)
        time.sleep(2 * self._poll_s)  # let the follower read the last lines
        stop.set()

    def _deliver(self, snap: Snapshot) -> None:
        if not self._done.is_set():
            self._last_state = snap.state
        for fn in list(self._subscribers):
            fn(snap)
