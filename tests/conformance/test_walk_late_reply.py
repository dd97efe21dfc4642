"""The walks' short reply wait (walk.REPLY_WAIT_S) over TCP: a reply that comes later than it
(a loaded machine) is told from a query the instrument refused (no reply at all), and the
session is in step again either way."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import pyvisa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stock_bench import no_nagle, reach  # noqa: E402
from walk import REPLY_WAIT_S, identity_of, read_allowing_late, reply_came_late, timed_out  # noqa: E402

from sim_backend.faults import plan as faults  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def test_a_late_reply_is_told_from_a_refused_query(tmp_path):
    reached = reach("lakeshore_336", "tcp", tmp_path)
    resource = pyvisa.ResourceManager("@py").open_resource(
        reached.address, read_termination="\n", write_termination="\n", timeout=REPLY_WAIT_S["tcp"] * 1000)
    try:
        no_nagle(resource)
        identity = identity_of(resource)
        setpoint = resource.query("SETP? 1").strip()
        cryostat = next(e.address for e in reached.bench.instruments if e.role == "cryostat")
        reached.bench.faults_for(cryostat).inject(faults.delay(5 * REPLY_WAIT_S["tcp"]))
        with pytest.raises(pyvisa.VisaIOError) as slow:
            resource.query("SETP? 1")
        assert timed_out(slow.value) and reply_came_late(resource, identity)
        with pytest.raises(pyvisa.VisaIOError) as refused:
            resource.query("NOSUCH? 1")
        assert timed_out(refused.value) and not reply_came_late(resource, identity)
        assert resource.query("SETP? 1").strip() == setpoint          # in step: its own reply
        # What the walks call: the late value read again, the refusal raised.
        reached.bench.faults_for(cryostat).inject(faults.delay(5 * REPLY_WAIT_S["tcp"]))
        assert read_allowing_late(lambda: resource.query("SETP? 1"), resource, identity).strip() == setpoint
        with pytest.raises(pyvisa.VisaIOError):
            read_allowing_late(lambda: resource.query("NOSUCH? 1"), resource, identity)
        assert resource.query("SETP? 1").strip() == setpoint
    finally:
        resource.close()
        reached.stop()
