"""The in-process pyvisa backend: `ResourceManager("<path>@nwlab")` against stand-in devices."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import pyvisa
from pyvisa import constants
from pyvisa.constants import StatusCode
from stand_in import EchoInstrument, block_payload

pytestmark = pytest.mark.timeout(30)


def open_echo(make_bench, **resource_options):
    path, bench = make_bench()
    rm = pyvisa.ResourceManager(f"{path}@nwlab")
    options = dict(read_termination="\n", write_termination="\n", timeout=200)
    options.update(resource_options)
    return rm, rm.open_resource("GPIB0::12::INSTR", **options), bench


def test_backend_is_selected_by_name_and_lists_the_bench(make_bench):
    path, bench = make_bench({
        "GPIB::12::INSTR": EchoInstrument(),
        "TCPIP::10.0.0.5::5025::SOCKET": EchoInstrument(),
        "usb::2391::6038::MY1::instr": EchoInstrument(),
    })
    rm = pyvisa.ResourceManager(f"{path}@nwlab")
    assert type(rm.visalib).__name__ == "NwlabVisaLibrary"
    assert set(rm.list_resources("?*")) == {
        "GPIB0::12::INSTR",
        "TCPIP0::10.0.0.5::5025::SOCKET",
        "USB0::0x0957::0x1796::MY1::0::INSTR",
    }
    assert rm.list_resources() == ("GPIB0::12::INSTR", "USB0::0x0957::0x1796::MY1::0::INSTR")
    # Any VISA spelling of the address reaches the same instrument.
    usb = rm.open_resource("USB0::0x0957::0x1796::MY1::INSTR", read_termination="\n")
    assert usb.resource_name == "USB0::0x0957::0x1796::MY1::0::INSTR"
    assert usb.query("*IDN?") == "NWLAB,ECHO,0,1.0"


def test_addresses_match_case_blind(make_bench):
    # The station loader upper-cases addresses; drivers write them as they like.
    path, _ = make_bench({"TCPIP0::10.0.0.22::INST0::INSTR": EchoInstrument()})
    rm = pyvisa.ResourceManager(f"{path}@nwlab")
    res = rm.open_resource("tcpip::10.0.0.22::inst0::instr", read_termination="\n")
    assert res.query("*IDN?") == "NWLAB,ECHO,0,1.0"


def test_query_write_read(make_bench):
    _, res, bench = open_echo(make_bench)
    device = bench.devices["GPIB::12::INSTR"]
    assert res.query("*IDN?") == "NWLAB,ECHO,0,1.0"
    res.write("ECHO? hello world")
    assert res.read() == "hello world"
    res.write("ECHO? raw")
    assert res.read_raw() == b"raw\n"
    assert device.executed == 3


def test_an_instr_write_ends_its_message_with_end_a_socket_write_does_not(make_bench):
    """viWrite on an INSTR session sends END with its last byte (VI_ATTR_SEND_END_EN), which
    ends the program message as an LF would (a driver may write a block with no terminator). A
    socket has no END: there the message waits for its LF."""
    path, bench = make_bench({"GPIB::12::INSTR": EchoInstrument(),
                              "TCPIP::10.0.0.5::5025::SOCKET": EchoInstrument()})
    rm = pyvisa.ResourceManager(f"{path}@nwlab")
    instr = rm.open_resource("GPIB0::12::INSTR", read_termination="\n", timeout=200)
    instr.write_raw(b"ECHO? ended")
    assert instr.read_raw() == b"ended\n"
    instr.send_end = False                  # without END the instrument waits for the LF
    instr.write_raw(b"ECHO? late")
    with pytest.raises(pyvisa.VisaIOError):
        instr.read()
    instr.write_raw(b"\n")
    assert instr.read() == "late"
    socket = rm.open_resource("TCPIP0::10.0.0.5::5025::SOCKET", read_termination="\n", timeout=200)
    socket.write_raw(b"ECHO? waits")
    with pytest.raises(pyvisa.VisaIOError):
        socket.read()
    socket.write_raw(b"\n")
    assert socket.read() == "waits"


def test_unknown_and_malformed_addresses(make_bench):
    path, _ = make_bench()
    rm = pyvisa.ResourceManager(f"{path}@nwlab")
    with pytest.raises(pyvisa.VisaIOError) as info:
        rm.open_resource("GPIB0::13::INSTR")
    assert info.value.error_code == StatusCode.error_resource_not_found
    with pytest.raises(pyvisa.VisaIOError) as info:
        rm.visalib.open(rm.session, "NOT A RESOURCE")
    assert info.value.error_code == StatusCode.error_invalid_resource_name


def test_missing_bench_fails_when_the_library_opens(make_bench):
    make_bench()  # installs the stand-in opener, which knows no such path
    with pytest.raises(Exception, match="no stand-in bench"):
        pyvisa.ResourceManager("no-such-station.yaml@nwlab")


def test_read_status_codes_end_termchar_and_count(make_bench):
    rm, res, _ = open_echo(make_bench)
    lib, session = rm.visalib, res.session
    res.read_termination = None  # TERMCHAR_EN off: reads end at the message END
    res.write("ECHO? abcdef")
    with res.ignore_warning(StatusCode.success_max_count_read):
        assert lib.read(session, 4) == (b"abcd", StatusCode.success_max_count_read)
    assert lib.read(session, 100) == (b"ef\n", StatusCode.success)
    # With the termination character enabled a read stops at the first LF, even inside a
    # binary block, exactly as VISA does; END still ends the last piece.
    res.read_termination = "\n"
    res.write("BLOCK? 300")
    payload = b"#3300" + block_payload(300) + b"\n"
    first_lf = payload.index(b"\n") + 1
    assert lib.read(session, 1000) == (payload[:first_lf], StatusCode.success_termination_character_read)
    rest = bytearray()
    while True:
        chunk, status = lib.read(session, 1000)
        rest += chunk
        if status == StatusCode.success:
            break
        assert status == StatusCode.success_termination_character_read
    assert bytes(rest) == payload[first_lf:]


def test_large_reply_is_read_in_chunks(make_bench):
    _, res, _ = open_echo(make_bench, read_termination=None)
    res.write("BLOCK? 40000")
    raw = res.read_raw(size=1024)
    assert raw == b"#540000" + block_payload(40000) + b"\n"


def test_definite_binary_block(make_bench):
    _, res, _ = open_echo(make_bench)
    data = res.query_binary_values("BLOCK? 40000", datatype="B", container=bytes, chunk_size=4096)
    assert data == block_payload(40000)
    words = res.query_binary_values("BLOCK? 4000", datatype="h", container=np.ndarray)
    assert np.array_equal(words, np.frombuffer(block_payload(4000), dtype="<i2"))


def test_indefinite_binary_block(make_bench):
    _, res, _ = open_echo(make_bench)
    # pyvisa reads "#0" blocks when told how many points to expect ...
    data = res.query_binary_values(
        "BLOCK0? 3000", datatype="B", container=bytes, data_points=3000, expect_termination=True
    )
    assert data == block_payload(3000)
    # ... and the way the Infiniium driver does it: skip "#0", then read the payload.
    res.write("BLOCK0? 2000")
    assert res.read_bytes(2) == b"#0"
    words = res.read_binary_values(
        "h", container=np.ndarray, header_fmt="empty", expect_termination=True, data_points=1000
    )
    assert np.array_equal(words, np.frombuffer(block_payload(2000), dtype="<i2"))
    assert res.query("*IDN?") == "NWLAB,ECHO,0,1.0"  # nothing left over


def test_crlf_instrument(make_bench):
    path, _ = make_bench({"GPIB::2::INSTR": EchoInstrument("LSCI,MODEL336,1,1", b"\r\n")})
    rm = pyvisa.ResourceManager(f"{path}@nwlab")
    res = rm.open_resource("GPIB0::2::INSTR", read_termination="\r\n", write_termination="\r\n")
    assert res.query("*IDN?") == "LSCI,MODEL336,1,1"
    res.read_termination = "\n"  # the wrong terminator leaves the CR in the value
    assert res.query("ECHO? 4.2") == "4.2\r"


def test_read_with_nothing_queued_times_out_after_the_timeout(make_bench):
    _, res, _ = open_echo(make_bench, timeout=300)
    start = time.monotonic()
    with pytest.raises(pyvisa.VisaIOError) as info:
        res.read()
    elapsed_s = time.monotonic() - start
    assert info.value.error_code == StatusCode.error_timeout
    assert 0.29 <= elapsed_s < 2.0
    res.timeout = 0  # VI_TMO_IMMEDIATE
    start = time.monotonic()
    with pytest.raises(pyvisa.VisaIOError):
        res.read()
    assert time.monotonic() - start < 0.1
    assert res.query("ECHO? still fine") == "still fine"


def test_two_benches_are_isolated(make_bench):
    path_a, bench_a = make_bench()
    path_b, bench_b = make_bench()
    rm_a = pyvisa.ResourceManager(f"{path_a}@nwlab")
    rm_b = pyvisa.ResourceManager(f"{path_b}@nwlab")
    assert rm_a.visalib is not rm_b.visalib
    assert pyvisa.ResourceManager(f"{path_a}@nwlab").visalib is rm_a.visalib
    a = rm_a.open_resource("GPIB0::12::INSTR", read_termination="\n", timeout=200)
    b = rm_b.open_resource("GPIB0::12::INSTR", read_termination="\n", timeout=200)
    assert a.query("ECHO? only on a") == "only on a"
    assert a.query("COUNT?") == "2"
    assert b.query("COUNT?") == "1"
    assert bench_b.devices["GPIB::12::INSTR"].executed == 1


def test_clear_discards_the_reply_and_clears_the_device(make_bench):
    _, res, bench = open_echo(make_bench)
    res.write("ECHO? stale")
    res.clear()
    assert bench.devices["GPIB::12::INSTR"].clears == 1
    assert res.query("ECHO? fresh") == "fresh"


def test_partial_read_then_flush_discards_the_rest(make_bench):
    _, res, _ = open_echo(make_bench)
    res.write("ECHO? 0123456789")
    assert res.read_bytes(4) == b"0123"
    res.flush(constants.BufferOperation.discard_read_buffer_no_io)
    assert res.query("*IDN?") == "NWLAB,ECHO,0,1.0"


def test_trigger_and_status_byte(make_bench):
    _, res, bench = open_echo(make_bench)
    res.assert_trigger()
    res.assert_trigger()
    assert bench.devices["GPIB::12::INSTR"].triggers == 2
    assert res.read_stb() & 0x10 == 0
    res.write("ECHO? waiting")
    assert res.read_stb() & 0x10  # MAV: a reply is waiting
    assert res.read() == "waiting"  # ... and the serial poll did not eat it
    assert res.read_stb() & 0x10 == 0


def test_attributes(make_bench):
    _, res, _ = open_echo(make_bench)
    res.timeout = 1234
    assert res.timeout == 1234
    assert res.get_visa_attribute(constants.ResourceAttribute.timeout_value) == 1234
    res.timeout = None
    assert res.timeout == float("inf")
    assert res.interface_type == constants.InterfaceType.gpib
    assert res.get_visa_attribute(constants.ResourceAttribute.gpib_primary_address) == 12
    with pytest.raises(pyvisa.VisaIOError) as info:
        res.set_visa_attribute(constants.ResourceAttribute.resource_name, "GPIB0::1::INSTR")
    assert info.value.error_code == StatusCode.error_attribute_read_only
    with pytest.raises(pyvisa.VisaIOError) as info:
        res.get_visa_attribute(constants.ResourceAttribute.usb_serial_number)
    assert info.value.error_code == StatusCode.error_nonsupported_attribute


def test_closed_session_is_invalid(make_bench):
    rm, res, _ = open_echo(make_bench)
    session = res.session
    res.close()
    with pytest.raises(pyvisa.VisaIOError) as info:
        rm.visalib.write(session, b"*IDN?\n")
    assert info.value.error_code == StatusCode.error_invalid_object


def test_sessions_in_threads_get_their_own_replies(make_bench):
    path, _ = make_bench()
    rm = pyvisa.ResourceManager(f"{path}@nwlab")
    errors: list[str] = []

    def worker(tag: int) -> None:
        res = rm.open_resource("GPIB0::12::INSTR", read_termination="\n", timeout=2000)
        for i in range(200):
            reply = res.query(f"ECHO? {tag}-{i}")
            if reply != f"{tag}-{i}":
                errors.append(reply)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert errors == []


def test_qcodes_visa_instrument_runs_unchanged(make_bench):
    from qcodes.instrument import VisaInstrument

    path, bench = make_bench()
    inst = VisaInstrument("echo_qc", "GPIB0::12::INSTR", visalib=f"{path}@nwlab", timeout=0.5,
                          terminator="\n")
    try:
        assert inst.get_idn()["model"] == "ECHO"
        assert inst.ask("ECHO? 1.5e-9") == "1.5e-9"
        assert inst.visa_handle.timeout == 500
        assert bench.devices["GPIB::12::INSTR"].clears == 1  # device_clear at connect
    finally:
        inst.close()
