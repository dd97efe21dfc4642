"""Ctrl-C (SIGINT) and SIGTERM to a real `nwlab run` mid-run, against the emulator served as its
own process (`nwlab sim serve`) and reached over TCP through pyvisa-py.

The signal is sent only once the emulator itself shows the run's outputs live (SMU output on
with a bias current, generator output on); the heater is switched to a range before the run,
so bringing it back is the run's doing. After the run process has ended, the emulator is asked
over TCP directly: SMU output off at 0 A, generator outputs off, heater range 0 (off).
"""

from __future__ import annotations

import signal
import time

import pytest
from run_helpers import (exit_status, private_station, run_nwlab, scpi_query, scpi_write, served_bench,
                         signal_and_wait,
                         start_nwlab, stop, tcp_station)

#: A long energy_per_spike run: 5,000 captures above the threshold the bench has, so each one
#: fires and the run goes on (outputs on) until it is interrupted.
LONG_RUN = ("energy_per_spike", "--set", "spikes=5000", "--set", "threshold_a=24e-6")
RUN_FAILED = 1          # `nwlab run`: 0 completed, 1 aborted or failed, 2 a problem the user can fix
USAGE_ERROR = 2


def outputs_live(addresses: dict[str, str]) -> bool:
    return (scpi_query(addresses["bias"], ":OUTP?") == "1"
            and abs(float(scpi_query(addresses["bias"], ":SOUR:CURR?"))) > 1e-6
            and scpi_query(addresses["pulser"], ":OUTP1?") == "1")


def wait_until(predicate, timeout_s: float, proc) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert proc.poll() is None, f"run ended before the outputs were live: {proc.communicate()}"
        assert time.monotonic() < deadline, f"outputs not live within {timeout_s} s"
        time.sleep(0.05)


def safe_state_over_tcp(addresses: dict[str, str]) -> dict[str, str]:
    return {
        "smu output": scpi_query(addresses["bias"], ":OUTP?"),
        "smu level": scpi_query(addresses["bias"], ":SOUR:CURR?"),
        "generator output 1": scpi_query(addresses["pulser"], ":OUTP1?"),
        "generator output 2": scpi_query(addresses["pulser"], ":OUTP2?"),
        "heater range": scpi_query(addresses["cryostat"], "RANGE? 1"),
    }


@pytest.mark.timeout(90)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_signal_mid_run_aborts_with_every_output_safe(tmp_path, signum):
    served_station = private_station(tmp_path, name="served.yaml")
    with served_bench(served_station) as served:
        station = tcp_station(tmp_path, served)
        scpi_write(served.addresses["cryostat"], "RANGE 1,2")           # heater on, medium range
        assert scpi_query(served.addresses["cryostat"], "RANGE? 1") == "2"
        proc = start_nwlab("run", *LONG_RUN, "--station", str(station), "--out", str(tmp_path / "out"), "--quiet")
        try:
            wait_until(lambda: outputs_live(served.addresses), 45, proc)
            code, out, err = signal_and_wait(proc, signum, timeout_s=40)
        finally:
            stop(proc)
        assert code == RUN_FAILED, (code, out, err)
        assert ": aborted (interrupted by the operator" in out, out
        assert "Traceback" not in err, err
        archives = sorted((tmp_path / "out").glob("*.h5"))
        assert len(archives) == 1 and not list((tmp_path / "out").glob("*.partial")), archives
        status, message = exit_status(archives[0])
        assert status == "aborted" and "interrupted" in message, (status, message)
        # the run process is gone: what the instruments hold now is what the chip sees
        state = safe_state_over_tcp(served.addresses)
        assert state["smu output"] == "0", state
        assert float(state["smu level"]) == 0.0, state
        assert state["generator output 1"] == "0" and state["generator output 2"] == "0", state
        assert state["heater range"] == "0", state


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_second_run_on_a_busy_station_is_refused_by_name(tmp_path):
    served_station = private_station(tmp_path, name="served.yaml")
    with served_bench(served_station) as served:
        station = tcp_station(tmp_path, served)
        first = start_nwlab("run", *LONG_RUN, "--station", str(station), "--out", str(tmp_path / "first"), "--quiet")
        try:
            wait_until(lambda: outputs_live(served.addresses), 45, first)
            second = run_nwlab("run", "cooldown", "--station", str(station), "--out", str(tmp_path / "second"),
                               "--quiet", timeout_s=60)
            assert first.poll() is None, "the first run ended before the second was refused"
            assert second.returncode == USAGE_ERROR, (second.returncode, second.stdout, second.stderr)
            assert str(station) in second.stderr and "busy" in second.stderr, second.stderr
            assert "Traceback" not in second.stderr, second.stderr
            assert not (tmp_path / "second").exists() or not any((tmp_path / "second").iterdir())
            # the refused run touched nothing: the first one's outputs are still live
            assert outputs_live(served.addresses)
            code, out, _ = signal_and_wait(first, signal.SIGINT, timeout_s=40)
        finally:
            stop(first)
        assert code == RUN_FAILED and "aborted" in out
