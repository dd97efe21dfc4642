"""One oscilloscope acquisition on the emulated bench.

An armed scope completes on the first trigger after it was armed: the bench finds the next
generator event (a burst trigger or a free-running pulse), simulates the chip around it, passes
each channel's signal through its gain and bandwidth, finds the trigger crossing, samples at the
scope's rate, adds input noise and quantizes to 8 bits. A scope on auto trigger that saw none
by its timer (`OscilloscopePanel.auto_trigger_at_s`) acquires anyway, the record's time origin
at the forced trigger.

The chip carries its state from one acquisition to the next (the current its loop keeps from
spike to spike). Lab time between acquisitions is not simulated, except where it matters: under
a new DC input level the chip is first settled (World.chip_at_present_bias), as a bench arms its
scope milliseconds after setting one; and a chip static under DC levels cannot trigger, so the
scope waits out its timeout without simulating anything.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sim_backend.bench.pulse_generator import TRIGGER_LATENCY_S, PulseGeneratorPanel
from sim_backend.bench.scope import ChannelRecord, OscilloscopePanel
from sim_backend.bench.signal_processing import (
    crossing_time_s, first_crossing_index, low_pass, low_pass_of_piecewise_linear,
)
from sim_backend.physics.results import CircuitState, TransientResult
from sim_backend.physics.waveform import PiecewiseLinear

#: How long after a generator event the trigger crossing is looked for.
SEARCH_S = 100e-9
#: Searched first: a trigger on the input monitor or on the chip's response to the pulse comes
#: within a few ns of the event; only without one there is the rest of SEARCH_S simulated.
FIRST_SEARCH_S = 5e-9
#: Simulated before the record so the chip's response and the filters have settled.
PREROLL_S = 10e-9
#: Finest time step of the analog signals before the scope samples them (the grid is the sample
#: interval divided evenly, so 16.7 ps at 20 GS/s). The filters are exact for signals joined
#: linearly between grid points and the scope samples are interpolated cubically, so this grid
#: gives the same 8-bit trace as a 2 ps grid to within 1 LSB on a few samples in 10^3 (trigger
#: time within 0.1 ps); at 25 ps the chip's sharpest spike edges start to lose 1 LSB at the peak.
FINE_STEP_S = 20e-12
#: Most generator events tried for one acquisition before the bench stops looking.
MAX_EVENTS_PER_CALL = 32


@dataclass(frozen=True)
class CaptureTruth:
    """Ground truth of the last acquisition (for tests; never seen by procedures)."""

    origin_s: float                 # lab time the window is relative to
    trigger_rel_s: float            # trigger time relative to origin_s
    chip: TransientResult           # on the fine grid, window-relative times (node voltages alone
                                    # unless world.capture_all_traces)
    initial_state: CircuitState     # the chip's state as the simulated window began
    inputs_a: Mapping[str, PiecewiseLinear]   # current into each pulse-input port, window-relative times


def try_complete(world, role_name: str) -> bool:
    """Complete the scope's armed acquisition if its trigger has happened by now."""
    scope = world.panels[role_name]
    assert isinstance(scope, OscilloscopePanel)
    if scope.state != "armed":
        return scope.state == "done"
    now_s = world.now_s()
    forced_at_s = scope.auto_trigger_at_s()
    until_s = now_s if forced_at_s is None else min(now_s, forced_at_s)
    if not _static_under_dc(world):
        for _ in range(MAX_EVENTS_PER_CALL):
            origin_s = _next_event_s(world, scope.armed_at_s)
            if origin_s is None or origin_s > until_s:
                break
            if _capture(world, scope, origin_s):
                return _completed(scope)
            scope.armed_at_s = origin_s + SEARCH_S   # that event did not trigger: wait for the next
        else:
            return False                             # more events to try on the next call
    if forced_at_s is not None and now_s >= forced_at_s and _capture(world, scope, forced_at_s, forced=True):
        return _completed(scope)
    return False


def _completed(scope: OscilloscopePanel) -> bool:
    scope.acquisitions_completed += 1
    scope.state = "done"      # in RUN mode the personality re-arms when data are read
    return True


def _static_under_dc(world) -> bool:
    """Only DC levels drive the chip and its last simulated window had no switching: it sits in
    a static state, and nothing can trigger (below the f–I onset a scope waits out its timeout;
    simulating window after window of it would only cost time)."""
    if world.input_idle() or not world.input_steady():
        return False
    chip = world.chip_at_present_bias()
    return chip.settled and chip.state is not None


def _next_event_s(world, after_s: float) -> float | None:
    """Lab time of the first generator event at or after `after_s`, exact for burst triggers."""
    events = []
    for wire in world.station.pulse_inputs:
        generator = world.panels.get(wire.instrument)
        if not isinstance(generator, PulseGeneratorPanel):
            continue
        channel = generator.channels[wire.channel]
        if not channel.output_enabled:
            continue
        if channel.function == "DC":
            events.append(after_s)                  # a DC-driven chip may spike at any time
        elif channel.burst_enabled:
            # Anchor on the burst's first pulse, which starts a trigger latency after *TRG.
            events.extend(t + TRIGGER_LATENCY_S for t in channel.trigger_times_s if t >= after_s)
        else:
            cycles = math.ceil((after_s - channel.running_since_s) / channel.period_s)
            events.append(channel.running_since_s + max(cycles, 0) * channel.period_s)
    return min(events) if events else None


def _capture(world, scope: OscilloscopePanel, origin_s: float, *, forced: bool = False) -> bool:
    interval_s = scope.sample_interval_s
    # (the small margin keeps an exact ratio such as 50 ps / 25 ps from rounding up)
    oversample = max(1, math.ceil(interval_s / FINE_STEP_S - 1e-9))
    fine_s = interval_s / oversample
    average = max(1, scope.average_count)
    sums: dict[int, np.ndarray] = {}
    for repeat in range(average):
        record = _record(world, scope, origin_s, fine_s, forced=forced)
        if record is None:
            return False
        trigger_rel_s, sample_times_s, signals, (chip, initial_state, inputs_a) = record
        for number, signal in signals.items():
            codes = scope.channels[number].digitize(_fine_start_s(scope), fine_s, signal, sample_times_s,
                                                    world.rng, scope.input_noise_v_rms)
            sums[number] = codes if average == 1 else codes.astype(np.int32) + sums.get(number, 0)
        world.last_capture = CaptureTruth(origin_s, trigger_rel_s, chip, initial_state, inputs_a)

    # Averaging N records of 8-bit codes gains resolution: keep 8 more bits, as WORD data do.
    extra_bits = 0 if average == 1 else 8
    for number, total in sums.items():
        channel = scope.channels[number]
        codes = total if average == 1 else np.round(total * (2**extra_bits) / average).astype(np.int16)
        scope.records[number] = ChannelRecord(codes, channel.lsb_v / 2**extra_bits, channel.offset_v,
                                              scope.first_sample_s, interval_s)
    return True


def _record(world, scope: OscilloscopePanel, origin_s: float, fine_s: float, *, forced: bool = False):
    """One triggered record before noise: (trigger_rel_s, the record's sample times, each channel's
    band-limited signal on the fine grid from `_fine_start_s`, (chip transient,
    its initial state, input currents)),
    or None when the trigger does not come within SEARCH_S of the event. `forced`: the trigger
    is at `origin_s` itself (an auto trigger), nothing searched.

    The chip is simulated up to FIRST_SEARCH_S past the record first. Only when the trigger is not
    found there is the same stretch simulated again, from the same chip state and random state, up
    to SEARCH_S: the simulation is causal, so both give the same signals where they overlap and
    the first trigger crossing found is the same.
    """
    interval_s = scope.sample_interval_s
    start_rel_s = _fine_start_s(scope)
    world.chip_at_present_bias()     # settled once, before the state the second search restarts from
    if forced:
        stop_rel_s = scope.first_sample_s + scope.record_length * interval_s
        fine_time_s = _fine_grid_s(start_rel_s, stop_rel_s, fine_s)
        signals, chip = _analog_signals(world, scope, origin_s, start_rel_s, stop_rel_s, fine_time_s)
        return 0.0, scope.first_sample_s + interval_s * np.arange(scope.record_length), signals, chip
    for search_s in (FIRST_SEARCH_S, SEARCH_S):
        final = search_s >= SEARCH_S
        saved = None if final else _save(world)
        stop_rel_s = scope.first_sample_s + scope.record_length * interval_s + search_s
        fine_time_s = _fine_grid_s(start_rel_s, stop_rel_s, fine_s)
        signals, chip = _analog_signals(world, scope, origin_s, start_rel_s, stop_rel_s, fine_time_s)
        trigger_signal = signals.get(scope.trigger.source_channel)
        if trigger_signal is None:
            return None
        search_from = int(np.searchsorted(fine_time_s, -PREROLL_S / 2))
        index = first_crossing_index(trigger_signal, scope.trigger.level_v,
                                     scope.trigger.slope == "rising", search_from)
        if index is not None and fine_time_s[index] <= search_s:
            trigger_rel_s = crossing_time_s(fine_time_s, trigger_signal, index, scope.trigger.level_v)
            return (trigger_rel_s, trigger_rel_s + scope.first_sample_s + interval_s * np.arange(scope.record_length),
                    signals, chip)
        if final:
            return None
        _restore(world, saved)
    return None


def _fine_start_s(scope: OscilloscopePanel) -> float:
    """Where the simulated window and its fine grid begin, relative to the trigger: PREROLL_S
    before the record's first sample."""
    return scope.first_sample_s - PREROLL_S


@functools.lru_cache(maxsize=8)
def _fine_grid_s(start_rel_s: float, stop_rel_s: float, fine_s: float) -> np.ndarray:
    """The fine grid (read-only: one array serves every acquisition of the same settings)."""
    steps = int(round((stop_rel_s - start_rel_s) / fine_s))
    grid = np.minimum(start_rel_s + fine_s * np.arange(steps + 1), stop_rel_s)
    grid.setflags(write=False)
    return grid


def _save(world):
    return world.chip.snapshot(), world.rng.bit_generator.state


def _restore(world, saved) -> None:
    snapshot, world.rng.bit_generator.state = saved
    world.chip.restore(snapshot)


def _analog_signals(world, scope, origin_s, start_rel_s, stop_rel_s, fine_time_s):
    """Each displayed channel's voltage at the scope input on the fine grid, band-limited, and
    the chip's (transient, initial state, input currents)."""
    under_test = world.chip_at_present_bias()
    initial_state = under_test.state
    inputs_a = world.input_currents_a(origin_s, start_rel_s, stop_rel_s)
    chip = under_test.run(
        start_s=start_rel_s, stop_s=stop_rel_s, bias_a=world.bias_currents_a(), inputs_a=inputs_a,
        sample_times_s=fine_time_s, temperature_k=world.stage_temperature_k(), rng=world.rng,
        node_voltages_only=not world.capture_all_traces,
    )
    fine_s = fine_time_s[1] - fine_time_s[0]
    signals = {}
    for number, channel in scope.channels.items():
        wiring = next((w for w in world.station.readouts if w.scope_channel == number), None)
        if not channel.displayed and number != scope.trigger.source_channel:
            continue
        if wiring is None:
            signals[number] = np.zeros_like(fine_time_s)
            continue
        bandwidth_hz = min(wiring.bandwidth_hz, scope.analog_bandwidth_hz, channel.bandwidth_limit_hz or math.inf)
        if wiring.chip_node is not None:
            signals[number] = low_pass(chip.node_voltage_v[wiring.chip_node] * wiring.scope_volts_per_source_volt,
                                       fine_s, bandwidth_hz)
        else:
            # the generator's output is piecewise linear: filtered as it is sampled
            waveform = world.generator_output_v(_monitored_input(world, wiring.monitor), origin_s, start_rel_s,
                                                stop_rel_s)
            signals[number] = low_pass_of_piecewise_linear(waveform.times_s, waveform.values,
                                                           wiring.scope_volts_per_source_volt, fine_time_s, fine_s,
                                                           bandwidth_hz)
    return signals, (chip, initial_state, inputs_a)


def _monitored_input(world, monitor: str) -> int:
    if monitor == "pulse_input":
        return 0
    return int(monitor.rsplit("_", 1)[1])
