"""Walk a plan with no instruments: list its steps, check the envelope, estimate its duration.

Replies are stand-ins (the setpoint for a temperature, zero volts, flat traces), so a plan
that branches on measurements follows its "nothing happened" path; plans keep their step
count independent of replies where they can, so the estimate holds. An adaptive plan (trials
until a threshold is precise, sweeps until enough switching events) walks its most trials or
sweeps here, each the size the run's will be where the plan can tell (iv_sweep's default plan:
11,464 sweep levels here, where an emulated campaign's took 13,446 on 2026-12-05; 26,218 when
its dry run swept the search window all along), and a run's progress follows the plan's own
reports and the rates measured (lab.execution.progress), not this step count.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from contracts import steps
from contracts.files.station import Station
from contracts.envelope import EnvelopeError
from lab.execution.executor import WiringState, check_step, estimate_s, remember
from contracts.procedure import ParameterError, PlanContext, Procedure
from contracts.units import format_si, unit_of_name

#: Pulse timing limits a pulse generator's driver module may state (data sheet values, s), and
#: the rule every generator shares: 10-90 % edges take 1/1.6 of the ramp, so a width and the gap
#: after it must each hold 1.6 edge times.
PULSE_TIMING_LIMITS = ("WIDTH_MIN_S", "EDGE_MIN_S", "PERIOD_MIN_S")
EDGE_FIT = 1.6
#: Steps a plan may take: the dry run walks every one (~10^4 per second), so a plan beyond this
#: is refused rather than listed for minutes (the iv_sweep of 100,000 events takes ~4e5).
PLAN_STEPS_MAX = 500_000


#: Steps whose time passes on the instrument in real time whatever the lab clock: the bias source
#: ramps step by step in wall time (on the emulator too, where lab time runs faster).
REAL_TIME_STEPS = (steps.SetBias, steps.CycleBias)


@dataclass
class DryRunReport:
    procedure: str
    steps: list[tuple[steps.Step, float]] = field(default_factory=list)   # (step, estimated lab s)

    @property
    def duration_s(self) -> float:
        return sum(estimate for _, estimate in self.steps)

    def wall_s(self, acceleration: float) -> float:
        """Least wall time: lab time over the clock's acceleration, but bias ramps in real time."""
        return sum(estimate if isinstance(step, REAL_TIME_STEPS) else estimate / acceleration
                   for step, estimate in self.steps)

    def count(self, kind: type) -> int:
        return sum(isinstance(step, kind) for step, _ in self.steps)

    def summary(self) -> str:
        kinds: dict[str, int] = {}
        for step, _ in self.steps:
            kinds[type(step).__name__] = kinds.get(type(step).__name__, 0) + 1
        listed = ", ".join(f"{n}×{k}" for k, n in kinds.items())
        return f"{self.procedure}: {len(self.steps)} steps ({listed}); estimated {self.duration_s:.1f} s of lab time"


def step_text(step: steps.Step, width: int = 130) -> str:
    """A step as a person reads it: "SetBias current_a=4.8 µA, ramp_a_per_s=1 mA/s" (units from
    the field names, SI prefixes), cut to `width` characters."""
    fields = ", ".join(f"{item.name}={_field_text(item.name, getattr(step, item.name))}"
                       for item in dataclasses.fields(step))
    text = f"{type(step).__name__} {fields}".rstrip()
    return text if len(text) <= width else text[:width - 3] + "..."


def _field_text(name: str, value) -> str:
    unit = unit_of_name(name)
    if isinstance(value, (bool, np.bool_, str)):
        return str(value).lower() if isinstance(value, (bool, np.bool_)) else value
    if isinstance(value, (int, float, np.integer, np.floating)):
        return format_si(value, unit)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_field_text(name, v)}" for k, v in value.items()) + "}"
    if isinstance(value, (tuple, list, np.ndarray)):
        shown = [_field_text(name, v) for v in list(value)[:4]]
        more = f", … ({len(value)} values)" if len(value) > 4 else ""
        return "(" + ", ".join(shown) + more + ")"
    if value is None:
        return "none"
    named = getattr(value, "name", None)     # an archived record: its kind and name
    return f"{type(value).__name__} {named}" if isinstance(named, str) else type(value).__name__


def stand_in_reply(step: steps.Step, state: WiringState, capture: steps.ConfigureCapture | None):
    match step:
        case steps.ReadTemperature() | steps.WaitTemperatureStable():
            return state.setpoint_k if state.setpoint_k is not None else 0.0
        case steps.MeasureBiasVoltage() | steps.CycleBias():
            return 0.0
        case steps.SweepBias(levels_a=levels_a):
            return np.zeros(len(levels_a))
        case steps.Capture() if capture is not None:
            time_s = -capture.pretrigger_s + np.arange(capture.record_length) / capture.sample_rate_hz
            zeros = np.zeros(capture.record_length)
            return steps.ChipTraces(time_s, {node: zeros for node in capture.node_ranges_v}, zeros)
    return None


def pulse_timing_limits(station: Station) -> dict[str, float]:
    """The timing limits the station's pulse generator driver states (none if it states none
    or has no generator): what the instrument would refuse when the run configures a pulse."""
    try:
        module = importlib.import_module(station.by_role("pulse_generator").driver.rpartition(".")[0])
    except Exception:  # noqa: BLE001 - no generator, or a driver the station check reports itself
        return {}
    return {f"{module.__name__}.{name}": float(getattr(module, name)) for name in PULSE_TIMING_LIMITS
            if isinstance(getattr(module, name, None), (int, float))}


def check_pulse_timing(step: steps.ConfigurePulses, limits: dict[str, float]) -> None:
    """Refuse a pulse the generator cannot make (ParameterError), as it would in the run."""
    named = {key.rpartition(".")[2]: (key, value) for key, value in limits.items()}
    width_min_s = named.get("WIDTH_MIN_S", ("", 0.0))[1]
    for what, value, name in (("width", step.width_s, "WIDTH_MIN_S"), ("edge", step.edge_s, "EDGE_MIN_S"),
                              ("period", step.period_s, "PERIOD_MIN_S")):
        if name in named and value < named[name][1]:
            raise ParameterError(f"pulse {what} {value:.4g} s is below the pulse generator's minimum "
                                 f"{named[name][1]:.4g} s ({named[name][0]})")
    if not (EDGE_FIT * step.edge_s <= step.width_s and step.width_s + max(EDGE_FIT * step.edge_s, width_min_s)
            <= step.period_s * (1 + 1e-12)):
        raise ParameterError(f"pulse width {step.width_s:.4g} s with edges {step.edge_s:.4g} s does not fit the period "
                             f"{step.period_s:.4g} s (the width and the gap after it must each hold {EDGE_FIT:g} edges"
                             f"{f' and {width_min_s:.4g} s' if width_min_s else ''})")


def dry_run(procedure: Procedure, station: Station, context: PlanContext | None = None) -> DryRunReport:
    """Walk `procedure`'s plan; raises ParameterError for parameters the chip's design values
    rule out, EnvelopeError (naming the step) at the first step outside the envelope."""
    context = context or PlanContext(dry_run=True)
    # Rules between parameters and the chip's design values refuse before the first step
    # (ParameterError, one line); those between parameters alone refused when they were bound.
    procedure.check_bound(context)
    report = DryRunReport(procedure.name)
    state = WiringState()
    capture, flat = None, None
    timing: dict[str, float] | None = None      # read from the driver at the first pulse
    plan = procedure.plan(context)
    reply = None
    while True:
        try:
            step = plan.send(reply)
        except StopIteration:
            return report
        where = f"{procedure.name}, step {len(report.steps) + 1} ({type(step).__name__})"
        if len(report.steps) >= PLAN_STEPS_MAX:
            counts = ", ".join(f"{name} = {value}" for name, (value, _) in procedure.parameter_records().items()
                               if isinstance(value, int) and not isinstance(value, bool))
            plan.close()
            raise ParameterError(f"{procedure.name}: the plan has more than {PLAN_STEPS_MAX:,} steps; ask for fewer "
                                 f"({counts})")
        try:
            check_step(step, station, state)
            if isinstance(step, steps.ConfigurePulses):
                timing = pulse_timing_limits(station) if timing is None else timing
                check_pulse_timing(step, timing)
        except EnvelopeError as error:
            raise EnvelopeError(f"{where}: {error}") from None
        except ParameterError as error:
            raise ParameterError(f"{where}: {error}") from None
        report.steps.append((step, estimate_s(step, station, state)))
        if isinstance(step, steps.ConfigureCapture):
            capture, flat = step, None
        if isinstance(step, steps.Capture):
            # One flat record per scope set-up, shared by its captures (records reach 10^7 samples).
            flat = flat if flat is not None else stand_in_reply(step, state, capture)
            reply = flat
        else:
            reply = stand_in_reply(step, state, capture)
        remember(step, state, station)
