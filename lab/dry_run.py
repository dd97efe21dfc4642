"""Walk a plan with no instruments: list its steps, check the envelope, estimate its duration.

Replies are stand-ins (the setpoint for a temperature, zero volts, flat traces), so a plan
that branches on measurements follows its "nothing happened" path; plans keep their step
count independent of replies where they can, so the estimate holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lab import steps
from lab.config import Station
from lab.envelope import EnvelopeError
from lab.executor import WiringState, check_step, estimate_s, remember
from lab.procedure import PlanContext, Procedure


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
    plan = procedure.plan(context)
    reply = None
    while True:
        try:
            step = plan.send(reply)
        except StopIteration:
            return report
        try:
            check_step(step, station, state)
        except EnvelopeError as error:
            raise EnvelopeError(f"{procedure.name}, step {len(report.steps) + 1} ({type(step).__name__}): {error}") from None
        report.steps.append((step, estimate_s(step, station, state)))
        if isinstance(step, steps.ConfigureCapture):
            capture, flat = step, None
        if isinstance(step, steps.Capture):
            # One flat record per scope set-up, shared by its captures (records reach 10^7 samples).
            flat = flat if flat is not None else stand_in_reply(step, state, capture)
            reply = flat
        else:
            reply = stand_in_reply(step, state, capture)
        remember(step, state)
