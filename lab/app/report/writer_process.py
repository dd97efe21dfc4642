"""The campaign's report writer: one process beside its runs, asked for the report again after
each run by a line of CampaignNotes JSON on its stdin (`serve_report_requests`). This module
owns that exchange and stays light to import: the campaign imports it while its runs go on,
the writer imports the report's modules when it starts.
"""

from __future__ import annotations

import json
import queue
import signal
import threading
from pathlib import Path
from typing import TextIO

#: The writer's command line (`python -c REPORT_WRITER OUT_DIR`, requests on stdin). SIGTERM ends
#: it as an exception would, from before its imports on. Once every request is answered it leaves
#: without the interpreter's teardown of matplotlib, h5py and numpy (~0.1 s the campaign waited
#: for): its files are written and closed by then.
REPORT_WRITER = ("import os, signal, sys; signal.signal(signal.SIGTERM, lambda *_: sys.exit(1)); "
                 "from lab.app.report.writer_process import serve_report_requests; "
                 "serve_report_requests(sys.argv[1], sys.stdin); sys.stdout.flush(); sys.stderr.flush(); os._exit(0)")

#: The line that ends the campaign's requests.
END_OF_REQUESTS = "end"
#: How often the writer looks at its children while they draw (s).
POLL_S = 0.02


def serve_report_requests(out_dir: str | Path, requests: TextIO) -> None:
    """The report writer's loop (REPORT_WRITER): each line of `requests` (CampaignNotes as JSON,
    one after each run) asks for the report again; the newest line waiting supersedes the ones
    before it, since each report reads every run there is. At the line END_OF_REQUESTS the newest
    waiting request is answered, then it returns. An end of `requests` without it means the
    campaign died, maybe just after a run's archive appeared: the report is then written once
    more, with the last notes it was sent, before it returns.

    One process for the whole campaign imports the report's modules once and keeps drawing each
    run's figures as the runs end (a process per run spent about a second on imports alone, and
    fell behind the short runs at a campaign's end), each run's in a child forked from it, two
    runs at once (figure_children), before it writes the report. Where SIGTERM ends a report as an exception
    would (so its temporary files go and its lock is let go), it is ignored once the requests are
    answered: finalization would put back its default action, a death by the signal (as
    lab.execution.interrupts says for the commands). Runs in the main thread."""
    from lab.app.report.figure_children import FigureChildren, block_stop_signals
    from lab.app.report.markdown import CampaignNotes, report_turn, write_report
    from lab.archive.layout import SUFFIX

    waiting: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        block_stop_signals()                   # a stop is the main thread's (figure_children)
        for line in requests:
            if line.strip():
                waiting.put(line.strip())
        waiting.put(None)

    threading.Thread(target=read, name="report-requests", daemon=True).start()
    last = "{}"                                # the notes of the newest request (none yet: the defaults)
    children = FigureChildren(out_dir)
    try:
        while True:
            lines = [waiting.get()]
            with report_turn(out_dir) as lock_fd:
                # The figures of every run that ended, drawn beside each other; a request that
                # comes meanwhile (the next run ended) has its run drawn beside them too.
                children.start_undrawn(lock_fd)
                while children.busy():
                    try:
                        lines.append(waiting.get(timeout=POLL_S))
                        came = True
                    except queue.Empty:
                        came = False
                    children.start_undrawn(lock_fd, asked=came)
                while not waiting.empty():             # the newest request waiting supersedes the rest
                    lines.append(waiting.get())
                asked = [line for line in lines if line not in (None, END_OF_REQUESTS)]
                ended = END_OF_REQUESTS in lines
                died = None in lines and not ended     # after the death: this report reads every archive
                if asked:
                    last = asked[-1]
                if asked or (died and any(Path(out_dir).glob(f"*{SUFFIX}"))):  # not for a campaign that ran nothing
                    write_report(out_dir, CampaignNotes(**json.loads(last)))
            if ended or died:
                break
    finally:
        children.stop()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
