"""Fuzz: no input bytes crash a personality; every error is a standard code in the queue."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scpi_helpers import ask

from sim_backend.scpi.errors import STANDARD_ERRORS
from example_pulser import ExamplePulser

_HEADERS = [
    "VOLT", ":SOUR2:VOLT:OFFS", "SOURCE1:FREQ", "FUNC", "FUNC:PULS:WIDT", "BURS:NCYC", "OUTP2",
    "DATA:ARB", ":DIG", ":WAV:DATA", ":WAV:STR", "MEAS:VOLT", "*IDN", "*OPC", "*ESE", "*SRE",
    "*STB", "*ESR", "*CLS", "*RST", "*TRG", "*WAI", "*TST", "SYST:ERR", "SOUR9:VOLT", "NOPE",
]  # fmt: skip
_PARAMS = [
    "1", "-2.5e-3", "50NS", "2.5MV", "1KHZ", "MAX", "min", "DEF", "ON", "off", "PULS", "'w'",
    '"x""y"', "#13abc", "#0zz", "#H1F", "(@1,2)", "1e999", "", "CHAN2", "\xff", "'", "#9",
]  # fmt: skip


def _assert_healthy(device: ExamplePulser) -> None:
    for entry in device.status.errors:
        assert entry.code in STANDARD_ERRORS, entry
        assert entry.message.startswith(STANDARD_ERRORS[entry.code])
    assert len(device.status.errors) <= device.error_queue_size
    device.device_clear()
    assert ask(device, "*IDN?") == b"NWLAB,EXAMPLE-PG2,0001,1.0\n"
    for channel in device.channels.values():
        assert 1e-3 <= channel.amplitude_v <= 10 and -5 <= channel.offset_v <= 5
        assert channel.width_s < 1 / channel.frequency_hz


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_arbitrary_bytes_never_raise(chunks):
    device = ExamplePulser()
    for chunk in chunks:
        device.write_bytes(chunk)
        device.read_message()
    device.write_bytes(b"\n")
    _assert_healthy(device)


_unit = st.builds(
    lambda header, query, params, sep: header + ("?" if query else "") + (" " + sep.join(params) if params else ""),
    st.sampled_from(_HEADERS),
    st.booleans(),
    st.lists(st.sampled_from(_PARAMS), max_size=3),
    st.sampled_from([",", " , ", ",,"]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(_unit, min_size=1, max_size=4), max_size=6), st.sampled_from([b"\n", b"\r\n"]))
def test_command_like_messages_never_raise(messages, terminator):
    device = ExamplePulser()
    for units in messages:
        device.write_bytes(";".join(units).encode("latin-1") + terminator)
        answer = device.read_message()
        assert answer is None or answer.endswith(b"\n")
    _assert_healthy(device)
