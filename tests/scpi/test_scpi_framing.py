"""Input framing: messages end at LF (or CR LF), never inside strings or blocks."""

from __future__ import annotations

import pytest
from scpi_helpers import ask, codes

from sim_backend.scpi.framing import InputOverrun, MessageFramer


def test_any_chunking_gives_the_same_messages():
    stream = b"VOLT 1;*IDN?\r\nDATA:ARB 'a;b',#15x\ny\nz\nOUTP ON\n"
    whole = MessageFramer().feed(stream)
    assert whole == [b"VOLT 1;*IDN?", b"DATA:ARB 'a;b',#15x\ny\nz", b"OUTP ON"]
    for size in (1, 2, 3, 7):
        framer = MessageFramer()
        pieces = [framer.feed(stream[i : i + size]) for i in range(0, len(stream), size)]
        assert [m for piece in pieces for m in piece] == whole


def test_incomplete_message_waits_for_its_terminator():
    framer = MessageFramer()
    assert framer.feed(b"VOLT 1") == []
    assert framer.feed(b";VOLT?") == []
    assert framer.feed(b"\n") == [b"VOLT 1;VOLT?"]


def test_strings_keep_lf_that_does_not_end_a_write():
    assert MessageFramer().feed(b"X 'a\n''b'\nY \"c\nd\"\n") == [b"X 'a\n''b'", b'Y "c\nd"']


def test_lf_ending_a_write_ends_an_unterminated_string():
    framer = MessageFramer()
    assert framer.feed(b"X 'a\n") == [b"X 'a"]
    assert framer.feed(b"Y\n") == [b"Y"]


def test_definite_block_length_field_split_across_chunks():
    framer = MessageFramer()
    assert framer.feed(b"D #") == []
    assert framer.feed(b"21") == []
    assert framer.feed(b"2" + b"\n" * 12) == []  # twelve LFs of block data
    assert framer.feed(b"\n") == [b"D #212" + b"\n" * 12]


def test_indefinite_block_ends_at_lf_ending_a_write():
    framer = MessageFramer()
    # The LF in the middle of the write is data; the one ending the write is LF+END.
    assert framer.feed(b"D #0ab\ncd\n") == [b"D #0ab\ncd"]
    assert framer.feed(b"D #0ab\n") == [b"D #0ab"]


def test_hash_not_followed_by_digit_is_plain_text():
    assert MessageFramer().feed(b"N #H1F\nM #\n") == [b"N #H1F", b"M #"]


def test_overrun_clears_input():
    framer = MessageFramer(limit_bytes=16)
    with pytest.raises(InputOverrun):
        framer.feed(b'X "' + b"a" * 20)
    assert framer.feed(b"Y\n") == [b"Y"]


def test_device_runs_messages_fed_byte_by_byte(pulser):
    for byte in b"SOUR2:VOLT 2.5;VOLT?\n":
        pulser.write_bytes(bytes([byte]))
    assert pulser.read_message() == b"+2.500000000000000E+00\n"
    assert pulser.read_message() is None


def test_crlf_terminated_message(pulser):
    assert ask(pulser, b"*IDN?\r\n") == b"NWLAB,EXAMPLE-PG2,0001,1.0\n"


def test_device_clear_drops_partial_input_and_unread_answers(pulser):
    pulser.write_bytes(b"*IDN?\nVOLT 5")
    pulser.device_clear()
    assert pulser.read_message() is None
    assert ask(pulser, "VOLT?") == b"+1.000000000000000E-01\n"  # the partial VOLT 5 never ran
    assert codes(pulser) == []
