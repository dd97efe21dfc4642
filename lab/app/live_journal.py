"""What a running campaign tells whoever watches its directory: `live-status.json` and
`live-events.jsonl` beside the archives and `campaign.json`.

The archives say what was measured (SWMR: readable while written) and the manifest which runs
there are; neither says how far the campaign is, how long it has left, or what it met on the
way until a run ends. The campaign process therefore keeps two small files up to date, which
`nwlab watch` (lab/app/watch) reads without any link to that process, so a campaign started
elsewhere on a shared directory, or long finished, shows the same:

- `live-status.json`, rewritten whole (temporary file + rename, never half of one) about twice
  a second by a heartbeat thread: the process (pid, host), the campaign's state, its fraction
  done, elapsed and remaining wall time, which run is running and that run's own figures. A
  status whose `updated_unix_s` stops advancing while it says "running" belongs to a process
  that died (the reader says so).
- `live-events.jsonl`, appended one JSON object per line: the campaign and each run starting
  and ending, and every incident as it happens (the warnings the lab logs: a stage excursion,
  a capture taken again, a reconnect, a malformed reply read again, a bias cycled to free a
  latched wire). A reader keeps its byte offset and reads only what was added; a line being
  written (no newline yet) is left for the next read.

Both carry `format: nwlab-live/1`. Writing either never stops a run: a full disk or a removed
directory silences the journal (the archives have their own disk checks), it does not raise.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = "nwlab-live/1"
STATUS_NAME = "live-status.json"
EVENTS_NAME = "live-events.jsonl"
#: Seconds between two status writes of the heartbeat.
HEARTBEAT_S = 0.5
#: A "running" status not rewritten for this long belongs to a process that no longer runs.
STALE_AFTER_S = 10.0
#: Campaign states in the status file.
RUNNING, FINISHED, INTERRUPTED = "running", "finished", "interrupted"
#: Event kinds.
CAMPAIGN_STARTED, CAMPAIGN_ENDED = "campaign_started", "campaign_ended"
RUN_STARTED, RUN_ENDED, INCIDENT = "run_started", "run_ended", "incident"
#: The loggers whose warnings are incidents: the runner, the drivers, the procedures.
INCIDENT_LOGGERS = ("lab", "drivers", "procedures")
#: Longest incident text kept (a reply quoted in a warning may be long).
INCIDENT_CHARS_MAX = 600
#: Longest events file read whole on a first read; beyond it a reader starts this far from the end.
EVENTS_TAIL_BYTES = 1 << 20


class LiveJournalError(ValueError):
    """A live file that is not what this module writes (one line naming the file)."""


# --- writing (the campaign process) ----------------------------------------------------------------
class LiveJournal:
    """The two files of one campaign directory, written by the process that runs the campaign.

    `snapshot` is called by the heartbeat thread and returns the status's variable part (the
    campaign's and the running run's figures); it must only read."""

    def __init__(self, directory: str | Path, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.directory = Path(directory)
        self.snapshot = snapshot
        self.started_unix_s = time.time()
        self.state = RUNNING
        #: The run going on now (incidents are its), "" between runs.
        self.procedure = ""
        self._silenced = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handler = _IncidentHandler(self)

    def start(self, planned: list[str]) -> None:
        self.event(CAMPAIGN_STARTED, text=f"{len(planned)} run(s) planned: {', '.join(planned)}")
        self.write_status()
        for name in INCIDENT_LOGGERS:
            logging.getLogger(name).addHandler(self._handler)
        self._thread = threading.Thread(target=self._beat, name="nwlab-live-status", daemon=True)
        self._thread.start()

    def stop(self, state: str, text: str = "") -> None:
        """The campaign ended (`FINISHED` or `INTERRUPTED`): last status, last event."""
        for name in INCIDENT_LOGGERS:
            logging.getLogger(name).removeHandler(self._handler)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.state = state
        self.write_status()
        self.event(CAMPAIGN_ENDED, text=text or state)

    def event(self, kind: str, *, procedure: str = "", text: str = "", **fields: Any) -> None:
        if kind == RUN_STARTED:
            self.procedure = procedure
        elif kind == RUN_ENDED:
            self.procedure = ""
        line = json.dumps({"format": FORMAT, "unix_s": time.time(), "kind": kind, "procedure": procedure,
                           "text": text[:INCIDENT_CHARS_MAX], **fields}, default=str)
        with self._lock:
            if self._silenced:
                return
            try:
                with open(self.directory / EVENTS_NAME, "a", encoding="utf-8") as events:
                    events.write(line + "\n")
            except OSError:
                self._silenced = True

    def write_status(self) -> None:
        try:
            variable = self.snapshot()
        except Exception as exc:          # a figure that cannot be computed now: say so, keep beating
            variable = {"snapshot_error": f"{type(exc).__name__}: {exc}"}
        status = {"format": FORMAT, "pid": os.getpid(), "host": socket.gethostname(),
                  "started_unix_s": self.started_unix_s, "updated_unix_s": time.time(), "state": self.state,
                  **variable}
        with self._lock:
            if self._silenced:
                return
            path = self.directory / STATUS_NAME
            temporary = path.with_name(f".{STATUS_NAME}.{os.getpid()}.tmp")
            try:
                temporary.write_text(json.dumps(status, default=str), encoding="utf-8")
                os.replace(temporary, path)
            except OSError:
                self._silenced = True
                temporary.unlink(missing_ok=True)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self.write_status()


class _IncidentHandler(logging.Handler):
    """Every warning of the lab's loggers, as an incident event, when it is logged."""

    def __init__(self, journal: LiveJournal) -> None:
        super().__init__(level=logging.WARNING)
        self.journal = journal

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:                 # a malformed log call must not become a second problem
            text = str(record.msg)
        self.journal.event(INCIDENT, procedure=self.journal.procedure, text=text, source=record.name,
                           level=record.levelname)


def progress_snapshot(progress: Any, now_s: float) -> dict[str, Any]:
    """The status's variable part from the campaign's estimates (a
    lab.execution.progress.CampaignProgress, read only; not imported, so that a reader of these
    files — the live view — never loads the runner): the same figures its terminal bars show.
    None before the instruments are open."""
    if progress is None:
        return {"campaign": None, "run": None}
    campaign = {"fraction": progress.fraction(now_s), "elapsed_s": progress.elapsed_s(now_s),
                "left_s": progress.left_s(now_s), "position": list(progress.position()),
                "planned": [entry.name for entry in progress.planned],
                "states": [entry.state for entry in progress.planned]}
    run = progress.current
    running = next((entry.name for entry in progress.planned if entry.state == "running"), None)
    return {"campaign": campaign, "run": None if run is None or running is None else {
        "procedure": running, "fraction": run.fraction, "elapsed_s": run.elapsed_s(now_s),
        "left_s": run.left_s(now_s), "message": run.message}}


# --- reading (the live view) -----------------------------------------------------------------------
@dataclass(frozen=True)
class LiveEvent:
    unix_s: float
    kind: str
    procedure: str
    text: str
    source: str = ""


def read_status(directory: str | Path) -> dict[str, Any] | None:
    """The status as written, or None when the directory has none; LiveJournalError when the
    file is not one. Adds `stale_s`: seconds since a "running" status was last rewritten,
    when that is more than `STALE_AFTER_S` (its process no longer writes it), else 0."""
    path = Path(directory) / STATUS_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise LiveJournalError(f"{path}: unreadable ({exc})") from None
    try:
        status = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LiveJournalError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(status, dict) or status.get("format") != FORMAT:
        raise LiveJournalError(f"{path}: not a live status (expected format {FORMAT})")
    age_s = time.time() - float(status.get("updated_unix_s") or 0.0)
    status["stale_s"] = age_s if status.get("state") == RUNNING and age_s > STALE_AFTER_S else 0.0
    return status


class EventsReader:
    """Reads `live-events.jsonl` incrementally: `read()` returns the events added since the
    last call. A line that does not parse is returned as an event of kind "unreadable" naming
    it, so a damaged file shows and the rest still reads."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / EVENTS_NAME
        self.offset: int | None = None
        self.identity: tuple[int, int] | None = None

    def read(self) -> list[LiveEvent]:
        try:
            with open(self.path, "rb") as events:
                stat = os.fstat(events.fileno())
                identity = (stat.st_dev, stat.st_ino)
                if identity != self.identity or self.offset is None or stat.st_size < self.offset:
                    # A new file (a new campaign in the directory), or a first read.
                    self.identity = identity
                    self.offset = max(stat.st_size - EVENTS_TAIL_BYTES, 0) if self.offset is None else 0
                    if self.offset:
                        events.seek(self.offset)
                        self.offset += len(events.readline())      # start at a whole line
                events.seek(self.offset)
                data = events.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        self.offset += end
        return [_event(line, self.path) for line in data[:end].splitlines() if line.strip()]


def _event(line: bytes, path: Path) -> LiveEvent:
    try:
        tree = json.loads(line)
        if not isinstance(tree, dict) or tree.get("format") != FORMAT:
            raise ValueError(f"not an event of {FORMAT}")
        return LiveEvent(float(tree["unix_s"]), str(tree["kind"]), str(tree.get("procedure", "")),
                         str(tree.get("text", "")), str(tree.get("source", "")))
    except (ValueError, KeyError, TypeError) as exc:
        return LiveEvent(time.time(), "unreadable", "", f"{path.name}: a line that is not an event ({exc})")
