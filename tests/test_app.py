"""The terminal app, driven with Textual's Pilot: picker → run → live numbers → keys → export → quit.

Runs use ffterm.app.demo.DemoSession (the shape of ffterm.core.session.Session, synthetic snapshots from
a thread, a real run directory), so these tests need neither torch nor datasets; the last test
drives the real engine on the synthetic dataset when ffterm.core.session is present.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ffterm.app.demo import DemoPresets, DemoSession, demo_snapshots
from ffterm.app.header import StatusHeader
from ffterm.app.main import Dashboard, FFTermApp
from ffterm.app.screens import HelpScreen, OpenRunScreen, PresetPicker, RunDialog
from ffterm.app.views import TextPanel
from ffterm.core import rundir
from ffterm.core.rundir import append_snapshot, read_snapshots


class Factory:
    """Makes DemoSessions and remembers them."""

    def __init__(self, interval: float = 0.02, fail_at: int | None = None) -> None:
        self.interval, self.fail_at = interval, fail_at
        self.sessions: list[DemoSession] = []

    def __call__(self, cfg, run_dir):
        s = DemoSession(cfg, run_dir, interval=self.interval, fail_at=self.fail_at)
        self.sessions.append(s)
        return s


def make_app(tmp_path: Path, factory: Factory | None = None, **kw) -> FFTermApp:
    return FFTermApp(run_root=tmp_path / "runs", presets=DemoPresets(), session_factory=factory or Factory(), **kw)


@pytest.mark.asyncio
async def wait_for(pilot, cond, timeout: float = 15.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        await pilot.pause(0.05)
    return bool(cond())


def finished_run_app(tmp_path: Path) -> FFTermApp:
    """The app starting a short fake run at once (wait for it with `run_finished`)."""
    return make_app(tmp_path, Factory(interval=0.01), preset="quick-ff-fashionmnist", overrides={"epochs": 2})


async def run_finished(pilot, app: FFTermApp) -> bool:
    return await wait_for(pilot, lambda: app.primary is not None and app.primary.history.state == "finished")


def header_text(app: FFTermApp) -> str:
    lines = app.screen.query_one(StatusHeader)._lines
    return lines[0].plain + "\n" + lines[1].plain


@pytest.mark.asyncio
async def test_picker_starts_the_default_preset_and_numbers_change(tmp_path):
    factory = Factory(interval=0.05)
    app = make_app(tmp_path, factory, overrides=None)
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, PresetPicker) and app.screen._current())
        picker = app.screen
        assert picker._current() == DemoPresets.DEFAULT_PRESET
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: app.primary is not None and app.primary.history.count >= 2)
        assert isinstance(app.screen, Dashboard)
        await pilot.pause(0.3)
        first = header_text(app)
        assert "quick-ff-fashionmnist" in first and "ep " in first
        assert await wait_for(pilot, lambda: header_text(app) != first and app.primary.history.count >= 4)
        assert "acc " in header_text(app)  # an evaluated snapshot arrived
        run_dir = factory.sessions[0].run_dir
        assert run_dir.parent == tmp_path / "runs"
        assert len(read_snapshots(run_dir)) >= 4
        await pilot.press("q")
        assert await wait_for(pilot, lambda: not factory.sessions[0].alive)
    assert factory.sessions[0].state in ("stopped", "finished")


@pytest.mark.asyncio
async def test_picker_filters_and_typing_q_does_not_quit(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, PresetPicker) and app.screen._current())
        await pilot.press("q", "u", "i", "c", "k", "-", "b", "p", "f", "f")
        assert app.is_running
        assert await wait_for(pilot, lambda: [p.name for p in app.screen._shown] == ["quick-bpff-fashionmnist"])
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, Dashboard)
        assert "no run yet" in header_text(app)


@pytest.mark.asyncio
async def test_pause_resume_stop_checkpoint(tmp_path):
    factory = Factory(interval=0.03)
    app = make_app(tmp_path, factory, preset="quick-ff-fashionmnist", overrides={"epochs": 200})
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_for(pilot, lambda: app.primary is not None and app.primary.history.count >= 2)
        session = factory.sessions[0]
        await pilot.press("p")
        assert session.state == "paused"
        await pilot.pause(0.2)
        count = app.primary.history.count
        await pilot.pause(0.3)
        assert app.primary.history.count <= count + 1  # at most the epoch in flight
        assert "PAUSED" in header_text(app)
        await pilot.press("p")
        assert session.state == "running"
        assert await wait_for(pilot, lambda: app.primary.history.count > count + 2)
        await pilot.press("c")
        assert session.checkpoints == 1
        await pilot.press("s")
        assert await wait_for(pilot, lambda: not session.alive)
        assert session.state == "stopped"
        assert await wait_for(pilot, lambda: "STOPPED" in header_text(app))


@pytest.mark.asyncio
async def test_layer_class_keys_tabs_and_toggles(tmp_path):
    app = finished_run_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        assert await run_finished(pilot, app)
        await pilot.press("]")
        assert app.opts.layer == 1
        await pilot.press("3")
        assert app.opts.layer == 2
        await pilot.press("]")
        assert app.opts.layer == 0  # wraps around
        await pilot.press("[")
        assert app.opts.layer == 2
        await pilot.press(".", ".")
        assert app.opts.cls == 2
        await pilot.press(",")
        assert app.opts.cls == 1
        await pilot.pause(0.3)
        assert "layer 3 class 1 Trouser" in header_text(app)
        await pilot.press("tab", "tab")  # Curves → Layers → Activations
        await pilot.pause(0.2)
        tabs = app.screen.query_one("#tabs")
        assert tabs.active == "tab-act"
        bars = app.screen.query_one("#act-bars", TextPanel)
        rendered = bars.render().plain
        assert "Layer 3 · class 1 Trouser" in rendered and "ensemble" in rendered
        await pilot.press("tab")
        await pilot.press("j")
        assert app.opts.jaccard
        await pilot.pause(0.2)
        assert "Jaccard · L3" in app.screen.query_one("#ens-matrix", TextPanel).render().plain
        await pilot.press("l", "m")
        assert app.opts.log_y and app.opts.smoothing == 0.6
        await pilot.press("shift+tab", "shift+tab")  # Ensembles → Activations → Layers
        assert tabs.active == "tab-layers"
        await pilot.pause(0.2)
        table = app.screen.query_one("#layers-table")
        assert table.row_count == 3
        last = app.primary.history.latest_evaluated
        assert table.get_cell("L1", "sparsity") == f"{last.layers[0]['sparsity']:.3f}"


@pytest.mark.asyncio
async def test_help_overlay_and_palette_commands(tmp_path):
    app = make_app(tmp_path, open_picker=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, Dashboard)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("q")  # closes the help, does not quit
        await pilot.pause()
        assert app.is_running and isinstance(app.screen, Dashboard)
        titles = [c[0] for c in app.command_list()]
        assert "Export snapshot report" in titles and "Pause / resume training" in titles
        assert "Start preset: quick-bp-fashionmnist" in titles
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"export")
        await pilot.pause(0.5)
        await pilot.press("escape")


@pytest.mark.asyncio
async def test_export_report_and_screenshot(tmp_path):
    app = finished_run_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        assert await run_finished(pilot, app)
        await pilot.press("e")
        await pilot.pause()
        paths = app.exported
        assert [p.name for p in paths] == ["snapshot.json", "history.json", "report.md", "report.html", "curves.csv"]
        run_dir = app.primary.session.run_dir
        assert paths[0].parent.parent == run_dir / "reports"
        snap = app.primary.history.latest_evaluated
        md = paths[2].read_text()
        assert f"{100 * snap.test_accuracy:.2f}%" in md
        assert f"{snap.layers[0]['sparsity']:.3f}" in md
        assert '"test_accuracy"' in paths[0].read_text()
        await pilot.press("ctrl+s")
        await pilot.pause()
        svgs = list(run_dir.glob("ffterm-*.svg"))
        assert len(svgs) == 1 and svgs[0].read_text().startswith("<svg")


@pytest.mark.asyncio
async def test_freeze_keeps_the_display_while_training_goes_on(tmp_path):
    factory = Factory(interval=0.03)
    app = make_app(tmp_path, factory, preset="quick-ff-fashionmnist", overrides={"epochs": 100})
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_for(pilot, lambda: app.primary is not None and app.primary.history.count >= 2)
        await pilot.press("f")
        await pilot.pause(0.3)
        view = app.screen.query_one("#view-curves")
        drawn = view._drawn
        count = app.primary.history.count
        assert await wait_for(pilot, lambda: app.primary.history.count > count + 3)  # training went on
        await pilot.pause(0.3)
        assert view._drawn == drawn  # the display did not
        assert "FROZEN" in header_text(app)
        await pilot.press("f")
        assert await wait_for(pilot, lambda: view._drawn != drawn)


@pytest.mark.asyncio
async def test_failed_run_shows_its_message_and_the_app_stays_usable(tmp_path):
    factory = Factory(fail_at=3)
    app = make_app(tmp_path, factory, preset="quick-ff-fashionmnist")
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_for(pilot, lambda: app.primary is not None and app.primary.history.state == "failed")
        await pilot.pause(0.3)
        text = header_text(app)
        assert "FAILED" in text and "loss became NaN at epoch 3" in text
        factory.fail_at = None
        await pilot.press("n")
        assert await wait_for(pilot, lambda: isinstance(app.screen, PresetPicker) and app.screen._current())
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: len(factory.sessions) == 2 and app.primary.history.count >= 2)
        assert app.primary.session is factory.sessions[1]


@pytest.mark.asyncio
async def test_session_that_cannot_be_created_is_reported(tmp_path):
    def broken(cfg, run_dir):
        raise FileNotFoundError("fashionmnist not found in data/; run `ffterm data fashionmnist`")

    app = FFTermApp(run_root=tmp_path, presets=DemoPresets(), session_factory=broken, preset="quick-ff-fashionmnist")
    async with app.run_test(size=(100, 30)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
        assert app.is_running and app.primary is None
        assert any("ffterm data fashionmnist" in str(n.message) for n in app._notifications)
        await pilot.press("p")  # no session: a warning, no crash
        await pilot.pause()
        assert app.is_running


@pytest.mark.asyncio
async def test_run_dialog_validates_inline(tmp_path):
    factory = Factory(interval=0.01)
    app = make_app(tmp_path, factory)
    async with app.run_test(size=(100, 40)) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, PresetPicker) and app.screen._current())
        await pilot.press("ctrl+e")
        assert await wait_for(pilot, lambda: isinstance(app.screen, RunDialog))
        dialog = app.screen
        epochs = dialog.query_one("#f-epochs")
        epochs.value = "0"
        await pilot.pause()
        error = str(dialog.query_one("#run-error").render())
        assert "epochs" in error and "out of range" in error
        assert dialog.query_one("#run-start").disabled
        epochs.value = "2"
        dialog.query_one("#f-model").value = "bp"
        dialog.query_one("#f-goodness").value = "l1"
        await pilot.pause()
        assert "goodness" in str(dialog.query_one("#run-error").render())
        dialog.query_one("#f-goodness").value = "l2"
        dialog.query_one("#f-heldout").value = "3"
        await pilot.pause()
        assert "class 3 held out" in str(dialog.query_one("#run-error").render())
        await pilot.click("#run-start")
        assert await wait_for(pilot, lambda: len(factory.sessions) == 1)
        cfg = factory.sessions[0].config
        assert (cfg.model, cfg.epochs, cfg.heldout_class, cfg.goodness) == ("bp", 2, 3, "l2")


def _write_run(run_dir: Path, snaps) -> None:
    run_dir.mkdir(parents=True)
    for s in snaps:
        append_snapshot(run_dir, s)


@pytest.mark.asyncio
async def test_watch_follows_a_run_dir_as_it_grows(tmp_path):
    snaps = demo_snapshots(epochs_per_stage=4)
    run_dir = tmp_path / "runs" / "headless-run"
    _write_run(run_dir, snaps[:5])
    app = FFTermApp(watch=run_dir, run_root=tmp_path / "runs", presets=DemoPresets())
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_for(pilot, lambda: app.primary is not None and app.primary.history.count == 5)
        assert app.primary.watching
        await pilot.pause(0.3)
        assert "(watched)" in header_text(app)
        for s in snaps[5:]:
            append_snapshot(run_dir, s)
        assert await wait_for(pilot, lambda: app.primary.history.count == len(snaps))
        await pilot.pause(0.3)
        assert "FINISHED" in header_text(app)
        await pilot.press("p")  # nothing to pause in a watched run
        await pilot.pause()
        assert app.is_running
        await pilot.press("q")
        await pilot.pause()
    assert not app.is_running


@pytest.mark.asyncio
async def test_compare_runs_and_open_run_dialog(tmp_path):
    root = tmp_path / "runs"
    _write_run(root / "ff-run", demo_snapshots(run_name="ff-run"))
    _write_run(root / "bp-run", demo_snapshots(model="bp", run_name="bp-run", seed=1))
    _write_run(root / "bpff-run", demo_snapshots(model="bpff", run_name="bpff-run", seed=2))
    app = FFTermApp(watch=[root / "ff-run", root / "bp-run"], run_root=root, presets=DemoPresets())
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_for(
            pilot, lambda: all(f.history.count == 18 for f in app.feeds[:1]) and app.feeds[1].history.count == 6
        )
        await pilot.press("o")
        assert await wait_for(pilot, lambda: isinstance(app.screen, OpenRunScreen))
        assert [r.name for r in app.screen.runs] == ["bpff-run"]  # the open ones are left out
        app.screen.query_one("#open-path").value = str(root / "nowhere")
        await pilot.press("enter")
        await pilot.pause()
        assert "has no snapshots.jsonl" in str(app.screen.query_one("#open-error").render())
        app.screen.query_one("#open-path").value = str(root / "bpff-run")
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: len(app.feeds) == 3 and app.feeds[2].history.count == 6)
        await pilot.pause(0.3)
        tabs = app.screen.query_one("#tabs")
        assert tabs.active == "tab-compare"
        table = app.screen.query_one("#cmp-table")
        assert table.row_count == 3
        assert [str(table.get_cell(f"run{f.id}", "model")) for f in app.feeds] == ["FF", "BP", "BPFF"]
        app.focus_run(app.feeds[1])
        await pilot.pause(0.3)
        assert "bp-run" in header_text(app)


@pytest.mark.asyncio
async def test_too_small_terminal_shows_a_notice(tmp_path):
    app = FFTermApp(snapshots={"demo": demo_snapshots()}, run_root=tmp_path, presets=DemoPresets())
    async with app.run_test(size=(50, 15)) as pilot:
        await pilot.pause()
        dash = app.screen
        assert dash.has_class("-too-small")
        assert "Terminal too small: 50×15" in str(dash.query_one("#too-small").render())
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert not dash.has_class("-too-small")


@pytest.mark.asyncio
async def test_quit_with_ctrl_c_stops_the_training_thread(tmp_path):
    factory = Factory(interval=0.05)
    app = make_app(tmp_path, factory, preset="quick-ff-fashionmnist", overrides={"epochs": 500})
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_for(pilot, lambda: app.primary is not None and app.primary.history.count >= 1)
        await pilot.press("ctrl+c")
        assert await wait_for(pilot, lambda: not factory.sessions[0].alive)
    session = factory.sessions[0]
    assert session.state == "stopped"
    assert read_snapshots(session.run_dir)[-1].state == "stopped"


@pytest.mark.asyncio
async def test_real_engine_on_synthetic_data(tmp_path):
    """The real Session and presets (skipped until ffterm.core.session and ffterm.core.presets exist)."""
    pytest.importorskip("ffterm.core.session")
    presets = pytest.importorskip("ffterm.core.presets")
    app = FFTermApp(
        preset=presets.DEFAULT_PRESET, overrides={"dataset": "synthetic", "epochs": 2}, run_root=tmp_path / "runs"
    )
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_for(
            pilot, lambda: app.primary is not None and app.primary.history.latest_evaluated is not None, timeout=120
        )
        await pilot.pause(0.3)
        assert "acc " in header_text(app)
        await pilot.press("e")
        await pilot.pause()
        assert app.exported and app.exported[-1].exists()
        session = app.primary.session
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, timeout=60)
    app.shutdown(timeout=60)
    session.join(120)  # the run trains in its own process: quitting the app leaves it to finish
    assert session.state == "finished" and rundir.is_finished(session.run_dir)


@pytest.mark.asyncio
async def test_out_dir_is_used_for_the_first_run(tmp_path):
    factory = Factory(interval=0.01)
    app = make_app(tmp_path, factory, preset="quick-ff-fashionmnist", overrides={"epochs": 1}, out=tmp_path / "mine")
    async with app.run_test(size=(100, 30)) as pilot:
        assert await run_finished(pilot, app)
    assert factory.sessions[0].run_dir == tmp_path / "mine"
    assert read_snapshots(tmp_path / "mine")


def test_screenshots_script_writes_svgs(tmp_path):
    from ffterm.app.screenshots import main

    run_dir = tmp_path / "run"
    _write_run(run_dir, demo_snapshots(epochs_per_stage=2))
    assert main([str(run_dir), str(tmp_path / "shots"), "--sizes", "80x24"]) == 0
    names = sorted(p.name for p in (tmp_path / "shots").glob("*.svg"))
    assert "dashboard-curves-80x24.svg" in names and "dashboard-activations-80x24.svg" in names
    assert len(names) >= 7


@pytest.mark.asyncio
async def test_activations_of_a_class_without_correct_images(tmp_path):
    """A class no test image of which was classified correctly has no profile: say so, don't crash."""
    snaps = demo_snapshots()
    for snap in snaps:
        for layer in snap.layers or []:
            layer["class_mean_activation"][0] = None
    app = FFTermApp(snapshots={"demo": snaps}, presets=DemoPresets(), open_picker=False, run_root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.action_show_tab("tab-act")
        await pilot.pause()
        app._redraw(True)
        await pilot.pause()
        panel = app.screen.query_one("#act-bars", TextPanel)
        assert "no correctly classified test image of this class" in str(panel.render())
        await pilot.press(".")  # class 1 has a profile again
        await pilot.pause(0.3)
        assert "no correctly classified" not in str(panel.render())
        assert app.is_running
