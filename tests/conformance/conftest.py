"""Each conformance walk installs its own bench (stock_bench.reach); the suite's opener is put back."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _restore_bench_opener():
    from sim_backend.transport._bench_lookup import set_bench_opener

    previous = set_bench_opener(None)             # what the suite had; put back after the test
    set_bench_opener(previous)
    yield
    set_bench_opener(previous)
