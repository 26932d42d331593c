"""The key map, in one place: the help overlay and the command palette read it."""

from __future__ import annotations

KEY_HELP: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Runs",
        [
            ("n", "new run: preset picker (ctrl+e there: customise)"),
            ("r", "run dialog: model, dataset, epochs, held-out, ℓ1/ℓ2…"),
            ("p", "pause / resume training"),
            ("s", "stop training (checkpoint kept)"),
            ("c", "checkpoint now"),
            ("o", "add a run directory to compare"),
        ],
    ),
    (
        "Display",
        [
            ("tab / shift+tab", "next / previous view"),
            ("[ ]  or 1-9", "previous / next layer, or layer N"),
            (", .", "previous / next class"),
            ("f", "freeze the display (training goes on)"),
            ("l", "loss axes: linear / log"),
            ("m", "smoothing (EMA) off / 0.6 / 0.9"),
            ("j", "ensemble matrix: shared units / Jaccard"),
        ],
    ),
    (
        "Output",
        [
            ("e", "export report.md, snapshot.json, history.json to RUN_DIR/reports/"),
            ("ctrl+s", "save an SVG screenshot into the run directory"),
        ],
    ),
    (
        "App",
        [
            ("? / F1", "this help"),
            ("ctrl+p", "command palette"),
            ("q / ctrl+c", "quit (stops training cleanly)"),
        ],
    ),
]
