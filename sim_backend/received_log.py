"""A log of every byte the emulated instruments receive, for tests that check what reached them.

With `NWLAB_SIM_RECEIVED_LOG=<path>` in the environment, every bench built in the process wraps
each instrument's `write_bytes` so that each call appends one JSON line to `<path>`:
`{"pid", "role", "model", "t_s" (monotonic), "data" (latin-1 text of the bytes)}`. Lines are
written with one `os.write` on an `O_APPEND` descriptor, so several processes (a served bench,
an in-process one) can share a log without interleaving inside a line. Whatever reached the
instrument is logged before it is executed: a command that crashes the emulator is still there.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

ENVIRONMENT_VARIABLE = "NWLAB_SIM_RECEIVED_LOG"


def attach_received_log(role: str, model: str, device: Any) -> None:
    """Wrap `device.write_bytes` if the environment asks for a received-bytes log."""
    path = os.environ.get(ENVIRONMENT_VARIABLE)
    if not path:
        return
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    write_bytes = device.write_bytes
    pid = os.getpid()

    def logged_write_bytes(data: bytes, *args: Any, **kwargs: Any) -> Any:
        line = json.dumps({"pid": pid, "role": role, "model": model, "t_s": time.monotonic(),
                           "data": bytes(data).decode("latin-1")})
        os.write(descriptor, (line + "\n").encode())
        return write_bytes(data, *args, **kwargs)

    device.write_bytes = logged_write_bytes
