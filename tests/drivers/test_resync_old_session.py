"""A raw socket has no device clear: what an interrupted exchange wrote may still be on its way
to the instrument when the driver opens a new session, and the instrument runs it whenever it
arrives, after the new session's commands if it comes late. Before the driver opens the new
session it must know the old one's bytes have run.

Real driver, real pyvisa-py socket, the emulator's TCP server; between them a proxy on
127.0.0.1 that delivers the first connection's bytes late once told to (a congested or slow
link), as a loaded machine did by chance once in a CI run.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from driver_helpers import ENVELOPES, ask_cut, faults_of

from drivers.keithley_2450 import Keithley2450

BIAS_MAX_A = ENVELOPES["bias"].limits["bias_current_max_a"]
RAMP_A_PER_S = ENVELOPES["bias"].limits["bias_ramp_max_a_per_s"]
LATE_S = 0.3  # how late the first connection's bytes arrive once the proxy is told to hold them


class LateLinkProxy:
    """Forwards TCP connections to `target`; connection number `late_connection`'s (0: the
    first) client-to-instrument bytes arrive `late_s` late once `late` is set, in order, and its
    upstream end closes only after they are delivered (a middlebox that holds what it took)."""

    def __init__(self, target: tuple[str, int], late_s: float = LATE_S, late_connection: int = 0) -> None:
        self._target = target
        self.late_s, self.late_connection = late_s, late_connection
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.late = threading.Event()
        self._connections = 0
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = [self._listener]
        self._start(self._accept)

    def _start(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            self._sockets += [client, upstream]
            slowed = self._connections == self.late_connection
            self._connections += 1
            self._start(self._forward, client, upstream, slowed)
            self._start(self._forward, upstream, client, False)

    def _forward(self, source: socket.socket, sink: socket.socket, may_be_late: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if may_be_late and self.late.is_set():
                    if self.late_s == math.inf:
                        continue                   # an outage: never delivered
                    time.sleep(self.late_s)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self) -> None:
        for sock in self._sockets:
            try:
                sock.close()
            except OSError:
                pass


@pytest.fixture
def late_smu(bench) -> Iterator[Callable[..., tuple[Keithley2450, LateLinkProxy]]]:
    """`late_smu(late_s, late_connection, timeout_ms)`: the SMU driver through a LateLinkProxy."""
    from sim_backend.transport.bench_server import BenchServer

    server = BenchServer(bench).start()
    served = next(s for s in server.instruments if s.role == "bias")
    host, port = served.server.visa_address.split("::")[1:3]
    made: list[tuple[Keithley2450, LateLinkProxy]] = []

    def make(late_s: float = LATE_S, late_connection: int = 0, timeout_ms: int = 5000):
        proxy = LateLinkProxy((host, int(port)), late_s, late_connection)
        driver = Keithley2450(f"bias_late_{len(made)}", f"TCPIP::127.0.0.1::{proxy.port}::SOCKET", visalib="@py",
                              envelope=ENVELOPES["bias"])
        made.append((driver, proxy))
        driver.visa_handle.timeout = timeout_ms
        driver.set_compliance_v(0.5)
        return driver, proxy

    try:
        yield make
    finally:
        for driver, proxy in made:
            driver.close()
            proxy.close()
        server.stop()


@pytest.fixture
def proxied_smu(late_smu) -> tuple[Keithley2450, LateLinkProxy]:
    return late_smu()


def _cut_after_the_level_write(driver: Keithley2450, proxy: LateLinkProxy, level_a: float,
                               above_a: float = 0.0) -> None:
    """Set `level_a`; from its first level write above `above_a` on the link is late, and the
    first read after that write is interrupted (a Ctrl-C), its reply left unread."""
    handle = driver.visa_handle
    original_write, original_read = handle.write, handle.read
    written = threading.Event()

    def write(message, *args, **kwargs):
        if message.upper().startswith(":SOUR:CURR ") and abs(float(message.split()[-1])) > above_a:
            proxy.late.set()
            written.set()
        return original_write(message, *args, **kwargs)

    def read(*args, **kwargs):
        if written.is_set():
            raise KeyboardInterrupt("cut")
        return original_read(*args, **kwargs)

    handle.write, handle.read = write, read
    try:
        with pytest.raises(KeyboardInterrupt):
            driver.set_current_a(level_a, ramp_a_per_s=RAMP_A_PER_S)
    finally:
        handle.write, handle.read = original_write, original_read
    assert written.is_set(), "the level was never written: the test cut nothing"


def test_safe_state_after_a_cut_level_write_on_a_late_link_ends_at_zero(bench, proxied_smu):
    """The level write of the interrupted exchange reaches the instrument late. Safe state
    after it must still leave the source at 0 A with the output off: the late level must have
    run before safe state's zero, not after it."""
    driver, proxy = proxied_smu
    driver.set_output_enabled(True)
    _cut_after_the_level_write(driver, proxy, 0.4 * BIAS_MAX_A)
    driver.safe_state()
    time.sleep(2 * LATE_S)   # anything still on its way has arrived and run
    panel = bench.world.panels["bias"]
    assert (panel.current_level_a, panel.output_enabled) == (0.0, False)


def test_a_level_set_after_a_cut_level_write_on_a_late_link_is_the_one_that_stays(bench, proxied_smu):
    """After the interrupted exchange the next bias change is the level the source holds, not
    the late one of the exchange that was cut."""
    driver, proxy = proxied_smu
    driver.set_output_enabled(True)
    _cut_after_the_level_write(driver, proxy, 0.4 * BIAS_MAX_A)
    driver.set_current_a(0.1 * BIAS_MAX_A, ramp_a_per_s=RAMP_A_PER_S)
    time.sleep(2 * LATE_S)
    assert bench.world.panels["bias"].current_level_a == pytest.approx(0.1 * BIAS_MAX_A)


def test_a_level_arriving_after_safe_state_is_not_switched_on(bench, late_smu):
    """The link is later than the VISA timeout (bytes 2 s late, 0.3 s timeout): the old session
    never confirms, and a level of the cut ramp (20 -> 21 uA) runs after safe state's zero
    (the proxy holds what it took, as a middlebox may). Switching the output on again must not
    step to that level: the ramp finds the reading disagreeing with the 0 A it commanded and
    writes 0 A before the output goes on."""
    from driver_helpers import largest_rise_a, trace_smu

    driver, proxy = late_smu(late_s=2.0, timeout_ms=300)
    driver.set_output_enabled(True)
    driver.set_current_a(20e-6, ramp_a_per_s=RAMP_A_PER_S)
    _cut_after_the_level_write(driver, proxy, 25e-6, above_a=20e-6)
    driver.safe_state()
    time.sleep(2.5)                                       # the late 21 uA has run by now
    events = trace_smu(bench)
    driver.set_output_enabled(True)
    assert largest_rise_a(events) <= driver._largest_step_a() * (1 + 1e-9), [a for _, a in events]
    assert bench.world.panels["bias"].current_level_a == 0.0


def test_a_late_step_after_a_link_lost_in_safe_state_still_runs_before_its_zero(bench, late_smu, monkeypatch):
    """On at 20 uA. Safe state: its first reply is dropped (a lost link: the role settings stay
    pending while safe state runs); the ramp down's step to 15 uA is cut by a Ctrl-C on the
    reopened link, 1.5 s late (timeout 3 s). The second safe state must still wait for the old
    session before its own writes: the late 15 uA must not come after its zero."""
    import pyvisa.resources.messagebased as messagebased

    from sim_backend.faults.plan import drop

    driver, proxy = late_smu(late_s=1.5, late_connection=1, timeout_ms=3000)
    driver.set_output_enabled(True)
    driver.set_current_a(20e-6, ramp_a_per_s=RAMP_A_PER_S)
    faults_of(bench, "bias").inject(drop())
    write, read = messagebased.MessageBasedResource.write, messagebased.MessageBasedResource.read
    cut = {"armed": False, "fired": False}

    def late_write(resource, message, *args, **kwargs):       # on whichever session is open
        if not cut["fired"] and message.upper().startswith(":SOUR:CURR 1.5E-05"):
            proxy.late.set()
            cut["armed"] = True
        return write(resource, message, *args, **kwargs)

    def cut_read(resource, *args, **kwargs):
        if cut["armed"] and not cut["fired"]:
            cut["fired"] = True
            raise KeyboardInterrupt("cut")
        return read(resource, *args, **kwargs)

    monkeypatch.setattr(messagebased.MessageBasedResource, "write", late_write)
    monkeypatch.setattr(messagebased.MessageBasedResource, "read", cut_read)
    with pytest.raises(KeyboardInterrupt):
        driver.safe_state()
    assert cut["fired"] and driver.links_lost == 1
    driver.safe_state()
    time.sleep(2.0)
    panel = bench.world.panels["bias"]
    assert (panel.current_level_a, panel.output_enabled) == (0.0, False)


def test_a_reply_late_twice_is_never_read_as_a_later_answer(bench, connect):
    """A level query's reply comes late (0.45 s, timeout 0.3 s) on the first try and again on the
    retry after the reconnect. The error queue read after the failed retry must not take the
    late reply for an entry (each later reply would be read as the answer to the query before):
    the next level query gets a level."""
    import re

    from drivers._common import InstrumentConnectionError, InstrumentError
    from sim_backend.faults.plan import DELIVER, delay

    driver = connect("bias", Keithley2450, envelope=ENVELOPES["bias"])
    driver.set_compliance_v(0.5)
    driver.timeout(0.3)
    level = re.compile(rb"^[+-]?\d\.\d+E[+-]\d+")
    late = [2]

    def before_reply(message: bytes):
        if late[0] and level.match(message):
            late[0] -= 1
            return delay(0.45)
        return DELIVER

    faults_of(bench, "bias").before_reply = before_reply
    with pytest.raises((InstrumentConnectionError, InstrumentError)):
        driver.ask(":SOUR:CURR?")
    time.sleep(0.5)
    answer = driver.ask(":SOUR:CURR?")
    assert level.match(answer.encode()), f":SOUR:CURR? answered {answer!r}"


def test_safe_state_whose_switch_off_is_lost_in_an_outage_switches_off_again(bench, late_smu):
    """On at 5 uA. The link goes down as safe state writes `:OUTP OFF` (nothing written on that
    connection arrives any more; a new one works): the error-queue read after it times out, the
    old session never answers and is reset, and the report read on the new session is clean. The
    switch-off's own report was lost, so the output may still be on: safe state must write it
    again, not return with the output on at 0 A."""
    driver, proxy = late_smu(late_s=math.inf, timeout_ms=300)
    driver.set_output_enabled(True)
    driver.set_current_a(5e-6, ramp_a_per_s=RAMP_A_PER_S)
    handle = driver.visa_handle
    original_write = handle.write

    def write(message, *args, **kwargs):
        if message.upper().startswith(":OUTP OFF"):
            proxy.late.set()
        return original_write(message, *args, **kwargs)

    handle.write = write
    driver.safe_state()
    panel = bench.world.panels["bias"]
    assert (panel.output_enabled, panel.current_level_a) == (False, 0.0)
    assert driver.write_guard.state.get("output_on") is False


class TestLeftoverReply:
    @pytest.fixture
    def bench_models(self) -> dict[str, str]:
        return {"scope": "keysight_infiniium"}

    @pytest.fixture
    def transport(self) -> str:
        return "tcp"    # a raw socket: the in-process scope is a VXI-11 instrument, with a device clear

    def test_a_binary_reply_left_unread_is_passed_over_without_counting_the_link_lost(self, connect, bench):
        """The reply left unread by an interrupt is a block of bytes with line feeds in it, one
        line of four numbers, one of four fields with no maker's name: none is taken for the old
        session's identification, the one that is ends the wait, and the link counts as kept
        (a resynchronisation, no settings written again)."""
        from drivers.keysight_infiniium import KeysightInfiniium
        from contracts.envelope import Envelope
        from sim_backend.faults.plan import garble

        scope = connect("scope", KeysightInfiniium, envelope=Envelope("oscilloscope", {"input_range_max_v": 2.0}))
        leftover = b"#18\x01\n\x02\xff\x00\n1.0,2.0,3.0,4.0\n\x02,a,b,c\n"
        faults_of(bench, "scope").inject(garble(leftover))
        ask_cut(scope, "*IDN?")                     # before a byte of the reply is read
        identity = scope.ask("*IDN?")
        assert identity.count(",") == 3 and "KEYSIGHT" in identity.upper(), f"*IDN? answered {identity!r}"
        assert (scope.resynchronisations, scope.links_lost) == (1, 0)
