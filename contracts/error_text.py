"""How an exception reads inside a message.

QCoDeS re-raises a driver's error with its context appended to `args` ("asking '*OPC?' to
<...>", "getting <parameter>"); `str()` of such an error is the repr of a tuple. The parts
are joined instead.
"""

from __future__ import annotations


def error_text(error: BaseException) -> str:
    """The error's text, its args joined with "; " when there are several."""
    if len(error.args) > 1:
        return "; ".join(str(arg) for arg in error.args)
    return str(error)


def failure_message(error: BaseException) -> str:
    """`Type: text`, as a failed run's message starts."""
    return f"{type(error).__name__}: {error_text(error)}"
