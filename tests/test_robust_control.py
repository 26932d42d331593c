"""The control socket answers every line and holds a bounded number of connections; `ffterm runs`
reads the registry and lock records as untrusted files."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import pytest

from ffterm.cli import main
from ffterm_core.running.control import MAX_CONNECTIONS, ControlServer, send
from ffterm_core.store.lock import RunLock, registry_dir


@pytest.fixture(autouse=True)
def _own_runtime_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FFTERM_RUNTIME_DIR", str(tmp_path / "runtime"))


class Recorder:  # what the server drives: a session's command methods
    state, error = "running", None

    def __init__(self, run_dir):
        self.run_dir = run_dir
        self.calls: list[str] = []

    def __getattr__(self, name):
        return lambda: self.calls.append(name)


@pytest.fixture
def server(tmp_path):
    srv = ControlServer(Recorder(tmp_path), tmp_path / "control.sock")
    srv.start()
    yield srv
    srv.close()


def _connect(path) -> socket.socket:
    deadline = time.monotonic() + 120
    while True:
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(120)
        try:
            sock.connect(str(path))
            return sock
        except BlockingIOError:  # the listen backlog is full: the server has not accepted yet
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@pytest.mark.parametrize(
    "line",
    [b'{"cmd": []}', b'{"cmd": {"a": 1}}', b"[" * 4000, b'["status"]', b"null", b'{"cmd": 7}', b"\xff\xfe"],
    ids=["list", "mapping", "nested", "array", "null", "number", "not-utf8"],
)
def test_every_malformed_line_gets_an_error_object_and_the_connection_stays(server, line, capfd):
    with _connect(server.path) as sock, sock.makefile("rwb") as stream:
        stream.write(line + b"\n")
        stream.flush()
        reply = json.loads(stream.readline())
        assert reply == {"ok": False, "error": 'expected one JSON object per line, e.g. {"cmd": "status"}'}
        stream.write(b'{"cmd": "pause"}\n')  # the same connection still serves
        stream.flush()
        assert json.loads(stream.readline())["ok"] is True
    assert server.session.calls == ["pause"]
    assert "Traceback" not in capfd.readouterr().err


def test_connections_beyond_the_cap_are_told_and_closed_without_a_thread_each(server):
    before = threading.active_count()
    held = [_connect(server.path) for _ in range(MAX_CONNECTIONS)]
    try:
        extra = [_connect(server.path) for _ in range(200)]
        for sock in extra:  # each is told at once and closed
            with sock, sock.makefile("rb") as stream:
                assert json.loads(stream.readline())["error"].startswith("too many connections")
                assert stream.readline() == b""
        assert threading.active_count() <= before + MAX_CONNECTIONS
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 120  # the held slots come back when their peers leave
    while time.monotonic() < deadline:
        try:
            assert send(server.path, "status")["ok"] is True
            break
        except Exception:
            time.sleep(0.05)
    else:
        pytest.fail("the server did not serve again after the held connections closed")


# ---- ffterm runs ---------------------------------------------------------------------------------
def _held_lock(tmp_path, **record):
    d = tmp_path / "r"
    d.mkdir(exist_ok=True)
    lock = RunLock(d).acquire()
    lock.update(**record)
    return lock


def test_runs_survives_a_directory_entry_and_wrong_typed_records(tmp_path, capsys):
    lock = _held_lock(tmp_path, started="yesterday", command=["not", "a", "string"])
    other = tmp_path / "q"
    other.mkdir()
    lock2 = RunLock(other).acquire()  # a normal one, to sort against
    (registry_dir() / "0000000000000000.json").mkdir()  # an entry that is a folder
    (registry_dir() / "1111111111111111.json").write_text('{"run_dir": 5}')
    try:
        assert main(["runs"]) == 0
    finally:
        lock.release()
        lock2.release()
    out, err = capsys.readouterr()
    assert err == "" and "Traceback" not in out
    lines = out.splitlines()
    assert len(lines) == 2 and any("? min" in line for line in lines), out
    assert all(str(os.getpid()) in line for line in lines)


def test_runs_strips_terminal_escapes_from_the_lock_record(tmp_path, capsys):
    lock = _held_lock(tmp_path, command="ffterm \x1b]0;pwned\x07run \x1b[31mred\x1b[0m\r")
    try:
        assert main(["runs"]) == 0
    finally:
        lock.release()
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert "ffterm run red" in out
