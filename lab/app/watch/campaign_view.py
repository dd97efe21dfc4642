"""A campaign directory as the live view's state object (docs/live-view.md): `CampaignView(dir)
.state()` is the whole picture at one moment, read from the directory alone — the manifest
(campaign.json), the live files a running campaign keeps (live-status.json, live-events.jsonl),
the run files and report.html — with no link to the process that writes them.

It is read often (the server polls a few times a second), so everything that does not change is
read once: each run file's results and figures are kept by (mtime_ns, size), the manifest and
the report's section ids likewise, and the events file is read on from where the last call left
it. A finished archive is therefore read once; a `.partial` being written is read again each
time it changed (a flushed block).

Nothing here stops the view: a damaged run file is that run's `problem`, an unreadable manifest
or live file a line of `problems`, a `.partial` nobody writes any more (a crashed run) and one
gone between listing and reading (a recovery renamed it) are said so, in one line each.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lab.app import live_journal
from lab.app.manifest import MANIFEST_NAME, RUNNING, Manifest, ManifestError, ManifestRun, load_manifest
from lab.app.report.html import REPORT_HTML_NAME, run_anchor
from lab.app.report.runs import RunData, run_from_stored
from lab.app.report.values import companions, show, with_unit
from lab.app.watch import figures as figures_module
from lab.archive import layout, liveness
from lab.archive.live_reader import FileGone, LiveRun, read_live_run
from lab.archive.stored_run import StoredRun

FORMAT = "nwlab-watch/1"
#: Incidents kept (the newest; oldest first in the state).
INCIDENTS_MAX = 200
#: Problems of the events file kept (a malformed line shows until this many newer ones).
EVENT_PROBLEMS_MAX = 20
#: A file modified this close to (or after) the start of its last reading is read again: its
#: modification time may not have moved since (file times tick in jiffies).
MTIME_SLACK_S = 0.05
CRASHED = "not being written: a crashed run; `nwlab campaign --resume` recovers it"
#: A `.partial` nobody holds is taken for a crashed run once it is this old: its writer takes its
#: lock only once the file is set up (lab/archive/writer.py), a moment after creating it.
SETTING_UP_S = 5.0
#: A `.partial` being written that fails to read shows what it showed before for this long
#: before the failure is said (the writer's finishing step holds it outside SWMR mode briefly).
SETTLE_S = 5.0


@dataclass
class _Read:
    """One run file as last read: what the state shows of it."""
    key: tuple[int, int]
    started_unix_s: float
    view: dict[str, Any]


@dataclass
class _Cached:
    key: tuple[int, int] | None = None
    value: Any = None


@dataclass
class _Listing:
    """The directory's run files: name -> (mtime_ns, size)."""
    finished: dict[str, tuple[int, int]] = field(default_factory=dict)
    partial: dict[str, tuple[int, int]] = field(default_factory=dict)


class CampaignView:
    """The state of one campaign directory (`state()`), read incrementally (see the module doc).
    The dicts `state()` returns share the figures of unchanged runs: callers must not change them."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory).absolute()
        self._events = live_journal.EventsReader(self.directory)
        self._incidents: deque[dict[str, Any]] = deque(maxlen=INCIDENTS_MAX)
        self._event_problems: deque[str] = deque(maxlen=EVENT_PROBLEMS_MAX)
        self._runs: dict[str, _Read] = {}
        self._failing: dict[str, float] = {}                # `.partial` -> when reading it began to fail
        self._manifest = _Cached()
        self._report = _Cached()

    # -- the state --------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        problems: list[str] = []
        listing = self._list(problems)
        manifest = self._read_manifest(problems)
        try:
            status = live_journal.read_status(self.directory)
        except live_journal.LiveJournalError as error:
            problems.append(str(error))
            status = None
        self._read_events(problems)
        report_ids = self._report_ids()
        runs = self._runs_of(manifest, status, listing, report_ids)
        self._forget(listing)
        return {
            "format": FORMAT,
            "directory": str(self.directory),
            "generated_unix_s": time.time(),
            "stop": {"available": False, "why_not": ""},
            "campaign": self._campaign(manifest, status, listing),
            "runs": runs,
            "incidents": list(self._incidents),
            "problems": problems + list(self._event_problems),
        }

    # -- the directory's files --------------------------------------------------------------
    def _list(self, problems: list[str]) -> _Listing:
        listing = _Listing()
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    name = entry.name
                    if not name.endswith((layout.SUFFIX, layout.PARTIAL_SUFFIX)):
                        continue
                    try:
                        stat = entry.stat()
                    except OSError:
                        continue                     # gone since the listing
                    key = (stat.st_mtime_ns, stat.st_size)
                    (listing.partial if name.endswith(layout.PARTIAL_SUFFIX) else listing.finished)[name] = key
        except FileNotFoundError:
            problems.append(f"{self.directory}: no such directory")
        except NotADirectoryError:
            problems.append(f"{self.directory}: not a directory")
        except OSError as error:
            problems.append(f"{self.directory}: cannot be listed ({error.strerror or error})")
        return listing

    def _read_manifest(self, problems: list[str]) -> Manifest | None:
        path = self.directory / MANIFEST_NAME
        key = _stat_key(path)
        if key is None:
            self._manifest = _Cached()
            return None
        if self._manifest.key != key:
            try:
                self._manifest = _Cached(key, load_manifest(self.directory))
            except ManifestError as error:
                self._manifest = _Cached(key, error)
        if isinstance(self._manifest.value, ManifestError):
            problems.append(str(self._manifest.value))
            return None
        return self._manifest.value

    def _read_events(self, problems: list[str]) -> None:
        before = self._events.identity
        try:
            events = self._events.read()
        except OSError as error:
            problems.append(f"{self._events.path}: cannot be read ({error.strerror or error})")
            return
        if before is not None and self._events.identity != before:      # a new campaign's file
            self._incidents.clear()
            self._event_problems.clear()
        for event in events:
            if event.kind == live_journal.INCIDENT:
                self._incidents.append({"unix_s": event.unix_s, "procedure": event.procedure, "text": event.text,
                                        "source": event.source})
            elif event.kind == "unreadable":
                self._event_problems.append(event.text)

    def _report_ids(self) -> frozenset[str]:
        """The ids of report.html's headings (read again when the report changes)."""
        path = self.directory / REPORT_HTML_NAME
        key = _stat_key(path)
        if key is None:
            self._report = _Cached()
            return frozenset()
        if self._report.key != key:
            try:
                page = path.read_text(encoding="utf-8", errors="replace")
                ids = frozenset(re.findall(r'<h[1-6] id="([^"]+)"', page))
            except OSError:
                ids = frozenset()
            self._report = _Cached(key, ids)
        return self._report.value

    def _forget(self, listing: _Listing) -> None:
        for name in list(self._runs):
            if name not in listing.finished and name not in listing.partial:
                del self._runs[name]
        for name in list(self._failing):
            if name not in listing.partial:
                del self._failing[name]

    # -- one run file ----------------------------------------------------------------------
    def _file(self, name: str, key: tuple[int, int]) -> dict[str, Any]:
        """The run file's part of its run's entry: header, results, figures, problem."""
        kept = self._runs.get(name)
        if kept is not None and kept.key == key and key[0] / 1e9 < kept.started_unix_s - MTIME_SLACK_S:
            return kept.view
        started = time.time()
        path = self.directory / name
        try:
            run = read_live_run(path, last_traces=figures_module.SHOWN_TRACES, pick=figures_module.pick_references)
            view = _file_view(run)
        except FileGone:
            view = {"problem": f"{name}: gone while it was read (a recovery renamed it to "
                               f"{name.removesuffix('.partial')}?)" if name.endswith(layout.PARTIAL_SUFFIX)
                    else f"{name}: gone while it was read"}
            self._runs.pop(name, None)
            return view
        except layout.ArchiveError as error:
            view = {"problem": str(error)}
            if kept is not None and name.endswith(layout.PARTIAL_SUFFIX):
                # A file being written may not open for a moment (its writer finishing it outside
                # SWMR mode): what it showed stays, read again next time; said once it lasts.
                failing = self._failing.setdefault(name, started)
                if started - failing < SETTLE_S:
                    return kept.view
                view = {**kept.view, "problem": str(error)}
        except Exception as error:  # noqa: BLE001 - a file readable, yet not as a run: one line, the view goes on
            view = {"problem": f"{path}: not readable as a run ({type(error).__name__}: {error})"}
        self._runs[name] = _Read(key, started, view)
        if not view.get("problem"):
            self._failing.pop(name, None)
        return view

    def _partial(self, name: str, key: tuple[int, int]) -> dict[str, Any]:
        view = dict(self._file(name, key))
        try:
            live = liveness.is_live(self.directory / name)
        except FileNotFoundError:
            return {**view, "live": True,
                    "problem": f"{name}: gone (a recovery renamed it to {name.removesuffix('.partial')}?)"}
        except OSError:
            live = True
        if not live and time.time() - key[0] / 1e9 < SETTING_UP_S:
            live = True                              # just created: its writer is setting it up
        if not live and not view.get("problem"):
            view["problem"] = f"{name}: {CRASHED}"
        view["live"] = live
        return view

    # -- the runs --------------------------------------------------------------------------
    def _runs_of(self, manifest: Manifest | None, status: dict | None, listing: _Listing,
                 report_ids: frozenset[str]) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = []
        listed = set()
        status_run = status.get("run") if isinstance(status, dict) and isinstance(status.get("run"), dict) else None
        entries = manifest.runs if manifest is not None else []
        # A running entry's file: the newest `.partial` of its procedure named after it started,
        # else (the run has just ended, the manifest not yet updated) the newest such `.h5`.
        named = {entry.archive for entry in entries if entry.archive}
        candidates = sorted([n for n in listing.partial] + [n for n in listing.finished if n not in named],
                            key=lambda n: (n.endswith(layout.PARTIAL_SUFFIX), n), reverse=True)
        matched: dict[int, str] = {}
        for position in reversed(range(len(entries))):          # the newest running entry takes the newest file
            entry = entries[position]
            if entry.status != RUNNING:
                continue
            since = _run_id_time(entry.started_at)
            name = next((n for n in candidates if n not in matched.values() and _procedure_of(n) == entry.procedure
                         and n >= since), None)
            if name is not None:
                matched[position] = name
        for position, entry in enumerate(entries):
            archive = entry.archive or matched.get(position)
            if archive:
                listed.add(archive)
            run = _entry(entry.procedure, entry.run_id or None, entry.status, archive, entry.started_at or None,
                         entry.finished_at or None, entry.message)
            if archive in listing.finished:
                view = self._file(archive, listing.finished[archive])
                run.update(self._merged(view, entry))
                if entry.status == RUNNING and view.get("status"):      # ended; the manifest says so next
                    run.update(status=view["status"], message=view.get("message") or "",
                               finished=view.get("finished"))
            elif archive in listing.partial:
                run.update(self._merged(self._partial(archive, listing.partial[archive]), entry))
                if entry.status == RUNNING and not run.get("live", True):
                    run["status"] = "crashed"
            elif archive:
                run["problem"] = f"{archive}: not in the directory" if entry.status != RUNNING else None
            if run["status"] == RUNNING and status_run is not None and status_run.get("procedure") == entry.procedure:
                run["fraction"] = _number(status_run.get("fraction"))
                run["left_s"] = _number(status_run.get("left_s"))
                run["message"] = str(status_run.get("message") or run["message"])
            runs.append(run)
        # Run files the manifest does not list (a `nwlab run` into the directory, a kill before
        # the manifest's update, a directory without a manifest), in the order they started.
        unlisted = []
        for name, key in listing.finished.items():
            if name not in listed:
                unlisted.append((name, self._file(name, key)))
        for name, key in listing.partial.items():
            if name not in listed:
                unlisted.append((name, self._partial(name, key)))
        for name, view in sorted(unlisted, key=lambda item: (item[1].get("started") or "", item[0])):
            status_text = view.get("status") or ("running" if name.endswith(layout.PARTIAL_SUFFIX) else "unknown")
            if name.endswith(layout.PARTIAL_SUFFIX) and not view.get("live", True):
                status_text = "crashed"
            run = _entry(view.get("procedure") or _procedure_of(name) or "?", view.get("run_id"), status_text, name,
                         view.get("started"), view.get("finished"), view.get("message", ""))
            run.update({k: view[k] for k in ("results", "figures", "problem") if k in view})
            runs.append(run)
        runs += self._not_started(manifest, status)
        for run in runs:
            run.pop("live", None)
            anchor = run_anchor(run["run_id"]) if run.get("run_id") else None
            run["report_anchor"] = f"{REPORT_HTML_NAME}#{anchor}" if anchor in report_ids else None
        return runs

    @staticmethod
    def _merged(view: dict[str, Any], entry: ManifestRun) -> dict[str, Any]:
        """What a run file adds to its manifest entry (the manifest says its status and message)."""
        out = {k: view[k] for k in ("results", "figures", "problem") if k in view}
        if not entry.run_id and view.get("run_id"):
            out["run_id"] = view["run_id"]
        if not entry.started_at and view.get("started"):
            out["started"] = view["started"]
        if "live" in view:
            out["live"] = view["live"]
        return out

    def _not_started(self, manifest: Manifest | None, status: dict | None) -> list[dict[str, Any]]:
        """The status's planned procedures not started yet, then the manifest's procedures not
        run (with why)."""
        not_run = dict(manifest.not_run) if manifest is not None else {}
        campaign = status.get("campaign") if isinstance(status, dict) else None
        out = []
        if isinstance(campaign, dict) and isinstance(campaign.get("planned"), list):
            planned = [str(p) for p in campaign["planned"]]
            states = campaign.get("states")
            unstarted = self._unstarted(planned, manifest, status)
            if isinstance(states, list) and len(states) == len(planned):
                # The manifest enters a run a moment before the estimates call it running: a
                # run there is not also waiting.
                waiting = [(p, s) for p, s in zip(planned, states) if s in ("waiting", "skipped") and p in unstarted]
            else:
                waiting = [(p, "waiting") for p in unstarted]
            ended = status.get("state") != live_journal.RUNNING
            for procedure, state in waiting:
                if procedure in not_run or state == "skipped" or ended:
                    why = not_run.pop(procedure, "") or ("skipped" if state == "skipped" else
                                                         f"not started: the campaign {status.get('state')}")
                    out.append(_entry(procedure, None, "not run", None, None, None, why))
                else:
                    out.append(_entry(procedure, None, "planned", None, None, None, ""))
        out += [_entry(procedure, None, "not run", None, None, None, why) for procedure, why in not_run.items()]
        return out

    @staticmethod
    def _unstarted(planned: list[str], manifest: Manifest | None, status: dict) -> list[str]:
        """Without the status's per-run states: the planned procedures without a manifest run
        started since the campaign started, in plan order."""
        since = _number(status.get("started_unix_s"))
        started: dict[str, int] = {}
        for run in manifest.runs if manifest is not None else []:
            when = _unix_s(run.started_at)
            if since is None or (when is not None and when >= since - 1.0):
                started[run.procedure] = started.get(run.procedure, 0) + 1
        left = []
        for procedure in planned:
            if started.get(procedure, 0):
                started[procedure] -= 1
            else:
                left.append(procedure)
        return left

    # -- the campaign ----------------------------------------------------------------------
    def _campaign(self, manifest: Manifest | None, status: dict | None, listing: _Listing) -> dict[str, Any]:
        identity = manifest.identity if manifest is not None else None
        out: dict[str, Any] = {
            "state": "no campaign", "message": "", "station": identity.station_name if identity else "",
            "chip": identity.chip_name if identity else "", "seed": identity.emulator_seed if identity else None,
            "fraction": None, "elapsed_s": None, "left_s": None, "position": None, "updated_unix_s": None,
            "pid": None, "host": None,
        }
        if status is not None:
            campaign = status.get("campaign") if isinstance(status.get("campaign"), dict) else {}
            position = campaign.get("position")
            out.update({
                "state": str(status.get("state", "")), "fraction": _number(campaign.get("fraction")),
                "elapsed_s": _number(campaign.get("elapsed_s")), "left_s": _number(campaign.get("left_s")),
                "position": [int(position[0]), int(position[1])] if isinstance(position, list) and len(position) == 2
                and all(isinstance(p, (int, float)) for p in position) else None,
                "updated_unix_s": _number(status.get("updated_unix_s")),
                "pid": status.get("pid") if isinstance(status.get("pid"), int) else None,
                "host": str(status["host"]) if status.get("host") is not None else None,
            })
            stale_s = _number(status.get("stale_s")) or 0.0
            if out["state"] == live_journal.RUNNING and stale_s > 0:
                out["state"] = "stale"
                out["message"] = (f"no status update for {stale_s:.0f} s: the campaign's process (pid {out['pid']} on "
                                  f"{out['host']}) is gone?")
            elif out["state"] == live_journal.RUNNING:
                run = status.get("run") if isinstance(status.get("run"), dict) else None
                where = f" ({out['position'][0]} of {out['position'][1]})" if out["position"] else ""
                out["message"] = f"running {run.get('procedure')}{where}" if run else "running"
            else:
                out["message"] = f"the campaign {out['state']}"
            return out
        if manifest is not None:
            live = any(_is_live(self.directory / name) for name in listing.partial)
            if live:
                out["state"], out["message"] = "running", "a run is being written (no live-status.json: no progress)"
            elif any(run.status == RUNNING for run in manifest.runs):
                out["state"], out["message"] = "interrupted", ("a run was left running and nothing writes it: "
                                                              "`nwlab campaign --resume` recovers it")
            else:
                out["state"], out["message"] = "finished", "no live-status.json: the campaign's last state as archived"
            return out
        out["message"] = f"no {MANIFEST_NAME} or {live_journal.STATUS_NAME} in this directory"
        return out


# --- helpers ---------------------------------------------------------------------------------------
def _entry(procedure: str, run_id: str | None, status: str, archive: str | None, started: str | None,
           finished: str | None, message: str) -> dict[str, Any]:
    return {"procedure": procedure, "run_id": run_id, "status": status, "archive": archive, "started": started,
            "finished": finished, "message": message or "", "fraction": None, "left_s": None, "problem": None,
            "results": [], "report_anchor": None, "figures": []}


def _file_view(run: LiveRun) -> dict[str, Any]:
    fields = run.fields
    view = {"run_id": fields.get("run_id") or None, "procedure": run.procedure,
            "status": "running" if run.partial else fields.get("exit_status", "unknown"),
            "message": fields.get("exit_message", ""), "started": fields.get("start_time") or None,
            "finished": fields.get("end_time") or None, "problem": None,
            "results": [] if run.partial else results_of(run), "figures": []}
    try:
        figures = figures_module.run_figures(run)
        json.dumps(figures, allow_nan=False)      # what the page gets has no NaN
        view["figures"] = figures
    except Exception as error:  # noqa: BLE001 - data the figures do not expect: say so, show the rest
        view["problem"] = f"{run.path.name}: its figures could not be drawn ({type(error).__name__}: {error})"
    return view


def results_of(run: LiveRun) -> list[dict[str, str]]:
    """The run's results as the report shows them (lab.app.report.values): each value and its
    uncertainty with their SI-prefixed unit; text results as they are."""
    data: RunData = run_from_stored(run.path, StoredRun(run.fields, run.quantities), data=False)
    hidden = companions(data.results)
    out = []
    for name, quantity in data.results.items():
        if quantity.is_text:
            out.append({"name": name, "value": str(quantity.value), "units": "", "uncertainty": ""})
            continue
        if name in hidden:
            continue
        shown = show(name, quantity, data)
        parts = []
        if shown.interval:
            parts.append(f"{with_unit(shown.interval, shown.unit)} ({shown.level})" if shown.level
                         else with_unit(shown.interval, shown.unit))
        if shown.standard:
            parts.append(f"standard uncertainty {with_unit(shown.standard, shown.unit)}")
        if shown.spread:
            parts.append(f"spread (σ) {with_unit(shown.spread, shown.unit)}")
        parts.append(shown.method)
        out.append({"name": name, "value": with_unit(shown.value, shown.unit), "units": quantity.units,
                    "uncertainty": "; ".join(p for p in parts if p)})
    return out


def _procedure_of(name: str) -> str | None:
    """The procedure in a run file's name (`<time>-<procedure>-<id>.h5[.partial]`)."""
    parts = name.split(".", 1)[0].split("-")
    return parts[1] if len(parts) >= 2 else None


def _run_id_time(iso: str) -> str:
    """An ISO time as a run id starts (`%Y%m%dT%H%M%S`, UTC; run ids sort by it), "" if none."""
    try:
        return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S")
    except (TypeError, ValueError):
        return ""


def _stat_key(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _is_live(path: Path) -> bool:
    try:
        return liveness.is_live(path)
    except OSError:
        return False


def _number(value: Any) -> float | None:
    """A finite number from the status, else None (the state has no NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _unix_s(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except (TypeError, ValueError):
        return None
