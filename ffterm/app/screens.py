"""Modal screens: preset picker, run dialog, open-run dialog, help."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from ffterm_core.config import MODEL_KINDS, ConfigError, RunConfig
from ffterm_core.reports.run_report import class_names
from ffterm_core.store.rundir import SNAPSHOTS

from .actions import help_rows


class PresetPicker(ModalScreen[tuple[str, bool] | None]):
    """Filterable list of presets. Enter starts the highlighted one; ctrl+e customises it first."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("down", "move(1)", "Down", show=False),
        Binding("up", "move(-1)", "Up", show=False),
        Binding("pagedown", "move(8)", show=False),
        Binding("pageup", "move(-8)", show=False),
        Binding("ctrl+e", "customise", "Customise…", priority=True),
    ]

    def __init__(self, presets: Sequence[Any], default: str | None = None) -> None:
        super().__init__()
        self.presets = sorted(presets, key=lambda p: p.name != default)  # the default first, then as given
        self.default = default
        self._shown: list[Any] = []
        self._refill: Timer | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="picker", classes="dialog"):
            yield Label("Start a run: pick a preset", classes="dialog-title")
            yield Input(placeholder="type to filter (name or description)…", id="picker-filter")
            yield OptionList(id="picker-list")
            yield Static(
                Text.assemble(
                    ("enter", "bold"),
                    " start  ",
                    ("ctrl+e", "bold"),
                    " customise (model, dataset, epochs, held-out class, ℓ1/ℓ2…)  ",
                    ("esc", "bold"),
                    " cancel",
                ),
                classes="hint",
            )

    def on_mount(self) -> None:
        self._fill("")
        self.query_one("#picker-filter", Input).focus()

    def _matching(self, query: str) -> list[Any]:
        words = query.lower().split()
        return [p for p in self.presets if all(w in (p.name + " " + (p.description or "")).lower() for w in words)]

    def _fill(self, query: str) -> None:
        q = query.lower().strip()
        self._shown = self._matching(query)
        ol = self.query_one("#picker-list", OptionList)
        ol.clear_options()
        ol.add_options(
            [
                Option(Text.assemble((p.name, "bold"), "\n", ("  " + (p.description or ""), "dim")), id=p.name)
                for p in self._shown
            ]
        )
        if self._shown:
            names = [p.name for p in self._shown]
            ol.highlighted = names.index(self.default) if (not q and self.default in names) else 0

    @on(Input.Changed, "#picker-filter")
    def _filter(self, event: Input.Changed) -> None:
        # rebuild the list once typing pauses, not on every key (keeps fast typing responsive)
        if self._refill is not None:
            self._refill.stop()
        self._refill = self.set_timer(0.08, lambda: self._fill(event.value))

    def _current(self) -> str | None:
        query = self.query_one("#picker-filter", Input).value
        if self._shown != self._matching(query):  # Enter right after typing: filter first
            self._fill(query)
        ol = self.query_one("#picker-list", OptionList)
        if ol.highlighted is None or not self._shown:
            return None
        return self._shown[ol.highlighted].name

    def action_move(self, delta: int) -> None:
        ol = self.query_one("#picker-list", OptionList)
        if not self._shown:
            return
        cur = ol.highlighted or 0
        ol.highlighted = max(0, min(len(self._shown) - 1, cur + delta))

    @on(Input.Submitted, "#picker-filter")
    def _submit(self) -> None:
        name = self._current()
        if name:
            self.dismiss((name, False))

    @on(OptionList.OptionSelected, "#picker-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss((str(event.option.id), False))

    def action_customise(self) -> None:
        name = self._current()
        if name:
            self.dismiss((name, True))

    def action_cancel(self) -> None:
        self.dismiss(None)


def _select(options: Sequence[tuple[str, Any]], value: Any, id: str) -> Select:
    return Select(options, value=value, allow_blank=False, id=id)


class RunDialog(ModalScreen[RunConfig | None]):
    """Edit the main settings of a run; every change is validated with RunConfig.replace."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "start", "Start", priority=True)]

    def __init__(self, base: RunConfig) -> None:
        super().__init__()
        self.base = base
        self.config: RunConfig | None = base

    def compose(self) -> ComposeResult:
        b = self.base
        names = class_names(b.dataset)
        held = [("none", "none")] + [(f"{k} {names[k]}", str(k)) for k in range(10)]
        with Vertical(id="run-dialog", classes="dialog"):
            yield Label(f"Run settings · from preset {b.name}", classes="dialog-title")
            with Grid(id="run-grid"):
                yield Label("model")
                yield _select(
                    [(f"{k.display} ({k.description})", k.name) for k in MODEL_KINDS.values()],
                    b.model,
                    "f-model",
                )
                yield Label("dataset")
                yield _select(
                    [(d, d) for d in ("mnist", "fashionmnist", "svhn", "cifar10", "synthetic")], b.dataset, "f-dataset"
                )
                yield Label("epochs")
                yield Input(str(b.epochs), id="f-epochs", type="integer")
                yield Label("layers")
                yield Input(str(b.layers), id="f-layers", type="integer")
                yield Label("seed")
                yield Input(str(b.seed), id="f-seed", type="integer")
                yield Label("device")
                yield _select([(d, d) for d in ("auto", "cpu", "cuda")], b.device, "f-device")
                yield Label("held-out class")
                yield _select(held, "none" if b.heldout_class is None else str(b.heldout_class), "f-heldout")
                yield Label("goodness")
                yield _select([("ℓ2: G = ‖h‖₂", "l2"), ("ℓ1: G = ‖h‖₁", "l1")], b.goodness, "f-goodness")
            yield Static("", id="run-error")
            with Horizontal(classes="buttons"):
                yield Button("Start", variant="primary", id="run-start")
                yield Button("Cancel", id="run-cancel")

    def on_mount(self) -> None:
        self._validate()
        self.query_one("#f-model", Select).focus()

    def _changes(self) -> dict[str, Any]:
        held = self.query_one("#f-heldout", Select).value
        return {
            "model": self.query_one("#f-model", Select).value,
            "dataset": self.query_one("#f-dataset", Select).value,
            "epochs": self.query_one("#f-epochs", Input).value.strip(),
            "layers": self.query_one("#f-layers", Input).value.strip(),
            "seed": self.query_one("#f-seed", Input).value.strip(),
            "device": self.query_one("#f-device", Select).value,
            "heldout_class": None if held == "none" else int(str(held)),
            "goodness": self.query_one("#f-goodness", Select).value,
        }

    def _validate(self) -> RunConfig | None:
        error = self.query_one("#run-error", Static)
        try:
            cfg = self.base.replace(**self._changes())
        except ConfigError as exc:
            self.config = None
            error.update(Text("✖ " + str(exc), style="bold red"))
            self.query_one("#run-start", Button).disabled = True
            return None
        self.config = cfg
        total = cfg.total_epochs
        error.update(
            Text(
                f"✓ {cfg.model.upper()} on {cfg.dataset}: {cfg.layers} layers, {total} "
                f"{'layer-' if cfg.stages > 1 else ''}epochs, batch {cfg.effective_batch_size}"
                + (f", class {cfg.heldout_class} held out" if cfg.heldout_class is not None else ""),
                style="green",
            )
        )
        self.query_one("#run-start", Button).disabled = False
        return cfg

    @on(Select.Changed)
    @on(Input.Changed)
    def _changed(self) -> None:
        self._validate()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#run-start")
    def action_start(self) -> None:
        cfg = self._validate()
        if cfg is not None:
            self.dismiss(cfg)

    @on(Button.Pressed, "#run-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


def find_runs(root: Path, limit: int = 200) -> list[Path]:
    """Run directories (holding snapshots.jsonl) under root, newest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [p.parent for pattern in (f"*/{SNAPSHOTS}", f"*/*/{SNAPSHOTS}") for p in root.glob(pattern)]
    runs.sort(key=lambda p: (p / SNAPSHOTS).stat().st_mtime, reverse=True)
    return runs[:limit]


class OpenRunScreen(ModalScreen[Path | None]):
    """Pick a run directory to add (for comparison): type a path or choose from RUN_ROOT."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("down", "focus_list", show=False)]

    def __init__(self, run_root: Path, exclude: Sequence[Path] = ()) -> None:
        super().__init__()
        self.run_root = Path(run_root)
        excluded = {Path(p).resolve() for p in exclude}
        self.runs = [r for r in find_runs(self.run_root) if r.resolve() not in excluded]

    def compose(self) -> ComposeResult:
        with Vertical(id="open-run", classes="dialog"):
            yield Label("Add a run to compare", classes="dialog-title")
            yield Input(placeholder="path to a run directory (holding snapshots.jsonl)", id="open-path")
            yield OptionList(
                *[Option(Text.assemble((r.name, "bold"), ("  " + str(r.parent), "dim")), id=str(r)) for r in self.runs],
                id="open-list",
            )
            yield Static("" if self.runs else f"no runs found under {self.run_root}/", id="open-error", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#open-path", Input).focus()

    def action_focus_list(self) -> None:
        self.query_one("#open-list", OptionList).focus()

    @on(Input.Submitted, "#open-path")
    def _typed(self, event: Input.Submitted) -> None:
        path = Path(event.value.strip()).expanduser()
        if not event.value.strip():
            return
        if not (path / SNAPSHOTS).exists():
            self.query_one("#open-error", Static).update(
                Text(f"✖ {path} has no {SNAPSHOTS}; pick a run directory", style="bold red")
            )
            return
        self.dismiss(path)

    @on(OptionList.OptionSelected, "#open-list")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(Path(str(event.option.id)))

    def action_cancel(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,f1,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        # a grid: a description that wraps stays in its column
        table = Table.grid(padding=(0, 2), expand=True)
        table.add_column(style="bold cyan", no_wrap=True, width=17)
        table.add_column(ratio=1)
        for group, rows in help_rows():
            table.add_row(Text(group, style="bold underline"), "")
            for keys, what in rows:
                table.add_row("  " + keys, what)
            table.add_row("", "")
        footnote = Text("ctrl+p opens the command palette with every action.", style="dim")
        with Vertical(id="help", classes="dialog"):
            yield Label("ffterm · keys", classes="dialog-title")
            with VerticalScroll():
                yield Static(Group(table, footnote), id="help-keys")

    def action_close(self) -> None:
        self.dismiss(None)


class ConfirmLongRun(ModalScreen[bool]):
    """Asks before a run that takes more than a few minutes starts (a stray click or key must not
    start an 80-epoch run)."""

    BINDINGS = [Binding("escape,n", "answer(False)", "Cancel"), Binding("y", "answer(True)", "Start")]

    def __init__(self, cfg: RunConfig, image_epochs: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.image_epochs = image_epochs

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-long", classes="dialog"):
            yield Label(f"Start {self.cfg.name}?", classes="dialog-title")
            yield Static(
                f"{self.cfg.total_epochs} epochs over {self.image_epochs // self.cfg.total_epochs:,} images: "
                "a long run (tens of minutes or more).\nIt trains in its own process and goes on if this "
                "terminal closes; `ffterm attach` finds it again."
            )
            with Horizontal():
                yield Button("Start (y)", id="confirm-start", variant="primary")
                yield Button("Cancel (n)", id="confirm-cancel")

    def on_mount(self) -> None:
        self.query_one("#confirm-cancel", Button).focus()  # enter alone does not start it

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-start")

    def action_answer(self, start: bool) -> None:
        self.dismiss(start)
