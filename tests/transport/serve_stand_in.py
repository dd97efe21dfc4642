"""Run `nwlab sim serve` in this process with a stand-in bench behind the bench opener.

Used by the CLI tests as a real subprocess: `python serve_stand_in.py [serve options...]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from stand_in import EchoInstrument, StandInBench  # noqa: E402

from lab.app.cli import main  # noqa: E402
from sim_backend.transport._bench_lookup import set_bench_opener  # noqa: E402

BENCH = StandInBench(
    {
        "GPIB::12::INSTR": EchoInstrument("NWLAB,PULSER,0,1"),
        "TCPIP::10.0.0.7::INSTR": EchoInstrument("NWLAB,SCOPE,0,1"),
    },
    roles={
        "GPIB::12::INSTR": ("pulse_generator", "33622A"),
        "TCPIP::10.0.0.7::INSTR": ("oscilloscope", "DPO7254C"),
    },
)

if __name__ == "__main__":
    set_bench_opener(lambda path: BENCH)
    sys.exit(main(["sim", "serve", "stand-in.yaml", *sys.argv[1:]]))
