"""The Prune view: remove units of the run in focus and watch test accuracy against the fraction of
units kept, one curve per strategy, filled in as each point is measured (docs/algorithms.md, "Pruning").

`x` (or the palette's "Prune units of this run") starts a job on a worker thread from the run's
checkpoint; the job reports every measured point and writes prune.json, prune.csv and the figure
beside the run's files when it ends. A coarse grid on a fixed sample of test images keeps it short.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult

from ffterm_core.beyond.offline import OfflineError
from ffterm_core.beyond.prune import DEFAULT_KEEP, STRATEGIES, PruneProgress, PruneSpec, prune_run, write_outputs
from ffterm_core.config import ConfigError
from ffterm_core.store.checkpoint import CheckpointError
from ffterm_core.store.rundir import RunDirError

from ..colors import color_of
from .base import Chart, TextPanel, View

APP_SPEC = PruneSpec(targets=("all",), keep=DEFAULT_KEEP, draws=3, samples=2000)
EXPECTED = (OfflineError, CheckpointError, RunDirError, ConfigError)


@dataclass
class PruneJob:
    run_dir: Path
    name: str
    entries: list[dict[str, Any]] = field(default_factory=list)  # finished points, with "strategy"
    done: int = 0
    total: int = 0
    baseline: float | None = None
    error: str | None = None
    finished: bool = False
    written: list[Path] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return not self.finished and self.error is None

    @property
    def version(self) -> tuple[int, int, bool, str | None]:
        return (len(self.entries), self.done, self.finished, self.error)


class PruneView(View):
    """Accuracy vs fraction of units kept for the run in focus, per strategy (log x axis)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.job: PruneJob | None = None

    def compose(self) -> ComposeResult:
        yield TextPanel(id="prune-status")
        yield Chart(id="plot-prune")

    def key(self, feed, feeds):
        return (self.job.version if self.job else None, feed.id if feed else None)

    def start(self, feed) -> str:
        """Start pruning the run in focus; return what to tell the user."""
        if self.job is not None and self.job.running:
            return f"Already pruning {self.job.name} ({self.job.done}/{self.job.total or '?'})"
        if feed is None or feed.run_dir is None:
            return "No run directory to prune: start or open a run first"
        job = self.job = PruneJob(feed.run_dir, feed.name)
        threading.Thread(target=self._work, args=(job,), name=f"prune-{feed.name}", daemon=True).start()
        self._redraw_soon()
        return f"Pruning {feed.name}: the curve fills in as each point is measured"

    def _work(self, job: PruneJob) -> None:
        def progress(p: PruneProgress) -> None:
            job.done, job.total = p.done, p.total
            if p.entry is not None:
                job.entries.append(p.entry)
            self.app.call_from_thread(self._redraw_soon)

        try:
            result = prune_run(job.run_dir, APP_SPEC, progress=progress)
            job.baseline = result["baseline"]
            job.written = write_outputs(job.run_dir, result)
            job.finished = True
        except EXPECTED as exc:
            job.error = str(exc)
        except Exception as exc:  # any other failure is shown in the view; the app goes on
            job.error = f"{type(exc).__name__}: {exc}"
        self.app.call_from_thread(self._redraw_soon)

    def _redraw_soon(self) -> None:
        screen = self.screen
        if hasattr(screen, "redraw"):
            screen.redraw()

    def draw(self, feed, feeds):
        job = self.job
        self.query_one("#prune-status", TextPanel).set_renderer(lambda w, h: _status(job))
        entries = list(job.entries) if job else []

        def curves(plt):
            plt.title("Test accuracy vs fraction of units kept (every layer pruned alike; log x)")
            if not entries:
                return
            for i, name in enumerate(s for s in STRATEGIES if any(e["strategy"] == s for e in entries)):
                pts = sorted((e["keep"], e["accuracy"]) for e in entries if e["strategy"] == name)
                plt.plot(
                    [math.log10(k) for k, _ in pts],
                    [a for _, a in pts],
                    label=name,
                    color=color_of(i),
                    marker="braille",
                )
            ticks = [0.01, 0.1, 1.0]
            plt.xticks([math.log10(t) for t in ticks], [f"{t:g}" for t in ticks])
            plt.ylim(0, 1)

        self.query_one("#plot-prune", Chart).draw(curves)


def _status(job: PruneJob | None) -> Text:
    if job is None:
        return Text(
            "x (or ctrl+p → Prune) removes units of the run in focus, every layer alike: class-balanced ensembles, "
            "largest margin, weight magnitude, activity, at random or at random within the ensembles "
            f"({APP_SPEC.draws} draws), and measures accuracy on {APP_SPEC.samples} test images; for per-layer and "
            "global targets, each layer's own readout and seeds pooled use `ffterm prune RUN_DIR…`.",
            style="dim",
        )
    if job.error is not None:
        return Text(f"{job.name}: {job.error}", style="bold red")
    if job.finished:
        names = ", ".join(p.name for p in job.written)
        return Text(f"{job.name}: done, unpruned accuracy {job.baseline:.4f}; written beside the run: {names}")
    return Text(f"{job.name}: pruning… {job.done}/{job.total or '?'} measurements")
