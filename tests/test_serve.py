"""`ffterm serve`: the app offered in a browser through textual-serve, safe to expose."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from ffterm_core.store import rundir
from ffterm_core.store.snapshot import Snapshot

pytest.importorskip("textual_serve")
aiohttp = pytest.importorskip("aiohttp")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(tmp_path: Path) -> Path:
    run = tmp_path / "myrun"
    run.mkdir()
    rundir.atomic_write_text(run / rundir.CONFIG, "model: ff\ndataset: synthetic\n")
    rundir.append_snapshot(run, Snapshot("myrun", "ff", "synthetic", "cpu", 3))
    return run


@contextmanager
def serving(*args: str, cwd: Path):
    """`ffterm serve ARGS` on a free port; yields (base URL, the announced URL, output so far)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ffterm.cli", "serve", *args, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
    )
    try:
        announced = ""
        for line in proc.stdout:
            if "ffterm serving on" in line:
                announced = line.split("serving on ", 1)[1].split()[0]
                break
        assert announced, "the server announced no URL"
        deadline = time.monotonic() + 120  # the URL is announced just before the port is bound
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "the server never listened on its port"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", announced
    finally:
        proc.terminate()
        proc.communicate(timeout=120)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=120) as resp:
            return resp.status, resp.read().decode("utf-8", "replace"), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), dict(err.headers)


async def ws_status(
    url: str,
    origin: str | None = None,
    hold: asyncio.Event | None = None,
    drawn: asyncio.Event | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """Open the app's websocket; (HTTP status of the handshake, the first bytes the app sent).

    Waits (up to 120 s) for the app's first screen, sets `drawn`, then keeps the connection until `hold` is set."""
    headers = {**({"Origin": origin} if origin else {}), **(headers or {})}
    async with aiohttp.ClientSession() as http:
        try:
            async with http.ws_connect(url, headers=headers) as ws:
                await ws.send_json(["resize", {"width": 80, "height": 24}])
                data = await _screen(ws, lambda data: len(data) >= 200)
                if drawn is not None:
                    drawn.set()
                if hold is not None:
                    await asyncio.wait_for(hold.wait(), 120)
                return 101, data
        except aiohttp.WSServerHandshakeError as err:
            return err.status, b""


async def _screen(ws, done, data: bytes = b"") -> bytes:
    """What the app draws, until `done(data)` (or the socket closes; a 120 s ceiling)."""
    deadline = time.monotonic() + 120
    while not done(data) and time.monotonic() < deadline:
        try:
            msg = await ws.receive(timeout=1)
        except asyncio.TimeoutError:
            continue
        if msg.type == aiohttp.WSMsgType.BINARY:
            data += msg.data
        elif msg.type != aiohttp.WSMsgType.TEXT:  # closed
            break
    return data


def test_serve_needs_its_token_and_serves_every_asset_itself(tmp_path):
    run = _run(tmp_path)
    with serving(str(run), cwd=tmp_path) as (base, announced):
        token = re.search(r"\?token=([\w-]+)$", announced).group(1)
        assert len(token) >= 32 and announced.startswith(base)
        assert get(f"{base}/")[0] == 403
        assert get(f"{base}/?token=wrong")[0] == 403
        status, page, headers = get(announced)
        assert status == 200 and "ffterm · myrun" in page and "textual.js" in page
        assert "ffterm_token=" in headers.get("Set-Cookie", "") and "HttpOnly" in headers["Set-Cookie"]
        assert "googleapis" not in page
        assets = re.findall(r'(?:href|src)="([^"]+)"|url\("([^"]+)"\)', page)
        assert len(assets) >= 4 and all((a or b).startswith(base + "/static/") for a, b in assets)  # all from here
        font = re.search(r'url\("([^"]+RobotoMono-VariableFont_wght\.ttf)"\)', page).group(1)
        assert font.startswith(base) and get(font)[0] == 200  # the bundled font, served here
        assert f'data-session-websocket-url="ws://127.0.0.1:{base.rsplit(":", 1)[1]}/ws"' in page


def test_the_websocket_checks_token_and_origin(tmp_path):
    run = _run(tmp_path)
    with serving(str(run), "--max-visitors", "1", cwd=tmp_path) as (base, announced):
        token = announced.rsplit("=", 1)[1]
        ws = base.replace("http", "ws") + "/ws"
        assert asyncio.run(ws_status(ws, origin=base))[0] == 403  # no token
        assert asyncio.run(ws_status(f"{ws}?token={token}", origin="http://evil.example"))[0] == 403
        status, data = asyncio.run(ws_status(f"{ws}?token={token}", origin=base))
        assert status == 101 and len(data) >= 200  # the app drew its screen

        async def two_visitors() -> tuple[int, int]:
            deadline = time.monotonic() + 120
            while True:  # the visitor before counts until its app process has ended
                drawn, leave = asyncio.Event(), asyncio.Event()
                first = asyncio.create_task(ws_status(f"{ws}?token={token}", origin=base, hold=leave, drawn=drawn))
                await asyncio.wait([first, asyncio.create_task(drawn.wait())], return_when=asyncio.FIRST_COMPLETED)
                if drawn.is_set() or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)  # refused (503): the visitor before is still leaving
            second = await ws_status(f"{ws}?token={token}", origin=base)
            leave.set()
            return (await first)[0], second[0]

        assert asyncio.run(two_visitors()) == (101, 503)  # --max-visitors 1


def test_a_rebound_host_name_is_refused_token_or_not(tmp_path):
    """DNS rebinding: a page on evil.example whose name now points at 127.0.0.1 talks to the server."""
    run = _run(tmp_path)
    with serving(str(run), "--no-token", "--allow-runs", cwd=tmp_path) as (base, _):
        port = base.rsplit(":", 1)[1]
        evil = {"Host": f"evil.example:{port}"}
        status, text, _ = get(f"{base}/", headers=evil)
        assert status == 403 and "evil.example" in text
        ws = f"{base.replace('http', 'ws')}/ws"
        assert asyncio.run(ws_status(ws, origin=f"http://evil.example:{port}", headers=evil))[0] == 403
        assert get(f"{base}/", headers={"Host": f"localhost:{port}"})[0] == 200  # this machine's names pass
        assert asyncio.run(ws_status(ws, origin=base))[0] == 101
    assert not (tmp_path / "runs").exists()


def test_allowed_host_names():
    from ffterm.app.serve import allowed_host_names, host_allowed

    local = allowed_host_names("127.0.0.1", "http://127.0.0.1:8000")
    assert host_allowed("127.0.0.1:8000", local) and host_allowed("localhost:8000", local)
    assert host_allowed("[::1]:8000", local) and host_allowed("LOCALHOST", local)
    assert not host_allowed("evil.example:8000", local) and not host_allowed("", local)
    assert not host_allowed("localhost.evil.example", local)
    proxied = allowed_host_names("127.0.0.1", "https://ffterm.lab.example")
    assert host_allowed("ffterm.lab.example", proxied) and not host_allowed("lab.example", proxied)
    everywhere = allowed_host_names("0.0.0.0", f"http://{socket.getfqdn()}:8000")
    assert host_allowed(f"{socket.gethostname()}:8000", everywhere) and host_allowed("10.1.2.3:8000", everywhere)


def test_no_token_needs_the_loopback_address(tmp_path, capsys):
    from ffterm.cli import main

    assert main(["serve", "--no-token", "--host", "0.0.0.0", "--port", str(free_port())]) == 2
    assert "--no-token is allowed only with --host 127.0.0.1" in capsys.readouterr().err


def test_a_visitor_cannot_start_a_run_by_default(tmp_path):
    """What a foreign page did before: type n, enter (the picker's default preset) → a training."""
    with serving(cwd=tmp_path) as (base, announced):
        token = announced.rsplit("=", 1)[1]

        async def press_n_enter() -> None:
            async with aiohttp.ClientSession() as http:
                ws = f"{base.replace('http', 'ws')}/ws?token={token}"
                async with http.ws_connect(ws, headers={"Origin": base}) as sock:
                    await sock.send_json(["resize", {"width": 100, "height": 30}])
                    await _screen(sock, lambda data: len(data) >= 200)  # the app is up
                    for key in ("n", "\r", "\r"):
                        await sock.send_json(["stdin", key])
                        await _screen(sock, lambda data: len(data) > 0)  # the app answered the key

        asyncio.run(press_n_enter())
    assert not (tmp_path / "runs").exists()  # nothing was started (with --allow-runs, these keys start one)


def test_the_visitor_command_is_read_only_unless_runs_are_allowed(tmp_path):
    from ffterm.app.serve import serve_command

    assert serve_command(tmp_path).endswith("--read-only")
    assert "--read-only" not in serve_command(tmp_path, allow_runs=True)
    assert f"--watch {tmp_path.resolve()}" in serve_command(tmp_path)


def test_public_url_of_an_all_interfaces_bind_is_not_0_0_0_0():
    from ffterm.app.serve import default_public_url, is_loopback

    assert default_public_url("0.0.0.0", 8000) == f"http://{socket.getfqdn()}:8000"
    assert default_public_url("127.0.0.1", 8001) == "http://127.0.0.1:8001"
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")


def test_serve_refuses_a_directory_that_is_not_a_run(tmp_path, capsys):
    from ffterm.cli import main

    assert main(["serve", str(tmp_path / "nope")]) == 2
    assert "not an ffterm run directory" in capsys.readouterr().err


def test_binding_all_interfaces_warns_and_keeps_the_token(capsys, monkeypatch):
    import ffterm.app.serve as serve_module
    from ffterm.cli import main

    calls = []
    monkeypatch.setattr(serve_module, "serve", lambda run_dir, **kw: calls.append(kw))
    port = free_port()
    assert main(["serve", "--host", "0.0.0.0", "--port", str(port), "--max-visitors", "2"]) == 0
    err = capsys.readouterr().err
    assert "warning: serving on 0.0.0.0, reachable from other machines" in err and "--host 127.0.0.1" in err
    assert calls == [
        {"host": "0.0.0.0", "port": port, "token": "", "max_visitors": 2, "allow_runs": False, "public_url": None}
    ]  # token "": a fresh random one; read-only
    assert main(["serve", "--host", "127.0.0.1", "--port", str(port), "--no-token", "--allow-runs"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert calls[-1]["token"] is None and calls[-1]["allow_runs"] is True
