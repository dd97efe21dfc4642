"""Replay pyvisa backend: `pyvisa.ResourceManager("<transcript.jsonl>@replay")` serves a recorded
session (`nwlab record`) back to the program that made it, with no instrument.

Strict: each resource's calls must come in the recorded order, a write must carry the recorded
bytes, and a read gets the recorded bytes and status (a recorded timeout is a timeout again,
at once). Anything else raises `ReplayMismatch`, naming the transcript line, what the recording
holds there and what the program did: a recorded lab session becomes a regression test of
drivers and procedures. One allowance: a poll (the same query written again, as a driver does
while it waits for an acquisition or a temperature) may repeat more or fewer times than when
recorded; the extra ones get the last reply again, the missing ones are skipped. Attributes
(timeouts, termination) are kept per session and never compared: they shape how the program
reads, not what it says. Opens and closes are not compared either: a driver that reconnects
differently still says the same things.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from pyvisa import constants, highlevel, rname
from pyvisa.constants import StatusCode
from pyvisa.typing import VISAEventContext, VISARMSession, VISASession
from pyvisa.util import LibraryPath

from contracts.files.addresses import canonical_resource_name
from contracts.files.transcript import Event, read_transcript
from sim_backend.transport.visa_attributes import default_attributes

#: The calls compared in order (opens, closes and attributes are not).
_COMPARED = ("write", "read", "clear", "read_stb", "assert_trigger")


class ReplayMismatch(AssertionError):
    """The program did not do what the transcript recorded at that step."""


class _Script:
    """One resource's recorded calls and how far the program has come through them."""

    def __init__(self, path: str, events: list[Event]) -> None:
        self.path = path
        self.events = [e for e in events if e.op in _COMPARED]
        self.at = 0
        self.last_write: Event | None = None
        self.last_read: Event | None = None
        self.repeating = False            # the program polls once more than recorded

    def _where(self, event: Event | None) -> str:
        if event is None:
            return f"{self.path}: after the last recorded call"
        return f"{self.path} step {event.step}"

    def _next(self) -> Event | None:
        return self.events[self.at] if self.at < len(self.events) else None

    def _skip_recorded_polls(self) -> None:
        """The program stopped polling earlier than the recording: pass the recorded repeats."""
        while (self.last_write is not None and (event := self._next()) is not None and event.op == "write"
               and event.data == self.last_write.data and self.at + 1 < len(self.events)
               and self.events[self.at + 1].op == "read"):
            self.at += 2

    def write(self, data: bytes) -> Event:
        text = data.decode("latin-1")
        expected = self._next()
        if expected is not None and expected.op == "write" and expected.data == text:
            self.at += 1
            self.last_write, self.repeating = expected, False
            return expected
        if self.last_write is not None and text == self.last_write.data and self.last_read is not None:
            self.repeating = True          # one more poll than recorded: its reply again
            return self.last_write
        self._skip_recorded_polls()
        expected = self._next()
        if expected is not None and expected.op == "write" and expected.data == text:
            return self.write(data)
        raise ReplayMismatch(f"{self._where(expected)}: recorded {_describe(expected)}, "
                             f"the program wrote {text!r}")

    def read(self) -> Event:
        if self.repeating and self.last_read is not None:
            self.repeating = False
            return self.last_read
        expected = self._next()
        if expected is None or expected.op != "read":
            raise ReplayMismatch(f"{self._where(expected)}: recorded {_describe(expected)}, the program read")
        self.at += 1
        self.last_read = expected
        return expected

    def other(self, op: str) -> Event:
        self._skip_recorded_polls()
        expected = self._next()
        if expected is None or expected.op != op:
            raise ReplayMismatch(f"{self._where(expected)}: recorded {_describe(expected)}, the program "
                                 f"called {op}")
        self.at += 1
        return expected


def _describe(event: Event | None) -> str:
    if event is None:
        return "nothing more"
    if event.op == "write":
        return f"a write of {event.data!r}"
    if event.op == "read":
        return f"a read (reply {event.data!r})"
    return f"a {event.op}"


class _Session:
    def __init__(self, parsed: rname.ResourceName, script: _Script) -> None:
        self.attributes = default_attributes(parsed)
        self.script = script
        self.unread = b""                  # the rest of a recorded reply longer than a read asked for


class ReplayVisaLibrary(highlevel.VisaLibraryBase):
    """A VISA library whose instruments are the transcript named by `library_path`."""

    sessions: dict[int, _Session]

    @staticmethod
    def get_library_paths() -> Iterable[LibraryPath]:
        return ()

    @staticmethod
    def get_debug_info() -> dict[str, str]:
        return {"backend": "nwlab transcript replay"}

    def _init(self) -> None:
        path = str(self.library_path)
        transcript = read_transcript(path)
        self.scripts = {canonical_resource_name(resource): _Script(path, events)
                        for resource, events in transcript.by_resource().items()}
        self.sessions = {}
        self._handles = itertools.count(1)
        self._rm_sessions: set[int] = set()

    def open_default_resource_manager(self) -> tuple[VISARMSession, StatusCode]:
        handle = next(self._handles)
        self._rm_sessions.add(handle)
        return VISARMSession(handle), StatusCode.success

    def list_resources(self, session: VISARMSession, query: str = "?*::INSTR") -> tuple[str, ...]:
        return tuple(self.scripts)

    def open(self, session: VISARMSession, resource_name: str,
             access_mode: constants.AccessModes = constants.AccessModes.no_lock,
             open_timeout: int | None = constants.VI_TMO_IMMEDIATE) -> tuple[VISASession, StatusCode]:
        try:
            name = canonical_resource_name(resource_name)
        except rname.InvalidResourceName:
            return VISASession(0), self.handle_return_value(None, StatusCode.error_invalid_resource_name)
        script = self.scripts.get(name)
        if script is None:
            return VISASession(0), self.handle_return_value(None, StatusCode.error_resource_not_found)
        handle = next(self._handles)
        self.sessions[handle] = _Session(rname.parse_resource_name(name), script)
        return VISASession(handle), self.handle_return_value(handle, StatusCode.success)

    def close(self, session: VISASession | VISARMSession | VISAEventContext) -> StatusCode:
        self._rm_sessions.discard(session)
        self.sessions.pop(session, None)
        return StatusCode.success

    def write(self, session: VISASession, data: bytes) -> tuple[int, StatusCode]:
        event = self.sessions[session].script.write(bytes(data))
        return len(data), self.handle_return_value(session, StatusCode(event.status))

    def read(self, session: VISASession, count: int) -> tuple[bytes, StatusCode]:
        sess = self.sessions[session]
        if sess.unread:
            data, sess.unread = sess.unread[:count], sess.unread[count:]
            return data, StatusCode.success_max_count_read if sess.unread else StatusCode.success
        event = sess.script.read()
        data, sess.unread = event.raw[:count], event.raw[count:]
        status = StatusCode.success_max_count_read if sess.unread else StatusCode(event.status)
        return data, self.handle_return_value(session, status)

    def buffer_read(self, session: VISASession, count: int) -> tuple[bytes, StatusCode]:
        return self.read(session, count)

    def buffer_write(self, session: VISASession, data: bytes) -> tuple[int, StatusCode]:
        return self.write(session, data)

    def clear(self, session: VISASession) -> StatusCode:
        self.sessions[session].unread = b""
        return StatusCode(self.sessions[session].script.other("clear").status)

    def flush(self, session: VISASession, mask: constants.BufferOperation) -> StatusCode:
        return StatusCode.success

    def assert_trigger(self, session: VISASession, protocol: constants.TriggerProtocol) -> StatusCode:
        return StatusCode(self.sessions[session].script.other("assert_trigger").status)

    def read_stb(self, session: VISASession) -> tuple[int, StatusCode]:
        event = self.sessions[session].script.other("read_stb")
        return int(event.value or 0), StatusCode(event.status)

    def get_attribute(self, session: Any, attribute: constants.ResourceAttribute) -> tuple[Any, StatusCode]:
        sess = self.sessions.get(session)
        if sess is None or attribute not in sess.attributes:
            return None, StatusCode.error_nonsupported_attribute
        return sess.attributes[attribute], StatusCode.success

    def set_attribute(self, session: VISASession, attribute: constants.ResourceAttribute,
                      attribute_state: Any) -> StatusCode:
        sess = self.sessions.get(session)
        if sess is not None:
            sess.attributes[attribute] = attribute_state
        return StatusCode.success

    def disable_event(self, session: VISASession, event_type: constants.EventType,
                      mechanism: constants.EventMechanism) -> StatusCode:
        return StatusCode.success

    def discard_events(self, session: VISASession, event_type: constants.EventType,
                       mechanism: constants.EventMechanism) -> StatusCode:
        return StatusCode.success
