"""`nwlab record --out T.jsonl -- COMMAND …`: run any Python program that speaks pyvisa (nwlab
itself, a QCoDeS or PyMeasure script, a notebook's kernel) and write every exchange with its
instruments to a transcript (`contracts.files.transcript`).

The program runs as a child process whose interpreter loads `sitecustomize` from a directory
this command puts first on PYTHONPATH; it calls `install`, which wraps the VISA library object
of every ResourceManager the program opens (any backend: the vendor's VISA, pyvisa-py, the
emulator), so that nothing in the program changes. The transcript is appended to as calls
return, so a program that crashes leaves every exchange before the crash recorded.
"""

from __future__ import annotations

import argparse
import functools
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from contracts.files.transcript import Event, header, text_of

#: The environment variable that tells a child interpreter where to record.
RECORD_ENV = "NWLAB_RECORD"

SITECUSTOMIZE = """\
import os
if os.environ.get("NWLAB_RECORD"):
    from lab.app.record import install
    install(os.environ["NWLAB_RECORD"])
"""


class Recorder:
    """Appends one line per VISA call to `path`, thread-safe, flushed per line."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lock = threading.Lock()
        self.started_s = time.monotonic()
        self.step = 0
        self.resources: dict[int, str] = {}
        if not self.path.exists() or self.path.stat().st_size == 0:    # else `nwlab record` wrote it
            self.path.write_text(header(program=shlex.join(sys.argv)) + "\n", encoding="utf-8")
        self.file = self.path.open("a", encoding="utf-8", buffering=1)

    def event(self, session: Any, op: str, **fields: Any) -> None:
        with self.lock:
            self.step += 1
            resource = fields.pop("resource", None) or self.resources.get(int(session), f"session {session}")
            line = Event(self.step, round(time.monotonic() - self.started_s, 6), resource, op, **fields).line()
            self.file.write(line + "\n")

    def wrap(self, visalib: Any) -> None:
        """Record every message-based call made through this library object (once)."""
        if getattr(visalib, "_nwlab_recorder", None) is not None:
            return
        visalib._nwlab_recorder = self
        calls = {name: getattr(visalib, name) for name in
                 ("open", "close", "write", "read", "clear", "read_stb", "assert_trigger", "set_attribute")}

        def opened(session, resource_name, *args, **kwargs):
            handle, status = calls["open"](session, resource_name, *args, **kwargs)
            self.resources[int(handle)] = str(resource_name)
            self.event(handle, "open", resource=str(resource_name), status=int(status))
            return handle, status

        def closed(session):
            status = calls["close"](session)
            if int(session) in self.resources:
                self.event(session, "close", status=int(status))
            return status

        def written(session, data):
            count, status = calls["write"](session, data)
            self.event(session, "write", data=text_of(data), status=int(status))
            return count, status

        def read(session, count):
            data, status = calls["read"](session, count)
            self.event(session, "read", data=text_of(data), count=int(count), status=int(status))
            return data, status

        def simple(name, session, *args):
            status = calls[name](session, *args)
            self.event(session, name, status=int(status))
            return status

        def stb(session):
            value, status = calls["read_stb"](session)
            self.event(session, "read_stb", value=value, status=int(status))
            return value, status

        def attribute(session, attribute, state):
            status = calls["set_attribute"](session, attribute, state)
            if int(session) in self.resources:
                value = state if isinstance(state, int | float | str | bool) else str(state)
                self.event(session, "set_attribute", attribute=int(attribute), value=value, status=int(status))
            return status

        visalib.open, visalib.close, visalib.write, visalib.read = opened, closed, written, read
        visalib.clear = functools.partial(simple, "clear")
        visalib.assert_trigger = functools.partial(simple, "assert_trigger")
        visalib.read_stb, visalib.set_attribute = stb, attribute


def install(path: str | Path) -> Recorder:
    """Record every VISA library this process opens from now on into `path`."""
    from pyvisa import highlevel

    recorder = Recorder(path)
    opener = highlevel.open_visa_library

    def open_and_record(specification: str = "") -> Any:
        library = opener(specification)
        recorder.wrap(library)
        return library

    highlevel.open_visa_library = open_and_record
    return recorder


# -- the command -------------------------------------------------------------------------------

def register(subparsers: argparse._SubParsersAction) -> None:
    record = subparsers.add_parser(
        "record", help="run a command and record its VISA exchanges to a transcript",
        description="Run COMMAND (any Python program using pyvisa: nwlab, a QCoDeS or PyMeasure script) "
                    "and write every VISA call it makes to a JSON-lines transcript, replayable with the "
                    "'<transcript>@replay' pyvisa backend and checkable with 'nwlab sim conform'.")
    record.add_argument("--out", required=True, help="transcript file to write (JSON lines)")
    record.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    record.set_defaults(handler=_record)


def _record(args: argparse.Namespace) -> int:
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        print("nwlab record: no command given (nwlab record --out T.jsonl -- COMMAND ...)", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    if out.exists():
        print(f"nwlab record: {out} exists; a transcript is never appended to or replaced", file=sys.stderr)
        return 2
    out.write_text(header(program=shlex.join(argv)) + "\n", encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="nwlab-record-") as hook:
        Path(hook, "sitecustomize.py").write_text(SITECUSTOMIZE)
        project = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join([hook, project, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env = {**os.environ, RECORD_ENV: str(out), "PYTHONPATH": path}
        returncode = subprocess.call(argv, env=env)
    events = len(out.read_text(encoding="utf-8").splitlines()) - 1
    print(f"transcript: {out} ({events} VISA calls)" if events else
          f"nwlab record: {argv[0]} made no VISA call; {out} holds the header only", file=sys.stderr)
    return returncode
