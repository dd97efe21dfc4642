"""`nwlab chip simulate|check` end to end (in process)."""

import json

import h5py
import numpy as np
import pytest

from lab.app.cli import main


def test_simulate_writes_h5_and_json(tmp_path, capsys):
    out = tmp_path / "r.h5"
    code = main(["chip", "simulate", "default-neuron", "--stop-s", "15e-9", "--seed", "3",
                 "--input", "input=pulse:amplitude_a=45e-6,width_s=2e-9,delay_s=2e-9,rise_s=2e-10",
                 "--out", str(out)])
    assert code == 0
    with h5py.File(out) as f:
        assert f["time_s"].attrs["units"] == "s" and f["m"].attrs["units"] == "V"
        assert f["m"].shape == f["time_s"].shape == (15001,)
        assert np.max(f["m"][:]) > 1e-4
    doc = json.loads(out.with_suffix(".json").read_text())
    assert [e["element"] for e in doc["events"] if e["kind"] == "switch"] == ["wm", "wc"]
    assert abs(doc["energy"]["balance_error_j"]) < 1e-3 * sum(doc["energy"]["delivered_j"].values())
    assert "wm: 1 switch(es)" in capsys.readouterr().out


def test_simulate_csv_and_paired_pulses(tmp_path):
    out = tmp_path / "r.csv"
    pulse = "input=pulse:amplitude_a=45e-6,width_s=2e-9,delay_s={}e-9,rise_s=2e-10"
    assert main(["chip", "simulate", "default-neuron", "--stop-s", "40e-9", "--out", str(out),
                 "--input", pulse.format(2), "--input", pulse.format(22)]) == 0
    header = out.read_text().splitlines()[0]
    assert header == "time_s,v_m_v,v_c_v"
    doc = json.loads(out.with_suffix(".json").read_text())
    assert sum(e["element"] == "wm" and e["kind"] == "switch" for e in doc["events"]) == 2


@pytest.mark.parametrize("bad", ["input=pulse:amplitude_a=1e-6", "nope=dc:value=1e-6", "input=square:x=1"])
def test_bad_input_spec_is_reported(tmp_path, capsys, bad):
    assert main(["chip", "simulate", "default-neuron", "--stop-s", "1e-9", "--input", bad,
                 "--out", str(tmp_path / "r.h5")]) == 2
    assert "--input" in capsys.readouterr().err


def test_check_prints_derived_constants(capsys):
    assert main(["chip", "check", "relaxation-oscillator"]) == 0
    text = capsys.readouterr().out
    assert "I_sw(2 K) 20 µA" in text and "psi 37.647" in text and "R_n 532.61 kΩ" in text


def test_check_reports_broken_file(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("format: nwlab-chip/1\nname: x\n")
    assert main(["chip", "check", str(path)]) == 2
    assert "bad.yaml" in capsys.readouterr().err
