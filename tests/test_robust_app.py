"""The app with untrusted run files, unwritable folders, read-only visitors, long runs and start races."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from ffterm.app.actions import KEYS
from ffterm.app.demo import DemoPresets, DemoSession, demo_snapshots
from ffterm.app.main import FFTermApp
from ffterm.app.screens import ConfirmLongRun, OpenRunScreen, PresetPicker
from ffterm_core.config import RunConfig, dump_yaml
from ffterm_core.store import rundir


async def wait_for(pilot, cond, timeout: float = 120.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        await pilot.pause(0.05)
    return bool(cond())


def notices(app: FFTermApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


def _run_with_bad_lines(run: Path) -> Path:
    run.mkdir(parents=True)
    snaps = demo_snapshots(epochs_per_stage=2, layers=3, n_units=40)
    (run / rundir.CONFIG).write_text(dump_yaml(RunConfig(name="demo", dataset="synthetic", epochs=2, hidden=40)))
    lines = [s.to_json() for s in snaps]
    crafted = json.loads(lines[1])
    crafted["num_layers"] = 1_000_000_000
    lines.insert(1, json.dumps(crafted))
    crafted = json.loads(lines[3])
    crafted["epoch"] = "x"
    lines.insert(3, json.dumps(crafted))
    (run / rundir.SNAPSHOTS).write_text("\n".join(lines) + "\n")
    return run


@pytest.mark.asyncio
async def test_watch_skips_crafted_lines_with_a_notice_and_goes_on(tmp_path):
    run = _run_with_bad_lines(tmp_path / "run")
    good = len(demo_snapshots(epochs_per_stage=2, layers=3, n_units=40))
    app = FFTermApp(watch=run, run_root=tmp_path, presets=DemoPresets())
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_for(pilot, lambda: app.runs.primary is not None and app.runs.primary.history.count == good)
        assert app.runs.primary.history.num_layers == 3  # not a billion
        shown = notices(app)
        assert any(f"{run / rundir.SNAPSHOTS}:2: skipped a bad snapshot line (num_layers" in n for n in shown)
        assert any(f"{run / rundir.SNAPSHOTS}:4: skipped a bad snapshot line (epoch" in n for n in shown)
        with open(run / rundir.SNAPSHOTS, "a") as fh:  # following went on past the bad lines
            fh.write(demo_snapshots(epochs_per_stage=2, layers=3, n_units=40)[-1].to_json() + "\n")
        assert await wait_for(pilot, lambda: app.runs.primary.history.count == good + 1)
        assert app.is_running


@pytest.mark.asyncio
async def test_a_screenshot_into_an_unwritable_place_is_a_notice(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    app = FFTermApp(snapshots={"demo": demo_snapshots()}, run_root=tmp_path / "file" / "runs", presets=DemoPresets())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert any("Cannot save a screenshot in" in n for n in notices(app))
        assert app.is_running


@pytest.mark.asyncio
async def test_read_only_visitors_watch_but_start_nothing(tmp_path):
    started = []
    root = tmp_path / "runs"
    _run_with_bad_lines(root / "mine")
    _run_with_bad_lines(tmp_path / "elsewhere")
    app = FFTermApp(
        run_root=root,
        presets=DemoPresets(),
        read_only=True,
        session_factory=lambda cfg, d: started.append(cfg) or DemoSession(cfg, d),
    )
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, OpenRunScreen))  # the runs to watch, no picker
        await pilot.pause(0.2)
        app.screen.dismiss(tmp_path / "elsewhere")  # a path outside the run root, as if typed
        await pilot.pause()
        assert any("visitors open runs under" in n for n in notices(app)) and app.runs.feeds == []
        await pilot.press("o")  # opening one under the run root is watching: allowed
        assert await wait_for(pilot, lambda: isinstance(app.screen, OpenRunScreen))
        await pilot.pause(0.2)
        app.screen.dismiss(root / "mine")
        assert await wait_for(pilot, lambda: len(app.runs.feeds) == 1 and app.runs.feeds[0].history.count > 0)
        steering = [key for key in KEYS if key.steers_runs]
        for key in steering:  # n, r, p, s, c, x
            await pilot.press(key.keys)
            await pilot.pause()
        app.start_preset("quick-ff-fashionmnist")
        await pilot.pause(0.3)
        assert started == [] and not isinstance(app.screen, PresetPicker)
        refused = len(steering) + 1  # each key, start_preset; and the path outside the run root
        assert sum("read-only" in n for n in notices(app)) == refused + 1 == 8
        titles = [title for title, _, _ in app.command_list()]  # the palette offers none of it
        assert not {key.title for key in steering} & set(titles)
        assert not any(t.startswith("Start preset") for t in titles) and "Add a run to compare…" in titles


@pytest.mark.asyncio
async def test_a_long_preset_picked_asks_first(tmp_path):
    started = []
    app = FFTermApp(
        run_root=tmp_path,
        presets=DemoPresets(),
        session_factory=lambda cfg, d: started.append(cfg) or DemoSession(cfg, d),
    )
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.3)
        app.start_preset("quick-ff-fashionmnist", {"epochs": 80}, confirm=True)  # 240 layer-epochs
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmLongRun))
        await pilot.press("enter")  # the focused button is Cancel: a stray key starts nothing
        await pilot.pause(0.3)
        assert started == [] and not isinstance(app.screen, ConfirmLongRun)
        app.start_preset("quick-ff-fashionmnist", {"epochs": 80}, confirm=True)
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmLongRun))
        await pilot.press("y")
        assert await wait_for(pilot, lambda: len(started) == 1)
        app.start_preset("quick-ff-fashionmnist", {"epochs": 2}, confirm=True)  # a short one starts at once
        assert await wait_for(pilot, lambda: len(started) == 2)


@pytest.mark.asyncio
async def test_two_quick_starts_leave_one_training(tmp_path):
    """The second start arrives while the first session is still being created."""
    created: list[DemoSession] = []
    second_asked = threading.Event()

    def slow_factory(cfg, d):
        session = DemoSession(cfg, d, interval=0.05)
        created.append(session)
        if len(created) == 1:  # the first one is still being set up when the second start is asked for
            assert second_asked.wait(120)
        return session

    app = FFTermApp(run_root=tmp_path, presets=DemoPresets(), session_factory=slow_factory, open_picker=False)
    async with app.run_test(size=(100, 30)) as pilot:
        app.start_preset("quick-ff-fashionmnist", {"epochs": 50})
        assert await wait_for(pilot, lambda: len(created) == 1)
        app.start_preset("quick-ff-fashionmnist", {"epochs": 50})
        second_asked.set()
        assert await wait_for(pilot, lambda: len(created) == 2 and created[1].state == "running")
        await pilot.pause(1.5)
        assert [s for s in created if s.alive] == [created[1]]  # the first one never started training
        assert [f.session for f in app.runs.feeds] == [created[1]]


def _bad_final(layer_edit=None, **fields):
    """A change to the last (evaluated) snapshot of a demo run: a field of layer 1, or top-level fields."""

    def edit(snap: dict) -> None:
        if layer_edit is not None:
            layer_edit(snap["layers"][0])
        snap.update(fields)

    return edit


def _set(path: str, value):
    def edit(layer: dict) -> None:
        *parents, last = path.split(".")
        target = layer
        for key in parents:
            target = target[key]
        target[last] = value

    return edit


def _shorter_row_class(layer: dict) -> None:
    layer["activation_map"]["row_class"] = layer["activation_map"]["row_class"][:-1]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "edit, reason",
    [
        (_bad_final(gpu={"memory_used_mb": "x", "memory_total_mb": 80_000}), "gpu.memory_used_mb: expected a number"),
        (_bad_final(_set("rho_plus.std", "x")), "layers[0].rho_plus.std: expected a number in 0..1"),
        (_bad_final(_set("rho_plus.hist", [1])), "layers[0].rho_plus.hist: expected counts and edges"),
        (_bad_final(_shorter_row_class), "layers[0].activation_map.row_class: expected one class per row"),
        (_bad_final(_set("ensemble_size_pct", 1e308)), "layers[0].ensemble_size_pct: expected a number in 0..100"),
        (_bad_final(_set("sparsity", 1e308)), "layers[0].sparsity: expected a number in 0..1"),
        (_bad_final(_set("lifetime_sparsity.mean", -0.5)), "layers[0].lifetime_sparsity.mean: expected a number"),
    ],
)
async def test_a_line_a_view_would_crash_on_is_skipped_with_a_notice_and_every_view_draws(tmp_path, edit, reason):
    run = tmp_path / "run"
    run.mkdir()
    snaps = demo_snapshots(epochs_per_stage=2, layers=3, n_units=40)
    (run / rundir.CONFIG).write_text(dump_yaml(RunConfig(name="demo", dataset="synthetic", epochs=2, hidden=40)))
    lines = [json.loads(s.to_json()) for s in snaps]
    edit(lines[-1])
    (run / rundir.SNAPSHOTS).write_text("".join(json.dumps(line) + "\n" for line in lines))
    app = FFTermApp(watch=run, run_root=tmp_path, presets=DemoPresets())
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_for(pilot, lambda: any(f":{len(lines)}: skipped" in n for n in notices(app)))
        assert any(
            f"{run / rundir.SNAPSHOTS}:{len(lines)}: skipped a bad snapshot line ({reason}" in n for n in notices(app)
        )
        assert await wait_for(pilot, lambda: app.runs.primary.history.count == len(lines) - 1)
        for _ in range(7):  # every view, with the run's other (good) lines
            await pilot.press("tab")
            await pilot.pause()
            assert not app.screen.query(".view-error")
        assert app.is_running


@pytest.mark.asyncio
async def test_a_view_that_raises_shows_one_line_in_its_place_and_the_app_goes_on(tmp_path, monkeypatch):
    from ffterm.app.views.layers import LayersView

    def broken(self, feed, feeds):
        raise ValueError("a value no check foresaw")

    monkeypatch.setattr(LayersView, "draw", broken)
    app = FFTermApp(snapshots={"demo": demo_snapshots()}, run_root=tmp_path, presets=DemoPresets())
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("tab")  # Curves → Layers
        view = app.screen.query_one("#view-layers")
        assert await wait_for(pilot, lambda: bool(view.query(".view-error")))
        line = str(view.query_one(".view-error").render())
        assert "This view could not be drawn (ValueError: a value no check foresaw)" in line
        assert not view.query_one("#layers-table").display  # hidden behind the line
        await pilot.press("tab", "]")  # the next view, and a key that redraws
        await pilot.pause()
        assert app.screen.query_one("#tabs").active == "tab-activations"
        assert not app.screen.query_one("#view-activations").query(".view-error")
        monkeypatch.undo()  # drawing works again: the view comes back
        await pilot.press("shift+tab", "[")
        assert await wait_for(pilot, lambda: not view.query(".view-error"))
        assert view.query_one("#layers-table").display
        assert app.is_running


@pytest.mark.asyncio
async def test_read_only_visitors_export_and_screenshot_nothing(tmp_path):
    root = tmp_path / "runs"
    run = _run_with_bad_lines(root / "mine")
    before = sorted(p.name for p in run.iterdir())
    app = FFTermApp(watch=run, run_root=root, presets=DemoPresets(), read_only=True)
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_for(pilot, lambda: app.runs.primary is not None and app.runs.primary.history.count > 0)
        for key in ("e", "ctrl+s"):
            await pilot.press(key)
            await pilot.pause()
        assert sum("visitors write nothing" in n for n in notices(app)) == 2
    assert sorted(p.name for p in run.iterdir()) == before and not (root / "reports").exists()


@pytest.mark.asyncio
async def test_the_app_answers_keys_while_an_export_is_written(tmp_path, monkeypatch):
    import ffterm.app.controller as controller_module

    writing, release = threading.Event(), threading.Event()
    real = controller_module.write_report

    def slow_write_report(*args, **kw):
        writing.set()
        assert release.wait(120), "the test never released the export"
        return real(*args, **kw)

    monkeypatch.setattr(controller_module, "write_report", slow_write_report)
    app = FFTermApp(snapshots={"demo": demo_snapshots()}, run_root=tmp_path, presets=DemoPresets())
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_for(pilot, lambda: app.runs.primary is not None)
        await pilot.press("e")
        assert await wait_for(pilot, writing.is_set)
        assert any("Exporting the report of demo" in n for n in notices(app))
        await pilot.press("f")  # freeze: answered while the report is being written
        assert await wait_for(pilot, lambda: app.dashboard.frozen)
        await pilot.press("e")  # a second export waits for the first
        assert await wait_for(pilot, lambda: any("one export at a time" in n for n in notices(app)))
        release.set()
        assert await wait_for(pilot, lambda: app.runs.exported)
        assert app.runs.exporting is None and app.runs.exported[2].name == "report.md"


def test_the_long_run_estimate_uses_the_datasets_real_size_and_train_limit():
    from ffterm.app.controller import RunController, image_epochs
    from ffterm_core.store.presets import load_preset

    quick = load_preset("quick-ff-synthetic")
    assert image_epochs(quick) == quick.total_epochs * 2000 and not RunController.is_long(quick)
    long_fashion = load_preset("quick-ff-fashionmnist", {"epochs": 80})
    assert image_epochs(long_fashion) == long_fashion.total_epochs * 60_000 and RunController.is_long(long_fashion)
    limited = load_preset("quick-ff-fashionmnist", {"epochs": 80, "train_limit": 1000})
    assert image_epochs(limited) == limited.total_epochs * 1000 and not RunController.is_long(limited)
    assert image_epochs(limited.replace(train_limit=10**9)) == image_epochs(long_fashion)  # no more than there is


def test_a_large_run_is_taken_in_over_several_ui_turns():
    from ffterm.app.controller import RunController
    from ffterm.app.feeds import DRAIN_BATCH, RunFeed, SnapshotsReady

    class Host:
        def __init__(self):
            self.posted = []

        def post_message(self, message):
            self.posted.append(message)
            return True

        def notify(self, *args, **kw):
            pass

    host = Host()
    runs = RunController(host, presets=DemoPresets())
    snaps = demo_snapshots(epochs_per_stage=400, layers=2, n_units=20)
    assert len(snaps) > 2 * DRAIN_BATCH
    feed = runs._add(RunFeed("big", None))
    feed._target = host
    for snap in snaps:
        feed._on_snapshot(snap)  # what the follower thread does: one message a snapshot (coalesced by the app)
    host.posted.clear()
    turns = 0
    while runs.drain(feed.id):
        turns += 1
        assert feed.history.count == min(turns * DRAIN_BATCH, len(snaps))
        assert [type(m) for m in host.posted] == ([SnapshotsReady] if feed.waiting else [])  # the rest: next turn
        host.posted.clear()
    assert turns == -(-len(snaps) // DRAIN_BATCH) and feed.history.count == len(snaps)
