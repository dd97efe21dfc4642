"""Declaring commands: each one once, with its pattern, parameters, handlers and docstring.

Three decorators, used on personality methods:

* ``@setting(pattern, *params)`` on the query handler, then ``@name.setter`` on the setter,
  like `property`: one declaration answers both ``VOLT 1.5`` and ``VOLT?``;
* ``@command(pattern, *params)``: a set-only (event) command such as ``*TRG`` or ``:DIGitize``;
* ``@query(pattern, *params)``: a query-only command such as ``*IDN?`` or ``:WAVeform:DATA?``.

Handlers receive the header's numeric suffixes first (one int per `#` node, 1 when absent),
then the converted parameters: ``def voltage(self, channel: int, volts: float)``.
A query handler returns bytes (sent as is), a str, a tuple (each item formatted by the
matching trailing set parameter, joined by ','), or a value (formatted by the last set
parameter, or generically: bool -> 1/0, int -> NR1, float -> repr).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from sim_backend.scpi.params import Param

Handler = Callable[..., object]


@dataclass(frozen=True)
class Command:
    """One entry of a personality's command table."""

    pattern: str
    params: tuple[Param, ...] = ()  # set form
    query_params: tuple[Param, ...] = ()  # query form
    set_handler: Handler | None = None
    query_handler: Handler | None = None
    doc: str = ""

    def setter(self, function: Handler) -> Command:
        """Decorator: attach the set handler to a `setting` (``@voltage.setter``)."""
        return replace(self, set_handler=function, doc=self.doc or _doc(function))

    def format_answer(self, value: object) -> bytes:
        """Encode what a query handler returned (see the module docstring)."""
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode("latin-1")
        if isinstance(value, tuple):
            params = self.params[len(self.params) - len(value) :]
            if self.params and len(params) == len(value):
                return ",".join(p.format(v) for p, v in zip(params, value)).encode("latin-1")
            return ",".join(_generic(v) for v in value).encode("latin-1")
        if self.params:
            return self.params[-1].format(value).encode("latin-1")
        return _generic(value).encode("latin-1")


def _generic(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _doc(function: Handler) -> str:
    return (function.__doc__ or "").strip()


def setting(
    pattern: str, *params: Param, query_params: tuple[Param, ...] = ()
) -> Callable[[Handler], Command]:
    """Declare a settable, queryable command; decorate the query handler (see module doc)."""
    return lambda getter: Command(pattern, params, query_params, None, getter, _doc(getter))


def command(pattern: str, *params: Param) -> Callable[[Handler], Command]:
    """Declare a set-only command; decorate its handler."""
    return lambda function: Command(pattern, params, (), function, None, _doc(function))


def query(pattern: str, *params: Param) -> Callable[[Handler], Command]:
    """Declare a query-only command (pattern without '?'); `params` are the query's parameters."""
    return lambda function: Command(pattern, (), params, None, function, _doc(function))
