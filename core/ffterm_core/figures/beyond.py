"""Figures for pruning and for the life of ensemble units (docs/algorithms.md, "Pruning" and
"Ensemble life"); matplotlib is imported inside the functions, each returns a `matplotlib.figure.Figure`
(save with `ffterm_core.figures.draw.save_figure`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ffterm_core.analysis.ensemble_life import ClassLife
from ffterm_core.figures.draw import PALETTE

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ALL = "all"


def prune_figure(result: dict[str, Any]) -> Figure:
    """Accuracy against the fraction of units kept: one panel per target (every layer, or one layer),
    one curve per strategy (random: mean with a ±std band), the unpruned accuracy dashed."""
    import numpy as np
    from matplotlib.figure import Figure

    targets = list(dict.fromkeys(str(e["layer"]) for es in result["strategies"].values() for e in es))
    fig = Figure(figsize=(3.4 * len(targets), 2.8), layout="constrained")
    axes = fig.subplots(1, len(targets), squeeze=False, sharey=True)[0]
    for ax, target in zip(axes, targets):
        for i, (name, entries) in enumerate(result["strategies"].items()):
            pts = sorted((e["keep"], e["accuracy"], e["std"] or 0.0) for e in entries if str(e["layer"]) == target)
            if not pts:
                continue
            keep, acc, std = (np.array(v) for v in zip(*pts))
            color = PALETTE[i % len(PALETTE)]
            ax.plot(keep, acc, marker="o", markersize=3, color=color, label=name)
            if name == "random":
                ax.fill_between(keep, acc - std, acc + std, color=color, alpha=0.2, linewidth=0)
        ax.axhline(result["baseline"], color="grey", linestyle="--", linewidth=1, label="unpruned")
        ax.set_xscale("log")
        ax.set_xlabel("fraction of units kept")
        ax.set_title("every layer" if target == ALL else f"layer {target}")
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(fontsize="small")
    return fig


def life_raster_figure(classes: list[ClassLife], layer: int, names: list[str] | None = None) -> Figure:
    """One layer's unit × evaluation rasters, one panel per class: dark = member, light = not a member,
    blank = ensembles undefined. Units ever in the ensemble, ascending, top to bottom. The columns start at
    the layer's first evaluation with ensembles (a deeper layer of sequential FF has none before its stage);
    a dashed line marks where a frozen layer is followed on a fixed image set."""
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
        ax.set_ylabel("member units (ascending)", fontsize="x-small")
        ax.set_yticks([])
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
