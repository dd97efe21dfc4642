"""Headers: short/long forms, case, optional nodes, numeric suffixes, `;` chains and paths."""

from __future__ import annotations

import itertools
import re

import pytest
from scpi_helpers import ask, codes

from sim_backend.scpi.headers import HeaderTable, compile_pattern
from sim_backend.scpi.models import personality_classes
from sim_backend.scpi.params import mnemonic_forms


@pytest.mark.parametrize(
    "header",
    [
        "SOUR1:VOLT",
        "SOURCE1:VOLTAGE",
        "source1:voltage:level:immediate:amplitude",
        "SoUr:VoLt:AmPl",
        ":VOLT:IMM",
        "VOLT:LEV:AMPL",
        "VOLTAGE:LEVEL",
    ],
)
def test_forms_and_optional_nodes_reach_channel_one_amplitude(pulser, header):
    pulser.write_bytes(f"{header} 2.0\n".encode())
    assert pulser.channels[1].amplitude_v == 2.0
    assert codes(pulser) == []


@pytest.mark.parametrize("header", ["SOURC:VOLT", "SOUR:VOLTA", "SOUR:VOLT:LEVE", "VOLT:AMPL:LEV", "AMPL"])
def test_partial_or_misordered_mnemonics_are_undefined(pulser, header):
    pulser.write_bytes(f"{header} 2\n".encode())
    assert pulser.channels[1].amplitude_v == 0.1
    assert codes(pulser) == [-113]


def test_numeric_suffixes_select_channels_and_default_to_one(pulser):
    ask(pulser, "SOUR2:VOLT 3;:OUTPUT2 ON;:OUTP ON")
    assert pulser.channels[2].amplitude_v == 3.0 and pulser.channels[1].amplitude_v == 0.1
    assert pulser.channels[2].output and pulser.channels[1].output
    assert ask(pulser, "SOURCE2:VOLT?;:SOUR1:VOLT?;:VOLT?") == (
        b"+3.000000000000000E+00;+1.000000000000000E-01;+1.000000000000000E-01\n"
    )


@pytest.mark.parametrize("header", ["SOUR3:VOLT", "SOUR0:VOLT", "OUTP9"])
def test_suffix_beyond_model_limit_is_114(pulser, header):
    pulser.write_bytes(f"{header} 1\n".encode())
    assert codes(pulser) == [-114]


def test_suffix_on_a_node_without_one_is_undefined(pulser):
    ask(pulser, "SOUR:VOLT2:OFFS 1")
    assert codes(pulser) == [-113]


def test_chain_continues_at_the_previous_header_level(pulser):
    # After SOUR2:FREQ the path is SOUR2:, so FUNC and FUNC:PULS:WIDT land on channel 2.
    ask(pulser, "SOUR2:FREQ 1000;FUNC PULS;FUNC:PULS:WIDT 1e-6;:OUTP2 ON")
    channel = pulser.channels[2]
    assert (channel.frequency_hz, channel.function, channel.width_s, channel.output) == (1000.0, "PULS", 1e-6, True)
    assert codes(pulser) == []


def test_chain_without_root_reset_is_looked_up_under_the_path(pulser):
    ask(pulser, "SOUR2:VOLT:OFFS 1;AMPL 3")  # SOUR2:VOLT:AMPL exists
    assert pulser.channels[2].amplitude_v == 3.0
    ask(pulser, "VOLT:OFFS 1;OUTP ON")  # VOLT:OUTP does not
    assert not pulser.channels[1].output
    assert codes(pulser) == [-113]


def test_leading_colon_resets_to_the_root(pulser):
    ask(pulser, "VOLT:OFFS 1;:OUTP ON")
    assert pulser.channels[1].output
    assert codes(pulser) == []


def test_common_commands_inside_chains_keep_the_path(pulser):
    answer = ask(pulser, "SOUR2:VOLT:OFFS 0.5;*OPC?;AMPL 2;*IDN?;AMPL?")
    assert answer == b"1;NWLAB,EXAMPLE-PG2,0001,1.0;+2.000000000000000E+00\n"
    assert pulser.channels[2].amplitude_v == 2.0


def test_path_resets_with_each_message(pulser):
    ask(pulser, "SOUR2:VOLT:OFFS 1")
    ask(pulser, "AMPL 3")  # root again: AMPL alone is not a command
    assert codes(pulser) == [-113]


def test_whitespace_and_trailing_semicolon(pulser):
    assert ask(pulser, "  VOLT\t 2 ; VOLT? ;") == b"+2.000000000000000E+00\n"


def test_empty_message_does_nothing(pulser):
    assert ask(pulser, "") is None
    assert codes(pulser) == []


def test_query_of_set_only_and_set_of_query_only_are_undefined(pulser):
    ask(pulser, "*RST?")
    ask(pulser, "*IDN")
    ask(pulser, ":WAV:DATA")
    assert codes(pulser) == [-113, -113, -113]


def test_pattern_compiler_rejects_malformed_patterns():
    for bad in ["[SOURce:VOLTage", "SOURce]", "VOLT!age", "*ID N", ""]:
        with pytest.raises(ValueError):
            compile_pattern(bad)


def test_table_resolves_suffixes_and_first_declaration_wins():
    table = HeaderTable([("[SOURce#]:VOLTage", "a"), ("SOURce#:VOLTage", "b"), ("CHANnel#:PROBe#", "c")])
    found = table.resolve(":SOUR:VOLT")
    assert found is not None and found.entry == "a" and found.suffixes == (("SOUR", 1),)
    found = table.resolve(":CHANNEL3:PROB12")
    assert found is not None and found.suffixes == (("CHAN", 3), ("PROB", 12))
    assert table.resolve(":CHAN:PROBE:X") is None


def test_a_pattern_of_optional_nodes_alone_is_tried_for_every_header_in_its_turn():
    table = HeaderTable([("VOLTage", "a"), ("[:SOURce]", "b"), ("SOURce:VOLTage", "c"), ("[:OUTPut]", "d")])
    assert table.resolve(":SOUR").entry == "b"
    assert table.resolve(":OUTPUT").entry == "d"
    assert table.resolve(":SOUR:VOLT").entry == "c"
    assert table.resolve(":VOLT").entry == "a"
    assert table.resolve(":CURR") is None


def test_fixed_optional_suffix_accepts_none_or_that_number_only():
    """`SOURce[1]` (as the Keithley manual writes it): SOUR and SOUR1 match, with no handler
    argument; SOUR2 and SOUR0 match the entry but are marked invalid (-114 in the engine)."""
    table = HeaderTable([(":SOURce[1]:CURRent[:LEVel]", "a"), ("[:SENSe[2]]:COUNt", "b")])
    for header in (":SOUR:CURR", ":SOUR1:CURR", ":SOURCE1:CURRENT:LEVEL", ":SOURCE:CURR:LEV"):
        found = table.resolve(header)
        assert found is not None and found.entry == "a", header
        assert found.suffixes == () and found.invalid == (), header
    for header, number in ((":SOUR2:CURR", 2), (":SOURCE0:CURR", 0), (":SOUR11:CURR:LEV", 11)):
        found = table.resolve(header)
        assert found is not None and found.entry == "a" and found.invalid == (("SOUR", number),), header
    assert table.resolve(":COUN").invalid == () and table.resolve(":SENS2:COUN").invalid == ()
    assert table.resolve(":SENS1:COUN").invalid == (("SENS", 1),)
    assert table.resolve(":SOURX:CURR") is None


@pytest.mark.parametrize("bad", ["SOURce[0]:VOLT", "SOURce[1", "SOURce[1]]:VOLT", "SOURce[-1]:VOLT"])
def test_malformed_fixed_suffix_patterns_are_rejected(bad):
    with pytest.raises(ValueError):
        compile_pattern(bad)


def _headers_of(pattern: str) -> list[str]:
    """Headers written from a pattern: each node's short and long form, optional nodes left out
    and given, suffixes none, 1, 2 and 12 (so wrong fixed suffixes too)."""
    nodes = re.findall(r"(\[)?:?([A-Za-z][A-Za-z0-9_]*)(#|\[\d+\])?(\])?", pattern)
    choices = []
    for optional, name, suffix, _ in nodes:
        short, long = mnemonic_forms(name)
        suffixes = ("", "1", "2", "12") if suffix else ("",)
        written = [f":{form}{digits}" for form in (short, long) for digits in suffixes]
        choices.append(written + ([""] if optional else []))
    return ["".join(parts) for parts in itertools.islice(itertools.product(*choices), 64)]


def test_each_header_resolves_to_the_first_declared_pattern_matching_it():
    """The table tries a header only against the patterns its first word can begin: for every
    header written from every shipped instrument's declarations (and each cut short or with a
    word added in front), it finds the entry a walk through all declarations in order finds."""
    checked = 0
    for cls in set(personality_classes().values()):
        patterns = [c.pattern for c in cls.commands if not c.pattern.startswith("*")]
        table = HeaderTable((p, p) for p in patterns)
        compiled = [compile_pattern(p) for p in patterns]
        for pattern in patterns:
            for header in _headers_of(pattern):
                for probe in (header, header.rsplit(":", 1)[0], ":X" + header, header + ":LEV", header[1:]):
                    walked = next((c.text for c in compiled if c.regex.fullmatch(probe)), None)
                    found = table.resolve(probe)
                    assert (found.entry if found else None) == walked, (cls.__name__, probe)
                    checked += 1
    assert checked > 10_000
