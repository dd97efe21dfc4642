"""The kernel's sample row and the structure's account of it (_layout.Structure.sample_columns)
agree on every shipped chip: the Python side names the columns the compiled side writes."""

from pathlib import Path

import numpy as np
import pytest

from sim_backend.chip.build import load_chip
from sim_backend.physics import _layout
from sim_backend.physics._linear_modes import _Probe
from sim_backend.physics.dc import dc_state
from sim_backend.physics.transient import simulate

CHIPS = sorted((Path(__file__).resolve().parents[2] / "stations" / "chips").glob("*.yaml"))


@pytest.mark.parametrize("chip_path", CHIPS, ids=[p.stem for p in CHIPS])
def test_the_kernel_writes_as_many_columns_as_the_structure_names(chip_path):
    chip = load_chip(chip_path)
    st = _layout.structure(chip.circuit, chip.temperature_k)
    count = st.sample_column_count()
    assert count == sum(len(names) for _, names in st.sample_columns) > len(st.nodes)
    probe = _Probe(st)
    probe.row = np.full(count + 3, np.nan)      # room past the end: what the kernel writes there shows
    nb, nsrc = len(st.branches), len(st.current_sources) + len(st.voltage_sources)
    row, _ = probe(np.linspace(1e-6, 2e-6, nb + nsrc))
    assert np.isfinite(row[:count]).all(), row
    assert np.isnan(row[count:]).all(), f"the kernel wrote {np.flatnonzero(~np.isnan(row))[-1] + 1} columns, " \
                                         f"the structure names {count}"


@pytest.mark.parametrize("chip_path", CHIPS[:2], ids=[p.stem for p in CHIPS[:2]])
def test_each_named_trace_is_its_own_column(chip_path):
    """Every name of every group gets a trace of its own (a column counted twice or skipped would
    hand one trace to two names, or shift the rest), and the energies' totals end the traces."""
    chip = load_chip(chip_path)
    initial = dc_state(chip.circuit, temperature_k=chip.temperature_k)
    result = simulate(chip.circuit, 1e-9, sample_times_s=np.linspace(0.0, 1e-9, 5), temperature_k=chip.temperature_k,
                      rng=np.random.default_rng(0), initial=initial)
    st = _layout.structure(chip.circuit, chip.temperature_k)
    traces = [trace for group, _ in st.sample_columns for trace in getattr(result, group).values()]
    assert len(traces) == st.sample_column_count() == len({id(t) for t in traces})
    assert [(group, tuple(getattr(result, group))) for group, _ in st.sample_columns] == list(st.sample_columns)
    for name, total_j in {**result.energy.dissipated_j, **result.energy.delivered_j}.items():
        trace = (result.cumulative_dissipated_j | result.cumulative_delivered_j)[name]
        assert trace[-1] == pytest.approx(total_j, rel=1e-9, abs=1e-30), name
