"""A campaign's report writer: one process for the whole campaign, beside its runs.

    python -m lab.app.report.writer OUT_DIR

Reads campaign notes (`CampaignNotes` as JSON, one object per line) from stdin and rewrites the
report of OUT_DIR after each, with the latest notes only when several are waiting. It ends at
the end of its input: after the notes of the campaign's last report, or when the campaign died
(the report then covers every run that ended). One process imports the report's libraries and
draws each run's figures once; a process per run did both for every run, on the cores the
campaign's runs need.

SIGTERM ends it cleanly: the report is replaced whole or not at all, and a run whose figures it
was drawing is drawn again by the next report (their listing is written last).
"""

from __future__ import annotations

import json
import queue
import signal
import sys
import threading
from pathlib import Path

#: What the reader thread queues at the end of the input.
END = None


def _read_lines(stream, lines: queue.Queue) -> None:
    for line in stream:
        if line.strip():
            lines.put(line)
    lines.put(END)


def serve(out_dir: Path, stream) -> None:
    """Rewrite the report of `out_dir` for each line of `stream` (the latest of those waiting)."""
    from lab.app.report.markdown import CampaignNotes, write_report_in_turn   # after main's SIGTERM handler

    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_read_lines, args=(stream, lines), daemon=True).start()
    ended = False
    while not ended:
        latest = lines.get()
        if latest is END:
            return
        while True:                      # notes that arrived while the last report was written
            try:
                waiting = lines.get_nowait()
            except queue.Empty:
                break
            if waiting is END:
                ended = True
                break
            latest = waiting
        write_report_in_turn(out_dir, CampaignNotes(**json.loads(latest)))


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    serve(Path(sys.argv[1]), sys.stdin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
