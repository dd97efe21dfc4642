"""Write-path details: chunk sizing, block appends at any alignment, and who may import h5py."""

from __future__ import annotations

import ast
from pathlib import Path

import h5py
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.archive import layout
from lab.archive.blocks import Appender

LAB = Path(__file__).resolve().parents[2] / "lab"


def test_chunks_hold_whole_traces_within_a_quarter_to_one_mib():
    for n_channels, n_points in [(2, 10_000), (2, 2_500), (4, 20_000), (1, 100_000)]:
        bytes_per_trace = 4 * n_channels * n_points
        k = layout.chunk_traces(bytes_per_trace)
        assert 0.25 * 2**20 <= k * bytes_per_trace <= 2**20, (n_channels, n_points, k)
        block = layout.block_traces(k, bytes_per_trace)
        assert block % k == 0 and block * bytes_per_trace <= layout.BLOCK_WANTED_BYTES
        assert (block + k) * bytes_per_trace > layout.BLOCK_WANTED_BYTES      # as many whole chunks as fit
        assert layout.block_traces(k, bytes_per_trace, wanted=2 * k) == 2 * k       # a run's own choice stands
    assert layout.chunk_traces(80_000) == 8  # the measured sweet spot (hdf5.md §3)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=12))
def test_blocks_of_any_size_append_exactly(tmp_path_factory, sizes):
    path = tmp_path_factory.mktemp("blocks") / "b.h5"
    rng = np.random.default_rng(len(sizes))
    data = rng.normal(size=(sum(sizes), 2, 16)).astype(np.float32)
    with h5py.File(path, "w", libver=layout.LIBVER) as f:
        g = f.create_group("g")
        trace = layout.scale(g, "trace", unlimited=True)
        v = g.create_dataset("v", (0, 2, 16), "f4", maxshape=(None, 2, 16), chunks=(8, 2, 16))
        layout.attach(v, trace)
        f.swmr_mode = True
        appender, start = Appender(g, "trace"), 0
        for block, n in enumerate(sizes):
            rows = data[start:start + n]
            # every other block as consecutive parts of any size, as a buffer hands large ones on
            cuts = sorted(rng.integers(0, n + 1, size=2)) if block % 2 else None
            value = [rows[:cuts[0]], rows[cuts[0]:cuts[1]], rows[cuts[1]:]] if cuts is not None else rows
            assert appender.append({"v": value}) == start + n
            start += n
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["g/v"][()], data)
        np.testing.assert_array_equal(f["g/trace"][()], np.arange(len(data)))


def test_only_the_archive_imports_h5py():
    offenders = []
    for path in LAB.rglob("*.py"):
        if "archive" in path.relative_to(LAB).parts[0]:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "h5py"]
    assert offenders == []
