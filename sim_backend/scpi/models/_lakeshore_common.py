"""What the Lake Shore 336 and 372 personalities share: framing, error policy, heater state.

Lake Shore controllers end replies with CR LF, have no SCPI error queue (a bad command is
ignored and only sets an *ESR bit: command error 0x20, execution error 0x10) and answer
fixed-width numbers such as ``+4.5000`` and status weightings as three digits (RDGST?, format
``nnn``: "A '000' response indicates a valid reading is present", Model 350 manual, chapter 6,
whose command set the 336 shares). They take numbers as plain decimals only (the manuals'
``±nnnnnn``): ``MIN``, ``#H1F`` or ``1E-999999`` is a command error, a value outside the
parameter's range an execution error. Commands take their channel as the first parameter
(``KRDG? A``, ``SETP 1,4.5``), so the channel is a declared parameter here, not a suffix.

TLIMIT is enforced as the manuals word it: "The temperature limit in kelvin for which to shut
down all control outputs when exceeded. A temperature limit of zero turns the temperature limit
feature off" — an input above its limit sets every output's heater range to Off. The limit is
checked whenever lab time is brought up to the present (before each command).

The front panel (`TemperatureControllerPanel`) runs one PID form: output % of range power =
P·(e + I·1e-3·∫e dt + D·de/dt), e in K, I in repeats per 1000 s, D in s. Each model converts
its own P, I, D units into that form (`panel_pid`), and keeps the values it was sent for
the `PID?` answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim_backend.bench.temperature_controller import CATCH_UP_WALL_BUDGET_S, HeaterOutput, TemperatureControllerPanel
from sim_backend.physics import thermal
from sim_backend.scpi.errors import ScpiError
from sim_backend.scpi.ieee488 import Ieee488Personality
from sim_backend.scpi.lexer import Quoted, Token
from sim_backend.scpi.commands import query, setting
from sim_backend.scpi.params import Integer, Param, Real

#: Station-file `stage` -> the stage model the controller regulates.
STAGES = {"4k_probe_station": thermal.STAGE_4K, "2k_probe_station": thermal.STAGE_2K,
          "dilution_mxc": thermal.STAGE_MXC}

#: Panel mode for each Lake Shore closed/open-loop behaviour (the loop does not model zones).
OFF, CLOSED, ZONE, OPEN = "off", "closed_loop", "zone", "open_loop"


def stage_for(settings: dict, default: str) -> thermal.StageParams:
    """The stage named by `settings["stage"]`; ValueError for an unknown name."""
    name = settings.get("stage", default)
    try:
        return STAGES[name]
    except KeyError:
        raise ValueError(f"unknown stage {name!r}; choose one of {', '.join(STAGES)}") from None


@dataclass(frozen=True)
class Channel(Param):
    """A channel name from a fixed set (``A``-``D``, ``1``-``16``): -224 for anything else."""

    names: tuple[str, ...] = ()

    def convert(self, token: Token) -> str:
        if not isinstance(token, str):
            raise ScpiError(-104)
        name = token.strip().upper()
        if name.isdigit():
            name = str(int(name))  # "01" is channel 1
        if name not in self.names:
            raise ScpiError(-224)
        return name


@dataclass(frozen=True)
class Name(Param):
    """Free text such as a sensor name, quoted or not, at most `max_length` characters."""

    max_length: int = 15

    def convert(self, token: Token) -> str:
        text = token.text if isinstance(token, Quoted) else token
        if not isinstance(text, str):
            raise ScpiError(-104)
        if len(text) > self.max_length:
            raise ScpiError(-223)
        return text


def fixed(value: float, decimals: int = 4) -> str:
    """Lake Shore number format: explicit sign, fixed decimals (``+4.5000``)."""
    return f"{value:+.{decimals}f}"


def bit_weighting(bits: int) -> str:
    """A status register as the manuals' ``nnn`` format writes it (``000`` when nothing is set)."""
    return f"{bits:03d}"


@dataclass
class OutputSettings:
    """One output as the instrument was told (instrument units), beside the panel's loop."""

    mode: int = 0
    control_input: str = "A"
    powerup: int = 0
    p: float = 50.0
    i: float = 20.0
    d: float = 0.0
    range_index: int = 0
    manual_pct: float = 0.0
    setpoint: float = 0.0
    ramp_enabled: int = 0
    ramp_rate_k_per_min: float = 0.0
    extra: tuple = ()  # model-specific OUTMODE fields (372: polarity, filter, delay)


class LakeshorePersonality(Ieee488Personality):
    """Shared base: CR LF replies, errors as *ESR bits only, lab time before every command.

    The model's `reset` sets `inputs` (objects with `limit_k`), `outputs` (OutputSettings by
    number) and `htrset` (HTRSET fields by output); the model supplies `_setpoint_k(n)`, the
    setpoint in kelvin, and `_push(n)`, which mirrors output n onto the panel.
    """

    response_terminator = b"\r\n"
    error_reporting = "status_only"
    numeric_data = "plain_decimal"  # the manuals' numbers: no MIN/MAX, no #H, no suffixes
    omit = frozenset({"*TRG"})

    def __init__(self, world, role_name: str, model: str, settings: dict) -> None:
        super().__init__()
        self.world = world
        self.role_name = role_name
        self.model = model
        self.settings = settings
        self.rng = np.random.default_rng(int(settings.get("seed", 0)))
        clock = getattr(world, "clock", None)
        if getattr(clock, "acceleration", 0.0) > 0.0:
            # Lab time runs by itself: a catch-up that cannot keep up with it is cut short (a
            # clock slip) rather than letting the backlog grow; see `catch_up`.
            self.panel.max_catch_up_wall_s = CATCH_UP_WALL_BUDGET_S
        self.panel.compile_loop_kernel()      # now, while the bench is built, not on a client's clock
        self.reset()

    @property
    def panel(self) -> TemperatureControllerPanel:
        return self.world.panels[self.role_name]

    def before_command(self, command: object) -> None:
        """Bring the stage and the loop up to the present before the command sees them."""
        self.catch_up()

    def catch_up(self) -> None:
        """Bring the panel's loop and stage model up to the present lab time.

        The loop runs at the instrument's 10 Hz in a compiled kernel, a settled loop at almost no
        cost, so a 600x clock is followed with a wide margin (benchmarks/thermal_catch_up.py).
        Should the machine still not keep up, one catch-up works about
        `CATCH_UP_WALL_BUDGET_S` of wall time on a bench whose clock runs by itself; the lab time
        left over is skipped (a clock slip: the stage and the loop resume where they were,
        a warning is logged once, `panel.slipped_s` counts it) and the command is answered.
        With a frozen clock (tests moving lab time themselves) every catch-up is exact.
        """
        self.panel.advance_to(self.world.now_s())
        self.enforce_temperature_limits()

    def enforce_temperature_limits(self) -> None:
        """TLIMIT: once the stage exceeds an input's non-zero limit, every heater range goes Off."""
        stage_k = self.panel.state.temperature_k
        if not any(0.0 < sensor.limit_k < stage_k for sensor in self.inputs.values()):
            return
        for number, settings in self.outputs.items():
            if settings.range_index:
                settings.range_index = 0
                self._push(number)

    def temperature_k(self) -> float:
        """The stage temperature as a sensor reads it now (with the panel's sensor noise)."""
        return self.panel.reading_k(next(iter(self.panel.inputs)))

    # -- heater helpers for the model classes ------------------------------------------------

    def heater(self, output: int) -> HeaterOutput | None:
        """The panel's heater for an output, or None when the output heats nothing modelled."""
        return self.panel.outputs.get(output)

    def shows_current(self, output: int) -> bool:
        """True when HTRSET has the output display % of current (rather than of power)."""
        return output in self.htrset and self.htrset[output][3] == 1

    def apply(self, output: int, mode: str, pid: tuple[float, float, float]) -> None:
        """Push one output's settings, `pid` in panel units, to its panel heater (when it has one)."""
        heater = self.heater(output)
        if heater is None:
            return
        settings = self.outputs[output]
        if heater.mode != mode and mode in (CLOSED, ZONE):
            heater.integral_k_s = 0.0  # a loop switched on starts without stale wind-up
            heater.last_error_k = 0.0
        heater.mode = mode  # type: ignore[assignment]
        heater.control_input = settings.control_input
        heater.p, heater.i, heater.d = pid
        manual_pct = settings.manual_pct
        heater.manual_output_pct = power_fraction_pct(manual_pct) if self.shows_current(output) else manual_pct
        heater.range_index = settings.range_index
        heater.ramp_enabled = bool(settings.ramp_enabled) and settings.ramp_rate_k_per_min > 0
        heater.ramp_rate_k_per_min = settings.ramp_rate_k_per_min
        if not heater.ramp_enabled:
            heater.ramping_setpoint_k = None
        self.panel.set_setpoint(output, self._setpoint_k(output))

    def set_setpoint_k(self, output: int, setpoint_k: float) -> None:
        heater = self.heater(output)
        if heater is not None:
            self.panel.set_setpoint(output, setpoint_k)

    def ramping(self, output: int) -> bool:
        heater = self.heater(output)
        return bool(heater is not None and heater.ramping)


def current_fraction_pct(power_pct: float) -> float:
    """% of full-scale current that delivers `power_pct` % of the range's power (P ∝ I²)."""
    return 100.0 * math.sqrt(max(power_pct, 0.0) / 100.0)


def power_fraction_pct(current_pct: float) -> float:
    """% of the range's power delivered at `current_pct` % of full-scale current."""
    return 100.0 * (current_pct / 100.0) ** 2


def interpolate(table: tuple[tuple[float, float], ...], temperature_k: float) -> float:
    """Sensor units at a temperature, linear between the table's (K, value) points."""
    temps = [t for t, _ in table]
    values = [v for _, v in table]
    return float(np.interp(temperature_k, temps, values))


def shared_commands(input_param: Param, output_param: Param, rate_decimals: int, manual_decimals: int) -> type:
    """A mixin with the commands both models spell alike: INNAME, TLIMIT, RAMP, RAMPST?, MOUT.

    The model supplies `inputs` (objects with `name`, `limit_k`), `outputs` (OutputSettings),
    `_push(n)` and `ramping(n)`.
    """

    @setting("INNAME", input_param, Name(max_length=15), query_params=(input_param,))
    def input_name(self, channel: str) -> str:
        """Sensor name shown on the display (15 characters)."""
        return self.inputs[channel].name

    @input_name.setter
    def input_name(self, channel: str, text: str) -> None:
        self.inputs[channel].name = text

    @setting("TLIMIT", input_param, Real(None, 0.0, 2000.0), query_params=(input_param,))
    def temperature_limit(self, channel: str) -> str:
        """Temperature limit, K, above which every output is switched off (0: none)."""
        return fixed(self.inputs[channel].limit_k)

    @temperature_limit.setter
    def temperature_limit(self, channel: str, limit_k: float) -> None:
        self.inputs[channel].limit_k = limit_k

    @setting("RAMP", output_param, Integer(0, 1), Real(None, 0.0, 100.0), query_params=(output_param,))
    def ramp(self, n: int) -> str:
        """Setpoint ramping on/off and rate, K/min (0: as if off)."""
        out = self.outputs[n]
        return f"{out.ramp_enabled},{out.ramp_rate_k_per_min:+.{rate_decimals}f}"

    @ramp.setter
    def ramp(self, n: int, enabled: int, rate_k_per_min: float) -> None:
        out = self.outputs[n]
        out.ramp_enabled, out.ramp_rate_k_per_min = enabled, rate_k_per_min
        self._push(n)

    @query("RAMPST", output_param)
    def ramp_status(self, n: int) -> int:
        """1 while the setpoint is ramping."""
        return int(self.ramping(n))

    @setting("MOUT", output_param, Real(None, 0.0, 100.0), query_params=(output_param,))
    def manual_output(self, n: int) -> str:
        """Manual output, % (added to the PID output in closed loop; the output in open loop)."""
        return f"{self.outputs[n].manual_pct:+.{manual_decimals}f}"

    @manual_output.setter
    def manual_output(self, n: int, percent: float) -> None:
        self.outputs[n].manual_pct = percent
        self._push(n)

    return type("SharedCommands", (), {"input_name": input_name, "temperature_limit": temperature_limit,
                                       "ramp": ramp, "ramp_status": ramp_status,
                                       "manual_output": manual_output})
