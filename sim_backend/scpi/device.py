"""The contract between an emulated instrument and the transports that carry its bytes.

A transport (in-process VISA library or TCP server) only moves bytes: it feeds whatever arrives
to `write_bytes` and hands out what `read_message` returns. Message framing (terminators,
IEEE 488.2 blocks), parsing, the error queue and the instrument's behaviour live behind it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol


class MessageDevice(Protocol):
    """An instrument as its transport sees it."""

    #: Terminator the instrument appends to each response (e.g. b"\n", b"\r\n" for Lake Shore).
    response_terminator: bytes

    def write_bytes(self, data: bytes) -> None:
        """Accept bytes from the controller in any chunking; complete messages are executed."""

    def read_message(self) -> bytes | None:
        """Next whole response including its terminator, or None when nothing is queued.

        None is what a real instrument does when no query was sent: the controller's read
        times out. The transport turns it into a timeout, never into an empty reply.
        """

    def device_clear(self) -> None:
        """IEEE 488.2 device clear: drop pending input and output, keep settings."""


# -- between the units of a message ------------------------------------------------------------

_gap = threading.local()


def between_units() -> None:
    """A device calls this between the units (commands) of one program message. The transport
    running the message may use the gap (`interleaving`): the TCP server lets other instruments
    of the bench run a command there, so a 5000-unit message stalls them one command, not all.
    The hook may raise to abandon the rest of the message (its client is gone): the device is
    left as after the units that ran, the exception passes through, and the transport clears
    the device. A device must therefore call this only where no command is half done."""
    hook = getattr(_gap, "hook", None)
    if hook is not None:
        hook()


@contextmanager
def interleaving(hook: Callable[[], None]) -> Iterator[None]:
    """Call `hook` at every `between_units` of this thread while the block runs."""
    previous = getattr(_gap, "hook", None)
    _gap.hook = hook
    try:
        yield
    finally:
        _gap.hook = previous
