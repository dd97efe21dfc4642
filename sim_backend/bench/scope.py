"""An oscilloscope's front panel and the record it holds after an acquisition.

Infiniium and Tektronix personalities both drive this model. Each translates its own
horizontal controls (Infiniium range/position/reference, Tek scale/position %) into the record
length, sample rate and the time of the first sample relative to the trigger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from sim_backend.bench.signal_processing import digitize

AcquisitionState = Literal["stopped", "armed", "done"]
ADC_BITS = 8
#: Auto trigger (Infiniium AUTO sweep, Tektronix AUTO mode): with no trigger event this long
#: after arming, the scope forces one and acquires unsynchronised. The manuals give no figure,
#: only that it follows the time base: taken as ten record lengths, at least 10 ms.
AUTO_TRIGGER_RECORDS = 10
AUTO_TRIGGER_MIN_S = 10e-3


@dataclass
class ScopeChannel:
    displayed: bool = True
    range_v: float = 0.8               # full-scale vertical range (8 divisions)
    offset_v: float = 0.0              # voltage at the centre of the screen
    bandwidth_limit_hz: float | None = None

    @property
    def lsb_v(self) -> float:
        return self.range_v / 2**ADC_BITS

    def digitize(self, start_s: float, step_s: float, signal: np.ndarray, sample_times_s: np.ndarray,
                 rng: np.random.Generator, noise_rms_v: float) -> np.ndarray:
        """ADC codes (int16, signed, centred on the offset, clipped at the screen edges) of a
        uniformly sampled signal at the sample times, with noise_rms_v times a standard normal
        drawn from rng added to each sample first."""
        return digitize(start_s, step_s, signal, sample_times_s, rng, noise_rms_v, self.offset_v, self.lsb_v,
                        ADC_BITS)

@dataclass
class ScopeTrigger:
    source_channel: int = 1
    level_v: float = 0.0
    slope: Literal["rising", "falling"] = "rising"


@dataclass
class ChannelRecord:
    """One channel's last acquired record: ADC codes plus the scaling that turns them into volts."""

    codes: np.ndarray                  # int16, 8-bit range
    lsb_v: float
    offset_v: float
    first_sample_s: float              # relative to the trigger
    sample_interval_s: float

    @property
    def volts(self) -> np.ndarray:
        return self.codes * self.lsb_v + self.offset_v

    @property
    def time_s(self) -> np.ndarray:
        return self.first_sample_s + np.arange(self.codes.size) * self.sample_interval_s


@dataclass
class OscilloscopePanel:
    channels: dict[int, ScopeChannel]
    max_sample_rate_hz: float
    analog_bandwidth_hz: float
    max_record_length: int
    input_noise_v_rms: float = 0.5e-3   # referred to the scope input, over the analog bandwidth
    sample_rate_hz: float = 20e9
    record_length: int = 2000
    first_sample_s: float = -50e-9     # time of the first sample relative to the trigger
    average_count: int = 1
    trigger: ScopeTrigger = field(default_factory=ScopeTrigger)
    state: AcquisitionState = "stopped"
    continuous: bool = False           # RUN mode re-arms after every acquisition
    armed_at_s: float = 0.0            # trigger events are looked for from here (moves past misses)
    arm_began_s: float = 0.0           # when the scope was armed: the auto trigger's timer runs from it
    auto_trigger: bool = False         # force a trigger when none came (AUTO sweep/mode)
    records: dict[int, ChannelRecord] = field(default_factory=dict)
    acquisitions_completed: int = 0

    @classmethod
    def with_channels(cls, count: int, **limits) -> OscilloscopePanel:
        return cls({n: ScopeChannel() for n in range(1, count + 1)}, **limits)

    @property
    def sample_interval_s(self) -> float:
        return 1.0 / self.sample_rate_hz

    @property
    def record_duration_s(self) -> float:
        return self.record_length * self.sample_interval_s

    def auto_trigger_at_s(self) -> float | None:
        """Lab time the armed scope forces a trigger at; None when it waits for a real one."""
        if not self.auto_trigger:
            return None
        return self.arm_began_s + max(AUTO_TRIGGER_MIN_S, AUTO_TRIGGER_RECORDS * self.record_duration_s)

    def arm(self, now_s: float, *, continuous: bool = False) -> None:
        self.state = "armed"
        self.continuous = continuous
        self.armed_at_s = self.arm_began_s = now_s

    def stop(self) -> None:
        self.state = "stopped" if self.state != "done" else "done"
        self.continuous = False
