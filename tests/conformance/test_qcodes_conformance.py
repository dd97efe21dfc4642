"""Stock QCoDeS drivers against the emulated models, every parameter, over both transports.

For each emulated model and the stock QCoDeS driver that claims it, every gettable parameter
of the driver and of its submodules is read, and every settable one is set to the value just
read and read back (a round trip that changes nothing). A parameter passes when both work; a
failure must match one of the reviewed causes in `CAUSES` — each a defect or precondition of
the stock driver (qcodes 0.58), checked against the instrument's manual — or the test fails
and names it. A timeout (the emulator not answering) is never an accepted cause. The table
of docs/conformance.md is this test's output: `python tests/conformance/test_qcodes_conformance.py`.
"""

from __future__ import annotations

import importlib
import logging
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stock_bench import no_nagle, reach  # noqa: E402
from walk import (REPLY_WAIT_S, TRANSPORTS, Cause, cause_of, identity_of, read_allowing_late,  # noqa: E402
                  table, unexplained)

pytestmark = pytest.mark.timeout(300)

#: emulator model -> (module, stock QCoDeS class)
PAIRS = {
    "keysight_33522b": ("qcodes.instrument_drivers.Keysight", "Keysight33522B"),
    "keysight_33622a": ("qcodes.instrument_drivers.Keysight", "Keysight33622A"),
    "lakeshore_336": ("qcodes.instrument_drivers.Lakeshore", "LakeshoreModel336"),
    "lakeshore_372": ("qcodes.instrument_drivers.Lakeshore", "LakeshoreModel372"),
    "keithley_2450": ("qcodes.instrument_drivers.Keithley", "Keithley2450"),
    "keysight_infiniium": ("qcodes.instrument_drivers.Keysight", "KeysightInfiniium"),
    "tektronix_dpo7254": ("qcodes.instrument_drivers.tektronix.DPO7200xx", "TektronixDPO7000xx"),
}


CAUSES = (
    Cause("validator refuses the instrument's own reply",
          "the driver's set validator lists other spellings than the instrument answers (SCPI "
          "short form, upper case: 'RTIM', 'FRON', 'RIBINARY', 'AUTO'), so setting back what was "
          "read fails in the driver before anything is sent",
          r"^set: ValueError: \(\"'[^']*' is not in \{"),
    Cause("no get parser",
          "the getter returns the reply text ('0.0', '1') and the setter's validator wants a number",
          r"^set: TypeError: \(\"'[^']*' is not an? (int or float|sequence)"),
    Cause("declared settable, read-only",
          "the driver declares a setter that raises by design: measurement results (the Tektronix "
          "manuals list MEASUrement:MEAS<x>:VALue? as query only), sensor curve header fields",
          r"^set: (ValueError: \('A measurement cannot be set|RuntimeError: \('Calling set but no `set_cmd`)"),
    Cause("sensor name validator",
          "vals.Strings(15) makes 15 characters the minimum; the manuals give 15 as the maximum",
          r"^set: ValueError: .*length must be between 15 and", r".*sensor_name$"),
    Cause("driver precondition",
          "the driver itself refuses until another call was made (sweep_setup, the output on for a "
          "measurement, user_number before user_delay, the Tektronix horizontal mode set to manual "
          "before a record length; the emulated scope, as its manual, takes one in AUTO mode too)",
          r"^(get: (ValueError: \('Please (setup|call)|RuntimeError: \('Output needs to be on)"
          r"|set: TektronixDPOModeError: )"),
    Cause("user_number unset",
          "user_delay queries USER<user_number>, None until set: the instrument answers -113 to "
          "'USERNone?', as a real 2450 does, and the read times out",
          r"^get: VisaIOError: .*VI_ERROR_TMO", r".*\.user_delay$"),
    Cause("heater setup in Model 335 form",
          "the driver parses HTRSET? with the Model 335's five fields (output type first); the "
          "Models 336 and 372 answer four (heater resistance first), so every field of the group "
          "fails to map",
          r"^get: KeyError: \(\"'[^']*' not in val_mapping",
          r".*\.(output_type|output_heater_resistance|output_max_current|output_max_user_current|output_display)$"),
    Cause("Infiniium trace container",
          "DSOTraceParam passes container=npt.NDArray to pyvisa, which cannot build it (nwlab's driver "
          "reads the same block itself)",
          r"^get: InvalidBinaryFormat: ", r"ch\d\.trace$"),
    Cause("trace of a channel that is off",
          "as powered on only channel 1 is on; a scope has no record of a channel that is off, so "
          "the Infiniium's :WAV:DATA? and the Tektronix's CURVe? queue an execution error and send "
          "nothing (nwlab's drivers turn on the channels they read)",
          r"^get: VisaIOError: .*VI_ERROR_TMO", r"(ch[234]\.trace|channel[234]\.waveform\.trace)$"),
    Cause("Infiniium function trace",
          "the driver's function trace parameter gets a scalar where its validator wants an array",
          r"^get: TypeError: .*is not a numpy array", r"func\d+\.trace$"),
)


def parameters(node, prefix=""):
    for name, parameter in node.parameters.items():
        yield prefix + name, parameter
    for name, module in node.submodules.items():
        if hasattr(module, "parameters"):
            yield from parameters(module, prefix + name + ".")


def round_trips(instrument) -> tuple[int, list[tuple[str, str]]]:
    """(parameters that pass, [(path, failure)]) over every parameter but the identity."""
    passed, failures = 0, []
    identity = identity_of(instrument.visa_handle)

    def get(parameter):
        return read_allowing_late(parameter.get, instrument.visa_handle, identity)

    for path, parameter in parameters(instrument):
        if path in ("IDN", "timeout") or not parameter.gettable:
            continue
        try:
            value = get(parameter)
        except Exception as error:  # noqa: BLE001 - each failure is classified below
            failures.append((path, f"get: {type(error).__name__}: {error}"))
            continue
        if parameter.settable and value is not None and not hasattr(value, "shape"):
            try:
                parameter.set(value)
                again = get(parameter)
            except Exception as error:  # noqa: BLE001
                failures.append((path, f"set: {type(error).__name__}: {error}"))
                continue
            if again != value and not (isinstance(value, float) and again == pytest.approx(value, rel=1e-9)):
                failures.append((path, f"round trip: {value!r} came back as {again!r}"))
                continue
        passed += 1
    return passed, failures


def open_stock(model: str, transport: str, tmp_path: Path):
    module, name = PAIRS[model]
    reached = reach(model, transport, tmp_path)
    driver_class = getattr(importlib.import_module(module), name)
    instrument = driver_class(f"{name}_{uuid.uuid4().hex[:6]}", reached.address, visalib=reached.visa_library,
                              timeout=REPLY_WAIT_S[transport])
    if reached.server is not None:
        no_nagle(instrument.visa_handle)
    return instrument, reached


def conformance(model: str, transport: str, tmp_path: Path) -> tuple[int, list[tuple[str, str]]]:
    from qcodes.instrument_drivers.tektronix.DPO7200xx import TektronixDPOMeasurement

    qcodes_log = logging.getLogger("qcodes")
    level, settle_s = qcodes_log.level, TektronixDPOMeasurement._minimum_adjustment_time
    qcodes_log.setLevel(logging.CRITICAL)       # every failure is classified here, not logged
    # The driver sleeps 0.1 s after each measurement type change for a real scope to settle.
    TektronixDPOMeasurement._minimum_adjustment_time = 0.0
    try:
        instrument, reached = open_stock(model, transport, tmp_path)
        try:
            return round_trips(instrument)
        finally:
            instrument.close()
            reached.stop()
    finally:
        qcodes_log.setLevel(level)              # other tests read qcodes' warnings
        TektronixDPOMeasurement._minimum_adjustment_time = settle_s


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("model", sorted(PAIRS))
def test_every_stock_qcodes_parameter_round_trips_or_has_a_reviewed_cause(model, transport, tmp_path):
    passed, failures = conformance(model, transport, tmp_path)
    missing = unexplained(CAUSES, failures)
    assert not missing, "\n".join(missing)
    assert passed >= 40                     # the walk reached the driver's parameters


def test_a_timeout_is_never_an_accepted_cause():
    assert cause_of(CAUSES, "ch1.range", "get: VisaIOError: ('VI_ERROR_TMO (-1073807339): Timeout expired") is None
    assert cause_of(CAUSES, "output_1.setpoint", "get: KeyError: (\"'4' not in val_mapping\"") is None


if __name__ == "__main__":
    print(table({model: pair[1] for model, pair in PAIRS.items()}, conformance, CAUSES, "QCoDeS", "parameters"))
