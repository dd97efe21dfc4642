"""The live view's web application: a campaign directory's state (campaign_view.py), pushed to
every browser that watches it, and nothing that changes the run.

One poller reads the directory every `POLL_S` (in a worker thread: HDF5 reads block) and keeps
only the latest state, serialised once; every client's event stream waits for the next version
and sends it, so twenty browsers cost one reading and hold one copy, however long the run.
The only request that acts is `POST /api/stop`: with the token, it sends the campaign's process
SIGINT, the signal Ctrl-C sends, so the run ends the way it always does (the running procedure
archived as aborted, every instrument made safe, the report written).

Who may look: on a loopback address, anyone on this machine (who could read the directory
anyway); on any other interface, only a request carrying the token (`?token=` once; the page
then holds it in a same-site cookie, so its own scripts and styles load). Host headers other
than the bound address and localhost are refused (a page elsewhere cannot reach this one by
renaming itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import psutil
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from lab.app import live_journal
from lab.app.report.html import REPORT_HTML_NAME
from lab.app.watch.campaign_view import CampaignView

STATIC = Path(__file__).with_name("static")
#: Seconds between two readings of the directory: a flushed block shows within about this.
POLL_S = 0.25
#: Seconds between two keep-alive comments on an idle event stream (proxies close silent ones).
PING_S = 15.0
TOKEN_COOKIE = "nwlab_watch_token"


@dataclass
class WatchSettings:
    directory: Path
    token: str
    #: Reading needs the token too (bound beyond loopback).
    token_for_reading: bool = False
    #: The process a stop request signals; None: the one the live status names, when it is
    #: running on this host and still writing its status.
    stop_pid: int | None = None
    allowed_hosts: list[str] = field(default_factory=lambda: ["127.0.0.1", "localhost", "[::1]", "::1"])
    poll_s: float = POLL_S
    #: Called once `stop_pid`'s process is gone (a page beside a campaign ends with it, even
    #: when the campaign was killed and could not end it).
    on_campaign_gone: Callable[[], None] | None = None


class StatePublisher:
    """The latest state of the directory, read by one poller, and a version clients wait on."""

    def __init__(self, settings: WatchSettings) -> None:
        self.settings = settings
        self.view = CampaignView(settings.directory)
        self.version = 0
        self.body = b"{}"
        self.state: dict[str, Any] = {}
        self._compared = ""
        self._changed = asyncio.Event()
        self._task: asyncio.Task | None = None
        #: The server is shutting down: every event stream ends now (instead of holding the
        #: shutdown until its next keep-alive).
        self.closing = False

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def close(self) -> None:
        self.closing = True
        self._changed.set()

    async def refresh(self) -> None:
        state = await anyio.to_thread.run_sync(self._read)
        # The reading time alone is no news; anything else (a heartbeat's time left included) is.
        # Serialised once: the reading time alone is no news, so it is left out of the comparison
        # and joined to the body after it.
        generated = state.pop("generated_unix_s", None)
        compared = json.dumps(state, allow_nan=False)
        state["generated_unix_s"] = generated
        if compared == self._compared:
            return
        self._compared, self.state = compared, state
        self.body = (compared[:-1] + f', "generated_unix_s": {json.dumps(generated)}}}').encode()
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_newer(self, version: int, timeout_s: float) -> bool:
        """True when a state newer than `version` is there (now or within `timeout_s`)."""
        if self.version > version:
            return True
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), timeout_s)
        except asyncio.TimeoutError:
            return False
        return True

    def _read(self) -> dict[str, Any]:
        try:
            state = self.view.state()
        except Exception as exc:         # the view must never take the page down: say what failed
            state = {"format": "nwlab-watch/1", "directory": str(self.settings.directory),
                     "generated_unix_s": time.time(), "campaign": {"state": "unreadable", "message": ""},
                     "runs": [], "incidents": [],
                     "problems": [f"the directory could not be read: {type(exc).__name__}: {exc}"]}
        state["stop"] = stop_target(self.settings)[1]
        return state

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_s)
            await self.refresh()
            pid, gone = self.settings.stop_pid, self.settings.on_campaign_gone
            if pid is not None and gone is not None and not _alive(pid):
                gone()
                return


def _alive(pid: int) -> bool:
    return psutil.pid_exists(pid)      # not os.kill(pid, 0): on Windows that terminates the process


def stop_target(settings: WatchSettings) -> tuple[int | None, dict[str, Any]]:
    """(pid to signal, the page's `stop` field): whom a stop request would reach, or why none.
    Only a campaign whose status says it is running, and is being rewritten now, is signalled:
    a pid from a status nobody writes may belong to another process by now."""
    if sys.platform == "win32":
        return None, {"available": False, "why_not": "a stop from the page needs POSIX signals; press Ctrl-C in "
                                                      "the campaign's window"}
    try:
        status = live_journal.read_status(settings.directory)
    except live_journal.LiveJournalError as error:
        return None, {"available": False, "why_not": str(error)}
    if status is None or status.get("state") != live_journal.RUNNING:
        return None, {"available": False, "why_not": "no campaign is running in this directory"}
    if status.get("stale_s"):
        return None, {"available": False, "why_not": "the campaign's process has not updated its status for "
                                                     f"{status['stale_s']:.0f} s"}
    if settings.stop_pid is not None:             # beside the campaign (`campaign --watch`): its own pid
        return settings.stop_pid, {"available": True, "why_not": ""}
    if status.get("host") != socket.gethostname():
        return None, {"available": False, "why_not": f"the campaign runs on {status.get('host')}; stop it there"}
    return int(status["pid"]), {"available": True, "why_not": ""}


class TokenGate:
    """Refuses, with 403, requests without the token where reading needs one; a request that
    brings it (`?token=`) gets it back as a cookie for the page's own files."""

    def __init__(self, app: ASGIApp, settings: WatchSettings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.settings.token_for_reading:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if not has_token(request, self.settings.token):
            response = PlainTextResponse("this live view needs its token: open the address `nwlab watch` printed "
                                         "(…/?token=…)", status_code=403)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def has_token(request: Request, token: str) -> bool:
    given = request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE) or ""
    return hmac.compare_digest(given.encode(), token.encode())


def create_app(settings: WatchSettings) -> Starlette:
    publisher = StatePublisher(settings)

    async def index(request: Request) -> Response:
        response = FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})
        if request.query_params.get("token") and has_token(request, settings.token):
            response.set_cookie(TOKEN_COOKIE, settings.token, httponly=True, samesite="strict")
        return response

    async def report(request: Request) -> Response:
        """The directory's report.html (self-contained), which the page's result sections link to."""
        path = settings.directory / REPORT_HTML_NAME
        if not path.is_file():
            return PlainTextResponse("no report.html in this directory yet: the campaign writes it after each run",
                                     status_code=404)
        return FileResponse(path, headers={"Cache-Control": "no-store"})

    async def state(request: Request) -> Response:
        return Response(publisher.body, media_type="application/json", headers={"Cache-Control": "no-store"})

    async def events(request: Request) -> Response:
        async def stream():
            version = -1
            while not publisher.closing:
                if await publisher.wait_newer(version, PING_S):
                    if publisher.closing:
                        return
                    version = publisher.version
                    yield b"event: state\ndata: " + publisher.body + b"\n\n"
                else:
                    yield b": ping\n\n"
                if await request.is_disconnected():
                    return

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def stop(request: Request) -> Response:
        if not has_token(request, settings.token):
            return JSONResponse({"ok": False, "message": "a stop request needs the token `nwlab watch` printed"},
                                status_code=403)
        pid, why = stop_target(settings)
        if pid is None:
            return JSONResponse({"ok": False, "message": why["why_not"]}, status_code=409)
        try:
            os.kill(pid, signal.SIGINT)
        except OSError as exc:
            return JSONResponse({"ok": False, "message": f"the campaign's process {pid} could not be signalled: "
                                                         f"{exc.strerror}"}, status_code=409)
        return JSONResponse({"ok": True, "message": "stop requested (as Ctrl-C): the running procedure ends as "
                                                    "aborted, the instruments are made safe, the report is written"})

    async def lifespan(app):
        await publisher.start()
        yield
        await publisher.stop()

    app = Starlette(
        routes=[Route("/", index), Route(f"/{REPORT_HTML_NAME}", report), Route("/api/state", state), Route("/events", events),
                Route("/api/stop", stop, methods=["POST"]), Mount("/static", StaticFiles(directory=STATIC))],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts),
                    Middleware(TokenGate, settings=settings)],
        lifespan=contextlib.asynccontextmanager(lifespan))
    app.state.publisher = publisher
    return app
