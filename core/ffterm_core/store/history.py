"""RunHistory: a run's snapshots accumulated into per-epoch series, for curves and reports.

Pure bookkeeping (no textual, no torch). Feed it every Snapshot of a run, in order, with `add`:

- training series, one point per snapshot (x = `epochs`): loss, G⁺ and G⁻ per layer, wall time,
  samples/s. A layer that is not trained in a snapshot (sequential FF) has None there.
- evaluation series, one point per *evaluated* snapshot (x = `eval_epochs`): test accuracy,
  per-layer accuracy, and per layer every statistic of `records.LAYER_STATS` that declares a series
  (sparsity, lifetime sparsity mean, ensemble size %, active units, ρ⁺ mean, bias mean), in `per_layer`.
- ensemble stability per layer and class (docs/algorithms.md#ensemble-stability): the Jaccard index
  |E_c(t-1) ∩ E_c(t)| / |E_c(t-1) ∪ E_c(t)| of class c's ensemble between consecutive evaluated
  snapshots (0 when both are empty). None at the first evaluation and wherever either ensemble is
  undefined (sparsity below `records.SPARSITY_CUTOFF`, or a class without correct images).

The ensembles the dynamics (stability, `ensembles_at`, the ensemble life) compare are like with like:

- every point on the live image set: the final snapshot's ``live_ensembles`` (its model on the live
  subset) when it has them, its ``ensembles`` when it analysed as many images as the live evaluations
  (then the same images), else undefined (a file of an earlier version: not comparable);
- a frozen layer (sequential FF, its stage done) on a fixed image set: its weights no longer change,
  so on the images correctly classified at its first evaluation after the freeze its ensembles are
  those of that evaluation, at every later one. What the evaluations actually saw is kept in
  `observed_at`: for a frozen layer, its change is the image set's drift, not the layer's.

A snapshot of kind "state" (the session announcing starting/paused/stopped/failed, with a
message) changes only `state` and `message`; the series and `latest` keep the last real snapshot.
A snapshot whose epoch is below the last one seen (the run was resumed and snapshots.jsonl
rewritten) drops every point from that epoch on; one with the same epoch (the final snapshot, or
one requested mid-epoch) replaces the point at that epoch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from ffterm_core.records import LAYER_SERIES, Heldout, LayerAnalysis, stat_value
from ffterm_core.store.snapshot import Snapshot

Num = float | None
Ensembles = tuple[frozenset[int] | None, ...] | None


def jaccard(a: frozenset[int] | set[int], b: frozenset[int] | set[int]) -> float:
    """|a ∩ b| / |a ∪ b|; 0 when both are empty (docs/algorithms.md#shared-units-and-jaccard)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def ema(values: Sequence[Num], weight: float) -> list[Num]:
    """Exponential moving average with TensorBoard's debiasing; None entries stay None.

    weight in [0, 1): 0 returns the values unchanged; 0.9 smooths strongly.
    """
    if weight <= 0:
        return list(values)
    out: list[Num] = []
    last = 0.0
    n = 0
    for v in values:
        if v is None or not math.isfinite(v):
            out.append(None)
            continue
        last = last * weight + (1 - weight) * v
        n += 1
        out.append(last / (1 - weight**n))
    return out


def _num(value: Any) -> Num:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _get(seq: Sequence[Any] | None, i: int) -> Any:
    if seq is None or i >= len(seq):
        return None
    return seq[i]


_TRAINING = ("loss", "g_pos", "g_neg", "samples_per_s", "wall_time")


class RunHistory:
    """Series of one run, built from its snapshots in order."""

    def __init__(self) -> None:
        self.run_name = ""
        self.model = ""
        self.dataset = ""
        self.num_layers = 0
        self.count = 0  # snapshots added
        self.state = "starting"  # of the newest snapshot, state announcements included
        self.message: str | None = None  # e.g. why the run failed
        self.latest: Snapshot | None = None
        self.latest_evaluated: Snapshot | None = None
        # training series (x = epochs)
        self.epochs: list[int] = []
        self.loss: list[list[Num]] = []
        self.g_pos: list[list[Num]] = []
        self.g_neg: list[list[Num]] = []
        self.wall_time: list[float] = []
        self.samples_per_s: list[Num] = []
        # evaluation series (x = eval_epochs)
        self.eval_epochs: list[int] = []
        self.test_accuracy: list[Num] = []
        self.layer_accuracy: list[list[Num]] = []
        # per_layer[series][layer][eval i], one series per statistic of LAYER_SERIES
        self.per_layer: dict[str, list[list[Num]]] = {name: [] for name in LAYER_SERIES}
        self.heldout_accuracy_seen: list[Num] = []
        self.heldout_accuracy_heldout: list[Num] = []
        # stability[layer][class][eval i]; stability_mean[layer][eval i]
        self.stability: list[list[list[Num]]] = []
        self.stability_mean: list[list[Num]] = []
        # ensembles[eval i][layer] = tuple of per-class frozensets (None for an undefined class), or None
        # when the layer's are undefined: like with like (module docstring); observed: as evaluated
        self._ensembles: list[list[Ensembles]] = []
        self._observed: list[list[Ensembles]] = []
        self._frozen: list[list[bool]] = []  # [eval i][layer]: the layer's training was over
        self._live_samples: int | None = None  # images of the live evaluations

    # ---- feeding ----------------------------------------------------------------------------
    @classmethod
    def from_snapshots(cls, snapshots: Iterable[Snapshot]) -> RunHistory:
        history = cls()
        for snap in snapshots:
            history.add(snap)
        return history

    def add(self, snap: Snapshot) -> bool:
        """Add one snapshot; return True when it was an evaluated one."""
        self.count += 1
        self.run_name, self.model, self.dataset = snap.run_name, snap.model, snap.dataset
        self.state, self.message = snap.state, snap.message
        if snap.kind == "state":
            return False
        self._grow_layers(
            max(
                snap.num_layers,
                len(snap.loss),
                len(snap.g_pos or []),
                len(snap.layers or []),
                len(snap.layer_accuracy or []),
            )
        )
        if self.epochs and snap.epoch < self.epochs[-1]:
            self._truncate(snap.epoch)
        self.latest = snap
        self._add_training(snap)
        if not snap.evaluated:
            return False
        self._add_evaluation(snap)
        self.latest_evaluated = snap
        return True

    def _grow_layers(self, n: int) -> None:
        while self.num_layers < n:
            self.num_layers += 1
            for series, x in (
                (self.loss, self.epochs),
                (self.g_pos, self.epochs),
                (self.g_neg, self.epochs),
                (self.layer_accuracy, self.eval_epochs),
                (self.stability_mean, self.eval_epochs),
                *((per_layer, self.eval_epochs) for per_layer in self.per_layer.values()),
            ):
                series.append([None] * len(x))
            self.stability.append([])
            for row in (*self._ensembles, *self._observed):
                row.append(None)
            for flags in self._frozen:
                flags.append(False)

    def _truncate(self, epoch: int) -> None:
        """Drop every point at or after `epoch`."""
        keep = sum(1 for e in self.epochs if e < epoch)
        del self.epochs[keep:], self.wall_time[keep:], self.samples_per_s[keep:]
        for per_layer in (self.loss, self.g_pos, self.g_neg):
            for s in per_layer:
                del s[keep:]
        self._truncate_eval(epoch)

    def _truncate_eval(self, epoch: int) -> None:
        keep = sum(1 for e in self.eval_epochs if e < epoch)
        del self.eval_epochs[keep:], self.test_accuracy[keep:]
        del self._ensembles[keep:], self._observed[keep:], self._frozen[keep:]
        del self.heldout_accuracy_seen[keep:], self.heldout_accuracy_heldout[keep:]
        for per_layer in (self.layer_accuracy, self.stability_mean, *self.per_layer.values()):
            for s in per_layer:
                del s[keep:]
        for per_class in self.stability:
            for s in per_class:
                del s[keep:]
        if self.latest_evaluated is not None and self.latest_evaluated.epoch >= epoch:
            self.latest_evaluated = None

    def _add_training(self, snap: Snapshot) -> None:
        replace = bool(self.epochs) and self.epochs[-1] == snap.epoch
        if not replace:
            self.epochs.append(snap.epoch)
            self.wall_time.append(snap.wall_time)
            self.samples_per_s.append(_num(snap.samples_per_s))
        else:
            self.wall_time[-1] = snap.wall_time
            self.samples_per_s[-1] = (
                _num(snap.samples_per_s) if snap.samples_per_s is not None else self.samples_per_s[-1]
            )
        for series, values in ((self.loss, snap.loss), (self.g_pos, snap.g_pos), (self.g_neg, snap.g_neg)):
            for layer, s in enumerate(series):
                v = _num(_get(values, layer))
                if not replace:
                    s.append(v)
                elif v is not None:  # a final snapshot may repeat the epoch without metrics
                    s[-1] = v

    def _add_evaluation(self, snap: Snapshot) -> None:
        if self.eval_epochs and self.eval_epochs[-1] == snap.epoch:
            self._truncate_eval(snap.epoch)  # replace the evaluation point at this epoch
        layers = snap.layers or []
        self.eval_epochs.append(snap.epoch)
        self.test_accuracy.append(_num(snap.test_accuracy))
        held: Heldout | dict[str, Any] = snap.heldout or {}
        self.heldout_accuracy_seen.append(_num(held.get("accuracy_seen")))
        self.heldout_accuracy_heldout.append(_num(held.get("accuracy_heldout")))
        observed_now = [_ensembles_of(layers, i, snap, self._live_samples) for i in range(self.num_layers)]
        frozen_now = [_frozen(snap, i) for i in range(self.num_layers)]
        if snap.kind != "final":
            self._live_samples = snap.eval_samples
        self._observed.append(observed_now)
        self._frozen.append(frozen_now)
        ensembles_now: list[Ensembles] = []
        prev = self._ensembles[-1] if self._ensembles else None
        for i in range(self.num_layers):
            # a snapshot read from disk may lack a layer or hold something else there
            layer: LayerAnalysis | dict[str, Any] = layers[i] if i < len(layers) and isinstance(layers[i], dict) else {}
            self.layer_accuracy[i].append(_num(_get(snap.layer_accuracy, i)))
            for name, stat in LAYER_SERIES.items():
                self.per_layer[name][i].append(stat_value(layer, stat))
            now = self._observed[self._freeze_index(i)][i] if frozen_now[i] else observed_now[i]
            ensembles_now.append(now)
            before = prev[i] if prev is not None and i < len(prev) else None
            per_class = self.stability[i]
            n_classes = max(len(now) if now else 0, len(before) if before else 0, len(per_class))
            while len(per_class) < n_classes:
                per_class.append([None] * (len(self.eval_epochs) - 1))
            values: list[Num] = []
            for c in range(n_classes):
                a = before[c] if before is not None and c < len(before) else None
                b = now[c] if now is not None and c < len(now) else None
                v: Num = None if a is None or b is None else jaccard(a, b)
                per_class[c].append(v)
                values.append(v)
            defined = [v for v in values if v is not None]
            self.stability_mean[i].append(sum(defined) / len(defined) if defined else None)
        self._ensembles.append(ensembles_now)

    def _freeze_index(self, layer: int) -> int:
        """The evaluation whose ensembles stand for frozen `layer`: the first after its freeze where they are
        defined, or the newest while none is (the newest evaluation is frozen)."""
        frozen = [j for j, flags in enumerate(self._frozen) if flags[layer]]
        return next((j for j in frozen if self._observed[j][layer] is not None), frozen[-1])

    # ---- reading ----------------------------------------------------------------------------
    def ensembles_at(self, eval_index: int, layer: int) -> Ensembles:
        """Per-class ensembles (sets of unit indices; None for a class without rows) of a layer at an
        evaluation, like with like (the module docstring): the ones the dynamics compare."""
        try:
            return self._ensembles[eval_index][layer]
        except IndexError:
            return None

    def observed_at(self, eval_index: int, layer: int) -> Ensembles:
        """The ensembles the evaluation found on its own correctly classified images (on the live image
        set); they differ from `ensembles_at` only where the layer was frozen."""
        try:
            return self._observed[eval_index][layer]
        except IndexError:
            return None

    def frozen_at(self, eval_index: int, layer: int) -> bool:
        """Whether the layer's training was over at the evaluation (sequential FF)."""
        try:
            return self._frozen[eval_index][layer]
        except IndexError:
            return False

    def best_accuracy(self) -> tuple[int, float] | None:
        """(epoch, accuracy) of the best test accuracy so far."""
        best = None
        for e, a in zip(self.eval_epochs, self.test_accuracy):
            if a is not None and (best is None or a > best[1]):
                best = (e, a)
        return best

    def series(self, name: str, layer: int | None = None) -> tuple[list[int], list[float]]:
        """(x, y) of a named series with the None points left out (ready to plot).

        name: loss, g_pos, g_neg, samples_per_s, wall_time (x = epochs); test_accuracy, layer_accuracy,
        stability_mean, heldout_accuracy_seen, heldout_accuracy_heldout and every series of
        `records.LAYER_SERIES` (x = eval_epochs).
        """
        named: dict[str, Any] = {
            "loss": self.loss,
            "g_pos": self.g_pos,
            "g_neg": self.g_neg,
            "samples_per_s": self.samples_per_s,
            "wall_time": self.wall_time,
            "test_accuracy": self.test_accuracy,
            "layer_accuracy": self.layer_accuracy,
            "stability_mean": self.stability_mean,
            "heldout_accuracy_seen": self.heldout_accuracy_seen,
            "heldout_accuracy_heldout": self.heldout_accuracy_heldout,
            **self.per_layer,
        }
        if name not in named:
            raise KeyError(f"no series named {name!r}")
        data = named[name]
        if layer is not None:
            data = data[layer] if layer < len(data) else []
        x_all = self.epochs if name in _TRAINING else self.eval_epochs
        xs, ys = [], []
        for x, y in zip(x_all, data):
            if y is not None:
                xs.append(x)
                ys.append(y)
        return xs, ys

    def stability_series(self, layer: int, cls: int) -> tuple[list[int], list[float]]:
        per_class = self.stability[layer] if layer < len(self.stability) else []
        data = per_class[cls] if cls < len(per_class) else []
        xs, ys = [], []
        for x, y in zip(self.eval_epochs, data):
            if y is not None:
                xs.append(x)
                ys.append(y)
        return xs, ys

    def to_dict(self) -> dict[str, Any]:
        """The series as plain JSON-ready data (for reports)."""
        return {
            "run_name": self.run_name,
            "model": self.model,
            "dataset": self.dataset,
            "state": self.state,
            "num_layers": self.num_layers,
            "epochs": self.epochs,
            "loss": self.loss,
            "g_pos": self.g_pos,
            "g_neg": self.g_neg,
            "wall_time": self.wall_time,
            "samples_per_s": self.samples_per_s,
            "eval_epochs": self.eval_epochs,
            "test_accuracy": self.test_accuracy,
            "layer_accuracy": self.layer_accuracy,
            **self.per_layer,
            "stability": self.stability,
            "stability_mean": self.stability_mean,
            "heldout_accuracy_seen": self.heldout_accuracy_seen,
            "heldout_accuracy_heldout": self.heldout_accuracy_heldout,
        }


def _frozen(snap: Snapshot, layer: int) -> bool:
    """Whether `layer` no longer trains at `snap`: layers train one per stage and its stage is done."""
    return snap.stages > 1 and snap.epoch >= (layer + 1) * snap.epochs_per_stage


def _ensembles_of(layers: Sequence[Any], i: int, snap: Snapshot, live_samples: int | None) -> Ensembles:
    """Layer i's per-class ensembles on the live image set (the module docstring); None when undefined."""
    layer = layers[i] if i < len(layers) and isinstance(layers[i], dict) else {}
    ens = layer.get("ensembles")
    if snap.kind == "final" and "live_ensembles" in layer:
        ens = layer["live_ensembles"]
    elif snap.kind == "final" and live_samples is not None and snap.eval_samples != live_samples:
        return None  # the whole test set against a subset: not comparable
    if not isinstance(ens, list):
        return None
    # a class without rows has an undefined ensemble (None), never compared as if empty
    return tuple(None if units is None else frozenset(int(u) for u in units) for units in ens)
