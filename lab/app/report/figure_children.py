"""Runs' figures drawn in child processes of the report writer, several runs at once.

The writer draws a run's figures once the run has ended (markdown.figures). At a campaign's end
the last runs end a fraction of a second apart, and drawing them one after the other (0.3-0.5 s
each) was the campaign's last second. Children forked from the writer, which has matplotlib
imported already, draw up to DRAWERS_MAX runs at once while the writer takes in the next
requests, so a run that ends while another's figures are drawn is drawn beside it.

A child leaves what markdown.figures leaves (figures.json last, whole), so the report finds the
figures drawn; a child that failed leaves its run undrawn, and the report draws it in the writer
as before, failing there as it would have. Where fork is not available, nothing is drawn here.
"""

from __future__ import annotations

import os
import signal
import time
import traceback
from pathlib import Path

from lab.app.report.markdown import FIGURES, drawn_figures, figures, run_figures_dir
from lab.app.report.runs import RunData, load_run, load_runs

#: Runs drawn at once: the campaign's next run keeps one core busy until its last run ends.
DRAWERS_MAX = 2
#: How long a stopped child may take to end (s) before it is killed, and how often it is looked at.
STOP_WAIT_S = 5.0
STOP_POLL_S = 0.01


def _run_key(run: RunData) -> tuple:
    stat = run.path.stat()
    return str(run.path), stat.st_size, stat.st_mtime_ns


class FigureChildren:
    """The children drawing a directory's runs' figures (os.fork: multiprocessing's own start
    closes stdin in the child, which deadlocks on the lock the writer's request reader holds)."""

    def __init__(self, out_dir: str | Path) -> None:
        from lab.app.report.plots import pyplot

        pyplot()                  # imported once here, not in every child (~0.3 s)
        self.out_dir = Path(out_dir)
        self._drawing: dict[tuple, int] = {}   # run key -> child pid
        self._failed: set[tuple] = set()       # drawn by the report itself, which says why it fails

    def start_undrawn(self) -> None:
        """A child for each finished run whose figures are not drawn, DRAWERS_MAX at most at once."""
        if not hasattr(os, "fork"):
            return
        self._reap()
        for run in load_runs(self.out_dir, data=False):
            if len(self._drawing) >= DRAWERS_MAX:
                return
            try:
                key = _run_key(run)
            except OSError:
                continue
            if (key in self._drawing or key in self._failed or not FIGURES.get(run.procedure)
                    or drawn_figures(run, run_figures_dir(self.out_dir, run)) is not None):
                continue
            pid = os.fork()
            if pid == 0:
                _child(run.path, self.out_dir)       # never returns
            self._drawing[key] = pid

    def busy(self) -> bool:
        """Whether a child is still drawing."""
        self._reap()
        return bool(self._drawing)

    def _reap(self) -> None:
        for key, pid in list(self._drawing.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                if os.waitstatus_to_exitcode(status) != 0:
                    self._failed.add(key)
                del self._drawing[key]

    def stop(self) -> None:
        """End every child at once (SIGTERM: it removes its temporary file), waiting until each has."""
        for pid in self._drawing.values():
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        while self._drawing:
            self._reap()
            if self._drawing and time.monotonic() > deadline:
                for pid in self._drawing.values():
                    os.kill(pid, signal.SIGKILL)
                deadline = float("inf")
            time.sleep(STOP_POLL_S if self._drawing else 0.0)


def _child(path: Path, out_dir: Path) -> None:
    """The child's whole life: draw, then leave without the interpreter's finalization (the
    writer's threads and its request reader are not the child's). SIGTERM ends it by the
    writer's handler (SystemExit), after figures() has removed its temporary file."""
    code = 1
    try:
        run = load_run(path, data=False)
        figures(run, run_figures_dir(out_dir, run))
        code = 0
    except BaseException:   # noqa: BLE001 - the report draws the run itself and says why
        traceback.print_exc()
    finally:
        os._exit(code)
