"""Every key of the app, in one registry: the bindings, the command palette, the help overlay and
docs/usage.md's key table are all made from KEYS (`python -m ffterm.app.actions` prints the table).

An action string runs in the dashboard's namespace: `layer(1)` is Dashboard.action_layer, and
`app.export` is FFTermApp.action_export. Entries with scope "app" are bound on the App (they work
over dialogs too); the others on the dashboard (dialogs keep their letters for typing).
Entries that start or steer runs are marked `steers_runs`: a read-only app (what `ffterm serve`
gives visitors) leaves them out of its palette, and the RunController refuses them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby, pairwise
from typing import Literal

from textual.binding import Binding, BindingType

# Textual key names that people know by their character
_SHOWN = {
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "comma": ",",
    "full_stop": ".",
    "question_mark": "?",
    "f1": "F1",
}


@dataclass(frozen=True)
class KeyAction:
    group: str  # the help overlay's and the manual's section
    keys: str  # Textual key names, comma-separated
    action: str  # what the key runs (see the module docstring); "{n}" with numbered
    help: str  # the help and manual line; neighbours with the same line share it
    title: str = ""  # the command palette's entry ("": not in the palette)
    footer: str = ""  # the footer's label ("": not in the footer)
    scope: Literal["dashboard", "app"] = "dashboard"
    priority: bool = False  # before the focused widget sees the key (tab)
    numbered: bool = False  # keys 1-9 run the action with n = 0..8
    builtin: bool = False  # Textual binds it already (ctrl+p): help and manual only
    steers_runs: bool = False  # starts or steers runs: not for read-only visitors

    @property
    def shown(self) -> str:
        """The keys as people read them: `[`, `? / F1`, `1-9`."""
        if self.numbered:
            return "1-9"
        return " / ".join(_SHOWN.get(k, k) for k in self.keys.split(","))

    def bindings(self) -> Iterator[Binding]:
        if self.builtin:
            return
        if self.numbered:
            for k in range(1, 10):
                yield Binding(str(k), self.action.format(n=k - 1), f"{self.title} {k}", show=False)
            return
        yield Binding(self.keys, self.action, self.footer or self.title, show=bool(self.footer), priority=self.priority)


KEYS = [
    # runs
    KeyAction("Runs", "n", "app.new_run", "new run: preset picker (ctrl+e there: customise)", "New run: pick a preset", "New run",
              steers_runs=True),
    KeyAction("Runs", "r", "app.run_dialog", "run dialog: model, dataset, epochs, held-out, ℓ1/ℓ2…",
              "Run settings (model, dataset, epochs, held-out class, goodness)…", steers_runs=True),
    KeyAction("Runs", "p", "app.toggle_pause", "pause / resume training", "Pause / resume training", "Pause",
              steers_runs=True),
    KeyAction("Runs", "s", "app.stop", "stop training (checkpoint kept)", "Stop training", steers_runs=True),
    KeyAction("Runs", "c", "app.checkpoint", "checkpoint now", "Checkpoint now", steers_runs=True),
    KeyAction("Runs", "o", "app.open_run", "add a run directory to compare", "Add a run to compare…"),
    KeyAction("Runs", "u", "app.show_suite", "the suite view: its runs (enter opens one) and study tables",
              "Show the suite view"),
    # display
    KeyAction("Display", "tab", "next_view", "next / previous view", "Next view", priority=True),
    KeyAction("Display", "shift+tab", "previous_view", "next / previous view", "Previous view", priority=True),
    KeyAction("Display", "left_square_bracket", "layer(-1)", "previous / next layer, or layer N", "Previous layer"),
    KeyAction("Display", "right_square_bracket", "layer(1)", "previous / next layer, or layer N", "Next layer"),
    KeyAction("Display", "", "set_layer({n})", "previous / next layer, or layer N", "Layer", numbered=True),
    KeyAction("Display", "comma", "cls(-1)", "previous / next class", "Previous class"),
    KeyAction("Display", "full_stop", "cls(1)", "previous / next class", "Next class"),
    KeyAction("Display", "f", "freeze", "freeze the display (training goes on)", "Freeze / unfreeze the display", "Freeze"),
    KeyAction("Display", "l", "toggle_log", "loss axes: linear / log", "Toggle log scale"),
    KeyAction("Display", "m", "smoothing", "smoothing (EMA) off / 0.6 / 0.9", "Cycle smoothing"),
    KeyAction("Display", "j", "toggle_jaccard", "ensemble matrix: shared units / Jaccard", "Toggle shared units / Jaccard"),
    # output
    KeyAction("Output", "e", "app.export",
              "export the full report (report.html, figures/, curves.csv, report.md, snapshot.json, history.json) "
              "to RUN_DIR/reports/", "Export the full report", "Export"),
    KeyAction("Output", "x", "prune", "prune the run in focus: accuracy vs units kept (Prune view)",
              "Prune units of this run (accuracy vs units kept)", steers_runs=True),
    KeyAction("Output", "ctrl+s", "app.save_svg", "save an SVG screenshot into the run directory", "Save SVG screenshot"),
    # the app
    KeyAction("App", "q", "app.quit_app", "quit (a run started here goes on training)", "Quit", "Quit", scope="app"),
    KeyAction("App", "ctrl+c", "app.quit_app", "quit (a run started here goes on training)", scope="app", priority=True),
    KeyAction("App", "question_mark,f1", "app.help", "this help", "Help: keys", "Help", scope="app"),
    KeyAction("App", "ctrl+p", "app.command_palette", "command palette", builtin=True),
]  # fmt: skip


def bindings(scope: Literal["dashboard", "app"]) -> list[BindingType]:
    """The Textual bindings of the dashboard or of the App."""
    return [b for key in KEYS if key.scope == scope for b in key.bindings()]


def palette_entries(read_only: bool = False) -> list[KeyAction]:
    """The entries the command palette lists (its key shown as help); read_only: none that steers runs."""
    return [
        key
        for key in KEYS
        if key.title and not key.numbered and not key.builtin and not (read_only and key.steers_runs)
    ]


def help_rows() -> list[tuple[str, list[tuple[str, str]]]]:
    """(section, [(keys, what they do)]) for the help overlay; neighbours sharing a line merge."""
    sections = []
    for group, keys in groupby(KEYS, key=lambda k: k.group):
        rows = [(_join([k.shown for k in same]), text) for text, same in groupby(keys, key=lambda k: k.help)]
        sections.append((group, rows))
    return sections


def _join(shown: list[str]) -> str:
    """`[ ]` for single characters side by side, `tab / shift+tab` otherwise."""
    out = shown[0]
    for prev, cur in pairwise(shown):
        out += (" " if len(prev) == len(cur) == 1 else " / ") + cur
    return out


def key_table_markdown() -> str:
    """docs/usage.md's key table."""
    out = ["| key | action |", "|---|---|"]
    for _, rows in help_rows():
        for shown, text in rows:
            keys = " ".join(f"`{k}`" for k in shown.replace(" / ", " ").split())
            out.append(f"| {keys} | {text} |")
    return "\n".join(out)


if __name__ == "__main__":
    print(key_table_markdown())
