"""Snapshot: what a run looks like at one moment, as plain JSON-ready data.

One snapshot is written per epoch (a line of `snapshots.jsonl`). Every `eval_every` epochs, and at
the end, a snapshot is *evaluated*: it carries test accuracy and the per-layer analysis (`layers`).
Between evaluations those fields are None, and views keep showing the last evaluated values.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

from ffterm_core.records import GpuStats, Heldout, LayerAnalysis

STATES = ("starting", "running", "paused", "stopping", "stopped", "finished", "failed")


@dataclass
class Snapshot:
    # identity
    run_name: str
    model: str
    dataset: str
    device: str
    num_layers: int
    # progress
    kind: str = "live"  # live (an epoch) | final (end of run, whole test set) | state (a state change only)
    state: str = "running"
    stage: int = 0  # layer being trained (sequential FF), else 0
    stage_epoch: int = 0  # epochs done in this stage
    epochs_per_stage: int = 0
    epoch: int = 0  # epochs done in all (FF sequential: layer-epochs)
    total_epochs: int = 0
    wall_time: float = 0.0  # seconds of training so far
    samples_per_s: float | None = None
    eta_s: float | None = None
    # per-epoch training metrics, one entry per layer (BP: one entry, the cross-entropy)
    loss: list[float | None] = field(default_factory=list)
    g_pos: list[float | None] = field(default_factory=list)
    g_neg: list[float | None] = field(default_factory=list)
    # evaluation (None on unevaluated snapshots)
    test_accuracy: float | None = None
    layer_accuracy: list[float] | None = None
    eval_samples: int | None = None
    layers: list[LayerAnalysis] | None = None  # analysis per hidden layer
    heldout: Heldout | None = None  # runs with a held-out class
    gpu: GpuStats | None = None
    message: str | None = None  # e.g. the error of a failed run

    @property
    def stages(self) -> int:
        """The run's training stages (:attr:`ffterm_core.config.RunConfig.stages`), from the epoch counts."""
        return self.total_epochs // self.epochs_per_stage if self.epochs_per_stage else 1

    @property
    def evaluated(self) -> bool:
        return self.test_accuracy is not None

    def to_json(self) -> str:
        # the fields as they are, not `asdict`'s deep copy (most of the time of a large snapshot); JSON
        # has no NaN/inf, so only a snapshot that holds one is walked to store them as null
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        try:
            return json.dumps(data, separators=(",", ":"), allow_nan=False)
        except ValueError:
            return json.dumps(_finite(data), separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> Snapshot:
        data = json.loads(line)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: store them as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
