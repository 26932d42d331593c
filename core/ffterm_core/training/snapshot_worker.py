"""The snapshot worker: live snapshots (evaluation, per-layer analysis, the line in snapshots.jsonl) computed
on one thread of their own while training goes on.

The training thread hands over a job that reads only its own copy of the network (taken at the epoch's end)
and returns at once; jobs run one at a time in the order given, so snapshots are written in order. At most
`depth` jobs wait: a training thread that gets further ahead waits for the worker (a live snapshot is never
skipped, so a run records the same snapshots however fast its snapshots are). `drain()` waits until every job
handed over is done: the loop drains before a checkpoint, a pause, a stop and the end. A job's exception is
raised on the training thread at its next `submit` or `drain`, and the jobs after it are not run.

On CUDA a job runs on a side stream, after the copy it reads, so it overlaps the training step.
`background=False` runs each job at once on the calling thread (as a run did before there was a worker).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import torch

Job = Callable[[], None]


class SnapshotWorker:
    def __init__(self, device: torch.device, *, background: bool = True, depth: int = 1) -> None:
        self.device = device
        self.background = background
        self._jobs: queue.Queue[tuple[Job, torch.cuda.Event | None] | None] = queue.Queue(maxsize=depth)
        self._idle = threading.Condition()
        self._pending = 0  # jobs handed over and not finished
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._side: torch.cuda.Stream | None = None

    def submit(self, job: Job) -> None:
        """Run `job` after the jobs handed over before it; waits while `depth` jobs are already waiting."""
        self._raise_error()
        if not self.background:
            job()
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="ffterm-snapshots", daemon=True)
            self._thread.start()
        with self._idle:
            self._pending += 1
        try:
            self._jobs.put((job, self._copied()))
        except BaseException:  # e.g. Ctrl-C while waiting for room: the job was never handed over
            with self._idle:
                self._pending -= 1
            raise

    def drain(self) -> None:
        """Wait until every job handed over is done; raise the first exception one of them raised."""
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0)
        self._raise_error()

    def close(self) -> None:
        """Finish the jobs handed over (unless one failed) and end the thread; the error, if any, stays for
        `drain` to raise."""
        if self._thread is None:
            return
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0)
        self._jobs.put(None)
        self._thread.join()
        self._thread = None

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _copied(self) -> torch.cuda.Event | None:
        """On CUDA, an event after the job's copy was queued on the training stream: the side stream waits for it."""
        if self.device.type != "cuda":
            return None
        event = torch.cuda.Event()  # type: ignore[no-untyped-call]  # torch leaves Event.__new__ unannotated
        event.record()
        return event

    def _work(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, copied = item
            try:
                if self._error is None:  # after a failure, the jobs that follow are dropped
                    self._run(job, copied)
            except BaseException as exc:  # raised on the training thread, which turns it into the run's error
                self._error = exc
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _run(self, job: Job, copied: torch.cuda.Event | None) -> None:
        if copied is None:
            job()
            return
        if self._side is None:
            self._side = torch.cuda.Stream(self.device)  # type: ignore[no-untyped-call]  # torch leaves Stream.__new__ unannotated
        with torch.cuda.stream(self._side):
            self._side.wait_event(copied)
            job()
        self._side.synchronize()  # its tensors go back to the allocator only once nothing on the stream reads them
