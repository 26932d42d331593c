"""Run reports: the run's numbers as Markdown and as one self-contained HTML page with the study's figures.

`write_report(snapshot, history, out_dir)` (the app's export; `ffterm report RUN_DIR`) writes into out_dir:
  snapshot.json  the snapshot, exactly as in snapshots.jsonl (pretty-printed)
  history.json   the run's series so far (ffterm_core.store.history.RunHistory.to_dict)
  report.md      settings, the result (final accuracy), the per-layer table (sparsity, ensemble size,
                 active units, ρ⁺, bias), ensemble stability, the held-out class, the figures, and an
                 appendix with the shared-units and Jaccard matrices and the evaluated points over time
  report.html    the same page with the figures inlined: one file that opens offline
  figures/       each figure as PNG and SVG (ffterm_core.reports.run_figures)
  curves.csv     every per-epoch series, one row per epoch (ffterm_core.reports.curves)
`report_dir(run_dir)` names a fresh RUN_DIR/reports/<timestamp>/ for it. No textual, no torch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ffterm_core.config import RunConfig
from ffterm_core.data.datasets import class_label, class_names, num_classes
from ffterm_core.formatting import fmt, fmt_pm
from ffterm_core.records import (
    CHANCE_MULTIPLE,
    LAYER_STATS,
    SPARSITY_CUTOFF,
    LayerStat,
    did_not_learn,
    near_chance_limit,
)
from ffterm_core.reports.common import DAMAGED, Page, damaged, read_run_config, report_dir
from ffterm_core.reports.curves import write_curves_csv
from ffterm_core.reports.html_page import HtmlPage
from ffterm_core.reports.markdown_page import MarkdownPage
from ffterm_core.reports.run_figures import FigureFiles, render_figures, run_figures
from ffterm_core.reports.run_report_beyond import beyond_figures, beyond_sections
from ffterm_core.store.history import RunHistory
from ffterm_core.store.rundir import (
    CONFIG,
    REPORTS,
    SNAPSHOTS,
    RunDirError,
    atomic_write_text,
    read_final_if_any,
    read_snapshots,
)
from ffterm_core.store.snapshot import Snapshot, _finite
from ffterm_core.store.validation import Notice, final_did_not_learn

PEAK_NOTE = (
    "a monitoring figure, not a result: choosing the best epoch by its test accuracy is selection on the test set"
)


# class_label and class_names live with the datasets; still importable from here for the views
__all__ = ["class_label", "class_names", "render_markdown", "report_dir", "write_report"]


def _version() -> str:
    from ffterm_core import __version__

    return __version__


def _settings_rows(cfg: RunConfig, width: int | None) -> list[list[str]]:
    hidden = str(cfg.hidden) if cfg.hidden is not None else (f"{width} (the dataset's)" if width else "the dataset's")
    rows = [
        ["model", cfg.model],
        ["dataset", cfg.dataset],
        ["seed", str(cfg.seed)],
        ["learning rate", f"{cfg.lr:g}"],
        ["epochs", f"{cfg.epochs}" + (" per layer" if cfg.stages > 1 else "")],
        ["batch size", str(cfg.effective_batch_size)],
        ["hidden layers × width", f"{cfg.layers} × {hidden}"],
    ]
    if cfg.kind.goodness:
        rows += [
            ["threshold θ", f"{cfg.threshold:g}"],
            ["loss", cfg.loss],
            ["schedule", cfg.schedule if cfg.kind.layerwise else "— (end to end)"],
            ["goodness", cfg.goodness],
            ["normalize", cfg.effective_normalize + (" (auto)" if cfg.normalize == "auto" else "")],
            ["negatives", cfg.negatives],
        ]
    elif cfg.act_l1:
        rows.append(["activation ℓ1 penalty", f"{cfg.act_l1:g}"])
    rows += [["precision", cfg.precision], ["ensemble factor", f"{cfg.ensemble_factor:g}"]]
    if cfg.heldout_class is not None:
        rows.append(["held-out class", f"{cfg.heldout_class} (test images labelled: {cfg.heldout_label})"])
    for key in ("train_limit", "test_limit"):
        if getattr(cfg, key) is not None:
            rows.append([key.replace("_", " "), str(getattr(cfg, key))])
    return rows


def _layer_width(snapshot: Snapshot) -> int | None:
    for layer in snapshot.layers or []:
        if isinstance(layer.get("n_units"), int):
            return layer["n_units"]
        for row in layer.get("class_mean_activation") or []:
            if row is not None:
                return len(row)
    return None


def _result_rows(snapshot: Snapshot, dataset: str) -> list[list[str]]:
    final = snapshot.kind == "final"
    what = "final test accuracy" if final else f"test accuracy at epoch {snapshot.epoch} (run not finished)"
    rows = [[what, fmt(snapshot.test_accuracy, pct=True, pct_digits=2)]]
    for i, a in enumerate(snapshot.layer_accuracy or []):
        rows.append([f"layer {i + 1}", fmt(a, pct=True, pct_digits=2)])
    if snapshot.heldout:
        h = snapshot.heldout
        k = h.get("class")
        rows.append(["seen classes", fmt(h.get("accuracy_seen"), pct=True, pct_digits=2)])
        rows.append([f"held-out class {_class(dataset, k)}", fmt(h.get("accuracy_heldout"), pct=True, pct_digits=2)])
    return rows


def _class(dataset: str, k: Any) -> str:
    """class_label for a class index read from a file (anything else shown as it is)."""
    return class_label(dataset, k) if isinstance(k, int) and not isinstance(k, bool) and k >= 0 else str(k)


def stat_text(layer: Any, stat: LayerStat, digits: int, sep: str = " ± ") -> str:
    """One per-layer statistic as text: a summary as mean ± std, "—" where absent or undefined."""
    value = layer.get(stat.name) if isinstance(layer, dict) else None
    if stat.kind == "summary":
        return fmt_pm(value, digits, sep=sep)
    return fmt(value, digits)


def _layer_rows(snapshot: Snapshot, history: RunHistory) -> list[list[str]]:
    stab = (
        [(s[-1] if s else None) for s in history.stability_mean]
        if history.eval_epochs and history.eval_epochs[-1] == snapshot.epoch
        else []
    )
    return [
        [
            str(i + 1),
            *[stat_text(layer, stat, stat.digits) for stat in LAYER_STATS],
            fmt(stab[i] if i < len(stab) else None),
            fmt(mean_stability_floor(layer)),
        ]
        for i, layer in enumerate(snapshot.layers or [])
    ]


def mean_stability_floor(layer: Any) -> float | None:
    """Mean over the classes of the layer's split-half Jaccard (absent in files of earlier versions)."""
    floor = layer.get("stability_floor") if isinstance(layer, dict) else None
    defined = [v for v in floor if v is not None] if isinstance(floor, list) else []
    return sum(defined) / len(defined) if defined else None


LAYER_HEADER = ["layer", *[stat.title for stat in LAYER_STATS], "ensemble stability", "split-half floor"]


def _heldout_rows(snapshot: Snapshot, dataset: str) -> list[list[str]]:
    rows = []
    heldout_layers = snapshot.heldout.get("layers") if snapshot.heldout else None
    for i, hl in enumerate(heldout_layers or []):
        ens = hl.get("ensemble")
        shared = hl.get("shared_with_seen")  # per seen class: |E_k ∩ E_c| (None at k)
        if isinstance(shared, list):
            per_class = ", ".join(f"{_class(dataset, c)}: {n}" for c, n in enumerate(shared) if n) or "none"
        else:
            per_class = "—"
        rows.append(
            [
                str(i + 1),
                fmt(hl.get("sparsity")),
                "undefined" if ens is None else str(len(ens)),
                fmt(hl.get("shared_with_seen_total")),
                per_class,
            ]
        )
    return rows


def _matrix_rows(
    matrix: Sequence[Sequence[float | None]], dataset: str, digits: int
) -> tuple[list[str], list[list[str]]]:
    labels = [_class(dataset, i) for i in range(len(matrix))]
    rows = [
        [labels[i], *["—" if v is None else fmt(v, digits) if isinstance(v, float) else str(v) for v in row]]
        for i, row in enumerate(matrix)
    ]
    return ["", *labels], rows


def _over_time(history: RunHistory) -> tuple[list[str], list[list[str]]]:
    n = history.num_layers
    header = [
        "epoch",
        "test acc",
        *[f"L{i + 1} sparsity" for i in range(n)],
        *[f"L{i + 1} ens %" for i in range(n)],
        *[f"L{i + 1} stability" for i in range(n)],
    ]
    rows = []
    for j, e in enumerate(history.eval_epochs):
        rows.append(
            [
                str(e),
                fmt(history.test_accuracy[j], pct=True, pct_digits=2),
                *[fmt(history.per_layer["sparsity"][i][j]) for i in range(n)],
                *[fmt(history.per_layer["ensemble_size_pct"][i][j], 2) for i in range(n)],
                *[fmt(history.stability_mean[i][j]) for i in range(n)],
            ]
        )
    return header, rows


def build_report(
    page: Page,
    snapshot: Snapshot,
    history: RunHistory,
    *,
    config: RunConfig | None = None,
    run_dir: Path | None = None,
    figures: Sequence[FigureFiles] = (),
    when: datetime | None = None,
) -> None:
    """Write the report of one (preferably evaluated) snapshot on `page`."""
    warning = learning_warning(snapshot, run_dir)
    if warning:
        page.paragraph(warning)
    _overview(page, snapshot, history, run_dir, when or datetime.now())
    page.heading("Settings")
    if config is not None:
        page.table(["setting", "value"], _settings_rows(config, _layer_width(snapshot)))
    else:
        page.paragraph("The run's settings were not found (no config.yaml next to its snapshots).", note=True)
    _result(page, snapshot, history)
    _analysis(page, snapshot, history, config)
    beyond_sections(page, history, run_dir)
    if figures:
        page.heading("Figures")
        for f in figures:
            page.figure(f.paths, f.caption)
    _appendix(page, snapshot, history)


def learning_warning(snapshot: Snapshot, run_dir: Path | None = None) -> str | None:
    """The report's top line for a finished run that did not learn (final.json's flag, else the same rule
    applied to the final snapshot's accuracy); None otherwise."""
    if snapshot.kind != "final":
        return None
    final = read_final_if_any(run_dir) if run_dir is not None else None
    classes = num_classes(snapshot.dataset)
    flag = final_did_not_learn(final) if final is not None else did_not_learn(snapshot.test_accuracy, classes)
    if not flag:
        return None
    return (
        f"⚠ This run did not learn: its final test accuracy {fmt(snapshot.test_accuracy, pct=True, pct_digits=2)} "
        f"is below {CHANCE_MULTIPLE:g}× chance ({100 * near_chance_limit(classes):.0f}% for {classes} classes); "
        "its sparsity and ensembles describe an untrained network, not what training produces."
    )


def _overview(page: Page, snapshot: Snapshot, history: RunHistory, run_dir: Path | None, when: datetime) -> None:
    latest = history.latest or snapshot
    progress = f"epoch {snapshot.epoch}/{snapshot.total_epochs}"
    if snapshot.stages > 1:
        progress += f" (layer {snapshot.stage + 1}, epoch {snapshot.stage_epoch}/{snapshot.epochs_per_stage} of it)"
    page.table(
        ["", ""],
        [
            ["model", snapshot.model],
            ["dataset", snapshot.dataset],
            ["device", snapshot.device],
            ["run directory", str(Path(run_dir).resolve()) if run_dir is not None else "—"],
            ["snapshot", f"{progress}, {snapshot.kind}, state {snapshot.state}"],
            ["run now at", f"epoch {latest.epoch}/{latest.total_epochs}, state {latest.state}"],
            ["training time", f"{snapshot.wall_time:.1f} s"],
            ["analysed test images", fmt(snapshot.eval_samples)],
            ["ffterm version", _version()],
            ["written", when.isoformat(timespec="seconds")],
        ],
    )
    if snapshot.message:
        page.paragraph(snapshot.message, note=True)


def _result(page: Page, snapshot: Snapshot, history: RunHistory) -> None:
    """The final accuracy is the result; the best accuracy seen on the way is only labelled as monitoring."""
    page.heading("Result")
    if not snapshot.evaluated:
        page.paragraph("This snapshot was not evaluated (see eval_every); the tables below are empty.", note=True)
    page.table(["", "accuracy"], _result_rows(snapshot, snapshot.dataset))
    best = history.best_accuracy()
    if best is not None:
        page.paragraph(
            f"Peak test accuracy seen during training: {100 * best[1]:.2f}% (epoch {best[0]}) — {PEAK_NOTE}.",
            note=True,
        )


def _analysis(page: Page, snapshot: Snapshot, history: RunHistory, config: RunConfig | None) -> None:
    if snapshot.layers:
        page.heading("Per-layer analysis")
        factor = snapshot.layers[0].get("ensemble_factor", config.ensemble_factor if config else 2.0)
        page.table(LAYER_HEADER, _layer_rows(snapshot, history))
        page.paragraph(
            "Sparsity: mean Hoyer sparsity of correctly classified test representations (all-zero rows ignored). "
            f"Ensemble of a class: the units whose mean activation on it exceeds {factor:g}× the mean of the other "
            f"units; undefined (—) where sparsity < {SPARSITY_CUTOFF:g}. Lifetime sparsity: per unit, how selectively it "
            "responds across the images (Treves–Rolls; 0: alike on all, 1: on one only), mean ± std over the units "
            "that respond to any. Active units: the units with a non-zero activation on at least one of those "
            "correctly classified test images (the others never fire on them). Ensemble stability: mean over "
            "classes of the Jaccard index of each class's ensemble with the previous evaluated snapshot's, both on the live evaluations' images "
            "(the final model re-evaluated on them; a frozen layer on the images it classified correctly when it "
            "froze). Split-half floor: the Jaccard index between the ensembles of two random halves of the same "
            "images (mean of 5 splits, over the classes): what chance alone gives, so stability is read against it.",
            note=True,
        )
    if snapshot.heldout and snapshot.heldout.get("layers"):
        page.heading("Held-out class")
        page.table(
            ["layer", "sparsity", "ensemble units", "in any seen ensemble", "shared per seen class"],
            _heldout_rows(snapshot, snapshot.dataset),
        )


def _appendix(page: Page, snapshot: Snapshot, history: RunHistory) -> None:
    """The long tables: each layer's 10×10 shared-units and Jaccard matrices, the evaluations over time."""
    if not (snapshot.layers or history.eval_epochs):
        return
    page.heading("Appendix")
    for i, layer in enumerate(snapshot.layers or []):
        page.heading(f"Layer {i + 1}: shared units and Jaccard", 3)
        ens = layer.get("ensembles")
        if ens is None:
            page.paragraph(
                f"Undefined: the layer's sparsity is below {SPARSITY_CUTOFF:g}, so it has no ensembles.", note=True
            )
            continue
        sizes = ", ".join(
            f"{_class(snapshot.dataset, c)}: {'undefined (no correctly classified image)' if e is None else len(e)}"
            for c, e in enumerate(ens)
        )
        page.paragraph(f"Ensemble size per class: {sizes}")
        matrices: list[tuple[str, Sequence[Sequence[float | None]] | None, int]] = [
            ("Shared units |E_c ∩ E_c'|", layer.get("shared_units"), 0),
            ("Jaccard |E_c ∩ E_c'| / |E_c ∪ E_c'|", layer.get("jaccard"), 2),
        ]
        for title, matrix, digits in matrices:
            if matrix is not None:
                page.table(*_matrix_rows(matrix, snapshot.dataset, digits), caption=title)
    if history.eval_epochs:
        page.heading("Evaluated snapshots over time", 3)
        page.table(*_over_time(history))


def render_markdown(
    snapshot: Snapshot,
    history: RunHistory | None = None,
    *,
    config: RunConfig | None = None,
    run_dir: Path | None = None,
    when: datetime | None = None,
) -> str:
    """The Markdown report of one snapshot, without figures."""
    page = MarkdownPage(f"Run report — {snapshot.run_name}")
    build_report(
        page, snapshot, history or RunHistory.from_snapshots([snapshot]), config=config, run_dir=run_dir, when=when
    )
    return page.render()


def _run_dir_of(out_dir: Path) -> Path | None:
    """RUN_DIR for an out_dir made by `report_dir` (RUN_DIR/reports/<stamp>), else None."""
    parent = Path(out_dir).parent
    return parent.parent if parent.name == REPORTS and (parent.parent / CONFIG).is_file() else None


def write_report(
    snapshot: Snapshot, history: RunHistory | None, out_dir: Path, *, run_dir: Path | None = None
) -> list[Path]:
    """Write the report files into out_dir (created); return the top-level ones, report.md third.

    run_dir: where config.yaml is (default: found from an out_dir named by `report_dir`). Settings
    that cannot be read leave the settings table out rather than losing the report.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    history = history or RunHistory.from_snapshots([snapshot])
    run_dir = run_dir if run_dir is not None else _run_dir_of(out_dir)
    config = None
    if run_dir is not None:
        try:
            config = read_run_config(run_dir)
        except RunDirError:
            config = None
    names = class_names(snapshot.dataset)
    factor = config.ensemble_factor if config else 2.0
    specs = run_figures(snapshot, history, names, factor) + beyond_figures(history, run_dir, names)
    figures = render_figures(specs, out_dir / "figures")
    when = datetime.now()
    paths = [out_dir / name for name in ("snapshot.json", "history.json", "report.md", "report.html", "curves.csv")]
    atomic_write_text(paths[0], json.dumps(json.loads(snapshot.to_json()), indent=1) + "\n")
    atomic_write_text(paths[1], json.dumps(_finite(history.to_dict()), separators=(",", ":")) + "\n")
    title = f"Run report — {snapshot.run_name}"
    for page, path in ((MarkdownPage(title, base=out_dir), paths[2]), (HtmlPage(title), paths[3])):
        build_report(page, snapshot, history, config=config, run_dir=run_dir, figures=figures, when=when)
        page.write(path)
    write_curves_csv(history, paths[4])
    return paths


def report_run(run_dir: Path, out_dir: Path | None = None, on_bad: Notice | None = None) -> list[Path]:
    """`ffterm report RUN_DIR`: the report of the run's last evaluated snapshot (else its last one);
    damaged snapshot lines are skipped, each reported through `on_bad`."""
    run_dir = Path(run_dir)
    read_run_config(run_dir)  # refuse a folder that is not a run before writing anything
    try:
        history = RunHistory.from_snapshots(read_snapshots(run_dir, on_bad))
        snapshot = history.latest_evaluated or history.latest
        if snapshot is None:
            raise RunDirError(f"{run_dir}: the run has no snapshots yet; report on it after its first epoch")
        return write_report(snapshot, history, out_dir or report_dir(run_dir), run_dir=run_dir)
    except DAMAGED as exc:
        raise damaged(run_dir / SNAPSHOTS, exc) from None
