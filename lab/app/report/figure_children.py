"""Runs' figures drawn in child processes of the report writer, several runs at once.

The writer draws a run's figures once the run has ended (markdown.figures). At a campaign's end
the last runs end a fraction of a second apart, and drawing them one after the other (0.3-0.5 s
each) was the campaign's last second. Children forked from the writer, which has matplotlib
imported already, draw up to DRAWERS_MAX runs at once while the writer takes in the next
requests, so a run that ends while another's figures are drawn is drawn beside it.

A child leaves what markdown.figures leaves (figures.json last, whole), so the report finds the
figures drawn. Each run file gets one child at most: a run the child failed to draw (an error, a
child stuck past CHILD_DEADLINE_S, or two files of one run drawing into one folder) is drawn by
the report in the writer, as before, failing there as it would have. Where fork is not
available, nothing is drawn here.

Signals: the writer's stop signals (SIGTERM, SIGINT) are held back while a child is forked and
noted, so that a stop never lands in fork's own hooks (where Python ignores the exception it
raises), never runs the writer's handler in a child not yet drawing, and never leaves a child the
writer does not know of; threads other than the writer's main one must block them throughout
(`block_stop_signals`), or the kernel hands a stop to them meanwhile. A child closes the writer's
report lock, which a stuck child would otherwise hold after the writer is killed.
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
#: A child still drawing after this long (s; a run's figures take under a second at the shipped
#: defaults) is taken as stuck: it is killed and the report draws that run itself.
CHILD_DEADLINE_S = 30.0
#: The writer's stop signals (writer_process: SIGTERM ends it as an exception would).
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


def block_stop_signals() -> None:
    """Block STOP_SIGNALS in the calling thread (a thread of the writer other than its main one)."""
    if hasattr(os, "fork"):
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


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
        self._drawing: dict[tuple, tuple[int, float]] = {}   # run key -> (child pid, its deadline)
        self._tried: set[tuple] = set()        # run keys given a child: none gets a second
        self._child_ended = False              # since the runs were last looked over

    def start_undrawn(self, lock_fd: int, *, asked: bool = True) -> None:
        """A child for each finished run whose figures are not drawn and that had none yet,
        DRAWERS_MAX at most at once; `lock_fd`: the writer's report lock, closed in the child.
        The runs are looked over when a request came (`asked`: a run may have ended) or a child
        ended (a place is free), not at every look at the children."""
        if not hasattr(os, "fork"):
            return
        self._reap()
        if not (asked or self._child_ended):
            return
        self._child_ended = False
        for run in load_runs(self.out_dir, data=False):
            if len(self._drawing) >= DRAWERS_MAX:
                return
            try:
                key = _run_key(run)
            except OSError:
                continue
            if (key in self._tried or not FIGURES.get(run.procedure)
                    or drawn_figures(run, run_figures_dir(self.out_dir, run)) is not None):
                continue
            self._tried.add(key)
            deadline = time.monotonic() + CHILD_DEADLINE_S
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            try:
                pid = os.fork()
                if pid == 0:
                    _child(run.path, self.out_dir, lock_fd, mask)       # never returns
                self._drawing[key] = (pid, deadline)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def busy(self) -> bool:
        """Whether a child is still drawing (one past its deadline is killed)."""
        self._reap()
        return bool(self._drawing)

    def _reap(self) -> None:
        now = time.monotonic()
        for key, (pid, deadline) in list(self._drawing.items()):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if not done and now > deadline:
                os.kill(pid, signal.SIGKILL)
                done, _ = os.waitpid(pid, 0)
            if done:
                del self._drawing[key]
                self._child_ended = True

    def stop(self) -> None:
        """End every child at once (SIGTERM: it removes its temporary file), waiting until each
        has, STOP_WAIT_S at most before it is killed."""
        deadline = time.monotonic() + STOP_WAIT_S
        for key, (pid, _) in self._drawing.items():
            os.kill(pid, signal.SIGTERM)
            self._drawing[key] = (pid, deadline)
        while self._drawing:
            self._reap()
            time.sleep(STOP_POLL_S if self._drawing else 0.0)


def _child(path: Path, out_dir: Path, lock_fd: int, mask: set) -> None:
    """The child's whole life: draw, then leave without the interpreter's finalization (the
    writer's threads and its request reader are not the child's). The stop signals are let in
    (`mask`, the writer's own) only inside the `try`: SIGTERM ends the child by the writer's
    handler (SystemExit), after figures() has removed its temporary file."""
    code = 1
    try:
        os.close(lock_fd)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        run = load_run(path, data=False)
        figures(run, run_figures_dir(out_dir, run))
        code = 0
    except BaseException as exc:   # noqa: BLE001 - the report draws the run itself and says why
        if not isinstance(exc, (SystemExit, KeyboardInterrupt)):    # not a stop: say what failed
            traceback.print_exc()
    finally:
        os._exit(code)
