"""pyvisa backend shim: `ResourceManager("<station.yaml>[#bench-id]@nwlab")` loads the emulator.

pyvisa finds backends by importing a top-level module named `pyvisa_<name>` and reading its
`WRAPPER_CLASS`; the implementation lives in `sim_backend.transport.visa_library`.
"""

from sim_backend.transport.visa_library import NwlabVisaLibrary

WRAPPER_CLASS = NwlabVisaLibrary
