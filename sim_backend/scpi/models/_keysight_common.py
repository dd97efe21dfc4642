"""Shared by the Keysight pulse generator personalities (33500B/33600A family, 81160A).

Both keep their own per-channel settings (the instrument's view, in its own terms) and show
the result on the bench's `PulseGeneratorPanel`, which is what the rest of the world
sees. Levels are held as displayed values: the amplitude the instrument would put across the
load it was told about (`OUTPut:LOAD`), behind its 50 ohm source impedance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from sim_backend.bench.pulse_generator import GeneratorChannel, PulseGeneratorPanel
from sim_backend.scpi.commands import Command, setting
from sim_backend.scpi.errors import ScpiError
from sim_backend.scpi.ieee488 import ScpiPersonality
from sim_backend.scpi.lexer import Token
from sim_backend.scpi.numbers import looks_numeric, parse_number
from sim_backend.scpi.params import Integer, Param, Real

#: Keysight answers numbers as NR3 with 15 significant digits.
NR3 = "{:+.14E}"
#: What Keysight instruments answer for INFinity (the SCPI convention).
INFINITY_ANSWER = 9.9e37
SOURCE_IMPEDANCE_OHM = 50.0
#: The panel expands a burst into one array entry per cycle, so a 1e8-cycle (or infinite)
#: burst is shown as this many cycles; acquisitions look at microseconds after a trigger.
PANEL_BURST_CYCLES_MAX = 100_000
_INFINITY_WORDS = frozenset({"INF", "INFINITY"})


def load_gain(load_ohm: float) -> float:
    """Fraction of the open-circuit voltage across `load_ohm` (1 for high Z)."""
    return 1.0 if math.isinf(load_ohm) else load_ohm / (load_ohm + SOURCE_IMPEDANCE_OHM)


def real(unit: str | None, low: float, high: float, default: float) -> Real:
    """A real parameter answered in the Keysight NR3 format."""
    return Real(unit, low, high, default, NR3)


@dataclass(frozen=True)
class RealOrInfinity(Real):
    """A real that also takes INFinity (answered as 9.9E+37), e.g. a high-Z load."""

    def convert(self, token: Token) -> float:
        if isinstance(token, str) and token.upper() in _INFINITY_WORDS:
            return math.inf
        return super().convert(token)

    def format(self, value: object) -> str:
        return super().format(INFINITY_ANSWER if math.isinf(value) else value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class IntegerOrInfinity(Integer):
    """A count that also takes INFinity (answered as 9.9E+37), e.g. burst cycles."""

    def convert(self, token: Token) -> int | float:  # type: ignore[override]
        if isinstance(token, str) and token.upper() in _INFINITY_WORDS:
            return math.inf
        return super().convert(token)

    def format(self, value: object) -> str:
        return NR3.format(INFINITY_ANSWER if math.isinf(value) else value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class LoadDependent(Real):
    """A real whose range the handler checks (it depends on the load and on other settings);
    `min`/`max` are the 50 ohm figures that MIN and MAX stand for."""

    def convert(self, token: Token) -> float:
        if isinstance(token, str) and looks_numeric(token):
            return parse_number(token, self.unit)
        return super().convert(token)


def conflict(detail: str) -> ScpiError:
    return ScpiError(-221, f"Settings conflict;{detail}")


def out_of_range(detail: str) -> ScpiError:
    return ScpiError(-222, f"Data out of range;{detail}")


def check_amplitude(vpp: float, load_ohm: float, *, amplitude_min_vpp: float, amplitude_max_vpp: float) -> None:
    """A requested amplitude against open-circuit limits scaled to the load (-222 outside)."""
    gain = load_gain(load_ohm)
    if not amplitude_min_vpp * gain * (1 - 1e-12) <= vpp <= amplitude_max_vpp * gain * (1 + 1e-12):
        raise out_of_range("amplitude")


def check_pulse_timing(period_s: float, width_s: float, lead_s: float, trail_s: float,
                       width_min_s: float) -> None:
    """Keysight pulse rules: the pulse and the gap each fit 1.6 edge times and a minimum width."""
    if width_s > period_s - width_min_s:
        raise conflict("pulse width too long for period")
    if 1.6 * max(lead_s, trail_s) > width_s:
        raise conflict("edge time too long for pulse width")
    if 1.6 * max(lead_s, trail_s) > period_s - width_s:
        raise conflict("edge time too long for period")


def check_levels(amplitude_vpp: float, offset_v: float, load_ohm: float, *, amplitude_min_vpp: float,
                 amplitude_max_vpp: float, window_v: float) -> None:
    """Amplitude and offset against open-circuit limits scaled to the load (-221 on conflict)."""
    gain = load_gain(load_ohm)
    if not amplitude_min_vpp * gain <= amplitude_vpp * (1 + 1e-12) <= amplitude_max_vpp * gain * (1 + 1e-12):
        raise conflict("amplitude outside the range for this load")
    if abs(offset_v) + amplitude_vpp / 2 > window_v * gain * (1 + 1e-12):
        raise conflict("offset and amplitude exceed the output window")


def field_setting(pattern: str, param: Param, name: str, doc: str) -> Command:
    """A per-channel setting that only stores a value (no coupling to other settings)."""

    def get(self: Any, *suffixes: int) -> object:
        return getattr(self.channels[self.channel_of(*suffixes)], name)

    def put(self: Any, *args: Any) -> None:
        *suffixes, value = args
        self.change(self.channel_of(*suffixes), **{name: value})

    get.__doc__ = doc
    return setting(pattern, param)(get).setter(put)


def load_setting(param: Param, doc: str) -> Command:
    """`OUTPut#:LOAD`: the output voltage stays, so the displayed levels follow the new load."""

    def get(self: Any, number: int) -> float:
        return self.channels[number].load_ohm

    def put(self: Any, number: int, ohms: float) -> None:
        ch = self.channels[number]
        scale = load_gain(ohms) / load_gain(ch.load_ohm)
        self.change(number, load_ohm=ohms, amplitude_vpp=ch.amplitude_vpp * scale, offset_v=ch.offset_v * scale)

    get.__doc__ = doc
    return setting("OUTPut#:LOAD", param)(get).setter(put)


def _waveform(channel: GeneratorChannel) -> tuple:
    return (channel.function, channel.amplitude_vpp, channel.offset_v, channel.frequency_hz,
            channel.pulse_width_s, channel.lead_edge_s, channel.trail_edge_s, channel.inverted,
            channel.burst_enabled, channel.output_enabled)


class KeysightPulsePersonality(ScpiPersonality):
    """Plumbing shared by both families: the panel, channel suffixes, *TRG, committing changes.

    A model keeps `channels` (frozen dataclasses by number, with `hold`, `duty_pct`, `width_s`
    and `period_s`) and supplies `validate(channel)` and `_show(number)`.
    """

    role = "pulse_generator"
    models: ClassVar[tuple[str, ...]] = ()
    #: Header nodes whose numeric suffix is a channel number.
    channel_nodes: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def channel_count(cls, model: str, settings: dict) -> int:
        raise NotImplementedError

    @classmethod
    def create_panel(cls, model: str, settings: dict) -> PulseGeneratorPanel:
        return PulseGeneratorPanel.with_channels(cls.channel_count(model, settings))

    def __init__(self, world: Any, role_name: str, model: str, settings: dict) -> None:
        super().__init__()
        self.world, self.role_name, self.model = world, role_name, model
        self.channel_total = self.channel_count(model, settings)
        self.suffix_limits = {node: self.channel_total for node in self.channel_nodes}
        self.reset()

    @property
    def panel(self) -> PulseGeneratorPanel:
        return self.world.panels[self.role_name]

    def change(self, number: int, **fields: object) -> None:
        """Validate the channel's settings with `fields` applied, then commit and show them."""
        self.commit(number, self.prepare(number, **fields))

    def prepare(self, number: int, **fields: object) -> Any:
        """The channel's settings with `fields` applied and fitted, validated but not committed
        (a change that spans channels validates every one before committing any)."""
        candidate = replace(self.channels[number], **fields)
        if candidate.hold == "DCYC" and "width_s" not in fields:
            candidate = replace(candidate, width_s=candidate.period_s * candidate.duty_pct / 100)
        else:
            candidate = replace(candidate, duty_pct=100 * candidate.width_s / candidate.period_s)
        candidate = self.fit(candidate, set(fields))
        self.validate(candidate)
        return candidate

    def commit(self, number: int, channel: Any) -> None:
        """Make validated settings the channel's and show them."""
        self.channels[number] = channel
        self._show(number)

    def fit(self, channel: Any, changed: set[str]) -> Any:
        """The settings the model adjusts itself to make room for the `changed` ones (its
        manual's rules); by default none: a conflict is refused."""
        return channel

    def validate(self, channel: Any) -> None:
        """Raise -221 if a channel's settings cannot coexist."""
        raise NotImplementedError

    def _show(self, number: int) -> None:
        """Put channel `number`'s settings on the front panel (through `show`)."""
        raise NotImplementedError

    def channel_of(self, *suffixes: int) -> int:
        """The channel a header names; `SOUR2:PULS:WIDT2` and `PULS:WIDT2` both mean 2."""
        named = {number for number in suffixes if number != 1}
        if len(named) > 1:
            raise ScpiError(-114)
        return named.pop() if named else 1

    def show(self, number: int, **fields: object) -> None:
        """Put settings on the front panel; a changed continuous waveform restarts now."""
        channel = self.panel.channels[number]
        before = _waveform(channel)
        for name, value in fields.items():
            setattr(channel, name, value)
        if _waveform(channel) != before:
            channel.running_since_s = self.world.now_s()

    def trigger(self) -> None:
        """*TRG: a bus trigger starts a burst on every channel waiting for one."""
        self.panel.trigger(self.world.now_s(), source="BUS")
