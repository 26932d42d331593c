"""Report sections for the questions the study left open: the life of ensemble units, the
microstructure of each class's activation patterns, and pruning guided by the ensembles.

`beyond_markdown(history, run_dir)` returns Markdown lines for report.md: the life of every class
ensemble from the run's history (always), microstructure from RUN_DIR/analysis.json when
`ffterm analyze --microstructure` wrote it, pruning from RUN_DIR/prune.json when `ffterm prune` wrote it.
Pure: no textual, no torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .ensemble_life import EnsembleLife
from .formatting import fmt
from .history import RunHistory

RASTER = {True: "█", False: "·", None: " "}


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(":---" if i == 0 else "---:" for i in range(len(header))) + "|",
        *["| " + " | ".join(r) + " |" for r in rows],
    ]


def raster_lines(units: list[int], rows: list[list[bool | None]]) -> list[str]:
    """One text line per unit: █ member, · not a member, blank where the ensembles are undefined."""
    return [f"{u:>5} " + "".join(RASTER[v] for v in row) for u, row in zip(units, rows)]


def life_markdown(history: RunHistory) -> list[str]:
    life = EnsembleLife.from_history(history)
    if not life.epochs or not any(life.layers):
        return []
    out = [
        "## The life of ensemble units",
        "",
        f"Evaluations at epochs {life.epochs[0]}…{life.epochs[-1]} ({len(life.epochs)}). Stable from: the first "
        "epoch after which the ensemble's Jaccard index with the final ensemble stays ≥ 0.9. Turnover: units "
        "that joined plus units that left since the previous evaluation, summed over the evaluations after the first.",
        "",
    ]
    for i, classes in enumerate(life.layers):
        if not classes:
            out += [f"**Layer {i + 1}**: ensembles never defined (sparsity < 0.5).", ""]
            continue
        rows = []
        for c, cl in enumerate(classes):
            defined = [t for t in cl.turnover if t is not None]
            final = next((m for m in reversed(cl.members) if m is not None), None)
            rows.append(
                [
                    str(c),
                    fmt(cl.stable_epoch(life.threshold)),
                    str(len(cl.joined)),
                    fmt(len(final) if final is not None else None),
                    fmt(sum(defined[1:])),
                    fmt(defined[-1] if defined else None),
                ]
            )
        header = ["class", "stable from epoch", "units ever members", "final size", "turnover (sum)", "turnover (last)"]
        out += [f"**Layer {i + 1}**", "", *_table(header, rows), ""]
        out += ["<details><summary>unit × evaluation rasters</summary>", ""]
        for c, cl in enumerate(classes):
            units, raster = cl.raster()
            out += [f"class {c}:", "", "```", *raster_lines(units, raster), "```", ""]
        out += ["</details>", ""]
    return out


def microstructure_markdown(analysis: dict[str, Any]) -> list[str]:
    layers = [layer for layer in analysis.get("layers", []) if layer.get("microstructure")]
    if not layers:
        return []
    out = [
        "## Microstructure of the class patterns",
        "",
        "Correctly classified test images of each class clustered by their activation pattern (Ward on unit-norm "
        "patterns; k by the best silhouette ≥ 0.25 with every pattern ≥ max(10, 5 %) images, else one pattern). "
        "Per pattern: images, and the Jaccard index of its own ensemble with the class ensemble; the first is "
        "dominant.",
        "",
    ]
    for i, layer in enumerate(analysis["layers"]):
        entries = layer.get("microstructure") or []
        rows = []
        for e in entries:
            sizes = ", ".join(str(p["size"]) for p in e["patterns"]) or "—"
            jac = ", ".join(fmt(p["jaccard_with_class"], 2) for p in e["patterns"]) or "—"
            rows.append([str(e["class"]), str(len(e["patterns"])), sizes, jac, fmt(e.get("silhouette"), 2)])
        out += [f"**Layer {i + 1}**", "", *_table(["class", "patterns", "images", "Jaccard", "silhouette"], rows), ""]
    return out


def prune_rows(result: dict[str, Any], keeps: list[float]) -> list[list[str]]:
    """Per strategy and target: accuracy at each of `keeps` (random: mean ± std), then the smallest keep."""
    rows = []
    for name, entries in result["strategies"].items():
        for target, smallest in result["smallest_keep"][name].items():
            by_keep = {e["keep"]: e for e in entries if str(e["layer"]) == target}
            cells = []
            for k in keeps:
                e = by_keep.get(k)
                cells.append(
                    "—" if e is None else fmt(e["accuracy"]) + (f" ± {e['std']:.3f}" if e["std"] is not None else "")
                )
            rows.append([name, target, *cells, fmt(smallest)])
    return rows


def prune_markdown(result: dict[str, Any]) -> list[str]:
    out = [
        "## Pruning",
        "",
        f"Unpruned test accuracy {fmt(result['baseline'], pct=True, pct_digits=2)}"
        + (f"; each point fine-tuned for {result['finetune_epochs']} epochs" if result.get("finetune_epochs") else "")
        + ". Accuracy by fraction of units kept (random: mean ± std over draws); last column: the smallest "
        "fraction from which on accuracy stays within 1 point of the unpruned network.",
        "",
    ]
    keeps = sorted({e["keep"] for es in result["strategies"].values() for e in es})
    rows = prune_rows(result, keeps)
    out += [*_table(["strategy", "layer", *[f"{k:g}" for k in keeps], "smallest within 1 pt"], rows), ""]
    out += ["![accuracy vs fraction of units kept](../../prune.png)", ""]
    return out


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def beyond_markdown(history: RunHistory, run_dir: Path | None = None) -> list[str]:
    """All three sections that have data; an unreadable analysis.json or prune.json is left out."""
    out = life_markdown(history)
    if run_dir is None:
        return out
    analysis = _read_json(Path(run_dir) / "analysis.json")
    if analysis is not None:
        out += microstructure_markdown(analysis)
    pruned = _read_json(Path(run_dir) / "prune.json")
    if pruned is not None and {"baseline", "strategies", "smallest_keep"} <= set(pruned):
        out += prune_markdown(pruned)
    return out
