"""Report sections for the questions the study left open: the life of ensemble units, the
microstructure of each class's activation patterns, and pruning guided by the ensembles.

`beyond_sections(page, history, run_dir)` writes report sections on a report page: the life of every
class ensemble from the run's history (always), microstructure from RUN_DIR/analysis.json when
`ffterm analyze --microstructure` wrote it, pruning from RUN_DIR/prune.json when `ffterm prune` wrote
it. `beyond_figures` lists their figures for ffterm_core.reports.run_figures.render_figures. No textual, no torch.
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ffterm_core.analysis.ensemble_life import EnsembleLife
from ffterm_core.data.datasets import class_label
from ffterm_core.formatting import fmt
from ffterm_core.records import SPARSITY_CUTOFF
from ffterm_core.reports.common import read_run_config
from ffterm_core.reports.run_figures import FigureSpec
from ffterm_core.store import rundir
from ffterm_core.store.history import RunHistory
from ffterm_core.store.rundir import RunDirError

if TYPE_CHECKING:
    from ffterm_core.reports.common import Page


def life_rows(life: EnsembleLife, layer: int, dataset: str = "") -> list[list[str]]:
    """Per class: stable-from epoch, units ever members, final size (at the last evaluation, "—" where undefined
    there), turnover summed after the first evaluation, last, and for a frozen layer the image set's drift summed
    after the freeze ("—" elsewhere)."""
    rows = []
    for c, cl in enumerate(life.layers[layer]):
        defined = [t for t in cl.turnover if t is not None]
        final = cl.members[-1] if cl.members else None
        drift = [d for d in cl.drift if d is not None]
        rows.append(
            [
                class_label(dataset, c) if dataset else str(c),
                fmt(cl.stable_epoch(life.threshold)),
                str(len(cl.joined)),
                fmt(len(final) if final is not None else None),
                fmt(sum(defined[1:])),
                fmt(defined[-1] if defined else None),
                fmt(sum(drift) if cl.frozen_from is not None else None),
            ]
        )
    return rows


LIFE_HEADER = [
    "class",
    "stable from epoch",
    "units ever members",
    "final size",
    "turnover (sum)",
    "turnover (last)",
    "image-set drift (sum)",
]


def life_section(page: Page, life: EnsembleLife, history: RunHistory) -> None:
    if not life.epochs or not any(life.layers):
        return
    last = history.latest_evaluated
    earlier = (
        last is not None
        and last.kind == "final"
        and not any(isinstance(la, dict) and "live_ensembles" in la for la in last.layers or [])
    )
    page.heading("The life of ensemble units")
    page.paragraph(
        f"Evaluations at epochs {life.epochs[0]}…{life.epochs[-1]} ({len(life.epochs)}). Stable from: the first "
        f"epoch after which the ensemble's Jaccard index with the final ensemble stays ≥ {life.threshold:g}. "
        "Turnover: units that joined plus units that left since the previous evaluation, summed over the "
        "evaluations after the first. Every evaluation, the last one too, is on the same images: the live "
        "evaluations' fixed subset of the test set (the final model re-evaluated on it; the final analysis "
        "elsewhere in this report uses the whole test set). A frozen layer (its training stage done) is followed "
        "on the images it classified correctly at its first evaluation after the freeze, so its membership no "
        "longer changes; image-set drift: how many units entered or left the ensemble the evaluations saw on "
        "their own correct images after the freeze, a change of the images, not of the layer. A class without a "
        "correctly classified image has no ensemble there (undefined, not empty)."
        + (
            " This run's final snapshot is of an earlier version: it holds the final model's ensembles on the whole "
            "test set only, so its point is undefined for the layers still training at the end, and so are their "
            "final sizes and stable-from epochs."
            if earlier
            else ""
        ),
        note=True,
    )
    for i, classes in enumerate(life.layers):
        frozen = next((cl.frozen_from for cl in classes if cl.frozen_from is not None), None)
        if classes:
            caption = f"Layer {i + 1}" + (f" (frozen from epoch {frozen})" if frozen is not None else "")
            page.table(LIFE_HEADER, life_rows(life, i, history.dataset), caption=caption)
        else:
            page.paragraph(f"Layer {i + 1}: ensembles never defined (sparsity < {SPARSITY_CUTOFF:g}).", note=True)


def microstructure_section(page: Page, analysis: dict[str, Any], dataset: str = "") -> None:
    layers = analysis.get("layers")
    if not isinstance(layers, list) or not any(isinstance(la, dict) and la.get("microstructure") for la in layers):
        return
    page.heading("Microstructure of the class patterns")
    entries = [e for la in layers for e in la.get("microstructure") or []]
    metric = next((e.get("silhouette_metric") for e in entries if e.get("silhouette_metric")), None)
    page.paragraph(
        "Correctly classified test images of each class clustered by their activation pattern (Ward on unit-length "
        "patterns; k = 2…6 by the best silhouette ≥ 0.25 with every pattern ≥ max(10, 5 %) images, else one "
        "pattern). Per pattern: images, and the Jaccard index of its own ensemble with the class ensemble; the "
        "first pattern is the dominant one. "
        + (
            f"Silhouette on the {metric} distance between the unit-length patterns. "
            if metric
            else "Silhouette on the cosine distance (a file of an earlier version; it reads higher than the "
            "Euclidean one: rerun `ffterm analyze --microstructure`). "
        )
        + "Stability: mean adjusted Rand index between the clustering and its repeats on 5 random 80 % subsamples "
        "of the images (1: the same patterns every time, about 0: chance), and the fraction of repeats with as "
        "many patterns.",
        note=True,
    )
    for i, layer in enumerate(layers):
        rows = []
        for e in layer.get("microstructure") or []:
            sizes = ", ".join(str(p["size"]) for p in e["patterns"]) or "—"
            jac = ", ".join(fmt(p["jaccard_with_class"], 2) for p in e["patterns"]) or "—"
            rows.append(
                [
                    class_label(dataset, e["class"]) if dataset else str(e["class"]),
                    str(len(e["patterns"])),
                    sizes,
                    jac,
                    fmt(e.get("silhouette"), 2),
                    fmt(e.get("stability_ari"), 2),
                    fmt(e.get("stability_same_k"), 2),
                ]
            )
        if rows:
            page.table(
                ["class", "patterns", "images", "Jaccard", "silhouette", "stability (ARI)", "same k"],
                rows,
                caption=f"Layer {i + 1}",
            )


RENAMED = {"ensemble": "largest-margin"}  # strategy names of older prune.json files
BREAK = 0.10  # a class "breaks" when its accuracy falls this far below its unpruned accuracy


def strategy_label(name: str) -> str:
    return f"{name} (= {RENAMED[name]})" if name in RENAMED else name


def _cell(e: dict[str, Any] | None, key: str) -> str:
    if e is None or e.get(key) is None:
        return "—"
    std = e.get("std" if key == "accuracy" else "own_std")
    return fmt(e[key]) + (f" ± {std:.3f}" if std is not None else "")


def summary_keeps(result: dict[str, Any], wanted: tuple[float, ...] = (0.01, 0.1)) -> list[float]:
    """The measured fractions nearest (on a log scale) to each of `wanted`, without repeats, ascending:
    a short summary's columns whatever fractions were measured."""
    measured = sorted({e["keep"] for es in result["strategies"].values() for e in es})
    if not measured:
        return []
    nearest = {min(measured, key=lambda k: (abs(math.log(k / w)), k)) for w in wanted}
    return sorted(nearest)


def prune_rows(result: dict[str, Any], keeps: list[float]) -> list[list[str]]:
    """Per strategy and target: the network's readout at each of `keeps` (± std over draws, or over runs
    when pooled), then the smallest keep within 1 point; a single-layer target adds a row for the layer's
    own readout, measured against that layer's unpruned readout."""
    rows = []
    own_smallest = result.get("smallest_keep_own") or {}
    for name, entries in result["strategies"].items():
        for target, smallest in result["smallest_keep"][name].items():
            by_keep = {e["keep"]: e for e in entries if str(e["layer"]) == target}
            label = strategy_label(name)
            rows.append([label, target, "net", *[_cell(by_keep.get(k), "accuracy") for k in keeps], fmt(smallest, 2)])
            if target in own_smallest.get(name, {}):
                cells = [_cell(by_keep.get(k), "own_accuracy") for k in keeps]
                rows.append([label, target, "layer's own", *cells, fmt(own_smallest[name][target], 2)])
    return rows


def break_rows(result: dict[str, Any], target: str) -> list[list[str]]:
    """Per class: for each strategy, the largest fraction kept at which the class's accuracy (the network's
    readout, target `target`) is more than 10 points below its unpruned accuracy — the class that breaks
    first has the largest; "—": it never does."""
    baseline = result.get("baseline_class_accuracy") or []
    names = result.get("class_names") or [str(c) for c in range(len(baseline))]
    rows = []
    for c, base in enumerate(baseline):
        cells = []
        for entries in result["strategies"].values():
            broken = [
                e["keep"]
                for e in entries
                if str(e["layer"]) == target
                and base is not None
                and (e.get("class_accuracy") or [None] * len(baseline))[c] is not None
                and e["class_accuracy"][c] < base - BREAK
            ]
            cells.append(fmt(max(broken), 2) if broken else "—")
        rows.append([f"{c} {names[c]}" if c < len(names) else str(c), fmt(base), *cells])
    return rows


def prune_section(page: Page, result: dict[str, Any]) -> None:
    page.heading("Pruning")
    finetuned = (
        f"; each point fine-tuned for {result['finetune_epochs']} epochs" if result.get("finetune_epochs") else ""
    )
    runs = result.get("runs")
    spread = (
        f"mean ± std over {len(runs)} runs (random: each run's draws averaged first)"
        if runs
        else ("random strategies: mean ± std over draws")
    )
    page.paragraph(
        f"Unpruned test accuracy {fmt(result['baseline'], pct=True, pct_digits=2)}{finetuned}; {spread}. Targets: "
        "all = every layer pruned to the same fraction; global = one fraction of all units, ranked across layers "
        "(scores z-scored within each layer); a number = that layer alone. Readouts: net = the network's "
        "prediction (FF, BP/FF: the softmax vote summed over layers), layer's own = that layer's goodness argmax. "
        "Last column: the smallest fraction from which on accuracy stays within 1 point of the unpruned readout.",
        note=True,
    )
    keeps = sorted({e["keep"] for es in result["strategies"].values() for e in es})
    header = ["strategy", "target", "readout", *[f"{k:g}" for k in keeps], "smallest within 1 pt"]
    page.table(header, prune_rows(result, keeps))
    targets = [str(t) for t in result.get("targets") or []]
    target = "all" if "all" in targets else (targets[0] if targets else "all")
    rows = break_rows(result, target)
    if rows and any(cell != "—" for row in rows for cell in row[2:]):
        page.table(
            ["class", "unpruned", *[strategy_label(n) for n in result["strategies"]]],
            rows,
            caption=f"Which classes break first (target {target}): the largest fraction kept at which the class's "
            f"accuracy is more than {BREAK * 100:g} points below its unpruned accuracy",
        )


def beyond_sections(page: Page, history: RunHistory, run_dir: Path | None = None) -> None:
    """Every section that has data; a damaged analysis.json or prune.json is left out (`beyond_figures`,
    called first, says so for prune.json)."""
    life_section(page, EnsembleLife.from_history(history), history)
    if run_dir is None:
        return
    analysis = rundir.read_analysis(run_dir, on_bad=None)
    if analysis is not None:
        microstructure_section(page, analysis, history.dataset)
    pruned = rundir.read_prune(run_dir, on_bad=None)
    if pruned is not None:
        prune_section(page, pruned)


def beyond_figures(history: RunHistory, run_dir: Path | None, class_names: list[str]) -> list[FigureSpec]:
    """The unit × evaluation rasters of every layer with ensembles, and the pruning curves when measured."""
    from ffterm_core.figures import beyond as BF

    life = EnsembleLife.from_history(history)
    specs = [
        FigureSpec(
            f"ensemble-life-layer-{i + 1}",
            f"Layer {i + 1}: ensemble membership of every unit that was ever a member (rows) at every evaluation "
            "(columns), one panel per class; the red line marks the epoch from which the ensemble stays stable.",
            partial(BF.life_raster_figure, classes, i, class_names),
        )
        for i, classes in enumerate(life.layers)
        if classes
    ]
    specs += _exemplar_figures(history, run_dir, class_names)
    pruned = rundir.read_prune(run_dir) if run_dir is not None else None
    if pruned is not None:
        specs.append(
            FigureSpec(
                "prune",
                "Test accuracy against the fraction of units kept, one panel per target, one colour per strategy "
                "(solid: the network's readout; dashed: the pruned layer's own readout; bands: ± std).",
                lambda: BF.prune_figure(pruned),
            )
        )
    return specs


def _exemplar_figures(history: RunHistory, run_dir: Path | None, class_names: list[str]) -> list[FigureSpec]:
    """Exemplar images of the patterns of every layer whose microstructure holds members (files of earlier
    versions do not) and has a class with several patterns; none when the test images cannot be read."""
    from ffterm_core.data.datasets import DatasetError, load_raw
    from ffterm_core.figures import beyond as BF

    analysis = rundir.read_analysis(run_dir, on_bad=None) if run_dir is not None else None
    layers = analysis.get("layers") if isinstance(analysis, dict) else None
    shown = [
        (i, layer["microstructure"])
        for i, layer in enumerate(layers or [])
        if isinstance(layer, dict)
        and any(len(e["patterns"]) > 1 and "members" in e["patterns"][0] for e in layer.get("microstructure") or [])
    ]
    if not shown or run_dir is None:
        return []
    try:
        data_dir = read_run_config(run_dir).data_dir
        images, _ = load_raw(history.dataset, "test", data_dir, download=False)
    except (DatasetError, RunDirError, ValueError):
        return []
    return [
        FigureSpec(
            f"microstructure-exemplars-layer-{i + 1}",
            f"Layer {i + 1}: the first {BF.EXEMPLARS} members of each activation pattern (nearest to its mean "
            "direction) of the classes with several patterns; the label gives the class, the pattern and its images.",
            partial(BF.exemplar_figure, entries, images, i, class_names),
        )
        for i, entries in shown
    ]
