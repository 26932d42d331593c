"""FFTermApp: wires the dashboard, the dialogs and the RunController together.

The dashboard (dashboard.py) owns what is shown and the display keys; the controller
(controller.py) owns the runs and their lifecycle; every key is declared once in actions.py.
Snapshots reach the app as coalesced `SnapshotsReady` messages (feeds.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from textual import on
from textual.app import App
from textual.command import DiscoveryHit, Hit, Hits, Provider

from ffterm_core.config import RunConfig
from ffterm_core.store.snapshot import Snapshot

from .actions import bindings, palette_entries
from .controller import RunController, RunsChanged, SessionFactory, image_epochs
from .dashboard import Dashboard
from .feeds import SnapshotsReady
from .screens import ConfirmLongRun, HelpScreen, OpenRunScreen, PresetPicker, RunDialog
from .suiteview import SUITE_PREFIX, SuiteScreen, SuiteView, is_suite_dir, start_suite, suite_choices
from .views import VIEWS


class FFCommands(Provider):
    """Every key's action, every view, every other run and every preset, in the command palette."""

    async def discover(self) -> Hits:
        for title, help_text, callback in self.app.command_list():  # type: ignore[attr-defined]
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self.app.command_list():  # type: ignore[attr-defined]
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)


class FFTermApp(App[int]):
    CSS_PATH = "ffterm.tcss"
    TITLE = "ffterm"
    COMMANDS = App.COMMANDS | {FFCommands}
    BINDINGS = bindings("app")

    def __init__(
        self,
        preset: str | None = None,
        overrides: dict[str, Any] | None = None,
        watch: Path | Sequence[Path] | None = None,
        run_root: Path = Path("runs"),
        *,
        snapshots: dict[str, list[Snapshot]] | None = None,
        session_factory: SessionFactory | None = None,
        presets: Any = None,
        refresh_s: float = 0.25,
        open_picker: bool = True,
        out: Path | None = None,
        force: bool = False,
        read_only: bool = False,
        attach: Path | None = None,
    ) -> None:
        """preset (with overrides): start it at once; watch: follow these run directories;
        snapshots: show these runs as they are; attach: take control of a run training in its own
        process; otherwise open the preset picker (unless open_picker is False or the app is
        read_only: watch only). The rest goes to the RunController."""
        super().__init__()
        self.attach_dir = Path(attach) if attach is not None else None
        self.preset = preset
        self.overrides = dict(overrides or {})
        self.watch_dirs = [Path(watch)] if isinstance(watch, (str, Path)) else [Path(p) for p in watch or ()]
        self.static_snapshots = snapshots or {}
        self.open_picker = open_picker and not read_only
        self.attach_dir = Path(attach) if attach is not None else None
        self.runs = RunController(
            self,
            presets=presets,
            session_factory=session_factory,
            run_root=run_root,
            out=out,
            force=force,
            read_only=read_only,
        )
        self.dashboard = Dashboard(self.runs, refresh_s)
        self.suite_dir: Path | None = None  # the suite the Suite view follows

    def on_mount(self) -> None:
        self.push_screen(self.dashboard)
        for name, snaps in self.static_snapshots.items():
            self.runs.add_run(name, snaps)
        for path in self.watch_dirs:
            if is_suite_dir(path):
                self.show_suite(path)
            else:
                self.runs.watch(path)
        if self.attach_dir is not None:
            self.runs.attach(self.attach_dir)
        elif self.static_snapshots or self.watch_dirs:
            return
        elif self.runs.read_only:  # a visitor with nothing to watch yet: the runs under the run root
            self.call_after_refresh(self.action_open_run)
        elif self.preset:
            self.start_preset(self.preset, self.overrides)
        elif self.open_picker:
            self.call_after_refresh(self.action_new_run)

    @on(SnapshotsReady)
    def _snapshots_ready(self, message: SnapshotsReady) -> None:
        if self.runs.drain(message.feed_id):
            self.dashboard.runs_changed()

    @on(RunsChanged)
    def _runs_changed(self, message: RunsChanged) -> None:
        self.dashboard.runs_changed(message.focus_changed)

    # ---- starting runs: picker → (dialog) → controller -------------------------------------------
    def start_preset(
        self, name: str, overrides: dict[str, Any] | None = None, customise: bool = False, confirm: bool = False
    ) -> None:
        """customise: open the run dialog on it first; confirm: ask first when it is a long run
        (picked with one key or click)."""
        if not self.runs.may_change_runs():
            return
        cfg = self.runs.load_preset(name, overrides)
        if cfg is not None and customise:
            self.push_screen(RunDialog(cfg), self._start_if_given)
        elif cfg is not None and confirm and self.runs.is_long(cfg):
            self.push_screen(ConfirmLongRun(cfg, image_epochs(cfg)), partial(self._start_if_confirmed, cfg))
        elif cfg is not None:
            self.runs.start(cfg)

    def _start_if_given(self, cfg: RunConfig | None) -> None:
        if cfg is not None:
            self.runs.start(cfg)

    def _start_if_confirmed(self, cfg: RunConfig, confirmed: bool | None) -> None:
        if confirmed:
            self.runs.start(cfg)

    def action_new_run(self) -> None:
        if isinstance(self.screen, PresetPicker) or not self.runs.may_change_runs():
            return
        try:
            presets = [*self.runs.presets.list_presets(), *suite_choices()]
            default = getattr(self.runs.presets, "DEFAULT_PRESET", None)
        except Exception as exc:
            self.notify(f"Presets unavailable: {exc}", severity="error")
            return
        self.push_screen(PresetPicker(presets, self.runs.last_preset or default), self._picked)

    def _picked(self, result: tuple[str, bool] | None) -> None:
        if result is not None:
            name, customise = result
            if name.startswith(SUITE_PREFIX):
                if not self.runs.may_change_runs():
                    return
                self.show_suite(start_suite(name.removeprefix(SUITE_PREFIX), self.runs.run_root))
                return
            self.start_preset(name, self.overrides if name == self.preset else None, customise=customise, confirm=True)

    # ---- suites: a suite folder's runs and tables (suiteview.py) --------------------------------
    def show_suite(self, suite_dir: Path) -> None:
        self.suite_dir = Path(suite_dir)
        self.push_screen(SuiteScreen(self.suite_dir))

    def action_show_suite(self) -> None:
        if self.suite_dir is None:
            self.notify("No suite yet: start one from the picker (n) or `ffterm watch SUITE_DIR`", severity="warning")
        elif not isinstance(self.screen, SuiteScreen):
            self.show_suite(self.suite_dir)

    @on(SuiteView.OpenRun)
    def _open_suite_run(self, message: SuiteView.OpenRun) -> None:
        feed = next((f for f in self.runs.feeds if f.run_dir == message.run_dir), None)
        feed = feed or self.runs.watch(message.run_dir)
        if feed is not None:
            self.runs.focus(feed)
            self.pop_screen()

    def action_run_dialog(self) -> None:
        if self.runs.may_change_runs():
            self.push_screen(RunDialog(self.runs.dialog_config()), self._start_if_given)

    def action_open_run(self) -> None:
        exclude = [f.run_dir for f in self.runs.feeds if f.run_dir is not None]
        self.push_screen(OpenRunScreen(self.runs.run_root, exclude), self._opened)

    def _opened(self, path: Path | None) -> None:
        if path is not None and self.runs.open_run(path) is not None:
            self.notify(f"Added {path.name}: see the Compare view")
            self.dashboard.action_show_view("compare")

    # ---- the live run and output ----------------------------------------------------------------
    def _then_header(self, command: Callable[[], Any]) -> None:
        command()
        self.dashboard.update_header()  # the state shows at once, not on the next tick

    def action_toggle_pause(self) -> None:
        self._then_header(self.runs.toggle_pause)

    def action_stop(self) -> None:
        self._then_header(self.runs.stop)

    def action_checkpoint(self) -> None:
        self.runs.checkpoint()

    def action_export(self) -> None:
        self.runs.export()

    def action_save_svg(self) -> None:
        if not self.runs.may_write():
            return
        out = self.runs.out_dir()
        try:
            out.mkdir(parents=True, exist_ok=True)
            path = self.save_screenshot(f"ffterm-{datetime.now().strftime('%Y%m%d-%H%M%S')}.svg", str(out))
        except OSError as exc:
            self.notify(f"Cannot save a screenshot in {out}: {exc.strerror or exc}", severity="error", timeout=10)
            return
        self.notify(f"Screenshot → {path}")

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_quit_app(self) -> None:
        self.runs.quit()

    def shutdown(self, timeout: float = 60.0) -> None:
        """Stop every session and follower thread (run_app calls it after the app ends)."""
        self.runs.shutdown(timeout)

    # ---- palette --------------------------------------------------------------------------------
    def command_list(self) -> list[tuple[str, str, Callable[[], Any]]]:
        """(title, help, callback) of every palette command."""
        run = partial(self.run_action, default_namespace=self.dashboard)
        cmds: list[tuple[str, str, Callable[[], Any]]] = [
            (key.title, key.shown, partial(run, key.action)) for key in palette_entries(self.runs.read_only)
        ]
        for spec in VIEWS:
            cmds.append((f"Show view: {spec.title}", "tab", partial(self.dashboard.action_show_view, spec.name)))
        for feed in self.runs.feeds:
            if feed is not self.runs.primary:
                cmds.append((f"Show run in dashboard: {feed.name}", "", partial(self.runs.focus, feed)))
        if self.runs.read_only:
            return cmds
        try:
            for p in self.runs.presets.list_presets():
                start = partial(self.start_preset, p.name, confirm=True)
                cmds.append((f"Start preset: {p.name}", p.description or "", start))
        except Exception:
            pass  # no presets: the palette still lists the rest
        return cmds
