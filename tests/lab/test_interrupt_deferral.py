"""Ctrl-C or SIGTERM inside a run's steps: at once, except while a record is written (then
right after it); outside the steps, and after the first, signals are only noted."""

from __future__ import annotations

import os
import signal

import pytest

from lab.execution.interrupts import deferred, handling_stop_signals, interruptible, stop_requested


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_a_signal_during_a_write_is_raised_after_it(signum):
    written = []
    previous = signal.getsignal(signum)
    with pytest.raises(KeyboardInterrupt, match=f"signal {int(signum)}"):
        with interruptible():
            with deferred():
                os.kill(os.getpid(), signum)        # delivered now, while "writing"
                written.append("the whole record")
            written.append("never: the interrupt comes first")
    assert written == ["the whole record"]
    assert signal.getsignal(signum) is previous          # handlers restored


def test_no_signal_no_interrupt():
    with interruptible(), deferred():
        pass


def test_outside_the_steps_a_signal_is_noted_not_raised(capfd):
    finished = []
    with handling_stop_signals():
        os.kill(os.getpid(), signal.SIGINT)               # e.g. while safe state runs
        finished.append("safe state")
        assert stop_requested()
    assert finished == ["safe state"]
    assert "not interrupted" in capfd.readouterr().err
    assert not stop_requested()                           # the next command starts afresh


def test_only_the_first_signal_interrupts():
    ending = []
    with handling_stop_signals():
        with pytest.raises(KeyboardInterrupt):
            with interruptible():
                os.kill(os.getpid(), signal.SIGINT)
        for _ in range(5):                                # more Ctrl-C during the ending
            os.kill(os.getpid(), signal.SIGINT)
            ending.append("step")
        with interruptible():                             # even a later interruptible section
            ending.append("not cut")
    assert ending == ["step"] * 5 + ["not cut"]


def test_a_signal_just_before_the_steps_interrupts_them_at_their_start():
    with handling_stop_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(KeyboardInterrupt):
            with interruptible():
                pytest.fail("the steps began although a stop was requested")


def test_signals_while_the_process_finishes_do_not_kill_it():
    """A Ctrl-C after the command's work, while the interpreter finishes (threads joined, atexit),
    used to kill the process (exit -2): Python puts its default actions back at finalisation."""
    import subprocess
    import sys
    import time

    code = ("import threading, time\n"
            "from lab.execution.interrupts import handle_stop_signals_until_exit\n"
            "handle_stop_signals_until_exit()\n"
            "print('ready', flush=True)\n"
            "threading.Thread(target=time.sleep, args=(1.5,)).start()\n")   # finalisation waits for it
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    for _ in range(3):
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
