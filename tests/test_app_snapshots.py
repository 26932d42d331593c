"""SVG snapshot tests of the dashboard (pytest-textual-snapshot), fed fixed runs from tests/data/.

tests/data/*.jsonl are hand-made (ffterm.app.demo.demo_snapshots) deterministic snapshot files:
an FF run (3 layers, sequential), a BP run and a BP/FF run with class 3 held out.
Update the pictures after an intended UI change with `pytest tests/test_app_snapshots.py --snapshot-update`
and look at them (snapshot_report.html) before committing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from ffterm.app.demo import DemoPresets
from ffterm.app.main import FFTermApp
from ffterm.app.screens import PresetPicker
from ffterm.app.views import VIEWS
from ffterm_core.store.snapshot import Snapshot

DATA = Path(__file__).parent / "data"


def load(name: str) -> list[Snapshot]:
    return [Snapshot.from_json(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


def dashboard(*files: str) -> FFTermApp:
    runs = {f.split("_run")[0].replace("_", "-"): load(f) for f in files}
    return FFTermApp(snapshots=runs, presets=DemoPresets(), open_picker=False, run_root=Path("/nonexistent"))


def show(view: str, *keys: str):
    async def run_before(pilot) -> None:
        await pilot.pause()
        pilot.app.dashboard.action_show_view(view)
        if keys:
            await pilot.press(*keys)
        await pilot.pause()
        pilot.app.dashboard.redraw(True)
        await pilot.pause()

    return run_before


def test_fixture_files_are_valid():
    ff = load("ff_run.jsonl")
    assert len(ff) == 18 and ff[-1].kind == "final" and ff[-1].state == "finished"
    assert sum(1 for s in ff if s.evaluated) == 6
    held = load("bpff_heldout_run.jsonl")
    assert held[-1].heldout["class"] == 3


KEYS_80 = {"activations": ("]", ".", "."), "ensembles": ("j",)}
ALL_RUNS = ("ff_run.jsonl", "bp_run.jsonl", "bpff_heldout_run.jsonl")


@pytest.mark.parametrize("name", [spec.name for spec in VIEWS])
def test_dashboard_80x24(snap_compare, name):
    files = ALL_RUNS if name == "compare" else ("ff_run.jsonl",)
    assert snap_compare(dashboard(*files), terminal_size=(80, 24), run_before=show(name, *KEYS_80.get(name, ())))


@pytest.mark.parametrize("name", ["curves", "activations", "ensembles", "compare"])
def test_dashboard_160x48(snap_compare, name):
    files = ALL_RUNS if name == "compare" else ("ff_run.jsonl",)
    assert snap_compare(dashboard(*files), terminal_size=(160, 48), run_before=show(name))


def test_heldout_layers_table_80x24(snap_compare):
    assert snap_compare(dashboard("bpff_heldout_run.jsonl"), terminal_size=(80, 24), run_before=show("layers"))


def test_bp_curves_log_smoothed_80x24(snap_compare):
    assert snap_compare(dashboard("bp_run.jsonl"), terminal_size=(80, 24), run_before=show("curves", "l", "m"))


def test_preset_picker_80x24(snap_compare):
    app = FFTermApp(presets=DemoPresets(), run_root=Path("/nonexistent"))

    async def run_before(pilot) -> None:
        for _ in range(20):  # the picker opens after the first refresh
            if isinstance(pilot.app.screen, PresetPicker):
                break
            await pilot.pause()
        pilot.app.screen.query_one(Input).cursor_blink = False  # the cursor shows, whenever the shot is taken
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_help_80x24(snap_compare):
    assert snap_compare(dashboard("ff_run.jsonl"), terminal_size=(80, 24), press=["question_mark"])


def test_too_small_notice(snap_compare):
    assert snap_compare(dashboard("ff_run.jsonl"), terminal_size=(56, 18))
