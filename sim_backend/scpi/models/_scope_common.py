"""What the Infiniium and Tektronix scope personalities share.

* `ScopeModel`: one model's identity and hardware limits, which size its front panel.
* `ScopePersonality`: the link to the bench (arming, completing acquisitions, records that
  still match the horizontal settings) and a query answer that waits for an acquisition:
  `*OPC?` after a single-shot arm is answered only once the acquisition completed, from
  `read_message`, so a trigger that never comes leaves the controller's read to time out.
* `RealOr`: a number or one of a few words (`AUTO`, `MAX`), as `:ACQ:SRAT AUTO` takes.
* `measure`: waveform measurements on a record, shared by `:MEASure:*?` and `MEAS#:VALue?`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim_backend.bench.scope import ChannelRecord, OscilloscopePanel
from sim_backend.scpi.commands import Command
from sim_backend.scpi.ieee488 import Identity, ScpiPersonality
from sim_backend.scpi.lexer import Token
from sim_backend.scpi.params import Param, Real, mnemonic_forms


@dataclass(frozen=True)
class ScopeModel:
    """Identity and limits of one scope model (SI units)."""

    identity: Identity
    channels: int
    max_sample_rate_hz: float
    analog_bandwidth_hz: float
    max_record_length: int

    def panel(self, settings: dict) -> OscilloscopePanel:
        # The model fixes the count; `channels:` may only restate it (the station checks read it too).
        stated = settings.get("channels", self.channels)
        if isinstance(stated, bool) or stated != self.channels:
            raise ValueError(f"emulator.channels: {stated!r} disagrees with the model: the "
                             f"{self.identity.model} has {self.channels} channels")
        panel = OscilloscopePanel.with_channels(
            self.channels, max_sample_rate_hz=self.max_sample_rate_hz,
            analog_bandwidth_hz=self.analog_bandwidth_hz, max_record_length=self.max_record_length)
        noise = settings.get("input_noise_v_rms")
        if noise is not None:
            panel.input_noise_v_rms = float(noise)
        return panel


@dataclass(frozen=True)
class RealOr(Real):
    """A real number, or one of `words` (SCPI-style, e.g. "AUTO"); the handler gets the number
    or the word's short form."""

    words: tuple[str, ...] = ()

    def convert(self, token: Token) -> float | str:
        if isinstance(token, str):
            for word in self.words:
                if token.upper() in mnemonic_forms(word):
                    return mnemonic_forms(word)[0]
        return super().convert(token)


class ScopePersonality(ScpiPersonality):
    """Base of both scope families: bench access, acquisition bookkeeping, waiting *OPC?."""

    model_table: dict[str, ScopeModel] = {}
    role = "oscilloscope"
    header_on = False                          # answers prefixed by their header (HEADer ON)
    _self_headed: frozenset[str] = frozenset()  # patterns whose answers carry their own header

    @classmethod
    def create_panel(cls, model: str, settings: dict) -> OscilloscopePanel:
        return cls.model_table[model].panel(settings)

    def __init__(self, world, role_name: str, model: str, settings: dict) -> None:
        self.spec = self.model_table[model]
        self.identity = self.spec.identity
        self.world = world
        self.role_name = role_name
        self.held: bytes | None = None     # an answer waiting for the acquisition to complete
        self._hold = False
        self.record_bits = 8               # ADC bits in the records: 16 when averaged
        self.seen_done = 0                 # acquisitions_completed when last bookkept
        super().__init__()
        self.reset()

    @property
    def panel(self) -> OscilloscopePanel:
        return self.world.panels[self.role_name]

    # -- acquisitions ------------------------------------------------------------------------

    def complete(self) -> bool:
        """Complete an armed acquisition if its trigger happened; True when one is done.

        In RUN mode a done acquisition is bookkept, then the scope re-arms and may complete the
        next one (a scope that keeps acquiring: NUMACq? counts on, records are the latest)."""
        panel = self.panel
        if panel.state == "done" and panel.continuous and panel.acquisitions_completed == self.seen_done:
            panel.arm(self.world.now_s(), continuous=True)
        if panel.state == "armed":
            from sim_backend.bench.acquisition import try_complete  # physics loads on first use
            try_complete(self.world, self.role_name)
        if panel.acquisitions_completed != self.seen_done:
            self.seen_done = panel.acquisitions_completed
            self.record_bits = 8 if panel.average_count <= 1 else 16
            self.on_acquired()
        return panel.state == "done"

    def on_acquired(self) -> None:
        """Hook: a new acquisition was just bookkept (remember per-record settings)."""

    def arm(self, *, continuous: bool) -> None:
        self.sync_panel()
        self.panel.arm(self.world.now_s(), continuous=continuous)

    def sync_panel(self) -> None:
        """Push the personality's controls into the generic panel fields."""

    def current_record(self, channel: int) -> ChannelRecord | None:
        """The channel's record if it was taken with the present horizontal settings.

        In RUN mode reading a record re-arms, so the next read may see a newer acquisition.
        """
        self.complete()
        panel = self.panel
        record = panel.records.get(channel)
        if record is not None and not self.matches(record):
            record = None
        if panel.continuous and panel.state == "done":
            panel.arm(self.world.now_s(), continuous=True)
        return record

    def matches(self, record: ChannelRecord) -> bool:
        panel = self.panel
        return (record.codes.size == panel.record_length
                and abs(record.sample_interval_s - panel.sample_interval_s) <= 1e-9 * panel.sample_interval_s
                and abs(record.first_sample_s - panel.first_sample_s) <= 1e-3 * panel.sample_interval_s)

    def word_codes(self, record: ChannelRecord, byte_count: int) -> tuple[np.ndarray, float]:
        """Record codes as `byte_count`-byte integers with the ADC bits at the top, and their LSB.

        8-bit records are shifted into the high byte of a word, as both families send WORD /
        2-byte data; 16-bit (averaged) records lose their low byte in 1-byte transfers.
        """
        shift = self._word_shift(byte_count)
        codes = record.codes.astype(np.int32)
        codes = codes << shift if shift >= 0 else codes >> -shift
        return codes, self.word_lsb_v(record, byte_count)

    def word_lsb_v(self, record: ChannelRecord, byte_count: int) -> float:
        """The LSB of `word_codes`, without converting the codes."""
        return record.lsb_v / 2.0 ** self._word_shift(byte_count)

    def _word_shift(self, byte_count: int) -> int:
        """Bits the record's codes move up to fill `byte_count`-byte integers (negative: down)."""
        return 8 * byte_count - self.record_bits

    def _query(self, command, suffixes, unit) -> bytes:
        answer = super()._query(command, suffixes, unit)
        if not self.header_on or command.pattern.startswith("*") or command.pattern in self._self_headed:
            return answer
        header = unit.header.upper()
        return (header if header.startswith(":") else ":" + header).encode() + b" " + answer

    # -- *OPC? that waits --------------------------------------------------------------------

    def acquisition_pending(self) -> bool:
        """True while a single-shot acquisition that *OPC? must wait for is armed."""
        return self.panel.state == "armed" and not self.panel.continuous

    def wait_for_completion(self) -> None:
        if self.acquisition_pending() and not self.complete():
            self._hold = True

    def _execute(self, message: bytes) -> None:
        if self.held is not None:
            self.held = None
            self.queue_error(-410)
        self._hold = False
        super()._execute(message)
        if self._hold and self._output:
            self.held = self._output.pop()

    def read_message(self) -> bytes | None:
        if self.held is not None and (not self.acquisition_pending() or self.complete()):
            held, self.held = self.held, None
            return held
        return super().read_message()

    def device_clear(self) -> None:
        super().device_clear()
        self.held = None


# -- measurements ------------------------------------------------------------------------------

def _crossings(volts: np.ndarray, level: float, rising: bool) -> np.ndarray:
    above = volts >= level
    edges = above[1:] & ~above[:-1] if rising else ~above[1:] & above[:-1]
    index = np.flatnonzero(edges)
    v0, v1 = volts[index], volts[index + 1]
    return index + (level - v0) / np.where(v1 == v0, 1.0, v1 - v0)   # fractional sample index


def measure(kind: str, record: ChannelRecord | None) -> float | None:
    """One measurement on a record, in SI units (V, s, Hz, %); None when undefined.

    Top and base are the histogram modes of the upper and lower halves, as scopes define them;
    edge times use 10/50/90 % of base-to-top on the first edge of the record.
    """
    if record is None or record.codes.size < 2:
        return None
    volts = record.volts
    vmax, vmin = float(volts.max()), float(volts.min())
    simple = {"max": vmax, "min": vmin, "pk2pk": vmax - vmin, "mean": float(volts.mean()),
              "rms": float(np.sqrt(np.mean(volts**2))), "stddev": float(volts.std())}
    if kind in simple:
        return simple[kind]
    mid = (vmax + vmin) / 2
    top = _mode(volts[volts >= mid]) if vmax > vmin else vmax
    base = _mode(volts[volts < mid]) if vmax > vmin else vmin
    levels = {"top": top, "base": base, "amplitude": top - base, "middle": (top + base) / 2}
    if kind in levels:
        return levels[kind]
    if top <= base:
        return None
    dt = record.sample_interval_s
    at = {f: base + f * (top - base) for f in (0.1, 0.5, 0.9)}
    up, down = _crossings(volts, at[0.5], True), _crossings(volts, at[0.5], False)
    if kind in ("rise", "fall"):
        rising = kind == "rise"
        lo, hi = _crossings(volts, at[0.1], rising), _crossings(volts, at[0.9], rising)
        first, last = (lo, hi) if rising else (hi, lo)
        if first.size == 0 or last.size == 0 or last[last > first[0]].size == 0:
            return None
        return float((last[last > first[0]][0] - first[0]) * dt)
    if kind in ("period", "frequency"):
        if up.size < 2:
            return None
        period = float((up[1] - up[0]) * dt)
        return period if kind == "period" else 1.0 / period
    if kind in ("pwidth", "nwidth"):
        start, stop = (up, down) if kind == "pwidth" else (down, up)
        if start.size == 0 or stop[stop > start[0]].size == 0:
            return None
        return float((stop[stop > start[0]][0] - start[0]) * dt)
    if kind == "pduty" and up.size >= 2:
        width = measure("pwidth", record)
        return None if width is None else 100.0 * width / float((up[1] - up[0]) * dt)
    return None


def _mode(values: np.ndarray) -> float:
    counts, edges = np.histogram(values, bins=max(1, min(256, values.size)))
    peak = int(np.argmax(counts))
    return float((edges[peak] + edges[peak + 1]) / 2)


# -- declarative settings ----------------------------------------------------------------------

def stored(pattern: str, param: Param, attribute: str, doc: str) -> Command:
    """A setting kept in `attribute` (a dict keyed by the header's suffix when it has one)."""

    def get(self, *suffixes: int) -> str:
        value = getattr(self, attribute)
        return param.format(value[suffixes[0]] if suffixes else value)

    def put(self, *args: object) -> None:
        *suffixes, value = args
        if suffixes:
            getattr(self, attribute)[suffixes[0]] = value
        else:
            setattr(self, attribute, value)

    return Command(pattern, (param,), (), put, get, doc)


def channel_field(pattern: str, param: Param, field: str, doc: str, scale: float = 1.0) -> Command:
    """A setting stored in the front panel's channel: value = panel field / `scale`."""

    def get(self, channel: int) -> str:
        value = getattr(self.panel.channels[channel], field)
        return param.format(value / scale if scale != 1.0 else value)

    def put(self, channel: int, value: object) -> None:
        setattr(self.panel.channels[channel], field, value * scale if scale != 1.0 else value)

    return Command(pattern, (param,), (), put, get, doc)
