"""The PulseGenerator role shared by the Keysight 33500B and 81160A drivers.

`PulseGeneratorRole` holds the role verbs; each driver writes only its own commands
(`_write_pulse`, `_write_dc`, `_switch_output`). Both instruments refuse a setting that
conflicts with the others (a width longer than the period, edges longer than the width), so
moving from one pulse to another must go through valid intermediate states. `timing_order`
finds an order of the three timing writes in which every intermediate state is valid;
`level_order` does the same for high/low levels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import permutations
from typing import Any

from drivers._common import SAFE_STATE_ATTEMPTS, InstrumentError
from drivers._write_guard import Admission, Check, Rule, forget, number, only, refuse, switch
from contracts.envelope import Envelope, EnvelopeError

#: Fraction of the edge time a pulse's width and gap must each hold (Keysight: 10-90 % edges
#: take 0.625 of the 0-100 % ramp, so a pulse of width w fits edges up to w / 1.6).
EDGE_FIT = 1.6


#: The load the levels are specified into: the matched line the wiring's amperes per volt assume.
MATCHED_LOAD_OHM = 50


@dataclass(frozen=True)
class PulseTiming:
    period_s: float
    width_s: float
    edge_s: float

    def fits(self, width_min_s: float) -> bool:
        return (self.width_s <= self.period_s - width_min_s
                and EDGE_FIT * self.edge_s <= self.width_s
                and EDGE_FIT * self.edge_s <= self.period_s - self.width_s)


def timing_order(present: PulseTiming, target: PulseTiming, width_min_s: float) -> tuple[str, ...]:
    """Order of the writes ("period", "width", "edge") that keeps every step valid.

    Falls back to period, width, edge (the instrument then reports the conflict) when no order
    works, which happens only if the target itself does not fit.
    """
    for order in permutations(("period", "width", "edge")):
        state = present.__dict__.copy()
        for name in order:
            state[f"{name}_s"] = getattr(target, f"{name}_s")
            if not PulseTiming(**state).fits(width_min_s):
                break
        else:
            return order
    return ("period", "width", "edge")


def level_order(present_low_v: float, high_v: float) -> tuple[str, ...]:
    """Write "high" first when the new high stays above the present low, else "low" first."""
    return ("high", "low") if high_v > present_low_v else ("low", "high")


def write_timing(present: PulseTiming, target: PulseTiming, width_min_s: float,
                 setters: dict[str, Callable[[float], object]]) -> None:
    """Write the target's "period", "width" and "edge" through `setters`, in `timing_order`."""
    for name in timing_order(present, target, width_min_s):
        setters[name](getattr(target, f"{name}_s"))


def write_levels(amplitude_v: float, polarity: Callable[..., Any], level_high: Callable[..., Any],
                 level_low: Callable[..., Any]) -> None:
    """Levels of a pulse from 0 V to `amplitude_v`, written in `level_order` (which needs the
    present low level alone).

    A negative pulse is the positive one inverted about the offset, so it idles at 0 V.
    """
    polarity("NORM" if amplitude_v > 0 else "INV")
    high_v, low_v = (amplitude_v, 0.0) if amplitude_v > 0 else (0.0, amplitude_v)
    levels = {"high": (level_high, high_v), "low": (level_low, low_v)}
    for name in level_order(level_low(), high_v):
        parameter, value = levels[name]
        parameter(value)


def check_pulse_request(envelope: Envelope, *, amplitude_v: float, width_s: float, edge_s: float,
                        period_s: float, count: int) -> None:
    """Refuse an invalid or unsafe pulse request before anything is written."""
    if not (width_s > 0 and edge_s > 0 and period_s > width_s):
        raise ValueError(f"pulse timing must satisfy 0 < width_s < period_s and edge_s > 0; got "
                         f"width_s={width_s!r}, period_s={period_s!r}, edge_s={edge_s!r}")
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a whole number >= 1, got {count!r}")
    if amplitude_v == 0:
        raise ValueError("amplitude_v must be non-zero (use configure_dc for a constant level)")
    envelope.check_generator_pulse(amplitude_v=amplitude_v, width_s=width_s)


def check_dc_request(envelope: Envelope, level_v: float) -> None:
    envelope.check_generator_level(level_v)


@dataclass(frozen=True)
class PulseHeaders:
    """How a model spells the headers that set a channel's levels (`{n}`: the channel)."""

    high: str
    low: str
    offset: str
    amplitude: str
    width: str
    duty_cycle: str
    function: str
    output: str
    apply: str
    load: str
    #: Headers whose allowed values keep the levels and width what the guard follows (a pulse
    #: held by its width, amplitudes in volts peak to peak, a modulation off).
    fixed: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: Other spellings the model takes for one of the settings above: (spelling, field name),
    #: checked as that field is.
    aliases: tuple[tuple[str, str], ...] = ()
    #: Headers that set levels some other way, refused: (spelling, why).
    refused: tuple[tuple[str, str], ...] = ()
    #: What a period change keeps (`PULSe:HOLD`): only the width may be held.
    hold: tuple[str, ...] = ()
    #: Headers that set the period (or the frequency): a pulse held by its duty cycle would
    #: change its width with it.
    period: tuple[str, ...] = ()


def pulse_write_rules(headers: PulseHeaders, envelope: Envelope) -> list[Rule]:
    """The generator's part of the write-path guard.

    The guard follows each channel's high and low levels and offset as commanded (a Keysight
    keeps the low level when the high is set, and the amplitude when the offset is set). Every
    level a channel would put out — the pulse's high and low, the DC function's offset — must
    lie inside the envelope in generator volts (`pulse_amplitude_max_v`, which the wiring derives
    from the limit at the chip); switching an output on needs those levels known. Every channel
    is held to the role channel's limits.
    """

    def check_level(level_v: float) -> None:
        envelope.check_generator_level(level_v)

    def levels(admission: Admission) -> dict[str, float | None]:
        return admission.state.setdefault(("levels", admission.channel), {"high": None, "low": None, "offset": None})

    def settle(admission: Admission, present: dict[str, float | None]) -> None:
        # The DC function puts out the offset alone: the high and low it keeps (a pulse's
        # amplitude around the offset) are checked when the pulse function or an output brings
        # them back (set_function, check_output_levels_known).
        in_dc = admission.state.get(("function", admission.channel)) == "DC"
        for name, level_v in present.items():
            if level_v is not None and not (in_dc and name != "offset"):
                check_level(level_v)

    def set_high_or_low(name: str) -> Callable[[Admission], None]:
        def check(admission: Admission) -> None:
            present = levels(admission)
            present[name] = number(admission, 0, f"{name} level", "V")
            high, low = present["high"], present["low"]
            present["offset"] = None if high is None or low is None else (high + low) / 2
            settle(admission, present)
        return check

    def set_offset(admission: Admission) -> None:
        present = levels(admission)
        offset_v = number(admission, 0, "offset", "V")
        high, low = present["high"], present["low"]
        if high is not None and low is not None:
            shift_v = offset_v - (high + low) / 2
            present["high"], present["low"] = high + shift_v, low + shift_v
        else:
            # A pulse around the offset, of an amplitude the guard does not know (a message the
            # instrument ran in part, a reconnect): only the DC function puts out the offset alone.
            if (admission.state.get(("output_on", admission.channel))
                    and admission.state.get(("function", admission.channel)) != "DC"):
                raise EnvelopeError(f"refused: offset {offset_v:.6g} V with output {admission.channel} on and its "
                                    "amplitude unknown (set the high and low levels); nothing was written")
            present["high"] = present["low"] = None
        present["offset"] = offset_v
        settle(admission, present)

    def set_amplitude(admission: Admission) -> None:
        present = levels(admission)
        amplitude_v = abs(number(admission, 0, "amplitude", "V"))
        middle_v = present["offset"]
        if middle_v is None and present["high"] is not None and present["low"] is not None:
            middle_v = (present["high"] + present["low"]) / 2
        if middle_v is None:
            raise EnvelopeError(f"refused: amplitude {amplitude_v:.6g} V around an unknown offset (set the levels "
                                "or the offset first); nothing was written")
        present["high"], present["low"] = middle_v + amplitude_v / 2, middle_v - amplitude_v / 2
        settle(admission, present)

    def set_width(admission: Admission) -> None:
        width_s = number(admission, 0, "pulse width", "s")
        envelope.check_at_most("pulse_width_max_s", width_s, "pulse width", "s")
        admission.state[("width", admission.channel)] = width_s

    def check_output_levels_known(admission: Admission) -> None:
        present = levels(admission)
        function = admission.state.get(("function", admission.channel))
        if function not in ("PULS", "DC"):
            # At power-on a generator puts out a sine; a function refused by the instrument, or
            # set at its panel while the link was down, is not known either.
            raise EnvelopeError(f"refused: output {admission.channel} would put out a function this session never "
                                "set, or the instrument may not have taken (set it first); nothing was written")
        is_dc = function == "DC"
        needed = ("offset",) if is_dc else ("high", "low")
        if any(present[name] is None for name in needed):
            raise EnvelopeError(f"refused: output {admission.channel} would put out levels that are unknown "
                                "(set them first); nothing was written")
        if not is_dc and ("width", admission.channel) not in admission.state:
            # A 33500B's width after power-on or *RST is 100 µs.
            raise EnvelopeError(f"refused: output {admission.channel} would put out pulses of a width this session "
                                "never set (set it first); nothing was written")
        settle(admission, present)

    def set_function(admission: Admission) -> None:
        function = (admission.unit.arguments or ("",))[0].upper()
        if function not in ("PULS", "PULSE", "DC"):
            raise EnvelopeError(f"refused: function {function[:12]!r}: the envelope covers pulses and DC levels "
                                "(another waveform's width and levels are not checked); nothing was written")
        admission.state[("function", admission.channel)] = "DC" if function == "DC" else "PULS"
        if admission.state.get(("output_on", admission.channel)):
            check_output_levels_known(admission)      # the new waveform appears at once

    def set_output(admission: Admission) -> None:
        on = switch(admission)
        if on:
            check_output_levels_known(admission)
        admission.state[("output_on", admission.channel)] = on

    def reset(admission: Admission) -> None:
        forget("levels", "width", "function", "output_on", "hold")(admission)

    def set_hold(admission: Admission) -> None:
        followed_only(("WIDT", "WIDTH"))(admission)
        admission.state[("hold", admission.channel)] = "WIDT"

    def set_period(admission: Admission) -> None:
        # A pulse held by its duty cycle (set at the front panel: the guard refuses it) keeps that
        # when the period changes, so its width follows the period; only a hold this session set
        # to the width keeps the width the guard checked.
        channel = admission.channel
        if admission.state.get(("hold", channel)) == "WIDT":
            return
        if admission.state.get(("output_on", channel)) and admission.state.get(("function", channel)) != "DC":
            raise EnvelopeError(f"refused: a new period with output {channel} on and the pulse held by what this "
                                "session does not know (a duty cycle set at the front panel would stretch the "
                                "width; set the hold to the width first); nothing was written")
        admission.state.pop(("width", channel), None)     # the width is set again before an output goes on

    def load(admission: Admission) -> None:
        # Levels are set "into the load": a high-Z setting doubles them at the chip, which the
        # wiring's amperes per volt (a 50 ohm source into the matched line) does not allow for.
        if number(admission, 0, "load", "ohm") != MATCHED_LOAD_OHM:
            raise EnvelopeError("refused: a load setting other than 50 ohm changes the levels at the chip; "
                                "nothing was written")

    def followed_only(values: tuple[str, ...]) -> Check:
        return only(values, "would put out other than the levels and width the guard follows")

    checks: dict[str, Check] = {
        "high": set_high_or_low("high"), "low": set_high_or_low("low"), "offset": set_offset,
        "amplitude": set_amplitude, "width": set_width, "function": set_function, "output": set_output,
        "duty_cycle": refuse("a duty cycle sets a width the guard cannot check; set the width"),
        "apply": refuse("APPLy sets levels and switches the output on in one command; set them one by one"),
        "load": load,
    }
    return [
        *(Rule(getattr(headers, name), check) for name, check in checks.items()),
        Rule("*RST", reset),
        *(Rule(spelling, followed_only(values)) for spelling, values in headers.fixed),
        *(Rule(spelling, set_hold) for spelling in headers.hold),
        *(Rule(spelling, set_period) for spelling in headers.period),
        *(Rule(spelling, checks[name]) for spelling, name in headers.aliases),
        *(Rule(spelling, refuse(reason)) for spelling, reason in headers.refused),
    ]


# What a guard's `state` records of a channel, as pulse_write_rules keeps it (the role reads it
# through these alone).

def recorded_levels(state: dict[Any, Any], channel: int) -> dict[str, float | None]:
    """The channel's high, low and offset levels (V) the guard knows (None: unknown; {}: none yet)."""
    return state.get(("levels", channel)) or {}


def recorded_output_on(state: dict[Any, Any], channel: int) -> bool | None:
    """The channel's output known on (True) or off (False); None where it may be either."""
    return state.get(("output_on", channel))


def recorded_function(state: dict[Any, Any], channel: int) -> str | None:
    return state.get(("function", channel))


def width_recorded(state: dict[Any, Any], channel: int) -> bool:
    return ("width", channel) in state


def holds_dc(state: dict[Any, Any], channel: int, level_v: float) -> bool:
    """Whether a guard's `state` (see pulse_write_rules) knows `channel` off, in the DC function,
    at `level_v`: each of them commanded, and the instrument's report after it read clean."""
    return (recorded_output_on(state, channel) is False and recorded_function(state, channel) == "DC"
            and recorded_levels(state, channel).get("offset") == level_v)


class PulseGeneratorRole:
    """PulseGenerator verbs for a `RecoveringVisa` driver (put it first in the bases).

    The driver sets `envelope` (in generator volts: contracts.wiring derives it for the
    channel) and `role_channel`, and supplies
    `_write_pulse(target, amplitude_v, count)`, `_write_dc(level_v)` and `_switch_output(on)`.
    """

    _last_config: tuple[str, dict[str, Any]] | None = None
    _output_on = False
    #: The model's spelling of the level headers, for the write guard.
    pulse_headers: PulseHeaders
    #: What the driver writes to hold the pulse's width (not its duty cycle) across a new period.
    pulse_hold_command: str
    #: What the driver writes to set a small amplitude around the offset (`_leave_dc_at_zero`).
    leaving_dc_amplitude_command: str

    def write_rules(self) -> list[Rule]:
        return pulse_write_rules(self.pulse_headers, self.envelope)

    def configure_pulse(self, *, amplitude_v: float, width_s: float, edge_s: float, period_s: float,
                        count: int) -> None:
        check_pulse_request(self.envelope, amplitude_v=amplitude_v, width_s=width_s, edge_s=edge_s,
                            period_s=period_s, count=count)

        def write() -> None:
            self._write_matched_load()
            self._write_width_hold()
            self._leave_dc_at_zero()
            self._write_pulse(PulseTiming(period_s, width_s, edge_s), amplitude_v, count)
        settings = dict(amplitude_v=amplitude_v, width_s=width_s, edge_s=edge_s, period_s=period_s, count=count)
        self.write_role_setting("_last_config", ("pulse", settings), lambda: self.write_in_messages(write),
                                unconfirmed_at_once=self._record_short_of_a_pulse())
        self.raise_on_errors("configure_pulse")

    def configure_dc(self, *, level_v: float) -> None:
        check_dc_request(self.envelope, level_v)

        def write() -> None:
            # One write at a time, not `write_in_messages`: with the report after the DC function
            # lost, the reconnect re-applies the pulse before it and this is written again; as one
            # message, that second pass switched to DC, the output on, at an offset the guard no
            # longer knew, and was refused. Written one by one, the first pass's offset went out
            # after the reconnect (test_configure_dc_that_returns_leaves_the_dc_function).
            self._write_matched_load()
            self._write_dc(level_v)
        self.write_role_setting("_last_config", ("dc", dict(level_v=level_v)), write)
        self.raise_on_errors("configure_dc")

    def unconfirmed_write_intent(self) -> bool:
        return self._output_on

    def _record_short_of_a_pulse(self) -> bool:
        """The output on and the guard's record without the levels or the width a pulse needs (a
        report lost with the link, or garbled, in an earlier verb set them aside): the pulse
        function would be refused, "levels that are unknown", unless written as a second pass
        is, the output off meanwhile. Not where the guard knows the output off: a reconnect
        re-applying the pulse has switched it off first and switches it on at its end (written
        as a second pass there, a link lost again recorded the output off, and the verb returned
        with it off)."""
        state = self.write_guard.state
        if not self._output_on or recorded_output_on(state, self.channel) is False:
            return False
        levels = recorded_levels(state, self.channel)
        return any(levels.get(name) is None for name in ("high", "low")) or not width_recorded(state, self.channel)

    def write_again_unconfirmed(self, write: Callable[[], None], output_was_on: bool) -> None:
        # With the output on, the guard cannot admit the same settings while it does not know
        # what the first pass did (the DC function with its offset unknown): the output off
        # first (always admitted), written again, then on as it was before the verb's first
        # pass, recorded first. Recorded off meanwhile: a reconnect inside the pass leaves it
        # off (recorded on, it switched the output on, and the pass failing then left it on
        # while the role recorded it off). Refused, the output stays off and the role says so;
        # a later pass (write_whole) switches it on again.
        if not output_was_on:
            write()
            return
        self._output_on = False
        self._switch_output(False)
        write()
        self._output_on = True
        try:
            self._switch_output(True)
        except BaseException:
            self._output_on = False
            raise

    def _write_matched_load(self) -> None:
        # The levels are written into the load the instrument is told of: a load set at its front
        # panel (before the session, or while the link was down) would scale them at the chip,
        # 10 ohm threefold. Lowering the load the instrument assumes only lowers its output.
        self.write(f":OUTP{self.channel}:LOAD {MATCHED_LOAD_OHM}")

    def _leave_dc_at_zero(self) -> None:
        # In the DC function a generator keeps the last pulse's amplitude around the offset (the
        # offset set alone keeps it): a 1.1 V pulse, then DC at 1.2 V, store a high of 1.75 V,
        # which the pulse function brings back, and every level written then was refused. A small
        # amplitude (the DC output stays where it is), then 0 V: the pulse function then starts
        # from levels a few tens of mV around 0 V, whatever the DC level was.
        # Only where a stored level is outside the envelope: elsewhere the levels are left as they
        # were (a few tens of mV around 0 V would be above a very small envelope).
        state = self.write_guard.state
        if recorded_function(state, self.channel) != "DC":
            return
        try:
            for level_v in recorded_levels(state, self.channel).values():
                if level_v is not None:
                    self.envelope.check_generator_level(level_v)
        except EnvelopeError:
            self.write(self.leaving_dc_amplitude_command)
            self.role_channel.offset(0.0)

    def _write_width_hold(self) -> None:
        # A period change keeps the width only with the hold on the width: a hold on the duty
        # cycle set at the front panel (before the session, or while the link was down) would
        # stretch the pulse with every longer period, the width never written again.
        self.write(self.pulse_hold_command)

    def set_output_enabled(self, enabled: bool) -> None:
        if enabled:
            # Recorded first, as a configuration is: a reconnect during the switch re-applies the
            # output on (the switch-on's report lost with the link left it off, the verb returned
            # and the role believed it on); recorded back off if the switch fails.
            self.write_role_setting("_output_on", True, lambda: self._switch_output(True))
        else:
            # Off for good, whatever happens next: a switch-off that fails is never recorded
            # back on, for a later reconnect to switch the output on again.
            self._output_on = False
            self.write_whole(lambda: self._switch_output(False))
        self.raise_on_errors("set_output_enabled")

    def trigger(self) -> None:
        # *OPC? returns once the trigger is executed, whatever the transport buffers.
        self.write("*TRG")
        self.ask("*OPC?")

    def safe_state(self) -> None:
        """The output off and the generator at 0 V DC, in one message (`_safe_message`): the guard
        checks its units in order, the switch-off (always admitted) first, then the DC function
        and 0 V with the output off, and one error-queue read reports on them all. A report lost
        with the link or garbled leaves the guard not knowing what the instrument ran (the output
        possibly on; after a reconnect, every level unknown), as it must: written one by one, the
        0 V level was then refused. So the message is sent again until the guard knows the
        generator off at 0 V DC, up to SAFE_STATE_ATTEMPTS times."""
        self._output_on, self._last_config = False, ("dc", dict(level_v=0.0))
        for _ in range(SAFE_STATE_ATTEMPTS):
            try:
                self.write(self._safe_message())
            except EnvelopeError:
                self._switch_output(False)    # off, whatever refused the level (an envelope that checks none)
                raise
            if holds_dc(self.write_guard.state, self.channel, 0.0):
                self.raise_on_errors("safe_state")
                # Checked again: a link lost in that read set the guard's record aside, and the
                # output may have been switched on (the front panel) while it was down.
                if holds_dc(self.write_guard.state, self.channel, 0.0):
                    return
        self.raise_on_errors("safe_state")
        raise InstrumentError(f"{self._who()}: safe_state switched the output off and wrote 0 V DC "
                              f"{SAFE_STATE_ATTEMPTS} times, and the instrument's report after each was lost or "
                              "garbled: the output may still be on")

    def _safe_message(self) -> str:
        """The role channel's output off, the DC function and 0 V, as one program message: what
        `_switch_output(False)` and `_write_dc(0.0)` write, in that order, each unit from the root
        (after a ';' a unit without its leading ':' would continue the path of the one before)."""
        def write() -> None:
            self._switch_output(False)
            self._write_dc(0.0)
        return self.gathered_message(write)

    # --- recovery ---------------------------------------------------------------------------
    def reapply_role_settings(self) -> None:
        # After a failed link every level is unknown to the guard and the output may be on: off
        # first (always allowed), so that the settings can be written again, then as it was.
        self._switch_output(False)
        if self._last_config is not None:
            kind, settings = self._last_config
            (self.configure_pulse if kind == "pulse" else self.configure_dc)(**settings)
        self._switch_output(self._output_on)
