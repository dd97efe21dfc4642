"""Tektronix DPO/MSO panel commands around the waveform path: trigger A and B, measurement
slots and the immediate measurement, statistics, cursors, the event queue, HEADer.

The stock QCoDeS driver's snapshot writes `MEASUrement:MEAS#:TYPe <t>` and `STATe 1` for each of
its 52 types on 7 slots and reads `VALue?` each time: every type is accepted; those the bench
does not compute answer 9.91E37, the scope's "no valid value".
"""

from __future__ import annotations

from dataclasses import dataclass

from sim_backend.scpi.commands import Command, command, query, setting
from sim_backend.scpi.models._scope_common import ScopePersonality, measure, stored
from sim_backend.scpi.params import Boolean, Choice, Integer, Real, mnemonic_forms
from sim_backend.scpi.responses import quoted

NR3 = "{:.10E}"
UNDEFINED = 9.91e37

#: Measurement types (Tek mnemonics) -> (kind computed by `measure`, unit).
TYPES = {
    "AMPlitude": ("amplitude", "V"), "AREa": ("", "Vs"), "BURst": ("", "s"), "CARea": ("", "Vs"),
    "CMEan": ("mean", "V"), "CRMs": ("rms", "V"), "DELay": ("", "s"), "DISTDUty": ("", "%"),
    "EXTINCTDB": ("", "dB"), "EXTINCTPCT": ("", "%"), "EXTINCTRATIO": ("", ""), "EYEHeight": ("", "V"),
    "EYEWIdth": ("", "s"), "FALL": ("fall", "s"), "FREQuency": ("frequency", "Hz"), "HIGH": ("top", "V"),
    "HITs": ("", "hits"), "LOW": ("base", "V"), "MAXimum": ("max", "V"), "MEAN": ("mean", "V"),
    "MEDian": ("", "V"), "MINImum": ("min", "V"), "NCROss": ("", "s"), "NDUty": ("", "%"),
    "NOVershoot": ("", "%"), "NWIdth": ("nwidth", "s"), "PBASe": ("base", "V"), "PCROss": ("", "s"),
    "PCTCROss": ("", "%"), "PDUty": ("pduty", "%"), "PEAKHits": ("", "hits"), "PERIod": ("period", "s"),
    "PHAse": ("", "°"), "PK2Pk": ("pk2pk", "V"), "PKPKJitter": ("", "s"), "PKPKNoise": ("", "V"),
    "POVershoot": ("", "%"), "PTOP": ("top", "V"), "PWIdth": ("pwidth", "s"), "QFACtor": ("", ""),
    "RISe": ("rise", "s"), "RMS": ("rms", "V"), "RMSJitter": ("", "s"), "RMSNoise": ("", "V"),
    "SIGMA1": ("", "%"), "SIGMA2": ("", "%"), "SIGMA3": ("", "%"), "SIXSigmajit": ("", "s"),
    "SNRatio": ("", ""), "STDdev": ("stddev", "V"), "UNDEFINED": ("", ""), "WAVEFORMS": ("", "wfms"),
    "ACRMS": ("stddev", "V"),
}
_BY_SHORT = {mnemonic_forms(name)[0]: kind_unit for name, kind_unit in TYPES.items()}


@dataclass(frozen=True, init=False)
class LongChoice(Choice):
    """Character data answered in the long form, as Tek scopes do (`SAMPLE`, `RIBINARY`)."""

    def format(self, value: object) -> str:
        for option in self.options:
            short, long = mnemonic_forms(option)
            if short == value:
                return long
        return str(value)


_TYPE = LongChoice(*TYPES)
_MEAS_SOURCES = LongChoice(*(f"{k}{n}" for k in ("CH", "MATH", "REF") for n in range(1, 5)), "HIStogram")
_TRIGGER_SOURCES = LongChoice(*(f"CH{n}" for n in range(1, 5)), *(f"D{n}" for n in range(16)), "AUXiliary", "LINE")


def _per_node(node: str, pattern: str, param, attribute: str, doc: str) -> Command:
    """A trigger setting kept per trigger system (A or B) in `attribute`[node]."""
    def get(self):
        return param.format(getattr(self, attribute)[node])

    def put(self, value) -> None:
        getattr(self, attribute)[node] = value
    return Command(f"TRIGger:{node}:{pattern}", (param,), (), put, get, doc)


def _level(node: str) -> Command:
    """TRIGger:<node>:LEVel, kept per edge source of that trigger system."""
    def get(self) -> str:
        return NR3.format(self.trigger_levels[node].get(self.trigger_source[node], 0.0))

    def put(self, volts: float) -> None:
        self.trigger_levels[node][self.trigger_source[node]] = volts
    return Command(f"TRIGger:{node}:LEVel", (Real("V", -12.0, 12.0),), (), put, get,
                   "Trigger level of the edge source, V.")


def _statistic(name: str):
    def handler(self, slot: int) -> str:
        return self.slot_value(slot, name)
    handler.__doc__ = f"{name} of the slot's measurement (single record: the value), unit of the type."
    return handler


class TekPanelCommands(ScopePersonality):
    """Commands shared by every DPO/MSO model besides horizontal, vertical and waveform transfer."""

    suffix_limits = {"CH": 4, "MEAS": 8, "SOU": 2, "POSITION": 2, "POSITIO": 2}
    omit = frozenset({"SYSTem:ERRor[:NEXT]", "SYSTem:ERRor:COUNt"})

    def reset_panel_commands(self) -> None:
        self.trigger_source = {"A": "CH1", "B": "CH1"}
        self.trigger_slope = {"A": "RIS", "B": "RIS"}
        self.trigger_coupling = {"A": "DC", "B": "DC"}
        self.trigger_type = {"A": "EDGE", "B": "EDGE"}
        self.trigger_levels = {"A": {}, "B": {}}
        self.trigger_mode = "AUTO"
        self.slot_type = {n: "UNDEFINED" for n in range(1, 9)}
        self.slot_state = {n: False for n in range(1, 9)}
        self.slot_sources = {(n, s): "CH1" if s == 1 else "CH2" for n in range(1, 9) for s in (1, 2)}
        self.immediate_type, self.immediate_sources = "UNDEFINED", {1: "CH1", 2: "CH2"}
        self.gating, self.statistics_mode, self.weighting = "OFF", "ALL", 32
        self.cursor_function, self.cursor_state = "OFF", False
        self.cursor_v, self.cursor_h = {1: 0.0, 2: 0.0}, {1: 0.0, 2: 0.0}

    def sync_trigger(self) -> None:
        trigger, source = self.panel.trigger, self.trigger_source["A"]
        trigger.source_channel = int(source[2:]) if source.startswith("CH") else 0
        trigger.level_v = self.trigger_levels["A"].get(source, 0.0)
        trigger.slope = "falling" if self.trigger_slope["A"] == "FALL" else "rising"
        self.panel.auto_trigger = self.trigger_mode == "AUTO"

    header = stored("HEADer", Boolean(), "header_on", "ON: answers start with their header.")

    # -- trigger -------------------------------------------------------------------------------

    for _node in ("A", "B"):
        vars()[f"trigger_source_{_node}"] = _per_node(_node, "EDGE:SOUrce", _TRIGGER_SOURCES, "trigger_source",
                                                      "Edge trigger source.")
        vars()[f"trigger_slope_{_node}"] = _per_node(_node, "EDGE:SLOpe", LongChoice("RISe", "FALL", "EITHer"),
                                                     "trigger_slope", "Edge slope (EITHer: rising here).")
        vars()[f"trigger_coupling_{_node}"] = _per_node(
            _node, "EDGE:COUPling", LongChoice("AC", "DC", "HFRej", "LFRej", "NOISErej", "ATRIGger"),
            "trigger_coupling", "Edge trigger coupling.")
        vars()[f"trigger_type_{_node}"] = _per_node(_node, "TYPe", LongChoice("EDGE", "LOGIc", "PULse", "VIDeo"),
                                                    "trigger_type", "Trigger type (edge is what triggers here).")
        vars()[f"trigger_level_{_node}"] = _level(_node)
    del _node

    trigger_mode_setting = stored("TRIGger:A:MODe", LongChoice("AUTO", "NORMal"), "trigger_mode",
                                  "AUTO forces a trigger when none came in time (bench.scope); NORMal waits.")

    @query("TRIGger:STATE")
    def trigger_state(self) -> str:
        """READY while armed, SAVE when stopped or done."""
        return "SAVE" if self.complete() or self.panel.state == "stopped" else "READY"

    @query("TRIGger:A:READY")
    def ready_a(self) -> str:
        """1 while the trigger is armed."""
        return "0" if self.complete() or self.panel.state == "stopped" else "1"

    @query("TRIGger:B:READY")
    def ready_b(self) -> str:
        """B trigger: never armed on this bench (no sequential triggering)."""
        return "0"

    # -- measurements --------------------------------------------------------------------------

    def value_of(self, kind: str, source: str) -> float | None:
        if not kind or not source.startswith("CH"):
            return None
        return measure(kind, self.current_record(int(source[2:])))

    def slot_value(self, slot: int, statistic: str) -> str:
        value = None
        if self.slot_state[slot]:
            value = self.value_of(_BY_SHORT[self.slot_type[slot]][0], self.slot_sources[(slot, 1)])
        if value is not None and statistic == "STDdev":
            value = 0.0      # one record: no spread
        return NR3.format(UNDEFINED if value is None else value)

    measurement_type = stored("MEASUrement:MEAS#:TYPe", _TYPE, "slot_type", "Measurement type of a slot.")
    measurement_state = stored("MEASUrement:MEAS#:STATe", Boolean(), "slot_state", "Slot on or off.")

    @setting("MEASUrement:MEAS#:SOUrce#", _MEAS_SOURCES)
    def measurement_source(self, slot: int, number: int) -> str:
        """Source 1 (measured) or 2 (reference, for delay and phase) of a slot."""
        return self.slot_sources[(slot, number)]

    @measurement_source.setter
    def measurement_source(self, slot: int, number: int, source: str) -> None:
        self.slot_sources[(slot, number)] = source

    for _name in ("VALue", "MEAN", "MAXimum", "MINImum", "STDdev"):
        vars()[f"measurement_{_name.lower()}"] = query(f"MEASUrement:MEAS#:{_name}")(_statistic(_name))
    del _name

    @query("MEASUrement:MEAS#:UNIts")
    def measurement_units(self, slot: int) -> str:
        """Unit of the slot's measurement type, quoted."""
        return quoted(_BY_SHORT[self.slot_type[slot]][1])

    @query("MEASUrement:MEAS#:COUNt")
    def measurement_count(self, slot: int) -> int:
        """Records the statistics hold: 1 once a record exists."""
        return int(bool(self.panel.records))

    immediate_type = stored("MEASUrement:IMMed:TYPe", _TYPE, "immediate_type", "Immediate measurement type.")
    gating_setting = stored("MEASUrement:GATing", LongChoice("ON", "OFF", "ZOOM1", "ZOOM2", "ZOOM3", "ZOOM4",
                                                             "CURSor"), "gating", "Measurement gating.")
    statistics_mode_setting = stored("MEASUrement:STATIstics:MODe", LongChoice(
        "OFF", "ALL", "VALUEMean", "MINMax", "MEANSTDdev"), "statistics_mode", "Statistics shown.")
    weighting_setting = stored("MEASUrement:STATIstics:WEIghting", Integer(2, 1000), "weighting",
                               "Time constant of the statistics, records.")

    @setting("MEASUrement:IMMed:SOUrce#", _MEAS_SOURCES)
    def immediate_source(self, number: int) -> str:
        """Source 1 or 2 of the immediate measurement."""
        return self.immediate_sources[number]

    @immediate_source.setter
    def immediate_source(self, number: int, source: str) -> None:
        self.immediate_sources[number] = source

    @query("MEASUrement:IMMed:VALue")
    def immediate_value(self) -> str:
        """Immediate measurement on the last record (9.91E37 when undefined)."""
        value = self.value_of(_BY_SHORT[self.immediate_type][0], self.immediate_sources[1])
        return NR3.format(UNDEFINED if value is None else value)

    @query("MEASUrement:IMMed:UNIts")
    def immediate_units(self) -> str:
        """Unit of the immediate measurement, quoted."""
        return quoted(_BY_SHORT[self.immediate_type][1])

    @command("MEASUrement:STATIstics:COUNt", LongChoice("RESEt"))
    def statistics_reset(self, _: str) -> None:
        """Reset the accumulated statistics (nothing accumulates here)."""

    # -- cursors -------------------------------------------------------------------------------

    cursor_function_setting = stored("CURSor:FUNCtion", LongChoice("OFF", "HBArs", "VBArs", "SCREEN", "WAVEform"),
                                     "cursor_function", "Cursor type.")
    cursor_state_setting = stored("CURSor:STATE", Boolean(), "cursor_state", "Cursors shown.")
    cursor_vbars = stored("CURSor:VBArs:POSITION#", Real("S", -1e3, 1e3, fmt=NR3), "cursor_v",
                          "Vertical bar cursor positions, s.")
    cursor_hbars = stored("CURSor:HBArs:POSITION#", Real("V", -1e3, 1e3, fmt=NR3), "cursor_h",
                          "Horizontal bar cursor positions, V.")

    # -- events (the error queue of these scopes) ----------------------------------------------

    @query("EVENT")
    def event_code(self) -> int:
        """Code of the oldest event (removed), 0 when none."""
        return self.status.next_error().code

    @query("EVMsg")
    def event_message(self) -> str:
        """Oldest event as <code>,"<message>" (removed); 0,"No events to report" when none."""
        entry = self.status.next_error()
        return f'{entry.code},"{entry.message}"' if entry.code else '0,"No events to report - queue empty"'

    @query("ALLEv")
    def all_events(self) -> str:
        """Every queued event, oldest first (the queue is emptied)."""
        found = []
        while (entry := self.status.next_error()).code:
            found.append(f'{entry.code},"{entry.message}"')
        return ",".join(found) or '0,"No events to report - queue empty"'

    @query("EVQty")
    def event_count(self) -> int:
        """Number of queued events."""
        return len(self.status.errors)
