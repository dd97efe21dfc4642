"""viRead semantics of the in-process backend under arbitrary reply contents and read sizes."""

from __future__ import annotations

import pyvisa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyvisa.constants import StatusCode
from stand_in import EchoInstrument

pytestmark = pytest.mark.timeout(60)

END, TERMCHAR, MAX = (StatusCode.success, StatusCode.success_termination_character_read,
                      StatusCode.success_max_count_read)


class OneReply(EchoInstrument):
    """Answers any message with a preset reply."""

    reply = b""

    def write_bytes(self, data: bytes) -> None:
        self._output.append(self.reply)


@pytest.fixture
def session(make_bench):
    device = OneReply()
    path, _ = make_bench({"GPIB::1::INSTR": device})
    rm = pyvisa.ResourceManager(f"{path}@nwlab")
    res = rm.open_resource("GPIB0::1::INSTR", timeout=100)
    return rm.visalib, res, device


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reply=st.binary(min_size=1, max_size=600), sizes=st.lists(st.integers(1, 97), min_size=1),
       use_termchar=st.booleans())
def test_reads_reassemble_the_reply(session, reply, sizes, use_termchar):
    lib, res, device = session
    res.set_visa_attribute(pyvisa.constants.ResourceAttribute.termchar_enabled, use_termchar)
    device.reply = reply
    res.write_raw(b"Q\n")
    got = bytearray()
    status = None
    with res.ignore_warning(MAX, TERMCHAR):
        for i in range(len(reply)):
            count = sizes[i % len(sizes)]
            chunk, status = lib.read(res.session, count)
            got += chunk
            assert 0 < len(chunk) <= count
            if status == MAX:
                assert len(chunk) == count
            elif status == TERMCHAR:
                assert use_termchar and chunk.endswith(b"\n") and b"\n" not in chunk[:-1]
            if status == END:
                break
            if use_termchar:
                assert b"\n" not in chunk[:-1]
    assert status == END
    assert bytes(got) == reply
