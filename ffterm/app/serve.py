"""`ffterm serve [RUN_DIR]`: the same app in a browser, through textual-serve (optional extra).

Each visitor gets their own app process running `python -m ffterm.app`; with a RUN_DIR every
visitor watches that run (follows its snapshots.jsonl), so a training started headless on a GPU box
can be watched from a browser without SSH.

Safe to expose, on top of textual-serve:
- a token (random, printed once in the URL, like Jupyter): the page and its websocket need it, as
  `?token=` or the cookie the page sets; `--no-token` only when bound to the loopback address;
- the Host header must name this server: an IP address, the bound name, the public URL's name, this
  machine's names when bound to every interface, `localhost` on a loopback bind (a page on a rebound
  domain name, DNS rebinding, is refused, token or not, like Jupyter's `local_hostnames`);
- the websocket's Origin must be the page's own (no other site can drive a visitor's app);
- at most `max_visitors` app processes at once;
- read-only unless `allow_runs`: visitors watch, they cannot start, stop or open arbitrary paths;
- every asset is served from here: the page's font is textual-serve's bundled Roboto Mono, not a
  remote stylesheet (a network that drops it would hold the page on its splash).
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets
import shlex
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost",)
TOKEN_COOKIE = "ffterm_token"
_FONT_FACE = """<style>
      @font-face {
        font-family: "Roboto Mono";
        src: url("{{ config.static.url }}fonts/RobotoMono-VariableFont_wght.ttf") format("truetype");
        font-style: normal;
      }
      @font-face {
        font-family: "Roboto Mono";
        src: url("{{ config.static.url }}fonts/RobotoMono-Italic-VariableFont_wght.ttf") format("truetype");
        font-style: italic;
      }
    </style>"""


class ServeUnavailable(ImportError):
    """textual-serve is not installed, or the run directory cannot be served; one line."""


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_host_names(host: str, public_url: str) -> frozenset[str]:
    """The names a request's Host header may give (besides IP addresses, which cannot be rebound)."""
    names = {host.lower(), (urlsplit(public_url).hostname or "").lower()}
    if is_loopback(host):
        names.update(LOOPBACK_NAMES)
    if host in ("0.0.0.0", "::", ""):
        names.update({socket.gethostname().lower(), socket.getfqdn().lower(), *LOOPBACK_NAMES})
    return frozenset(n for n in names if n)


def host_allowed(header: str, allowed: frozenset[str]) -> bool:
    """Whether a Host header (NAME or NAME:PORT, [IPv6]:PORT) names this server."""
    name = urlsplit(f"//{header}").hostname if header else None
    if not name:
        return False
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return name.lower().rstrip(".") in allowed


def default_public_url(host: str, port: int) -> str:
    """The URL browsers use: an all-interfaces bind is announced under this machine's name."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def serve_command(run_dir: Path | None = None, run_root: Path = Path("runs"), allow_runs: bool = False) -> str:
    """The shell command textual-serve runs for each visitor."""
    parts = [sys.executable, "-m", "ffterm.app", "--run-root", str(Path(run_root).resolve())]
    if run_dir is not None:
        parts += ["--watch", str(Path(run_dir).resolve())]
    if not allow_runs:
        parts.append("--read-only")
    return " ".join(shlex.quote(p) for p in parts)


def _page_template(textual_serve_templates: Path) -> str:
    """textual-serve's page with its remote font stylesheet replaced by the bundled font."""
    text = (textual_serve_templates / "app_index.html").read_text(encoding="utf-8")
    text = re.sub(r"<link[^>]*fonts\.googleapis\.com[^>]*/>", _FONT_FACE, text, flags=re.S)
    if re.search(r"https?://(?!www\.w3\.org)", text):
        raise ServeUnavailable("this textual-serve's page loads remote assets; pin textual-serve to a known version")
    return text


def make_server(
    run_dir: Path | None = None,
    host: str = "localhost",
    port: int = 8000,
    *,
    token: str | None,
    max_visitors: int = 3,
    allow_runs: bool = False,
    run_root: Path = Path("runs"),
    public_url: str | None = None,
) -> Any:
    """A textual-serve Server with ffterm's checks; `token=None` serves without one."""
    try:
        import aiohttp_jinja2
        import jinja2
        from aiohttp import web
        from textual_serve.server import Server
    except ImportError:
        raise ServeUnavailable(
            "ffterm serve needs textual-serve; install it with: pip install 'ffterm[serve]'"
        ) from None

    class GuardedServer(Server):
        visitors = 0

        def _access_problem(self, request: web.Request) -> str | None:
            if not host_allowed(request.headers.get("Host", ""), allowed_hosts):
                return f"requests for host {request.headers.get('Host', '')[:80]!r} are refused (not this server)"
            if token is None:
                return None
            given = request.query.get("token") or request.cookies.get(TOKEN_COOKIE) or ""
            if hmac.compare_digest(given.encode(), token.encode()):
                return None
            return "this ffterm server needs its token: open the URL `ffterm serve` printed (with ?token=…)"

        def _origin_problem(self, request: web.Request) -> str | None:
            origin = request.headers.get("Origin")
            if origin is None:
                return None  # not a browser: the token is what keeps it out
            allowed = {_origin(self.public_url), f"{request.scheme}://{request.host}"}
            return None if origin in allowed else f"cross-origin request from {origin} refused"

        async def _make_app(self) -> web.Application:
            app = await super()._make_app()
            page = _page_template(Path(self.templates_path))
            aiohttp_jinja2.setup(app, loader=jinja2.DictLoader({"app_index.html": page}))
            return app

        async def handle_index(self, request: web.Request) -> web.StreamResponse:
            problem = self._access_problem(request)
            if problem:
                raise web.HTTPForbidden(text=problem)
            response = aiohttp_jinja2.render_template("app_index.html", request, await self._page_context(request))
            if token is not None:
                response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
            return response

        async def _page_context(self, request: web.Request) -> dict[str, Any]:
            # the undecorated context builder: aiohttp_jinja2.template's wrapper is typed without __wrapped__
            return await Server.handle_index.__wrapped__(self, request)  # type: ignore[attr-defined]

        async def handle_download(self, request: web.Request) -> web.StreamResponse:
            problem = self._access_problem(request)
            if problem:
                raise web.HTTPForbidden(text=problem)
            return await super().handle_download(request)

        async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
            problem = self._access_problem(request) or self._origin_problem(request)
            if problem:
                raise web.HTTPForbidden(text=problem)
            if GuardedServer.visitors >= max_visitors:
                raise web.HTTPServiceUnavailable(text=f"ffterm serves at most {max_visitors} visitors at once")
            GuardedServer.visitors += 1
            try:
                return await super().handle_websocket(request)
            finally:
                GuardedServer.visitors -= 1

        async def on_startup(self, app: web.Application) -> None:
            url = self.public_url + (f"/?token={token}" if token is not None else "/")
            mode = "visitors may start runs" if allow_runs else "read-only: visitors watch"
            self.console.print(f"ffterm serving on {url}  ({mode}; at most {max_visitors} visitors)")
            self.console.print("Press Ctrl+C to quit")

    title = f"ffterm · {Path(run_dir).name}" if run_dir is not None else "ffterm"
    public = (public_url or default_public_url(host, port)).rstrip("/")
    allowed_hosts = allowed_host_names(host, public)
    return GuardedServer(
        serve_command(run_dir, run_root, allow_runs),
        host=host,
        port=port,
        title=title,
        public_url=public,
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def check_port_free(host: str, port: int) -> None:
    """OSError when `host:port` cannot be bound (in use, or an address of another machine)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))


def serve(
    run_dir: Path | None = None,
    host: str = "localhost",
    port: int = 8000,
    *,
    token: str | None = "",
    max_visitors: int = 3,
    allow_runs: bool = False,
    run_root: Path = Path("runs"),
    public_url: str | None = None,
) -> None:
    """Serve the app over HTTP until interrupted (blocks). token "": a fresh random one."""
    if token == "":
        token = secrets.token_urlsafe(24)
    if run_dir is not None and not Path(run_dir).is_dir():
        raise ServeUnavailable(f"{run_dir}: not a run directory; pass a directory under runs/")
    server = make_server(
        run_dir,
        host,
        port,
        token=token,
        max_visitors=max_visitors,
        allow_runs=allow_runs,
        run_root=run_root,
        public_url=public_url,
    )
    server.serve()
