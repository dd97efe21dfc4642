"""A run's tables exported to a QCoDeS database and read back by QCoDeS itself: one dataset per
table, the same values and units, the table's axis as the setpoint, where it came from in the
metadata; and `nwlab archive export-qcodes`."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import numpy as np
import pytest
import qcodes
from qcodes.dataset import load_by_guid, load_by_run_spec
from qcodes.dataset.sqlite.database import connect

from lab.app import api
from lab.app.cli import main
from lab.app.qcodes_export import QcodesExportError, export_run_tables, qcodes_unit
from lab.app.report.runs import load_run

ROOT = Path(__file__).resolve().parents[2]
EMULATED_STATION = ROOT / "stations" / "emulated.yaml"


@pytest.fixture(scope="module")
def iv_run(tmp_path_factory) -> Path:
    """A reduced iv_sweep on a private copy of the emulated station: two tables (iv_curve,
    switching_events), integer and float columns, units A, V and 1."""
    directory = tmp_path_factory.mktemp("qcodes")
    station = directory / "emulated.yaml"
    text = EMULATED_STATION.read_text().replace(
        "chip: chips/default-neuron.yaml", f"chip: {EMULATED_STATION.parent / 'chips' / 'default-neuron.yaml'}")
    station.write_text(text.replace("visalib: emulated.yaml@nwlab",
                                    f"visalib: {station}#private-{uuid.uuid4().hex[:8]}@nwlab"))
    outcome = api.run_procedure("iv_sweep", station, directory / "runs", switching_events=40, pilot_points=20)
    assert outcome.exit_status == "completed", outcome.message
    return outcome.archive_path


def assert_same_table(dataset, run, table: str) -> None:
    columns, units = run.tables[table], run.table_units[table]
    data = dataset.get_parameter_data()
    specs = {p.name: p for p in dataset.get_parameters()}
    assert set(specs) == set(columns)
    axis = next(name for name, spec in specs.items() if not spec.depends_on)
    for name, values in columns.items():
        assert specs[name].unit == qcodes_unit(units[name])
        if name != axis:
            assert specs[name].depends_on == axis
            got = data[name]
            # QCoDeS's SQLite round trip keeps a double to a few units in the last place
            np.testing.assert_allclose(np.ravel(got[name]), values, rtol=1e-12, atol=0)
            np.testing.assert_allclose(np.ravel(got[axis]), columns[axis], rtol=1e-12, atol=0)


def test_each_table_is_a_dataset_qcodes_reads_back_with_values_and_units(iv_run, tmp_path):
    db = tmp_path / "experiments.db"
    exported = export_run_tables(iv_run, db)
    run = load_run(iv_run)
    assert [e.table for e in exported] == ["iv_curve", "switching_events"] == sorted(run.tables)
    conn = connect(str(db))
    try:
        for table in exported:
            by_guid = load_by_guid(table.guid, conn=conn)
            by_spec = load_by_run_spec(captured_run_id=table.captured_run_id, conn=conn)
            assert by_guid.guid == by_spec.guid
            assert by_guid.name == table.table and by_guid.exp_name == "iv_sweep"
            assert by_guid.sample_name == "default-neuron"
            assert table.rows == len(next(iter(run.tables[table.table].values())))
            assert_same_table(by_guid, run, table.table)
            meta = by_guid.metadata
            assert (meta["nwlab_run_id"], meta["nwlab_table"], meta["nwlab_status"]) == (run.run_id, table.table,
                                                                                          "completed")
            results = json.loads(meta["nwlab_results"])
            mean = run.result("switching_current_mean_a").uncertainty
            assert results["switching_current_mean_a"] == {
                "value": run.scalar("switching_current_mean_a"), "units": "A", "uncertainty": float(mean.standard),
                "low": float(mean.low), "high": float(mean.high), "level": mean.level, "method": mean.method,
                "spread": run.scalar("switching_current_std_a")}
            assert results["switching_events"]["uncertainty"] is None      # a count: exact
            assert json.loads(meta["nwlab_parameters"])["switching_events"] == [40, "1"]
        iv = load_by_guid(exported[0].guid, conn=conn)
        assert {p.name: p.unit for p in iv.get_parameters()}["voltage_v"] == "V"
        assert [p.name for p in iv.get_parameters() if not p.depends_on] == ["bias_a"]   # the table's axis
    finally:
        conn.close()


def test_export_leaves_qcodes_configured_database_alone(iv_run, tmp_path):
    before = qcodes.config.core.db_location
    export_run_tables(iv_run, tmp_path / "other.db", tables=["switching_events"])
    assert qcodes.config.core.db_location == before


def test_a_second_export_adds_datasets_to_the_same_experiment(iv_run, tmp_path):
    db = tmp_path / "experiments.db"
    first = export_run_tables(iv_run, db, tables=["switching_events"])
    second = export_run_tables(iv_run, db, tables=["switching_events"], sample="chip 7")
    assert [e.captured_run_id for e in first + second] == [1, 2]
    conn = connect(str(db))
    try:
        assert load_by_guid(second[0].guid, conn=conn).sample_name == "chip 7"
    finally:
        conn.close()


def test_a_table_the_run_lacks_is_refused_by_name(iv_run, tmp_path):
    with pytest.raises(QcodesExportError, match=r"no table 'spike_energies'; the run has: iv_curve, switching_events"):
        export_run_tables(iv_run, tmp_path / "x.db", tables=["spike_energies"])
    assert not (tmp_path / "x.db").exists()


def test_nwlab_archive_export_qcodes(iv_run, tmp_path, capsys):
    db = tmp_path / "cli.db"
    assert main(["archive", "export-qcodes", str(iv_run), "--db", str(db), "--table", "iv_curve"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    rows = len(load_run(iv_run).tables["iv_curve"]["bias_a"])
    assert len(out) == 1 and out[0].startswith(f"iv_curve: {rows} rows -> {db} run 1 (guid ")
    guid = re.search(r"guid ([0-9a-f-]+)", out[0]).group(1)
    conn = connect(str(db))
    try:
        assert_same_table(load_by_guid(guid, conn=conn), load_run(iv_run), "iv_curve")
    finally:
        conn.close()
    assert main(["archive", "export-qcodes", str(iv_run), "--db", str(db), "--table", "nope"]) == 2
    assert capsys.readouterr().err.startswith("nwlab archive: ")
