"""In-process pyvisa backend: `pyvisa.ResourceManager("<station.yaml>[#<bench-id>]@nwlab")`.

pyvisa keeps one library object per library path, and this backend keeps one bench per
library, so each distinct path (say `"station.yaml#test-42"`) is an isolated emulated bench.
`"@nwlab"` alone is the embedded default station. Sessions dispatch to `VisaSession`.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from typing import Any

from pyvisa import constants, highlevel, rname
from pyvisa.constants import StatusCode
from pyvisa.typing import VISAEventContext, VISARMSession, VISASession
from pyvisa.util import LibraryPath

from contracts.files.addresses import canonical_resource_name
from sim_backend.transport._bench_lookup import (
    BenchLike,
    device_table,
    faults_for,
    lookup_key,
    open_bench,
)
from sim_backend.transport.visa_session import VisaSession

#: Library path pyvisa passes when none is given ("@nwlab"): the embedded default station.
_DEFAULT_PATH = "<embedded default station>"

_MESSAGE_BASED = {"INSTR", "SOCKET"}


class NwlabVisaLibrary(highlevel.VisaLibraryBase):
    """A VISA library whose instruments are the emulated bench named by `library_path`."""

    bench: BenchLike
    sessions: dict[int, VisaSession]

    @staticmethod
    def get_library_paths() -> Iterable[LibraryPath]:
        return (LibraryPath(_DEFAULT_PATH, "nwlab default station"),)

    @staticmethod
    def get_debug_info() -> dict[str, str]:
        return {"backend": "nwlab emulated bench (in-process)"}

    def _init(self) -> None:
        path = str(self.library_path)
        # Open the bench now, so a wrong station path fails at ResourceManager(...).
        self.bench = open_bench("" if path == _DEFAULT_PATH else path)
        self.sessions = {}
        self._rm_sessions: set[int] = set()
        self._handles = itertools.count(1000)
        self._guard = threading.Lock()

    def _new_handle(self) -> int:
        with self._guard:
            return next(self._handles)

    def _session(self, session: Any) -> VisaSession | None:
        return self.sessions.get(session)

    # -- resource manager ------------------------------------------------------------------

    def open_default_resource_manager(self) -> tuple[VISARMSession, StatusCode]:
        handle = self._new_handle()
        self._rm_sessions.add(handle)
        return VISARMSession(handle), self.handle_return_value(None, StatusCode.success)

    def list_resources(
        self, session: VISARMSession, query: str = "?*::INSTR"
    ) -> tuple[str, ...]:
        names = [entry.name for entry in device_table(self.bench).values()]
        return tuple(rname.filter(names, query))

    def parse_resource_extended(
        self, session: VISARMSession, resource_name: str
    ) -> tuple[highlevel.ResourceInfo, StatusCode]:
        # pyvisa picks the resource class from this; accept every VISA spelling of a name.
        try:
            resource_name = canonical_resource_name(resource_name)
        except rname.InvalidResourceName:
            pass  # the base class reports it
        return super().parse_resource_extended(session, resource_name)

    def open(
        self,
        session: VISARMSession,
        resource_name: str,
        access_mode: constants.AccessModes = constants.AccessModes.no_lock,
        open_timeout: int | None = constants.VI_TMO_IMMEDIATE,
    ) -> tuple[VISASession, StatusCode]:
        try:
            name = canonical_resource_name(resource_name)
        except rname.InvalidResourceName:
            return VISASession(0), self.handle_return_value(
                None, StatusCode.error_invalid_resource_name
            )
        parsed = rname.parse_resource_name(name)
        found = device_table(self.bench).get(lookup_key(name))
        if found is None or parsed.resource_class not in _MESSAGE_BASED:
            return VISASession(0), self.handle_return_value(
                None, StatusCode.error_resource_not_found
            )
        bench, key = self.bench, found.bench_key
        sess = VisaSession(parsed, found.device, bench.lock, lambda: faults_for(bench, key))
        handle = self._new_handle()
        self.sessions[handle] = sess
        return VISASession(handle), self.handle_return_value(handle, StatusCode.success)

    def close(
        self, session: VISASession | VISARMSession | VISAEventContext
    ) -> StatusCode:
        if session in self._rm_sessions:
            self._rm_sessions.discard(session)
            return self.handle_return_value(None, StatusCode.success)
        if self.sessions.pop(session, None) is None:
            return self.handle_return_value(session, StatusCode.error_invalid_object)
        return StatusCode.success

    # -- message-based I/O -----------------------------------------------------------------

    def read(self, session: VISASession, count: int) -> tuple[bytes, StatusCode]:
        sess = self._session(session)
        if sess is None:
            return b"", self.handle_return_value(session, StatusCode.error_invalid_object)
        data, status = sess.read(count)
        return data, self.handle_return_value(session, status)

    def write(self, session: VISASession, data: bytes) -> tuple[int, StatusCode]:
        sess = self._session(session)
        if sess is None:
            return 0, self.handle_return_value(session, StatusCode.error_invalid_object)
        written, status = sess.write(data)
        return written, self.handle_return_value(session, status)

    def buffer_read(self, session: VISASession, count: int) -> tuple[bytes, StatusCode]:
        return self.read(session, count)

    def buffer_write(self, session: VISASession, data: bytes) -> tuple[int, StatusCode]:
        return self.write(session, data)

    def _call(self, session: Any, operation: str, *args: Any) -> StatusCode:
        sess = self._session(session)
        if sess is None:
            return self.handle_return_value(session, StatusCode.error_invalid_object)
        return self.handle_return_value(session, getattr(sess, operation)(*args))

    def clear(self, session: VISASession) -> StatusCode:
        return self._call(session, "clear")

    def flush(self, session: VISASession, mask: constants.BufferOperation) -> StatusCode:
        return self._call(session, "flush", int(mask))

    def assert_trigger(
        self, session: VISASession, protocol: constants.TriggerProtocol
    ) -> StatusCode:
        return self._call(session, "assert_trigger")

    def read_stb(self, session: VISASession) -> tuple[int, StatusCode]:
        sess = self._session(session)
        if sess is None:
            return 0, self.handle_return_value(session, StatusCode.error_invalid_object)
        stb, status = sess.read_stb()
        return stb, self.handle_return_value(session, status)

    # -- attributes and events ---------------------------------------------------------------

    def get_attribute(
        self,
        session: VISASession | VISARMSession | VISAEventContext,
        attribute: constants.ResourceAttribute | constants.EventAttribute,
    ) -> tuple[Any, StatusCode]:
        sess = self._session(session)
        if sess is None:
            return None, self.handle_return_value(session, StatusCode.error_invalid_object)
        value, status = sess.get_attribute(attribute)  # type: ignore[arg-type]
        return value, self.handle_return_value(session, status)

    def set_attribute(
        self,
        session: VISASession,
        attribute: constants.ResourceAttribute,
        attribute_state: Any,
    ) -> StatusCode:
        return self._call(session, "set_attribute", attribute, attribute_state)

    def disable_event(
        self,
        session: VISASession,
        event_type: constants.EventType,
        mechanism: constants.EventMechanism,
    ) -> StatusCode:
        # No events are ever enabled, so disabling them all succeeds trivially.
        return StatusCode.success

    def discard_events(
        self,
        session: VISASession,
        event_type: constants.EventType,
        mechanism: constants.EventMechanism,
    ) -> StatusCode:
        return StatusCode.success
