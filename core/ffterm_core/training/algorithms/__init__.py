"""The algorithms, one class each, found by the `model` setting. A new algorithm is a module here with its
class, an entry in ALGORITHMS, and its facts (`ModelKind`) in `ffterm_core.config.MODEL_KINDS`."""

from __future__ import annotations

from ffterm_core.training.algorithms.base import Algorithm, Evaluation, StepInputs
from ffterm_core.training.algorithms.bp import BP
from ffterm_core.training.algorithms.bpff import BPFF
from ffterm_core.training.algorithms.ff import FF

ALGORITHMS: dict[str, Algorithm] = {a.kind.name: a for a in (FF(), BPFF(), BP())}

__all__ = ["ALGORITHMS", "Algorithm", "Evaluation", "StepInputs"]
