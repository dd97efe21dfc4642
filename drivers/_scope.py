"""The Oscilloscope role, shared by the Infiniium and Tektronix drivers.

The verbs validate and check the envelope, then call model hooks for the SCPI: each model
turns the same `AcquisitionSettings` into its own commands and reads its own records back as
volts at the scope input and seconds relative to the trigger.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from drivers._common import RecoveringVisa
from drivers._write_guard import Admission, Rule
from contracts.envelope import Envelope, EnvelopeError
from contracts.records import Quantized
from contracts.roles import AcquisitionLost, Traces

#: wait_acquired asks whether the acquisition completed after FIRST_POLL_INTERVAL_S, then at
#: doubling intervals up to POLL_INTERVAL_S (wall time): a trigger that comes soon after arming
#: (the next pulse of a train, any event on an emulated station's accelerated clock) is seen
#: soon, a long wait costs the scope a query every POLL_INTERVAL_S.
FIRST_POLL_INTERVAL_S = 1e-4
POLL_INTERVAL_S = 2e-3


@dataclass(frozen=True)
class AcquisitionSettings:
    channel_ranges_v: dict[int, float]   # full scale, centred on 0 V
    record_length: int
    sample_rate_hz: float
    pretrigger_s: float
    trigger_channel: int
    trigger_level_v: float
    trigger_slope: Literal["rising", "falling"]
    average_count: int

    @property
    def duration_s(self) -> float:
        return self.record_length / self.sample_rate_hz


class ScopeRole(RecoveringVisa):
    """Role verbs; subclasses implement the `_write_*`, `_armed_*` and `_read_*` hooks."""

    envelope: Envelope
    channel_count: int = 4
    #: The codes' resolution: 8-bit ADCs (Infiniium S-Series, Tektronix DPO/MSO, and the emulated
    #: models), sent as 16-bit words; a model with a finer ADC says so.
    adc_bits: int = 8
    _last_settings: AcquisitionSettings | None = None
    #: link_generation when the last acquisition was armed (None: nothing armed yet).
    _armed_generation: int | None = None

    # --- role: Oscilloscope -----------------------------------------------------------------
    def configure_acquisition(
        self, *, channel_ranges_v: Mapping[int, float], record_length: int, sample_rate_hz: float,
        pretrigger_s: float, trigger_channel: int, trigger_level_v: float,
        trigger_slope: Literal["rising", "falling"] = "rising", average_count: int = 1,
    ) -> None:
        settings = AcquisitionSettings(dict(channel_ranges_v), record_length, sample_rate_hz, pretrigger_s,
                                       trigger_channel, trigger_level_v, trigger_slope, average_count)
        self._check(settings)
        # Set first: a link lost on the way re-applies these settings whole. Every setting is
        # written each time: what the scope holds can have been changed at the scope itself,
        # which no message shows (a trigger slope, an average count, a channel's range); all of
        # them in one message.
        self._last_settings = settings
        self._write_settings(settings)
        self.raise_on_errors("configure_acquisition")

    def arm_single(self) -> None:
        # Taken before arming: a reconnect while arming (after which the write is retried and the
        # scope armed) also counts as lost, so the capture is taken again; one pulse more, never
        # a record of unknown origin.
        self._armed_generation = self.link_generation
        self._write_arm()
        # A query, not *OPC? (which would wait for the trigger): returns once the scope is armed.
        self.raise_on_errors("arm_single")

    def wait_acquired(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        interval_s = FIRST_POLL_INTERVAL_S
        while True:
            acquired = self._read_acquired()
            self._check_acquisition_kept("waiting for the trigger")
            if acquired:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(interval_s, max(deadline - time.monotonic(), 0.0)))
            interval_s = min(2.0 * interval_s, POLL_INTERVAL_S)

    def fetch_traces(self, channels: Sequence[int]) -> Traces:
        if not channels:
            raise ValueError("fetch_traces needs at least one channel")
        traces = self._fetch(channels)
        self._check_acquisition_kept("reading the records")
        return traces

    def _check_acquisition_kept(self, doing: str) -> None:
        """A reconnect re-applies the acquisition settings, which ends the armed acquisition
        and may clear its record: what was read since is not that acquisition's."""
        if self._armed_generation is not None and self.link_generation != self._armed_generation:
            raise AcquisitionLost(f"{self._who()}: the link was re-established while {doing}; "
                                  "the armed acquisition is lost")

    def _fetch(self, channels: Sequence[int]) -> Traces:
        time_s: np.ndarray | None = None
        records: dict[int, Quantized] = {}
        for channel in channels:
            self._check_channel(channel)
            channel_time_s, record = self._read_record(channel)
            records[channel] = record.narrowed(self.adc_bits)
            if time_s is None:
                time_s = channel_time_s
            elif channel_time_s.shape != time_s.shape or not np.allclose(channel_time_s, time_s, rtol=0, atol=1e-15):
                raise RuntimeError(f"{self.name}: channel {channel}'s record has another time axis")  # type: ignore[attr-defined]
        assert time_s is not None
        volts = {channel: record.values() for channel, record in records.items()}
        return Traces(time_s=time_s, voltage_v=volts, quantized_v=records)

    def safe_state(self) -> None:
        self._write_stop()
        self.raise_on_errors("safe_state")

    # --- hooks ------------------------------------------------------------------------------
    def _write_acquisition(self, settings: AcquisitionSettings) -> None:
        raise NotImplementedError

    def _write_arm(self) -> None:
        raise NotImplementedError

    def _write_stop(self) -> None:
        raise NotImplementedError

    def _read_acquired(self) -> bool:
        raise NotImplementedError

    def _read_record(self, channel: int) -> tuple[np.ndarray, Quantized]:
        """(time_s relative to the trigger, the ADC codes with their scaling to volts at the scope
        input) of the last acquisition."""
        raise NotImplementedError

    def _read_int16_block(self, query: str, channel: int, points: int, points_from: str) -> np.ndarray:
        """The little-endian int16 codes `query` answers, exactly `points` of them (a block
        that does not parse or is short is read again once, then MalformedReplyError)."""
        what = f"query {query!r} (channel {channel})"

        def read() -> np.ndarray:
            codes = self.exchange(what, query, lambda: self.visa_handle.query_binary_values(  # type: ignore[attr-defined]
                query, datatype="h", is_big_endian=False, container=np.array, expect_termination=True))
            if codes.size != points:
                raise ValueError(f"channel {channel} sent {codes.size} points, {points_from} says {points}")
            return codes

        return self.read_parsed(what, read)

    # --- checks and recovery ----------------------------------------------------------------
    def _check_channel(self, channel: int) -> None:
        if not isinstance(channel, int) or not 1 <= channel <= self.channel_count:
            raise ValueError(f"no scope channel {channel!r}; channels are 1..{self.channel_count}")

    def _check(self, s: AcquisitionSettings) -> None:
        if not s.channel_ranges_v:
            raise ValueError("channel_ranges_v names no channel")
        for channel, range_v in s.channel_ranges_v.items():
            self._check_channel(channel)
            if not range_v > 0:
                raise ValueError(f"channel {channel}: range must be > 0 V, got {range_v!r}")
            self.envelope.check_at_most("input_range_max_v", range_v, f"channel {channel} input range", "V")
        self._check_channel(s.trigger_channel)
        if not isinstance(s.record_length, int) or s.record_length < 16:
            raise ValueError(f"record_length must be a whole number >= 16, got {s.record_length!r}")
        if not s.sample_rate_hz > 0:
            raise ValueError(f"sample_rate_hz must be > 0, got {s.sample_rate_hz!r}")
        if not 0 <= s.pretrigger_s <= s.duration_s:
            raise ValueError(f"pretrigger_s must lie within the record (0..{s.duration_s:.3g} s), "
                             f"got {s.pretrigger_s!r}")
        if s.trigger_slope not in ("rising", "falling"):
            raise ValueError(f"trigger_slope must be 'rising' or 'falling', got {s.trigger_slope!r}")
        if not isinstance(s.average_count, int) or s.average_count < 1:
            raise ValueError(f"average_count must be a whole number >= 1, got {s.average_count!r}")

    def reapply_role_settings(self) -> None:
        if self._last_settings is not None:
            self._write_settings(self._last_settings)

    def _write_settings(self, settings: AcquisitionSettings) -> None:
        """Every setting of an acquisition (`_write_acquisition`'s), as one program message."""
        self.write_in_messages(lambda: self._write_acquisition(settings))


def ranges_unseen_rules(envelope: Envelope, spellings: tuple[str, ...]) -> list[Rule]:
    """Rules for commands that set every channel's input range to what the check cannot see (a
    reset's default range, an autoscale's, a recalled setup's): refused while the station limits
    the range (`input_range_max_v`), allowed otherwise."""

    def check(admission: Admission) -> None:
        limit_v = envelope.limit("input_range_max_v")
        if limit_v is not None:
            raise EnvelopeError(f"refused: {admission.unit.header} sets input ranges the check cannot see (the "
                                f"station limits them to {limit_v:.6g} V); nothing was written")

    return [Rule(spelling, check) for spelling in spellings]
