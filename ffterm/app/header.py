"""The status header: what runs, where it is, how fast, and what the dashboard shows."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widget import Widget

from ffterm_core.config import MODEL_KINDS, layerwise
from ffterm_core.data.datasets import num_classes
from ffterm_core.records import did_not_learn
from ffterm_core.reports.run_report import class_label

from .colors import rich_color
from .feeds import RunFeed

STATE_STYLE = {
    "starting": "bold yellow",
    "running": "bold green",
    "paused": "bold yellow",
    "stopping": "bold yellow",
    "stopped": "bold magenta",
    "finished": "bold cyan",
    "failed": "bold white on red",
    "watching": "bold blue",
}
MODEL_NAMES = {k.name: k.display for k in MODEL_KINDS.values()}


def duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def rate(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v / 1000:.1f}k" if v >= 1000 else f"{v:.0f}"


def progress_bar(done: int, total: int, width: int = 12) -> str:
    if total <= 0:
        return "─" * width
    f = max(0.0, min(1.0, done / total)) * width
    full = int(f)
    return (
        "━" * full
        + ("╸" if f - full >= 0.5 and full < width else "")
        + "─" * (width - full - (1 if f - full >= 0.5 and full < width else 0))
    )


class StatusHeader(Widget):
    DEFAULT_CSS = """
    StatusHeader { height: 2; background: $panel; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._lines = (Text(""), Text(""))

    def show(self, feed: RunFeed | None, opts: Any, frozen: bool, stale_s: float | None, n_feeds: int) -> None:
        try:
            lines = self.compose_lines(feed, opts, frozen, stale_s, n_feeds, self.size.width or 80)
        except Exception as exc:  # a file's content no check foresaw, or a bug: one line, not the app
            lines = (Text(f"The header could not be drawn ({type(exc).__name__}: {str(exc)[:200]})"), Text(""))
        if [line.markup for line in lines] != [line.markup for line in self._lines]:
            self._lines = lines
            self.refresh()

    @staticmethod
    def compose_lines(
        feed: RunFeed | None, opts: Any, frozen: bool, stale_s: float | None, n_feeds: int, width: int = 80
    ) -> tuple[Text, Text]:
        one, two = Text(no_wrap=True, overflow="ellipsis"), Text(no_wrap=True, overflow="ellipsis")
        if feed is None:
            one.append("ffterm", style="bold")
            one.append("  no run yet · n: pick a preset · o: open a run directory · ?: keys", style="dim")
            return one, two
        h = feed.history
        snap = h.latest
        state = feed.state
        if feed.watching and state in ("running", "paused", "starting"):
            label = f"{state.upper()} (watched)"
        else:
            label = state.upper()
        one.append(f" {label} ", style=STATE_STYLE.get(state, "bold"))
        one.append(" ")
        one.append(MODEL_NAMES.get(h.model, h.model.upper() or "?"), style="bold")
        one.append(f" {h.run_name or feed.name}", style="bold " + rich_color(feed.color))
        if snap is None:
            one.append("  waiting for the first snapshot…", style="dim")
            return one, two
        if (
            layerwise(snap.model)
            and snap.epochs_per_stage
            and snap.num_layers > 1
            and snap.total_epochs > snap.epochs_per_stage
        ):
            one.append(f" │ L{snap.stage + 1}/{snap.num_layers}")
        one.append(f" │ ep {snap.epoch}/{snap.total_epochs}")
        if width >= 100:
            one.append(" " + progress_bar(snap.epoch, snap.total_epochs), style="green")
        speed = snap.samples_per_s
        if speed is None:
            speed = next((v for v in reversed(h.samples_per_s) if v is not None), None)
        one.append(f" │ {rate(speed)}/s")
        if state not in ("finished", "stopped", "failed"):
            one.append(f" │ ETA {duration(snap.eta_s)}")
        if width >= 100:
            one.append(f" │ ran {duration(snap.wall_time)}")
        one.append(f" │ {snap.dataset} · {snap.device}", style="dim")
        if snap.gpu:
            g = snap.gpu
            used, total = g.get("memory_used_mb"), g.get("memory_total_mb")
            util = g.get("utilization_pct")
            if used is not None:
                one.append(f" │ GPU {used / 1024:.1f}/{(total or 0) / 1024:.0f} GB")
            if util is not None:
                one.append(f" {util:.0f}%")
        # line two: accuracy and what is shown
        ev = h.latest_evaluated
        if ev is not None:
            two.append("acc ", style="dim")
            two.append(f"{100 * ev.test_accuracy:.2f}%" if ev.test_accuracy is not None else "—", style="bold")
            if ev.kind == "final" and did_not_learn(ev.test_accuracy, num_classes(h.dataset)):
                two.append(" ✗ did not learn ", style="bold white on red")  # the final accuracy is near chance
            best = h.best_accuracy()
            if best and len(h.eval_epochs) > 1:
                two.append(f" (best {100 * best[1]:.2f}@{best[0]})", style="dim")
            if ev.layer_accuracy:
                two.append(
                    " · "
                    + " ".join(f"L{i + 1} {100 * a:.1f}" for i, a in enumerate(ev.layer_accuracy) if a is not None),
                    style="dim",
                )
            if ev.heldout:
                two.append(
                    f" · held-out {ev.heldout.get('class')}: {100 * (ev.heldout.get('accuracy_heldout') or 0):.1f}%",
                    style="yellow",
                )
            two.append(" │ ", style="dim")
        two.append("layer ", style="dim")
        two.append(f"{opts.layer + 1}", style="bold")
        two.append(" class ", style="dim")
        two.append(class_label(h.dataset, opts.cls), style="bold")
        if opts.smoothing:
            two.append(f" · ema {opts.smoothing:g}", style="dim")
        if opts.log_y:
            two.append(" · log", style="dim")
        if n_feeds > 1:
            two.append(f" · {n_feeds} runs", style="dim")
        if frozen:
            two.append("  ❄ DISPLAY FROZEN (f) ", style="bold black on cyan")
        if stale_s is not None and stale_s > 30 and state in ("running", "starting"):
            two.append(f"  no update for {duration(stale_s)}", style="bold yellow")
        if state == "failed" and feed.error:
            two = Text(no_wrap=True, overflow="ellipsis")
            two.append(f" ✖ {feed.error} ", style="bold white on red")
            two.append("  n: pick another preset", style="dim")
        return one, two

    def render(self) -> Text:
        out = self._lines[0].copy()
        out.append("\n")
        out.append_text(self._lines[1])
        return out
