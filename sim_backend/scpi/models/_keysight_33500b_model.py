"""Keysight 33500B / 33600A: models, per-channel settings, their limits and couplings."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from sim_backend.scpi.errors import ScpiError
from sim_backend.scpi.lexer import Block
from sim_backend.scpi.models._keysight_common import (
    check_levels, check_pulse_timing, conflict, load_gain,
)


@dataclass(frozen=True)
class ModelSpec:
    name: str                   # as *IDN? answers it
    channels: int
    frequency_max_hz: float     # sine
    pulse_frequency_max_hz: float  # pulse and square
    ramp_frequency_max_hz: float   # triangle and ramp
    width_min_s: float
    edge_min_s: float


_33500B = dict(width_min_s=16e-9, edge_min_s=8.4e-9, ramp_frequency_max_hz=200e3)
_33600A = dict(width_min_s=5e-9, edge_min_s=2.9e-9, ramp_frequency_max_hz=800e3)
MODELS = {
    "keysight_33511b": ModelSpec("33511B", 1, 20e6, 20e6, **_33500B),
    "keysight_33512b": ModelSpec("33512B", 2, 20e6, 20e6, **_33500B),
    "keysight_33521b": ModelSpec("33521B", 1, 30e6, 30e6, **_33500B),
    "keysight_33522b": ModelSpec("33522B", 2, 30e6, 30e6, **_33500B),
    "keysight_33611a": ModelSpec("33611A", 1, 80e6, 50e6, **_33600A),
    "keysight_33612a": ModelSpec("33612A", 2, 80e6, 50e6, **_33600A),
    "keysight_33621a": ModelSpec("33621A", 1, 120e6, 100e6, **_33600A),
    "keysight_33622a": ModelSpec("33622A", 2, 120e6, 100e6, **_33600A),
}

# Open-circuit output limits (the 50 ohm figures of the data sheet, doubled).
AMPLITUDE_MIN_OPEN_VPP, AMPLITUDE_MAX_OPEN_VPP, WINDOW_OPEN_V = 2e-3, 20.0, 10.0
EDGE_MAX_S = 1e-6
# Vpp -> Vrms for the shapes whose amplitude may be given in VRMS or DBM.
RMS_PER_VPP = {"SIN": 1 / (2 * math.sqrt(2)), "SQU": 0.5, "TRI": 1 / (2 * math.sqrt(3)),
                "RAMP": 1 / (2 * math.sqrt(3))}
PANEL_FUNCTION = {"PULS": "PULS", "SQU": "SQU"}  # other shapes are shown as their mean (DC)


#: The arbitrary waveform a channel holds after *RST (the 33500/33600 user's guide); its
#: points here: an exponential rise over five time constants, full scale -1 to +1.
DEFAULT_ARB = "INT:\\BUILTIN\\EXP_RISE.ARB"
DEFAULT_ARB_POINTS = -1 + 2 * (1 - np.exp(-5 * np.linspace(0, 1, 100))) / (1 - math.exp(-5))
#: Points per waveform in volatile memory (standard memory: 1 MSa per channel).
ARB_POINTS_MIN, ARB_POINTS_MAX = 8, 1_000_000
DAC_FULL_SCALE = 32767          # DATA:ARB:DAC codes run from -32767 to +32767


def arb_points(values: tuple, *, dac: bool, big_endian: bool) -> np.ndarray:
    """DATA:ARBitrary's points in full scale (-1..+1), from its list of numbers or its binary
    block (float32, or int16 DAC codes; byte order from FORMat:BORDer); -222 outside the range
    or the memory's point counts."""
    if len(values) == 1 and isinstance(values[0], Block):
        kind = (">" if big_endian else "<") + ("i2" if dac else "f4")
        data = values[0].data
        if len(data) % np.dtype(kind).itemsize:
            raise ScpiError(-222, "Data out of range;block length is not whole points")
        points = np.frombuffer(data, dtype=kind).astype(float)
    else:
        try:
            points = np.array([float(str(v)) for v in values])
        except ValueError:
            raise ScpiError(-104) from None
    if dac:
        points = points / DAC_FULL_SCALE
    if not ARB_POINTS_MIN <= points.size <= ARB_POINTS_MAX:
        raise ScpiError(-222, f"Data out of range;{points.size} points, {ARB_POINTS_MIN} to {ARB_POINTS_MAX} allowed")
    if not np.all(np.abs(points) <= 1.0):
        raise ScpiError(-222, "Data out of range;points must be within -1 to +1 full scale")
    return points


@dataclass(frozen=True)
class Channel:
    """One channel's settings as the instrument holds them (*RST values)."""

    function: str = "SIN"
    frequency_hz: float = 1e3
    frequency_mode: str = "CW"
    phase_deg: float = 0.0
    amplitude_vpp: float = 0.1
    offset_v: float = 0.0
    unit: str = "VPP"
    width_s: float = 100e-6
    duty_pct: float = 10.0       # pulse duty cycle, held instead of the width when hold == "DCYC"
    hold: str = "WIDT"
    lead_s: float = 10e-9
    trail_s: float = 10e-9
    square_duty_pct: float = 50.0
    ramp_symmetry_pct: float = 100.0
    burst: bool = False
    burst_mode: str = "TRIG"
    burst_cycles: float = 1      # int, or math.inf
    burst_phase_deg: float = 0.0
    burst_period_s: float = 10e-3
    gate_polarity: str = "NORM"
    trigger_source: str = "IMM"
    trigger_slope: str = "POS"
    trigger_count: float = 1
    trigger_delay_s: float = 0.0
    trigger_timer_s: float = 1.0
    arb_name: str = DEFAULT_ARB          # FUNCtion:ARBitrary: the waveform in volatile memory played
    arb_advance: str = "SRAT"            # SRATe: point to point at arb_srate_hz; TRIGger: per trigger
    arb_filter: str = "NORM"
    arb_srate_hz: float = 40e3
    output: bool = False
    load_ohm: float = 50.0
    polarity: str = "NORM"

    @property
    def period_s(self) -> float:
        return 1.0 / self.frequency_hz



def frequency_max_hz(spec: ModelSpec, function: str) -> float:
    if function in ("PULS", "SQU"):
        return spec.pulse_frequency_max_hz
    if function in ("TRI", "RAMP"):
        return spec.ramp_frequency_max_hz
    return spec.frequency_max_hz


def fit_to_period(spec: ModelSpec, ch: Channel, changed: set[str]) -> Channel:
    """What the 33500/33600 do when a new period (or frequency) leaves no room for the pulse,
    or a burst no longer fits its internal period: the user's guide says the instrument adjusts
    the pulse width (or duty cycle) to accommodate the period, edge times first (here: shortened
    as far as needed, no further), and increases the burst period as needed. A width, edge or burst period the user set in the same command
    is not adjusted: its conflict is refused (-221)."""
    period_s = ch.period_s
    if ch.function == "PULS" and "frequency_hz" in changed:
        width_s = min(ch.width_s, period_s - spec.width_min_s)
        edge_max_s = max(min(width_s, period_s - width_s) / 1.6, spec.edge_min_s)
        lead_s, trail_s = min(ch.lead_s, edge_max_s), min(ch.trail_s, edge_max_s)
        width_s = min(width_s, period_s - 1.6 * max(lead_s, trail_s))
        if width_s >= spec.width_min_s and width_s >= 1.6 * max(lead_s, trail_s):
            ch = replace(ch, width_s=width_s, duty_pct=100 * width_s / period_s, lead_s=lead_s, trail_s=trail_s)
    burst_s = ch.burst_cycles * period_s + 1e-6
    if (ch.burst and ch.burst_mode == "TRIG" and ch.trigger_source == "IMM" and "burst_period_s" not in changed
            and not math.isinf(ch.burst_cycles) and burst_s > ch.burst_period_s):
        ch = replace(ch, burst_period_s=burst_s)
    return ch


def check_channel(spec: ModelSpec, ch: Channel) -> None:
    """Raise -221 if the settings cannot coexist (each value alone is already in range)."""
    if ch.frequency_hz > frequency_max_hz(spec, ch.function) * (1 + 1e-12):
        raise conflict("frequency too high for this function")
    if ch.function != "DC":
        check_levels(ch.amplitude_vpp, ch.offset_v, ch.load_ohm, amplitude_min_vpp=AMPLITUDE_MIN_OPEN_VPP,
                     amplitude_max_vpp=AMPLITUDE_MAX_OPEN_VPP, window_v=WINDOW_OPEN_V)
    elif abs(ch.offset_v) > WINDOW_OPEN_V * load_gain(ch.load_ohm) * (1 + 1e-12):
        raise conflict("offset exceeds the output window")
    if ch.unit != "VPP" and (ch.function not in RMS_PER_VPP or (ch.unit == "DBM" and math.isinf(ch.load_ohm))):
        raise conflict("amplitude unit not available here")
    if ch.function == "PULS":
        if ch.width_s < spec.width_min_s * (1 - 1e-9):
            raise conflict("pulse width below model minimum")
        check_pulse_timing(ch.period_s, ch.width_s, ch.lead_s, ch.trail_s, spec.width_min_s)
    if ch.burst and ch.burst_mode == "TRIG" and ch.trigger_source == "IMM":
        if math.isinf(ch.burst_cycles) or ch.burst_cycles * ch.period_s + 1e-6 > ch.burst_period_s:
            raise conflict("burst does not fit its internal period")


def amplitude_in_unit(ch: Channel, vpp: float) -> float:
    """A peak-to-peak amplitude expressed in the channel's VOLTage:UNIT."""
    if ch.unit == "VPP":
        return vpp
    rms = vpp * RMS_PER_VPP[ch.function]
    return rms if ch.unit == "VRMS" else 10 * math.log10(rms**2 / ch.load_ohm / 1e-3)


def amplitude_vpp(ch: Channel, value: float) -> float:
    """An amplitude given in the channel's VOLTage:UNIT, as Vpp."""
    if ch.unit == "VPP":
        return value
    rms = value if ch.unit == "VRMS" else math.sqrt(1e-3 * ch.load_ohm * 10 ** (value / 10))
    return rms / RMS_PER_VPP[ch.function]
