"""IEEE 488.2 / SCPI core of the emulated instruments; see README.md beside this file."""
