"""The training loop, one for a run and for seeds trained together: it steps a trainer, has each run's
recorder (its `Session`) record every epoch, decides when checkpoints are written, obeys the commands
between batches, and turns a failure into each run's one-line error.

Checkpoints are written by time, not by epoch: at most one per `checkpoint_minutes` of training, and
always at the end of a sequential-FF layer, on pause, on a stop (also from SIGTERM) and at the end.

Each epoch's snapshot is computed by the snapshot worker (`snapshot_worker`) on a copy of the network
while training goes on; the loop drains the worker before every checkpoint, pause, stop and the end, so
snapshots.jsonl holds every snapshot up to the checkpoint, and a snapshot's error ends the runs here.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from ffterm_core.config import RunConfig
from ffterm_core.data.datasets import DatasetError
from ffterm_core.data.prepare import PreparedData, prepare
from ffterm_core.store.checkpoint import CheckpointError
from ffterm_core.training.evaluate import live_subset
from ffterm_core.training.snapshot_worker import Job, SnapshotWorker
from ffterm_core.training.trainers import BaseTrainer, EpochMetrics, TrainerView

Clock = Callable[[], float]


class TrainingFailed(RuntimeError):
    """A run that cannot go on (NaN loss); the last good checkpoint is kept."""


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Recorder(Protocol):
    """One run's record (a `Session`): snapshots, checkpoints, state, final.json."""

    @property
    def config(self) -> RunConfig: ...
    @property
    def run_dir(self) -> Path: ...
    def publish_state(self, state: str, message: str | None = None) -> None: ...
    def restore_state(self) -> dict[str, Any]: ...
    def started(self) -> None: ...
    def record_epoch(
        self,
        view: TrainerView,
        metrics: EpochMetrics,
        stage: int,
        elapsed: float,
        subset: torch.Tensor,
    ) -> Job:
        """Check the epoch just ended (TrainingFailed if the run cannot go on) and return the work that writes
        its snapshot: the loop runs it on the snapshot worker, so it reads only copies taken now."""
        ...

    def checkpoint(self, view: TrainerView) -> None: ...
    def record_pause(self, paused: bool) -> None: ...
    def record_stop(self, view: TrainerView, training_seconds: float) -> None: ...
    def finish(self, view: TrainerView) -> None: ...
    def fail(self, message: str, details: str | None = None) -> None:
        """End the run with `message`; `details` (a traceback) kept in the run directory."""
        ...


class Control(Protocol):
    """The commands a loop obeys between batches."""

    def stop_requested(self) -> bool: ...
    def pause_requested(self) -> bool: ...
    def wait_unpaused(self) -> None: ...
    def take_checkpoint_request(self) -> bool: ...


class NoControl:
    """A loop nobody commands (seeds trained together): it runs to the end or to Ctrl-C."""

    def stop_requested(self) -> bool:
        return False

    def pause_requested(self) -> bool:
        return False

    def wait_unpaused(self) -> None:
        return None

    def take_checkpoint_request(self) -> bool:
        return False


def run_training(
    recorders: Sequence[Recorder],
    device: torch.device,
    build: Callable[[PreparedData], BaseTrainer],
    *,
    resume: bool,
    control: Control | None = None,
    clock: Clock = time.perf_counter,
    background_snapshots: bool = True,
) -> None:
    """Prepare the data, build the trainer (continuing from the runs' checkpoints with `resume`) and train;
    an error ends every run with one line (the traceback of an unexpected one in each run directory).
    `background_snapshots` False computes each snapshot on the training thread, training waiting for it."""
    try:
        cfg = recorders[0].config
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        message = (
            "loading data" if len(recorders) == 1 else f"loading data (one batched model for {len(recorders)} seeds)"
        )
        for r in recorders:
            r.publish_state("starting", message)
        data = prepare(cfg, device)
        trainer = build(data)
        if resume:
            trainer.load_states([r.restore_state() for r in recorders])
        subsets = [live_subset(data.test_y.shape[0], r.config.analysis_samples, r.config.seed) for r in recorders]
        # one epoch's snapshots (one a run) may wait while the next epoch trains
        worker = SnapshotWorker(device, background=background_snapshots, depth=len(recorders))
        TrainingLoop(trainer, recorders, subsets, control or NoControl(), clock, worker).run()
    except (DatasetError, CheckpointError, TrainingFailed) as exc:  # expected: the message says the fix
        for r in recorders:
            r.fail(first_line(exc))
    except OSError as exc:  # a write refused (full disk, permissions): what was saved before is intact
        for r in recorders:
            where = exc.filename or r.run_dir
            r.fail(f"{where}: {exc.strerror or exc}; fix that, then `ffterm resume {r.run_dir}` (or run it again)")
    except Exception as exc:  # anything else (out of memory, a bug): one line, the traceback in the run dir
        for r in recorders:
            r.fail(f"{type(exc).__name__}: {first_line(exc)}", traceback.format_exc())


class TrainingLoop:
    def __init__(
        self,
        trainer: BaseTrainer,
        recorders: Sequence[Recorder],
        subsets: Sequence[torch.Tensor],
        control: Control,
        clock: Clock,
        worker: SnapshotWorker,
    ) -> None:
        self.trainer, self.recorders, self.subsets = trainer, list(recorders), list(subsets)
        self.control, self.clock, self.worker = control, clock, worker
        self.views = trainer.views()
        self.live = list(range(len(recorders)))  # the runs still training (a NaN loss ends one seed alone)
        self.period = 60.0 * trainer.cfg.checkpoint_minutes
        self.since_checkpoint = 0.0  # training seconds since the last checkpoint

    def run(self) -> None:
        try:
            self._run()
        finally:  # what was handed over is written (after an error too) before the runs' last lines
            self.worker.close()

    def _run(self) -> None:
        trainer, control, clock = self.trainer, self.control, self.clock
        for i in self.live:
            self.recorders[i].started()
        epoch_time = 0.0  # seconds spent training in the current epoch, pauses excluded
        start = clock()
        try:
            while not trainer.done and self.live:
                if control.stop_requested():
                    self._stop(epoch_time + clock() - start)
                    return
                if control.pause_requested():
                    epoch_time += clock() - start
                    self._checkpoint()  # a paused run may never be resumed
                    self._each(lambda r, _: r.record_pause(True))
                    control.wait_unpaused()
                    self._each(lambda r, _: r.record_pause(False))
                    start = clock()
                    continue
                if control.take_checkpoint_request():
                    self._checkpoint()
                if trainer.step():
                    self._end_epoch(epoch_time, start)
                    epoch_time, start = 0.0, clock()
        except KeyboardInterrupt:
            self._stop(epoch_time + clock() - start)
            raise
        self.worker.drain()
        trainer.sync_nets()
        self._each(lambda r, view: r.finish(view))

    def _end_epoch(self, epoch_time: float, start: float) -> None:
        trainer = self.trainer
        stage = trainer.stage
        metrics = trainer.end_epoch()
        if trainer.device.type == "cuda":  # the step's stream only: the snapshot worker's goes on
            torch.cuda.current_stream(trainer.device).synchronize()
        elapsed = epoch_time + self.clock() - start  # evaluation and writing are not training time
        trainer.sync_nets()
        self.since_checkpoint += elapsed
        due = trainer.done or trainer.stage != stage or self.since_checkpoint >= self.period
        for i in list(self.live):
            try:
                job = self.recorders[i].record_epoch(self.views[i], metrics[i], stage, elapsed, self.subsets[i])
            except TrainingFailed as exc:
                self.worker.drain()  # its earlier snapshots are written before the line that says it failed
                self.recorders[i].fail(str(exc))
                self.live.remove(i)
                continue
            self.worker.submit(job)
        if due:
            self.since_checkpoint = 0.0
            self._checkpoint()

    def _checkpoint(self) -> None:
        """Each run's checkpoint, once every snapshot up to it is written."""
        self.worker.drain()
        self.trainer.sync_nets()
        self._each(lambda r, view: r.checkpoint(view))

    def _stop(self, training_seconds: float) -> None:
        self.worker.drain()
        self.trainer.sync_nets()
        self._each(lambda r, view: r.record_stop(view, training_seconds))

    def _each(self, act: Callable[[Recorder, TrainerView], None]) -> None:
        for i in self.live:
            act(self.recorders[i], self.views[i])
