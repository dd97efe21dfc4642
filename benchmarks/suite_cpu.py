"""Where the test suite's CPU goes: each test's own CPU and its subprocesses', summed per file.

Runs the suite (as `.ci/run` does, with any extra pytest arguments) with a small plugin that
records, around each test, the CPU time of the worker process and of the child processes it
waited for (`resource.getrusage`: RUSAGE_SELF and RUSAGE_CHILDREN). Prints the files that took
the most CPU, the share spent in subprocesses (the `nwlab` runs, campaigns, served stations,
Dask workers and browser the tests start), the CPU against the wall time (the reference, in the
same run: 2 cores can give at most 2x), and one JSON line.

    .ci/env --test-tools python benchmarks/suite_cpu.py [--top 25] [PYTEST_ARGS ...]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Where the plugin (this module, imported by the workers) appends one JSON line per test.
LOG_ENV = "NWLAB_SUITE_CPU_LOG"


def _cpu_s() -> tuple[float, float]:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """The plugin: a test's setup, call and teardown, with the CPU they took."""
    own0, children0 = _cpu_s()
    started = time.monotonic()
    yield
    own1, children1 = _cpu_s()
    with open(os.environ[LOG_ENV], "a") as log:
        log.write(json.dumps({"id": item.nodeid, "wall_s": time.monotonic() - started,
                              "own_s": own1 - own0, "children_s": children1 - children0}) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=25, help="files to list")
    args, pytest_args = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "tests.jsonl"
        # The plugin is this file, importable from a directory of its own: benchmarks/ on the
        # path would shadow packages the tests import (coverage.py here is not `coverage`).
        shutil.copy(__file__, Path(tmp) / "suite_cpu_plugin.py")
        env = dict(os.environ, **{LOG_ENV: str(log)},
                   PYTHONPATH=os.pathsep.join(filter(None, [tmp, os.environ.get("PYTHONPATH")])))
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "suite_cpu_plugin", *pytest_args],
                              cwd=ROOT, env=env)
        wall_s = time.monotonic() - started
        rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    per_file: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0.0, 0])
    for row in rows:
        entry = per_file[row["id"].split("::")[0]]
        entry[0] += row["own_s"]
        entry[1] += row["children_s"]
        entry[2] += row["wall_s"]
        entry[3] += 1
    own_s = sum(r["own_s"] for r in rows)
    children_s = sum(r["children_s"] for r in rows)
    print(f"\n{'file':64}{'tests':>6}{'own s':>8}{'subproc s':>10}{'cpu s':>8}")
    for name, (own, children, _, count) in sorted(per_file.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))[:args.top]:
        print(f"{name:64}{count:>6}{own:>8.1f}{children:>10.1f}{own + children:>8.1f}")
    total_s = own_s + children_s
    print(f"{len(rows)} tests; CPU {total_s:.0f} s ({children_s / max(total_s, 1e-9):.0%} in subprocesses) "
          f"in {wall_s:.0f} s of wall time: {total_s / max(wall_s, 1e-9):.2f} cores busy on average")
    print(json.dumps({"benchmark": "suite_cpu", "tests": len(rows), "wall_s": round(wall_s, 1),
                      "cpu_s": round(total_s, 1), "subprocess_cpu_s": round(children_s, 1),
                      "cpu_per_wall": round(total_s / max(wall_s, 1e-9), 2), "pytest_exit": done.returncode,
                      "top_files_cpu_s": {name: round(v[0] + v[1], 1) for name, v in
                                          sorted(per_file.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))[:10]}}))
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
