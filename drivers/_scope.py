"""The Oscilloscope role, shared by the Infiniium and Tektronix drivers.

The verbs validate and check the envelope, then call model hooks for the SCPI: each model
turns the same `AcquisitionSettings` into its own commands and reads its own records back as
volts at the scope input and seconds relative to the trigger.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
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
    #: What the scope holds: the messages of the settings this session last wrote whole or in
    #: part, each run with a clean report, the link generation they were written on and the count
    #: of writes from outside the role's verbs then. A procedure asks for settings before every
    #: capture (a threshold search: hundreds of times), most often the ones held but for an input
    #: range and the trigger level that follow the pulse's amplitude: while nothing else can have
    #: changed the scope, only those messages are written (2 of the Infiniium's 23). A change at
    #: the scope itself no message shows; a record fetched with another length or sample interval
    #: does, and the next configuration is written whole.
    _held: tuple[tuple[str, ...], int, int] | None = None
    #: Headers (regular expressions, matched from the start, case-insensitive) of the messages of
    #: `_write_acquisition` that set one value and nothing else: written alone when changed.
    independent_headers: tuple[str, ...] = ()
    _writes_outside_verbs = 0
    _verbs_running = 0

    @contextmanager
    def _verb(self) -> Iterator[None]:
        self._verbs_running += 1
        try:
            yield
        finally:
            self._verbs_running -= 1

    def write_raw(self, cmd: str) -> None:
        if not self._verbs_running:
            self._writes_outside_verbs += 1    # a stock parameter, a user's write: settings may change
        super().write_raw(cmd)

    # --- role: Oscilloscope -----------------------------------------------------------------
    def configure_acquisition(
        self, *, channel_ranges_v: Mapping[int, float], record_length: int, sample_rate_hz: float,
        pretrigger_s: float, trigger_channel: int, trigger_level_v: float,
        trigger_slope: Literal["rising", "falling"] = "rising", average_count: int = 1,
    ) -> None:
        settings = AcquisitionSettings(dict(channel_ranges_v), record_length, sample_rate_hz, pretrigger_s,
                                       trigger_channel, trigger_level_v, trigger_slope, average_count)
        self._check(settings)
        with self._verb():
            with self.gathering_writes() as messages:
                self._write_acquisition(settings)
            held, self._held, generation = self._held, None, self.link_generation
            # Set first: a link lost between the messages re-applies these settings whole, not the
            # ones before with this configuration's later messages on top.
            self._last_settings = settings
            for message in self._messages_to_write(messages, held):
                self.write(message)
            self.raise_on_errors("configure_acquisition")
        if self.link_generation == generation:   # a reconnect between the messages re-applied others
            self._held = (tuple(messages), generation, self._writes_outside_verbs)

    def _messages_to_write(self, messages: list[str], held: tuple[tuple[str, ...], int, int] | None) -> list[str]:
        """All of `messages`, or those that differ from the held ones where the scope still holds
        them (same link, nothing written from outside the verbs) and each sets one value alone."""
        if held is None or held[1:] != (self.link_generation, self._writes_outside_verbs) \
                or len(held[0]) != len(messages):
            return messages
        changed = [new for new, old in zip(messages, held[0]) if new != old]
        independent = [re.compile(pattern, re.IGNORECASE) for pattern in self.independent_headers]
        if all(any(p.match(message) for p in independent) for message in changed):
            return changed
        return messages

    def arm_single(self) -> None:
        # Taken before arming: a reconnect while arming (after which the write is retried and the
        # scope armed) also counts as lost, so the capture is taken again; one pulse more, never
        # a record of unknown origin.
        self._armed_generation = self.link_generation
        with self._verb():
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
        with self._verb():
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
        if not self._record_as_set(time_s):
            self._held = None     # changed at the front panel: the next configuration is written whole
        volts = {channel: record.values() for channel, record in records.items()}
        return Traces(time_s=time_s, voltage_v=volts, quantized_v=records)

    def _record_as_set(self, time_s: np.ndarray) -> bool:
        """The record has the length and sample interval last configured (to 0.1 %)."""
        settings = self._last_settings
        if settings is None or time_s.size < 2:
            return settings is None
        interval_s = (time_s[-1] - time_s[0]) / (time_s.size - 1)
        return time_s.size == settings.record_length and abs(interval_s * settings.sample_rate_hz - 1.0) < 1e-3

    def safe_state(self) -> None:
        with self._verb():
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
            self._write_acquisition(self._last_settings)


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
