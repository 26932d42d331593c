"""Session: one training run in a background thread, with commands, subscribers and a run directory.

The thread checks its command flags between batches (pause, stop, checkpoint, snapshot). A stop
leaves a consistent checkpoint and a complete snapshots.jsonl; a crash leaves everything written up
to the last snapshot. Subscribers are called on the training thread (state changes, the final
snapshot) or the loop's snapshot worker (live snapshots, in order) and must return at once (the app
posts a coalescing message; the console updates a progress bar).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ffterm_core.analysis.ensemble_life import EnsembleLife
from ffterm_core.config import RunConfig, dump_yaml, to_dict
from ffterm_core.data.datasets import num_classes
from ffterm_core.device import check_precision, describe, effective_precision, gpu_stats, resolve_device
from ffterm_core.records import FinalRecord, did_not_learn, final_layer
from ffterm_core.store import rundir
from ffterm_core.store.checkpoint import load_checkpoint, restore_previous, save_checkpoint
from ffterm_core.store.history import RunHistory
from ffterm_core.store.lock import RunLock
from ffterm_core.store.rundir import LOCK
from ffterm_core.store.snapshot import Snapshot
from ffterm_core.training.evaluate import NothingCorrect, evaluate, live_subset
from ffterm_core.training.loop import Clock, TrainingFailed, run_training
from ffterm_core.training.snapshot_worker import Job
from ffterm_core.training.trainers import EpochMetrics, NetworkView, Trainer, TrainerView

Subscriber = Callable[[Snapshot], None]
NoticeHandler = Callable[[str], None]


__all__ = ["NoticeHandler", "Session", "Subscriber", "TrainingFailed"]


class Session:
    """A run's commands (the `Control` of its loop) and its record (the loop's `Recorder`)."""

    def __init__(
        self,
        cfg: RunConfig,
        run_dir: Path | None = None,
        *,
        force: bool = False,
        run_root: Path = Path("runs"),
        _resume: RunLock | None = None,
        clock: Clock = time.perf_counter,
        background_snapshots: bool = True,
    ) -> None:
        """A new run in `run_dir` (default: a fresh folder under `run_root`), which this session
        owns (its lock) until the training thread ends. `_resume` is the lock `resume_from` took.
        `clock` measures training time (checkpoints are written by it). `background_snapshots` False
        computes live snapshots on the training thread, which waits for them (the same numbers)."""
        self.config = cfg
        self.clock = clock
        self.background_snapshots = background_snapshots
        self.run_dir = Path(run_dir) if run_dir is not None else rundir.new_run_dir(cfg.name, run_root)
        self.device = resolve_device(cfg.device)  # DeviceError before anything is written
        check_precision(cfg.precision, self.device)
        self._lock = _resume or RunLock(self.run_dir)
        if _resume is None:
            self._claim_run_dir(force)
        self._resume = _resume is not None
        self._subscribers: list[Subscriber] = []
        self._notice_handlers: list[NoticeHandler] = []
        self.notices: list[str] = []  # e.g. the snapshot lines a resume dropped, and why
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._unpaused = threading.Event()
        self._unpaused.set()
        self._checkpoint_requested = threading.Event()
        self._snapshot_requested = threading.Event()
        # set when the thread's work is over; waited on instead of Thread.join, which on Python 3.11
        # can report a live thread as stopped when Ctrl-C interrupts it
        self._done = threading.Event()
        self.state = "starting"
        self.error: str | None = None
        self.final: FinalRecord | None = None
        self._wall = 0.0  # training seconds so far (resumed runs continue the count)
        self._last: Snapshot | None = None
        self._history = RunHistory()  # what snapshots.jsonl holds: final.json's ensemble_life is read from it
        self._saved_position: tuple[int, int, int] | None = None  # of the last checkpoint written

    @classmethod
    def resume_from(
        cls, run_dir: Path, device: str | None = None, *, previous: bool = False, clock: Clock = time.perf_counter
    ) -> Session:
        """A session that continues the run in `run_dir` from its checkpoint (or, with `previous`,
        from the checkpoint kept before it)."""
        run_dir = Path(run_dir)
        if not (run_dir / rundir.CONFIG).exists():
            raise rundir.RunDirError(f"{run_dir}: no {rundir.CONFIG} here; is this an ffterm run directory?")
        lock = RunLock(run_dir).acquire()
        try:
            cfg = rundir.read_config(run_dir)
            if rundir.is_finished(run_dir):
                raise rundir.RunDirError(
                    f"{run_dir}: this run has already finished (final.json exists); nothing to resume"
                )
            rundir.clean_temp_files(run_dir)
            if previous:
                restore_previous(run_dir)
            if not (run_dir / rundir.CHECKPOINT).exists():
                raise rundir.RunDirError(
                    f"{run_dir}: no {rundir.CHECKPOINT} to resume from; start the run again with `ffterm run`"
                )
            if device is not None:
                cfg = cfg.replace(device=device)
            load_checkpoint(run_dir / rundir.CHECKPOINT, cfg)  # validate before starting the thread
            return cls(cfg, run_dir, _resume=lock, clock=clock)
        except BaseException:
            lock.release()
            raise

    def _claim_run_dir(self, force: bool) -> None:
        """Take the run directory: lock it, check it may be used, clear an earlier run's outputs."""
        d = self.run_dir
        new_lock_file = not (d / LOCK).exists()
        if d.is_dir():
            self._lock.acquire()  # first, so a directory in use is reported as such
        try:
            rundir.check_target(d, force)
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise rundir.RunDirError(
                    f"{d}: cannot create the run directory ({exc.strerror}); pick a writable place with --out"
                ) from None
            if not self._lock.held:
                self._lock.acquire()
            rundir.clean_temp_files(d)
            rundir.clear_outputs(d)
            try:
                rundir.atomic_write_text(d / rundir.CONFIG, dump_yaml(self.config))
            except OSError as exc:
                raise rundir.RunDirError(
                    f"{d}: cannot write {rundir.CONFIG} ({exc.strerror}); pick a writable place"
                ) from None
        except BaseException:
            if self._lock.held and new_lock_file:  # a refused folder is left as it was
                (d / LOCK).unlink(missing_ok=True)
            self._lock.release()
            raise

    def record_owner(self, **extra: Any) -> None:
        """Add to what the run directory's lock file says about its owner (e.g. its control socket)."""
        self._lock.update(**extra)

    def release(self) -> None:
        """Give up the run directory of a session that will not be started (start() does it at the end)."""
        if self._thread is None:
            self._lock.release()

    # ---- commands (any thread) ------------------------------------------------------------
    def subscribe(self, fn: Subscriber) -> None:
        self._subscribers.append(fn)

    def subscribe_notices(self, fn: NoticeHandler) -> None:
        """`fn(line)` for each notice (e.g. a snapshot line a resume dropped); called on the training thread."""
        self._notice_handlers.append(fn)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"ffterm-{self.config.name}", daemon=True)
        self._thread.start()

    def pause(self) -> None:
        if self.state == "running":
            self._unpaused.clear()

    def resume(self) -> None:
        self._unpaused.set()

    def stop(self) -> None:
        self._stop.set()
        self._unpaused.set()

    def request_checkpoint(self) -> None:
        self._checkpoint_requested.set()

    def request_snapshot(self) -> None:
        self._snapshot_requested.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait (interruptibly) until the training thread has finished its work."""
        if self._thread is not None:
            self._done.wait(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and not self._done.is_set()

    @property
    def paused(self) -> bool:
        return self.state == "paused"

    # ---- the training thread --------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._train()
        finally:
            self._lock.release()
            self._done.set()

    def _train(self) -> None:
        run_training(
            [self],
            self.device,
            lambda data: Trainer(self.config, data, self.device),
            resume=self._resume,
            control=self,
            clock=self.clock,
            background_snapshots=self.background_snapshots,
        )

    # ---- the loop's control ---------------------------------------------------------------
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def pause_requested(self) -> bool:
        return not self._unpaused.is_set()

    def wait_unpaused(self) -> None:
        self._unpaused.wait()

    def take_checkpoint_request(self) -> bool:
        requested = self._checkpoint_requested.is_set()
        self._checkpoint_requested.clear()
        return requested

    # ---- the loop's record ----------------------------------------------------------------
    def restore_state(self) -> dict[str, Any]:
        """The checkpoint's trainer state; takes over its training time and cuts snapshots.jsonl back to it."""
        ckpt = load_checkpoint(self.run_dir / rundir.CHECKPOINT, self.config)
        self._wall = float(ckpt["wall_time"])
        stage, epoch, _ = (int(v) for v in ckpt["trainer"]["position"])
        for line in rundir.truncate_snapshots(self.run_dir, stage * self.config.epochs + epoch):
            self._notice(line)
        self._history = RunHistory.from_snapshots(rundir.read_snapshots(self.run_dir))
        return dict(ckpt["trainer"])

    def _notice(self, line: str) -> None:
        self.notices.append(line)
        for fn in list(self._notice_handlers):
            fn(line)

    def started(self) -> None:
        self.state = "running"

    def record_pause(self, paused: bool) -> None:
        self.publish_state("paused" if paused else "running")

    def record_stop(self, trainer: TrainerView, training_seconds: float) -> None:
        self._wall += training_seconds
        self.checkpoint(trainer)
        self.publish_state("stopped", f"checkpoint saved; continue with `ffterm resume {self.run_dir}`")

    def record_epoch(
        self,
        trainer: TrainerView,
        metrics: EpochMetrics,
        stage: int,
        elapsed: float,
        subset: torch.Tensor,
    ) -> Job:
        """After an epoch: check the loss, and return the work that writes its snapshot (evaluated every
        eval_every, on `subset`, from a copy of the network taken now)."""
        cfg = self.config
        self._check_finite(metrics, trainer)
        self._wall += elapsed
        done = trainer.epochs_done
        evaluated = done % cfg.effective_eval_every == 0 or self._snapshot_requested.is_set()
        self._snapshot_requested.clear()
        if trainer.done:
            evaluated = False  # the final snapshot follows
        snap = self._snapshot(trainer, metrics, stage, elapsed)
        if not evaluated:
            return partial(self._emit, snap)
        network = trainer.frozen()

        def evaluated_snapshot() -> None:
            self._evaluate(snap, network, subset, final=False)
            self._emit(snap)

        return evaluated_snapshot

    def _check_finite(self, metrics: EpochMetrics, trainer: TrainerView) -> None:
        values = metrics.loss + metrics.g_pos + metrics.g_neg
        if not all(v == v and abs(v) != float("inf") for v in values):
            cfg = self.config
            # settings beyond float32's range overflow whatever the learning rate
            huge = [f"{k}={getattr(cfg, k):g}" for k in ("threshold", "lr", "act_l1") if abs(getattr(cfg, k)) > 1e30]
            fix = f"{', '.join(huge)} overflows float32; use a smaller value" if huge else "try a smaller lr"
            kept = (self.run_dir / rundir.CHECKPOINT).exists()
            where = f"the last good checkpoint is kept in {self.run_dir}" if kept else "nothing was saved"
            raise TrainingFailed(f"the loss became NaN/inf at epoch {trainer.epochs_done}; {fix}; {where}")

    def _snapshot(
        self,
        trainer: TrainerView,
        metrics: EpochMetrics | None,
        stage: int,
        elapsed: float,
        final: bool = False,
    ) -> Snapshot:
        """The snapshot's progress fields, as they are now (its evaluation is `_evaluate`'s)."""
        cfg = self.config
        done = trainer.epochs_done
        snap = Snapshot(
            **self._identity(),
            kind="final" if final else "live",
            state=self.state,
            stage=min(stage, cfg.stages - 1),
            stage_epoch=done - stage * cfg.epochs if cfg.stages > 1 else done,
            epochs_per_stage=cfg.epochs,
            epoch=done,
            total_epochs=cfg.total_epochs,
            wall_time=round(self._wall, 3),
            gpu=gpu_stats(self.device),
        )
        if metrics is not None:
            snap.samples_per_s = metrics.samples / elapsed if elapsed > 0 else None
            remaining = snap.total_epochs - done
            snap.eta_s = remaining * elapsed if elapsed > 0 else None
            snap.loss, snap.g_pos, snap.g_neg = self._metric_lists(metrics, stage)
        return snap

    def _evaluate(self, snap: Snapshot, network: NetworkView, subset: torch.Tensor | None, final: bool) -> None:
        """Fill in the snapshot's accuracy and per-layer analysis (of `subset` of the test set, or all of it)."""
        ev = evaluate(network, self.config, subset, final)
        snap.test_accuracy = ev["test_accuracy"]
        snap.layer_accuracy = ev["layer_accuracy"]
        snap.eval_samples = ev["eval_samples"]
        snap.layers = ev["layers"]
        snap.heldout = ev.get("heldout")

    def _metric_lists(self, m: EpochMetrics, stage: int) -> tuple[list[float | None], ...]:
        """Loss, G⁺ and G⁻ per layer; when layers train one at a time, None for every other layer."""
        cfg = self.config
        if not cfg.kind.goodness:
            return [*m.loss], [], []
        return tuple(
            [v if cfg.stages == 1 or i == stage else None for i, v in enumerate(vals)]
            for vals in (m.loss, m.g_pos, m.g_neg)
        )

    def finish(self, trainer: TrainerView) -> None:
        self.state = "finished"
        self.publish_state("finished", "final analysis on the whole test set")
        snap = self._snapshot(trainer, None, self.config.stages - 1, 0.0, final=True)
        self._evaluate(snap, trainer, None, final=True)
        final = FinalRecord(
            config=to_dict(self.config),
            test_accuracy=snap.test_accuracy,
            layer_accuracy=snap.layer_accuracy,
            epochs_done=trainer.epochs_done,
            wall_seconds=round(self._wall, 3),
            device=describe(self.device),
            v_train=trainer.data.v_train,
            v_test=trainer.data.v_test,
            layers=[final_layer(layer) for layer in snap.layers or []],
        )
        final["matmul_precision"] = effective_precision(self.config.precision, self.device)
        flag = did_not_learn(snap.test_accuracy, num_classes(self.config.dataset))
        if flag is not None:
            final["did_not_learn"] = flag
        if snap.heldout is not None:
            final["heldout"] = snap.heldout
        self._add_live_ensembles(trainer, snap)
        rundir.append_snapshot(self.run_dir, snap)
        self._history.add(snap)
        final["ensemble_life"] = EnsembleLife.from_history(self._history).to_json()  # every evaluation, this one too
        rundir.write_json(self.run_dir / rundir.FINAL, final)
        self.final = final
        self._notify(snap)

    def _add_live_ensembles(self, trainer: TrainerView, snap: Snapshot) -> None:
        """The final model's ensembles on the live evaluations' images, and their split-half floor, so that
        the ensemble dynamics compare like with like (docs/algorithms.md#ensemble-stability)."""
        cfg = self.config
        subset = live_subset(trainer.data.test_y.shape[0], cfg.analysis_samples, cfg.seed)
        try:
            live = evaluate(trainer, cfg, subset, False, stability_floor=True)["layers"]
        except NothingCorrect:  # every ensemble on the live images is undefined
            for layer in snap.layers or []:
                layer["live_ensembles"] = layer["stability_floor"] = None
            return
        for layer, on_live in zip(snap.layers or [], live):
            layer["live_ensembles"] = on_live["ensembles"]
            layer["stability_floor"] = on_live.get("stability_floor")

    def checkpoint(self, trainer: TrainerView) -> None:
        position = (trainer.stage, trainer.epoch, trainer.batch)
        if position == self._saved_position:  # e.g. a stop right after an epoch's save: keep the previous one
            return
        save_checkpoint(self.run_dir / rundir.CHECKPOINT, self.config, trainer.state_dict(), self._wall)
        self._saved_position = position

    def _emit(self, snap: Snapshot) -> None:
        rundir.append_snapshot(self.run_dir, snap)
        self._history.add(snap)
        self._notify(snap)

    def _notify(self, snap: Snapshot) -> None:
        self._last = snap
        for fn in list(self._subscribers):
            fn(snap)

    def _identity(self) -> dict[str, Any]:
        """The fields every snapshot of this run starts with."""
        cfg = self.config
        return {
            "run_name": cfg.name,
            "model": cfg.model,
            "dataset": cfg.dataset,
            "device": describe(self.device),
            "num_layers": cfg.layers,
        }

    def publish_state(self, state: str, message: str | None = None) -> None:
        """Tell subscribers about a state change; a stop or failure is also written to snapshots.jsonl."""
        self.state = state
        cfg = self.config
        base = self._last
        snap = Snapshot(
            **self._identity(),
            kind="state",
            state=state,
            message=message,
            epoch=base.epoch if base else 0,
            stage=base.stage if base else 0,
            stage_epoch=base.stage_epoch if base else 0,
            epochs_per_stage=cfg.epochs,
            total_epochs=cfg.total_epochs,
            wall_time=round(self._wall, 3),
        )
        if state in ("stopped", "failed") and self.run_dir.exists():
            with contextlib.suppress(OSError):  # the disk that failed the run may refuse this line too
                rundir.append_snapshot(self.run_dir, snap)
        for fn in list(self._subscribers):
            fn(snap)

    def fail(self, message: str, details: str | None = None) -> None:
        if details is not None:
            log = self.run_dir / rundir.ERROR_LOG
            try:
                log.write_text(details)
                message = f"{message} (traceback in {log})"
            except OSError as exc:
                message = f"{message} (its traceback could not be saved: {exc.strerror or exc})"
        self.error = message
        self.publish_state("failed", message)
        self._discard_if_empty()

    def _discard_if_empty(self) -> None:
        """A run that failed before its first checkpoint (e.g. missing data) leaves no directory behind."""
        d = self.run_dir
        if self._resume or (d / rundir.CHECKPOINT).exists() or (d / rundir.ERROR_LOG).exists():
            return
        for name in (rundir.CONFIG, rundir.SNAPSHOTS, LOCK):  # nobody can take an unlinked lock file's name
            (d / name).unlink(missing_ok=True)
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()
