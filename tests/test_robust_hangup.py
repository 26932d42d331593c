"""A run started from the app outlives its terminal, and `ffterm attach` controls it again.

The app runs under a pseudo-terminal, as over SSH; closing the terminal's master side is the
hang-up a dropped connection gives (SIGHUP to the app).
"""

from __future__ import annotations

import os
import pty
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from ffterm_core.running.remote import RemoteSession
from ffterm_core.store import rundir
from ffterm_core.store.checkpoint import load_checkpoint
from ffterm_core.store.lock import read_holder

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals and SIGHUP are POSIX")

# long enough never to finish during the test; tiny so each epoch is quick
LONG_RUN = [
    "--set", "dataset=synthetic", "--set", "epochs=100000", "--set", "layers=1", "--set", "hidden=16",
    "--set", "train_limit=500", "--set", "test_limit=200", "--set", "batch_size=100", "--set", "analysis_samples=100",
    "--set", "eval_every=50", "--set", "final_pvalues=false", "--set", "threads=1", "--device", "cpu",
]  # fmt: skip


class Terminal:
    """A program on a pseudo-terminal; its screen output is drained so it never blocks writing."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the program, with the pty as its controlling terminal
            # as a login shell leaves it: a runner started under nohup would pass SIGHUP ignored through exec
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
            os.execve(sys.executable, [sys.executable, "-m", "ffterm.cli", *args], env)
        self.output = bytearray()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output += chunk

    def press(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def shows(self, text: bytes, since: int = 0) -> bool:
        """Whether the screen output from byte `since` on holds `text`."""
        return text in bytes(self.output[since:])

    def press_until_shown(self, keys: str, text: bytes, what: str) -> None:
        """Press `keys` once the app can take them, and wait until its screen answers with `text`."""
        mark = len(self.output)
        self.press(keys)
        _until(lambda: self.shows(text, mark), 120, what)

    def hang_up(self) -> int:
        """Close the terminal; the status the program ended with."""
        os.close(self.fd)
        return _wait_exit(self.pid, 120)


def _wait_exit(pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"pid {pid} did not end within {timeout} s")


def _until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _live_epochs(run: Path) -> int:
    return sum(1 for s in rundir.read_snapshots(run) if s.kind == "live")


def test_hang_up_leaves_the_run_training_and_attach_controls_it(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "TERM": "xterm-256color", "FFTERM_RUNTIME_DIR": str(tmp_path / "runtime")}
    app = Terminal("run", "quick-ff-synthetic", "--out", str(run), *LONG_RUN, env=env)
    trainer_pid = None
    try:
        _until(lambda: _live_epochs(run) >= 2, 180, "the run to train two epochs")
        trainer_pid = read_holder(run)["pid"]
        assert trainer_pid != app.pid  # trained by its own process, not the app's
        status = app.hang_up()
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGHUP  # the app got the hang-up…
        epochs = _live_epochs(run)
        _until(lambda: _live_epochs(run) > epochs, 120, "an epoch after the hang-up")  # …the run did not
        assert read_holder(run)["pid"] == trainer_pid

        viewer = Terminal("attach", str(run), env=env)
        remote = RemoteSession(run)
        _until(lambda: viewer.shows(b"RUNNING"), 120, "the attached app to show the run training")
        viewer.press_until_shown("p", b"PAUSED", "the attached app to show the pause")
        _until(lambda: remote.state == "paused", 120, "pause from the attached app")
        viewer.press_until_shown("p", b"RUNNING", "the attached app to show the resume")
        _until(lambda: remote.state == "running", 120, "resume from the attached app")
        viewer.press("s")
        remote.join(300)
        assert remote.state == "stopped"
        viewer.hang_up()
    finally:
        if trainer_pid is not None and read_holder(run) is not None:
            os.kill(trainer_pid, signal.SIGKILL)
    _, epoch, _ = load_checkpoint(run / rundir.CHECKPOINT)["trainer"]["position"]
    assert epoch >= 3 and read_holder(run) is None
    assert "stopped: checkpoint saved" in (run / rundir.TRAIN_LOG).read_text()


def test_watch_on_a_run_training_in_the_background_takes_control(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "TERM": "xterm-256color", "FFTERM_RUNTIME_DIR": str(tmp_path / "runtime")}
    starter = Terminal("run", "quick-ff-synthetic", "--detach", "--out", str(run), *LONG_RUN, env=env)
    assert os.WEXITSTATUS(_wait_exit(starter.pid, 120)) == 0  # it returns once the run trains on its own
    trainer_pid = read_holder(run)["pid"]
    try:
        _until(lambda: _live_epochs(run) >= 1, 180, "the run's first epoch")
        viewer = Terminal("watch", str(run), env=env)
        remote = RemoteSession(run)
        _until(lambda: viewer.shows(b"RUNNING"), 120, "the app to show the run training")
        viewer.press_until_shown("p", b"PAUSED", "the app to show the pause")  # a watched run: "No training here"
        _until(lambda: remote.state == "paused", 120, "pause from `ffterm watch`")
        viewer.press("s")
        remote.join(300)
        assert remote.state == "stopped"
        viewer.press("q")
        assert os.WEXITSTATUS(_wait_exit(viewer.pid, 120)) == 0
    finally:
        if read_holder(run) is not None:
            os.kill(trainer_pid, signal.SIGKILL)
    assert "stopped: checkpoint saved" in (run / rundir.TRAIN_LOG).read_text()
