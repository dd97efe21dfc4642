"""Ctrl-C or SIGTERM while the runner writes a record takes effect once the record is written."""

from __future__ import annotations

import os
import signal

import pytest

from lab.runner import interrupts_deferred


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_a_signal_during_a_write_is_raised_after_it(signum):
    written = []
    previous = signal.getsignal(signum)
    with pytest.raises(KeyboardInterrupt, match=f"signal {int(signum)}"):
        with interrupts_deferred():
            os.kill(os.getpid(), signum)        # delivered now, while "writing"
            written.append("the whole record")
    assert written == ["the whole record"]
    assert signal.getsignal(signum) is previous          # handlers restored


def test_no_signal_no_interrupt():
    with interrupts_deferred():
        pass
