"""The Suite view: every run of a suite folder (state, epoch, accuracy, sparsity per layer) and the
study tables as they fill; the screen that hosts it; and starting a built-in suite from the app.

It reads the suite folder alone (`ffterm_core.suites.status`, `ffterm_core.reports.suite_tables`), so it follows a
suite running anywhere: started from the picker (a detached `ffterm suite` process, which outlives
the app), headless in a terminal, or on a cluster writing to a shared folder. The folder is read in
a thread every `poll_s` seconds; finished runs are read once; the summary is rebuilt only when a run
has finished since the last time (similarity is never computed here, only read from the suite's
cache). Enter on a run posts `SuiteView.OpenRun` with its directory.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ffterm_core.formatting import fmt
from ffterm_core.reports.suite_tables import build_summary, caption, learning_line, table_header, table_rows
from ffterm_core.suites.plan import PLAN
from ffterm_core.suites.spec import SuiteError, list_suites
from ffterm_core.suites.status import RunStatus, suite_status

SUITE_PREFIX = "suite:"  # how the preset picker names a suite among the presets


@dataclass(frozen=True)
class SuiteChoice:
    """A built-in suite as a preset picker entry (name, description)."""

    name: str
    description: str


def suite_choices() -> list[SuiteChoice]:
    return [SuiteChoice(SUITE_PREFIX + name, f"Suite: {description}") for name, description in list_suites()]


def is_suite_dir(path: Path) -> bool:
    return (Path(path) / PLAN).is_file()


def start_suite(name: str, run_root: Path) -> Path:
    """Start `ffterm suite NAME` as a process of its own (it outlives the app; its output goes to
    SUITE/suite.log) and return the suite folder it fills."""
    suite_dir = Path(run_root) / f"{Path(name).stem}-suite"
    suite_dir.mkdir(parents=True, exist_ok=True)
    with open(suite_dir / "suite.log", "ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", "ffterm", "suite", name, "--out", str(suite_dir)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return suite_dir


STATE_STYLE = {"done": "green", "running": "cyan", "stopped": "yellow", "failed": "red", "queued": "dim"}


def status_row(r: RunStatus) -> list[Text | str]:
    """One run as table cells: setting, seed, state, epoch, accuracy, sparsity per layer."""
    epoch = "" if r.epoch is None else f"{r.epoch}/{r.total_epochs}" if r.total_epochs else str(r.epoch)
    sparsity = " ".join(fmt(s, 2) for s in r.sparsity) or "—"
    state = Text(r.state, style=STATE_STYLE.get(r.state, ""))
    if r.error:
        state.append(f" {r.error}", style="dim red")
    return [r.setting, str(r.seed), state, epoch, fmt(r.accuracy, 4), sparsity]


def summary_renderables(summary: dict) -> list[Table | Text]:
    """The study tables as rich tables (⚠ cells in red), then the failed runs."""
    warning = learning_line(summary)
    out: list[Table | Text] = [Text(warning, style="bold red")] if warning and summary["tables"] else []
    for t in summary["tables"]:
        table = Table(title=t.title, title_justify="left", caption=caption(t) or None, expand=False)
        header = table_header(t)
        for i, h in enumerate(header):
            table.add_column(h, justify="left" if i < len(t.heads) else "right", no_wrap=i >= len(t.heads))
        for row in table_rows(t):
            table.add_row(*[Text(c, style="bold red" if c.endswith("⚠") else "") for c in row])
        out.append(table)
    return out or [Text("No run has finished yet: the tables fill as runs finish.", style="dim")]


class SuiteView(Vertical):
    """Runs of a suite folder above, its study tables below; both follow the folder."""

    DEFAULT_CSS = """
    SuiteView #suite-runs { height: 1fr; min-height: 6; }
    SuiteView #suite-tables { height: 1fr; border-top: solid $primary; }
    SuiteView #suite-title { height: 1; text-style: bold; }
    """

    class OpenRun(Message):
        """Open this run's dashboard."""

        def __init__(self, run_dir: Path) -> None:
            super().__init__()
            self.run_dir = run_dir

    def __init__(self, suite_dir: Path, *, poll_s: float = 2.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.suite_dir = Path(suite_dir)
        self.poll_s = poll_s
        self.rows: list[RunStatus] = []
        self._done_seen = -1  # finished runs at the last summary

    def compose(self) -> ComposeResult:
        yield Static(f"Suite {self.suite_dir}", id="suite-title")
        table: DataTable = DataTable(id="suite-runs", cursor_type="row", zebra_stripes=True)
        table.add_columns("setting", "seed", "state", "epoch", "accuracy", "sparsity per layer")
        yield table
        with VerticalScroll(id="suite-tables"):
            yield Static(id="suite-summary")

    def on_mount(self) -> None:
        self.poll()
        self.set_interval(self.poll_s, self.poll)

    @work(thread=True, exclusive=True, group="suite-poll")
    def poll(self) -> None:
        """Read the folder (in a thread) and hand the result to the UI."""
        try:
            rows = suite_status(self.suite_dir, self.rows)
        except SuiteError:  # no plan yet: the suite is still starting
            self.app.call_from_thread(self._waiting)
            return
        done = sum(r.state == "done" for r in rows)
        summary = None
        if done != self._done_seen:
            summary = build_summary(self.suite_dir, compute_similarity=False, log=lambda _m: None)
            self._done_seen = done
        self.app.call_from_thread(self._show, rows, summary)

    def _waiting(self) -> None:
        log = self.suite_dir / "suite.log"
        last = log.read_text(errors="replace").strip().splitlines()[-1:] if log.is_file() else []
        self.query_one("#suite-title", Static).update(
            f"Suite {self.suite_dir}: starting…" + (f" ({last[0]})" if last else "")
        )

    def _show(self, rows: list[RunStatus], summary: dict | None) -> None:
        table = self.query_one("#suite-runs", DataTable)
        states = {s: sum(r.state == s for r in rows) for s in STATE_STYLE}
        counts = ", ".join(f"{n} {s}" for s, n in states.items() if n)
        self.query_one("#suite-title", Static).update(f"Suite {self.suite_dir}: {counts}")
        if [r.dir for r in rows] != [r.dir for r in self.rows]:
            table.clear()
            for r in rows:
                table.add_row(*status_row(r), key=r.dir)
        else:
            for old, new in zip(self.rows, rows):
                if old != new:
                    for col, value in zip(table.columns, status_row(new)):
                        table.update_cell(new.dir, col, value)
        self.rows = rows
        if summary is not None:
            self.query_one("#suite-summary", Static).update(_stack(summary_renderables(summary)))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        run = next((r for r in self.rows if r.dir == event.row_key.value), None)
        if run is not None and run.state != "queued":
            self.post_message(self.OpenRun(run.path))


class SuiteScreen(Screen):
    """The Suite view on a screen of its own; Enter opens a run's dashboard, Escape goes back."""

    BINDINGS = [Binding("escape", "back", "Dashboard")]

    def __init__(self, suite_dir: Path) -> None:
        super().__init__()
        self.suite_dir = Path(suite_dir)

    def compose(self) -> ComposeResult:
        yield SuiteView(self.suite_dir, id="suite-view")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#suite-runs", DataTable).focus()

    def action_back(self) -> None:
        self.app.pop_screen()


def _stack(renderables: list[Table | Text]) -> Table:
    """Renderables one under the other, a blank line between."""
    grid = Table.grid()
    for r in renderables:
        grid.add_row(r)
        grid.add_row("")
    return grid
