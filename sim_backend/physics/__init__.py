"""Emulator physics core: pure computation (no I/O, no clock). Entry points: circuit, transient."""
