"""Traces archived as the scope's ADC codes: a byte per 8-bit sample, the scaling per trace and
channel beside them, and every reader (h5py live reader, the Python API's xarray, the summary)
giving back the samples the codes stand for."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from lab.app import api
from lab.archive import layout
from lab.archive.live_reader import read_live_run
from lab.archive.reader import describe
from lab.archive.writer import ArchiveWriter, WriterOptions
from contracts.records import ColumnSpec, Quantized, RunStart, RunStop, TraceBlock, TraceCodes, TraceSpec

CHANNELS, UNITS = ("m", "c", "input_a"), ("V", "V", "A")
TIME_S = np.arange(400) * 5e-11


def spec(code_bits: int | None = 8) -> TraceSpec:
    return TraceSpec(CHANNELS, TIME_S, {"capture": ColumnSpec("1", "i8")}, UNITS, code_bits=code_bits)


def start(run_id: str, code_bits: int | None = 8) -> RunStart:
    return RunStart(run_id, "strength_duration", "2026-12-05T00:00:00+00:00", {}, "", "", {}, "test",
                    traces=spec(code_bits))


def capture(rng: np.random.Generator, index: int, bits: int = 8) -> TraceBlock:
    """One capture as CaptureRecords builds it: the bias node recorded shorter, and on every
    third capture not at all."""
    high = 1 << (bits - 1)
    dtype = np.int8 if bits <= 8 else np.int16
    def record(step: float, n: int = TIME_S.size) -> Quantized:
        return Quantized(rng.integers(-high, high, n).astype(dtype), step, rng.normal(scale=10 * step))
    channels = [record(0.4e-3 / 256), None if index % 3 == 2 else record(0.4e-3 / 256, 250),
                record(25e-6 / 256 * (1 + index))]     # the input's range follows the amplitude
    return spec(bits).block_of_codes(TraceCodes.of_channels(channels, TIME_S.size),
                                     {"capture": (np.array([index]), "1")})


def write_run(tmp_path, run_id="coded", n=9, bits=8):
    rng = np.random.default_rng(3)
    blocks = [capture(rng, k, bits) for k in range(n)]
    writer = ArchiveWriter(tmp_path, WriterOptions(block_traces=4))
    writer(start(run_id, bits))
    for block in blocks:
        writer(block)
    writer(RunStop("completed", "2026-12-05T00:00:01+00:00"))
    return writer.last_path, blocks


def expected(blocks: list[TraceBlock]) -> np.ndarray:
    """The samples, decoded here independently of the archive's code."""
    out = []
    for block in blocks:
        c = block.codes
        values = c.codes * c.step[..., None] + c.origin[..., None]
        values[np.arange(TIME_S.size) >= c.points[..., None]] = np.nan
        out.append(values)
    return np.concatenate(out)


def test_codes_are_stored_as_bytes_with_their_scaling(tmp_path):
    path, blocks = write_run(tmp_path)
    with h5py.File(path) as f:
        g = f["entry/traces"]
        assert g["voltage_code"].dtype == np.int8 and g["current_code"].dtype == np.int8
        assert g["voltage_code"].shape == (9, 2, TIME_S.size) and g["current_code"].shape == (9, 1, TIME_S.size)
        assert g["voltage_step"].attrs["units"] == "V" and g["current_step"].attrs["units"] == "A"
        assert g.attrs["signal"] == "voltage_code"
        np.testing.assert_array_equal(g["current_step"][:, 0], [b.codes.step[0, 2] for b in blocks])
        assert list(g["voltage_points"][:3, 1]) == [250, 250, 0]
        # a byte per sample of every chunk begun (the file's bytes per sample: benchmarks/archive_write.py)
        rows = -(-9 // g["voltage_code"].chunks[0]) * g["voltage_code"].chunks[0]
        assert g["voltage_code"].id.get_storage_size() == rows * 2 * TIME_S.size
        assert g["current_code"].id.get_storage_size() == rows * 1 * TIME_S.size


def test_every_reader_gives_the_samples_the_codes_stand_for(tmp_path):
    path, blocks = write_run(tmp_path)
    want = expected(blocks)
    run = api.open_run(path)
    np.testing.assert_array_equal(run.traces["voltage"].values, want[:, :2])
    np.testing.assert_array_equal(run.traces["current"].values, want[:, 2:])
    assert run.traces["current"].attrs["units"] == "A" and list(run.traces["channel"].values) == ["m", "c"]
    assert not [name for name in run.traces.variables if str(name).endswith(("_code", "_step", "_points"))]
    live = read_live_run(path, last_traces=4)
    assert live.traces.count == 9 and list(live.traces.indices) == [5, 6, 7, 8]
    for k, name in enumerate(CHANNELS):
        np.testing.assert_array_equal(live.traces.samples[name], want[5:, k])
    assert live.traces.channel_units == dict(zip(CHANNELS, UNITS))
    assert set(live.traces.columns) == {"capture"}
    text = describe(path)
    assert "m [V], c [V], input_a [A]" in text and "per trace: capture" in text and "_step" not in text


def test_a_block_wider_than_the_declared_bits_is_refused_and_the_run_keeps_what_it_had(tmp_path):
    rng = np.random.default_rng(4)
    writer = ArchiveWriter(tmp_path, WriterOptions(block_traces=1))
    writer(start("wide"))
    writer(capture(rng, 0))
    wide = capture(rng, 1, bits=10)
    with pytest.raises(layout.ArchiveError, match=r"codes from -\d+ to \d+ do not fit the 8 bits"):
        writer(wide)
    writer(RunStop("failed", "2026-12-05T00:00:01+00:00"))
    with h5py.File(writer.last_path) as f:
        assert f["entry/traces/voltage_code"].shape[0] == 1 == f["entry/traces/capture"].shape[0]


def test_a_block_of_float_samples_for_a_coded_run_is_refused(tmp_path):
    writer = ArchiveWriter(tmp_path)
    writer(start("floats"))
    with pytest.raises(layout.ArchiveError, match="without ADC codes"):
        writer(spec().block(np.zeros((1, 3, TIME_S.size)), {"capture": (np.array([0]), "1")}))
    writer(RunStop("failed", "2026-12-05T00:00:01+00:00"))


def test_wider_codes_go_to_16_bits_and_float_runs_stay_float(tmp_path):
    path, blocks = write_run(tmp_path, "ten-bit", n=3, bits=10)
    with h5py.File(path) as f:
        assert f["entry/traces/voltage_code"].dtype == np.int16
    np.testing.assert_array_equal(api.open_run(path).traces["voltage"].values, expected(blocks)[:, :2])
    writer = ArchiveWriter(tmp_path)
    writer(start("float", code_bits=None))
    writer(spec(None).block(np.ones((1, 3, TIME_S.size)), {"capture": (np.array([0]), "1")}))
    writer(RunStop("completed", "2026-12-05T00:00:01+00:00"))
    with h5py.File(writer.last_path) as f:
        assert f["entry/traces/voltage"].dtype == np.float32 and "voltage_code" not in f["entry/traces"]


def test_words_carrying_8_bit_samples_narrow_to_bytes_without_changing_a_value():
    adc = np.array([-128, -3, 0, 5, 127])
    words = Quantized((adc << 8).astype(np.int16), 1e-3 / 65536, 0.02)
    narrow = words.narrowed(8)
    assert narrow.codes.dtype == np.int8 and list(narrow.codes) == list(adc)
    np.testing.assert_array_equal(narrow.values(), words.values())
    averaged = Quantized(words.codes + np.array([0, 1, 0, 0, 0], dtype=np.int16), words.step, words.origin)
    assert averaged.narrowed(8) is averaged      # its low bits are used: kept whole
    assert Quantized(adc, 1.0, 0.0).scaled(lambda v: -2.5 * v).values().tolist() == (-2.5 * adc).tolist()


def test_blocks_of_large_captures_are_written_part_by_part_and_read_back_whole(tmp_path):
    """With the default block size (about 5 MB), blocks of 64 traces of 3 x 4,000 codes (~0.8
    MB) are buffered and written part by part, without joining them first; every sample reads
    back."""
    rng = np.random.default_rng(5)
    long_time_s = np.arange(4000) * 5e-11
    long_spec = TraceSpec(CHANNELS, long_time_s, {"capture": ColumnSpec("1", "i8")}, UNITS, code_bits=8)
    blocks = []
    for b in range(9):
        codes = rng.integers(-128, 128, (64, 3, long_time_s.size)).astype(np.int8)
        step = rng.uniform(1e-6, 1e-5, (64, 3))
        blocks.append(TraceBlock(None, long_time_s, CHANNELS, {"capture": (np.arange(64) + 64 * b, "1")},
                                 channel_units=UNITS,
                                 codes=TraceCodes(codes, step, np.zeros_like(step), np.full(step.shape, 4000))))
    writer = ArchiveWriter(tmp_path)
    writer(RunStart("large", "strength_duration", "2026-12-05T00:00:00+00:00", {}, "", "", {}, "test",
                    traces=long_spec))
    assert writer.run.block_traces == 384           # 5.12 MB of 12,060-byte traces, in whole chunks of 64
    for block in blocks:
        writer(block)
    writer(RunStop("completed", "2026-12-05T00:00:01+00:00"))
    with h5py.File(writer.last_path) as f:
        g = f["entry/traces"]
        np.testing.assert_array_equal(g["voltage_code"][()], np.concatenate([b.codes.codes[:, :2] for b in blocks]))
        np.testing.assert_array_equal(g["current_code"][()], np.concatenate([b.codes.codes[:, 2:] for b in blocks]))
        np.testing.assert_array_equal(g["capture"][()], np.arange(64 * 9))
