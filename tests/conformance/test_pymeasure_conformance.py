"""Stock PyMeasure drivers against the emulated models, every property, over both transports.

For each emulated model and the PyMeasure driver that claims it, every property of the
instrument and of its channels is read, and every settable one is set to the value just read
and read back. A property passes when both work; a failure must match one of the reviewed
causes in `CAUSES` — a defect of the stock driver (PyMeasure 0.16), checked against the
instrument's manual — or the test fails and names it. After each property the instrument's
error queue is read: a refusal no exception shows is a failure too, and a query the instrument
refuses (a real one sends no reply either) is accepted only with the error it queued — a
timeout of the emulator alone never is. docs/conformance.md's PyMeasure table is this test's output:
`python tests/conformance/test_pymeasure_conformance.py`.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stock_bench import no_nagle, reach  # noqa: E402
from walk import (LATE_REPLY_WAIT_S, REPLY_WAIT_S, TRANSPORTS, Cause, cause_of, identity_of,  # noqa: E402
                  read_allowing_late, table, unexplained, waiting)

pytest.importorskip("pymeasure", reason="pymeasure is a dev dependency: install .[dev]")
pytestmark = pytest.mark.timeout(300)

#: emulator model -> (module, stock PyMeasure class, the query that reads its error queue or None)
PAIRS = {
    "keysight_33522b": ("pymeasure.instruments.agilent", "Agilent33500", "SYST:ERR?"),
    "keysight_33622a": ("pymeasure.instruments.agilent", "Agilent33500", "SYST:ERR?"),
    "keysight_81160a": ("pymeasure.instruments.keysight", "Keysight81160A", "SYST:ERR?"),
    # The class PyMeasure's Lake Shore package gives the 336 (LakeShore331 is the two-input 331);
    # the controller has no SCPI error queue: its status byte tells a refused command.
    "lakeshore_336": ("pymeasure.instruments.lakeshore", "LakeShore3xx", "*ESR?"),
    "keithley_2450": ("pymeasure.instruments.keithley", "Keithley2450", "SYST:ERR?"),
}
#: Properties that are the SCPI plumbing, not the instrument's settings.
PLUMBING = {"id", "complete", "status", "next_error", "options", "check_errors"}


_BURST_81160A = r"burst_(state|mode|ncycles|period)"
_ARB_81160A = r"arb_(advance|filter|srate)"
CAUSES = (
    Cause("write-only",
          "the driver declares the property without a getter (a display text, a command): PyMeasure "
          "raises before anything is sent",
          r"^get: LookupError: Property can not be read"),
    Cause("33500 syntax on the 81160A",
          "Keysight81160A inherits Agilent33500's BURSt:*, FUNCtion:ARBitrary:* and OUTPut:TRIGger; the "
          "81160A has none of them (its bursts are :ARM:SOURce with :TRIGger:COUNt, its user waveforms "
          ":DATA and :FUNCtion:USER): the instrument answers -113",
          r"queued \[-113\]", rf"(ch_\d\.)?({_BURST_81160A}|{_ARB_81160A}|arb_file|ext_trig_out)"),
    Cause("second channel's coupling on the 81160A",
          "the driver sends :TRACe:CHANnel2; the 81160A has :TRACe:CHANnel1 only (-114)",
          r"queued \[-114\]", r"ch_2\.coupling_enabled"),
    Cause("option-card inputs on the Lake Shore 336",
          "LakeShore3xx declares inputs C1-C4 and D1-D5 (the 340's cards, the 336's 3062 scanner), which "
          "a 336 without the card does not have: it sets the execution error bit (16) and sends nothing",
          r"queued \[16\]", r"ch_(C[1-4]|D[1-5])\.(kelvin|celsius|celcius|sensor)"),
    Cause("Series 2400 buffer read on the 2450",
          "buffer_data sends the Series 2400's bare ':TRAC:DATA?'; the 2450 needs <startIndex>, <endIndex> "
          "(Reference Manual 6-109): it queues -109 and answers nothing",
          r"VI_ERROR_TMO.*queued \[-109\]", r"buffer_data"),
    Cause("2450 statistics as one value",
          "the driver takes means, maximums, minimums and standard deviations as the Series 2400's "
          "(V, I, R) triple and indexes it; the 2450's :TRACe:STATistics:<statistic>? answers one value",
          r"^get: TypeError: 'float' object is not subscriptable", r"(mean|max|min|std)_(voltage|current|resistance)"),
    Cause("2450 filter state as ON/OFF",
          "the setter's validator wants 'ON'/'OFF'; the 2450 answers its Boolean :AVERage[:STATe]? as 1/0",
          r"^set: ValueError: Value of [01](\.0)? is not in the discrete set \['ON', 'OFF'\]", r"current_filter_state"),
    Cause("driver-side cache",
          "waveform_volatile is a cache in the driver, None until a waveform is set: setting None back "
          "fails in the driver before anything is sent",
          r"^set: ", r"ch_\d\.waveform_volatile"),
)


def properties(instrument):
    """(path, owner, name, property) of every property of the instrument and its channels."""
    owners = [("", instrument)]
    owners += [(f"ch_{name}.", child) for name, child in sorted(getattr(instrument, "channels", {}).items(),
                                                             key=lambda item: str(item[0]))]
    seen_channels = {id(child) for _, child in owners}
    for attribute in dir(instrument):                # channels kept outside `channels` (ch_1, output_2)
        child = getattr(type(instrument), attribute, None)
        if attribute.startswith("_") or isinstance(child, property):
            continue
        value = getattr(instrument, attribute, None)
        if hasattr(value, "parent") and hasattr(value, "id") and id(value) not in seen_channels \
                and value.__class__.__module__.startswith("pymeasure"):
            owners.append((f"{attribute}.", value))
            seen_channels.add(id(value))
    for prefix, owner in owners:
        for name, attribute in inspect.getmembers(type(owner), lambda a: isinstance(a, property)):
            if not name.startswith("_") and name not in PLUMBING:
                yield prefix + name, owner, name, attribute


def round_trips(instrument, error_query: str | None) -> tuple[int, list[tuple[str, str]]]:
    """(properties that pass, [(path, failure)]). After each property the instrument's error
    queue is read, where it has one: a refusal no exception shows is a failure too."""
    passed, failures = 0, []
    connection = instrument.adapter.connection
    identity = identity_of(connection)

    def get(owner, name: str):
        return read_allowing_late(lambda: getattr(owner, name), connection, identity)

    for path, owner, name, attribute in properties(instrument):
        problem = None
        try:
            value = get(owner, name)
            if attribute.fset is not None and value is not None and not hasattr(value, "shape"):
                problem = _set_back(owner, name, value, get)
        except Exception as error:  # noqa: BLE001 - each failure is classified below
            problem = f"get: {type(error).__name__}: {error}"
        with waiting(connection, LATE_REPLY_WAIT_S):       # the error queue always answers
            queued = _queued(instrument, error_query)
        if problem or queued:
            failures.append((path, f"{problem or 'refused'}; queued {queued}"))
        else:
            passed += 1
    return passed, failures


def _set_back(owner, name: str, value, get) -> str | None:
    try:
        setattr(owner, name, value)
    except LookupError:
        return None                       # a measurement: PyMeasure refuses a set before sending it
    except Exception as error:  # noqa: BLE001
        return f"set: {type(error).__name__}: {error}"
    again = get(owner, name)
    if again != value and not (isinstance(value, float) and again == pytest.approx(value, rel=1e-9)):
        return f"round trip: {value!r} came back as {again!r}"
    return None


def _queued(instrument, error_query: str | None) -> list[int]:
    """The SCPI error queue's codes, emptied; or the event status register, if that is the query."""
    if error_query == "*ESR?":
        status = int(instrument.ask(error_query))
        return [status] if status else []
    codes: list[int] = []
    while error_query and not (answer := instrument.ask(error_query).strip()).startswith(("+0,", "0,")):
        codes.append(int(answer.split(",")[0]))
    return codes


def conformance(model: str, transport: str, tmp_path: Path) -> tuple[int, list[tuple[str, str]]]:
    module, name, error_query = PAIRS[model]
    reached = reach(model, transport, tmp_path)
    driver_class = getattr(importlib.import_module(module), name)
    # Raw sockets carry no message ends: a stock client names the terminator (VXI-11 would not).
    # A query the instrument refuses gets no reply (it queues the error): REPLY_WAIT_S bounds the wait.
    instrument = driver_class(reached.address, visa_library=reached.visa_library,
                              timeout=round(REPLY_WAIT_S[transport] * 1000),
                              read_termination="\n", write_termination="\n")
    try:
        if reached.server is not None:
            no_nagle(instrument.adapter.connection)
        with waiting(instrument.adapter.connection, LATE_REPLY_WAIT_S):
            _queued(instrument, error_query)      # what power-on left (the 336's power-on bit)
        return round_trips(instrument, error_query)
    finally:
        instrument.adapter.close()
        reached.stop()


@pytest.mark.slow
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("model", sorted(PAIRS))
def test_every_stock_pymeasure_property_round_trips_or_has_a_reviewed_cause(model, transport, tmp_path):
    passed, failures = conformance(model, transport, tmp_path)
    missing = unexplained(CAUSES, failures)
    assert not missing, "\n".join(missing)
    assert passed >= 20                     # the walk reached the driver's properties


def test_a_timeout_is_never_an_accepted_cause():
    assert cause_of(CAUSES, "ch_1.shape", "get: VisaIOError: VI_ERROR_TMO (-1073807339): Timeout expired; queued []") is None
    assert cause_of(CAUSES, "ch_1.burst_state", "get: VisaIOError: VI_ERROR_TMO (-1073807339): Timeout expired; queued []") \
        is None


if __name__ == "__main__":
    print(table({model: pair[1] for model, pair in PAIRS.items()}, conformance, CAUSES, "PyMeasure", "properties"))
