"""Personality engine: bytes in, bytes out. Framing, dispatch, the output queue, error policy.

A personality is a class whose methods are declared with `setting`/`command`/`query`
(commands.py); `Personality.__init_subclass__` builds its header table once per class. This
module implements the `MessageDevice` contract (device.py). The IEEE 488.2 common commands and
SCPI's SYSTem:ERRor live in ieee488.py, on top of this engine.

Execution rules (the same on every personality):

* Units of a program message run in order; each one is parsed, validated and only then run.
* The first erroneous unit queues its error; it and every later unit of the same message are
  discarded (units before it have run and their answers are sent). An erroneous command
  therefore changes nothing. Handlers keep this by raising `ScpiError` before changing state.
* A new program message arriving while an answer is still unread queues -410 "Query
  INTERRUPTED" and discards that answer (IEEE 488.2 §6.3.2.3).
* Answers to the queries of one message are joined by ';' and end with `response_terminator`.
* Header paths follow SCPI-99 §6.2.4: after ``A:B:C`` the next unit of the message is looked up
  under ``A:B:``, unless it starts with ':' (back to the root) or is a common command (``*XXX``,
  which leaves the path alone).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import replace
from typing import ClassVar, Literal

from sim_backend.scpi.commands import Command
from sim_backend.scpi.device import between_units
from sim_backend.scpi.errors import ESR_PON, STANDARD_ERRORS, ScpiError
from sim_backend.scpi.framing import InputOverrun, MessageFramer
from sim_backend.scpi.headers import HeaderTable
from sim_backend.scpi.lexer import Unit, units
from sim_backend.scpi.numbers import plain_decimal
from sim_backend.scpi.params import LIMIT_WORDS, Boolean, Numeric, Param, Repeated
from sim_backend.scpi.status import StatusRegisters

ErrorReporting = Literal["queue", "status_only"]
NumericData = Literal["ieee488", "plain_decimal"]


class Personality:
    """Base of every emulated instrument. Subclass ieee488.Ieee488Personality or ScpiPersonality.

    Class-level policy, overridable per model:

    * `response_terminator`: appended to each answer (Lake Shore: b"\\r\\n").
    * `error_reporting`: "queue" puts errors in the SCPI error queue; "status_only" (Lake Shore,
      which has no error queue) only sets the *ESR bits, so a bad command is silently ignored.
    * `numeric_data`: "ieee488" takes IEEE 488.2 numeric data (suffixes, `#H1F`, MIN/MAX/DEF);
      "plain_decimal" (Lake Shore, whose manuals define numbers as plain decimals) refuses
      everything else as a command error (numbers.plain_decimal).
    * `error_queue_size`, `error_messages` (model-specific texts overriding the standard ones).
    * `suffix_limits`: highest numeric suffix per node short name, e.g. {"SOUR": 2, "CHAN": 4};
      a larger (or zero) suffix is -114. Nodes not listed accept any suffix >= 1.
    * `omit`: patterns inherited from a base class that this model does not have (e.g. "*TRG").
    """

    response_terminator: ClassVar[bytes] = b"\n"
    error_reporting: ClassVar[ErrorReporting] = "queue"
    numeric_data: ClassVar[NumericData] = "ieee488"
    error_queue_size: ClassVar[int] = 20
    error_messages: ClassVar[Mapping[int, str]] = {}
    suffix_limits: Mapping[str, int] = {}
    omit: ClassVar[frozenset[str]] = frozenset()
    commands: ClassVar[tuple[Command, ...]] = ()
    _table: ClassVar[HeaderTable[Command]]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        seen: dict[str, tuple[Command, type]] = {}
        for klass in cls.__mro__:  # most derived first: a subclass overrides by name and wins ties
            for name, value in vars(klass).items():
                if isinstance(value, Command) and name not in seen:
                    seen[name] = (value, klass)
        omit = {pattern.upper() for pattern in cls.omit}
        merged: dict[str, tuple[Command, type]] = {}
        for found, klass in seen.values():  # a `command` and a `query` may share a pattern (*OPC)
            key = found.pattern.upper()
            if key in omit:
                continue
            merged[key] = _merge(merged[key], (found, klass)) if key in merged else (found, klass)
        cls.commands = tuple(entry for entry, _ in merged.values())
        cls._table = HeaderTable((c.pattern, c) for c in cls.commands)

    def __init__(self) -> None:
        self._framer = MessageFramer()
        self._output: deque[bytes] = deque()
        self.status = StatusRegisters(self.error_queue_size)
        self.status.esr = ESR_PON  # as after power-on: the first *ESR? shows it

    # -- MessageDevice -------------------------------------------------------------------------

    def write_bytes(self, data: bytes) -> None:
        """Accept bytes in any chunking; run each program message they complete."""
        try:
            messages = self._framer.feed(data)
        except InputOverrun:
            self.queue_error(-363)
            return
        for message in messages:
            self._execute(message)

    def read_message(self) -> bytes | None:
        """Next whole answer including its terminator, or None if none is queued."""
        return self._output.popleft() if self._output else None

    def device_clear(self) -> None:
        """Drop pending input and unread answers; settings and the error queue stay."""
        self._framer.clear()
        self._output.clear()

    # -- hooks for subclasses ------------------------------------------------------------------

    def before_command(self, command: Command | None) -> None:
        """Called for every unit whose header was read, before it runs (None: unknown header).

        The bench overrides it to advance its clock; it must not raise ScpiError.
        """

    def wait_for_completion(self) -> None:
        """Finish pending operations (for *OPC, *OPC?, *WAI). Default: nothing is pending."""

    def device_status_bits(self) -> int:
        """Model-specific status byte bits (e.g. 0x08 questionable, 0x80 operation)."""
        return 0

    def on_error(self, code: int, message: str) -> None:
        """Called for every error, also when `error_reporting` does not queue it (for logs)."""

    # -- services for subclasses ---------------------------------------------------------------

    def queue_error(self, code: int, message: str | None = None) -> None:
        """Record an error as the model's policy says (queue and ESR bit, or ESR bit only)."""
        text = message or self.error_messages.get(code) or STANDARD_ERRORS.get(code, "Unknown error")
        self.status.record(code, text, queue=self.error_reporting == "queue")
        self.on_error(code, text)

    @property
    def message_available(self) -> bool:
        """MAV: an answer is waiting to be read."""
        return bool(self._output)

    # -- execution -----------------------------------------------------------------------------

    def _execute(self, message: bytes) -> None:
        if self._output:
            self._output.clear()
            self.queue_error(-410)
        answers: list[bytes] = []
        path: tuple[str, ...] = ()
        try:
            for index, unit in enumerate(units(message.decode("latin-1"))):
                if index:
                    between_units()  # the transport may let other instruments in here
                if answers and unit.query and answers[-1].startswith(b"#0"):
                    raise ScpiError(-440)
                path = self._run(unit, path, answers)
        except ScpiError as error:
            self.queue_error(error.code, error.message)
        if answers:
            self._output.append(b";".join(answers) + self.response_terminator)

    def _run(self, unit: Unit, path: tuple[str, ...], answers: list[bytes]) -> tuple[str, ...]:
        """Run one unit; return the header path for the next unit of the message."""
        header = unit.header
        suffixes: tuple[int, ...] = ()
        match = None
        if header[0] == "*":
            command = self._table.common(header)
        else:
            if header[0] == ":":
                tokens = tuple(header[1:].upper().split(":"))
            else:
                tokens = path + tuple(header.upper().split(":"))
            path = tokens[:-1]
            match = self._table.resolve(":" + ":".join(tokens))
            command = match.entry if match else None
        self.before_command(command)
        if command is None:
            raise ScpiError(-113)
        if match and match.invalid:
            raise ScpiError(-114)  # a fixed suffix (`SOURce[1]`) given another number
        if match and match.suffixes:
            suffixes = self._check_suffixes(match.suffixes)
        if unit.query:
            answers.append(self._query(command, suffixes, unit))
        elif command.set_handler is None:
            raise ScpiError(-113)
        else:
            command.set_handler(self, *suffixes, *_convert(command.params, unit, self.numeric_data))
        return path

    def _query(self, command: Command, suffixes: tuple[int, ...], unit: Unit) -> bytes:
        if command.query_handler is None:
            raise ScpiError(-113)
        tokens = unit.params
        if not command.query_params and len(tokens) == 1 and command.params and self.numeric_data == "ieee488":
            last = command.params[-1]  # VOLT? MIN: the declared limit, as a real instrument answers
            if isinstance(last, Numeric) and isinstance(tokens[0], str) and tokens[0].upper() in LIMIT_WORDS:
                return last.format(last.limit(tokens[0])).encode("latin-1")
        value = command.query_handler(self, *suffixes, *_convert(command.query_params, unit, self.numeric_data))
        return command.format_answer(value)

    def _check_suffixes(self, found: tuple[tuple[str, int], ...]) -> tuple[int, ...]:
        limits = self.suffix_limits
        for node, number in found:
            if number < 1 or number > limits.get(node, number):
                raise ScpiError(-114)
        return tuple(number for _, number in found)


def _merge(first: tuple[Command, type], second: tuple[Command, type]) -> tuple[Command, type]:
    """One table entry from two declarations of a pattern (`first` is from the more derived class).

    A set-only and a query-only declaration combine. Where both declare a form, the subclass's
    replaces the base class's (per form); the same form twice in one class is a mistake.
    """
    (a, a_class), (b, b_class) = first, second
    clash = (a.set_handler and b.set_handler) or (a.query_handler and b.query_handler)
    if clash and a_class is b_class:
        raise TypeError(f"{a.pattern!r} is declared twice for the same form in {a_class.__name__}")
    setter = a if a.set_handler else b  # per form, the more derived declaration wins
    getter = a if a.query_handler else b
    return replace(setter, query_params=getter.query_params, query_handler=getter.query_handler), a_class


def _convert(params: tuple[Param, ...], unit: Unit, numeric_data: NumericData) -> list[object]:
    """Convert a unit's tokens by the declared types: -109 too few, -108 too many.

    With "plain_decimal" numeric data a number must be a plain decimal before its type sees it.
    """
    tokens = unit.params
    if params and isinstance(params[-1], Repeated):     # the handler gets the list as one tuple
        fixed, repeated = params[:-1], params[-1]
        if len(tokens) < len(fixed) + repeated.minimum:
            raise ScpiError(-109)
        head = _convert(fixed, replace(unit, params=tokens[:len(fixed)]), numeric_data)
        rest = _convert((repeated.each,) * (len(tokens) - len(fixed)), replace(unit, params=tokens[len(fixed):]),
                        numeric_data)
        return [*head, tuple(rest)]
    if len(tokens) > len(params):
        raise ScpiError(-108)
    values: list[object] = []
    for index, param in enumerate(params):
        if index < len(tokens):
            token = tokens[index]
            if numeric_data == "plain_decimal" and isinstance(param, (Numeric, Boolean)) and isinstance(token, str):
                plain_decimal(token)  # -120 for MIN, #H1F, 1E-999999, ...
            values.append(param.convert(token))
        elif param.optional:
            values.append(None)
        else:
            raise ScpiError(-109)
    return values


Personality.__init_subclass__()  # the bare base gets an (empty) table too
