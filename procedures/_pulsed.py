"""Plan pieces shared by the pulsed procedures: capture set-up, averaged sub-threshold
reference responses, spike counting against them, and the check that the neuron fires at all.

Sub-plans are generators used with `yield from`; they return what they measured. They keep
their step count independent of the replies (a capture that never triggers counts as a
trial without a spike), so dry-run estimates hold; only the recovery from a wire that does not
fire (`reference_and_firing`) adds steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from contracts import steps
from contracts.procedure import MeasurementError, check_record, refuse
from procedures.analysis.spikes import has_spike, linear_excess_v

#: Scope sample rate used by default (the Infiniium's 20 GS/s).
DEFAULT_SAMPLE_RATE_HZ = 20e9
#: Bias cycles through 0 A tried when a burst that must fire does not, before giving up.
LATCH_CYCLES = 2
#: Period of a single-pulse burst (what the generator's timing rules apply to).
SINGLE_PULSE_PERIOD_S = 1e-6
#: Edge times a pulse's width and the gap after it must each hold (Keysight: 10-90 % edges
#: take 0.625 of the 0-100 % ramp).
EDGE_FIT = 1.6


def check_timing(procedure: str, names: str, width_s: float, edge_s: float,
                 period_s: float = SINGLE_PULSE_PERIOD_S) -> None:
    """Refuse a pulse the generator cannot make: edges longer than the width, or a width with
    its trailing edge that does not fit in the period."""
    if EDGE_FIT * edge_s > width_s:
        raise refuse(procedure, names, f"width {width_s:.4g} s is shorter than {EDGE_FIT:g} x edge_s "
                                       f"({EDGE_FIT * edge_s:.4g} s): the edges do not fit in the pulse")
    if width_s + EDGE_FIT * edge_s > period_s:
        raise refuse(procedure, names, f"width {width_s:.4g} s + {EDGE_FIT:g} x edge_s {edge_s:.4g} s does not fit "
                                       f"in the pulse period {period_s:.4g} s")


def check_captures(procedure: str, names: str, settings: CaptureSettings, nodes: int, kept: int) -> None:
    """Refuse records the scope or the memory limit cannot hold: `kept` captures of `nodes`
    chip nodes plus the input monitor and the time axis."""
    check_record(procedure, names, settings.record_length, nodes + 2, kept)


@dataclass(frozen=True)
class CaptureSettings:
    """Chip-side scope set-up shared by a procedure's captures."""
    output_node: str
    bias_node: str
    output_range_v: float
    record_s: float
    pretrigger_s: float
    sample_rate_hz: float = DEFAULT_SAMPLE_RATE_HZ
    capture_timeout_s: float = 2.0

    @property
    def record_length(self) -> int:
        return max(16, int(round(self.record_s * self.sample_rate_hz)))

    def configure(self, input_range_a: float, *, trigger_on: str = "input",
                  trigger_level: float = 0.5, with_bias_node: bool = True) -> steps.ConfigureCapture:
        nodes = {self.output_node: self.output_range_v}
        if with_bias_node:
            nodes[self.bias_node] = self.output_range_v
        return steps.ConfigureCapture(
            node_ranges_v=nodes, input_range_a=input_range_a, record_length=self.record_length,
            sample_rate_hz=self.sample_rate_hz, pretrigger_s=self.pretrigger_s,
            trigger_on=trigger_on, trigger_level=trigger_level)


@dataclass(frozen=True)
class Response:
    """Mean of several captures at one amplitude (zeros when none triggered)."""
    amplitude_a: float
    time_s: np.ndarray
    output_v: np.ndarray
    bias_node_v: np.ndarray
    input_a: np.ndarray
    count: int


#: Smallest monitor full scale, as current at the chip: on the shipped wiring (20 dB and 2 kohm
#: in, a -20 dB pick-off) 10 uA is 20 mV at the scope; a 1 uA input asked 5 mV, below the
#: Infiniium's 8 mV minimum range, and the run failed configuring the scope.
INPUT_RANGE_MIN_A = 10e-6


def input_range_a(amplitude_a: float) -> float:
    """Monitor full scale for a pulse of amplitude_a (the pulse sits in the upper half)."""
    return max(2.5 * abs(amplitude_a), INPUT_RANGE_MIN_A)


def pulses(amplitude_a: float, width_s: float, edge_s: float, *, count: int = 1,
           spacing_s: float = 1e-6) -> steps.ConfigurePulses:
    return steps.ConfigurePulses(current_a=amplitude_a, width_s=width_s, edge_s=edge_s,
                                 period_s=spacing_s, count=count)


#: Steps to yield for one capture as it arrives (e.g. archiving it at once).
OnCapture = Callable[[steps.ChipTraces], Iterable[steps.Step]]


def captures(settings: CaptureSettings, count: int, on_capture: OnCapture | None = None, *, keep: bool = True):
    """`count` captures; returns the traces that triggered (each passed to on_capture first;
    with keep=False none is returned, so a long set need not fit in memory at once)."""
    found = []
    for _ in range(count):
        traces = yield steps.Capture(fire=True, timeout_s=settings.capture_timeout_s)
        if traces is not None:
            if keep:
                found.append(traces)
            if on_capture is not None:
                yield from on_capture(traces)
    return found


def mean_response(settings: CaptureSettings, amplitude_a: float, traces: list) -> Response:
    n = settings.record_length
    if not traces:
        time_s = -settings.pretrigger_s + np.arange(n) / settings.sample_rate_hz
        zeros = np.zeros(n)
        return Response(amplitude_a, time_s, zeros, zeros, zeros, 0)

    def mean(get) -> np.ndarray:
        return np.mean([np.asarray(get(t), dtype=float) for t in traces], axis=0)

    bias = settings.bias_node
    return Response(amplitude_a, np.asarray(traces[0].time_s, dtype=float),
                    mean(lambda t: t.node_voltage_v[settings.output_node]),
                    mean(lambda t: t.node_voltage_v.get(bias, np.zeros(n))),
                    mean(lambda t: t.input_a), len(traces))


def captures_of(settings: CaptureSettings, burst: steps.ConfigurePulses, count: int,
                on_capture: OnCapture | None = None, *, keep: bool = True):
    """Configure `burst` and the scope for it, capture `count` times; the traces that triggered."""
    yield burst
    yield settings.configure(input_range_a(burst.current_a))
    return (yield from captures(settings, count, on_capture, keep=keep))


def reference_response(settings: CaptureSettings, burst: steps.ConfigurePulses, count: int):
    """Configure `burst` (a sub-threshold amplitude), capture `count` times, return the mean."""
    found = yield from captures_of(settings, burst, count)
    return mean_response(settings, burst.current_a, found)


@dataclass(frozen=True)
class Firing:
    """Reference captures and their mean, then the captures of a burst that should fire."""
    reference_traces: list
    reference: Response
    traces: list
    spikes: list[int]            # per capture of the burst
    attempt: int = 0             # bias cycles before these sets

    @property
    def fired(self) -> bool:
        return any(self.spikes)


class FiringStream(Protocol):
    """What a plan does with each capture of reference_and_firing as it arrives (archive it):
    `attempt` counts the bias cycles before it, so captures a later cycle made void can be told."""

    def reference(self, traces: steps.ChipTraces, attempt: int) -> Iterable[steps.Step]: ...

    def firing(self, traces: steps.ChipTraces, reference: Response, spikes: int,
               attempt: int) -> Iterable[steps.Step]: ...


def reference_and_firing(settings: CaptureSettings, reference_burst: steps.ConfigurePulses, reference_count: int,
                         burst: steps.ConfigurePulses, count: int,
                         spikes_in: Callable[[steps.ChipTraces, Response], int], *, dry_run: bool,
                         stream: FiringStream | None = None, keep_firing: bool = True):
    """Reference captures, then `count` captures of `burst`, which should fire.

    If none of them spikes, a wire may be latched (held resistive by its own bias current): the
    bias is cycled through 0 A, which frees it, and both sets are taken again, since a reference
    taken while latched is no reference either. After LATCH_CYCLES cycles the last sets are
    returned as they are; the caller decides (`not_firing` is the error to raise)."""
    for attempt in range(LATCH_CYCLES + 1):
        reference_traces = yield from captures_of(
            settings, reference_burst, reference_count,
            None if stream is None else lambda t: stream.reference(t, attempt))
        reference = mean_response(settings, reference_burst.current_a, reference_traces)
        spikes: list[int] = []          # counted once per capture, as it arrives

        def counted(traces: steps.ChipTraces) -> Iterable[steps.Step]:
            spikes.append(int(spikes_in(traces, reference)))
            return () if stream is None else stream.firing(traces, reference, spikes[-1], attempt)

        traces = yield from captures_of(settings, burst, count, counted, keep=keep_firing)
        firing = Firing(reference_traces, reference, traces, spikes, attempt)
        if firing.fired or dry_run or attempt == LATCH_CYCLES:
            return firing
        yield steps.CycleBias()
    raise AssertionError("unreachable")


def not_firing(amplitude_a: float, triggered: int, tried: int, settings_hint: str) -> MeasurementError:
    """The error of a plan whose burst never fired (`tried` captures of the last attempt,
    `triggered` of them triggered the scope), even after the bias cycles."""
    if not triggered:
        return MeasurementError(
            f"the scope never triggered in {tried} captures at {amplitude_a * 1e6:.4g} uA (bias cycled to 0 A "
            f"{LATCH_CYCLES} times between tries): check the input pulse and the monitor channel's wiring")
    return MeasurementError(
        f"no spike in {triggered} of {tried} captures at {amplitude_a * 1e6:.4g} uA, with the bias cycled to 0 A "
        f"{LATCH_CYCLES} times between tries: a wire is latched, or the neuron does not fire at these "
        f"settings ({settings_hint})")


def spike_seen(traces: steps.ChipTraces, settings: CaptureSettings, reference: Response,
               amplitude_a: float, detect_v: float, window_s: tuple[float, float]) -> bool:
    """Does the output show more than the scaled linear response, inside the window?"""
    output_v = np.asarray(traces.node_voltage_v[settings.output_node], dtype=float)
    scale = amplitude_a / reference.amplitude_a if reference.amplitude_a else 0.0
    ref = reference.output_v if reference.output_v.shape == output_v.shape else None
    excess = linear_excess_v(output_v, ref, scale)
    return has_spike(traces.time_s, excess, detect_v, window_s)


def spike_count(settings: CaptureSettings, burst: steps.ConfigurePulses, trials: int,
                reference: Response, detect_v: float, window_s: tuple[float, float]):
    """Fire `burst` `trials` times; return how many captures showed a spike in the window."""
    found = yield from captures_of(settings, burst, trials)
    return sum(spike_seen(t, settings, reference, burst.current_a, detect_v, window_s) for t in found)
