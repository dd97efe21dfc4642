"""An independent reference simulator: the nanowire model ported to ngspice from its equations.

It runs ngspice as a subprocess (I/O, hence outside `sim_backend.physics`) so that tests and
benchmarks can cross-check the emulator's solver against a general-purpose circuit simulator.
Nothing here imports the emulator's nanowire model: the constants are derived again from
the published equations (reference/physics.md §2, §6).
"""
