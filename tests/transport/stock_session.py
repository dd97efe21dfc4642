"""A short session of two stock QCoDeS drivers, run as a program by the record/replay tests:
`python stock_session.py VISALIB` (the emulated station's library, or a transcript's @replay)."""

import sys

from qcodes.instrument_drivers.Keithley import Keithley2450
from qcodes.instrument_drivers.Lakeshore import LakeshoreModel336

library = sys.argv[1]
smu = Keithley2450("smu", "TCPIP0::10.0.0.23::5025::SOCKET", visalib=library)
smu.source.function("current")
smu.source.range(1e-4)
smu.source.limit(0.5)
smu.source.current(2e-6)
cryostat = LakeshoreModel336("cryostat", "TCPIP0::10.0.0.20::7777::SOCKET", visalib=library)
cryostat.output_1.setpoint(4.5)
print(smu.source.current(), smu.source.limit(), cryostat.output_1.setpoint())
smu.close()
cryostat.close()
