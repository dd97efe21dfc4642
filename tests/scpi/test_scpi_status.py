"""Errors and status: each code, queue order and overflow, *ESR?/*STB?, -410, nothing changes."""

from __future__ import annotations

import copy

import pytest
from scpi_helpers import ask, codes, drain_errors

from sim_backend.scpi.commands import command, query, setting
from sim_backend.scpi.errors import STANDARD_ERRORS, ScpiError
from example_pulser import ExamplePulser
from sim_backend.scpi.ieee488 import Identity, Ieee488Personality
from sim_backend.scpi.params import Boolean, Choice, Integer, Real
from sim_backend.scpi.personality import Personality


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("NOSUCH:CMD 1", -113),
        ("VOLT 'x'", -104),
        ("VOLT", -109),
        ("VOLT 1,2", -108),
        ("VOLT 11", -222),
        ("FUNC TRIANGLE", -224),
        ("VOLT 1 XV", -131),
        ("BURS:NCYC 2 V", -138),
        ("VOLT 1,,2", -102),
        ("VOLT 1 2", -121),
        ("VOLT\x7f 1", -101),
        ("VOLT 1\x00", -101),
        ("VOLT \xe9", -101),
        ("SOUR3:VOLT 1", -114),
        ("DATA:ARB 'w',#1", -161),
        ("DATA:ARB 'unterminated,#11a", -151),
        ("FREQ 20MHZ", -221),
    ],
)
def test_each_error_is_queued_with_its_standard_text_and_changes_nothing(pulser, message, code):
    before = copy.deepcopy(pulser.channels)
    ask(pulser, message)
    assert drain_errors(pulser) == [f'{code},"{STANDARD_ERRORS[code]}"' if code != -221 else
                                    '-221,"Settings conflict;pulse width exceeds period"']  # fmt: skip
    assert pulser.channels == before


def test_no_error_answer_is_plus_zero(pulser):
    assert ask(pulser, "SYST:ERR?") == b'+0,"No error"\n'
    assert ask(pulser, "SYSTEM:ERROR:NEXT?") == b'+0,"No error"\n'


def test_errors_come_out_oldest_first(pulser):
    for message in ("FOO", "VOLT 99", "VOLT", "FUNC X"):
        ask(pulser, message)
    assert ask(pulser, "SYST:ERR:COUN?") == b"4\n"
    assert codes(pulser) == [-113, -222, -109, -224]


def test_queue_overflow_replaces_the_newest_entry(pulser):
    size = pulser.error_queue_size
    for _ in range(size - 1):
        ask(pulser, "FOO")
    ask(pulser, "VOLT 99")
    ask(pulser, "VOLT")  # lost: the queue is full
    found = drain_errors(pulser)
    assert len(found) == size
    assert found[:-1] == ['-113,"Undefined header"'] * (size - 1)
    assert found[-1] == '-350,"Queue overflow"'


def test_chain_stops_at_the_first_erroneous_unit(pulser):
    answer = ask(pulser, "VOLT 2;VOLT?;:VOLT 99;:VOLT 3;:VOLT?")
    assert answer == b"+2.000000000000000E+00\n"  # answers before the error are still sent
    assert pulser.channels[1].amplitude_v == 2.0
    assert codes(pulser) == [-222]


def test_syntax_error_late_in_a_message_keeps_earlier_units(pulser):
    ask(pulser, "VOLT 2;OFFS$ 1")
    assert pulser.channels[1].amplitude_v == 2.0
    assert codes(pulser) == [-101]


def test_esr_bits_after_each_error_class(pulser):
    cases = [("FOO", 0x20), ("VOLT 99", 0x10), ("SOUR3:VOLT 1", 0x20)]
    for message, bit in cases:
        ask(pulser, message)
        assert ask(pulser, "*ESR?") == f"{bit}\n".encode()
        assert ask(pulser, "*ESR?") == b"0\n"  # reading cleared it
    pulser.write_bytes(b"*IDN?\n*IDN?\n")  # -410: query error bit
    assert pulser.read_message() == b"NWLAB,EXAMPLE-PG2,0001,1.0\n"
    assert ask(pulser, "*ESR?") == b"4\n"
    for _ in range(25):
        ask(pulser, "FOO")
    assert int(ask(pulser, "*ESR?")) == 0x20 | 0x08  # the overflow is device-dependent


def test_status_byte_eav_esb_mav_mss(pulser):
    assert ask(pulser, "*STB?") == b"0\n"
    ask(pulser, "FOO")
    assert ask(pulser, "*STB?") == b"4\n"  # EAV: error queue not empty
    ask(pulser, "*ESE 32")
    assert ask(pulser, "*STB?") == b"36\n"  # + ESB: command error enabled
    ask(pulser, "*SRE 36")
    assert ask(pulser, "*STB?;*SRE?") == b"100;36\n"  # + MSS
    pulser.write_bytes(b"*IDN?\n")
    assert pulser.status.status_byte(pulser.message_available) & 0x10  # MAV while unread
    pulser.read_message()
    ask(pulser, "*CLS")
    assert ask(pulser, "*STB?;*ESE?") == b"0;32\n"  # *CLS keeps the enable masks
    assert codes(pulser) == []


def test_opc_query_and_opc_bit(pulser):
    assert ask(pulser, "*OPC?") == b"1\n"
    assert ask(pulser, "*OPC;*WAI;*ESR?") == b"1\n"


def test_query_interrupted_by_a_new_message(pulser):
    pulser.write_bytes(b"VOLT?\n")
    pulser.write_bytes(b"VOLT 2\n")  # the unread answer is discarded
    assert pulser.read_message() is None
    assert pulser.channels[1].amplitude_v == 2.0
    assert codes(pulser) == [-410]


def test_reset_restores_settings_but_not_status(pulser):
    ask(pulser, "VOLT 2;:FOO")
    ask(pulser, "*RST")
    assert pulser.channels[1].amplitude_v == 0.1
    assert codes(pulser) == [-113]


def test_trg_reaches_the_model_and_hook_sees_every_unit(pulser):
    seen = pulser.commands_seen
    ask(pulser, "*TRG;*TRG;VOLT 1;FOO")
    assert pulser.triggers == 2
    assert pulser.commands_seen == seen + 4


def test_typed_exception_with_standard_text(pulser):
    ask(pulser, "FUNC:PULS:WIDT 2")  # longer than the 1 ms period
    assert drain_errors(pulser) == ['-221,"Settings conflict"']


def test_tst_and_idn(pulser):
    assert ask(pulser, "*TST?;*IDN?") == b"0;NWLAB,EXAMPLE-PG2,0001,1.0\n"


class StatusOnlyController(Ieee488Personality):
    """A Lake-Shore-like model: CR LF answers, no error queue, no *TRG, its own error text."""

    response_terminator = b"\r\n"
    error_reporting = "status_only"
    error_messages = {-113: "Command not recognised"}
    omit = frozenset({"*TRG"})
    identity = Identity("LSCI", "MODEL000", "LSA0000", "1.0")

    def __init__(self) -> None:
        super().__init__()
        self.setpoints = {1: 0.0, 2: 0.0}
        self.logged: list[tuple[int, str]] = []

    def on_error(self, code: int, message: str) -> None:
        self.logged.append((code, message))

    @setting("SETP", Integer(1, 2), Real("K", 0, 300), query_params=(Integer(1, 2),))
    def setpoint(self, output: int) -> str:
        return f"+{self.setpoints[output]:07.3f}"

    @setpoint.setter
    def setpoint(self, output: int, kelvin: float) -> None:
        self.setpoints[output] = kelvin

    @query("KRDG", Choice("A", "B"))
    def kelvin_reading(self, channel: str) -> str:
        if channel == "B":
            raise ScpiError(-241)
        return "+004.200"


def test_status_only_policy_ignores_bad_commands_silently():
    device = StatusOnlyController()
    assert ask(device, "*ESR?") == b"128\r\n"
    assert ask(device, "SETP 1,4.5;SETP? 1") == b"+004.500\r\n"
    assert ask(device, "KRDG? A") == b"+004.200\r\n"
    for message in ("SYST:ERR?", "SETP 1,400", "*TRG", "KRDG? B", "SETP 3,1"):
        assert ask(device, message) is None
    assert device.setpoints == {1: 4.5, 2: 0.0}
    assert not device.status.errors
    assert [code for code, _ in device.logged] == [-113, -222, -113, -241, -222]
    assert device.logged[0][1] == "Command not recognised"
    assert ask(device, "*ESR?") == f"{0x20 | 0x10}\r\n".encode()  # command and execution errors


def test_handler_exceptions_other_than_scpi_errors_propagate():
    class Broken(ExamplePulser):
        @query("BROKen")
        def broken(self) -> str:
            raise RuntimeError("a bug in the model")

    with pytest.raises(RuntimeError):
        ask(Broken(), "BROK?")


def test_declaring_the_same_form_twice_is_rejected():
    with pytest.raises(TypeError):

        class Twice(Ieee488Personality):
            @query("THING")
            def one(self) -> str:
                return "1"

            @query("THING")
            def two(self) -> str:
                return "2"


def test_subclass_overrides_one_form_of_an_inherited_command():
    class Renamed(ExamplePulser):
        identity = Identity("NWLAB", "RENAMED")

        @query("*IDN")
        def model_idn(self) -> str:
            return "custom"

        @command("OUTPut#[:STATe]", Boolean())
        def output_switch(self, channel: int, state: bool) -> None:
            self.channels[channel].output = not state  # visibly different from the base setter

    device = Renamed()
    assert ask(device, "*IDN?") == b"custom\n"
    assert ask(device, "OUTP2 OFF;OUTP2?") == b"1\n"  # new setter, inherited query
    assert ask(device, "*opc?") == b"1\n"


def test_omit_is_case_insensitive_and_bare_base_is_usable():
    class NoTrigger(ExamplePulser):
        omit = frozenset({"*trg", "output#[:state]"})

    device = NoTrigger()
    ask(device, "*TRG;:OUTP ON")
    assert codes(device) == [-113]  # *TRG is gone; the chain stopped there
    ask(device, "OUTP ON")
    assert codes(device) == [-113]
    bare = Personality()
    assert ask(bare, "*IDN?") is None
    assert bare.status.errors[0].code == -113
