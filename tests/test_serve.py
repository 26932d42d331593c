"""`ffterm serve`: the app offered in a browser through textual-serve."""

import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from ffterm.core import rundir
from ffterm.core.snapshot import Snapshot

pytest.importorskip("textual_serve")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_serve_offers_the_app_watching_a_run(tmp_path):
    run = tmp_path / "myrun"
    run.mkdir()
    rundir.atomic_write_text(run / rundir.CONFIG, "model: ff\n")
    rundir.append_snapshot(run, Snapshot("myrun", "ff", "synthetic", "cpu", 3))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ffterm.cli", "serve", str(run), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        page = None
        for _ in range(100):
            try:
                page = urllib.request.urlopen(f"http://localhost:{port}/", timeout=1).read().decode()
                break
            except OSError:
                time.sleep(0.2)
        assert page is not None, "the server did not answer"
        assert "ffterm · myrun" in page and "textual.js" in page
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0]
    assert "--watch" in out and str(run) in out  # every visitor watches that run


def test_serve_refuses_a_directory_that_is_not_a_run(tmp_path, capsys):
    from ffterm.cli import main

    assert main(["serve", str(tmp_path / "nope")]) == 2
    assert "not an ffterm run directory" in capsys.readouterr().err
