"""The terminal app, driven with Textual's Pilot: picker → run → live numbers → keys → export → quit.

Runs use ffterm.app.demo.DemoSession (the shape of ffterm_core.training.session.Session, synthetic snapshots from
a thread, a real run directory), so these tests need neither torch nor datasets; one test drives the
real engine on the synthetic dataset. Tests wait for the app's messages (snapshots arriving, runs
changing, workers ending, screens showing, the dashboard's redraw tick), never for fixed times, and
read what the user sees: rendered widgets, files written, the dashboard's options.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from rich.console import Console
from textual import events
from textual.pilot import Pilot
from textual.widgets import OptionList
from textual.worker import Worker

from ffterm.app.actions import KEYS, key_table_markdown, palette_entries
from ffterm.app.controller import RunsChanged
from ffterm.app.dashboard import Dashboard
from ffterm.app.demo import DemoPresets, DemoSession, demo_snapshots
from ffterm.app.feeds import SnapshotsReady
from ffterm.app.header import StatusHeader
from ffterm.app.main import FFTermApp
from ffterm.app.render import activation_map
from ffterm.app.screens import HelpScreen, OpenRunScreen, PresetPicker, RunDialog
from ffterm.app.views.base import Chart, TextPanel, short_names
from ffterm_core.store.rundir import append_snapshot, read_snapshots

# the messages after which what the app shows may have changed
WAKE = (SnapshotsReady, RunsChanged, Worker.StateChanged, events.ScreenResume, events.Timer)


class Driver:
    """A running app under Pilot, with `until(cond)`: re-check cond each time the app receives a
    message that may change it (see WAKE) instead of sleeping."""

    def __init__(self, app: FFTermApp) -> None:
        self.app = app
        self.pilot: Pilot
        self._arrived = asyncio.Event()

    def hook(self, message: object) -> None:  # run_test's message_hook, on the app's loop
        if isinstance(message, WAKE):
            self._arrived.set()

    async def until(self, cond: Callable[[], object], timeout: float = 120.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._arrived.clear()
            await self.pilot.pause()  # let the handlers of what arrived run
            if cond():
                return
            left = deadline - loop.time()
            assert left > 0, "the app never got there"
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)

    async def press(self, *keys: str) -> None:
        await self.pilot.press(*keys)


@asynccontextmanager
async def drive(app: FFTermApp, size: tuple[int, int] = (100, 30)) -> AsyncIterator[Driver]:
    driver = Driver(app)
    async with app.run_test(size=size, message_hook=driver.hook, notifications=True) as pilot:
        driver.pilot = pilot
        yield driver


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


def finished_run_app(tmp_path: Path) -> FFTermApp:
    """The app starting a short fake run at once (wait for it with `run_finished`)."""
    return make_app(tmp_path, Factory(interval=0.01), preset="quick-ff-fashionmnist", overrides={"epochs": 2})


def run_finished(app: FFTermApp) -> Callable[[], bool]:
    return lambda: app.runs.primary is not None and app.runs.primary.history.state == "finished"


def snapshots_at_least(app: FFTermApp, n: int) -> Callable[[], bool]:
    return lambda: app.runs.primary is not None and app.runs.primary.history.count >= n


def header_text(app: FFTermApp) -> str:
    return app.dashboard.query_one(StatusHeader).render().plain


def rendered(widget) -> str:
    return str(widget.render())


def picker_options(app: FFTermApp) -> list[str]:
    options = app.screen.query_one("#picker-list", OptionList)
    return [str(options.get_option_at_index(i).id) for i in range(options.option_count)]


def highlighted_preset(app: FFTermApp) -> str | None:
    options = app.screen.query_one("#picker-list", OptionList)
    return None if options.highlighted is None else str(options.get_option_at_index(options.highlighted).id)


def picker_ready(app: FFTermApp) -> Callable[[], bool]:
    return lambda: isinstance(app.screen, PresetPicker) and highlighted_preset(app) is not None


async def test_picker_starts_the_default_preset_and_numbers_change(tmp_path):
    factory = Factory(interval=0.2)
    app = make_app(tmp_path, factory, overrides=None)
    async with drive(app) as ui:
        await ui.until(picker_ready(app))
        assert highlighted_preset(app) == DemoPresets.DEFAULT_PRESET
        await ui.press("enter")
        shown: set[str] = set()  # the headers seen during the run

        def progressed() -> bool:
            header = header_text(app)
            if "ep " in header:
                shown.add(header)
            return len(shown) >= 2 and "acc " in header  # the numbers moved; an evaluated snapshot came

        await ui.until(progressed)
        assert isinstance(app.screen, Dashboard)
        assert all("quick-ff-fashionmnist" in header for header in shown)
        run_dir = factory.sessions[0].run_dir
        assert run_dir.parent == tmp_path / "runs"
        assert len(read_snapshots(run_dir)) >= 2
        await ui.press("q")
        await asyncio.to_thread(factory.sessions[0].join, 10)
    assert factory.sessions[0].state in ("stopped", "finished")


async def test_picker_filters_and_typing_q_does_not_quit(tmp_path):
    app = make_app(tmp_path)
    async with drive(app, (80, 24)) as ui:
        await ui.until(picker_ready(app))
        await ui.press(*"quick-bpff")
        assert app.is_running
        await ui.until(lambda: picker_options(app) == ["quick-bpff-fashionmnist"])
        await ui.press("escape")
        await ui.until(lambda: isinstance(app.screen, Dashboard))
        assert "no run yet" in header_text(app)


async def test_pause_resume_stop_checkpoint(tmp_path):
    factory = Factory(interval=0.03)
    app = make_app(tmp_path, factory, preset="quick-ff-fashionmnist", overrides={"epochs": 200})
    async with drive(app) as ui:
        await ui.until(snapshots_at_least(app, 2))
        session = factory.sessions[0]
        await ui.press("p")
        assert session.state == "paused"
        assert "PAUSED" in header_text(app)  # at once, not on the next tick
        await ui.press("p")
        assert session.state == "running"
        count = app.runs.primary.history.count
        await ui.until(lambda: app.runs.primary.history.count > count + 2)
        await ui.press("c")
        assert session.checkpoints == 1
        await ui.press("s")
        await asyncio.to_thread(session.join, 10)
        assert session.state == "stopped"
        await ui.until(lambda: "STOPPED" in header_text(app))


async def test_layer_class_keys_tabs_and_toggles(tmp_path):
    app = finished_run_app(tmp_path)
    async with drive(app, (120, 40)) as ui:
        await ui.until(run_finished(app))
        options = lambda: app.dashboard.options  # noqa: E731
        await ui.press("]")
        assert options().layer == 1
        await ui.press("3")
        assert options().layer == 2
        await ui.press("]")
        assert options().layer == 0  # wraps around
        await ui.press("[")
        assert options().layer == 2
        await ui.press(".", ".")
        assert options().cls == 2
        await ui.press(",")
        assert options().cls == 1
        assert "layer 3 class 1 Trouser" in header_text(app)
        await ui.press("tab", "tab")  # Curves → Layers → Activations
        tabs = app.screen.query_one("#tabs")
        assert tabs.active == "tab-activations"
        bars = app.screen.query_one("#act-bars", TextPanel)
        await ui.until(lambda: "Layer 3 · class 1 Trouser" in rendered(bars))
        assert "ensemble" in rendered(bars)
        await ui.press("tab", "j")
        assert options().jaccard
        matrix = app.screen.query_one("#ens-matrix", TextPanel)
        await ui.until(lambda: "Jaccard · L3" in rendered(matrix))
        await ui.press("l", "m")
        assert options().log_y and options().smoothing == 0.6
        await ui.press("shift+tab", "shift+tab")  # Ensembles → Activations → Layers
        assert tabs.active == "tab-layers"
        table = app.screen.query_one("#layers-table")
        await ui.until(lambda: table.row_count == 3)
        last = app.runs.primary.history.latest_evaluated
        assert table.get_cell("L1", "sparsity") == f"{last.layers[0]['sparsity']:.3f}"


async def test_help_overlay_lists_the_keys_and_closes(tmp_path):
    app = make_app(tmp_path, open_picker=False)
    async with drive(app, (80, 24)) as ui:
        await ui.press("question_mark")
        await ui.until(lambda: isinstance(app.screen, HelpScreen))
        help_keys = app.screen.query_one("#help-keys")
        console = Console(width=help_keys.content_region.width, record=True, file=io.StringIO())
        console.print(help_keys.content)
        lines = console.export_text().splitlines()
        assert any(line.split()[:3] == ["p", "pause", "/"] for line in lines if line.strip())
        # a description too long for its column wraps within it, not back to the left edge
        export = next(i for i, line in enumerate(lines) if line.split()[:2] == ["e", "export"])
        assert lines[export + 1].startswith(" " * 10) and "reports/" in lines[export + 1] + lines[export + 2]
        await ui.press("escape")
        await ui.until(lambda: isinstance(app.screen, Dashboard))
        await ui.press("f1")
        await ui.until(lambda: isinstance(app.screen, HelpScreen))
        await ui.press("q")  # closes the help, does not quit
        await ui.until(lambda: isinstance(app.screen, Dashboard))
        assert app.is_running


async def test_palette_runs_the_chosen_command(tmp_path):
    app = finished_run_app(tmp_path)
    async with drive(app, (100, 30)) as ui:
        await ui.until(run_finished(app))
        titles = [c[0] for c in app.command_list()]
        assert "Pause / resume training" in titles and "Start preset: quick-bp-fashionmnist" in titles
        await ui.press("ctrl+p")
        await ui.until(lambda: app.screen.query("CommandInput"))
        await ui.press(*"next layer", "enter")
        await ui.until(lambda: app.dashboard.options.layer == 1)
        await ui.press("ctrl+p")
        await ui.until(lambda: app.screen.query("CommandInput"))
        await ui.press(*"export the full report", "enter")
        reports = app.runs.primary.run_dir / "reports"
        await ui.until(lambda: list(reports.glob("*/report.md")))


async def test_export_report_and_screenshot(tmp_path):
    app = finished_run_app(tmp_path)
    async with drive(app) as ui:
        await ui.until(run_finished(app))
        await ui.press("e")
        run_dir = app.runs.primary.session.run_dir
        await ui.until(lambda: app.runs.exported)  # written on a worker thread
        (folder,) = (run_dir / "reports").iterdir()
        assert sorted(p.name for p in folder.iterdir()) == [
            "curves.csv", "figures", "history.json", "report.html", "report.md", "snapshot.json"
        ]  # fmt: skip
        assert list((folder / "figures").glob("*.png")) and "<img" in (folder / "report.html").read_text()
        snap = app.runs.primary.history.latest_evaluated
        md = (folder / "report.md").read_text()
        assert f"{100 * snap.test_accuracy:.2f}%" in md
        assert f"{snap.layers[0]['sparsity']:.3f}" in md
        assert '"test_accuracy"' in (folder / "snapshot.json").read_text()
        await ui.press("ctrl+s")
        svgs = list(run_dir.glob("ffterm-*.svg"))
        assert len(svgs) == 1 and svgs[0].read_text().startswith("<svg")


async def test_freeze_keeps_the_display_while_training_goes_on(tmp_path):
    factory = Factory(interval=0.03)
    app = make_app(tmp_path, factory, preset="quick-ff-fashionmnist", overrides={"epochs": 100})
    async with drive(app) as ui:
        chart = app.screen.query_one("#plot-accuracy", Chart)
        await ui.until(lambda: snapshots_at_least(app, 2)() and "Test accuracy %:" in chart.chart_title)
        await ui.press("f")
        assert "FROZEN" in header_text(app)
        shown = chart.chart_title
        count = app.runs.primary.history.count
        await ui.until(lambda: app.runs.primary.history.count > count + 4)  # training went on
        assert chart.chart_title == shown  # the display did not
        await ui.press("f")
        await ui.until(lambda: chart.chart_title != shown)


async def test_failed_run_shows_its_message_and_the_app_stays_usable(tmp_path):
    factory = Factory(fail_at=3)
    app = make_app(tmp_path, factory, preset="quick-ff-fashionmnist")
    async with drive(app) as ui:
        await ui.until(lambda: "FAILED" in header_text(app))
        assert "loss became NaN at epoch 3" in header_text(app)
        factory.fail_at = None
        await ui.press("n")
        await ui.until(picker_ready(app))
        await ui.press("enter")
        await ui.until(lambda: len(factory.sessions) == 2 and snapshots_at_least(app, 2)())
        assert app.runs.primary.session is factory.sessions[1]


def toasts(app: FFTermApp) -> str:
    return "\n".join(rendered(t) for t in app.screen.query("Toast"))


async def test_session_that_cannot_be_created_is_reported(tmp_path):
    def broken(cfg, run_dir):
        raise FileNotFoundError("fashionmnist not found in data/; run `ffterm data fashionmnist`")

    app = FFTermApp(run_root=tmp_path, presets=DemoPresets(), session_factory=broken, preset="quick-ff-fashionmnist")
    async with drive(app) as ui:
        await app.workers.wait_for_complete()
        await ui.until(lambda: "ffterm data fashionmnist" in toasts(app))
        assert app.runs.primary is None
        await ui.press("p")  # no session: a warning, no crash
        await ui.until(lambda: "No training here" in toasts(app))
        assert app.is_running


async def test_run_dialog_validates_inline(tmp_path):
    factory = Factory(interval=0.01)
    app = make_app(tmp_path, factory)
    async with drive(app, (100, 40)) as ui:
        await ui.until(picker_ready(app))
        await ui.press("ctrl+e")
        await ui.until(lambda: isinstance(app.screen, RunDialog))
        dialog = app.screen
        message = lambda: rendered(dialog.query_one("#run-error"))  # noqa: E731
        epochs = dialog.query_one("#f-epochs")
        epochs.value = "0"
        await ui.until(lambda: "out of range" in message())
        assert "epochs" in message()
        assert dialog.query_one("#run-start").disabled
        epochs.value = "2"
        dialog.query_one("#f-model").value = "bp"
        dialog.query_one("#f-goodness").value = "l1"
        await ui.until(lambda: "goodness" in message())
        dialog.query_one("#f-goodness").value = "l2"
        dialog.query_one("#f-heldout").value = "3"
        await ui.until(lambda: "class 3 held out" in message())
        await ui.pilot.click("#run-start")
        await ui.until(lambda: len(factory.sessions) == 1)
        cfg = factory.sessions[0].config
        assert (cfg.model, cfg.epochs, cfg.heldout_class, cfg.goodness) == ("bp", 2, 3, "l2")


def _write_run(run_dir: Path, snaps) -> None:
    run_dir.mkdir(parents=True)
    for s in snaps:
        append_snapshot(run_dir, s)


async def test_watch_follows_a_run_dir_as_it_grows(tmp_path):
    snaps = demo_snapshots(epochs_per_stage=4)
    run_dir = tmp_path / "runs" / "headless-run"
    _write_run(run_dir, snaps[:5])
    app = FFTermApp(watch=run_dir, run_root=tmp_path / "runs", presets=DemoPresets())
    async with drive(app) as ui:
        await ui.until(lambda: "(watched)" in header_text(app))
        assert app.runs.primary.history.count == 5
        for s in snaps[5:]:
            append_snapshot(run_dir, s)
        await ui.until(lambda: "FINISHED" in header_text(app))
        assert app.runs.primary.history.count == len(snaps)
        await ui.press("p")  # nothing to pause in a watched run
        await ui.until(lambda: "No training here" in toasts(app))
        await ui.press("q")
    assert not app.is_running


async def test_compare_runs_and_open_run_dialog(tmp_path):
    root = tmp_path / "runs"
    _write_run(root / "ff-run", demo_snapshots(run_name="ff-run"))
    _write_run(root / "bp-run", demo_snapshots(model="bp", run_name="bp-run", seed=1))
    _write_run(root / "bpff-run", demo_snapshots(model="bpff", run_name="bpff-run", seed=2))
    app = FFTermApp(watch=[root / "ff-run", root / "bp-run"], run_root=root, presets=DemoPresets())
    async with drive(app, (120, 40)) as ui:
        feeds = app.runs.feeds
        await ui.until(lambda: feeds[0].history.count == 18 and feeds[1].history.count == 6)
        await ui.press("o")
        await ui.until(lambda: isinstance(app.screen, OpenRunScreen))
        listed = app.screen.query_one("#open-list", OptionList)
        assert [Path(str(listed.get_option_at_index(i).id)).name for i in range(listed.option_count)] == ["bpff-run"]
        app.screen.query_one("#open-path").value = str(root / "nowhere")
        await ui.press("enter")
        await ui.until(lambda: "has no snapshots.jsonl" in rendered(app.screen.query_one("#open-error")))
        app.screen.query_one("#open-path").value = str(root / "bpff-run")
        await ui.press("enter")
        await ui.until(lambda: len(feeds) == 3 and feeds[2].history.count == 6)
        assert app.screen.query_one("#tabs").active == "tab-compare"
        table = app.screen.query_one("#cmp-table")
        models = lambda: [str(table.get_cell(f"run{f.id}", "model")) for f in feeds]  # noqa: E731
        await ui.until(lambda: table.row_count == 3 and models() == ["FF", "BP", "BPFF"])
        app.runs.focus(feeds[1])
        await ui.until(lambda: "bp-run" in header_text(app))


async def test_too_small_terminal_shows_a_notice(tmp_path):
    app = FFTermApp(snapshots={"demo": demo_snapshots()}, run_root=tmp_path, presets=DemoPresets())
    async with drive(app, (50, 15)) as ui:
        await ui.until(lambda: app.dashboard.has_class("-too-small"))
        assert "Terminal too small: 50×15" in rendered(app.dashboard.query_one("#too-small"))
        await ui.pilot.resize_terminal(80, 24)
        await ui.until(lambda: not app.dashboard.has_class("-too-small"))


async def test_quit_with_ctrl_c_stops_the_training_thread(tmp_path):
    factory = Factory(interval=0.05)
    app = make_app(tmp_path, factory, preset="quick-ff-fashionmnist", overrides={"epochs": 500})
    async with drive(app) as ui:
        await ui.until(snapshots_at_least(app, 1))
        await ui.press("ctrl+c")
        await asyncio.to_thread(factory.sessions[0].join, 10)
        await ui.until(lambda: not app.is_running)
    session = factory.sessions[0]
    assert session.state == "stopped"
    assert read_snapshots(session.run_dir)[-1].state == "stopped"


async def test_real_engine_on_synthetic_data(tmp_path):
    """The real Session and presets: a broken import fails here."""
    from ffterm_core.store import presets

    app = FFTermApp(
        preset=presets.DEFAULT_PRESET, overrides={"dataset": "synthetic", "epochs": 2}, run_root=tmp_path / "runs"
    )
    async with drive(app) as ui:
        await ui.until(lambda: "acc " in header_text(app), timeout=120)
        await ui.press("e")
        await ui.until(lambda: app.runs.exported)  # written on a worker thread
        assert list((app.runs.primary.run_dir / "reports").glob("*/report.md"))
        session = app.runs.primary.session
        await ui.press("q")
        await asyncio.to_thread(session.join, 60)
        await ui.until(lambda: not app.is_running, timeout=60)
    app.shutdown(timeout=60)
    assert session.state in ("stopped", "finished")


async def test_out_dir_is_used_for_the_first_run(tmp_path):
    factory = Factory(interval=0.01)
    app = make_app(tmp_path, factory, preset="quick-ff-fashionmnist", overrides={"epochs": 1}, out=tmp_path / "mine")
    async with drive(app) as ui:
        await ui.until(run_finished(app))
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


async def test_activations_of_a_class_without_correct_images(tmp_path):
    """A class no test image of which was classified correctly has no profile: say so, don't crash."""
    snaps = demo_snapshots()
    for snap in snaps:
        for layer in snap.layers or []:
            layer["class_mean_activation"][0] = None
    app = FFTermApp(snapshots={"demo": snaps}, presets=DemoPresets(), open_picker=False, run_root=tmp_path)
    async with drive(app, (120, 40)) as ui:
        app.dashboard.action_show_view("activations")
        panel = app.screen.query_one("#act-bars", TextPanel)
        await ui.until(lambda: "no correctly classified test image of this class" in rendered(panel))
        await ui.press(".")  # class 1 has a profile again
        await ui.until(lambda: "Layer 1 · class 1" in rendered(panel))
        assert "no correctly classified" not in rendered(panel)
        assert app.is_running


async def test_stability_plot_draws_the_finished_runs_split_half_floor(tmp_path):
    """A finished run's split-half floor (mean over its defined classes) is drawn beside stability."""
    snaps = demo_snapshots()
    evaluated = [s for s in snaps if s.layers]
    evaluated[-1].layers[0]["stability_floor"] = [0.9, 0.8, None] + [None] * 7  # mean 0.85
    app = FFTermApp(snapshots={"demo": snaps}, presets=DemoPresets(), open_picker=False, run_root=tmp_path)
    async with drive(app, (120, 40)) as ui:
        app.dashboard.action_show_view("ensembles")
        chart = app.screen.query_one("#plot-ens-stab", Chart)
        await ui.until(lambda: chart.legend)
        assert "L1 split-half floor" in [label for label, _, _ in chart.legend]
        await ui.press("]")  # layer 2 has no floor: no line
        await ui.until(lambda: any(label.startswith("L2 c") for label, _, _ in chart.legend))
        assert not any("floor" in label for label, _, _ in chart.legend)


# ---- the key registry ----------------------------------------------------------------------------
def test_the_manuals_key_table_is_the_registry():
    usage = (Path(__file__).parents[1] / "docs" / "usage.md").read_text(encoding="utf-8")
    start = usage.index("| key | action |")
    table = usage[start : usage.index("\n\n", start)]
    assert table == key_table_markdown(), (
        "docs/usage.md's key table drifted: print it with `python -m ffterm.app.actions`"
    )


def test_no_key_is_registered_twice():
    """App keys work on every screen, so a key may appear only once across both scopes."""
    keys = [k for entry in KEYS if not entry.numbered for k in entry.keys.split(",")]
    assert sorted(k for k in set(keys) if keys.count(k) > 1) == []


def test_every_registered_action_exists_where_it_runs():
    """Bindings and palette entries run actions by name: a typo would do nothing at run time."""
    actions = [b.action for b in Dashboard.BINDINGS + FFTermApp.BINDINGS] + [k.action for k in palette_entries()]
    for action in actions:
        namespace, _, call = action.rpartition(".")
        target = FFTermApp if namespace == "app" else Dashboard
        assert callable(getattr(target, "action_" + call.split("(")[0], None)), action
    keys = {b.key: b.action for b in Dashboard.BINDINGS}
    assert keys["p"] == "app.toggle_pause" and keys["5"] == "set_layer(4)" and keys["full_stop"] == "cls(1)"
    assert {b.key for b in FFTermApp.BINDINGS} == {"q", "ctrl+c", "question_mark,f1"}


# ---- drawing ---------------------------------------------------------------------------------------
def test_short_names_keep_what_tells_runs_apart():
    a, b = "quick-ff-fashionmnist-20261127-221501", "quick-ff-fashionmnist-20261127-223012"
    assert short_names([a, b]) == ["quick-ff-fashionm…221501", "quick-ff-fashionm…223012"]
    assert short_names(["ff", "bp-run"]) == ["ff", "bp-run"]  # short names stay whole
    assert short_names([a]) == ["quick-ff-fashionmnist-2…"]
    names = short_names([a, b, "bp-mnist"], width=16)
    assert len(set(names)) == 3 and all(len(n) <= 16 for n in names)


def test_activation_map_fills_the_width_when_units_are_fewer_than_columns():
    units, width = 128, 200
    matrix = [[float((r + u) % 7) for u in range(units)] for r in range(40)]
    text = activation_map(matrix, [r // 4 for r in range(40)], [u % 10 for u in range(units)], width, 30, ["x"] * 10)
    lines = text.plain.splitlines()
    assert {len(line) for line in lines} == {width}  # ruler and every row, to the last column
    few = activation_map([[1.0, 2.0, 3.0]] * 4, [0, 0, 1, 1], [0, 1, -1], 41, 6, ["a", "b"])
    assert [len(line) for line in few.plain.splitlines()] == [41] * 3  # 3 units, 10 columns each


async def test_chart_legend_sits_above_the_plot(tmp_path):
    app = FFTermApp(snapshots={"ff": demo_snapshots()}, presets=DemoPresets(), open_picker=False, run_root=tmp_path)
    async with drive(app, (80, 24)) as ui:
        chart = app.screen.query_one("#plot-loss", Chart)
        await ui.until(lambda: chart.legend)
        assert [label for label, _, _ in chart.legend] == ["L1", "L2", "L3"]
        head, *plot = chart.render().plain.splitlines()
        assert head.startswith("Loss per layer (lin)") and head.rstrip().endswith("━ L1  ━ L2  ━ L3")
        assert len(plot) == chart.size.height - 1 and not any("L1" in line for line in plot)


def test_header_marks_a_finished_run_that_did_not_learn():
    from ffterm.app.feeds import RunFeed
    from ffterm.app.views.base import ViewOptions
    from ffterm_core.store.snapshot import Snapshot

    def header(kind: str, state: str, accuracy: float) -> str:
        snap = Snapshot(
            "quick-ff-fashionmnist-l1", "ff", "fashionmnist", "cpu", 3, kind=kind, state=state, epoch=24,
            total_epochs=24, test_accuracy=accuracy, layer_accuracy=[accuracy] * 3, eval_samples=10000,
        )  # fmt: skip
        feed = RunFeed.from_snapshots("r", [snap])
        one, two = StatusHeader.compose_lines(feed, ViewOptions(), False, None, 1, 120)
        return one.plain + "\n" + two.plain

    assert "acc 7.21% ✗ did not learn" in header("final", "finished", 0.0721)
    assert "did not learn" not in header("final", "finished", 0.78)
    assert "did not learn" not in header("live", "running", 0.0721)  # training: early accuracy is no verdict
