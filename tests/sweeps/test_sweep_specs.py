"""Sweep specs: the points they make (grid order, seeded random and Latin-hypercube samples,
per-point seeds) and the refusals, each one line naming the file, the entry and the problem."""

from __future__ import annotations

import numpy as np
import pytest

from lab.app.cli import main
from sweeps.spec import chip_variant, point_seed, read_spec
from tests.sweeps.conftest import ROOT, write_spec

HEAD = "format: nwlab-sweep/1\nchip: default-neuron\n"
GOOD = HEAD + """\
parameters:
  ls.inductance: {values: [10e-9, 20e-9]}
  temperature: {linspace: [2, 3, 3]}
metrics: [fires]
"""
SAMPLED = HEAD + """\
seed: 4
parameters:
  bias: {range: [20e-6, 26e-6]}
  wm.sigma_isw: {range: [1e-9, 1e-6], log: true}
sampling: {method: METHOD, points: 20}
metrics: [threshold_a]
"""


def test_a_grid_enumerates_in_the_spec_order_with_named_units(tmp_path):
    spec = read_spec(write_spec(tmp_path, GOOD))
    assert spec.grid_shape == (2, 3) and spec.point_count == 6
    assert [p.name for p in spec.parameters] == ["ls_inductance_h", "temperature_k"]
    values = spec.point_values()
    assert values[:3, 0].tolist() == [10e-9] * 3 and values[:3, 1].tolist() == [2.0, 2.5, 3.0]
    tree = chip_variant(spec, values[4])
    assert next(e for e in tree["elements"] if e["name"] == "ls")["inductance"]["value"] == 20e-9
    assert tree["temperature"] == {"value": 2.5, "unit": "K", "source": "nwlab sweep"}


@pytest.mark.parametrize("method", ["random", "latin_hypercube"])
def test_samples_are_seeded_inside_their_ranges(tmp_path, method):
    spec = read_spec(write_spec(tmp_path, SAMPLED.replace("METHOD", method)))
    values = spec.point_values()
    assert values.shape == (20, 2)
    assert np.all((20e-6 <= values[:, 0]) & (values[:, 0] <= 26e-6))
    assert np.all((1e-9 <= values[:, 1]) & (values[:, 1] <= 1e-6))
    np.testing.assert_array_equal(values, read_spec(spec.path).point_values())
    assert [p.name for p in spec.parameters] == ["bias_a", "wm_sigma_isw_a"]
    if method == "latin_hypercube":       # one sample in each of the 20 strata of every parameter
        strata = np.floor((values[:, 0] - 20e-6) / 6e-6 * 20).astype(int)
        assert sorted(strata) == list(range(20))
        logs = np.floor((np.log(values[:, 1]) - np.log(1e-9)) / np.log(1e3) * 20).astype(int)
        assert sorted(logs) == list(range(20))


def test_point_seeds_depend_on_the_spec_seed_and_the_index_only():
    assert point_seed(3, 7) == point_seed(3, 7)
    assert len({point_seed(3, i) for i in range(1000)}) == 1000
    assert point_seed(3, 7) != point_seed(4, 7)


BAD = [
    (HEAD + "parameters: {ls.inductance: {values: [1e-9]}}\nmetric: [fires]\n",
     "metric: unknown key (did you mean 'metrics'?)"),
    ("format: nwlab-sweep/2\n", "format: must be 'nwlab-sweep/1'"),
    (HEAD + "parameters: {lx.inductance: {values: [1e-9]}}\nmetrics: [fires]\n",
     "parameters.lx.inductance: the chip has no element 'lx'"),
    (HEAD + "parameters: {rc.inductance: {values: [1e-9]}}\nmetrics: [fires]\n",
     "parameters.rc.inductance: a resistor has one field, 'resistance'"),
    (HEAD + "parameters: {wm.colour: {values: [1]}}\nmetrics: [fires]\n",
     "parameters.wm.colour: a nanowire has no field 'colour'"),
    (HEAD + "parameters: {ls.inductance: {values: [1e-9]}}\nmetrics: [speed]\n", "unknown metric 'speed'"),
    (HEAD + "parameters: {ls.inductance: {range: [1e-9, 2e-9]}}\nmetrics: [fires]\n",
     "a range needs sampling random, latin_hypercube or adaptive"),
    (HEAD + "parameters: {ls.inductance: {linspace: [1e-9, 2e-9, 2.5]}}\nmetrics: [fires]\n",
     "[start, stop, count] with a whole count"),
    (HEAD + "parameters: {ls.inductance: {values: [20 nH]}}\nmetrics: [fires]\n",
     "must be a non-empty list of finite numbers (SI, no unit)"),
    (HEAD + "parameters: {ls.inductance: {values: [1e-9]}}\nmetrics: [rheobase_a]\n",
     "rheobase_a and chronaxie_s need thresholds at two widths or more"),
    (HEAD + "parameters: {ls.inductance: {values: [1e-9]}}\nmetrics: [fires]\nmetrics: [fires]\n",
     "duplicate key 'metrics'"),
    ("format: nwlab-sweep/1\nchip: no-such-chip\nparameters: {a.b: {values: [1]}}\nmetrics: [fires]\n",
     "no-such-chip.yaml: cannot read"),
    (HEAD + "parameters: {bias: {range: [1e-6, 2e-6]}}\nsampling: {method: sobol, points: 4}\nmetrics: [fires]\n",
     "sampling.method: 'sobol': must be one of grid, random, latin_hypercube, adaptive"),
    (HEAD + "measure: procedures\nparameters: {bias: {values: [1e-6]}}\nmetrics: [threshold_a]\n",
     "measure: procedures run on an emulated station: give its file as station:"),
    (HEAD + f"station: {ROOT / 'stations' / 'emulated.yaml'}\nmeasure: procedures\n"
     "parameters: {bias: {values: [1e-6]}}\nmetrics: [latches]\n", "'latches' is not measured by the procedures path"),
]


@pytest.mark.parametrize("text, problem", BAD, ids=[problem[:40] for _, problem in BAD])
def test_a_bad_spec_is_refused_in_one_line_naming_the_problem(tmp_path, capsys, text, problem):
    path = write_spec(tmp_path, text)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--in-process", "--no-progress"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"nwlab sweep: {path}: ") and problem in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


def test_a_bad_target_is_refused_in_one_line(tmp_path, capsys):
    path = write_spec(tmp_path, GOOD)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--in-process", "--target",
                 "fires=1"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "fires=1" in lines[0] and "METRIC=VALUE±TOLERANCE" in lines[0]
