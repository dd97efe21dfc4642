"""Tektronix DPO/MSO 5000, 7000, 70000 as the oscilloscope: the stock QCoDeS family driver plus
the role verbs.

Commands (DPO70000/DPO7000/MSO5000 Series Programmer Manual, "Command Groups": Acquisition,
Horizontal, Vertical, Trigger, Waveform Transfer, Status and Error): `ACQuire:STATE`,
`ACQuire:STOPAfter SEQuence`, `ACQuire:MODe`, `ACQuire:NUMAVg`, `SELect:CH<x>`, `CH<x>:SCAle`,
`CH<x>:OFFSet`, `CH<x>:POSition`, `HORizontal:MODE MANual`, `HORizontal:MODE:SAMPLERate`,
`HORizontal:MODE:RECOrdlength`, `HORizontal:POSition`, `TRIGger:A:TYPe EDGE`,
`TRIGger:A:EDGE:SOUrce|SLOpe`, `TRIGger:A:LEVel`, `TRIGger:A:MODe NORMal`, `DATa:SOUrce|ENCdg|
WIDth|STARt|STOP`, `WFMOutpre:NR_Pt?|XINcr?|XZEro?|YMUlt?|YOFf?|YZEro?`, `CURVe?`, `*ESR?`,
`EVMsg?`. These scopes keep their errors in the event queue (no SYSTem:ERRor?).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qcodes.instrument_drivers.tektronix.DPO7200xx import (
    TektronixDPO7000xx,
    TektronixDPOMeasurementParameter,
    TektronixDPOWaveform,
)

from drivers._common import reply_units
from drivers._scope import AcquisitionSettings, ScopeRole, ranges_unseen_rules
from drivers._write_guard import Admission, Rule, number
from contracts.envelope import Envelope
from contracts.records import Quantized

#: Vertical divisions on screen: the full-scale range is 10 x CH<x>:SCAle.
SCREEN_DIVISIONS = 10
#: The shortest record these scopes take (HORizontal:MODE:RECOrdlength).
RECORD_LENGTH_MIN = 500


class TektronixDPO(ScopeRole, TektronixDPO7000xx):
    """Oscilloscope role on a Tektronix DPO/MSO 5000/7000/70000."""

    error_query = "EVMsg?"

    def __init__(self, name: str, address: str, *, envelope: Envelope | None = None, **kwargs: Any) -> None:
        self.envelope = envelope or Envelope("oscilloscope")
        super().__init__(name, address, **kwargs)
        self.remember_address(address, kwargs.get("visalib"))
        self.channel_count = self.number_of_channels
        _exclude_state_changing_from_snapshots(self)

    def raise_on_errors(self, after: str, query: str | None = None) -> None:
        # Events reach the queue once *ESR? has been read (Programmer Manual, "Status and Events").
        self.ask("*ESR?")
        super().raise_on_errors(after, query)

    def _check(self, s: AcquisitionSettings) -> None:
        super()._check(s)
        if s.record_length < RECORD_LENGTH_MIN:
            raise ValueError(f"record_length must be >= {RECORD_LENGTH_MIN} on this scope, got {s.record_length}")

    def _write_acquisition(self, s: AcquisitionSettings) -> None:
        self.write("ACQuire:STATE STOP")
        shown = set(s.channel_ranges_v) | {s.trigger_channel}
        for channel in range(1, self.channel_count + 1):
            self.write(f"SELect:CH{channel} {'ON' if channel in shown else 'OFF'}")
        for channel, range_v in sorted(s.channel_ranges_v.items()):
            self.write(f"CH{channel}:SCAle {range_v / SCREEN_DIVISIONS:.6g}")
            self.write(f"CH{channel}:OFFSet 0")
            self.write(f"CH{channel}:POSition 0")
        # MANual: sample rate and record length are set, the time per division follows.
        self.write("HORizontal:MODE MANual")
        self.write(f"HORizontal:MODE:SAMPLERate {s.sample_rate_hz:.9g}")
        self.write(f"HORizontal:MODE:RECOrdlength {s.record_length:d}")
        self.write(f"HORizontal:POSition {100 * s.pretrigger_s / s.duration_s:.9g}")
        self.write("TRIGger:A:TYPe EDGE")
        self.write(f"TRIGger:A:EDGE:SOUrce CH{s.trigger_channel}")
        self.write(f"TRIGger:A:EDGE:SLOpe {'RISe' if s.trigger_slope == 'rising' else 'FALL'}")
        self.write(f"TRIGger:A:LEVel {s.trigger_level_v:.6g}")
        self.write("TRIGger:A:MODe NORMal")
        if s.average_count > 1:
            self.write(f"ACQuire:NUMAVg {s.average_count:d}")
            self.write("ACQuire:MODe AVErage")
        else:
            self.write("ACQuire:MODe SAMple")
        self.write("ACQuire:STOPAfter SEQuence")
        self.write("DATa:ENCdg SRIBinary")
        self.write("DATa:WIDth 2")
        self.write("DATa:STARt 1")
        self.write(f"DATa:STOP {s.record_length:d}")

    def _write_arm(self) -> None:
        self.write("ACQuire:STATE RUN")

    def _write_stop(self) -> None:
        self.write("ACQuire:STATE STOP")

    def _read_acquired(self) -> bool:
        # With STOPAfter SEQuence the scope stops itself once the record is complete.
        return self.ask("ACQuire:STATE?").strip() == "0"

    def _read_record(self, channel: int) -> tuple[np.ndarray, Quantized]:
        # The source and the record's axes in one exchange (the answers of a message's queries
        # come back as one, joined by ';'), the codes in a second: one exchange per value was
        # eight round trips for every channel of every capture.
        points, x_increment_s, x_zero_s, y_mult_v, y_offset, y_zero_v = self.ask_parsed(
            ";".join([f"DATa:SOUrce CH{channel}", *(f":WFMOutpre:{value}?" for value in WAVEFORM_AXES)]),
            _waveform_axes)
        raw = self._read_int16_block("CURVe?", channel, points, "WFMOutpre:NR_Pt")
        # (raw - YOFf) * YMUlt + YZEro, with the codes kept as sent
        return x_zero_s + np.arange(points) * x_increment_s, Quantized(raw, y_mult_v, y_zero_v - y_offset * y_mult_v)

    # --- the write guard's rule ---------------------------------------------------------------
    def write_rules(self) -> list[Rule]:
        def channel_scale(admission: Admission) -> None:
            range_v = SCREEN_DIVISIONS * number(admission, 0, "vertical scale", "V/div")
            self.envelope.check_at_most("input_range_max_v", range_v, f"channel {admission.channel} input range", "V")
        # *RST and FACtory: 100 mV/div on every channel; AUTOSet: what the signals call for;
        # RECAll:SETUp: a stored setup's.
        return [Rule(":CH{n}:SCAle", channel_scale),
                *ranges_unseen_rules(self.envelope, ("*RST", "FACtory", "AUTOSet*", "RECAll:SETUp*"))]


def _exclude_state_changing_from_snapshots(instrument: Any) -> None:
    """Stock parameters whose get writes first (a measurement slot's type and state, a
    waveform's DATa:SOUrce) must not run in a snapshot: snapshots change nothing."""
    modules = [instrument]
    while modules:
        module = modules.pop()
        for parameter in module.parameters.values():
            if isinstance(parameter, TektronixDPOMeasurementParameter) or isinstance(module, TektronixDPOWaveform):
                parameter.snapshot_exclude = True
        modules.extend(m for m in module.submodules.values() if hasattr(m, "parameters"))


#: The WFMOutpre values a record's axes are computed from, in the order they are asked.
WAVEFORM_AXES = ("NR_Pt", "XINcr", "XZEro", "YMUlt", "YOFf", "YZEro")


def _waveform_axes(reply: str) -> tuple[int, float, float, float, float, float]:
    """(points, x increment s, x zero s, y multiplier V, y offset in codes, y zero V) of the
    answers to WAVEFORM_AXES' queries in one reply."""
    points, *values = reply_units(reply, len(WAVEFORM_AXES))
    x_increment_s, x_zero_s, y_mult_v, y_offset, y_zero_v = (float(value) for value in values)
    return int(points), x_increment_s, x_zero_s, y_mult_v, y_offset, y_zero_v
