"""Parameters: numbers, units and multipliers, MIN/MAX/DEF, booleans, choices, strings, blocks."""

from __future__ import annotations

import math

import pytest
from scpi_helpers import ask, codes

from sim_backend.scpi.errors import ScpiError
from sim_backend.scpi.lexer import Block, Quoted
from sim_backend.scpi.numbers import parse_number
from sim_backend.scpi.params import Boolean, Choice, Integer, Real, String


@pytest.mark.parametrize(
    ("text", "unit", "value"),
    [
        ("1", None, 1.0),
        ("-2.5", None, -2.5),
        (".5", None, 0.5),
        ("+1.E3", None, 1e3),
        ("1.5e-9", None, 1.5e-9),
        ("2 E -3", None, 2e-3),
        ("#H1F", None, 31.0),
        ("#q17", None, 15.0),
        ("#B101", None, 5.0),
        ("50NS", "S", 50e-9),
        ("50 ns", "S", 50e-9),
        ("2.5MV", "V", 2.5e-3),
        ("3V", "V", 3.0),
        ("1KHZ", "HZ", 1e3),
        ("2MHZ", "HZ", 2e6),  # M is mega in front of HZ ...
        ("2MAHZ", "HZ", 2e6),
        ("10MA", "A", 10e-3),  # ... but milli in front of A
        ("4UA", "A", 4e-6),
        ("1MOHM", "OHM", 1e6),
        ("7GHZ", "HZ", 7e9),
        ("3PS", "S", 3e-12),
    ],
)
def test_numbers_units_and_multipliers(text, unit, value):
    assert math.isclose(parse_number(text, unit), value, rel_tol=1e-12)


@pytest.mark.parametrize(
    ("text", "unit", "code"),
    [
        ("1.2.3", "V", -121),
        ("1e+", None, -121),
        ("#H1G", None, -121),
        ("#X1", None, -121),
        ("1V", None, -138),
        ("1XV", "V", -131),
        ("1A", "V", -131),
        ("1e999", None, -222),          # legal syntax (exponent <= 32000), no double holds it
        ("1e32001", None, -123),        # IEEE 488.2 §7.7.2.4.1: exponent magnitude above 32000
        ("1e-999999", None, -123),
        ("9" * 256, None, -124),        # more than 255 digits
        ("#H" + "F" * 300, None, -222),
    ],
)
def test_malformed_numbers_raise_the_standard_code(text, unit, code):
    with pytest.raises(ScpiError) as caught:
        parse_number(text, unit)
    assert caught.value.code == code


def test_real_min_max_def_and_range():
    param = Real("V", 0.0, 10.0, 1.0)
    assert [param.convert(w) for w in ("MIN", "maximum", "DEF", "100MV")] == [0.0, 10.0, 1.0, 0.1]
    for token, code in [("11", -222), ("-1MV", -222), ("LOW", -104), (Quoted("1"), -104), (Block(b"1"), -104)]:
        with pytest.raises(ScpiError) as caught:
            param.convert(token)
        assert caught.value.code == code
    with pytest.raises(ScpiError) as caught:
        Real("V").convert("MAX")  # no maximum declared
    assert caught.value.code == -224


def test_integer_rounds_half_up_and_rejects_suffixes():
    param = Integer(0, 255)
    assert [param.convert(t) for t in ("2.5", "2.49", "#HFF", "MAX")] == [3, 2, 255, 255]
    with pytest.raises(ScpiError) as caught:
        param.convert("3 V")
    assert caught.value.code == -138


def test_boolean_forms():
    param = Boolean()
    assert [param.convert(t) for t in ("ON", "off", "1", "0", "0.4", "2")] == [True, False, True, False, False, True]
    for token, code in [("YES", -224), (Quoted("ON"), -104)]:
        with pytest.raises(ScpiError) as caught:
            param.convert(token)
        assert caught.value.code == code


def test_choice_short_long_any_case_gives_short_form():
    param = Choice("SINusoid", "PULSe", "CHANnel1")
    assert [param.convert(t) for t in ("sin", "SINUSOID", "Pulse", "chan1", "CHANNEL1")] == [
        "SIN", "SIN", "PULS", "CHAN1", "CHAN1",
    ]  # fmt: skip
    for token, code in [("SINU", -224), ("3", -104), (Quoted("SIN"), -104)]:
        with pytest.raises(ScpiError) as caught:
            param.convert(token)
        assert caught.value.code == code


def test_string_data():
    assert String().convert(Quoted('a"b')) == 'a"b'
    assert String().format('a"b') == '"a""b"'
    with pytest.raises(ScpiError) as caught:
        String().convert("abc")
    assert caught.value.code == -104


def test_units_on_the_wire(pulser):
    ask(pulser, "VOLT 250 MV;:FREQ 2KHZ;:FUNC:PULS:WIDT 50NS;:SOUR2:FREQ 1.5MHZ")
    assert pulser.channels[1].amplitude_v == pytest.approx(0.25)
    assert pulser.channels[1].frequency_hz == pytest.approx(2e3)
    assert pulser.channels[1].width_s == pytest.approx(50e-9)
    assert pulser.channels[2].frequency_hz == pytest.approx(1.5e6)
    assert codes(pulser) == []


def test_min_max_def_set_and_query(pulser):
    assert ask(pulser, "VOLT? MIN;VOLT? MAX;VOLT? DEF") == (
        b"+1.000000000000000E-03;+1.000000000000000E+01;+1.000000000000000E-01\n"
    )
    ask(pulser, "VOLT MAX")
    assert pulser.channels[1].amplitude_v == 10.0
    ask(pulser, "VOLT MIN;:BURS:NCYC MAX")
    assert (pulser.channels[1].amplitude_v, pulser.channels[1].cycles) == (1e-3, 100_000_000)
    ask(pulser, "VOLT DEF")
    assert pulser.channels[1].amplitude_v == 0.1


def test_quoted_strings_in_both_quote_styles(pulser):
    ask(pulser, "DATA:ARB 'it''s',#13abc")
    ask(pulser, 'DATA:ARB "say ""hi""",#12xy')
    assert pulser.channels[1].arbitrary == {"it's": b"abc", 'say "hi"': b"xy"}
    assert ask(pulser, "DATA:ARB? \"it's\"") == b"#13abc\n"


def test_definite_block_with_lf_and_binary_bytes(pulser):
    payload = bytes(range(256)) + b"\n;,\"'#"
    header = f"#3{len(payload)}".encode()
    pulser.write_bytes(b"SOUR2:DATA:ARB 'w'," + header + payload + b";:DATA:ARB? 'x'\n")
    assert pulser.channels[2].arbitrary["w"] == payload
    assert codes(pulser) == [-224]  # the unit after the block ran (and found no waveform 'x')
    assert ask(pulser, "SOUR2:DATA:ARB? 'w'") == header + payload + b"\n"


def test_indefinite_block_parameter_with_lf(pulser):
    pulser.write_bytes(b"DATA:ARB 'w',#0a\nb;c\n")
    assert pulser.channels[1].arbitrary["w"] == b"a\nb;c"
    assert codes(pulser) == []


def test_block_shorter_than_declared_is_161(pulser):
    pulser.write_bytes(b"DATA:ARB 'w',#19abc\n" + b"\n" * 6)
    # The framer waits for 9 bytes, which take in six LFs; then the message ends with no ';'.
    assert pulser.channels[1].arbitrary["w"] == b"abc\n\n\n\n\n\n"
    pulser.write_bytes(b"DATA:ARB 'v',#2")  # incomplete length field, then a terminator
    pulser.write_bytes(b"9\n")
    assert codes(pulser) == [-161]


def test_definite_and_indefinite_block_answers(pulser):
    ask(pulser, "VOLT 2;:SOUR2:VOLT 0.5")
    assert ask(pulser, ":DIG;:WAV:DATA?") == b"#152,0.5\n"
    assert ask(pulser, ":WAV:STR ON;:DIG;:WAV:DATA?") == b"#02,0.5\n"


def test_query_after_indefinite_answer_in_same_message_is_440(pulser):
    ask(pulser, ":WAV:STR ON;:DIG")
    assert ask(pulser, ":WAV:DATA?;:VOLT?") == b"#00.1,0.1\n"
    assert codes(pulser) == [-440]


def test_optional_query_parameter(pulser):
    ask(pulser, "VOLT:OFFS 1;:SOUR2:VOLT:OFFS -1")
    assert ask(pulser, "MEAS:VOLT?;:MEAS:VOLT? CHAN2;:MEAS:VOLT:DC? CHANNEL1") == b"1.0;-1.0;1.0\n"
