"""The dashboard screen: the status header, one tab per view, the footer.

It owns what is shown and how: the view options (layer, class, smoothing, log axes, Jaccard) and
the freeze, as reactives bound to every view (`data_bind`), and the keys that change them. The runs
come from the RunController; a timer (at most 4 redraws a second) redraws only the visible view,
and only when its runs changed since — an option change redraws it at once.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.css.query import NoMatches
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane

from .actions import bindings
from .controller import RunController
from .header import StatusHeader
from .views import VIEWS, View, ViewOptions
from .views.prune import PruneView

MIN_WIDTH, MIN_HEIGHT = 60, 20
SMOOTHING_STEPS = (0.0, 0.6, 0.9)


class Dashboard(Screen):
    BINDINGS = bindings("dashboard")

    options: reactive[ViewOptions] = reactive(ViewOptions, init=False, repaint=False)
    frozen: reactive[bool] = reactive(False, init=False, repaint=False)

    def __init__(self, runs: RunController, refresh_s: float = 0.25) -> None:
        super().__init__()
        self.runs = runs
        self.refresh_s = refresh_s
        self._dirty = True

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="status")
        with TabbedContent(id="tabs"):
            for spec in VIEWS:
                with TabPane(spec.title, id=spec.tab_id):
                    yield spec.widget(id=f"view-{spec.name}").data_bind(Dashboard.options, Dashboard.frozen)
        yield Static(id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        self._check_size()
        # no callback: each tick arrives as a Timer event (on_timer), which tests and tools can watch for
        self.set_interval(self.refresh_s, name="redraw")
        self.call_after_refresh(self.redraw, True)

    # ---- drawing ------------------------------------------------------------------------------
    def runs_changed(self, focus_changed: bool = False) -> None:
        """New snapshots or runs: redraw on the next tick. Another run in focus: its first layer and
        class, drawn at once."""
        self._dirty = True
        if focus_changed:
            self.options = replace(self.options, layer=0, cls=0)
            self.redraw(force=True)

    async def on_timer(self, event: events.Timer) -> None:
        if event.callback is not None:  # another timer of this screen
            await super().on_timer(event)
            return
        self.update_header()
        if self._dirty and not self.frozen:
            self.redraw()

    @property
    def visible_view(self) -> View | None:
        try:
            tabs = self.query_one("#tabs", TabbedContent)
            return self.query_one(f"#view-{tabs.active.removeprefix('tab-')}", View) if tabs.active else None
        except NoMatches:  # still being composed
            return None

    def redraw(self, force: bool = False) -> None:
        """Draw the visible view (unchanged or frozen: nothing to do, unless forced)."""
        view = self.visible_view
        if view is None:
            return  # draw on the next tick
        self._dirty = False
        view.show(self.runs.primary, self.runs.feeds, force=force)
        if self.app.screen is self:
            self.update_header()

    def update_header(self) -> None:
        feed = self.runs.primary
        stale = None
        if feed is not None and feed.watching and feed.last_arrival is not None:
            stale = time.monotonic() - feed.last_arrival
        self.query_one("#status", StatusHeader).show(feed, self.options, self.frozen, stale, len(self.runs.feeds))

    def watch_options(self) -> None:
        self.call_next(self.redraw)  # after the views received the new options

    def watch_frozen(self, frozen: bool) -> None:
        self.notify("Display frozen; training goes on (f thaws)" if frozen else "Display live")
        if frozen:
            self.update_header()
        else:
            self.call_next(self.redraw)

    def on_tabbed_content_tab_activated(self) -> None:
        self.redraw()

    # ---- size ---------------------------------------------------------------------------------
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

    # ---- actions (keys: ffterm.app.actions) ----------------------------------------------------
    def _set(self, **changes: Any) -> None:
        self.options = replace(self.options, **changes)

    def n_layers(self) -> int:
        """Layers of the run in focus (1 before it reports any)."""
        primary = self.runs.primary
        return max(1, primary.history.num_layers if primary else 1)

    def n_classes(self) -> int:
        """Classes of the run in focus (10 before its first analysis)."""
        snap = self.runs.primary.history.latest_evaluated if self.runs.primary else None
        if snap and snap.layers and isinstance(snap.layers[0], dict):
            means = snap.layers[0].get("class_mean_activation")
            if means:
                return len(means)
        return 10

    def action_layer(self, delta: int) -> None:
        self._set(layer=(self.options.layer + delta) % self.n_layers())

    def action_set_layer(self, layer: int) -> None:
        if layer < self.n_layers():
            self._set(layer=layer)

    def action_cls(self, delta: int) -> None:
        self._set(cls=(self.options.cls + delta) % self.n_classes())

    def action_toggle_log(self) -> None:
        self._set(log_y=not self.options.log_y)

    def action_smoothing(self) -> None:
        steps = SMOOTHING_STEPS
        i = steps.index(self.options.smoothing) if self.options.smoothing in steps else 0
        self._set(smoothing=steps[(i + 1) % len(steps)])

    def action_toggle_jaccard(self) -> None:
        self._set(jaccard=not self.options.jaccard)

    def action_freeze(self) -> None:
        self.frozen = not self.frozen

    def action_prune(self) -> None:
        if not self.runs.may_change_runs():  # a heavy job writing beside the run: not for read-only visitors
            return
        self.action_show_view("prune")
        self.notify(self.query_one("#view-prune", PruneView).start(self.runs.primary))

    def action_show_view(self, name: str) -> None:
        self.query_one("#tabs", TabbedContent).active = f"tab-{name}"

    def _step_view(self, delta: int) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        ids = [spec.tab_id for spec in VIEWS]
        i = ids.index(tabs.active) if tabs.active in ids else 0
        tabs.active = ids[(i + delta) % len(ids)]

    def action_next_view(self) -> None:
        self._step_view(1)

    def action_previous_view(self) -> None:
        self._step_view(-1)
