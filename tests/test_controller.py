"""RunController without Textual running: a plain host records what the controller tells the app;
sessions are ffterm.app.demo.DemoSessions (a thread writing synthetic snapshots to a run directory)."""

from __future__ import annotations

import time
from pathlib import Path

from ffterm.app.actions import KEYS, palette_entries
from ffterm.app.colors import COLORS
from ffterm.app.controller import READ_ONLY, RunController, RunsChanged
from ffterm.app.demo import DemoPresets, DemoSession, demo_snapshots
from ffterm.app.feeds import SnapshotsReady
from ffterm_core.store.rundir import append_snapshot, read_snapshots


class Host:
    """Runs workers at once on the calling thread and records notices, messages and the exit."""

    def __init__(self) -> None:
        self.notices: list[tuple[str, str]] = []
        self.messages: list[object] = []
        self.exit_code: int | None = None

    def notify(self, message, *, title="", severity="information", timeout=None) -> None:
        self.notices.append((severity, message))

    def post_message(self, message) -> bool:
        self.messages.append(message)
        return True

    def call_from_thread(self, callback, *args):
        return callback(*args)

    def run_worker(self, work, *, thread, group, exclusive):
        return work()

    def exit(self, result: int) -> None:
        self.exit_code = result

    def said(self, text: str) -> bool:
        return any(text in message for _, message in self.notices)


def controller(tmp_path: Path, interval: float = 0.001, **kw) -> tuple[RunController, Host, list[DemoSession]]:
    host, sessions = Host(), []

    def factory(cfg, run_dir):
        sessions.append(DemoSession(cfg, run_dir, interval=interval, **kw))
        return sessions[-1]

    runs = RunController(host, presets=DemoPresets(), session_factory=factory, run_root=tmp_path / "runs")
    return runs, host, sessions


def test_start_creates_a_session_in_a_new_run_dir_and_focuses_it(tmp_path):
    runs, host, sessions = controller(tmp_path)
    cfg = runs.load_preset("quick-ff-fashionmnist", {"epochs": 1})
    runs.start(cfg)
    (session,) = sessions
    session.join(120)
    feed = runs.primary
    assert feed is runs.session_feed and feed.session is session
    assert feed.run_dir.parent == tmp_path / "runs" and feed.run_dir.name.startswith("quick-ff-fashionmnist-")
    assert [m.focus_changed for m in host.messages if isinstance(m, RunsChanged)] == [True]
    ready = {m.feed_id for m in host.messages if isinstance(m, SnapshotsReady)}
    assert ready == {feed.id}
    assert runs.drain(feed.id)
    assert feed.history.count == len(read_snapshots(feed.run_dir)) == 3  # 1 epoch × 3 sequential layers
    assert host.said("quick-ff-fashionmnist finished: test accuracy")
    assert not runs.drain(feed.id)  # nothing new
    runs.drain(feed.id)
    assert sum("finished" in m for _, m in host.notices) == 1  # told once


def test_pause_resume_checkpoint_snapshot_and_stop_reach_the_session(tmp_path):
    runs, host, sessions = controller(tmp_path, interval=0.02)
    runs.start(runs.load_preset("quick-ff-fashionmnist", {"epochs": 100}))
    (session,) = sessions
    runs.pause()
    assert session.state == "paused" and host.said("Training paused")
    runs.toggle_pause()
    assert session.state == "running" and host.said("Training resumed")
    runs.toggle_pause()
    assert session.state == "paused"
    runs.resume()
    runs.checkpoint()
    assert session.checkpoints == 1
    runs.snapshot_now()
    assert host.said("Evaluation requested")
    runs.stop()
    session.join(120)
    assert session.state == "stopped"
    runs.stop()
    assert host.said("The run is already stopped")


def test_starting_another_run_stops_the_live_one(tmp_path):
    runs, host, sessions = controller(tmp_path, interval=0.02)
    runs.start(runs.load_preset("quick-ff-fashionmnist", {"epochs": 100}))
    runs.start(runs.load_preset("quick-bp-fashionmnist", {"epochs": 1}))
    first, second = sessions
    first.join(120)
    assert first.state == "stopped" and host.said("Stopping quick-ff-fashionmnist to start quick-bp-fashionmnist")
    assert runs.primary.session is second and [f.color for f in runs.feeds] == COLORS[:2]


def test_out_dir_is_used_once(tmp_path):
    host, made = Host(), []
    runs = RunController(
        host,
        presets=DemoPresets(),
        session_factory=lambda cfg, d: made.append(d) or DemoSession(cfg, d, interval=0.001),
        run_root=tmp_path / "runs",
        out=tmp_path / "mine",
    )
    cfg = runs.load_preset("quick-bp-fashionmnist", {"epochs": 1})
    runs.start(cfg)
    runs.start(cfg)
    assert made[0] == tmp_path / "mine" and made[1].parent == tmp_path / "runs"
    runs.shutdown(timeout=10)


def test_commands_without_a_live_run_warn(tmp_path):
    runs, host, _ = controller(tmp_path)
    runs.add_run("demo", demo_snapshots())
    for command in (runs.pause, runs.resume, runs.stop, runs.checkpoint, runs.snapshot_now):
        host.notices.clear()
        command()
        assert host.notices == [("warning", "No training here: this run is watched (n starts one).")]


def test_bad_preset_and_session_that_cannot_be_created_are_told(tmp_path):
    runs, host, _ = controller(tmp_path)
    assert runs.load_preset("no-such-preset") is None
    assert host.said("Cannot load preset no-such-preset: unknown preset")

    def broken(cfg, run_dir):
        raise FileNotFoundError("fashionmnist not found; run `ffterm data fashionmnist`")

    runs.session_factory = broken
    runs.start(runs.load_preset("quick-ff-fashionmnist"))
    assert runs.primary is None and host.said("Cannot start quick-ff-fashionmnist: fashionmnist not found")


def test_failed_run_is_told_once(tmp_path):
    runs, host, sessions = controller(tmp_path, fail_at=2)
    runs.start(runs.load_preset("quick-ff-fashionmnist"))
    sessions[0].join(120)
    runs.drain(runs.primary.id)
    runs.drain(runs.primary.id)
    assert runs.primary.history.state == "failed"
    assert [m for s, m in host.notices if s == "error"] == [
        "quick-ff-fashionmnist failed: loss became NaN at epoch 2; lower lr\nPress n to pick another preset."
    ]


def test_watch_follows_a_run_dir_and_focus_switches_runs(tmp_path):
    runs, host, _ = controller(tmp_path)
    assert runs.watch(tmp_path / "missing") is None and host.said("not a directory")
    run_dir = tmp_path / "runs" / "elsewhere"
    run_dir.mkdir(parents=True)
    snaps = demo_snapshots()
    for snap in snaps:
        append_snapshot(run_dir, snap)
    shown = runs.add_run("fixed", snaps[:3])
    feed = runs.watch(run_dir)
    assert runs.primary is shown and feed.watching
    try:
        for _ in range(200):  # the follower thread posts SnapshotsReady as it reads
            if any(isinstance(m, SnapshotsReady) for m in host.messages):
                runs.drain(feed.id)
            if feed.history.count == len(snaps):
                break
            time.sleep(0.02)
        assert feed.history.count == len(snaps)
    finally:
        runs.shutdown(timeout=2)
    runs.focus(feed)
    assert runs.primary is feed and host.messages[-1].focus_changed


def test_export_writes_the_report_of_the_run_in_focus(tmp_path):
    runs, host, _ = controller(tmp_path)
    runs.export()
    assert host.said("Nothing to export yet") and runs.exported == []
    runs.add_run("demo", demo_snapshots())
    runs.export()  # the host runs the worker at once
    paths = runs.exported
    assert runs.exporting is None and host.said("Report (epoch")
    assert [p.name for p in paths] == ["snapshot.json", "history.json", "report.md", "report.html", "curves.csv"]
    folder = paths[0].parent
    assert folder.parent == tmp_path / "runs" / "reports"  # no run directory: the run root
    assert list((folder / "figures").glob("*.png")) and list((folder / "figures").glob("*.svg"))
    epochs = {s.epoch for s in demo_snapshots()}
    assert len((folder / "curves.csv").read_text().splitlines()) == 1 + len(epochs)  # a header, one row an epoch


def test_quit_stops_live_runs_then_exits_and_twice_exits_at_once(tmp_path):
    runs, host, sessions = controller(tmp_path, interval=0.02)
    runs.start(runs.load_preset("quick-ff-fashionmnist", {"epochs": 100}))
    runs.quit()  # the host runs the join at once: the session has ended when quit returns
    assert sessions[0].state == "stopped" and host.exit_code == 0
    assert read_snapshots(sessions[0].run_dir)[-1].state == "stopped"
    host.exit_code = None
    runs.quit()
    assert host.exit_code == 0


def test_drain_of_an_unknown_feed_is_nothing(tmp_path):
    runs, _, _ = controller(tmp_path)
    assert runs.drain(12345) is False


def test_read_only_starts_and_steers_nothing_and_opens_runs_under_the_root_only(tmp_path):
    host, made = Host(), []
    runs = RunController(
        host,
        presets=DemoPresets(),
        session_factory=lambda cfg, d: made.append(d) or DemoSession(cfg, d),
        run_root=tmp_path / "runs",
        read_only=True,
    )
    runs.start(runs.load_preset("quick-ff-fashionmnist", {"epochs": 1}))
    for command in (runs.pause, runs.resume, runs.toggle_pause, runs.stop, runs.checkpoint, runs.snapshot_now):
        command()
    assert made == [] and runs.feeds == [] and not (tmp_path / "runs").exists()
    assert host.notices == [("warning", READ_ONLY)] * 7  # one line each time, nothing else
    host.notices.clear()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "runs" / "mine").mkdir(parents=True)
    assert runs.open_run(tmp_path / "runs" / ".." / "elsewhere") is None and runs.feeds == []
    assert host.notices == [("warning", f"This server is read-only: visitors open runs under {tmp_path / 'runs'} only")]
    feed = runs.open_run(tmp_path / "runs" / ".." / "runs" / "mine")  # watching is what visitors do
    runs.shutdown(timeout=2)
    assert feed is not None and feed.watching and runs.primary is feed


def test_read_only_palette_leaves_out_every_key_that_steers_runs():
    steering = {key.action for key in KEYS if key.steers_runs}
    assert steering == {"app.new_run", "app.run_dialog", "app.toggle_pause", "app.stop", "app.checkpoint", "prune"}
    assert steering <= {key.action for key in palette_entries()}
    assert not steering & {key.action for key in palette_entries(read_only=True)}


class LaterHost(Host):
    """Keeps the workers until the test runs them, in the order it chooses."""

    def __init__(self) -> None:
        super().__init__()
        self.workers: list = []

    def run_worker(self, work, *, thread, group, exclusive):
        self.workers.append(work)


class InOwnProcess(DemoSession):
    """A DemoSession standing for a run training in its own process (ffterm_core.running.remote.RemoteSession)."""

    detached = True

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.told: list[str] = []

    def stop(self) -> None:
        self.told.append("stop")
        super().stop()

    def detach(self) -> None:
        self.told.append("detach")


def test_a_start_still_being_created_loses_to_a_newer_one(tmp_path):
    host, sessions = LaterHost(), []
    runs = RunController(
        host,
        presets=DemoPresets(),
        session_factory=lambda cfg, d: sessions.append(InOwnProcess(cfg, d, interval=0.01)) or sessions[-1],
        run_root=tmp_path / "runs",
    )
    runs.start(runs.load_preset("quick-ff-fashionmnist", {"epochs": 1}))
    runs.start(runs.load_preset("quick-bp-fashionmnist", {"epochs": 1}))
    older, newer = host.workers
    newer()  # the second start is ready first; the first one's session arrives after it
    older()
    second, first = sessions
    assert [f.session for f in runs.feeds] == [second] and runs.primary.name == "quick-bp-fashionmnist"
    assert first.told == ["stop"] and not first.alive  # the lost one never trains
    second.join(120)
    assert second.state == "finished"


def test_quitting_leaves_runs_in_their_own_process_training_and_says_where(tmp_path):
    host, sessions = Host(), []
    runs = RunController(
        host,
        presets=DemoPresets(),
        session_factory=lambda cfg, d: sessions.append(InOwnProcess(cfg, d, interval=0.02)) or sessions[-1],
        run_root=tmp_path / "runs",
    )
    runs.start(runs.load_preset("quick-ff-fashionmnist", {"epochs": 100}))
    (session,) = sessions
    runs.quit()  # nothing to wait for: it exits at once
    assert host.exit_code == 0 and session.told == ["detach"] and session.state == "running"
    runs.shutdown(timeout=5)  # does not wait for it either
    assert session.alive
    assert runs.farewell() == [
        f"quick-ff-fashionmnist goes on training in {session.run_dir}; `ffterm attach {session.run_dir}`"
    ]
    session.stop()  # stopped later (`ffterm attach`, then s): it left a checkpoint
    session.join(120)
    assert runs.farewell() == [
        f"quick-ff-fashionmnist stopped with a checkpoint; continue with `ffterm resume {session.run_dir}`"
    ]
