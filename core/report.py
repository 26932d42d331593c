"""Snapshot report: the current snapshot as JSON plus a Markdown page of its tables.

`write_report(snapshot, history, out_dir)` writes into out_dir:
  snapshot.json  the snapshot, exactly as in snapshots.jsonl (pretty-printed)
  history.json   the run's series so far (ffterm.core.history.RunHistory.to_dict)
  report.md      accuracies, the per-layer table (sparsity, ensemble size, active units, ρ⁺, bias),
                 ensemble stability, held-out class, shared-units and Jaccard matrices per layer,
                 and the evaluated points over time.
`report_dir(run_dir)` names a fresh RUN_DIR/reports/<timestamp>/ for it. Pure: no textual, no torch.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from .formatting import fmt, fmt_pm
from .history import RunHistory
from .report_beyond import beyond_markdown
from .rundir import atomic_write_text
from .snapshot import Snapshot, _finite

CLASS_NAMES: dict[str, list[str]] = {
    "fashionmnist": ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"],
    "cifar10": ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}


def class_names(dataset: str, n: int = 10) -> list[str]:
    """Short display names of a dataset's classes (digits for MNIST, SVHN and synthetic)."""
    names = CLASS_NAMES.get(dataset.lower().replace("-", "").replace("_", ""), [])
    return [names[i] if i < len(names) else str(i) for i in range(n)]


def class_label(dataset: str, c: int) -> str:
    """'3 Dress' for named classes, '3' for digits."""
    name = class_names(dataset, max(10, c + 1))[c]
    return str(c) if name == str(c) else f"{c} {name}"


def report_dir(run_dir: Path, now: datetime | None = None) -> Path:
    """RUN_DIR/reports/<YYYYmmdd-HHMMSS>[-n]/ (not created)."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    base = Path(run_dir) / "reports"
    path = base / stamp
    n = 1
    while path.exists():
        n += 1
        path = base / f"{stamp}-{n}"
    return path


def _table(header: list[str], rows: list[list[str]], align_first_left: bool = True) -> list[str]:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join((":---" if i == 0 and align_first_left else "---:") for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _matrix(title: str, matrix: list[list[Any]] | None, names: list[str], digits: int) -> list[str]:
    if matrix is None:
        return [f"**{title}**: undefined (layer sparsity < 0.5, so no ensembles)", ""]
    n = len(matrix)
    header = ["", *[f"{i} {names[i]}" if i < len(names) else str(i) for i in range(n)]]
    rows = [
        [
            f"**{i} {names[i]}**" if i < len(names) else f"**{i}**",
            *[fmt(v, digits) if isinstance(v, float) else str(v) for v in row],
        ]
        for i, row in enumerate(matrix)
    ]
    return [f"**{title}**", "", *_table(header, rows), ""]


def render_markdown(
    snapshot: Snapshot, history: RunHistory | None = None, *, when: datetime | None = None, run_dir: Path | None = None
) -> str:
    """The report page of one (preferably evaluated) snapshot; with `run_dir`, also its prune and
    microstructure results (see report_beyond)."""
    history = history or RunHistory.from_snapshots([snapshot])
    latest = history.latest or snapshot
    names = class_names(snapshot.dataset)
    out: list[str] = [f"# Snapshot report — {snapshot.run_name}", ""]
    progress = f"epoch {snapshot.epoch}/{snapshot.total_epochs}"
    if snapshot.model == "ff" and snapshot.epochs_per_stage and snapshot.num_layers > 1:
        progress += f" (layer {snapshot.stage + 1}, epoch {snapshot.stage_epoch}/{snapshot.epochs_per_stage} of it)"
    out += _table(
        ["", ""],
        [
            ["model", snapshot.model],
            ["dataset", snapshot.dataset],
            ["device", snapshot.device],
            ["snapshot", f"{progress}, {snapshot.kind}, state {snapshot.state}"],
            ["run now at", f"epoch {latest.epoch}/{latest.total_epochs}, state {latest.state}"],
            ["training time", f"{snapshot.wall_time:.1f} s"],
            ["analysed test images", fmt(snapshot.eval_samples)],
            ["written", (when or datetime.now()).isoformat(timespec="seconds")],
        ],
    )
    if snapshot.message:
        out += ["", f"> {snapshot.message}"]
    out += ["", "## Accuracy", ""]
    if not snapshot.evaluated:
        out += ["This snapshot was not evaluated (see `eval_every`); the tables below are empty.", ""]
    rows = [["test accuracy", fmt(snapshot.test_accuracy, pct=True, pct_digits=2)]]
    best = history.best_accuracy()
    if best is not None:
        rows.append(["best so far", f"{100 * best[1]:.2f}% (epoch {best[0]})"])
    for i, a in enumerate(snapshot.layer_accuracy or []):
        rows.append([f"layer {i + 1}", fmt(a, pct=True, pct_digits=2)])
    if snapshot.heldout:
        h = snapshot.heldout
        k = h.get("class")
        label = f"{k} {names[k]}" if isinstance(k, int) and 0 <= k < len(names) else str(k)
        rows.append(["seen classes", fmt(h.get("accuracy_seen"), pct=True, pct_digits=2)])
        rows.append([f"held-out class {label}", fmt(h.get("accuracy_heldout"), pct=True, pct_digits=2)])
    out += [*_table(["", "accuracy"], rows), ""]

    layers = snapshot.layers or []
    if layers:
        out += ["## Per-layer analysis", ""]
        rows = []
        stab = (
            [(s[-1] if s else None) for s in history.stability_mean]
            if history.eval_epochs and history.eval_epochs[-1] == snapshot.epoch
            else []
        )
        for i, layer in enumerate(layers):
            rows.append(
                [
                    str(i + 1),
                    fmt(layer.get("sparsity")),
                    fmt(layer.get("sparsity_ignored_rows")),
                    fmt(layer.get("ensemble_size_pct"), 2),
                    fmt(layer.get("active_units")),
                    fmt_pm(layer.get("rho_plus")),
                    fmt_pm(layer.get("bias")),
                    fmt(layer.get("n_units_p_gt_0_05")),
                    fmt(stab[i] if i < len(stab) else None),
                ]
            )
        out += _table(
            [
                "layer",
                "sparsity",
                "all-zero rows",
                "ensemble size %",
                "active units",
                "ρ⁺ mean ± std",
                "bias mean ± std",
                "units p>0.05",
                "ensemble stability",
            ],
            rows,
        )
        out += [
            "",
            "Sparsity: mean Hoyer sparsity of correctly classified test representations (all-zero rows "
            "ignored). Ensembles are undefined (—) where sparsity < 0.5. Ensemble stability: mean over classes "
            "of the Jaccard index of each class's ensemble with the previous evaluated snapshot's.",
            "",
        ]
    if snapshot.heldout and snapshot.heldout.get("layers"):
        out += ["## Held-out class", ""]
        rows = []
        for i, hl in enumerate(snapshot.heldout["layers"]):
            ens = hl.get("ensemble")
            shared = hl.get("shared_with_seen")  # per seen class: |E_k ∩ E_c| (None at k)
            per_class = ", ".join(f"{c}: {n}" for c, n in enumerate(shared) if n) if isinstance(shared, list) else "—"
            rows.append(
                [
                    str(i + 1),
                    fmt(hl.get("sparsity")),
                    "undefined" if ens is None else str(len(ens)),
                    fmt(hl.get("shared_with_seen_total")),
                    per_class or "none",
                ]
            )
        out += [
            *_table(["layer", "sparsity", "ensemble units", "in any seen ensemble", "shared per seen class"], rows),
            "",
        ]
    for i, layer in enumerate(layers):
        out += [f"## Layer {i + 1}: shared units and Jaccard", ""]
        ens = layer.get("ensembles")
        if ens is not None:
            out += [
                "Ensemble size per class: "
                + ", ".join(f"{c} {names[c] if c < len(names) else ''}: {len(e)}" for c, e in enumerate(ens)),
                "",
            ]
        out += _matrix("Shared units |E_c ∩ E_c'|", layer.get("shared_units"), names, 0)
        out += _matrix("Jaccard |E_c ∩ E_c'| / |E_c ∪ E_c'|", layer.get("jaccard"), names, 2)
    if history.eval_epochs:
        out += ["## Over time (evaluated snapshots)", ""]
        header = [
            "epoch",
            "test acc",
            *[f"L{i + 1} sparsity" for i in range(history.num_layers)],
            *[f"L{i + 1} ens %" for i in range(history.num_layers)],
        ]
        rows = []
        for j, e in enumerate(history.eval_epochs):
            rows.append(
                [
                    str(e),
                    fmt(history.test_accuracy[j], pct=True, pct_digits=2),
                    *[fmt(history.sparsity[i][j]) for i in range(history.num_layers)],
                    *[fmt(history.ensemble_size_pct[i][j], 2) for i in range(history.num_layers)],
                ]
            )
        out += [*_table(header, rows), ""]
    out += beyond_markdown(history, run_dir)
    return "\n".join(out).rstrip() + "\n"


def write_report(
    snapshot: Snapshot, history: RunHistory | None, out_dir: Path, run_dir: Path | None = None
) -> list[Path]:
    """Write snapshot.json, history.json and report.md into out_dir (created); return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    history = history or RunHistory.from_snapshots([snapshot])
    paths = [out_dir / "snapshot.json", out_dir / "history.json", out_dir / "report.md"]
    atomic_write_text(paths[0], json.dumps(json.loads(snapshot.to_json()), indent=1) + "\n")
    atomic_write_text(paths[1], json.dumps(_finite(history.to_dict()), separators=(",", ":")) + "\n")
    atomic_write_text(paths[2], render_markdown(snapshot, history, run_dir=run_dir))
    return paths
