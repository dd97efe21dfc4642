"""VISA transcripts: every exchange of a pyvisa program with its instruments, one JSON object per
line — what `nwlab record` writes, the `@replay` backend serves and `nwlab sim conform` checks.

The first line is the header, `{"format": "nwlab-visa-transcript", "version": 1, ...}`; then one
event per line, in the order the program made the calls:

    {"step": 3, "t_s": 0.0123, "resource": "GPIB0::7::INSTR", "op": "write", "data": "*IDN?\\n"}
    {"step": 4, "t_s": 0.0131, "resource": "GPIB0::7::INSTR", "op": "read", "count": 20480,
     "data": "KEYSIGHT,...\\n", "status": 0}

`op` is open, close, write, read, clear, read_stb (`value`), assert_trigger or set_attribute
(`attribute`, `value`); `data` holds the bytes as Latin-1 text (JSON escapes what is not
printable), `status` the VISA status code of the call, `t_s` the time since the first call.
An instrument's identity is the reply to the first `*IDN?` written to it (`identities`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "nwlab-visa-transcript"
VERSION = 1
OPS = ("open", "close", "write", "read", "clear", "read_stb", "assert_trigger", "set_attribute")


class TranscriptError(ValueError):
    """A transcript file that cannot be read: the message names the file and the line."""


@dataclass(frozen=True)
class Event:
    step: int
    t_s: float
    resource: str
    op: str
    data: str = ""                 # bytes as Latin-1 text (write, read)
    status: int = 0                # the call's VISA status code
    count: int = 0                 # read: the byte count asked for
    value: Any = None              # read_stb: the status byte; set_attribute: the value
    attribute: int = 0             # set_attribute: the VISA attribute

    @property
    def raw(self) -> bytes:
        return self.data.encode("latin-1")

    def line(self) -> str:
        fields = {k: v for k, v in asdict(self).items()
                  if v not in ("", None) and (k not in ("count", "attribute") or v)}
        fields.setdefault("status", self.status)
        return json.dumps(fields, ensure_ascii=True)


def text_of(data: bytes) -> str:
    return bytes(data).decode("latin-1")


@dataclass
class Transcript:
    events: list[Event] = field(default_factory=list)
    header: dict[str, Any] = field(default_factory=dict)

    def by_resource(self) -> dict[str, list[Event]]:
        sessions: dict[str, list[Event]] = {}
        for event in self.events:
            sessions.setdefault(event.resource, []).append(event)
        return sessions

    def identities(self) -> dict[str, str]:
        """resource -> the reply to the first `*IDN?` written to it (without its terminator)."""
        found: dict[str, str] = {}
        for events in self.by_resource().values():
            for index, event in enumerate(events):
                if event.op == "write" and event.data.strip().upper() == "*IDN?":
                    reply = next((e for e in events[index + 1:] if e.op == "read"), None)
                    if reply is not None and event.resource not in found:
                        found[event.resource] = reply.data.strip()
        return found


def header(**extra: Any) -> str:
    return json.dumps({"format": FORMAT, "version": VERSION, **extra})


def read_transcript(path: str | Path) -> Transcript:
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise TranscriptError(f"{path}: cannot read the transcript ({error})") from None
    if not lines:
        raise TranscriptError(f"{path}: empty; a transcript starts with its header line")
    head = _parse(path, 1, lines[0])
    if head.get("format") != FORMAT:
        raise TranscriptError(f"{path}:1: not a VISA transcript (its header has no \"format\": \"{FORMAT}\")")
    if head.get("version") != VERSION:
        raise TranscriptError(f"{path}:1: transcript version {head.get('version')!r}; this nwlab reads {VERSION}")
    return Transcript(list(_events(path, lines[1:])), head)


def _events(path: Path, lines: Iterable[str]) -> Iterator[Event]:
    known = set(Event.__dataclass_fields__)
    for number, text in enumerate(lines, start=2):
        if not text.strip():
            continue
        fields = _parse(path, number, text)
        unknown = sorted(set(fields) - known)
        if unknown or fields.get("op") not in OPS or not isinstance(fields.get("resource"), str):
            why = (f"unknown field {unknown[0]!r}" if unknown else f"op must be one of {', '.join(OPS)}"
                   if fields.get("op") not in OPS else "no resource")
            raise TranscriptError(f"{path}:{number}: {why}")
        try:
            yield Event(**fields)
        except TypeError as error:
            raise TranscriptError(f"{path}:{number}: {error}") from None


def _parse(path: Path, number: int, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise TranscriptError(f"{path}:{number}: not JSON ({error.msg})") from None
    if not isinstance(value, dict):
        raise TranscriptError(f"{path}:{number}: a line must be a JSON object")
    return value
