"""Suite reports: the runs of a suite folder, grouped by setting, with error bars across seeds.

`report_suite(suite_dir)` finds every run directory inside the suite folder (any depth up to 3),
groups the runs whose settings differ only in the seed and bookkeeping (ffterm_core.suites.runner's
POOLABLE_KEYS), and writes into SUITE_DIR/reports/<timestamp>/:
  report.md, report.html  per setting: runs finished, final test accuracy and per-layer sparsity and
                          ensemble size as mean ± std over seeds (sample std), unfinished or failed runs
  figures/                per-layer sparsity (Fig. 2), ensemble size and layer accuracy, one bar per
                          setting with ± std error bars across seeds; test accuracy over the epochs
                          with a ± std band
  curves.csv              every run's per-epoch series (ffterm_core.reports.curves), one row per run and epoch,
                          led by the run's folder, setting and seed
Finished runs are read from final.json (as `ffterm summary` does), curves from snapshots.jsonl.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ffterm_core.config import RunConfig, to_dict
from ffterm_core.figures import draw as F
from ffterm_core.formatting import fmt_pm
from ffterm_core.records import SPARSITY_CUTOFF
from ffterm_core.reports.common import DAMAGED, Page, damaged, read_run_config, report_dir
from ffterm_core.reports.curves import curve_rows, to_csv
from ffterm_core.reports.html_page import HtmlPage
from ffterm_core.reports.markdown_page import MarkdownPage
from ffterm_core.reports.run_figures import FigureFiles
from ffterm_core.reports.run_report import report_run
from ffterm_core.store.history import RunHistory
from ffterm_core.store.rundir import (
    CONFIG,
    REPORTS,
    RunDirError,
    atomic_write_text,
    is_finished,
    read_final,
    read_snapshots,
)
from ffterm_core.store.validation import Notice
from ffterm_core.suites.pooling import POOLABLE_KEYS, mean_std

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_DEPTH = 3  # suite/setting/seed-N/ at most


@dataclass
class Run:
    path: Path
    config: RunConfig
    final: dict[str, Any] | None  # final.json, None until the run has finished
    history: RunHistory


@dataclass
class Setting:
    label: str
    runs: list[Run] = field(default_factory=list)

    @property
    def finished(self) -> list[dict[str, Any]]:
        return [r.final for r in self.runs if r.final is not None]

    def accuracy_over_epochs(self) -> tuple[list[int], list[float | None], list[float | None]]:
        """Test accuracy (%) at each evaluated epoch every run has reached: mean and std over the runs."""
        by_run = [dict(zip(r.history.eval_epochs, r.history.test_accuracy)) for r in self.runs if r.history.eval_epochs]
        epochs = sorted(set.intersection(*(set(d) for d in by_run))) if by_run else []
        stats = [mean_std([_percent(d[e]) for d in by_run]) for e in epochs]
        return epochs, [s["mean"] for s in stats], [s["std"] for s in stats]

    def per_layer(self, key: str, scale: float = 1.0) -> list[dict[str, Any]]:
        """mean ± std over the finished runs of a per-layer figure of final.json, one entry per layer."""
        finals = self.finished
        n_layers = max((len(f.get("layers") or []) for f in finals), default=0)
        out = []
        for i in range(n_layers):
            values = []
            for f in finals:
                if key == "accuracy":
                    accs = f.get("layer_accuracy") or []
                    v = accs[i] if i < len(accs) else None
                else:
                    layers = f.get("layers") or []
                    v = layers[i].get(key) if i < len(layers) and isinstance(layers[i], dict) else None
                values.append(v * scale if isinstance(v, (int, float)) else None)
            out.append(mean_std(values))
        return out


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else 100 * fraction


def find_runs(suite_dir: Path) -> list[Path]:
    """Run directories (holding config.yaml) inside suite_dir, in path order; report folders skipped."""
    found: list[Path] = []

    def walk(d: Path, depth: int) -> None:
        for child in sorted(p for p in d.iterdir() if p.is_dir() and p.name != REPORTS):
            if (child / CONFIG).is_file():
                found.append(child)
            elif depth < MAX_DEPTH:
                walk(child, depth + 1)

    walk(Path(suite_dir), 1)
    return found


def group_runs(run_dirs: list[Path], on_bad: Notice | None = None) -> list[Setting]:
    """Runs grouped by their settings (everything but the seed and bookkeeping), in first-seen order;
    `on_bad` hears of every snapshot line skipped as damaged."""
    groups: dict[str, Setting] = {}
    for d in run_dirs:
        cfg = read_run_config(d)
        key = json.dumps({k: v for k, v in to_dict(cfg).items() if k not in POOLABLE_KEYS}, sort_keys=True)
        run = Run(
            d, cfg, read_final(d) if is_finished(d) else None, RunHistory.from_snapshots(read_snapshots(d, on_bad))
        )
        groups.setdefault(key, Setting(label=""))
        groups[key].runs.append(run)
    settings = list(groups.values())
    for s in settings:
        names = {r.config.name for r in s.runs}
        first = s.runs[0].config
        s.label = names.pop() if len(names) == 1 else f"{first.model}-{first.dataset}"
    seen: dict[str, int] = {}
    for s in settings:  # two settings under one preset name (e.g. overrides): tell them apart
        seen[s.label] = seen.get(s.label, 0) + 1
        if seen[s.label] > 1:
            s.label = f"{s.label} ({seen[s.label]})"
    return settings


def _run_state(run: Run) -> str:
    if run.final is not None:
        return "finished"
    h = run.history
    if h.state == "failed":
        return f"failed: {h.message}" if h.message else "failed"
    return f"no final.json yet (last snapshot: {h.state}, epoch {h.latest.epoch if h.latest else 0})"


def _figures(settings: list[Setting], out_dir: Path) -> list[FigureFiles]:
    finished = [s for s in settings if s.finished]  # bars: settings with a result only
    specs: list[tuple[str, str, Callable[[], Figure]]] = [
        (
            "curves-accuracy",
            "Test accuracy over the epochs: mean over the runs of each setting, band: ± sample std (epochs "
            "every run has reached).",
            lambda: F.mean_curves(
                {s.label: s.accuracy_over_epochs() for s in settings},
                ylabel="test accuracy (%)",
                title="Test accuracy",
            ),
        ),
        (
            "sparsity",
            "Hoyer sparsity per layer of correctly classified test representations; bars: mean over seeds, "
            f"error bars: ± sample std (dashed: {SPARSITY_CUTOFF:g}, above which ensembles are defined).",
            lambda: F.layer_bars({s.label: s.per_layer("sparsity") for s in finished}, threshold=SPARSITY_CUTOFF),
        ),
        (
            "ensemble-size",
            "Mean ensemble size per layer (% of the layer's units), mean ± std over seeds.",
            lambda: F.layer_bars(
                {s.label: s.per_layer("ensemble_size_pct") for s in finished},
                ylabel="ensemble size (% of units)",
                title="Ensemble size per layer",
                ylim=None,
            ),
        ),
        (
            "accuracy",
            "Final test accuracy of each layer, mean ± std over seeds.",
            lambda: F.layer_bars(
                {s.label: s.per_layer("accuracy", scale=100.0) for s in finished},
                ylabel="test accuracy (%)",
                title="Layer accuracy",
                ylim=(0.0, 100.0),
            ),
        ),
    ]
    files = []
    for name, caption, build in specs:
        png, svg = F.save_figure(build(), out_dir, name)
        files.append(FigureFiles(name, caption, png, svg))
    return files


def _build(page: Page, suite_dir: Path, settings: list[Setting], figures: list[FigureFiles]) -> None:
    from ffterm_core import __version__

    page.table(
        ["", ""],
        [
            ["suite directory", str(suite_dir.resolve())],
            ["settings", str(len(settings))],
            ["runs", f"{sum(len(s.runs) for s in settings)} ({sum(len(s.finished) for s in settings)} finished)"],
            ["ffterm version", __version__],
            ["written", datetime.now().isoformat(timespec="seconds")],
        ],
    )
    page.heading("Result")
    rows = []
    for s in settings:
        first = s.runs[0].config
        final_acc = mean_std([f.get("test_accuracy") for f in s.finished])
        rows.append([s.label, first.model, first.dataset, f"{len(s.finished)}/{len(s.runs)}", fmt_pm(final_acc, 4)])
    page.table(["setting", "model", "dataset", "finished runs", "final test accuracy"], rows)
    page.paragraph(
        "Mean ± sample standard deviation over the finished runs (seeds) of each setting; the accuracy is each "
        "run's final one, on the whole test set.",
        note=True,
    )
    page.heading("Per layer")
    for s in settings:
        sparsity, size, acc = s.per_layer("sparsity"), s.per_layer("ensemble_size_pct"), s.per_layer("accuracy")
        if not sparsity:
            page.paragraph(f"{s.label}: no finished runs yet.", note=True)
            continue
        page.table(
            ["layer", "accuracy", "sparsity", "ensemble size %"],
            [[str(i + 1), fmt_pm(acc[i], 4), fmt_pm(sparsity[i]), fmt_pm(size[i], 2)] for i in range(len(sparsity))],
            caption=s.label,
        )
    if figures:
        page.heading("Figures")
        for f in figures:
            page.figure(f.paths, f.caption)
    page.heading("Runs")
    page.table(
        ["run", "setting", "seed", "state"],
        [
            [str(r.path.relative_to(suite_dir)), s.label, str(r.config.seed), _run_state(r)]
            for s in settings
            for r in s.runs
        ],
    )


def report_suite(suite_dir: Path, out_dir: Path | None = None, on_bad: Notice | None = None) -> list[Path]:
    """Write the suite's report; return report.md, report.html and curves.csv."""
    suite_dir = Path(suite_dir)
    run_dirs = find_runs(suite_dir)
    if not run_dirs:
        raise RunDirError(f"{suite_dir}: no run directories inside; give a folder made by `ffterm suite`")
    try:
        return _write_suite_report(suite_dir, run_dirs, out_dir, on_bad)
    except DAMAGED as exc:
        raise damaged(suite_dir, exc) from None


def _write_suite_report(
    suite_dir: Path, run_dirs: list[Path], out_dir: Path | None, on_bad: Notice | None
) -> list[Path]:
    settings = group_runs(run_dirs, on_bad)
    if not any(s.finished for s in settings):
        raise RunDirError(f"{suite_dir}: none of its {len(run_dirs)} runs has finished; report on it once one has")
    out_dir = Path(out_dir) if out_dir is not None else report_dir(suite_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = _figures(settings, out_dir / "figures")
    paths = [out_dir / "report.md", out_dir / "report.html", out_dir / "curves.csv"]
    title = f"Suite report — {suite_dir.name}"
    for page, path in ((MarkdownPage(title, base=out_dir), paths[0]), (HtmlPage(title), paths[1])):
        _build(page, suite_dir, settings, figures)
        page.write(path)
    rows = [
        {"run": str(r.path.relative_to(suite_dir)), "setting": s.label, "seed": r.config.seed, **row}
        for s in settings
        for r in s.runs
        for row in curve_rows(r.history)
    ]
    atomic_write_text(paths[2], to_csv(rows))
    return paths


def report_path(path: Path, out_dir: Path | None = None, on_bad: Notice | None = None) -> list[Path]:
    """`ffterm report PATH`: the report of a run directory, or of a suite folder holding runs."""
    path = Path(path)
    if not path.is_dir():
        raise RunDirError(f"{path}: no such directory; give a run directory or a suite directory")
    if out_dir is not None and Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise RunDirError(f"{out_dir}: is a file; give --out a folder")
    is_run = (path / CONFIG).is_file()
    if not is_run and not find_runs(path):
        raise RunDirError(
            f"{path}: neither a run directory (no {CONFIG}) nor a suite directory (no runs inside); "
            "give a folder made by `ffterm run` or `ffterm suite`"
        )
    try:
        return report_run(path, out_dir, on_bad) if is_run else report_suite(path, out_dir, on_bad)
    except OSError as exc:
        raise RunDirError(
            f"{exc.filename or out_dir or path}: cannot write the report ({exc.strerror or exc})"
        ) from None
