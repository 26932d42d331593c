"""FFTermApp: the live dashboard, its menus and actions.

Snapshots reach the app as coalesced `SnapshotsReady` messages (see feeds.py); a timer (at most
4 redraws a second) redraws only the visible tab, and only when what it shows has changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane

from ffterm.core.config import RunConfig
from ffterm.core.report import report_dir, write_report
from ffterm.core.rundir import new_run_dir
from ffterm.core.snapshot import Snapshot

from .feeds import RUN_COLORS, RunFeed, SnapshotsReady
from .header import StatusHeader
from .screens import ConfirmLongRun, HelpScreen, OpenRunScreen, PresetPicker, RunDialog
from .views import ActivationsView, CompareView, CurvesView, EIView, EnsemblesView, LayersView, View, ViewOptions

MIN_WIDTH, MIN_HEIGHT = 60, 20
TABS = [
    ("tab-curves", "Curves", CurvesView),
    ("tab-layers", "Layers", LayersView),
    ("tab-act", "Activations", ActivationsView),
    ("tab-ens", "Ensembles", EnsemblesView),
    ("tab-ei", "E/I", EIView),
    ("tab-compare", "Compare", CompareView),
]
SMOOTHING_STEPS = (0.0, 0.6, 0.9)


class Dashboard(Screen):
    """The main screen: status header, the view tabs, the footer."""

    BINDINGS = [
        Binding("n", "app.new_run", "New run"),
        Binding("r", "app.run_dialog", "Settings", show=False),
        Binding("p", "app.toggle_pause", "Pause"),
        Binding("s", "app.stop", "Stop", show=False),
        Binding("c", "app.checkpoint", "Ckpt", show=False),
        Binding("f", "app.freeze", "Freeze"),
        Binding("e", "app.export", "Export"),
        Binding("ctrl+s", "app.screenshot", "SVG", show=False),
        Binding("o", "app.open_run", "Compare", show=False),
        Binding("tab", "app.next_tab", "Next view", show=False, priority=True),
        Binding("shift+tab", "app.prev_tab", "Prev view", show=False, priority=True),
        Binding("left_square_bracket", "app.layer(-1)", "Layer-", show=False),
        Binding("right_square_bracket", "app.layer(1)", "Layer+", show=False),
        *[Binding(str(k), f"app.set_layer({k - 1})", f"Layer {k}", show=False) for k in range(1, 10)],
        Binding("comma", "app.cls(-1)", "Class-", show=False),
        Binding("full_stop", "app.cls(1)", "Class+", show=False),
        Binding("l", "app.toggle_log", "Log y", show=False),
        Binding("m", "app.smoothing", "Smooth", show=False),
        Binding("j", "app.toggle_jaccard", "Jaccard", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="status")
        with TabbedContent(id="tabs"):
            for tab_id, title, cls in TABS:
                with TabPane(title, id=tab_id):
                    yield cls(id="view-" + tab_id[4:])
        yield Static(id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        self._check_size()

    def on_resize(self) -> None:
        self._check_size()

    def _check_size(self) -> None:
        w, h = self.app.size
        small = w < MIN_WIDTH or h < MIN_HEIGHT
        self.set_class(small, "-too-small")
        if small:
            self.query_one("#too-small", Static).update(
                f"Terminal too small: {w}×{h}.\n\nffterm needs at least {MIN_WIDTH}×{MIN_HEIGHT} "
                f"(80×24 or more recommended).\nEnlarge the window; training goes on meanwhile.\n\nq quits."
            )


class FFCommands(Provider):
    """Every app action, and every preset, in the command palette."""

    async def discover(self) -> Hits:
        for title, help_text, callback in self.app.command_list():  # type: ignore[attr-defined]
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self.app.command_list():  # type: ignore[attr-defined]
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)


def _default_presets() -> Any:
    from ffterm.core import presets  # the engine's preset registry

    return presets


def _default_session_factory(cfg: RunConfig, run_dir: Path, force: bool = False) -> Any:
    """Runs train in their own process, so they outlive this terminal (see ffterm.core.detached)."""
    from ffterm.core.detached import start_detached

    return start_detached(cfg, run_dir, force=force)


def _image_epochs(cfg: RunConfig) -> int:
    """Images seen over the whole run (training sets hold ~50,000-73,000 images; 60,000 stands for all)."""
    return cfg.total_epochs * (cfg.train_limit or 60_000)


def _discard(session: Any) -> None:
    """Let go of a session that lost a start race: an unstarted in-process one frees its run
    directory, a detached one is stopped."""
    if getattr(session, "detached", False):
        session.stop()
    elif hasattr(session, "release"):
        session.release()


READ_ONLY = "This server is read-only: visitors watch (`ffterm serve --allow-runs` lets them start runs)"
LONG_RUN_IMAGE_EPOCHS = 1_500_000  # beyond ~25 epochs of 60,000 images a run takes more than a few minutes


class FFTermApp(App[int]):
    CSS_PATH = "ffterm.tcss"
    TITLE = "ffterm"
    COMMANDS = App.COMMANDS | {FFCommands}
    BINDINGS = [
        Binding("q", "quit_app", "Quit"),
        Binding("ctrl+c", "quit_app", "Quit", show=False, priority=True),
        Binding("question_mark,f1", "help", "Help"),
    ]

    def __init__(
        self,
        preset: str | None = None,
        overrides: dict[str, Any] | None = None,
        watch: Path | Sequence[Path] | None = None,
        run_root: Path = Path("runs"),
        *,
        snapshots: dict[str, list[Snapshot]] | None = None,
        session_factory: Callable[[RunConfig, Path], Any] | None = None,
        presets: Any = None,
        refresh_s: float = 0.25,
        open_picker: bool = True,
        out: Path | None = None,
        force: bool = False,
        read_only: bool = False,
        attach: Path | None = None,
    ) -> None:
        super().__init__()
        self.read_only = read_only  # watch only: no runs started, stopped or opened by path
        self.attach_dir = Path(attach) if attach is not None else None
        self._start_generation = 0  # the newest start asked for; older ones still being created are dropped
        self.preset = preset
        self.overrides = dict(overrides or {})
        if watch is None:
            self.watch_dirs: list[Path] = []
        elif isinstance(watch, (str, Path)):
            self.watch_dirs = [Path(watch)]
        else:
            self.watch_dirs = [Path(p) for p in watch]
        self.run_root = Path(run_root)
        self.static_snapshots = snapshots
        self.session_factory = session_factory or _default_session_factory
        self._out = Path(out) if out is not None else None  # run dir of the first run started
        self._force = force
        self._presets = presets
        self.refresh_s = refresh_s
        self.open_picker = open_picker
        self.feeds: list[RunFeed] = []
        self.primary: RunFeed | None = None
        self.opts = ViewOptions()
        self.frozen = False
        self._dirty = True
        self._quitting = False
        self._notified: set[tuple[int, str]] = set()
        self.last_config: RunConfig | None = None
        self.last_preset: str | None = None
        self.exported: list[Path] = []

    # ---- set-up ---------------------------------------------------------------------------------
    @property
    def presets(self) -> Any:
        if self._presets is None:
            self._presets = _default_presets()
        return self._presets

    def on_mount(self) -> None:
        self.push_screen(Dashboard())
        if self.static_snapshots:
            for name, snaps in self.static_snapshots.items():
                self._add_feed(RunFeed.from_snapshots(name, snaps))
        for path in self.watch_dirs:
            self.add_watch(path)
        if self.attach_dir is not None:
            self._attach(self.attach_dir)
        elif not self.static_snapshots and not self.watch_dirs and not self.read_only:
            if self.preset:
                self.start_preset(self.preset, self.overrides)
            elif self.open_picker:
                self.call_after_refresh(self.action_new_run)
        self.set_interval(self.refresh_s, self._tick)
        self.call_after_refresh(self._redraw, True)

    def _add_feed(self, feed: RunFeed, primary: bool | None = None) -> None:
        feed.color = RUN_COLORS[len(self.feeds) % len(RUN_COLORS)]  # by position: stable colours
        self.feeds.append(feed)
        if primary or self.primary is None:
            self.primary = feed
            self.opts = ViewOptions(smoothing=self.opts.smoothing, log_y=self.opts.log_y, jaccard=self.opts.jaccard)
        self._dirty = True

    def add_watch(self, path: Path) -> RunFeed | None:
        path = Path(path)
        if not path.is_dir():
            self.notify(f"{path}: not a directory", severity="error")
            return None
        feed = RunFeed(path.name, path)
        self._add_feed(feed)
        feed.follow(self)
        return feed

    @work(thread=True, group="session")
    def _attach(self, path: Path) -> None:
        """Take control of a run training in its own process (its control socket)."""
        from ffterm.core.remote import RemoteSession

        try:
            session = RemoteSession(path)
        except Exception as exc:
            self.call_from_thread(self.notify, f"Cannot attach to {path}: {exc}", severity="error", timeout=12)
            return
        self.call_from_thread(self._session_created, session, session.config)

    # ---- snapshots in ---------------------------------------------------------------------------
    @on(SnapshotsReady)
    def _snapshots_ready(self, message: SnapshotsReady) -> None:
        feed = next((f for f in self.feeds if f.id == message.feed_id), None)
        if feed is not None and feed.follow_error and (feed.id, "follow") not in self._notified:
            self._notified.add((feed.id, "follow"))
            self.notify(f"stopped following {feed.run_dir}: {feed.follow_error}", severity="error", timeout=12)
        while feed is not None and feed.notices:
            self.notify(feed.notices.popleft(), severity="warning", timeout=10)
        if feed is None or not feed.drain():
            return
        self._dirty = True
        state = feed.history.state
        key = (feed.id, state)
        if state == "failed" and key not in self._notified:
            self._notified.add(key)
            self.notify(
                f"{feed.name} failed: {feed.error}\nPress n to pick another preset.", severity="error", timeout=12
            )
        elif state == "finished" and feed.live and key not in self._notified:
            self._notified.add(key)
            acc = feed.history.latest_evaluated.test_accuracy if feed.history.latest_evaluated else None
            self.notify(f"{feed.name} finished" + (f": test accuracy {100 * acc:.2f}%" if acc is not None else ""))

    def _tick(self) -> None:
        self._update_header()
        if self._dirty and not self.frozen:
            self._redraw()

    def _update_header(self) -> None:
        try:
            header = self.screen.query_one("#status", StatusHeader)
        except Exception:
            return  # a modal is on top
        feed = self.primary
        stale = None
        if feed is not None and feed.watching and feed.last_arrival is not None:
            stale = time.monotonic() - feed.last_arrival
        header.show(feed, self.opts, self.frozen, stale, len(self.feeds))

    def _dashboard(self) -> Dashboard | None:
        for screen in self.screen_stack:
            if isinstance(screen, Dashboard):
                return screen
        return None

    def _redraw(self, force: bool = False) -> None:
        dash = self._dashboard()
        if dash is None:
            return
        self._dirty = False
        try:
            tabs = dash.query_one("#tabs", TabbedContent)
            view = dash.query_one(f"#view-{tabs.active[4:]}", View) if tabs.active else None
        except NoMatches:  # the dashboard is still being composed: draw on the next tick
            self._dirty = True
            return
        if view is not None:
            view.show(self.primary, self.feeds, self.opts, force=force)
        if self.screen is dash:
            self._update_header()

    @on(TabbedContent.TabActivated)
    def _tab_changed(self) -> None:
        self._redraw()

    # ---- runs ----------------------------------------------------------------------------------
    @property
    def session_feed(self) -> RunFeed | None:
        """The most recent feed with a live session."""
        return next((f for f in reversed(self.feeds) if f.session is not None), None)

    def start_preset(
        self, name: str, overrides: dict[str, Any] | None = None, customise: bool = False, confirm: bool = False
    ) -> None:
        """Start a preset; `confirm`: ask first when it is a long run (picked with one key or click)."""
        if self.read_only:
            self.notify(READ_ONLY, severity="warning", timeout=8)
            return
        try:
            cfg = self.presets.load_preset(name, overrides or None)
        except (ValueError, OSError) as exc:  # PresetError, ConfigError
            self.notify(f"Cannot load preset {name}: {exc}", severity="error", timeout=10)
            return
        self.last_preset = name
        if customise:
            self.push_screen(RunDialog(cfg), self._dialog_done)
        elif confirm and _image_epochs(cfg) > LONG_RUN_IMAGE_EPOCHS:
            self.push_screen(ConfirmLongRun(cfg, _image_epochs(cfg)), lambda ok: ok and self.start_config(cfg))
        else:
            self.start_config(cfg)

    def _dialog_done(self, cfg: RunConfig | None) -> None:
        if cfg is not None:
            self.start_config(cfg)

    def start_config(self, cfg: RunConfig) -> None:
        """Start a run (a thread creates the session; the UI never waits on it)."""
        current = self.session_feed
        if current is not None and current.active:
            current.session.stop()
            self.notify(f"Stopping {current.name} to start {cfg.name}")
        self.last_config = cfg
        self._start_generation += 1
        self._create_session(cfg, self._start_generation)

    @work(thread=True, group="session")
    def _create_session(self, cfg: RunConfig, generation: int) -> None:
        try:
            run_dir, self._out = (
                (self._out, None) if self._out is not None else (new_run_dir(cfg.name, self.run_root), None)
            )
            if self.session_factory is _default_session_factory:
                session = _default_session_factory(cfg, run_dir, force=self._force)
            else:
                session = self.session_factory(cfg, run_dir)
        except Exception as exc:
            self.call_from_thread(self.notify, f"Cannot start {cfg.name}: {exc}", severity="error", timeout=12)
            return
        self.call_from_thread(self._session_created, session, cfg, generation)

    def _session_created(self, session: Any, cfg: RunConfig, generation: int | None = None) -> None:
        if generation is not None and generation != self._start_generation:
            # another start was asked for while this one was being created: it must not train too
            _discard(session)
            return
        feed = RunFeed(cfg.name, getattr(session, "run_dir", None), session)
        feed.attach_session(self)
        self._add_feed(feed, primary=True)
        try:
            session.start()
        except Exception as exc:
            self.notify(f"Cannot start {cfg.name}: {exc}", severity="error", timeout=12)
        self._redraw(True)

    # ---- actions: runs ---------------------------------------------------------------------------
    def action_new_run(self) -> None:
        if isinstance(self.screen, PresetPicker):
            return
        if self.read_only:
            self.notify(READ_ONLY, severity="warning", timeout=8)
            return
        try:
            presets = self.presets.list_presets()
            default = getattr(self.presets, "DEFAULT_PRESET", None)
        except Exception as exc:
            self.notify(f"Presets unavailable: {exc}", severity="error")
            return
        self.push_screen(PresetPicker(presets, self.last_preset or default), self._picked)

    def _picked(self, result: tuple[str, bool] | None) -> None:
        if result is not None:
            overrides = self.overrides if result[0] == self.preset else None
            self.start_preset(result[0], overrides, customise=result[1], confirm=True)

    def action_run_dialog(self) -> None:
        if self.read_only:
            self.notify(READ_ONLY, severity="warning", timeout=8)
            return
        base = self.last_config
        if base is None:
            try:
                base = self.presets.load_preset(self.presets.DEFAULT_PRESET)
            except Exception:
                base = RunConfig()
        self.push_screen(RunDialog(base), self._dialog_done)

    def _need_session(self) -> RunFeed | None:
        if self.read_only:
            self.notify(READ_ONLY, severity="warning", timeout=8)
            return None
        feed = self.session_feed
        if feed is None:
            self.notify("No training here: this run is watched (n starts one).", severity="warning")
            return None
        return feed

    def action_toggle_pause(self) -> None:
        feed = self._need_session()
        if feed is None:
            return
        state = feed.state
        if state == "paused":
            feed.session.resume()
            self.notify("Training resumed")
        elif state in ("running", "starting"):
            feed.session.pause()
            self.notify("Training paused (p resumes)")
        else:
            self.notify(f"Nothing to pause: the run is {state}", severity="warning")
        self._update_header()

    def action_stop(self) -> None:
        feed = self._need_session()
        if feed is None:
            return
        if not feed.active:
            self.notify(f"The run is already {feed.state}", severity="warning")
            return
        feed.session.stop()
        self.notify("Stopping: the run saves a checkpoint and ends")
        self._update_header()

    def action_checkpoint(self) -> None:
        feed = self._need_session()
        if feed is not None and feed.active:
            feed.session.request_checkpoint()
            self.notify(f"Checkpoint requested → {feed.run_dir}")

    def action_open_run(self) -> None:
        if self.read_only:
            self.notify(READ_ONLY, severity="warning", timeout=8)
            return
        exclude = [f.run_dir for f in self.feeds if f.run_dir is not None]
        self.push_screen(OpenRunScreen(self.run_root, exclude), self._opened)

    def _opened(self, path: Path | None) -> None:
        if path is None:
            return
        if self.add_watch(path) is not None:
            self.notify(f"Added {path.name}: see the Compare view")
            dash = self._dashboard()
            if dash is not None:
                dash.query_one("#tabs", TabbedContent).active = "tab-compare"

    def focus_run(self, feed: RunFeed) -> None:
        self.primary = feed
        self._dirty = True
        self._redraw(True)

    # ---- actions: display ----------------------------------------------------------------------
    def _set_opts(self, **changes: Any) -> None:
        self.opts = ViewOptions(**{**self.opts.__dict__, **changes})
        self._redraw()

    def _n_layers(self) -> int:
        return max(1, self.primary.history.num_layers if self.primary else 1)

    def _n_classes(self) -> int:
        snap = self.primary.history.latest_evaluated if self.primary else None
        if snap and snap.layers and isinstance(snap.layers[0], dict):
            cma = snap.layers[0].get("class_mean_activation")
            if cma:
                return len(cma)
        return 10

    def action_layer(self, delta: int) -> None:
        self._set_opts(layer=(self.opts.layer + delta) % self._n_layers())

    def action_set_layer(self, layer: int) -> None:
        if layer < self._n_layers():
            self._set_opts(layer=layer)

    def action_cls(self, delta: int) -> None:
        self._set_opts(cls=(self.opts.cls + delta) % self._n_classes())

    def action_toggle_log(self) -> None:
        self._set_opts(log_y=not self.opts.log_y)

    def action_smoothing(self) -> None:
        i = SMOOTHING_STEPS.index(self.opts.smoothing) if self.opts.smoothing in SMOOTHING_STEPS else 0
        self._set_opts(smoothing=SMOOTHING_STEPS[(i + 1) % len(SMOOTHING_STEPS)])

    def action_toggle_jaccard(self) -> None:
        self._set_opts(jaccard=not self.opts.jaccard)

    def action_freeze(self) -> None:
        self.frozen = not self.frozen
        self.notify("Display frozen; training goes on (f thaws)" if self.frozen else "Display live")
        if not self.frozen:
            self._redraw()
        self._update_header()

    def _switch_tab(self, delta: int) -> None:
        dash = self._dashboard()
        if dash is None:
            return
        tabs = dash.query_one("#tabs", TabbedContent)
        ids = [t[0] for t in TABS]
        i = ids.index(tabs.active) if tabs.active in ids else 0
        tabs.active = ids[(i + delta) % len(ids)]

    def action_next_tab(self) -> None:
        self._switch_tab(1)

    def action_prev_tab(self) -> None:
        self._switch_tab(-1)

    def action_show_tab(self, tab: str) -> None:
        dash = self._dashboard()
        if dash is not None:
            dash.query_one("#tabs", TabbedContent).active = tab

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # ---- actions: output -----------------------------------------------------------------------
    def _out_dir(self, feed: RunFeed | None) -> Path:
        if feed is not None and feed.run_dir is not None:
            return feed.run_dir
        return self.run_root

    def action_export(self) -> None:
        feed = self.primary
        if feed is None or feed.history.latest is None:
            self.notify("Nothing to export yet", severity="warning")
            return
        h = feed.history
        snap = h.latest_evaluated or h.latest
        try:
            paths = write_report(snap, h, report_dir(self._out_dir(feed)))
        except OSError as exc:
            self.notify(f"Export failed: {exc}", severity="error")
            return
        self.exported = paths
        self.notify(f"Report (epoch {snap.epoch}) → {paths[-1].parent}", title="Exported")

    def action_screenshot(self) -> None:
        out = self._out_dir(self.primary)
        name = f"ffterm-{datetime.now().strftime('%Y%m%d-%H%M%S')}.svg"
        try:
            out.mkdir(parents=True, exist_ok=True)
            path = self.save_screenshot(name, str(out))
        except OSError as exc:
            self.notify(f"Cannot save a screenshot in {out}: {exc.strerror or exc}", severity="error", timeout=10)
            return
        self.notify(f"Screenshot → {path}")

    # ---- palette -------------------------------------------------------------------------------
    def command_list(self) -> list[tuple[str, str, Callable[[], Any]]]:
        cmds: list[tuple[str, str, Callable[[], Any]]] = [
            ("New run: pick a preset", "n", self.action_new_run),
            ("Run settings (model, dataset, epochs, held-out class, goodness)…", "r", self.action_run_dialog),
            ("Pause / resume training", "p", self.action_toggle_pause),
            ("Stop training", "s", self.action_stop),
            ("Checkpoint now", "c", self.action_checkpoint),
            ("Export snapshot report", "e", self.action_export),
            ("Save SVG screenshot", "ctrl+s", self.action_screenshot),
            ("Freeze / unfreeze the display", "f", self.action_freeze),
            ("Add a run to compare…", "o", self.action_open_run),
            ("Next layer", "]", lambda: self.action_layer(1)),
            ("Previous layer", "[", lambda: self.action_layer(-1)),
            ("Next class", ".", lambda: self.action_cls(1)),
            ("Previous class", ",", lambda: self.action_cls(-1)),
            ("Toggle log scale", "l", self.action_toggle_log),
            ("Cycle smoothing", "m", self.action_smoothing),
            ("Toggle shared units / Jaccard", "j", self.action_toggle_jaccard),
            ("Help: keys", "?", self.action_help),
            ("Quit", "q", self.action_quit_app),
        ]
        for tab_id, title, _ in TABS:
            cmds.append((f"Show view: {title}", "tab", lambda t=tab_id: self.action_show_tab(t)))
        for feed in self.feeds:
            if feed is not self.primary:
                cmds.append((f"Show run in dashboard: {feed.name}", "", lambda f=feed: self.focus_run(f)))
        try:
            for p in self.presets.list_presets():
                cmds.append(
                    (
                        f"Start preset: {p.name}",
                        p.description or "",
                        lambda n=p.name: self.start_preset(n, confirm=True),
                    )
                )
        except Exception:
            pass
        return cmds

    # ---- quitting ------------------------------------------------------------------------------
    def action_quit_app(self) -> None:
        active = [f for f in self.feeds if f.active and not getattr(f.session, "detached", False)]
        if self._quitting or not active:
            self.shutdown(timeout=0)
            self.exit(0)
            return
        self._quitting = True
        for f in active:
            f.session.stop()
        self.notify("Stopping training and saving a checkpoint… (q again quits at once)", timeout=30)
        self._join_then_exit(active)

    @work(thread=True, group="quit")
    def _join_then_exit(self, feeds: list[RunFeed]) -> None:
        for f in feeds:
            f.session.join(120)
        self.call_from_thread(self.exit, 0)

    def shutdown(self, timeout: float = 60.0) -> None:
        """Stop every session and follower thread (also called by run_app after the app ends)."""
        for f in self.feeds:
            f.close(timeout=0)
        if timeout:
            for f in self.feeds:
                if f.session is not None and not getattr(f.session, "detached", False):
                    f.session.join(timeout)
