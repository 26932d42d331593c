"""Runs the app shows, and how their snapshots reach the UI thread.

A RunFeed is one run: its RunHistory plus where its snapshots come from — a live Session
(subscribed; the callback runs on the training thread), a run directory being followed (a plain
thread tailing snapshots.jsonl, stopped by an Event, as toolong does), or a fixed list.
Producer threads only append to a deque and post a `SnapshotsReady` message, which coalesces
(`can_replace`) so a burst of snapshots costs the UI one wake-up; the UI drains the deque into
the history. Producers never wait for the UI.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual.message import Message

from ffterm_core.store.history import RunHistory
from ffterm_core.store.rundir import follow_snapshots
from ffterm_core.store.snapshot import Snapshot

from .colors import color_of

DRAIN_BATCH = 300  # snapshots taken in per UI turn (~0.2 ms each): opening a long run never holds the keys


class SnapshotsReady(Message):
    """Posted (from any thread) when a feed has snapshots waiting."""

    def __init__(self, feed_id: int) -> None:
        super().__init__()
        self.feed_id = feed_id

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotsReady) and message.feed_id == self.feed_id


class RunFeed:
    _next_id = 0

    def __init__(self, name: str, run_dir: Path | None = None, session: Any = None) -> None:
        RunFeed._next_id += 1
        self.id = RunFeed._next_id
        self.name = name
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.session = session
        self.history = RunHistory()
        self.color = color_of(self.id - 1)  # the controller recolours it by position
        self.watching = False
        self.follow_error: str | None = None  # why following the run directory stopped, if it did
        self.notices: deque[str] = deque(maxlen=20)  # bad snapshot lines skipped (file:line: why), not yet shown
        self.last_arrival: float | None = None  # time.monotonic() of the last snapshot
        self._queue: deque[Snapshot] = deque()
        self._target: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- sources ----------------------------------------------------------------------------
    @classmethod
    def from_snapshots(cls, name: str, snapshots: Iterable[Snapshot], run_dir: Path | None = None) -> RunFeed:
        feed = cls(name, run_dir)
        for snap in snapshots:
            feed.history.add(snap)
        return feed

    def attach_session(self, target: Any) -> None:
        """Subscribe to the session; its snapshots are posted to `target` (the app)."""
        self._target = target
        self.session.subscribe(self._on_snapshot)
        if hasattr(self.session, "subscribe_notices"):
            self.session.subscribe_notices(self._on_notice)

    def follow(self, target: Any) -> None:
        """Tail RUN_DIR/snapshots.jsonl on a plain daemon thread until close()."""
        assert self.run_dir is not None
        self._target = target
        self.watching = True
        self._thread = threading.Thread(
            target=self._follow_loop, args=(self.run_dir,), name=f"follow-{self.name}", daemon=True
        )
        self._thread.start()

    def _follow_loop(self, run_dir: Path) -> None:
        try:
            for snap in follow_snapshots(run_dir, self._stop, poll_s=0.25, on_bad=self._on_notice):
                self._on_snapshot(snap)
        except Exception as exc:  # a vanished directory must not kill the app
            self.follow_error = str(exc) or type(exc).__name__
            self._target.post_message(SnapshotsReady(self.id))

    def _on_notice(self, line: str) -> None:
        """A bad line was skipped (producer thread); the UI shows it and following goes on."""
        self.notices.append(line)
        if self._target is not None:
            self._target.post_message(SnapshotsReady(self.id))

    def _on_snapshot(self, snap: Snapshot) -> None:
        """Runs on the producer thread: must return at once."""
        self._queue.append(snap)
        if self._target is not None:
            self._target.post_message(SnapshotsReady(self.id))

    # ---- UI side ----------------------------------------------------------------------------
    def drain(self, limit: int = DRAIN_BATCH) -> int:
        """Move up to `limit` waiting snapshots into the history (UI thread). Return how many arrived."""
        n = 0
        while self._queue and n < limit:
            self.history.add(self._queue.popleft())
            n += 1
        if n:
            self.last_arrival = time.monotonic()
        return n

    @property
    def waiting(self) -> bool:
        """Whether snapshots still wait for `drain` (a large run being opened)."""
        return bool(self._queue)

    @property
    def live(self) -> bool:
        return self.session is not None

    @property
    def state(self) -> str:
        if self.session is not None:
            state = getattr(self.session, "state", None)
            if state:
                return str(state)
        return self.history.state

    @property
    def error(self) -> str | None:
        if self.session is not None and getattr(self.session, "error", None):
            return str(self.session.error)
        if self.history.state == "failed":
            return self.history.message or "the run failed"
        return None

    @property
    def active(self) -> bool:
        """A live session that has not ended."""
        return self.session is not None and self.state in ("starting", "running", "paused", "stopping")

    def close(self, timeout: float = 0.0) -> None:
        """Stop following; for a live session, ask it to stop and wait up to `timeout` s."""
        self._stop.set()
        if getattr(self.session, "detached", False):
            self.session.detach()  # it trains in its own process and goes on without us
            return
        if self.session is not None and self.active:
            self.session.stop()
        if self.session is not None and timeout:
            self.session.join(timeout)
        if self._thread is not None and timeout:
            self._thread.join(min(timeout, 2.0))
