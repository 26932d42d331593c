"""Figures for pruning and for the life of ensemble units (docs/algorithms.md, "Pruning" and
"Ensemble life"); matplotlib is imported inside the functions, each returns a `matplotlib.figure.Figure`
(save with `ffterm_core.figures.draw.save_figure`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ffterm_core.analysis.ensemble_life import ClassLife
from ffterm_core.figures.draw import PALETTE

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ALL, GLOBAL = "all", "global"


def prune_figure(result: dict[str, Any]) -> Figure:
    """Accuracy against the fraction of units kept: one panel per target (every layer alike, global, one
    layer), one colour per strategy; solid: the network's readout, dashed: the pruned layer's own readout
    (single-layer targets); a band of ±std where there is a spread (random draws, or runs pooled); the
    unpruned accuracy grey."""
    from matplotlib.figure import Figure

    targets = list(dict.fromkeys(str(e["layer"]) for es in result["strategies"].values() for e in es))
    cols = min(len(targets), 3)
    rows = -(-len(targets) // cols)
    fig = Figure(figsize=(3.6 * cols, 2.9 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True).ravel()
    layer_base = result.get("baseline_layer_accuracy") or []
    keeps = sorted({e["keep"] for es in result["strategies"].values() for e in es})
    for ax, target in zip(axes, targets):
        for i, (name, entries) in enumerate(result["strategies"].items()):
            mine = [e for e in entries if str(e["layer"]) == target]
            color = PALETTE[i % len(PALETTE)]
            _curve(ax, mine, "accuracy", "std", color, "-", name)
            _curve(ax, mine, "own_accuracy", "own_std", color, "--", None)
        ax.axhline(result["baseline"], color="grey", linestyle="-", linewidth=1)
        if target.isdigit() and int(target) <= len(layer_base):
            ax.axhline(layer_base[int(target) - 1], color="grey", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_xticks(keeps, [f"{k * 100:g}%" for k in keeps], fontsize="x-small")
        ax.minorticks_off()
        ax.set_xlabel("units kept")
        titles = {ALL: "every layer, same fraction", GLOBAL: "global (ranked across layers)"}
        ax.set_title(titles.get(target, f"layer {target} (dashed: its own readout)"), fontsize="medium")
    for ax in axes[len(targets) :]:
        ax.set_axis_off()
    axes[0].set_ylabel("test accuracy")
    # below the panels: inside one it hides the points of the low fractions
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=6, fontsize="small")
    return fig


def _curve(
    ax: Any, entries: list[dict[str, Any]], key: str, std_key: str, color: str, style: str, label: str | None
) -> None:
    import numpy as np

    pts = sorted((e["keep"], e[key], e.get(std_key) or 0.0) for e in entries if e.get(key) is not None)
    if not pts:
        return
    keep, acc, std = (np.array(v) for v in zip(*pts))
    ax.plot(keep, acc, marker="o", markersize=3, color=color, linestyle=style, label=label)
    if std.any():
        ax.fill_between(keep, acc - std, acc + std, color=color, alpha=0.15, linewidth=0)


def life_raster_figure(classes: list[ClassLife], layer: int, names: list[str] | None = None) -> Figure:
    """One layer's unit × evaluation rasters, one panel per class: dark = member, light = not a member,
    blank = ensembles undefined. The rows: the units ever in the ensemble, by unit index, top to bottom. The
    columns start at the layer's first evaluation with ensembles (a deeper layer of sequential FF has none before
    its stage); a dashed line marks where a frozen layer is followed on a fixed image set."""
    import numpy as np
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    cols = 5
    rows = -(-len(classes) // cols)
    fig = Figure(figsize=(2.2 * cols, 2.4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    cmap = ListedColormap(["#d0d0d0", PALETTE[0]]).with_extremes(bad="white")
    defined = [i for life in classes for i, m in enumerate(life.members) if m is not None]
    start = min(defined, default=0)
    for c, (ax, life) in enumerate(zip(axes, classes)):
        units, raster = life.raster()
        epochs = life.epochs[start:]
        label = names[c] if names and c < len(names) else str(c)
        ax.set_title(f"{label}: {len(units)} units ever in", fontsize="small")
        if not units:
            ax.set_axis_off()
            continue
        image = np.array([[np.nan if v is None else float(v) for v in row[start:]] for row in raster])
        ax.imshow(image, aspect="auto", interpolation="nearest", cmap=cmap, vmin=0, vmax=1)
        ticks = sorted({0, len(epochs) // 2, len(epochs) - 1})
        ax.set_xticks(ticks, [str(epochs[t]) for t in ticks])
        stable = life.stable_epoch()
        if stable is not None:
            ax.axvline(epochs.index(stable) - 0.5, color=PALETTE[3], linewidth=1)
        if life.frozen_from is not None and life.frozen_from in epochs:
            ax.axvline(epochs.index(life.frozen_from) + 0.5, color="black", linewidth=1, linestyle="--")
        ax.set_xlabel("epoch", fontsize="small")
        marks = sorted({0, len(units) // 2, len(units) - 1})  # a row is labelled with its unit's index
        ax.set_yticks(marks, [str(units[r]) for r in marks])
        ax.set_ylabel("unit (ever a member)", fontsize="small")
        ax.tick_params(labelsize="x-small")
    for ax in axes[len(classes) :]:
        ax.set_axis_off()
    frozen = any(life.frozen_from is not None for life in classes)
    fig.suptitle(
        f"Layer {layer + 1}: ensemble membership over the evaluations (red line: stable from"
        + ("; dashed: frozen, on a fixed image set after it)" if frozen else ")")
    )
    return fig


EXEMPLARS = 4  # images shown per pattern


def exemplar_figure(entries: list[dict[str, Any]], images: Any, layer: int, names: list[str] | None = None) -> Figure:
    """A few exemplar test images of every pattern of the classes with several patterns (one row per
    pattern, every such class; its members nearest to the pattern's mean first). `images`: (N, C, H, W) uint8
    test images."""
    import numpy as np
    from matplotlib.figure import Figure

    rows = [
        (e["class"], j, p)
        for e in entries
        if len(e.get("patterns") or []) > 1
        for j, p in enumerate(e["patterns"])
        if p.get("members")
    ]
    fig = Figure(figsize=(0.9 * EXEMPLARS + 1.4, 0.9 * max(len(rows), 1) + 0.4), layout="constrained")
    axes = fig.subplots(max(len(rows), 1), EXEMPLARS, squeeze=False)
    for r, (c, j, pattern) in enumerate(rows):
        label = names[c] if names and c < len(names) else str(c)
        for k, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            if k < len(pattern["members"]) and 0 <= pattern["members"][k] < len(images):
                img = np.asarray(images[pattern["members"][k]])  # (C, H, W)
                ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0), cmap="gray")
            if k == 0:
                ax.set_ylabel(f"{label}\nP{j + 1} ({pattern['size']})", fontsize="x-small", rotation=0, ha="right")
    if not rows:
        axes[0][0].set_axis_off()
        for ax in axes[0][1:]:
            ax.set_axis_off()
    fig.suptitle(f"Layer {layer + 1}: exemplars of each activation pattern", fontsize="small")
    return fig
