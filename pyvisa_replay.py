"""pyvisa backend shim: `ResourceManager("<transcript.jsonl>@replay")` serves a recorded session.

pyvisa finds backends by importing a top-level module named `pyvisa_<name>` and reading its
`WRAPPER_CLASS`; the implementation lives in `sim_backend.transport.replay_library`.
"""

from sim_backend.transport.replay_library import ReplayVisaLibrary

WRAPPER_CLASS = ReplayVisaLibrary
