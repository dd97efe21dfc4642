"""The campaign report from real archive files: runs written by the real ArchiveWriter from
records shaped like each procedure's (declared tables, traces and result names), read back
and turned into report.md and PNG figures."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from contracts import steps
from lab.archive.writer import ArchiveWriter
from contracts.files.station import read_station
from lab.execution.dry_run import dry_run
from contracts.procedure import PlanContext
from contracts.records import Axis, Result, RunStart, RunStop, TableRows, TraceBlock, Uncertainty
from lab.app.report.markdown import CampaignNotes, write_report
from lab.app.report.runs import load_runs
from lab.app.report.values import companions
from contracts.units import format_si
from procedures.analysis.statistics import falling_crossing, mean_uncertainty, summarize, wilson_interval
from procedures.analysis.strength_duration import fit_lapicque, fit_weiss, weiss_threshold_a
from procedures.catalog import campaign_for
from procedures.cooldown import Cooldown
from procedures.efficiency import Efficiency
from procedures.energy_per_spike import EnergyPerSpike
from procedures.firing_rate import FiringRate
from procedures.iv_sweep import IvSweep
from procedures.refractory import Refractory
from procedures.strength_duration import StrengthDuration

ROOT = Path(__file__).resolve().parents[2]
STATION = read_station(ROOT / "stations" / "emulated.yaml")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def snapshot(stage_temperature_k: float | None) -> dict:
    """An instrument snapshot as qcodes writes it, with the temperature controller ("cryostat" in
    the station file) reading its control sensor."""
    if stage_temperature_k is None:
        return {"station": "test"}
    return {"instruments": {"cryostat": {
        "parameters": {"control_sensor": {"value": "A"}},
        "submodules": {"A": {"parameters": {"temperature": {"value": stage_temperature_k, "unit": "K"}}}}}}}


def archive(directory: Path, procedure, records, status="completed", message="", index=0,
            stage_temperature_k: float | None = None) -> None:
    """One run through the real writer, declared exactly as the Runner declares it."""
    traces, tables = procedure.declare()
    writer = ArchiveWriter(directory)
    writer(RunStart(
        run_id=f"2026010{index}T000000-{procedure.name}", procedure=procedure.name,
        started_at=f"2026-01-01T00:0{index}:00+00:00", parameters=procedure.parameter_records(),
        station_text=STATION.text, chip_text=STATION.chip_path.read_text(),
        snapshot=snapshot(stage_temperature_k),
        software_version="nwlab 0.1.0 (test)", emulator_seed=STATION.emulator_seed,
        metadata={"station": str(STATION.path)}, traces=traces, tables=tables))
    for record in records:
        writer(padded(record, tables))
    writer(RunStop(status, f"2026-01-01T00:0{index}:59+00:00", message=message))


def padded(record, tables):
    """Rows with any column the procedure declares and these records leave out (NaN or 0): the
    report must read what each procedure archives, also as procedures gain columns."""
    if not isinstance(record, TableRows) or record.table not in (tables or {}):
        return record
    n = len(next(iter(record.columns.values()))[0])
    columns = dict(record.columns)
    for name, spec in tables[record.table].columns.items():
        if name not in columns:
            columns[name] = (np.full(n, np.nan) if spec.dtype.startswith("f") else np.zeros(n, spec.dtype), spec.units)
    return TableRows(record.table, columns)


def rows(table: str, **columns) -> TableRows:
    return TableRows(table, {name: (np.asarray(values), units) for name, (values, units) in columns.items()})


def cooldown_records(rng):
    time_s = np.arange(21) * 30.0
    temperature_k = 4.2 + (3.0 - 4.2) * np.exp(-time_s / 60.0) + rng.normal(0, 2e-3, time_s.size)
    return [rows("temperature_log", time_s=(time_s, "s"), temperature_k=(temperature_k, "K")),
            Result("stable_temperature_k", 4.2003, "K"),
            Result("temperature_log_k", temperature_k, "K", Axis("log_time_s", time_s, "s"))]


def iv_records(rng):
    records = []
    up = np.linspace(0, 40e-6, 40)
    for sweep in range(2):
        down = up[::-1]
        v_up = np.where(up > 31e-6, up * 900.0, 0.0)
        v_down = np.where(down > 9e-6, down * 900.0, 0.0)
        records.append(rows("iv_curve", sweep=(np.full(80, sweep), "1"),
                            direction=(np.r_[np.ones(40, int), -np.ones(40, int)], "1"),
                            bias_a=(np.r_[up, down], "A"), voltage_v=(np.r_[v_up, v_down], "V")))
    events = rng.normal(31e-6, 0.08e-6, 300)
    records.append(rows("switching_events", event=(np.arange(300), "1"), switching_current_a=(events, "A"),
                        step_a=(np.full(300, 0.03e-6), "A"), readings=(np.full(300, 6), "1")))
    counts, edges = np.histogram(events, 40)
    records += [Result("switching_current_mean_a", events.mean(), "A",
                       uncertainty=mean_uncertainty(summarize(events))),
                Result("switching_current_std_a", events.std(ddof=1), "A"),
                Result("switching_current_stderr_a", events.std(ddof=1) / np.sqrt(300), "A"),
                Result("switching_events", 300, "1"), Result("fast_sweeps", 305, "1"),
                Result("retrapping_current_a", 9.2e-6, "A"), Result("resistive_branch_ohm", 900.0, "ohm"),
                Result("switching_current_histogram", counts, "1",
                       Axis("switching_current_bin_a", 0.5 * (edges[1:] + edges[:-1]), "A"))]
    return records


def strength_duration_records(rng):
    widths = np.array(StrengthDuration.Parameters().widths_s)
    thresholds = weiss_threshold_a(widths, 22e-6, 12e-9) * (1 + rng.normal(0, 0.01, widths.size))
    weiss, lapicque = fit_weiss(widths, thresholds), fit_lapicque(widths, thresholds)
    records = [rows("probability", width_s=(np.repeat(widths, 2), "s"), amplitude_a=(np.repeat(thresholds, 2), "A"),
                    spikes=(np.tile([3, 5], widths.size), "1"), trials=(np.full(2 * widths.size, 8), "1"),
                    probability=(np.tile([3 / 8, 5 / 8], widths.size), "1"),
                    attempt=(np.zeros(2 * widths.size, np.int64), "1"))]
    half_a = 0.4e-6 + 0.02 * thresholds              # an interval per width, as a psychometric fit gives
    records.append(Result("threshold_a", thresholds, "A", Axis("width_s", widths, "s"),
                          Uncertainty("probit fit, likelihood-ratio interval", 0.95, thresholds - half_a,
                                      thresholds + half_a)))
    records.append(Result("rheobase_a", weiss.rheobase_a, "A", uncertainty=Uncertainty(
        "Weiss fit, bootstrap percentile interval, 200 resamples", 0.95, weiss.rheobase_a - 0.9e-6,
        weiss.rheobase_a + 1.1e-6, 0.5e-6)))
    for name, value, units in (("chronaxie_s", weiss.chronaxie_s, "s"),
                               ("weiss_rms_residual_a", weiss.rms_residual_a, "A"),
                               ("lapicque_rheobase_a", lapicque.rheobase_a, "A"),
                               ("lapicque_time_constant_s", lapicque.time_constant_s, "s"),
                               ("threshold_resolution_a", 0.8e-6, "A")):
        records.append(Result(name, value, units))
    return records


def refractory_records(rng):
    spacings = np.geomspace(80e-9, 33e-9, 8)
    trials = 10
    seconds = np.clip(np.round(trials / (1 + np.exp(-(spacings - 45e-9) / 3e-9))), 0, trials).astype(int)
    probability = seconds / trials
    low, high = np.array([wilson_interval(int(k), trials) for k in seconds]).T
    axis = Axis("spacing_s", spacings, "s")
    return [rows("pairs", spacing_s=(spacings, "s"), first_spikes=(np.full(8, trials), "1"),
                 second_spikes=(seconds, "1"), trials=(np.full(8, trials), "1"), probability=(probability, "1")),
            Result("second_spike_probability", probability, "1", axis),
            Result("second_spike_probability_low", low, "1", axis),
            Result("second_spike_probability_high", high, "1", axis),
            Result("refractory_period_s", falling_crossing(spacings, probability, 0.5), "s"),
            Result("refractory_period_below_s", np.nan, "s"), Result("pulse_amplitude_a", 31e-6, "A")]


def firing_rate_records(rng):
    currents = np.linspace(5e-6, 40e-6, 8)
    rates = np.where(currents > 18e-6, 60e6 * np.sqrt(np.clip(currents - 18e-6, 0, None) / 1e-6), 0.0)
    axis = Axis("input_current_a", currents, "A")
    return [rows("records", input_current_a=(currents, "A"), spikes=(np.round(rates * 99e-9), "1"),
                 duration_s=(np.full(8, 99e-9), "s"), rate_hz=(rates, "Hz")),
            Result("firing_rate_hz", rates, "Hz", axis), Result("firing_rate_std_hz", 0.05 * rates, "Hz", axis),
            Result("onset_current_a", float(currents[rates > 0][0]), "A")]


def energy_records(rng, procedure: EnergyPerSpike):
    spec, _ = procedure.declare()
    time_s = spec.time_s
    pulse = np.exp(-0.5 * ((time_s - 16e-9) / 8e-9) ** 2)
    linear_v_per_a = 5.0                                     # V at node m per A of input
    spike = 0.2e-3 * np.exp(-0.5 * ((time_s - 20e-9) / 0.4e-9) ** 2)

    def block(kind, amplitude_a, n, spiking, attempt=1):
        m = np.stack([linear_v_per_a * amplitude_a * pulse + (spike if spiking else 0)
                      + rng.normal(0, 5e-6, time_s.size) for _ in range(n)])
        voltage = np.stack([m, 0.3 * m, np.tile(amplitude_a * pulse, (n, 1))], axis=1)
        energies = rng.normal(14e-18, 1.5e-18, n) if spiking else np.full(n, np.nan)
        return TraceBlock(voltage, time_s, spec.channel_names, channel_units=spec.channel_units, columns={
            "kind": (np.full(n, kind, np.int8), "1"), "amplitude_a": (np.full(n, amplitude_a), "A"),
            "bias_a": (np.full(n, 24e-6), "A"), "spikes": (np.full(n, int(spiking)), "1"),
            "input_energy_j": (np.full(n, 3e-17), "J"), "bias_energy_j": (np.full(n, 1e-17), "J"),
            "spike_energy_j": (energies, "J"), "attempt": (np.full(n, attempt), "1")}), energies

    void, _ = block(0, 11e-6, 5, False, attempt=0)       # taken before a bias cycle: not in the figure
    reference, _ = block(0, 11e-6, 20, False)
    spiking, energies = block(1, 24e-6, 40, True)
    return [void, reference, spiking,
            rows("spike_energies", capture=(np.arange(40), "1"), spikes=(np.ones(40, int), "1"),
                 spike_energy_j=(energies, "J")),
            Result("energy_per_spike_j", energies.mean(), "J"), Result("energy_per_spike_std_j", energies.std(), "J"),
            Result("energy_per_spike_stderr_j", energies.std() / np.sqrt(40), "J"),
            Result("spikes_averaged", 40, "1"), Result("baseline_j", 2.1e-17, "J"), Result("amplitude_a", 24e-6, "A")]


def efficiency_records(energy_j: float):
    """The real plan: it touches no instrument, so its records are the real ones."""
    plan = Efficiency(energy_per_spike_j=energy_j, energy_per_spike_std_j=1.5e-18).plan(PlanContext())
    return [s.record for s in plan if isinstance(s, steps.Archive)]


IV_STAGE_K = 3.17


@pytest.fixture(scope="module")
def campaign_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("campaign")
    rng = np.random.default_rng(5)
    energy = EnergyPerSpike()
    energy_records_ = energy_records(rng, energy)
    runs = [(Cooldown(), cooldown_records(rng), "completed", ""),
            (IvSweep(), iv_records(rng), "completed", ""),
            (StrengthDuration(), strength_duration_records(rng), "completed", ""),
            (Refractory(threshold_a=25e-6), refractory_records(rng), "completed", ""),
            (FiringRate(), firing_rate_records(rng)[:1], "failed", "StepError: scope never triggered"),
            (energy, energy_records_, "completed", ""),
            (Efficiency(), efficiency_records(next(r.value for r in energy_records_ if getattr(r, "name", "") == "energy_per_spike_j")), "completed", "")]
    for index, (procedure, records, status, message) in enumerate(runs):
        # The stage as each run's snapshot found it: the cooldown starts cold, the I–V runs at 3.17 K.
        archive(directory, procedure, records, status, message, index,
                {0: 3.2, 1: IV_STAGE_K}.get(index, 4.2) if procedure.name != "energy_per_spike" else None)
    notes = CampaignNotes(station_path="stations/emulated.yaml",
                          command="nwlab campaign --station stations/emulated.yaml --out runs/x",
                          not_run=[("extra", "skipped: depends on firing_rate, which failed")])
    write_report(directory, notes)
    return directory


def test_report_lists_every_run_status_and_archive(campaign_dir):
    text = (campaign_dir / "report.md").read_text()
    for run in load_runs(campaign_dir):
        line = next(line for line in text.splitlines() if line.startswith(f"| {run.procedure} |"))
        assert f"**{run.status}**" in line and run.path.name in line
    assert "| firing_rate | **failed** |" in text and "scope never triggered" in text
    assert "| extra | **not run** |" in text and "depends on firing_rate" in text
    assert "6 of 7 completed" in text
    assert "emulator seed 20261124" in text and "default-neuron" in text
    assert "nwlab campaign --station stations/emulated.yaml --out runs/x" in text


def test_report_tables_every_numeric_result_with_its_unit(campaign_dir):
    text = (campaign_dir / "report.md").read_text()
    for run in load_runs(campaign_dir):
        for name, quantity in run.results.items():
            if quantity.is_text:
                assert f"`{name}`: {quantity.value}" in text
                continue
            if name in companions(run.results):
                continue            # a spread or standard error, shown in its mean's row
            row = next((line for line in text.splitlines() if line.startswith(f"| `{name}` |")), None)
            assert row is not None, name
            assert row.rstrip().endswith(f"| {quantity.units} |"), row


def test_report_values_are_the_archived_ones(campaign_dir):
    text = (campaign_dir / "report.md").read_text()
    energy = next(r for r in load_runs(campaign_dir) if r.procedure == "energy_per_spike")
    mean_aj = energy.scalar("energy_per_spike_j") * 1e18
    std_aj = energy.scalar("energy_per_spike_std_j") * 1e18
    stderr_aj = energy.scalar("energy_per_spike_stderr_j") * 1e18
    places = 1 - math.floor(math.log10(stderr_aj))        # two significant digits of the standard error
    row = next(line for line in text.splitlines() if line.startswith("| `energy_per_spike_j` |"))
    assert row.startswith(f"| `energy_per_spike_j` | {mean_aj:.{places}f} |  | {stderr_aj:.{places}f} | "
                          f"{std_aj:.2g} | aJ | ["), row
    assert row.endswith("| J |")


def test_every_figure_is_a_real_png(campaign_dir):
    import matplotlib.image

    text = (campaign_dir / "report.md").read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)
    assert len(linked) == 8       # one per figure of the seven procedures (two for energy)
    for relative in linked:
        path = campaign_dir / relative
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        assert path.stat().st_size > 15_000, path
        pixels = matplotlib.image.imread(path)
        assert pixels.shape[0] > 300 and pixels.shape[1] > 500
        assert pixels[..., :3].std() > 0.05            # not a blank canvas


def test_the_figures_read_the_traces_the_python_api_reads(campaign_dir):
    """The report's figures read traces with h5py (RunData.trace_arrays: no xarray import in a
    report writer), the Python API as an xarray Dataset: the same samples, columns and times."""
    energy = next(r for r in load_runs(campaign_dir) if r.procedure == "energy_per_spike")
    arrays, dataset = energy.trace_arrays(), energy.traces
    assert arrays.count == dataset.sizes["trace"] == 65 and list(arrays.indices) == list(range(65))
    np.testing.assert_array_equal(arrays.time_s, dataset["time"].values)
    for column in ("kind", "amplitude_a", "spikes", "attempt", "spike_energy_j"):
        np.testing.assert_array_equal(arrays.columns[column], dataset[column].values, err_msg=column)
    voltage = dataset["voltage"]
    names = [str(n) for n in dataset[f"{voltage.dims[1]}_name"].values]
    assert names == ["m", "c"] and set(arrays.samples) == {"m", "c", "input_a"}
    for k, name in enumerate(names):
        np.testing.assert_array_equal(arrays.samples[name], voltage.values[:, k, :], err_msg=name)
    assert arrays.channel_units["m"] == "V" and arrays.channel_units["input_a"] == "A"
    assert next(r for r in load_runs(campaign_dir) if r.procedure == "cooldown").trace_arrays() is None


def test_a_report_writer_draws_every_figure_without_importing_xarray(campaign_dir, tmp_path):
    """What each of a campaign's report writers does, in a fresh process: every figure drawn
    (the trace figure too), and xarray (with pandas and dask: about a second) never imported."""
    import shutil
    import subprocess
    import sys

    directory = tmp_path / "runs"
    shutil.copytree(campaign_dir, directory, ignore=shutil.ignore_patterns("figures", "report.*"))
    script = ("import sys; from lab.app.report.markdown import write_report; write_report(sys.argv[1]); "
              "print(sorted(m for m in ('xarray', 'dask', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script, str(directory)], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert len(list((directory / "figures").rglob("*.png"))) == 8


def test_reproduce_line_carries_the_hand_off_parameters(campaign_dir):
    text = (campaign_dir / "report.md").read_text()
    assert "nwlab run refractory --station" in text and "--set threshold_a=2.5e-05" in text


def test_report_survives_runs_of_flat_data(tmp_path):
    """Dry-run records (nothing switches, no spike): NaN results and empty tables, still a report."""
    design = yaml.safe_load(STATION.chip_path.read_text())
    campaign = campaign_for(design)           # this chip has no synapse: no synaptic procedure
    for index, procedure_class in enumerate(campaign):
        procedure = procedure_class()
        report = dry_run(procedure, STATION, PlanContext(design, dry_run=True))
        archive(tmp_path, procedure, [s.record for s, _ in report.steps if isinstance(s, steps.Archive)],
                index=index)
    text = write_report(tmp_path).read_text()
    assert text.count("**completed**") == len(campaign)
    assert "| `rheobase_a` | n/a |" in text
    assert len(list((tmp_path / "figures").rglob("*.png"))) == 8


# -- the summary of key figures and the HTML report ---------------------------------------------

def summary_rows(text: str) -> dict[str, list[str]]:
    """The summary table's rows by figure, cells stripped."""
    section = text.split("## Summary: key figures", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith(("| figure |", "|---")):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            rows[cells[0]] = cells
    return rows


def test_summary_comes_first_and_lists_every_key_figure(campaign_dir):
    text = (campaign_dir / "report.md").read_text()
    assert text.index("## Summary: key figures") < text.index("## Runs") < text.index("## cooldown")
    rows = summary_rows(text)
    for label in ("Switching current (bias port)", "Retrapping current (bias port)",
                  "Resistive-branch resistance (bias port)", "Rheobase", "Chronaxie", "Refractory period",
                  "f–I onset current", "f–I gain", "Energy per spike"):
        assert label in rows, label
    widths = StrengthDuration.Parameters().widths_s
    assert sum(label.startswith("Threshold at width_s") for label in rows) == len(widths)
    # firing_rate failed before its onset; no run archives a gain yet: listed, never dropped
    assert rows["f–I onset current"][1] == "**not measured**" and "not archived (run failed)" in rows["f–I onset current"][7]
    assert rows["f–I gain"][1] == "**not measured**"
    assert any(label.startswith("Efficiency `spikes_per_joule_on_chip`") for label in rows)


def test_summary_of_an_efficiency_that_assumed_the_synaptic_ratio(campaign_dir):
    """A chip without a synapse: efficiency's SOPS/W rest on the assumed ratio and say so, in the
    summary and on the figure; no synaptic row (nothing synaptic was or could be measured)."""
    text = (campaign_dir / "report.md").read_text()
    rows = summary_rows(text)
    for where in ("on_chip", "wall_plug"):
        row = rows[f"Efficiency `sops_per_w_{where}_assuming_synaptic_ratio`"]
        assert "assuming synaptic energy = 0.1 × spike energy" in row[6] and row[1].endswith("1/J")
        assert f"Efficiency `sops_per_w_{where}`" not in rows
    assert not any("ynaptic" in label and not label.startswith("Efficiency") for label in rows), list(rows)
    section = text.split("## efficiency", 1)[1]
    assert "hatched, it assumes synaptic energy = 0.1 × spike energy" in section


def test_summary_switching_current_against_the_design_at_the_run_temperature(campaign_dir):
    from contracts.files.chip import read_chip, wire_switching_current_a

    iv = next(r for r in load_runs(campaign_dir) if r.procedure == "iv_sweep")
    quantity = iv.results["switching_current_mean_a"]
    chip = read_chip(STATION.chip_path)
    design_a = sum(wire_switching_current_a(e.wire, IV_STAGE_K) for e in chip.elements if e.kind == "nanowire")
    assert design_a == pytest.approx(2 * 20e-6 * ((1 - (IV_STAGE_K / 10.5) ** 2) / (1 - (2 / 10.5) ** 2)) ** 1.5)
    row = summary_rows((campaign_dir / "report.md").read_text())["Switching current (bias port)"]
    u = quantity.uncertainty
    places = 1 - math.floor(math.log10(float(u.standard) * 1e6))
    assert row[1] == f"{quantity.scalar() * 1e6:.{places}f} µA"
    assert row[2] == f"[{float(u.low) * 1e6:.{places}f}, {float(u.high) * 1e6:.{places}f}] µA (95 %)"
    assert row[3] == f"{float(u.standard) * 1e6:.{places}f} µA"
    assert row[4].startswith(f"{design_a * 1e6:.4g} µA (I_sw,port = I_sw,wm + I_sw,wc at 3.17 K)")
    assert row[5] == f"{(quantity.scalar() - design_a) / float(u.standard):+.1f}"
    assert row[6].startswith("3.170 K (run start)")


def test_summary_rheobase_design_is_the_current_division_at_the_run_temperature(campaign_dir):
    """At 4.2 K each wire's I_sw is 16.3 µA; the 24 µA bias puts 8 µA in wm and 16 µA in wc (equal
    20 nH inductances): the input that brings a wire to I_sw is the smaller of 1.5·(I_sw − 8 µA) and
    3·(I_sw − 16 µA)."""
    isw_a = 20e-6 * ((1 - (4.2 / 10.5) ** 2) / (1 - (2 / 10.5) ** 2)) ** 1.5
    expected_a = min(n for n in (1.5 * (isw_a - 8e-6), 3 * (isw_a - 16e-6)) if n > 0)
    row = summary_rows((campaign_dir / "report.md").read_text())["Rheobase"]
    assert row[4].startswith(format_si(expected_a, "A"))
    strength = next(r for r in load_runs(campaign_dir) if r.procedure == "strength_duration")
    rheobase = strength.results["rheobase_a"]
    assert row[3] == "0.50 µA" and row[1] == f"{rheobase.scalar() * 1e6:.2f} µA"
    assert row[5] == f"{(rheobase.scalar() - expected_a) / 0.5e-6:+.1f}"
    assert row[6].startswith("4.200 K (run start)")
    energy = summary_rows((campaign_dir / "report.md").read_text())["Energy per spike"]
    assert energy[6].startswith("4.200 K (cooldown's stable temperature)")     # its snapshot has no reading
    assert energy[4].startswith("—") and energy[5] == "—"


def test_switching_current_formula_is_the_emulators():
    """One formula: the contracts' I_sw(T) is what the emulator's nanowire model computes."""
    from contracts.files.chip import read_chip, wire_switching_current_a
    from procedures.design import DesignHints
    from sim_backend.physics import nanowire

    chip = read_chip(STATION.chip_path)
    wires = [e for e in chip.elements if e.kind == "nanowire"]
    for temperature_k in (0.5, 2.0, 3.17, 4.2, 9.0, 10.5, 11.0):
        for wire in wires:
            params = nanowire.NanowireParams(**wire.wire)
            assert wire_switching_current_a(wire.wire, temperature_k) == pytest.approx(
                nanowire.switching_current_a(params, temperature_k), rel=1e-12, abs=1e-15)
    at_reference = sum(wire_switching_current_a(w.wire, chip.temperature_k) for w in wires)
    assert DesignHints.from_chip(yaml.safe_load(STATION.chip_path.read_text())).switching_current_a == \
        pytest.approx(at_reference, rel=1e-12)


def test_results_tables_show_intervals_methods_and_what_has_none(campaign_dir):
    text = (campaign_dir / "report.md").read_text()
    lines = text.splitlines()
    row = lambda name: next(line for line in lines if line.startswith(f"| `{name}` |"))
    assert "**no uncertainty archived**" in row("retrapping_current_a")
    assert "exact (count)" in row("fast_sweeps") and "exact (setting the run used)" in row("switching_events")
    assert "(95 %)" in row("threshold_a") and "[" in row("threshold_a").split(" | ")[2]
    # the method is footnoted below the table
    number = re.search(r"\| \[(\d+)\] \|", row("switching_current_mean_a")).group(1)
    assert f"[{number}] Student t interval on the mean (n = 300)" in text
    assert "given, not measured: see `human_brain_source`" in row("human_brain_sops_per_w")


def test_cooldown_section_says_what_its_figure_shows(campaign_dir):
    section = (campaign_dir / "report.md").read_text().split("## cooldown", 1)[1].split("\n## ", 1)[0]
    account = next(line for line in section.splitlines() if line.startswith("What the figure shows"))
    assert "warms from" in account and "4.2 K setpoint" in account
    assert "no overshoot beyond the reading noise" in account
    assert "later run(s) started with the stage at 3.170–4.200 K" in account and "not at this setpoint" in account


def test_html_report_is_self_contained_with_the_same_content(campaign_dir):
    import base64
    import html as html_module

    page = (campaign_dir / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not re.search(r"""(src|href)=["'](https?:|//)""", page) and "<script" not in page and "<link" not in page
    assert page.index("Summary: key figures") < page.index("<h2>Runs</h2>")
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 8
    assert all(base64.b64decode(data)[:8] == PNG_SIGNATURE for data in images)
    for run in load_runs(campaign_dir):                  # each section links its archive by relative path
        assert f'<a href="{run.path.name}"><code>{run.path.name}</code></a>' in page
        assert (campaign_dir / run.path.name).is_file()
    assert html_module.escape("no uncertainty archived") in page and 'class="flagged"' in page
    assert not list(campaign_dir.glob("report.*.tmp")) and not list(campaign_dir.glob("*.tmp"))


def test_report_files_are_replaced_whole_or_not_at_all(tmp_path):
    """A report that cannot be written leaves the old one and no temporary file behind."""
    from lab.archive.output_dir import ArchiveWriteError

    archive(tmp_path, Cooldown(), cooldown_records(np.random.default_rng(1)))
    write_report(tmp_path)
    before = (tmp_path / "report.md").read_text()
    (tmp_path / "report.html").unlink()
    (tmp_path / "report.html").mkdir()                   # the HTML cannot take its place
    with pytest.raises(ArchiveWriteError):
        write_report(tmp_path)
    assert (tmp_path / "report.md").read_text() == before
    assert not list(tmp_path.glob("report.*.tmp"))


def test_cooldown_account_names_an_overshoot():
    from lab.app.report.runs import Quantity, RunData
    from lab.app.report.summary import cooldown_account

    time_s = np.arange(21) * 30.0
    ringing_k = 4.2 - 1.0 * np.exp(-time_s / 60.0) * np.cos(time_s / 50.0) + 1e-4 * np.cos(time_s)
    run = RunData(Path("x.h5"), "x", "cooldown", "completed", "", "", "", "", "emulator", None, "",
                  parameters={"setpoint_k": Quantity(4.2, "K"), "tolerance_k": Quantity(0.01, "K")},
                  tables={"temperature_log": {"time_s": time_s, "temperature_k": ringing_k}})
    account = cooldown_account(run)
    assert "warms from 3.200 K" in account
    overshoot_mk = (ringing_k.max() - 4.2) * 1e3
    assert f"The controller overshoots: the furthest reading lies {overshoot_mk:.1f} mK past the setpoint" in account


def test_summary_lists_figures_of_runs_not_in_the_directory(campaign_dir):
    from lab.app.report.document import Table
    from lab.app.report.summary import FIGURES, Chip, summary_blocks

    iv = [r for r in load_runs(campaign_dir, data=False) if r.procedure == "iv_sweep"]
    table = next(b for b in summary_blocks(iv) if isinstance(b, Table))
    labels = {row[0]: row for row in table.rows}
    chip = Chip.from_runs(iv)
    for figure in FIGURES:
        if figure.shown is not None and not figure.shown(chip, {"iv_sweep": iv[0]}):
            assert figure.label_for(figure.names[0]) not in labels      # synaptic: this chip has no synapse
        elif figure.procedure != "iv_sweep":
            label = figure.label_for(figure.names[0])
            assert labels[label][1] == "**not measured**"
            assert labels[label][7].endswith("no run in this directory")
    assert labels["Efficiency `sops_per_w_on_chip`"][1] == "**not measured**"
    assert labels["Switching current (bias port)"][1].endswith("µA")


@pytest.mark.parametrize("value, low, high, standard, expected", [
    (1.23456, math.nan, math.nan, 0.0996, ("1.23", "", "0.10")),         # 0.0996 rounds up to 0.10
    (36.59641, 36.5915, 36.6013, 0.00248, ("36.5964", "[36.5915, 36.6013]", "0.0025")),
    (12345.6, 12000.0, 12700.0, 123.0, ("12350", "[12000, 12700]", "120")),
    (21.934, 21.03, 23.03, math.nan, ("21.9", "[21.0, 23.0]", "")),      # no standard: the half-width sets digits
    (5.0, math.nan, math.nan, math.nan, ("5", "", "")),
    (18.24, 18.24, 18.24 + 1e-15, 3e-16, ("18.24", "[18.24, 18.24]", "3e-16")),   # rounding noise sets no digits
])
def test_digits_follow_the_uncertainty(value, low, high, standard, expected):
    from lab.app.report.values import numbers

    assert numbers(value, low, high, standard, 1.0) == expected


def _assert_every_figure_drawn_and_reported(directory: Path) -> None:
    """Each run file has its figures drawn, each figure file is there and the report shows it."""
    import json

    report = (directory / "report.md").read_text()
    drawn = sorted(directory.glob("figures/*/figures.json"))
    assert len(drawn) == len(list(directory.glob("*.h5")))
    for listing in drawn:
        for figure in json.loads(listing.read_text())["figures"]:
            assert (listing.parent / figure["file"]).stat().st_size > 0 and figure["file"] in report


@pytest.mark.parametrize("stop_after_s", [0.3, 1.5, 3.0])
def test_a_report_writer_stopped_at_any_moment_leaves_nothing_half_written(campaign_dir, tmp_path, stop_after_s):
    """The campaign stops a report writer still running when it writes the last report itself
    (SIGTERM): whenever the signal lands, no temporary file is left, the lock is free and the
    next report draws every figure."""
    import json
    import shutil
    import signal
    import subprocess
    import sys
    import time
    from dataclasses import asdict

    from lab.app.report.writer_process import REPORT_WRITER
    from lab.app.report.markdown import write_report_in_turn

    directory = tmp_path / "runs"
    shutil.copytree(campaign_dir, directory, ignore=shutil.ignore_patterns("figures", "report.*"))
    writer = subprocess.Popen([sys.executable, "-c", REPORT_WRITER, str(directory)], stdin=subprocess.PIPE, text=True)
    writer.stdin.write(json.dumps(asdict(CampaignNotes())) + "\n")
    writer.stdin.close()
    time.sleep(stop_after_s)
    writer.send_signal(signal.SIGTERM)
    assert writer.wait(timeout=60) in (0, 1)              # a clean exit, not a death by the signal
    assert not [p.name for p in directory.rglob("*") if ".tmp" in p.name]
    write_report_in_turn(directory, CampaignNotes())
    _assert_every_figure_drawn_and_reported(directory)


def test_the_campaign_s_report_writer_ends_with_its_input_having_answered_the_last_request(campaign_dir, tmp_path):
    """One writer serves a whole campaign, a line of notes per request: at the end of its input
    the report is the last request's, and it exits 0 with the lock free."""
    import json
    import shutil
    import subprocess
    import sys
    from dataclasses import asdict

    from lab.app.report.writer_process import REPORT_WRITER
    from lab.app.report.markdown import LOCK_NAME, write_report_in_turn

    directory = tmp_path / "runs"
    shutil.copytree(campaign_dir, directory, ignore=shutil.ignore_patterns("figures", "report.*"))
    requests = "".join(json.dumps(asdict(CampaignNotes(station_path=f"request-{i}.yaml"))) + "\n" for i in range(3))
    done = subprocess.run([sys.executable, "-c", REPORT_WRITER, str(directory)], input=requests, text=True,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = (directory / "report.md").read_text()
    assert "request-2.yaml" in report
    assert (directory / LOCK_NAME).exists()
    write_report_in_turn(directory, CampaignNotes())       # the lock is free: this does not wait


def _writer_children(writer) -> list:
    """The writer's figure children: forked, so of its own command line (its imports may run a
    program of their own, such as ldconfig, for a moment)."""
    import psutil

    try:
        process = psutil.Process(writer.pid)
        command = process.cmdline()
        return [child for child in process.children() if child.cmdline() == command]
    except psutil.NoSuchProcess:
        return []


def _drawing_child(writer, directory: Path) -> int:
    """The pid of a figure child of the writer once it draws: after the writer took the report's
    lock (its imports, which may start a program of their own, are over) and once the child has
    closed its copy of that lock, its first act."""
    import time

    from lab.app.report.markdown import LOCK_NAME

    began = time.monotonic()
    while not (directory / LOCK_NAME).exists() or not (children := _writer_children(writer)):
        assert writer.poll() is None and time.monotonic() - began < 60
        time.sleep(0.001)
    lock_path = str(directory / LOCK_NAME)
    while any(f.path == lock_path for f in children[0].open_files()):
        assert time.monotonic() - began < 60
        time.sleep(0.001)
    return children[0].pid


def test_the_report_writer_draws_the_runs_that_ended_beside_each_other(campaign_dir, tmp_path):
    """Runs that end while the writer draws another's figures are drawn at once, each in a child
    of the writer (at a campaign's end the last runs end a fraction of a second apart): two
    children draw at the same moment, and the report lists every figure they drew."""
    import json
    import shutil
    import subprocess
    import sys
    import time
    from dataclasses import asdict

    from lab.app.report.writer_process import REPORT_WRITER

    directory = tmp_path / "runs"
    shutil.copytree(campaign_dir, directory, ignore=shutil.ignore_patterns("figures", "report.*"))
    writer = subprocess.Popen([sys.executable, "-c", REPORT_WRITER, str(directory)], stdin=subprocess.PIPE, text=True)
    writer.stdin.write(json.dumps(asdict(CampaignNotes())) + "\n")
    writer.stdin.close()
    most_at_once = 0
    while writer.poll() is None:
        most_at_once = max(most_at_once, len(_writer_children(writer)))
        time.sleep(0.002)
    assert writer.returncode == 0
    assert most_at_once == 2
    _assert_every_figure_drawn_and_reported(directory)


def test_a_report_writer_stopped_while_its_children_draw_ends_them_first(campaign_dir, tmp_path):
    """SIGTERM while children draw: the writer ends them (each removing its temporary file) and
    waits for them before it exits, so no drawing process outlives it."""
    import json
    import shutil
    import signal
    import subprocess
    import sys
    from dataclasses import asdict

    import psutil

    from lab.app.report.writer_process import REPORT_WRITER

    directory = tmp_path / "runs"
    shutil.copytree(campaign_dir, directory, ignore=shutil.ignore_patterns("figures", "report.*"))
    writer = subprocess.Popen([sys.executable, "-c", REPORT_WRITER, str(directory)], stdin=subprocess.PIPE, text=True)
    writer.stdin.write(json.dumps(asdict(CampaignNotes())) + "\n")
    writer.stdin.close()
    children = [psutil.Process(_drawing_child(writer, directory))]
    writer.send_signal(signal.SIGTERM)
    assert writer.wait(timeout=60) in (0, 1)
    assert not [child.pid for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]
    assert not [p.name for p in directory.rglob("*") if ".tmp" in p.name]


def test_two_files_of_one_run_are_drawn_once_each_and_reported(campaign_dir, tmp_path):
    """A run file and a copy of it (one run id, so one figure folder): each gets one child, the
    report draws what is left and names both; before, the children overwrote each other's
    figures.json and the writer forked a child every 20 ms without end."""
    import json
    import shutil
    import subprocess
    import sys
    from dataclasses import asdict

    from lab.app.report.writer_process import REPORT_WRITER

    directory = tmp_path / "runs"
    directory.mkdir()
    run = sorted(campaign_dir.glob("*.h5"))[0]
    shutil.copy(run, directory)
    shutil.copy(run, directory / f"copy-of-{run.name}")
    done = subprocess.run([sys.executable, "-c", REPORT_WRITER, str(directory)], text=True, capture_output=True,
                          input=json.dumps(asdict(CampaignNotes())) + "\nend\n", timeout=60)
    assert done.returncode == 0, done.stderr
    report = (directory / "report.md").read_text()
    assert run.name in report and f"copy-of-{run.name}" in report


#: Prepended to the writer's command: the writer signals itself as its `which`-th fork returns
#: (where a SIGTERM that arrived during the fork is handled), the deterministic form of a stop
#: landing in fork's own hooks or before the writer has noted its child.
_STOP_AT_FORK = ("import os, signal\n"
                 "_fork, _forks = os.fork, []\n"
                 "def fork():\n"
                 "    pid = _fork()\n"
                 "    if pid:\n"
                 "        _forks.append(pid)\n"
                 "        if len(_forks) == {which}: os.kill(os.getpid(), signal.SIGTERM)\n"
                 "    return pid\n"
                 "os.fork = fork\n")


@pytest.mark.parametrize("which", [1, 2])
def test_a_stop_that_lands_as_a_child_is_forked_ends_the_writer_and_the_child(campaign_dir, tmp_path, which):
    """A SIGTERM handled as fork returns: the writer still stops (before, the exit was swallowed
    in fork's hooks and the writer drew on), and the child is stopped and waited for (before, it
    outlived the writer holding the report's lock)."""
    import json
    import shutil
    import subprocess
    import sys
    import time
    from dataclasses import asdict

    import psutil

    from lab.archive import file_locks
    from lab.app.report.markdown import LOCK_NAME
    from lab.app.report.writer_process import REPORT_WRITER

    directory = tmp_path / "runs"
    shutil.copytree(campaign_dir, directory, ignore=shutil.ignore_patterns("figures", "report.*"))
    writer = subprocess.Popen([sys.executable, "-c", _STOP_AT_FORK.format(which=which) + REPORT_WRITER, str(directory)],
                              stdin=subprocess.PIPE, text=True)
    writer.stdin.write(json.dumps(asdict(CampaignNotes())) + "\n")
    writer.stdin.flush()                # left open: a writer that swallowed the stop would wait on
    began = time.monotonic()
    try:
        assert writer.wait(timeout=30) == 1
    finally:
        writer.kill()
    assert time.monotonic() - began < 10
    left = [p for p in psutil.process_iter(["cmdline"]) if str(directory) in " ".join(p.info["cmdline"] or ())
            and p.status() != psutil.STATUS_ZOMBIE]
    assert not left
    with open(directory / LOCK_NAME, "a") as lock:
        assert file_locks.try_lock(lock.fileno())
    assert not [p.name for p in directory.rglob("*") if ".tmp" in p.name]


def test_a_stuck_child_neither_holds_the_writer_nor_keeps_the_report_locked(campaign_dir, tmp_path):
    """A child that stops drawing (SIGSTOP: a deadlock, a hung read) is killed at its deadline and
    the report draws its run; and a writer killed meanwhile leaves the report's lock free (the
    child closed its copy), so the campaign's own last report is not kept waiting."""
    import json
    import os
    import shutil
    import signal
    import subprocess
    import sys
    from dataclasses import asdict

    from lab.archive import file_locks
    from lab.app.report.markdown import LOCK_NAME
    from lab.app.report.writer_process import REPORT_WRITER

    directory = tmp_path / "runs"
    shutil.copytree(campaign_dir, directory, ignore=shutil.ignore_patterns("figures", "report.*"))
    deadline = "import lab.app.report.figure_children as f; f.CHILD_DEADLINE_S = 3.0\n"
    writer = subprocess.Popen([sys.executable, "-c", deadline + REPORT_WRITER, str(directory)],
                              stdin=subprocess.PIPE, text=True)
    writer.stdin.write(json.dumps(asdict(CampaignNotes())) + "\n")
    writer.stdin.flush()
    stuck = _drawing_child(writer, directory)
    os.kill(stuck, signal.SIGSTOP)
    writer.stdin.write("end\n")
    writer.stdin.close()
    assert writer.wait(timeout=60) == 0                     # past the deadline: killed, drawn by the report
    report = (directory / "report.md").read_text()
    assert all(run.name in report for run in directory.glob("*.h5"))
    assert len(list(directory.glob("figures/*/figures.json"))) == len(list(directory.glob("*.h5")))

    # A writer killed while its child is stuck: the lock is free at once.
    shutil.rmtree(directory / "figures")
    (directory / LOCK_NAME).unlink()          # made again by this writer once its imports are over
    writer = subprocess.Popen([sys.executable, "-c", REPORT_WRITER, str(directory)], stdin=subprocess.PIPE, text=True)
    writer.stdin.write(json.dumps(asdict(CampaignNotes())) + "\n")
    writer.stdin.flush()
    stuck = _drawing_child(writer, directory)
    os.kill(stuck, signal.SIGSTOP)
    writer.kill()
    writer.wait()
    try:
        with open(directory / LOCK_NAME, "a") as lock:
            assert file_locks.try_lock(lock.fileno())
    finally:
        os.kill(stuck, signal.SIGKILL)


@pytest.mark.parametrize("asked_before", [True, False])
def test_a_campaign_killed_just_after_a_run_ended_leaves_a_report_of_that_run(campaign_dir, tmp_path, asked_before):
    """The campaign asks its writer for the report after each run's archive appeared; killed in
    between (or before its first run's request), its writer's input ends without the end line,
    and the writer writes the report once more: it names the run the campaign never asked about."""
    import json
    import shutil
    import subprocess
    import sys
    import time
    from dataclasses import asdict

    from lab.app.report.writer_process import REPORT_WRITER

    directory = tmp_path / "runs"
    directory.mkdir()
    first, last = sorted(campaign_dir.glob("*.h5"))[:2]
    shutil.copy(first, directory)
    writer = subprocess.Popen([sys.executable, "-c", REPORT_WRITER, str(directory)], stdin=subprocess.PIPE, text=True)
    if asked_before:
        writer.stdin.write(json.dumps(asdict(CampaignNotes())) + "\n")
        writer.stdin.flush()
        deadline = time.monotonic() + 60
        while not (directory / "report.md").exists():
            assert time.monotonic() < deadline and writer.poll() is None
            time.sleep(0.05)
    shutil.copy(last, directory)          # the next run's archive, then the campaign's death
    writer.stdin.close()
    assert writer.wait(timeout=120) == 0
    report = (directory / "report.md").read_text()
    assert first.name in report and last.name in report


def test_a_report_that_may_not_wait_long_is_written_past_a_lock_held_elsewhere(campaign_dir, tmp_path):
    """After a stop signal the campaign's last report waits for another writer's lock only so
    long (an outside holder kept a stopped campaign from ending for 23-31 s), then is written."""
    import shutil
    import time

    from lab.archive import file_locks
    from lab.app.report.markdown import LOCK_NAME, write_report_in_turn

    directory = tmp_path / "runs"
    shutil.copytree(campaign_dir, directory, ignore=shutil.ignore_patterns("report.*"))
    with open(directory / LOCK_NAME, "a") as held:
        file_locks.lock(held.fileno())
        began = time.monotonic()
        path = write_report_in_turn(directory, CampaignNotes(), wait_s=0.5)
        waited_s = time.monotonic() - began
    assert path == directory / "report.md" and all(run.name in path.read_text() for run in directory.glob("*.h5"))
    assert waited_s >= 0.5


def test_a_report_writer_stopped_as_it_finishes_exits_cleanly(campaign_dir, tmp_path):
    """A stop that lands after the report is written (while the writer releases its lock or
    Python finalizes, which restores a handled signal's default action) is not a death by the
    signal either. Four writers of one run each, each stopped the moment its report appears:
    before the writer ignored SIGTERM once done, 8 of 16 writers (four runs of this test) died by it."""
    import json
    import shutil
    import signal
    import subprocess
    import sys
    import time
    from dataclasses import asdict

    from lab.app.report.writer_process import REPORT_WRITER

    writers = []
    for index, run in enumerate(sorted(campaign_dir.glob("*.h5"))[:4]):
        directory = tmp_path / f"runs{index}"
        directory.mkdir()
        shutil.copy(run, directory)
        writer = subprocess.Popen([sys.executable, "-c", REPORT_WRITER, str(directory)], stdin=subprocess.PIPE,
                                  text=True)
        writer.stdin.write(json.dumps(asdict(CampaignNotes())) + "\n")
        writer.stdin.close()
        writers.append((directory, writer))
    for directory, writer in writers:
        while not (directory / "report.md").exists() and writer.poll() is None:
            time.sleep(0.0005)
        writer.send_signal(signal.SIGTERM)
    exits = [writer.wait(timeout=60) for _, writer in writers]
    assert all(code in (0, 1) for code in exits), exits   # 1: stopped by its handler, a clean exit
    assert all((directory / "report.md").stat().st_size > 0 for directory, _ in writers)
