"""A trainer's step of full batches captured once in a CUDA graph and replayed: one launch per batch
instead of dozens (docs/speed). The numbers are the eager step's: the same kernels on the same tensors."""

from __future__ import annotations

from typing import Protocol

import torch


class Capturable(Protocol):
    """What a captured trainer offers."""

    @property
    def cfg(self) -> object: ...
    @property
    def optimizers(self) -> list[torch.optim.Optimizer]: ...
    def batch_size(self) -> int: ...
    def train_batch(self, idx: torch.Tensor, autocast_cache: bool = True) -> None: ...
    def graph_reads(self) -> tuple[object, ...]: ...


class GraphedStep:
    """A few eager steps first (on a side stream, as CUDA graphs need: Adam's state and cuBLAS's workspace
    exist before capture), then the step is captured reading a fixed index buffer and replayed with each
    batch's indices copied in. Captured again when the tensors it reads are replaced (`graph_reads`); the
    epoch's permutation, negatives and metric sums are refilled in place."""

    WARMUP_STEPS = 3

    def __init__(self, trainer: Capturable) -> None:
        self.trainer = trainer
        self.graph: torch.cuda.CUDAGraph | None = None
        # the tensors the graph reads, held (not their id()s: a freed tensor's id can be reused)
        self.reads: tuple[object, ...] | None = None
        self.index = torch.empty(0)
        self.eager_steps = 0
        self._side: torch.cuda.Stream | None = None  # the warm-up stream, one for all warm-ups

    def _same_reads(self, reads: tuple[object, ...]) -> bool:
        return (
            self.reads is not None and len(reads) == len(self.reads) and all(a is b for a, b in zip(reads, self.reads))
        )

    def run(self, idx: torch.Tensor) -> bool:
        """Train on batch `idx` through the graph; False when it must run eagerly (a short last batch)."""
        t = self.trainer
        if idx.shape[-1] != t.batch_size():
            return False
        reads = t.graph_reads()
        if not self._same_reads(reads):
            self.graph, self.reads, self.eager_steps = None, reads, 0
        if self.graph is None:
            if self.eager_steps < self.WARMUP_STEPS:
                self.eager_steps += 1
                if self._side is None:
                    self._side = torch.cuda.Stream()  # type: ignore[no-untyped-call]  # torch leaves Stream.__new__ unannotated
                self._side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(self._side):
                    t.train_batch(idx)
                torch.cuda.current_stream().wait_stream(self._side)
                return True
            self.index = idx.clone()
            for opt in t.optimizers:
                opt.zero_grad(set_to_none=True)
            self.graph = torch.cuda.CUDAGraph()
            # thread_local: the snapshot worker may use the GPU (on its own stream) while the step is captured
            with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
                t.train_batch(self.index, autocast_cache=False)  # recorded, not run: the replay trains on this batch
        self.index.copy_(idx)
        self.graph.replay()
        return True
