"""Run directories owned and verified; snapshot lines untrusted; detached runs under control."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ffterm.cli import main
from ffterm_core.config import RunConfig, dump_yaml
from ffterm_core.store import rundir
from ffterm_core.store.checkpoint import CheckpointError, load_checkpoint
from ffterm_core.store.history import RunHistory
from ffterm_core.store.lock import RunDirBusy, RunLock, live_runs, read_holder
from ffterm_core.store.snapshot import Snapshot
from ffterm_core.store.validation import BadSnapshot, SnapshotSchema
from ffterm_core.training.session import Session


@pytest.fixture(autouse=True)
def _own_runtime_dir(tmp_path, monkeypatch):
    """The registry of live runs in a folder of this test's own."""
    monkeypatch.setenv("FFTERM_RUNTIME_DIR", str(tmp_path / "runtime"))


def tiny(**kw) -> RunConfig:
    base = dict(
        name="t",
        dataset="synthetic",
        layers=2,
        hidden=16,
        epochs=2,
        batch_size=256,
        analysis_samples=100,
        device="cpu",
        final_pvalues=False,
    )
    return RunConfig(**{**base, **kw})


def run_to_end(session: Session) -> Session:
    session.start()
    session.join(60)
    assert not session.alive
    return session


def stopped_after_first_epoch(path: Path, **kw) -> Session:
    # a checkpoint every epoch drains the snapshot worker: the stop asked at epoch 1's snapshot lands before epoch 2
    s = Session(tiny(**{"checkpoint_minutes": 0, **kw}), path)
    s.subscribe(lambda snap: snap.kind == "live" and s.stop())
    return run_to_end(s)


# ---- the lock ----------------------------------------------------------------------------------
def test_a_second_session_on_a_run_directory_is_refused_naming_the_holder(tmp_path):
    first = Session(tiny(), tmp_path / "r")
    with pytest.raises(RunDirBusy, match=rf"in use by pid {os.getpid()} \(.*\)"):
        Session(tiny(), tmp_path / "r", force=True)
    with pytest.raises(RunDirBusy, match=f"pid {os.getpid()}"):
        Session.resume_from(tmp_path / "r")
    assert read_holder(tmp_path / "r")["pid"] == os.getpid()
    assert [r["run_dir"] for r in live_runs()] == [str((tmp_path / "r").resolve())]
    run_to_end(first)
    assert read_holder(tmp_path / "r") is None and live_runs() == []  # released at the end
    run_to_end(Session(tiny(), tmp_path / "r", force=True))  # and free for the next run


def test_a_killed_owner_releases_the_lock(tmp_path):
    (tmp_path / "r").mkdir()
    code = (
        "import sys, time; from ffterm_core.store.lock import RunLock; "
        "RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "r")], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(RunDirBusy, match=f"pid {proc.pid}"):
            RunLock(tmp_path / "r").acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert read_holder(tmp_path / "r") is None  # the kernel dropped it with the process
    assert live_runs() == []  # and the registry entry of a dead owner is cleaned
    RunLock(tmp_path / "r").acquire().release()


def test_cli_run_on_a_busy_directory_is_one_line(tmp_path, capsys):
    lock = RunLock(tmp_path / "r")
    (tmp_path / "r").mkdir()
    lock.acquire()
    try:
        for args in (
            ["run", "quick-ff-synthetic", "--headless", "--out", str(tmp_path / "r")],
            ["resume", str(tmp_path / "r")],
        ):
            (tmp_path / "r" / rundir.CONFIG).write_text("dataset: synthetic\n")
            assert main(args) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and f"in use by pid {os.getpid()}" in err
    finally:
        lock.release()


# ---- the run directory ---------------------------------------------------------------------------
def test_preset_names_become_one_safe_path_component(tmp_path):
    for name in ("../../x", "/abs/path", "evil\x1b[2J\x07name", "..", ""):
        path = rundir.new_run_dir(name, tmp_path / "runs")
        assert path.parent == tmp_path / "runs"
        assert "/" not in path.name and ".." not in path.name and path.name.isprintable()
    assert rundir.new_run_dir("../../x", tmp_path).name.startswith("x-")
    assert rundir.safe_name("ff-mnist_l1.v2") == "ff-mnist_l1.v2"


def test_force_clears_what_the_previous_run_left(tmp_path):
    d = tmp_path / "r"
    run_to_end(Session(tiny(), d))
    for name in ("analysis.json", "error.log", "probes.json"):
        (d / name).write_text("{}")
    (d / "reports").mkdir()
    (d / "reports" / "report.md").write_text("old")
    (d / "my-notes.txt").write_text("mine")
    with pytest.raises(rundir.RunDirError, match=r"not an ffterm run.*my-notes\.txt"):
        Session(tiny(), d)
    s = Session(tiny(epochs=1), d, force=True)
    names = sorted(p.name for p in d.iterdir())
    assert names == [".lock", rundir.CONFIG, "my-notes.txt"]  # the user's file stays, the old outputs go
    run_to_end(s)


def test_leftover_temp_files_are_removed_on_the_next_open(tmp_path):
    s = stopped_after_first_epoch(tmp_path / "r")
    assert s.state == "stopped"
    leftovers = [tmp_path / "r" / ".checkpoint.pt.k3j2.tmp", tmp_path / "r" / ".final.json.x9.tmp"]
    for p in leftovers:
        p.write_bytes(b"half a write")
    resumed = Session.resume_from(tmp_path / "r")
    assert not any(p.exists() for p in leftovers)
    run_to_end(resumed)
    assert resumed.state == "finished"


def test_atomic_writes_use_a_tmp_suffix_that_cleaning_recognises(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: seen.append(Path(a).name) or real_replace(a, b))
    rundir.write_json(tmp_path / "x.json", {"a": 1})
    assert len(seen) == 1 and seen[0].startswith(".x.json.") and seen[0].endswith(".tmp")


# ---- checkpoints ---------------------------------------------------------------------------------
def test_a_flipped_bit_is_refused_and_the_previous_checkpoint_offered(tmp_path, capsys):
    d = tmp_path / "r"
    s = Session(tiny(epochs=3, layers=1, checkpoint_minutes=0), d)  # a checkpoint every epoch
    s.subscribe(lambda snap: snap.kind == "live" and snap.epoch == 2 and s.stop())
    run_to_end(s)
    assert load_checkpoint(d / rundir.CHECKPOINT)["trainer"]["position"] == [0, 2, 0]
    assert load_checkpoint(d / rundir.PREVIOUS_CHECKPOINT)["trainer"]["position"] == [0, 1, 0]
    data = bytearray((d / rundir.CHECKPOINT).read_bytes())
    data[len(data) // 2] ^= 0x01
    (d / rundir.CHECKPOINT).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"checksum mismatch.*checkpoint\.prev\.pt.*is intact.*--previous"):
        load_checkpoint(d / rundir.CHECKPOINT)
    assert main(["resume", str(d)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "checksum mismatch" in err and f"ffterm resume {d} --previous" in err
    assert main(["resume", str(d), "--previous"]) == 0  # from epoch 1: the damaged one is replaced
    final = json.loads((d / rundir.FINAL).read_text())
    assert final["epochs_done"] == 3
    epochs = [sn.epoch for sn in rundir.read_snapshots(d) if sn.kind == "live"]
    assert epochs == [1, 2, 3]  # snapshots past the previous checkpoint were dropped, then redone


def test_a_checkpoint_without_a_checksum_from_an_earlier_version_still_resumes(tmp_path):
    d = tmp_path / "r"
    stopped_after_first_epoch(d, epochs=2, layers=1)
    raw = (d / rundir.CHECKPOINT).read_bytes()
    legacy = raw[raw.index(b"\n") + 1 :]  # torch.save's bytes without the digest line
    assert legacy.startswith(b"PK")
    (d / rundir.CHECKPOINT).write_bytes(legacy)
    assert load_checkpoint(d / rundir.CHECKPOINT)["trainer"]["position"] == [0, 1, 0]
    assert main(["resume", str(d)]) == 0
    assert json.loads((d / rundir.FINAL).read_text())["epochs_done"] == 2
    assert (d / rundir.CHECKPOINT).read_bytes().startswith(b"ffterm-checkpoint sha256 ")  # saved anew, verified


def test_a_damaged_checkpoint_without_a_previous_one(tmp_path):
    d = tmp_path / "r"
    stopped_after_first_epoch(d, epochs=2, layers=1)
    assert not (d / rundir.PREVIOUS_CHECKPOINT).exists()
    raw = (d / rundir.CHECKPOINT).read_bytes()
    (d / rundir.CHECKPOINT).write_bytes(raw[:-1] + bytes([raw[-1] ^ 0x80]))
    with pytest.raises(CheckpointError, match="checksum mismatch, the file is damaged; delete it"):
        Session.resume_from(d)
    assert read_holder(d) is None  # the refused resume did not keep the lock


def test_a_run_written_before_lifetime_sparsity_resumes_and_reports(tmp_path):
    d = tmp_path / "r"
    stopped_after_first_epoch(d, epochs=2, eval_every=1)
    lines = [json.loads(line) for line in (d / rundir.SNAPSHOTS).read_text().splitlines()]
    assert any(layer.get("lifetime_sparsity") for snap in lines for layer in snap.get("layers") or [])
    for snap in lines:  # as an earlier ffterm wrote them
        for layer in snap.get("layers") or []:
            layer.pop("lifetime_sparsity", None)
    (d / rundir.SNAPSHOTS).write_text("".join(json.dumps(snap) + "\n" for snap in lines))
    assert main(["resume", str(d)]) == 0
    assert main(["report", str(d), "--out", str(tmp_path / "out")]) == 0
    history = RunHistory.from_snapshots(rundir.read_snapshots(d))
    life = history.per_layer["lifetime_sparsity_mean"][0]
    assert life[0] is None and all(v is not None and 0 <= v <= 1 for v in life[1:])  # old point, then new ones
    md = (tmp_path / "out" / "report.md").read_text()
    assert "lifetime sparsity mean ± std" in md


# ---- snapshot lines are untrusted ------------------------------------------------------------------
def _line(**changes) -> str:
    snap = Snapshot("r", "ff", "synthetic", "cpu", 2, epoch=1, total_epochs=4, loss=[0.5, 0.4])
    data = json.loads(snap.to_json())
    data.update(changes)
    return json.dumps(data)


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"num_layers": 1_000_000_000}, "num_layers: 1000000000 is out of range for this run (0..2)"),
        ({"epoch": "x"}, "epoch: expected a whole number, got 'x'"),
        ({"epoch": 10**9}, "epoch: 1000000000 is out of range"),
        ({"loss": [1.0] * 50}, "loss: expected a list of at most 2 numbers"),
        ({"test_accuracy": 7}, "test_accuracy: expected a number 0..1"),
        ({"state": "exploding"}, "state: 'exploding' is not one of"),
        ({"run_name": "a\x1b]0;pwned\x07"}, "run_name: control characters are not allowed"),
        (
            {"layers": [{"ensembles": [[0], [1, 10**9]]}]},
            "layers[0].ensembles[1]: unit indices must be whole numbers in 0..15",
        ),
        ({"layers": [{"ensembles": [[0]] * 11}]}, "layers[0].ensembles: expected a list of at most 10 classes"),
        ({"stage": 5}, "stage: 5 is out of range"),
        ({"heldout": {"class": 12}}, "heldout.class: expected a class number in 0..9"),
    ],
)
def test_crafted_snapshot_lines_are_refused_with_the_reason(changes, reason):
    schema = SnapshotSchema.for_config(tiny(epochs=2))  # 2 layers of 16 units, 4 layer-epochs
    assert schema.parse(_line()).epoch == 1  # the untouched line is fine
    with pytest.raises(BadSnapshot) as err:
        schema.parse(_line(**changes))
    assert reason in str(err.value)


def test_optional_run_files_are_read_through_one_door_and_a_damaged_one_is_one_line(tmp_path):
    d = tmp_path / "r"
    d.mkdir()
    (d / rundir.CONFIG).write_text(dump_yaml(tiny()))
    said: list[str] = []
    assert rundir.read_analysis(d, said.append) is None and rundir.read_prune(d, said.append) is None and not said
    patterns = [{"size": 12, "ensemble": [1], "jaccard_with_class": 0.5}]
    good = {"layers": [{"sparsity": 0.7, "microstructure": [{"class": 3, "patterns": patterns, "dominant": 0}]}]}
    rundir.write_analysis(d, good)
    assert (d / rundir.ANALYSIS).read_text() == json.dumps(good, indent=2) + "\n"  # the format it always had
    assert rundir.read_analysis(d, said.append) == good and not said
    good["layers"][0]["microstructure"][0]["patterns"][0]["size"] = "x"
    rundir.write_analysis(d, good)
    assert rundir.read_analysis(d, said.append) is None
    assert said[-1].startswith(f"{d / rundir.ANALYSIS}: layers[0].microstructure[0].patterns: expected objects")
    rundir.write_json(d / rundir.PRUNE, {"baseline": 0.9, "strategies": {"random": [{"keep": 2}]}, "smallest_keep": {}})
    assert rundir.read_prune(d, said.append) is None
    assert said[-1].startswith(f"{d / rundir.PRUNE}: strategies.random: expected entries with keep")
    (d / rundir.FAILED).write_text("[1]")
    assert rundir.read_failure(d) == "failed (unreadable failed.json)"
    rundir.write_failure(d, "DatasetError: no data", "2026-01-01T00:00:00")
    assert rundir.read_failure(d) == "DatasetError: no data"


def test_a_final_json_with_a_wrong_typed_layer_figure_is_one_line(tmp_path):
    d = tmp_path / "r"
    run_to_end(Session(tiny(epochs=1), d))
    final = json.loads((d / rundir.FINAL).read_text())
    assert rundir.read_final(d) == final
    final["layers"][0]["sparsity"] = "x"
    rundir.write_json(d / rundir.FINAL, final)
    with pytest.raises(rundir.RunDirError, match=r"final.json: layers\[0\].sparsity: expected a number in 0..1"):
        rundir.read_final(d)
    assert rundir.read_final_if_any(d) is None


def test_a_real_runs_lines_all_pass_its_schema(tmp_path):
    run_to_end(Session(tiny(heldout_class=3, eval_every=1), tmp_path / "r"))
    bad = []
    snaps = rundir.read_snapshots(tmp_path / "r", bad.append)
    assert bad == [] and len(snaps) == 5 and snaps[-1].kind == "final" and snaps[-1].heldout["class"] == 3


def _fake_run(path: Path, lines: list[str]) -> Path:
    path.mkdir()
    (path / rundir.CONFIG).write_text(dump_yaml(tiny(epochs=2)))
    (path / rundir.SNAPSHOTS).write_text("".join(line + "\n" for line in lines))
    return path


def test_following_skips_a_bad_line_with_a_notice_and_goes_on(tmp_path):
    d = _fake_run(tmp_path / "r", [_line(epoch=1), _line(num_layers=1_000_000_000), _line(epoch="x")])
    notices: list[str] = []
    stop = threading.Event()
    got: list[Snapshot] = []

    def follow():
        for snap in rundir.follow_snapshots(d, stop, poll_s=0.05, on_bad=notices.append):
            got.append(snap)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while len(notices) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    with open(d / rundir.SNAPSHOTS, "a") as fh:  # the run goes on writing
        fh.write(_line(epoch=2) + "\n")
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(120)
    assert [s.epoch for s in got] == [1, 2]
    assert notices[0].startswith(f"{d / rundir.SNAPSHOTS}:2: skipped a bad snapshot line (num_layers")
    assert notices[1].startswith(f"{d / rundir.SNAPSHOTS}:3: skipped a bad snapshot line (epoch")
    history = RunHistory.from_snapshots(got)
    assert history.num_layers == 2 and history.epochs == [1, 2]


def test_resume_says_which_lines_it_dropped_and_why(tmp_path, capsys):
    d = tmp_path / "r"
    stopped_after_first_epoch(d, epochs=2)
    lines = (d / rundir.SNAPSHOTS).read_text().splitlines()
    lines.insert(1, '{"torn": ')
    lines.insert(2, _line(epoch="x"))
    (d / rundir.SNAPSHOTS).write_text("\n".join(lines) + "\n" + lines[0][:20])  # and a torn last line
    assert main(["resume", str(d)]) == 0
    out = capsys.readouterr().err
    path = d / rundir.SNAPSHOTS
    assert f"{path}:2: skipped a bad snapshot line (not valid JSON" in out
    assert f"{path}:3: skipped a bad snapshot line (epoch: expected a whole number" in out
    assert f"{path}:{len(lines) + 1}: skipped a bad snapshot line (not valid JSON" in out
    assert [s.epoch for s in rundir.read_snapshots(d) if s.kind == "live"] == [1, 2, 3, 4]


# ---- detached runs ---------------------------------------------------------------------------------
def test_a_detached_run_is_listed_and_controlled_through_its_socket(tmp_path, capsys):
    from ffterm_core.running.detached import start_detached

    d = tmp_path / "r"
    remote = start_detached(tiny(epochs=400, layers=1, train_limit=500, batch_size=50), d)
    try:
        assert remote.pid != os.getpid() and os.getsid(remote.pid) == remote.pid  # its own session
        sock = Path(read_holder(d)["control"])
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        assert main(["runs"]) == 0
        out = capsys.readouterr().out
        assert str(d.resolve()) in out and str(remote.pid) in out and "attach" in out
        snaps: list[Snapshot] = []
        remote.subscribe(snaps.append)
        remote.start()
        deadline = time.monotonic() + 60
        while remote.state != "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        remote.pause()
        while remote.state != "paused" and time.monotonic() < deadline:
            time.sleep(0.1)
        paused_at = len(snaps)
        time.sleep(1.0)
        assert remote.state == "paused" and len(snaps) <= paused_at + 1  # no epochs while paused
        remote.resume()
        while remote.state != "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        remote.stop()
        remote.join(60)
    finally:
        if remote.alive:
            os.kill(remote.pid, signal.SIGKILL)
    assert remote.state == "stopped" and not remote.alive
    stage, epoch, _ = load_checkpoint(d / rundir.CHECKPOINT)["trainer"]["position"]
    assert stage == 0 and epoch == len([s for s in rundir.read_snapshots(d) if s.kind == "live"])
    assert read_holder(d) is None and live_runs() == []
    assert "stopped: checkpoint saved" in (d / rundir.TRAIN_LOG).read_text()
    assert not sock.exists()


def test_detaching_into_a_busy_directory_is_one_line(tmp_path, capsys):
    (tmp_path / "r").mkdir()
    lock = RunLock(tmp_path / "r").acquire()
    try:
        code = main(["run", "quick-ff-synthetic", "--detach", "--out", str(tmp_path / "r"), "--device", "cpu"])
    finally:
        lock.release()
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"in use by pid {os.getpid()}" in err


def test_the_control_protocol_and_a_socket_for_a_long_run_path(tmp_path):
    import socket as sockets

    from ffterm_core.running.control import ControlError, ControlServer, send, socket_path

    class Recorder:  # what the server drives: a session's command methods
        state, error, run_dir = "running", None, tmp_path
        calls: list[str] = []

        def __getattr__(self, name):
            return lambda: self.calls.append(name)

    long_dir = tmp_path / ("d" * 120)
    path = socket_path(long_dir)
    assert path.parent == tmp_path / "runtime" and path.suffix == ".sock"  # a Unix socket address is short
    assert socket_path(tmp_path / "r") == (tmp_path / "r").resolve() / "control.sock"
    server = ControlServer(Recorder(), path)
    server.start()
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        for cmd in ("pause", "resume", "checkpoint", "snapshot", "stop"):
            assert send(path, cmd) == {
                "ok": True,
                "state": "running",
                "error": None,
                "pid": os.getpid(),
                "run_dir": str(tmp_path),
            }
        assert Recorder.calls == ["pause", "resume", "request_checkpoint", "request_snapshot", "stop"]
        with pytest.raises(ControlError, match="refused: unknown command 'rm -rf'"):
            send(path, "rm -rf")
        with sockets.socket(sockets.AF_UNIX) as raw:
            raw.connect(str(path))
            raw.sendall(b"not json\n")
            assert json.loads(raw.makefile().readline())["ok"] is False
    finally:
        server.close()
    assert not path.exists()
    with pytest.raises(ControlError, match="does not answer"):
        send(path, "status")


def test_run_and_resume_detached_from_the_command_line(tmp_path, capsys):
    d = tmp_path / "r"
    args = ["--out", str(d), "--device", "cpu", "--set", "dataset=synthetic", "--set", "layers=1", "--set", "hidden=16"]
    args += ["--set", "epochs=100000", "--set", "train_limit=500", "--set", "batch_size=100", "--set", "threads=1"]
    assert main(["run", "quick-ff-synthetic", "--detach", *args]) == 0
    out = capsys.readouterr().out
    pid = read_holder(d)["pid"]
    assert f"training in the background (pid {pid})" in out and f"ffterm attach {d}" in out
    try:
        assert main(["resume", str(d)]) == 2  # it is training: nobody else may
        assert f"in use by pid {pid} (ffterm run quick-ff-synthetic (detached))" in capsys.readouterr().err
        from ffterm.commands import attach_instead_of_watch

        assert attach_instead_of_watch({"watch": [d]}) == {"watch": None, "attach": d}  # `watch` takes control
        assert attach_instead_of_watch({"watch": [d, tmp_path]}) == {}  # comparing runs only follows them
        from ffterm_core.running.remote import RemoteSession

        remote = RemoteSession(d)
        deadline = time.monotonic() + 120
        while _live_epochs(d) < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        remote.stop()
        remote.join(60)
        assert remote.state == "stopped"
        assert main(["resume", str(d), "--detach"]) == 0  # goes on in the background again
        resumed = RemoteSession(d)
        assert resumed.pid != pid and resumed.alive
        resumed.stop()
        resumed.join(60)
        assert resumed.state == "stopped"
    finally:
        holder = read_holder(d)
        if holder is not None:
            os.kill(holder["pid"], signal.SIGKILL)


def _live_epochs(run: Path) -> int:
    return sum(1 for s in rundir.read_snapshots(run) if s.kind == "live")
