"""The report of a chip with a synapse, from real archives: synaptic_transfer and synaptic_energy
run on the emulated synapse station (real drivers, the in-process emulator, the real Runner and
ArchiveWriter), efficiency handed the measured synaptic energy as a campaign hands it on; the
report written from that directory as a campaign writes it."""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import uuid
from pathlib import Path

import numpy as np
import pytest
import yaml

from contracts import steps
from contracts.files.station import read_station
from contracts.procedure import PlanContext
from lab.app.report.document import Table
from lab.app.report.markdown import write_report
from lab.app.report.runs import Quantity, load_runs
from lab.app.report.summary import summary_blocks
from lab.app.report.values import numbers
from lab.execution.dry_run import dry_run
from procedures.catalog import hand_off
from procedures.cooldown import Cooldown
from procedures.efficiency import Efficiency
from procedures.synaptic_energy import SynapticEnergy
from procedures.synaptic_transfer import SynapticTransfer
from tests.lab.test_report import PNG_SIGNATURE, padded, summary_rows

ROOT = Path(__file__).resolve().parents[2]
SYNAPSE_STATION = ROOT / "stations" / "emulated-synapse.yaml"
#: The pre-neuron's threshold at 2 ns on this chip (chip notes), given so that no search runs.
PRE_THRESHOLD_A = 24.4e-6
#: The energy per spike efficiency is handed in place of an energy_per_spike run, with its interval.
SPIKE_J, SPIKE_LOW_J, SPIKE_HIGH_J = 16e-18, 15e-18, 17e-18


def synapse_station(directory: Path):
    """A private copy of the synapse station (its own emulated bench) and its library path."""
    tree = yaml.safe_load(SYNAPSE_STATION.read_text())
    tree["chip"] = str((SYNAPSE_STATION.parent / tree["chip"]).resolve())
    path = directory / "station.yaml"
    library = f"{path}#{uuid.uuid4().hex}"
    for instrument in tree["instruments"].values():
        instrument["visalib"] = f"{library}@nwlab"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return read_station(path), library


@pytest.fixture(scope="module")
def synapse_dir(tmp_path_factory) -> Path:
    from lab.execution.instruments import open_instruments
    from lab.execution.runner import Runner
    from sim_backend import emulator

    logging.getLogger("qcodes").setLevel(logging.ERROR)
    directory = tmp_path_factory.mktemp("synapse-campaign")
    station, library = synapse_station(tmp_path_factory.mktemp("synapse-station"))
    design = yaml.safe_load(station.chip_path.read_text())
    instruments = open_instruments(station, name_prefix=f"rep{uuid.uuid4().hex[:8]}_")
    emulator.open_bench(library)
    results = {}
    try:
        for procedure in (
                Cooldown(setpoint_k=2.0, log_duration_s=60.0, hold_s=20.0, timeout_s=1800.0),
                SynapticTransfer(threshold_a=PRE_THRESHOLD_A, captures=3, reference_captures=2, weight_points=2),
                SynapticEnergy(threshold_a=PRE_THRESHOLD_A, captures=3, reference_captures=2, repeats=2)):
            outcome = Runner(station, instruments.roles, archive_dir=directory, snapshot=dict, chip_design=design,
                             show_progress=False).run(procedure)
            assert outcome.exit_status == "completed", outcome.message
            results[procedure.name] = outcome.results
        # As the campaign builds it: the synaptic energy handed on, the energy per spike standing in.
        efficiency = Efficiency(**hand_off(Efficiency, results, {
            "energy_per_spike_j": SPIKE_J, "energy_per_spike_low_j": SPIKE_LOW_J,
            "energy_per_spike_high_j": SPIKE_HIGH_J}))
        assert efficiency.parameters.synaptic_energy_j > 0
        outcome = Runner(station, instruments.roles, archive_dir=directory, snapshot=dict, chip_design=design,
                         show_progress=False).run(efficiency)
        assert outcome.exit_status == "completed", outcome.message
    finally:
        instruments.close()
        emulator.close_bench(library)
    write_report(directory)
    return directory


def runs_by_procedure(directory: Path) -> dict:
    return {run.procedure: run for run in load_runs(directory)}


def test_summary_shows_both_energies_and_their_measured_ratio(synapse_dir):
    text = (synapse_dir / "report.md").read_text()
    rows = summary_rows(text)
    labels = list(rows)
    runs = runs_by_procedure(synapse_dir)
    energy = runs["synaptic_energy"].results["synaptic_energy_j"]
    u = energy.uncertainty
    row = rows["Energy per synaptic event"]
    assert labels.index("Energy per spike") + 1 == labels.index("Energy per synaptic event")
    assert row[1].endswith(" aJ") and float(row[1].split()[0]) == pytest.approx(energy.scalar() * 1e18, abs=0.06)
    low, high = (float(v) for v in re.match(r"\[(\S+), (\S+)\] aJ \(95 %\)", row[2]).groups())
    assert (low, high) == pytest.approx((float(u.low) * 1e18, float(u.high) * 1e18), abs=0.06)
    assert "synaptic_energy `synaptic_energy_j`" in row[7]
    assert ("repeats disagree" in row[6]) == (runs["synaptic_energy"].scalar("repeats_disagree") == 1)
    # The ratio, with the interval its two measured energies' intervals give (at the product of their levels).
    ratio = rows["Synaptic / spike energy (measured)"]
    assert float(ratio[1]) == pytest.approx(energy.scalar() / SPIKE_J, rel=0.01)
    low, high = (float(v) for v in re.match(r"\[(\S+), (\S+)\] \(90\.25 %\)", ratio[2]).groups())
    assert low == pytest.approx(float(u.low) / SPIKE_HIGH_J, rel=0.02)
    assert high == pytest.approx(float(u.high) / SPIKE_LOW_J, rel=0.02)
    assert "E_spike 16 aJ" in ratio[6]
    # The energy per spike was handed in, not measured here: said so, never left out.
    assert rows["Energy per spike"][1] == "**not measured**"
    onset = rows["Synaptic weight onset"]
    onset_a = runs["synaptic_transfer"].scalar("weight_onset_a")
    onset_u = runs["synaptic_transfer"].results["weight_onset_a"].uncertainty
    shown = numbers(onset_a, float(onset_u.low), float(onset_u.high), float(onset_u.standard), 1e6)
    assert onset[1] == (f"{shown[0]} µA" if math.isfinite(onset_a) else "n/a")
    assert onset[2] == f"{shown[1]} µA (95 %)"          # the interval the run archived
    assert "synaptic_transfer `weight_onset_a`" in onset[7] and "weights from 0 A to" in onset[6]


def test_efficiency_rows_are_the_measured_figures_and_nothing_assumes(synapse_dir):
    text = (synapse_dir / "report.md").read_text()
    rows = summary_rows(text)
    efficiency = runs_by_procedure(synapse_dir)["efficiency"]
    for where in ("on_chip", "wall_plug"):
        row = rows[f"Efficiency `sops_per_w_{where}`"]
        assert row[2].endswith("(90.25 %)") and row[1].endswith("1/J")
        assert "per operation E_syn + E_spike / fan-out (1)" in row[6]
        assert efficiency.results[f"sops_per_w_{where}"].uncertainty.level == pytest.approx(0.9025)
    assert "assum" not in text.lower()
    assert "assum" not in (synapse_dir / "report.html").read_text().lower()
    section = text.split("## efficiency", 1)[1]
    assert "per synaptic operation synaptic event + spike / fan-out (1) (solid;" in section


def test_synaptic_figures_are_drawn(synapse_dir):
    import matplotlib.image

    text = (synapse_dir / "report.md").read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)
    names = [Path(p).name for p in linked]
    assert names == ["cooldown_temperature.png", "synaptic_transfer.png", "synaptic_energy.png", "efficiency.png"]
    for relative in linked:
        path = synapse_dir / relative
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        pixels = matplotlib.image.imread(path)
        assert pixels.shape[0] > 300 and pixels.shape[1] > 500 and pixels[..., :3].std() > 0.05
    transfer = text.split("## synaptic_transfer", 1)[1].split("\n## ", 1)[0]
    assert "### Synaptic transfer" in transfer and "Wilson intervals" in transfer
    energy = text.split("## synaptic_energy", 1)[1].split("\n## ", 1)[0]
    assert "### Energy per synaptic event" in energy


def test_results_tables_list_the_synaptic_results_with_their_intervals(synapse_dir):
    lines = (synapse_dir / "report.md").read_text().splitlines()
    runs = runs_by_procedure(synapse_dir)

    def row(procedure: str, name: str) -> list[str]:
        section = lines[lines.index(next(line for line in lines if line.startswith(f"## {procedure} "))):]
        return [c.strip() for c in next(line for line in section if line.startswith(f"| `{name}` |")).split(" | ")]

    probability = runs["synaptic_transfer"].results["transfer_probability"]
    weights = np.size(probability.value)
    cells = row("synaptic_transfer", "transfer_probability")
    assert cells[2].endswith("(95 %)") and cells[2].count("[") == weights       # one interval per weight
    delay = row("synaptic_transfer", "transfer_delay_s")
    # Each weight keeps its place: one entry per weight, "—" where nothing was transmitted.
    assert delay[2] == "" or delay[2].count("; ") == weights - 1
    assert row("synaptic_energy", "synaptic_energy_j")[2].endswith("(95 %)")
    for name in ("sops_per_w_on_chip", "energy_per_synaptic_operation_j", "loihi_wall_plug_advantage"):
        assert row("efficiency", name)[2].endswith("(90.25 %)"), name
    assert row("efficiency", "synaptic_energy_j")[2].endswith("(95 %)")


def test_disagreeing_repeats_are_said_in_their_rows(synapse_dir):
    runs = runs_by_procedure(synapse_dir)

    def summary(disagree: int) -> dict[str, tuple[str, bool]]:
        energy, efficiency = runs["synaptic_energy"], runs["efficiency"]
        energy = dataclasses.replace(energy, results={**energy.results, "repeats_disagree": Quantity(disagree, "1"),
                                                      "repeats_spread": Quantity(0.12, "1")})
        efficiency = dataclasses.replace(efficiency, results={
            **efficiency.results, "synaptic_repeats_disagree": Quantity(disagree, "1")})
        shown = [runs["cooldown"], runs["synaptic_transfer"], energy, efficiency]
        table = next(b for b in summary_blocks(shown) if isinstance(b, Table))
        return {r[0]: (r[6], k in table.flagged_rows) for k, r in enumerate(table.rows)}

    disagreeing, agreeing = summary(1), summary(0)
    conditions, flagged = disagreeing["Energy per synaptic event"]
    assert "**repeats disagree: their means span 12 % of the mean (agreement is within 5 %)**" in conditions
    assert flagged
    for label in ("Synaptic / spike energy (measured)", "Efficiency `sops_per_w_on_chip`"):
        assert "synaptic_energy's repeats disagree" in disagreeing[label][0] and disagreeing[label][1]
    assert "repeats disagree" not in disagreeing["Efficiency `spikes_per_joule_on_chip`"][0]
    assert not any("disagree" in conditions for conditions, _ in agreeing.values())
    assert not agreeing["Energy per synaptic event"][1]


def test_flat_synaptic_runs_still_make_a_report(tmp_path):
    """Dry-run records of the synaptic procedures (nothing switches: NaN results, empty tables)."""
    from contracts.records import RunStart, RunStop
    from lab.archive.writer import ArchiveWriter

    station, _ = synapse_station(tmp_path)
    design = yaml.safe_load(station.chip_path.read_text())
    out = tmp_path / "runs"
    out.mkdir()
    for index, procedure in enumerate((SynapticTransfer(), SynapticEnergy())):
        report = dry_run(procedure, station, PlanContext(design, dry_run=True))
        traces, tables = procedure.declare(PlanContext(design))
        writer = ArchiveWriter(out)
        writer(RunStart(run_id=f"2026010{index}T000000-{procedure.name}", procedure=procedure.name,
                        started_at=f"2026-01-01T00:0{index}:00+00:00", parameters=procedure.parameter_records(),
                        station_text=station.text, chip_text=station.chip_path.read_text(), snapshot={},
                        software_version="nwlab 0.1.0 (test)", emulator_seed=station.emulator_seed,
                        metadata={"station": str(station.path)}, traces=traces, tables=tables))
        for step, _ in report.steps:
            if isinstance(step, steps.Archive):
                writer(padded(step.record, tables))
        writer(RunStop("completed", f"2026-01-01T00:0{index}:59+00:00"))
    text = write_report(out).read_text()
    assert text.count("**completed**") == 2
    rows = summary_rows(text)
    assert rows["Energy per synaptic event"][1] == "n/a"
    assert rows["Efficiency `sops_per_w_on_chip`"][1] == "**not measured**"
    assert sorted(p.name for p in (out / "figures").rglob("*.png")) == ["synaptic_energy.png", "synaptic_transfer.png"]
