"""Archive write path against a raw `f.write` of the same bytes, measured in the same run.

Each pass writes N traces of 2 x 10,000 points from an 8-bit scope (int8 codes as the driver
hands them on, plus a per-trace trigger-time column) twice: through
`ArchiveWriter` (RunStart ... RunStop: SWMR, flush per block of ~5 MB with the kernel's writeback
started after each, reopen, fsync, rename), which keeps them as int8 codes with a step, origin and
point count per trace and channel; and as the same bytes with `f.write` per block + fsync ("raw",
the reference the target is set against), and so again with writeback started after every ~5 MB
as the archive does ("raw+wb", the floor for a writer that starts writeback). Passes rotate so no
writer always follows another; the medians are compared.

Prints the archive's bytes per sample (the file's size over the samples it holds) and the ratio
of each raw write's time to the archive's.

    .ci/env python benchmarks/archive_write.py [--traces 8000] [--repeats 9] [--dir DIR] [--parts]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from lab.archive import layout
from lab.archive.writer import ArchiveWriter, start_writeback
from contracts.records import ColumnSpec, RunStart, RunStop, TraceBlock, TraceCodes, TraceSpec

N_CHANNELS, N_POINTS, BLOCK = 2, 10_000, 64
TIME_S = np.arange(N_POINTS) * 1e-10
CHANNELS = ("main", "control")
CODE_BITS = 8
TARGET_BYTES_PER_SAMPLE = 1.1
TARGET_RATIO_TO_RAW = 0.95  # the archive's speed over a raw write's of the same bytes


def make_blocks(n_distinct: int = 4) -> list[TraceBlock]:
    """Scope-like data: 8-bit codes with a per-channel range, a few distinct blocks reused."""
    rng = np.random.default_rng(1)
    blocks = []
    for b in range(n_distinct):
        codes = rng.integers(-128, 128, (BLOCK, N_CHANNELS, N_POINTS), dtype=np.int8)
        step = np.broadcast_to([[2e-3 / 256, 20e-3 / 256]], (BLOCK, N_CHANNELS))
        t_trigger_s = (b * BLOCK + np.arange(BLOCK)) * 1e-3
        blocks.append(TraceBlock(None, TIME_S, CHANNELS, {"t_trigger_s": (t_trigger_s, "s")},
                                 codes=TraceCodes(codes, step, np.zeros_like(step), np.full(step.shape, N_POINTS))))
    return blocks


def archive_pass(directory: Path, run_id: str, blocks: list[TraceBlock], n_blocks: int,
                 parts: dict[str, list[float]] | None = None) -> float:
    """One archive pass; with `parts`, its start, blocks and end timed apart, and the fsyncs
    inside its end (os.fsync wrapped for the pass)."""
    spec = TraceSpec(CHANNELS, TIME_S, {"t_trigger_s": ColumnSpec("s")}, code_bits=CODE_BITS)
    fsyncs: list[float] = []
    real_fsync = os.fsync

    def timed_fsync(fd: int) -> None:
        t = time.perf_counter()
        real_fsync(fd)
        fsyncs.append(time.perf_counter() - t)

    if parts is not None:
        os.fsync = timed_fsync
    try:
        t0 = time.perf_counter()
        writer = ArchiveWriter(directory)
        writer(RunStart(run_id, "benchmark", "2026-01-01T00:00:00+00:00", {}, "", "", {}, "bench",
                        traces=spec))
        t1 = time.perf_counter()
        for i in range(n_blocks):
            writer(blocks[i % len(blocks)])
        t2 = time.perf_counter()
        writer(RunStop("completed", "2026-01-01T00:00:01+00:00"))
        t3 = time.perf_counter()
    finally:
        os.fsync = real_fsync
    if parts is not None:
        for name, value in (("archive: start", t1 - t0), ("archive: blocks", t2 - t1), ("archive: end", t3 - t2),
                            ("archive: fsyncs in its end", sum(fsyncs))):
            parts.setdefault(name, []).append(value)
    return t3 - t0


def raw_pass(path: Path, blocks: list[TraceBlock], n_blocks: int, parts: dict[str, list[float]] | None = None,
             writeback: bool = False) -> float:
    """The same bytes with `f.write`, then fsync; with `writeback`, the kernel's writeback started
    after every ~5 MB (the archive's block) as the archive starts it."""
    t0 = time.perf_counter()
    since_writeback = 0
    with open(path, "wb") as f:
        for i in range(n_blocks):
            block = blocks[i % len(blocks)]
            codes = block.codes
            f.write(memoryview(codes.codes))
            for part in (codes.step, codes.origin, codes.points, block.columns["t_trigger_s"][0]):
                f.write(memoryview(np.ascontiguousarray(part)))
            since_writeback += codes.codes.nbytes
            if writeback and since_writeback >= layout.BLOCK_WANTED_BYTES:
                f.flush()
                start_writeback(f.fileno())
                since_writeback = 0
        f.flush()
        t1 = time.perf_counter()
        os.fsync(f.fileno())
    if parts is not None:
        name = "raw+wb" if writeback else "raw"
        parts.setdefault(f"{name}: write", []).append(t1 - t0)
        parts.setdefault(f"{name}: fsync", []).append(time.perf_counter() - t1)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--dir", type=Path, default=None, help="scratch directory (default: a temp dir)")
    parser.add_argument("--parts", action="store_true",
                        help="also time each writer in parts (start, blocks, end, fsync), as many passes again")
    args = parser.parse_args()
    n_blocks = max(1, args.traces // BLOCK)
    blocks = make_blocks()
    samples = n_blocks * BLOCK * N_CHANNELS * N_POINTS
    megabytes = n_blocks * (samples // n_blocks + BLOCK * (N_CHANNELS * 20 + 8)) / 1e6
    scratch = Path(tempfile.mkdtemp(prefix="nwlab-bench-", dir=args.dir))
    kinds = ("raw", "archive", "raw+wb")
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    try:
        archive_pass(scratch, "warmup", blocks, 2)
        for r in range(args.repeats):
            for kind in kinds[r % 3:] + kinds[:r % 3]:  # rotated: no order bias
                if kind == "archive":
                    times[kind].append(archive_pass(scratch, f"run{r}", blocks, n_blocks))
                    archive_bytes = (scratch / f"run{r}.h5").stat().st_size
                else:
                    times[kind].append(raw_pass(scratch / f"{kind}{r}.bin", blocks, n_blocks,
                                                writeback=kind == "raw+wb"))
            for p in scratch.iterdir():  # keep the page cache from filling with old passes
                p.unlink()
        parts: dict[str, list[float]] = {}
        for r in range(args.repeats if args.parts else 0):
            archive_pass(scratch, f"parts{r}", blocks, n_blocks, parts)
            raw_pass(scratch / f"raw-parts{r}.bin", blocks, n_blocks, parts)
            raw_pass(scratch / f"raw-wb-parts{r}.bin", blocks, n_blocks, parts, writeback=True)
            for p in scratch.iterdir():
                p.unlink()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    bytes_per_sample = archive_bytes / samples
    print(f"{n_blocks * BLOCK} traces x {N_CHANNELS} x {N_POINTS} {CODE_BITS}-bit codes = {megabytes:.0f} MB raw, "
          f"{args.repeats} passes, medians; archive file {archive_bytes / 1e6:.1f} MB, "
          f"{bytes_per_sample:.4f} bytes per sample (target <= {TARGET_BYTES_PER_SAMPLE})")
    print(f"{'writer':<10}{'median s':>10}{'min s':>9}{'max s':>9}{'MB/s':>9}{'traces/s':>11}")
    for k in kinds:
        print(f"{k:<10}{med[k]:>10.3f}{min(times[k]):>9.3f}{max(times[k]):>9.3f}"
              f"{megabytes / med[k]:>9.0f}{n_blocks * BLOCK / med[k]:>11.0f}")
    print(f"archive speed over raw's: {med['raw'] / med['archive']:.3f} (target >= {TARGET_RATIO_TO_RAW}); "
          f"over raw+wb's: {med['raw+wb'] / med['archive']:.3f}")
    for name, values in parts.items():
        print(f"  {name:<28}{statistics.median(values) * 1e3:8.1f} ms (median of {len(values)})")
    print(json.dumps({"benchmark": "archive_write", "ratio_to_raw": round(med["raw"] / med["archive"], 3),
                      "ratio_to_raw_with_writeback": round(med["raw+wb"] / med["archive"], 3),
                      "bytes_per_sample": round(bytes_per_sample, 4),
                      "target_met": (bytes_per_sample <= TARGET_BYTES_PER_SAMPLE
                                     and med["raw"] / med["archive"] >= TARGET_RATIO_TO_RAW),
                      "archive_mb_per_s": round(megabytes / med["archive"], 1),
                      "raw_mb_per_s": round(megabytes / med["raw"], 1),
                      "raw_with_writeback_mb_per_s": round(megabytes / med["raw+wb"], 1),
                      **({"parts_ms": {name: round(statistics.median(values) * 1e3, 1)
                                       for name, values in parts.items()}} if parts else {})}))


if __name__ == "__main__":
    main()
