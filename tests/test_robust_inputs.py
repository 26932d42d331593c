"""Every bad input is one clear line on stderr (exit status 2), never a traceback.

Permission cases run as the unprivileged user `nobody` when the tests run as root (root reads and
writes through any mode bits), through `setpriv`; elsewhere they run as the current user.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from ffterm.cli import main
from ffterm_core.config import dump_yaml
from ffterm_core.store import rundir
from ffterm_core.store.presets import load_preset

FAST = ["--set", "dataset=synthetic", "--set", "epochs=1", "--set", "final_pvalues=false", "--device", "cpu"]
NOBODY = 65534
SETPRIV = shutil.which("setpriv")


@pytest.fixture
def world():
    """A folder every user can enter (tmp_path is private to root when the tests run as root)."""
    path = Path(tempfile.mkdtemp(prefix="ffterm-inputs-"))
    path.chmod(0o755)
    yield path
    for p in path.rglob("*"):  # give write permission back so everything can be removed
        if not p.is_symlink():
            p.chmod(0o755)
    shutil.rmtree(path, ignore_errors=True)


def _run_dir(path: Path, **overrides) -> Path:
    cfg = load_preset("quick-ff-synthetic", {"dataset": "synthetic", **overrides})
    path.mkdir(parents=True)
    (path / rundir.CONFIG).write_text(dump_yaml(cfg))
    return path


def _finished(path: Path, final) -> Path:
    _run_dir(path)
    (path / rundir.FINAL).write_bytes(final if isinstance(final, bytes) else json.dumps(final).encode())
    return path


def _busy_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


# each case: (id, set-up returning the arguments, words the one line must hold, needs a user without root)
Case = tuple[str, Callable[[Path], list[str]], list[str], bool]


def _not_utf8_preset(w: Path) -> list[str]:
    (w / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    return ["run", str(w / "latin1.yaml"), "--headless"]


def _unreadable_preset(w: Path) -> list[str]:
    (w / "secret.yaml").write_text("epochs: 1\n")
    (w / "secret.yaml").chmod(0o000)
    return ["run", str(w / "secret.yaml"), "--headless"]


def _not_utf8_config(w: Path) -> list[str]:
    _run_dir(w / "r")
    (w / "r" / rundir.CONFIG).write_bytes(b"model: \xff\xfe\n")
    (w / "r" / rundir.CHECKPOINT).write_bytes(b"x")
    return ["resume", str(w / "r")]


def _unreadable_config(w: Path) -> list[str]:
    _run_dir(w / "r")
    (w / "r" / rundir.CONFIG).chmod(0o000)
    return ["analyze", str(w / "r")]


def _config_is_a_dir(w: Path) -> list[str]:
    (w / "r" / rundir.CONFIG).mkdir(parents=True)
    (w / "r" / rundir.CHECKPOINT).write_bytes(b"x")
    return ["resume", str(w / "r")]


def _out_is_a_file(w: Path) -> list[str]:
    (w / "file").write_text("mine")
    return ["run", "quick-ff-synthetic", "--headless", "--out", str(w / "file"), *FAST]


def _out_under_a_file(w: Path) -> list[str]:
    (w / "file").write_text("mine")
    return ["run", "quick-ff-synthetic", "--headless", "--out", str(w / "file" / "run"), *FAST]


def _out_read_only(w: Path) -> list[str]:
    (w / "ro").mkdir(mode=0o555)
    (w / "ro").chmod(0o555)
    return ["run", "quick-ff-synthetic", "--headless", "--out", str(w / "ro" / "run"), *FAST]


def _out_dev_null(w: Path) -> list[str]:
    return ["run", "quick-ff-synthetic", "--headless", "--out", os.devnull, *FAST]


def _out_foreign_folder(w: Path) -> list[str]:
    (w / "mine").mkdir()
    (w / "mine" / "notes.txt").write_text("keep me")
    return ["run", "quick-ff-synthetic", "--headless", "--out", str(w / "mine"), *FAST]


def _out_foreign_config(w: Path) -> list[str]:
    (w / "other").mkdir()
    (w / "other" / rundir.CONFIG).write_text("server: {port: 80}\n")
    return ["run", "quick-ff-synthetic", "--headless", "--out", str(w / "other"), *FAST]


def _read_only_cwd(w: Path) -> list[str]:
    w.chmod(0o555)  # the default runs/ folder goes into the working directory
    return ["run", "quick-ff-synthetic", "--headless", *FAST]


def _summary_garbage(w: Path) -> list[str]:
    return ["summary", str(_finished(w / "r", b"\x00garbage{"))]


def _summary_not_utf8(w: Path) -> list[str]:
    return ["summary", str(_finished(w / "r", b'{"config": "\xff"}'))]


def _summary_keyless(w: Path) -> list[str]:
    return ["summary", str(_finished(w / "r", {"test_accuracy": 0.5}))]


def _summary_wrong_types(w: Path) -> list[str]:
    final = {"config": {}, "test_accuracy": "high", "layer_accuracy": [], "layers": [], "wall_seconds": 1}
    return ["summary", str(_finished(w / "r", final))]


def _preset_is_a_dir(w: Path) -> list[str]:
    return ["run", str(w), "--headless"]


def _escape_in_name(w: Path) -> list[str]:
    (w / "evil.yaml").write_text('name: "x\\e]0;owned\\a"\n')
    return ["run", str(w / "evil.yaml"), "--headless"]


def _closed(path: Path) -> Path:
    path.mkdir(exist_ok=True)
    path.chmod(0o000)
    return path


_TRAINED: dict[str, Path] = {}


def _trained_read_only(w: Path) -> Path:
    """A finished run (trained once per test session), copied, its folder and files read-only."""
    if "run" not in _TRAINED:
        template = Path(tempfile.mkdtemp(prefix="ffterm-trained-")) / "r"
        assert main(["run", "quick-ff-synthetic", "--headless", "--out", str(template), *FAST]) == 0
        _TRAINED["run"] = template
    run = Path(shutil.copytree(_TRAINED["run"], w / "r"))
    for p in [*run.rglob("*"), run]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    return run


def _final_sparsity_not_a_number(w: Path) -> list[str]:
    layer = {"sparsity": "x", "ensemble_size_pct": None, "rho_plus": None, "bias": None}
    final = {"config": {"model": "ff", "dataset": "synthetic", "seed": 0}, "test_accuracy": 0.5}
    final |= {"layer_accuracy": [0.5], "layers": [layer], "wall_seconds": 1.0, "epochs_done": 1, "device": "cpu"}
    return ["summary", str(_finished(w / "r", final))]


CASES: list[Case] = [
    ("preset name with control characters", _escape_in_name, ["name", "control characters"], False),
    ("preset not UTF-8", _not_utf8_preset, ["latin1.yaml", "not UTF-8"], False),
    ("preset unreadable", _unreadable_preset, ["secret.yaml", "permission denied"], True),
    ("preset is a directory", _preset_is_a_dir, ["is a directory", "preset name"], False),
    ("config.yaml not UTF-8", _not_utf8_config, ["config.yaml", "not UTF-8"], False),
    ("config.yaml unreadable", _unreadable_config, ["config.yaml", "permission denied"], True),
    ("config.yaml a directory", _config_is_a_dir, ["config.yaml", "is a directory"], False),
    ("--out a file", _out_is_a_file, ["file", "not a folder"], False),
    ("--out under a file", _out_under_a_file, ["is under", "not a folder"], False),
    ("--out read-only", _out_read_only, ["cannot create the run directory", "Permission denied"], True),
    ("--out /dev/null", _out_dev_null, [os.devnull, "not a folder"], False),
    ("--out a folder of other files", _out_foreign_folder, ["not an ffterm run", "notes.txt", "--force"], False),
    ("--out a foreign config.yaml", _out_foreign_config, ["not an ffterm run", "config.yaml", "--force"], False),
    ("default runs/ in a read-only cwd", _read_only_cwd, ["runs", "Permission denied", "--out"], True),
    ("summary: garbage final.json", _summary_garbage, ["final.json", "not valid JSON"], False),
    ("summary: final.json not UTF-8", _summary_not_utf8, ["final.json", "not UTF-8"], False),
    ("summary: final.json without keys", _summary_keyless, ["final.json", "missing key 'config'"], False),
    ("summary: final.json wrong types", _summary_wrong_types, ["final.json", "test_accuracy"], False),
    ("compare --samples 0", lambda w: ["compare", "a", "b", "--samples", "0"], ["--samples", "at least 1"], False),
    ("analyze --samples -5", lambda w: ["analyze", "a", "--samples", "-5"], ["--samples", "at least 1"], False),
    (
        "attach a run not training",
        lambda w: ["attach", str(_run_dir(w / "r"))],
        ["not training", "ffterm watch"],
        False,
    ),
    ("serve --port 70000", lambda w: ["serve", "--port", "70000"], ["--port", "1..65535"], False),
    (
        "serve --no-token on all interfaces",
        lambda w: ["serve", "--no-token", "--host", "0.0.0.0"],
        ["127.0.0.1"],
        False,
    ),
    ("serve --max-visitors 0", lambda w: ["serve", "--max-visitors", "0"], ["--max-visitors", "at least 1"], False),
    ("watch a closed run", lambda w: ["watch", str(_closed(_run_dir(w / "r")))], ["r", "ermission denied"], True),
    (
        "summary of a closed run",
        lambda w: ["summary", str(_closed(_run_dir(w / "r")))],
        ["r", "ermission denied"],
        True,
    ),
    ("report of a closed run", lambda w: ["report", str(_closed(_run_dir(w / "r")))], ["r", "ermission denied"], True),
    (
        "--out under a closed folder",
        lambda w: ["run", "quick-ff-synthetic", "--headless", "--out", str(_closed(w / "c") / "run"), *FAST],
        ["c", "ermission denied"],
        True,
    ),
    ("analyze a read-only run", lambda w: ["analyze", str(_trained_read_only(w))], ["r", "ermission denied"], True),
    ("probe a read-only run", lambda w: ["probe", str(_trained_read_only(w))], ["r", "ermission denied"], True),
    ("prune a read-only run", lambda w: ["prune", str(_trained_read_only(w))], ["r", "ermission denied"], True),
    ("prune --seed -1", lambda w: ["prune", "r", "--seed", "-1"], ["--seed", "at least 0"], False),
    ("summary: sparsity not a number", _final_sparsity_not_a_number, ["layers[0].sparsity", "'x'"], False),
]


def _as_nobody(args: list[str], cwd: Path) -> tuple[int, str]:
    env = {**os.environ, "HOME": str(cwd), "FFTERM_RUNTIME_DIR": str(cwd / ".runtime")}
    cmd = [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] if os.geteuid() == 0 else []
    proc = subprocess.run(
        [*cmd, sys.executable, "-m", "ffterm.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    return proc.returncode, proc.stderr


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(case, world, capsys, monkeypatch):
    _, setup, words, needs_user = case
    if needs_user and os.geteuid() == 0 and SETPRIV is None:
        pytest.skip("running as root without setpriv: no unprivileged user to check permissions with")
    args = setup(world)
    if needs_user:
        code, err = _as_nobody(args, world)
    else:
        monkeypatch.chdir(world)
        code = main(args)
        err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("ffterm: error:") and err.count("\n") == 1, err
    for word in words:
        assert word in err, err
    assert "Traceback" not in err


def test_refused_out_folders_keep_their_files(world, capsys):
    _out_foreign_folder(world)
    main(["run", "quick-ff-synthetic", "--headless", "--out", str(world / "mine"), *FAST])
    assert sorted(p.name for p in (world / "mine").iterdir()) == ["notes.txt"]  # nothing written, nothing removed


def test_serve_on_a_busy_port(capsys):
    pytest.importorskip("textual_serve")
    sock = _busy_port()
    try:
        port = sock.getsockname()[1]
        code = main(["serve", "--host", "127.0.0.1", "--port", str(port)])
    finally:
        sock.close()
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"port {port}" in err and "in use" in err


def test_overflowing_threshold_names_the_setting(tmp_path, capsys):
    code = main(
        ["run", "quick-ff-synthetic", "--headless", "--out", str(tmp_path / "r"), *FAST, "--set", "threshold=1e308"]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "threshold=1e+308 overflows float32" in err and "nothing was saved" in err
    assert "smaller lr" not in err  # the learning rate is not blamed
    assert not (tmp_path / "r").exists()  # and no deleted directory is pointed at


def test_a_preset_name_cannot_place_the_run_outside_runs(world, capsys, monkeypatch):
    monkeypatch.chdir(world)
    (world / "up.yaml").write_text("name: ../../escaped\ndataset: synthetic\nepochs: 1\nfinal_pvalues: false\n")
    assert main(["run", str(world / "up.yaml"), "--headless", "--device", "cpu"]) == 0
    (made,) = (world / "runs").iterdir()
    assert made.name.startswith("escaped-") and rundir.is_finished(made)
    assert sorted(p.name for p in world.iterdir()) == ["runs", "up.yaml"]
