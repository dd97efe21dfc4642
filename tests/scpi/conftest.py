"""Fixtures for the SCPI core tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from scpi_helpers import fresh_pulser  # noqa: E402

from example_pulser import ExamplePulser  # noqa: E402


@pytest.fixture
def pulser() -> ExamplePulser:
    return fresh_pulser()
