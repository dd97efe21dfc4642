"""Faults the emulator injects on request: what the station file may ask for, and what each does to a reply."""
