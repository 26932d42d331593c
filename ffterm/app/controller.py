"""RunController: the runs the app shows and their lifecycle, apart from any screen.

It owns the feeds (one per run: live, followed or fixed), which one is in focus, and the commands
on the live run. It touches no widget: what it needs from the app is the small `Host` interface
(Textual's App has it; the tests pass a plain object), and it says "the runs changed" by posting
`RunsChanged` to the host. Every method runs on the UI thread except where a docstring says so.

The interface, in short:
- runs: `feeds`, `primary` (the run in focus), `session_feed` (the live one), `focus(feed)`
- start or attach: `start(cfg)`, `attach(run_dir)`, `watch(run_dir)`, `open_run(run_dir)` (one the
  user picked), `add_run(name, snapshots)`, `load_preset(...)`, `is_long(cfg)` (a run worth
  confirming before it starts)
- read-only (what `ffterm serve` gives visitors): `may_change_runs()` says no, once per attempt;
  every command that starts or steers a run asks it first, and `open_run` takes runs under the
  run root only
- the live run: `pause()`, `resume()`, `toggle_pause()`, `stop()`, `checkpoint()`, `snapshot_now()`
  (sent to any object with the commands of ffterm_core.training.session.Session, see `RunSession`)
- snapshots in: `drain(feed_id)` when the host receives `SnapshotsReady`
- output and the end: `export()` (written on a worker thread; read-only visitors write nothing),
  `may_write()`, `out_dir()`, `quit()`, `shutdown(timeout)`, `farewell()`

Runs started here train in their own process by default (ffterm_core.running.detached): they outlive the
terminal, so quitting leaves them training and `farewell()` says where.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any, Literal, Protocol

from textual.message import Message

from ffterm_core.config import RunConfig
from ffterm_core.data.datasets import DATASETS
from ffterm_core.reports.common import report_dir
from ffterm_core.reports.run_report import write_report
from ffterm_core.store.rundir import new_run_dir
from ffterm_core.store.snapshot import Snapshot

from .colors import color_of
from .feeds import RunFeed, SnapshotsReady

Severity = Literal["information", "warning", "error"]


class Host(Protocol):
    """What the controller needs from the app."""

    def notify(
        self, message: str, *, title: str = "", severity: Severity = "information", timeout: float | None = None
    ) -> None: ...

    def post_message(self, message: Message) -> bool: ...  # any thread

    def call_from_thread(self, callback: Callable[..., Any], *args: Any) -> Any: ...

    def run_worker(self, work: Callable[[], Any], *, thread: bool, group: str, exclusive: bool) -> Any: ...

    def exit(self, result: int) -> None: ...


class RunSession(Protocol):
    """The commands a live run answers (ffterm_core.training.session.Session; the demo's DemoSession)."""

    run_dir: Path
    state: str
    error: Any

    def subscribe(self, fn: Callable[[Snapshot], None]) -> None: ...
    def start(self) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def stop(self) -> None: ...
    def request_checkpoint(self) -> None: ...
    def request_snapshot(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...


SessionFactory = Callable[[RunConfig, Path], Any]

READ_ONLY = "This server is read-only: visitors watch (`ffterm serve --allow-runs` lets them start runs)"
READ_ONLY_FILES = "This server is read-only: visitors write nothing (export and screenshots are for its owner)"
LONG_RUN_IMAGE_EPOCHS = 1_500_000  # beyond ~25 epochs of 60,000 images a run takes more than a few minutes


class RunsChanged(Message):
    """A run was added or its session created; `focus_changed`: the run in focus is another one."""

    def __init__(self, focus_changed: bool) -> None:
        super().__init__()
        self.focus_changed = focus_changed


def _engine_presets() -> Any:
    from ffterm_core.store import presets  # the engine's preset registry

    return presets


def image_epochs(cfg: RunConfig) -> int:
    """Images seen over the whole run: the dataset's training split, or `train_limit` of it."""
    info = DATASETS.get(cfg.dataset)
    size = info.train_size if info is not None else 60_000
    return cfg.total_epochs * min(cfg.train_limit or size, size)


def _detached(session: Any) -> bool:
    """Whether the session trains in its own process (it goes on when the app ends)."""
    return bool(getattr(session, "detached", False))


def _discard(session: Any) -> None:
    """Let go of a session that lost a start race: a detached one is stopped, an unstarted
    in-process one frees its run directory."""
    if _detached(session):
        session.stop()
    elif hasattr(session, "release"):
        session.release()


class RunController:
    def __init__(
        self,
        host: Host,
        *,
        presets: Any = None,
        session_factory: SessionFactory | None = None,
        run_root: Path = Path("runs"),
        out: Path | None = None,
        force: bool = False,
        read_only: bool = False,
    ) -> None:
        """presets: the preset registry (default ffterm_core.store.presets); session_factory(cfg, run_dir):
        makes a session (default: ffterm_core.running.detached.start_detached, a run in its own process);
        out: the run directory of the first run started (default: a fresh one under run_root),
        `force` letting it overwrite a run there; read_only: watch only."""
        self.host = host
        self.read_only = read_only
        self._presets = presets
        self.session_factory = session_factory
        self.run_root = Path(run_root)
        self._out = Path(out) if out is not None else None
        self._force = force
        self.feeds: list[RunFeed] = []
        self.primary: RunFeed | None = None
        self.last_config: RunConfig | None = None
        self.last_preset: str | None = None
        self.exported: list[Path] = []
        self.exporting: str | None = None  # what the export under way says it does
        self._quitting = False
        self._notified: set[tuple[int, str]] = set()
        self._start_generation = 0  # the newest start asked for; older ones still being created are dropped

    # ---- runs -----------------------------------------------------------------------------------
    @property
    def session_feed(self) -> RunFeed | None:
        """The most recent feed with a live session."""
        return next((f for f in reversed(self.feeds) if f.session is not None), None)

    def _add(self, feed: RunFeed, focus: bool = False) -> RunFeed:
        feed.color = color_of(len(self.feeds))  # by position: stable colours
        self.feeds.append(feed)
        focus = focus or self.primary is None
        if focus:
            self.primary = feed
        self.host.post_message(RunsChanged(focus_changed=focus))
        return feed

    def add_run(self, name: str, snapshots: Iterable[Snapshot]) -> RunFeed:
        """Show a run's snapshots as they are (nothing follows it)."""
        return self._add(RunFeed.from_snapshots(name, snapshots))

    def watch(self, run_dir: Path) -> RunFeed | None:
        """Follow a run directory started elsewhere as its snapshots.jsonl grows."""
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            self.host.notify(f"{run_dir}: not a directory", severity="error")
            return None
        feed = self._add(RunFeed(run_dir.name, run_dir))
        feed.follow(self.host)
        return feed

    def open_run(self, run_dir: Path) -> RunFeed | None:
        """Watch a run directory the user picked; read-only visitors pick under the run root only."""
        root = self.run_root.resolve()
        if self.read_only and not Path(run_dir).resolve().is_relative_to(root):
            self.host.notify(f"This server is read-only: visitors open runs under {root} only", severity="warning")
            return None
        return self.watch(run_dir)

    def focus(self, feed: RunFeed) -> None:
        """Show this run in the dashboard."""
        self.primary = feed
        self.host.post_message(RunsChanged(focus_changed=True))

    def may_change_runs(self) -> bool:
        """Whether runs may be started, steered or opened here; if not, say so."""
        if self.read_only:
            self.host.notify(READ_ONLY, severity="warning", timeout=8)
        return not self.read_only

    # ---- presets and starting -------------------------------------------------------------------
    @property
    def presets(self) -> Any:
        if self._presets is None:
            self._presets = _engine_presets()
        return self._presets

    def load_preset(self, name: str, overrides: dict[str, Any] | None = None) -> RunConfig | None:
        """The preset's config, or None after telling the user why not."""
        try:
            cfg = self.presets.load_preset(name, overrides or None)
        except (ValueError, OSError) as exc:  # PresetError, ConfigError
            self.host.notify(f"Cannot load preset {name}: {exc}", severity="error", timeout=10)
            return None
        self.last_preset = name
        return cfg

    def dialog_config(self) -> RunConfig:
        """What the run dialog starts from: the last run's config, else the default preset's."""
        if self.last_config is not None:
            return self.last_config
        try:
            return self.presets.load_preset(self.presets.DEFAULT_PRESET)
        except Exception:
            return RunConfig()

    @staticmethod
    def is_long(cfg: RunConfig) -> bool:
        """A run of more than a few minutes: worth a confirmation when one key or click starts it."""
        return image_epochs(cfg) > LONG_RUN_IMAGE_EPOCHS

    def start(self, cfg: RunConfig) -> None:
        """Start a run, stopping the live one first. The session is created on a worker thread
        (loading a dataset takes seconds); its feed appears, in focus, when it is ready. A start
        asked for while an earlier one is still being created wins: the earlier session is dropped."""
        if not self.may_change_runs():
            return
        current = self.session_feed
        if current is not None and current.active:
            current.session.stop()
            self.host.notify(f"Stopping {current.name} to start {cfg.name}")
        self.last_config = cfg
        self._start_generation += 1
        create = partial(self._create_session, cfg, self._start_generation)
        self.host.run_worker(create, thread=True, exclusive=False, group="session")

    def _create_session(self, cfg: RunConfig, generation: int) -> None:
        """On the worker thread."""
        try:
            run_dir, self._out = (self._out or new_run_dir(cfg.name, self.run_root)), None
            if self.session_factory is None:
                from ffterm_core.running.detached import start_detached

                session = start_detached(cfg, run_dir, force=self._force)
            else:
                session = self.session_factory(cfg, run_dir)
        except Exception as exc:
            self._tell_from_thread(f"Cannot start {cfg.name}: {exc}")
            return
        self.host.call_from_thread(self._session_created, session, cfg, generation)

    def attach(self, run_dir: Path) -> None:
        """Take control of a run training in its own process (through its control socket); the
        connection is made on a worker thread."""
        self.host.run_worker(partial(self._connect, Path(run_dir)), thread=True, exclusive=False, group="session")

    def _connect(self, run_dir: Path) -> None:
        """On the worker thread."""
        from ffterm_core.running.remote import RemoteSession

        try:
            session = RemoteSession(run_dir)
        except Exception as exc:  # ControlError, RunDirError: one line
            self._tell_from_thread(f"Cannot attach to {run_dir}: {exc}")
            return
        self.host.call_from_thread(self._session_created, session, session.config)

    def _tell_from_thread(self, message: str) -> None:
        self.host.call_from_thread(partial(self.host.notify, message, severity="error", timeout=12))

    def _session_created(self, session: Any, cfg: RunConfig, generation: int | None = None) -> None:
        """A session is ready (generation: of the start that asked for it; None: attached)."""
        if generation is not None and generation != self._start_generation:
            _discard(session)  # another start was asked for while this one was being created
            return
        feed = RunFeed(cfg.name, getattr(session, "run_dir", None), session)
        feed.attach_session(self.host)
        self._add(feed, focus=True)
        try:
            session.start()
        except Exception as exc:
            self.host.notify(f"Cannot start {cfg.name}: {exc}", severity="error", timeout=12)

    # ---- the live run ---------------------------------------------------------------------------
    def _live(self) -> RunFeed | None:
        if not self.may_change_runs():
            return None
        feed = self.session_feed
        if feed is None:
            self.host.notify("No training here: this run is watched (n starts one).", severity="warning")
        return feed

    def pause(self) -> None:
        feed = self._live()
        if feed is None:
            return
        if feed.state in ("running", "starting"):
            feed.session.pause()
            self.host.notify("Training paused (p resumes)")
        else:
            self.host.notify(f"Nothing to pause: the run is {feed.state}", severity="warning")

    def resume(self) -> None:
        feed = self._live()
        if feed is None:
            return
        if feed.state == "paused":
            feed.session.resume()
            self.host.notify("Training resumed")
        else:
            self.host.notify(f"Nothing to resume: the run is {feed.state}", severity="warning")

    def toggle_pause(self) -> None:
        feed = self.session_feed
        if feed is not None and feed.state == "paused":
            self.resume()
        else:
            self.pause()

    def stop(self) -> None:
        """Stop the live run; it saves a checkpoint and ends."""
        feed = self._live()
        if feed is None:
            return
        if not feed.active:
            self.host.notify(f"The run is already {feed.state}", severity="warning")
            return
        feed.session.stop()
        self.host.notify("Stopping: the run saves a checkpoint and ends")

    def checkpoint(self) -> None:
        feed = self._live()
        if feed is not None and feed.active:
            feed.session.request_checkpoint()
            self.host.notify(f"Checkpoint requested → {feed.run_dir}")

    def snapshot_now(self) -> None:
        """Ask the live run for an evaluated, analysed snapshot at the end of the current epoch."""
        feed = self._live()
        if feed is not None and feed.active:
            feed.session.request_snapshot()
            self.host.notify("Evaluation requested: the analysis follows this epoch")

    # ---- snapshots in ---------------------------------------------------------------------------
    def drain(self, feed_id: int) -> bool:
        """Take in the snapshots waiting in a feed (on SnapshotsReady); return whether any came,
        telling the user once when a run fails or finishes, or following its directory stops."""
        feed = next((f for f in self.feeds if f.id == feed_id), None)
        if feed is None:
            return False
        if feed.follow_error and self._first(feed, "follow"):
            self.host.notify(f"stopped following {feed.run_dir}: {feed.follow_error}", severity="error", timeout=12)
        while feed.notices:  # bad snapshot lines skipped: following went on
            self.host.notify(feed.notices.popleft(), severity="warning", timeout=10)
        if not feed.drain():
            return False
        if feed.waiting:  # the rest on the next turn: keys and redraws come in between
            self.host.post_message(SnapshotsReady(feed.id))
        state = feed.history.state
        if state == "failed" and self._first(feed, state):
            self.host.notify(
                f"{feed.name} failed: {feed.error}\nPress n to pick another preset.", severity="error", timeout=12
            )
        elif state == "finished" and feed.live and self._first(feed, state):
            acc = feed.history.latest_evaluated.test_accuracy if feed.history.latest_evaluated else None
            self.host.notify(f"{feed.name} finished" + (f": test accuracy {100 * acc:.2f}%" if acc is not None else ""))
        return True

    def _first(self, feed: RunFeed, what: str) -> bool:
        """Whether this is the first time `what` is told about this feed."""
        key = (feed.id, what)
        if key in self._notified:
            return False
        self._notified.add(key)
        return True

    # ---- output ---------------------------------------------------------------------------------
    def out_dir(self, feed: RunFeed | None = None) -> Path:
        """Where output about a run goes: its run directory, else the run root."""
        feed = feed or self.primary
        return feed.run_dir if feed is not None and feed.run_dir is not None else self.run_root

    def may_write(self) -> bool:
        """Whether files may be written here (read-only visitors write nothing); if not, say so."""
        if self.read_only:
            self.host.notify(READ_ONLY_FILES, severity="warning", timeout=8)
        return not self.read_only

    def export(self) -> None:
        """Write the full report of the run in focus (ffterm_core.reports.run_report.write_report: report.html,
        figures/, curves.csv, report.md, snapshot.json, history.json) to RUN_DIR/reports/<stamp>/, on a
        worker thread (it takes seconds: the screen keeps answering); `exported` holds the files after."""
        if not self.may_write():
            return
        feed = self.primary
        snap = feed.history.latest_evaluated or feed.history.latest if feed is not None else None
        if feed is None or snap is None:
            self.host.notify("Nothing to export yet", severity="warning")
            return
        if self.exporting is not None:
            self.host.notify(f"{self.exporting} (one export at a time)", severity="warning")
            return
        self.exporting = f"Exporting the report of {feed.name} (epoch {snap.epoch})…"
        self.host.notify(self.exporting, timeout=4)
        # the worker's own copy (snapshots keep arriving meanwhile); serialising here is ~10× quicker
        # than a deep copy, the rebuilding happens on the worker
        history = pickle.dumps(feed.history)
        work = partial(self._write_report, snap, history, report_dir(self.out_dir(feed)), feed.run_dir)
        self.host.run_worker(work, thread=True, exclusive=False, group="export")

    def _write_report(self, snap: Snapshot, history: bytes, out: Path, run_dir: Path | None) -> None:
        """On the worker thread: any failure is a notice, never the end of the app."""
        try:
            paths = write_report(snap, pickle.loads(history), out, run_dir=run_dir)
        except Exception as exc:
            self.host.call_from_thread(self._exported, [], f"Export failed: {exc}")
            return
        self.host.call_from_thread(self._exported, paths, f"Report (epoch {snap.epoch}) → {paths[-1].parent}")

    def _exported(self, paths: list[Path], message: str) -> None:
        self.exporting = None
        if not paths:
            self.host.notify(message, severity="error", timeout=10)
            return
        self.exported = paths
        self.host.notify(message, title="Exported")

    # ---- the end --------------------------------------------------------------------------------
    def quit(self) -> None:
        """Exit; live in-process runs stop first (with a checkpoint), runs in their own process go on.
        Asked again while they stop: exit at once."""
        active = [f for f in self.feeds if f.active and not _detached(f.session)]
        if self._quitting or not active:
            self.shutdown(timeout=0)
            self.host.exit(0)
            return
        self._quitting = True
        for f in active:
            f.session.stop()
        self.host.notify("Stopping training and saving a checkpoint… (q again quits at once)", timeout=30)
        self.host.run_worker(partial(self._join_then_exit, active), thread=True, exclusive=False, group="quit")

    def _join_then_exit(self, feeds: list[RunFeed]) -> None:
        """On a worker thread."""
        for f in feeds:
            f.session.join(120)
        self.host.call_from_thread(self.host.exit, 0)

    def shutdown(self, timeout: float = 60.0) -> None:
        """Stop every session and follower thread; wait up to `timeout` s for the sessions."""
        for f in self.feeds:
            f.close(timeout=0)
        if timeout:
            for f in self.feeds:
                if f.session is not None and not _detached(f.session):
                    f.session.join(timeout)

    def farewell(self) -> list[str]:
        """After the app ended: where each interrupted or still-training run is, and how to go on."""
        lines = []
        for feed in self.feeds:
            if _detached(feed.session) and feed.session.alive:
                lines.append(f"{feed.name} goes on training in {feed.run_dir}; `ffterm attach {feed.run_dir}`")
            elif feed.session is not None and feed.session.state == "stopped":
                lines.append(f"{feed.name} stopped with a checkpoint; continue with `ffterm resume {feed.run_dir}`")
        return lines
