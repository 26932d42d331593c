"""Files we read are untrusted: text files read in one line of error, snapshot lines checked
against a schema before anything sizes a structure or a loop from them.

A snapshot line comes from a file anyone may have edited (or a torn write). `SnapshotSchema`
bounds every size by the run's config — number of layers, hidden width, classes, epochs — so a
line claiming `"num_layers": 1000000000` or unit 10**9 of an ensemble is refused instead of
allocating for it; types are checked so `"epoch": "x"` never reaches arithmetic.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeGuard

from ffterm_core.config import MODEL_KINDS, RunConfig
from ffterm_core.data.datasets import num_classes
from ffterm_core.records import LAYER_STATS, LayerStat, did_not_learn
from ffterm_core.store.snapshot import STATES, Snapshot

NUM_CLASSES = 10  # every dataset ffterm trains has ten classes
KINDS = ("live", "final", "state")
MODELS = tuple(MODEL_KINDS)
_MAX_LAYERS = 16  # the config's own bound on `layers`
_MAX_HIDDEN = 100_000  # the config's own bound on `hidden`
_MAX_EPOCHS = 16 * 1_000_000
_MAX_ROWS = 10_000_000  # images analysed
_MAX_TEXT = 2_000  # run name, device, message
_MAX_BINS = 1_000  # histogram bins
# beyond any float32 value (training's), and far below where a plot's arithmetic overflows (~1e308)
_MAX_ABS = 1e100


class UnreadableFile(ValueError):
    """A file that cannot be read as text; one line naming it and why."""


def read_text(path: Path, what: str, fix: str) -> str:
    """The UTF-8 text of `path`, or UnreadableFile naming the file, the reason and `fix`."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except IsADirectoryError:
        reason = "is a directory, not a file"
    except FileNotFoundError:
        reason = "does not exist"
    except PermissionError:
        reason = "cannot be read (permission denied)"
    except UnicodeDecodeError as exc:
        reason = f"is not UTF-8 text (byte {exc.start})"
    except OSError as exc:
        reason = f"cannot be read ({exc.strerror or type(exc).__name__})"
    raise UnreadableFile(f"{what} {path} {reason}; {fix}")


class BadSnapshot(ValueError):
    """A snapshot line that does not match the schema; the message says which field and why."""


def _is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> TypeGuard[float]:
    """A finite number of a plausible size: what a view may plot or do arithmetic on."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and abs(v) <= _MAX_ABS


def _in(v: Any, low: float, high: float) -> bool:
    return _is_num(v) and low <= v <= high


def _optional(v: Any, low: float, high: float) -> bool:
    return v is None or _in(v, low, high)


def _square(table: Any, size: int, low: float, high: float, where: str, whole: bool = False) -> None:
    """None, or a k × k table (k at most `size`) of numbers in low..high (whole numbers when `whole`); a
    cell is null in the row and column of a class whose ensemble is undefined (no correct images)."""
    if table is None:
        return
    ok = isinstance(table, list) and len(table) <= size
    ok = ok and all(
        isinstance(row, list)
        and len(row) == len(table)
        and all(v is None or (_in(v, low, high) and (_is_int(v) or not whole)) for v in row)
        for row in table
    )
    if not ok:
        kind = "whole numbers" if whole else "numbers"
        raise BadSnapshot(
            f"{where}: expected a square table (at most {size} × {size}) of {kind} in {low:g}..{high:g} (or nulls)"
        )


def _check_stat(value: Any, stat: LayerStat, where: str) -> None:
    """A per-layer statistic read back against its declaration: null, or of its kind and in its range."""
    if value is None:
        return
    low, high = stat.low, stat.high
    if stat.kind == "count":
        if not (_is_int(value) and low <= value <= high):
            raise BadSnapshot(f"{where}: expected a whole number in {low:g}..{high:g} or null, got {value!r:.40}")
        return
    if stat.kind == "number":
        if not _in(value, low, high):
            raise BadSnapshot(f"{where}: expected a number in {low:g}..{high:g} or null, got {value!r:.40}")
        return
    if not isinstance(value, dict):
        raise BadSnapshot(f"{where}: expected an object with mean, std and hist, or null")
    if not _in(value.get("mean"), low, high):
        raise BadSnapshot(f"{where}.mean: expected a number in {low:g}..{high:g}, got {value.get('mean')!r:.40}")
    if not _optional(value.get("std"), 0, high - low):
        raise BadSnapshot(f"{where}.std: expected a number in 0..{high - low:g} or null, got {value.get('std')!r:.40}")
    hist = value.get("hist")
    if hist is None:
        return
    counts: Any = hist.get("counts") if isinstance(hist, dict) else None
    edges: Any = hist.get("edges") if isinstance(hist, dict) else None
    ok = isinstance(counts, list) and isinstance(edges, list) and len(edges) == len(counts) + 1 <= _MAX_BINS + 1
    ok = ok and all(_is_int(n) and 0 <= n <= _MAX_ROWS * _MAX_HIDDEN for n in counts)
    ok = ok and all(_in(e, low, high) for e in edges)
    if not ok:
        raise BadSnapshot(
            f"{where}.hist: expected counts and edges (one more edge than counts, within {low:g}..{high:g})"
        )


@dataclass(frozen=True)
class SnapshotSchema:
    """Bounds of one run's snapshots; `for_config` derives them from config.yaml."""

    max_layers: int = _MAX_LAYERS
    max_hidden: int = _MAX_HIDDEN
    max_classes: int = NUM_CLASSES
    max_epochs: int = _MAX_EPOCHS
    max_line_bytes: int = 64 * 1024 * 1024

    @classmethod
    def for_config(cls, cfg: RunConfig | None) -> SnapshotSchema:
        if cfg is None:
            return cls()
        from ffterm_core.data.datasets import DATASETS

        hidden = cfg.hidden or DATASETS[cfg.dataset].hidden
        # an evaluated line holds per layer a few class x width tables (ensembles, mean activations,
        # the activation map) as JSON text: ~12 bytes a number is a generous bound
        per_layer = 3 * NUM_CLASSES * hidden * 12 + 2 * 1024 * 1024
        return cls(
            max_layers=cfg.layers,
            max_hidden=hidden,
            max_epochs=cfg.total_epochs,
            max_line_bytes=4 * 1024 * 1024 + cfg.layers * per_layer,
        )

    # ---- parsing ------------------------------------------------------------------------------
    def parse(self, line: str) -> Snapshot:
        """The Snapshot of one JSON line, or BadSnapshot saying what is wrong with it."""
        if len(line) > self.max_line_bytes:
            raise BadSnapshot(f"line of {len(line)} bytes exceeds this run's bound of {self.max_line_bytes}")
        try:
            data = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise BadSnapshot("not valid JSON (a torn or edited line)") from None
        if not isinstance(data, dict):
            raise BadSnapshot(f"expected a JSON object, got {type(data).__name__}")
        known = {k: v for k, v in data.items() if k in _FIELDS}
        missing = [f for f in ("run_name", "model", "dataset", "device", "num_layers") if f not in known]
        if missing:
            raise BadSnapshot(f"missing field {missing[0]!r}")
        self._check(known)
        return Snapshot(**known)

    def _check(self, d: dict[str, Any]) -> None:
        for key in ("run_name", "dataset", "device"):
            self._text(d, key)
        self._text(d, "message", optional=True)
        self._choice(d, "model", MODELS)
        self._choice(d, "kind", KINDS)
        self._choice(d, "state", STATES)
        n = self._int(d, "num_layers", 1, self.max_layers)
        self._int(d, "stage", 0, n - 1)
        for key in ("stage_epoch", "epochs_per_stage", "epoch", "total_epochs"):
            self._int(d, key, 0, self.max_epochs)
        self._num(d, "wall_time", 0)
        self._num(d, "samples_per_s", 0, optional=True)
        self._num(d, "eta_s", 0, optional=True)
        self._num(d, "test_accuracy", 0, 1, optional=True)
        self._int(d, "eval_samples", 0, _MAX_ROWS, optional=True)
        for key in ("loss", "g_pos", "g_neg"):
            self._numbers(d, key, n, optional=False)
        self._numbers(d, "layer_accuracy", n, optional=True, low=0, high=1)
        layers = d.get("layers")
        if layers is not None:
            if not isinstance(layers, list) or len(layers) > n:
                raise BadSnapshot(f"layers: expected a list of at most {n} layer analyses")
            for i, layer in enumerate(layers):
                self.check_layer(layer, f"layers[{i}]")
        for key in ("heldout", "gpu"):
            if d.get(key) is not None and not isinstance(d[key], dict):
                raise BadSnapshot(f"{key}: expected an object or null")
        self._heldout(d.get("heldout"), n)
        for key, high in (("memory_used_mb", _MAX_ABS), ("memory_total_mb", _MAX_ABS), ("utilization_pct", 100.0)):
            if not _optional((d.get("gpu") or {}).get(key), 0, high):
                raise BadSnapshot(f"gpu.{key}: expected a number in 0..{high:g} or null")

    def check_layer(self, layer: Any, where: str) -> None:
        """Every field a view or a report reads: the statistics of `LAYER_STATS` by their declaration,
        the class × class and class × unit tables, the ensembles and the activation map by shape."""
        if not isinstance(layer, dict):
            raise BadSnapshot(f"{where}: expected an object")
        for stat in LAYER_STATS:
            _check_stat(layer.get(stat.name), stat, f"{where}.{stat.name}")
        c, hidden = self.max_classes, self.max_hidden
        n_units = layer.get("n_units")
        if n_units is not None and not (_is_int(n_units) and 0 <= n_units <= hidden):
            raise BadSnapshot(f"{where}.n_units: expected a whole number in 0..{hidden}")
        _square(layer.get("shared_units"), c, 0, hidden, f"{where}.shared_units", whole=True)
        _square(layer.get("jaccard"), c, 0, 1, f"{where}.jaccard")
        self._table(layer.get("class_mean_activation"), c, hidden, f"{where}.class_mean_activation")
        self._table(layer.get("ensemble_pvalues"), c, hidden, f"{where}.ensemble_pvalues", 0, 1)
        self._ensembles(layer.get("ensembles"), f"{where}.ensembles")
        self._ensembles(layer.get("live_ensembles"), f"{where}.live_ensembles")
        floor = layer.get("stability_floor")
        if floor is not None and not (
            isinstance(floor, list) and len(floor) <= c and all(_optional(v, 0, 1) for v in floor)
        ):
            raise BadSnapshot(f"{where}.stability_floor: expected at most {c} numbers in 0..1 (or nulls)")
        factor = layer.get("ensemble_factor")
        if factor is not None and not (_is_num(factor) and factor > 0):
            raise BadSnapshot(f"{where}.ensemble_factor: expected a number > 0, got {factor!r:.40}")
        amap = layer.get("activation_map")
        if amap is not None:
            self._activation_map(amap, f"{where}.activation_map")

    @staticmethod
    def _table(table: Any, rows: int, cols: int, where: str, low: float = -_MAX_ABS, high: float = _MAX_ABS) -> None:
        """None, or at most `rows` rows, each None or at most `cols` numbers in low..high (or nulls)."""
        if table is None:
            return
        ok = isinstance(table, list) and len(table) <= rows
        ok = ok and all(
            row is None
            or (isinstance(row, list) and len(row) <= cols and all(v is None or _in(v, low, high) for v in row))
            for row in table
        )
        if not ok:
            raise BadSnapshot(f"{where}: expected at most {rows} rows of at most {cols} numbers in {low:g}..{high:g}")

    def _ensembles(self, ens: Any, where: str) -> None:
        if ens is None:
            return
        if not isinstance(ens, list) or len(ens) > self.max_classes:
            raise BadSnapshot(f"{where}: expected a list of at most {self.max_classes} classes")
        for c, units in enumerate(ens):
            self._units(units, f"{where}[{c}]")

    def _units(self, units: Any, where: str) -> None:
        if units is None:
            return
        if not isinstance(units, list) or len(units) > self.max_hidden:
            raise BadSnapshot(f"{where}: expected a list of at most {self.max_hidden} units")
        if not all(_is_int(u) and 0 <= u < self.max_hidden for u in units):
            raise BadSnapshot(f"{where}: unit indices must be whole numbers in 0..{self.max_hidden - 1}")

    def _activation_map(self, amap: Any, where: str) -> None:
        if not isinstance(amap, dict):
            raise BadSnapshot(f"{where}: expected an object")
        matrix = amap.get("matrix", [])
        width = len(matrix[0]) if isinstance(matrix, list) and matrix and isinstance(matrix[0], list) else 0
        if not isinstance(matrix, list) or not all(
            isinstance(row, list) and len(row) == width <= self.max_hidden and all(_is_num(v) for v in row)
            for row in matrix
        ):
            raise BadSnapshot(f"{where}.matrix: expected rows of one length (at most {self.max_hidden}) of numbers")
        for key, low in (("row_class", 0), ("col_class", -1)):
            values = amap.get(key, [])
            if not isinstance(values, list) or not all(_is_int(v) and low <= v < self.max_classes for v in values):
                raise BadSnapshot(f"{where}.{key}: expected class numbers in {low}..{self.max_classes - 1}")
        if len(amap.get("row_class", [])) != len(matrix):
            raise BadSnapshot(f"{where}.row_class: expected one class per row of the matrix ({len(matrix)})")
        for key, high in (("unit_order", self.max_hidden), ("col_edges", self.max_hidden), ("row_index", _MAX_ROWS)):
            values = amap.get(key, [])
            if not isinstance(values, list) or not all(_is_int(v) and 0 <= v <= high for v in values):
                raise BadSnapshot(f"{where}.{key}: expected whole numbers in 0..{high}")

    def _heldout(self, held: Any, n: int) -> None:
        if held is None:
            return
        cls = held.get("class")
        if cls is not None and not (_is_int(cls) and 0 <= cls < self.max_classes):
            raise BadSnapshot(f"heldout.class: expected a class number in 0..{self.max_classes - 1}")
        for key in ("accuracy_seen", "accuracy_heldout"):
            v = held.get(key)
            if v is not None and not (_is_num(v) and 0 <= v <= 1):
                raise BadSnapshot(f"heldout.{key}: expected a fraction in 0..1 or null")
        layers = held.get("layers", [])
        if not isinstance(layers, list) or len(layers) > n or not all(isinstance(x, dict) for x in layers):
            raise BadSnapshot(f"heldout.layers: expected a list of at most {n} objects")
        c = self.max_classes
        for i, layer in enumerate(layers):
            where = f"heldout.layers[{i}]"
            self._units(layer.get("ensemble"), f"{where}.ensemble")
            for key, high in (("sparsity", 1.0), ("ensemble_size_pct", 100.0)):
                if not _optional(layer.get(key), 0, high):
                    raise BadSnapshot(f"{where}.{key}: expected a number in 0..{high:g} or null")
            for key, high in (("shared_with_seen_total", self.max_hidden), ("n_rows", _MAX_ROWS)):
                v = layer.get(key)
                if v is not None and not (_is_int(v) and 0 <= v <= high):
                    raise BadSnapshot(f"{where}.{key}: expected a whole number in 0..{high} or null")
            self._table([layer.get("shared_with_seen")], 1, c, f"{where}.shared_with_seen", 0, self.max_hidden)
            self._table([layer.get("jaccard_with_seen")], 1, c, f"{where}.jaccard_with_seen", 0, 1)

    # ---- field checks ---------------------------------------------------------------------------
    @staticmethod
    def _text(d: dict[str, Any], key: str, optional: bool = False) -> None:
        v = d.get(key)
        if v is None and (optional or key not in d):
            return
        if not isinstance(v, str) or len(v) > _MAX_TEXT:
            raise BadSnapshot(f"{key}: expected text of at most {_MAX_TEXT} characters")
        if any((ord(ch) < 32 and ch not in "\t") or ord(ch) == 127 for ch in v):
            raise BadSnapshot(f"{key}: control characters are not allowed")

    @staticmethod
    def _choice(d: dict[str, Any], key: str, choices: tuple[str, ...]) -> None:
        if key in d and d[key] not in choices:
            raise BadSnapshot(f"{key}: {d[key]!r:.40} is not one of {', '.join(choices)}")

    @staticmethod
    def _int(d: dict[str, Any], key: str, low: int, high: int, optional: bool = False) -> int:
        v = d.get(key)
        if v is None and (optional or key not in d):
            return low
        if not _is_int(v):
            raise BadSnapshot(f"{key}: expected a whole number, got {v!r:.40}")
        if not low <= v <= high:
            raise BadSnapshot(f"{key}: {v} is out of range for this run (0..{high})")
        return v

    @staticmethod
    def _num(d: dict[str, Any], key: str, low: float, high: float | None = None, optional: bool = False) -> None:
        v = d.get(key)
        if v is None and (optional or key not in d):
            return
        if not _is_num(v) or v < low or (high is not None and v > high):
            bound = f"{low}..{high}" if high is not None else f">= {low}"
            raise BadSnapshot(f"{key}: expected a number {bound}, got {v!r:.40}")

    @staticmethod
    def _numbers(
        d: dict[str, Any], key: str, n: int, optional: bool, low: float | None = None, high: float | None = None
    ) -> None:
        v = d.get(key)
        if v is None and (optional or key not in d):
            return
        ok = (
            isinstance(v, list)
            and len(v) <= n
            and all(x is None or (_is_num(x) and (low is None or x >= low) and (high is None or x <= high)) for x in v)
        )
        if not ok:
            raise BadSnapshot(f"{key}: expected a list of at most {n} numbers (or nulls)")


_FIELDS = {f.name for f in fields(Snapshot)}


def check_final(data: Any) -> str | None:
    """What is wrong with a final.json's content (None when it is usable)."""
    from ffterm_core.config import ConfigError, from_dict

    if not isinstance(data, dict):
        return "expected a JSON object"
    missing = [k for k in ("config", "test_accuracy", "layer_accuracy", "layers", "wall_seconds") if k not in data]
    if missing:
        return f"missing key {missing[0]!r}"
    if not isinstance(data["config"], dict):
        return "config: expected an object"
    try:
        cfg = from_dict(data["config"])
    except ConfigError as exc:
        return f"config: {exc}"
    if not (_is_num(data["test_accuracy"]) and 0 <= data["test_accuracy"] <= 1):
        return "test_accuracy: expected a fraction in 0..1"
    if not _is_num(data["wall_seconds"]) or data["wall_seconds"] < 0:
        return "wall_seconds: expected a number >= 0"
    acc = data["layer_accuracy"]
    if not isinstance(acc, list) or len(acc) > cfg.layers or not all(a is None or _is_num(a) for a in acc):
        return f"layer_accuracy: expected at most {cfg.layers} numbers"
    layers = data["layers"]
    if not isinstance(layers, list) or len(layers) > cfg.layers or not all(isinstance(x, dict) for x in layers):
        return f"layers: expected at most {cfg.layers} objects"
    schema = SnapshotSchema.for_config(cfg)
    try:
        for i, layer in enumerate(layers):
            schema.check_layer(layer, f"layers[{i}]")
    except BadSnapshot as exc:
        return str(exc)
    held = data.get("heldout")
    if held is not None and not (isinstance(held, dict) and "class" in held):
        return "heldout: expected an object with a class"
    if "did_not_learn" in data and not isinstance(data["did_not_learn"], bool):
        return "did_not_learn: expected true or false"
    return None


def final_did_not_learn(final: Mapping[str, Any]) -> bool | None:
    """A checked final.json's ``did_not_learn``; for files written before it, the same rule applied to its
    test accuracy (None when the accuracy is unknown)."""
    stored = final.get("did_not_learn")
    if isinstance(stored, bool):
        return stored
    config = final.get("config")
    dataset = config.get("dataset", "") if isinstance(config, Mapping) else ""
    return did_not_learn(final.get("test_accuracy"), num_classes(str(dataset)))


def check_analysis(data: Any, cfg: RunConfig | None) -> str | None:
    """What is wrong with an analysis.json (`ffterm analyze`) for the views and reports (None: usable):
    its layers as a snapshot's, and each class's microstructure patterns."""
    if not isinstance(data, dict):
        return "expected a JSON object"
    schema = SnapshotSchema.for_config(cfg)
    layers = data.get("layers", [])
    if not isinstance(layers, list) or len(layers) > schema.max_layers:
        return f"layers: expected a list of at most {schema.max_layers} layer analyses"
    try:
        for i, layer in enumerate(layers):
            schema.check_layer(layer, f"layers[{i}]")
            _check_microstructure(layer.get("microstructure"), schema, f"layers[{i}].microstructure")
    except BadSnapshot as exc:
        return str(exc)
    return None


def _check_microstructure(entries: Any, schema: SnapshotSchema, where: str) -> None:
    if entries is None:
        return
    if not isinstance(entries, list) or len(entries) > schema.max_classes:
        raise BadSnapshot(f"{where}: expected a list of at most {schema.max_classes} classes")
    for c, e in enumerate(entries):
        at = f"{where}[{c}]"
        patterns = e.get("patterns") if isinstance(e, dict) else None
        if not (isinstance(e, dict) and _is_int(e.get("class")) and 0 <= e["class"] < schema.max_classes):
            raise BadSnapshot(f"{at}: expected an object with a class number in 0..{schema.max_classes - 1}")
        if not isinstance(patterns, list) or not all(
            isinstance(p, dict) and _is_int(p.get("size")) and 0 <= p["size"] <= _MAX_ROWS
            and _optional(p.get("jaccard_with_class"), 0, 1)
            for p in patterns
        ):  # fmt: skip
            raise BadSnapshot(f"{at}.patterns: expected objects with a size (images) and a Jaccard index in 0..1")
        if not all(
            isinstance(p.get("members", []), list) and all(_is_int(m) and m >= 0 for m in p.get("members", []))
            for p in patterns
        ):
            raise BadSnapshot(f"{at}.patterns: members must be lists of test image indices")
        if not (_optional(e.get("stability_ari"), -1, 1) and _optional(e.get("stability_same_k"), 0, 1)):
            raise BadSnapshot(f"{at}: stability_ari must be in -1..1 and stability_same_k in 0..1 (or null)")
        dominant, silhouette = e.get("dominant"), e.get("silhouette")
        if dominant is not None and not (_is_int(dominant) and 0 <= dominant < len(patterns)):
            raise BadSnapshot(f"{at}.dominant: expected a pattern number in 0..{len(patterns) - 1} or null")
        if not _optional(silhouette, -1, 1):
            raise BadSnapshot(f"{at}.silhouette: expected a number in -1..1 or null")


def check_prune(data: Any) -> str | None:
    """What is wrong with a prune.json (`ffterm prune`) for the report (None: usable)."""
    if not isinstance(data, dict):
        return "expected a JSON object"
    if not _in(data.get("baseline"), 0, 1):
        return "baseline: expected an accuracy in 0..1"
    strategies, smallest = data.get("strategies"), data.get("smallest_keep")
    if not isinstance(strategies, dict) or not isinstance(smallest, dict):
        return "strategies, smallest_keep: expected objects"
    for name, entries in strategies.items():
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and _in(e.get("keep"), 0, 1) and isinstance(e.get("layer"), (int, str))
            and _optional(e.get("accuracy"), 0, 1) and _optional(e.get("std"), 0, 1)
            for e in entries
        ):  # fmt: skip
            return f"strategies.{name:.40}: expected entries with keep, layer, accuracy and std"
        per_target = smallest.get(name)
        if not isinstance(per_target, dict) or not all(_optional(v, 0, 1) for v in per_target.values()):
            return f"smallest_keep.{name:.40}: expected an object of fractions in 0..1 (or nulls)"
    epochs = data.get("finetune_epochs")
    if epochs is not None and not (_is_int(epochs) and 0 <= epochs <= _MAX_EPOCHS):
        return "finetune_epochs: expected a whole number of epochs"
    return None


Notice = Callable[[str], None]
"""Called with one line when a bad snapshot line is skipped (file, line number, reason)."""


def parse_lines(
    text_lines: list[tuple[int, str]], path: Path, schema: SnapshotSchema, on_bad: Notice | None
) -> list[tuple[int, Snapshot]]:
    """(line number, Snapshot) of the good lines; each bad one is reported through `on_bad`."""
    out = []
    for number, line in text_lines:
        if not line.strip():
            continue
        try:
            out.append((number, schema.parse(line)))
        except BadSnapshot as exc:
            if on_bad is not None:
                on_bad(f"{path}:{number}: skipped a bad snapshot line ({exc})")
    return out
