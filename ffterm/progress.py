"""Console progress for headless runs: layer, epoch, loss, accuracy, samples/s, ETA.

On a terminal, a live progress bar; otherwise (nohup, a log file) one plain line per evaluated
snapshot, so a log of a long run shows its progress.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ffterm_core.config import RunConfig
from ffterm_core.store.snapshot import Snapshot


class ConsoleProgress:
    """A rich progress bar fed by session snapshots (called on the training thread; rich locks)."""

    def __init__(self, cfg: RunConfig, console: Console) -> None:
        self.cfg = cfg
        self.progress = Progress(
            TextColumn("[bold]{task.fields[stage]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task("train", total=cfg.total_epochs, stage="starting", metrics="")
        self.accuracy: float | None = None
        self.lines = not console.is_terminal

    def __enter__(self) -> ConsoleProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def note(self, text: str) -> None:
        self.progress.console.print(text)

    def update(self, snap: Snapshot) -> None:
        if snap.kind == "state":
            if snap.state == "failed":  # the caller reports the error, once
                self.progress.update(self.task, metrics="failed")
            elif snap.message:
                self.progress.update(self.task, metrics=f"{snap.state}: {snap.message}")
                if self.lines:
                    self.progress.console.print(f"{snap.state}: {snap.message}")
            return
        if snap.test_accuracy is not None:
            self.accuracy = snap.test_accuracy
        if self.cfg.stages > 1:
            stage = f"layer {snap.stage + 1}/{self.cfg.stages} epoch {snap.stage_epoch}/{self.cfg.epochs}"
        else:
            stage = f"epoch {snap.epoch}/{snap.total_epochs}"
        losses = [v for v in snap.loss if v is not None]
        parts = []
        if losses:
            parts.append(
                f"loss {losses[0]:.4f}" if len(losses) == 1 else "loss " + "/".join(f"{v:.3f}" for v in losses)
            )
        if self.accuracy is not None:
            parts.append(f"acc {self.accuracy:.4f}")
        if snap.samples_per_s:
            parts.append(f"{snap.samples_per_s:,.0f} samples/s")
        if snap.kind == "final":
            stage = "final"
        self.progress.update(self.task, completed=snap.epoch, stage=stage, metrics="  ".join(parts))
        if self.lines and (snap.evaluated or snap.kind == "final"):
            eta = f"  ETA {snap.eta_s:.0f} s" if snap.eta_s else ""
            self.progress.console.print(f"{stage}  {'  '.join(parts)}{eta}", soft_wrap=True)
