"""`nwlab watch DIR`: serve a campaign directory as a live web page (docs/live-view.md), and the
same page started beside a campaign (`nwlab campaign … --watch [PORT]`)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

from lab.app.child_process import OWN_SESSION
from lab.app.cli_errors import reporting

DEFAULT_PORT = 8765
LOOPBACK = "127.0.0.1"
#: Seconds a campaign leaves its page up after its end, so the page shows how it ended.
LAST_STATE_S = 1.5


class WatchError(ValueError):
    """The page cannot be served as asked (one line saying why)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    watch = subparsers.add_parser("watch", help="serve a campaign directory as a live web page (read-only)")
    watch.add_argument("directory", help="the campaign directory (a campaign's --out), running or finished")
    watch.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT}; "
                       "0: any free one)")
    watch.add_argument("--host", default=LOOPBACK, help="address to listen on (default 127.0.0.1: this machine "
                       "only); any other needs --allow-remote")
    watch.add_argument("--allow-remote", action="store_true", help="allow an address other machines reach; every "
                       "request then needs the access token printed at start")
    watch.add_argument("--stop-pid", type=int, default=None, help=argparse.SUPPRESS)  # set by campaign --watch
    watch.set_defaults(handler=reporting(_watch, lambda: (WatchError,)))


def _watch(args: argparse.Namespace) -> int:
    serve(args.directory, host=args.host, port=args.port, allow_remote=args.allow_remote, stop_pid=args.stop_pid)
    return 0


def listening_socket(host: str, port: int, allow_remote: bool) -> tuple[socket.socket, bool]:
    """(a socket bound and listening, whether it is loopback only); WatchError before binding
    an address other machines reach without `allow_remote`, or when the address is taken."""
    if not 0 <= port <= 65535:
        raise WatchError(f"--port {port}: not a TCP port (0-65535)")
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise WatchError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    loopback = ipaddress.ip_address(address[0]).is_loopback
    if not loopback and not allow_remote:
        raise WatchError(f"--host {host} ({address[0]}) is reachable from other machines; add --allow-remote to "
                         "serve there (every request then needs the access token printed at start)")
    sock = socket.socket(family, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise WatchError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(64)
    return sock, loopback


def serve(directory: str | Path, *, host: str = LOOPBACK, port: int = DEFAULT_PORT, allow_remote: bool = False,
          stop_pid: int | None = None) -> None:
    """Serve until interrupted (Ctrl-C, SIGTERM). Prints the page's address with its token."""
    import asyncio     # here with the server's own imports: `nwlab` imports this module on every start

    import uvicorn

    from lab.app.watch.server import WatchSettings, create_app

    path = Path(directory)
    if not path.is_dir():
        raise WatchError(f"{path}: no such directory (a campaign's --out)")
    sock, loopback = listening_socket(host, port, allow_remote)
    token = secrets.token_urlsafe(18)
    bound_host, bound_port = sock.getsockname()[:2]
    settings = WatchSettings(path.resolve(), token, token_for_reading=not loopback, stop_pid=stop_pid)
    if not loopback:
        settings.allowed_hosts = ["*"]        # reached by whatever name the network gives; the token gates it
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    print(f"live view of {settings.directory}: http://{shown}:{bound_port}/?token={token}", flush=True)
    print("  read-only; the token (needed " + ("for every request" if not loopback else "to request a stop")
          + ") also allows asking the campaign to stop, as Ctrl-C does", flush=True)
    app = create_app(settings)
    publisher = app.state.publisher

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            # The event streams never end by themselves: end them, so the shutdown is at once.
            try:
                asyncio.get_running_loop().call_soon_threadsafe(publisher.close)
            except RuntimeError:          # no loop running yet
                pass
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    server = Server(config)

    def campaign_gone() -> None:
        publisher.close()
        server.should_exit = True

    settings.on_campaign_gone = campaign_gone
    server.run(sockets=[sock])


# --- beside a campaign -------------------------------------------------------------------------------
class WatchProcess:
    """`nwlab watch` in a process of its own beside a campaign: no coupling but the directory,
    and a Ctrl-C at the terminal is the campaign's (the page stays to show how it ended)."""

    def __init__(self, directory: Path, port: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lab.app.cli", "watch", str(directory), "--port", str(port),
             "--stop-pid", str(os.getpid())], stdin=subprocess.DEVNULL, **OWN_SESSION)

    def close(self) -> None:
        if self.process.poll() is None:
            time.sleep(LAST_STATE_S)
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        elif self.process.returncode:
            print(f"the live view ended early (exit {self.process.returncode}); the campaign went on", flush=True)
