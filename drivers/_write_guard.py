"""The one check of every message a driver sends against the station's envelope.

`RecoveringVisa` hands each outgoing message — a role verb's write, a stock QCoDeS parameter
set, a ramp step, a re-applied setting after a reconnect, a safe-state write, the setting part
of a query — to its driver's `WriteGuard` before a byte leaves. The guard splits the message
into program message units (IEEE 488.2 §7.4: `;` separates units; a unit without a leading
`:` continues the previous unit's path, SCPI-99 §6.2.4), matches each unit's header against
the model's rules (written as the manual spells the header), and checks the instrument state
the message would leave: a level outside the envelope, a value the rule cannot read as a plain
decimal number, or a command that would apply levels the guard cannot see (a stored setup
recalled, a voltage source on a current-biased wire) is refused with `EnvelopeError` and
nothing is written. Only after the exchange completes does the commanded state advance, so
the driver always knows what it last told the instrument (a ramp starts from there).

Headers no rule names pass unchanged: they set no level (triggering, acquisition, display).
A state the guard does not know (after a reconnect, at the start of a session) it learns only
from two replies in a row that agree.
What a generator offers that adds to or copies a channel's levels (the modulations, the other
channel fed in, tracking, coupled amplitudes) has a rule that lets it only be switched off.
"""

from __future__ import annotations

import copy
import functools
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from contracts.envelope import EnvelopeError

#: A plain decimal number as a level may be written (no SCPI keywords, suffixes or #H forms):
#: anything else is refused, since the guard could not say what the instrument would make of it.
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
#: What a header may hold: keywords, numeric suffixes, colons, a leading `*`, a trailing `?`.
_HEADER = re.compile(r"\*?:?[A-Z0-9_]+(?::[A-Z0-9_]+)*\??")


@dataclass(frozen=True)
class ProgramUnit:
    """One program message unit: its header with the full path (upper case) and arguments."""

    header: str
    arguments: tuple[str, ...]
    text: str

    @property
    def is_query(self) -> bool:
        return self.header.endswith("?")


_DIGITS = "0123456789"


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    """`text` split at `separator` outside quoted strings and IEEE 488.2 blocks, whose data may
    hold any byte: a quote or a `;` there is data, as the instrument reads it (a quote in a
    block once hid the units after it from the check). A line feed in a quoted string is
    refused: a socket instrument's framing may end the message there (a 64 KiB read did, once)."""
    if "'" not in text and '"' not in text and "#" not in text:
        return text.split(separator)     # the same parts: nothing is quoted
    parts, start, i, quote = [], 0, 0, ""
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\n":
                raise EnvelopeError("refused: a line feed inside a quoted string: an instrument on a socket ends "
                                    "the message there and would run what follows unchecked; nothing was written")
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and text[i + 1:i + 2] and text[i + 1] in _DIGITS:
            i = _block_end(text, i)
            continue
        elif char == separator:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if quote:
        # Where the instrument ends it depends on its framing (a socket read's last line feed,
        # the next write's quote): what follows could run unchecked.
        raise EnvelopeError(f"refused: a quoted string not closed in {text[:40]!r}; nothing was written")
    parts.append(text[start:])
    return parts


def _block_end(text: str, at: int) -> int:
    """Where the definite-length block starting at text[at] (`#<n><length><data>`) ends.

    Refused: an indefinite block (`#0`), which ends only at the message's END, a mark a socket
    does not carry (an instrument may run on past a line feed); and a block holding text beyond
    ASCII, whose length the instrument counts in bytes of an encoding the check does not know.
    Either once hid what followed from the check."""
    digits = int(text[at + 1])
    if digits == 0:
        raise EnvelopeError("refused: an indefinite-length block (#0) ends where the instrument sees the "
                            "message's end, which a socket does not mark; send a definite-length block; "
                            "nothing was written")
    length = text[at + 2:at + 2 + digits]
    if len(length) != digits or any(c not in _DIGITS for c in length):
        raise EnvelopeError(f"refused: {text[at:at + 12]!r} is not a block the envelope check can read; "
                            "nothing was written")
    end = at + 2 + digits + int(length)
    if end > len(text):
        raise EnvelopeError(f"refused: a block of {int(length)} bytes with fewer after it; nothing was written")
    if not text[at + 2 + digits:end].isascii():
        raise EnvelopeError("refused: a block holding characters beyond ASCII: the instrument counts its "
                            "length in encoded bytes, the check in characters; nothing was written")
    return end


@functools.lru_cache(maxsize=4096)      # a run sends the same few messages thousands of times
def program_units(message: str) -> tuple[ProgramUnit, ...]:
    """The units of `message`, each header given the path it has in the instrument's parser
    (`:SOUR:FUNC CURR;CURR 0` sets `:SOUR:CURR`); headers carry a leading `:` unless common.
    EnvelopeError for a unit the check cannot read (raised again on every call: not cached)."""
    units: list[ProgramUnit] = []
    for line in _split_outside_quotes(message, "\n"):     # an LF ends a program message
        units.extend(_message_units(line))
    return tuple(units)


def _message_units(message: str) -> list[ProgramUnit]:
    units: list[ProgramUnit] = []
    path = ""                         # the compound-header path a following unit continues
    for raw in _split_outside_quotes(message.strip(), ";"):
        text = raw.strip()
        if not text:
            continue
        header, rest = (re.split(r"\s+", text, maxsplit=1) + [""])[:2]
        header = header.upper()
        if not _HEADER.fullmatch(header):
            raise EnvelopeError(f"refused: {text[:60]!r} is not a program unit the envelope check can read; "
                                "nothing was written")
        if header.startswith("*"):
            full = header          # common commands leave the path alone
        else:
            full = header if header.startswith(":") else f"{path}:{header}"
            path = full.rsplit(":", 1)[0]
        arguments = tuple(a.strip() for a in _split_outside_quotes(rest, ",")) if rest.strip() else ()
        units.append(ProgramUnit(full, arguments, text))
    return units


def header_pattern(spelling: str) -> re.Pattern[str]:
    """A regex for a header as a manual spells it: `[:SOURce[1]]:CURRent[:LEVel]`.

    Upper case is the short form, lower case the rest of the long form; `[...]` is optional;
    `{n}` (and `{m}`) is a numeric suffix, captured; a fixed suffix may carry leading zeros
    (`SOUR01`), as the parser reads it; a trailing `*` takes every header below this
    one as well. Headers are matched with their leading `:`.
    """
    subtree = spelling.endswith("*")
    spelling = spelling.rstrip("*")
    out, i = [], 0
    while i < len(spelling):
        char = spelling[i]
        if char == "[":
            out.append("(?:")
        elif char == "]":
            out.append(")?")
        elif spelling.startswith("{n}", i) or spelling.startswith("{m}", i):
            out.append(rf"(?P<{spelling[i + 1]}>\d*)")
            i += 3
            continue
        elif char.isdigit():
            out.append(f"0*{char}")           # a suffix may be written with leading zeros
        elif char.isalpha():
            j = i
            while j < len(spelling) and spelling[j].isalpha():
                j += 1
            word = spelling[i:j]
            short = "".join(c for c in word if c.isupper())
            rest = word[len(short):]
            out.append(f"{re.escape(short)}(?:{re.escape(rest.upper())})?" if rest else re.escape(short))
            i = j
            continue
        else:
            out.append(re.escape(char))
        i += 1
    pattern = "".join(out)
    if spelling[0].isalpha():
        pattern = r"\:" + pattern        # a bare spelling (`SETP`) is a root header
    if subtree:
        pattern += r"(?::[A-Z0-9_]+)*"
    return re.compile(pattern, re.IGNORECASE)


@dataclass
class Admission:
    """What one unit does to the commanded state, found while checking it."""

    state: dict[Any, Any]
    unit: ProgramUnit
    channel: int


#: A rule's check: reads the unit, raises EnvelopeError to refuse it, updates `state` (a copy).
Check = Callable[[Admission], None]


@dataclass
class Rule:
    spelling: str
    check: Check
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        self.pattern = header_pattern(self.spelling)


@dataclass
class Learner:
    """What a query's reply tells of a state the guard does not know yet (`learn(state, reply)`),
    e.g. the source level a new session finds. Only unknown state is learnt: what the guard
    commanded itself stays authoritative."""

    spelling: str
    learn: Callable[[dict[Any, Any], str], None]
    #: Which queries of that header it learns from, by their arguments (`INTYPE? A`, not `INTYPE? B`).
    asks: Callable[[tuple[str, ...]], bool] = lambda arguments: True
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        self.pattern = header_pattern(self.spelling)


class _Possibly:
    """An on/off setting an unfinished exchange left unknown. True in a condition (a rise is
    checked as with the output on) but not `True`: switching it on is checked as from off."""

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return "POSSIBLY"

    def __copy__(self) -> _Possibly:
        return self

    def __deepcopy__(self, memo: dict) -> _Possibly:
        return self


POSSIBLY = _Possibly()


def unknown(state: dict[Any, Any], key: Any) -> bool:
    """Whether the guard's `state` does not know `key`: never recorded, set aside, or POSSIBLY."""
    return state.get(key, POSSIBLY) is POSSIBLY


class WriteGuard:
    """The envelope check at the bottom of one driver's write path, and what it last commanded."""

    def __init__(self, who: Callable[[], str], rules: Iterable[Rule] = (), learners: Iterable[Learner] = ()) -> None:
        self._who = who
        self.rules = tuple(rules)
        self.learners = list(learners)
        self.state: dict[Any, Any] = {}
        self._rule_of: dict[str, tuple[Rule, int | None] | None] = {}   # header -> `_rule_for`
        # learner spelling -> its last reply since the state last changed: a reply teaches the
        # guard only when the one before it said the same (a garbled reply, a bit flipped on the
        # line, would have to be garbled alike twice)
        self._heard: dict[str, str] = {}

    def admit(self, message: str) -> dict[Any, Any]:
        """Check `message`; returns the state it would leave (commit it once it was sent): the
        guard's own when no unit has a rule (a query, most settings), else a changed copy."""
        return self.admit_changes(message)[0]

    def admit_changes(self, message: str) -> tuple[dict[Any, Any], frozenset[Any]]:
        """`admit`, and the keys of the state some unit of `message` changes, the final state
        aside: a message that sets a level and writes the old one back (`LOW 0.2;…;LOW 1.0`)
        leaves the state as it was, yet an instrument that ran only its first part holds the
        new level."""
        units = program_units(message)
        ruled = [(unit, self._rule_for(unit.header)) for unit in units if not unit.is_query]
        ruled = [(unit, found) for unit, found in ruled if found is not None]
        state = None                            # copied at the first unit with a rule
        touched: set[Any] = set()
        for unit, (rule, suffix) in ruled:
            try:
                if suffix is None:
                    raise EnvelopeError(f"refused: {unit.header} names two channels (its suffixes differ); "
                                        "nothing was written")
                if state is None:
                    state = copy_state(self.state)   # a refused message leaves no trace
                before = copy_state(state) if len(ruled) > 1 else None
                rule.check(Admission(state, unit, suffix))
                if before is not None:
                    touched.update(key for key in before.keys() | state.keys() if before.get(key) != state.get(key))
            except EnvelopeError as error:
                raise EnvelopeError(f"{self._who()}: {error} (in {unit.text[:120]!r})") from None
        if state is None:
            return self.state, frozenset()
        touched.update(key for key in self.state.keys() | state.keys() if self.state.get(key) != state.get(key))
        return state, frozenset(touched)

    def _rule_for(self, header: str) -> tuple[Rule, int | None] | None:
        """The first rule whose spelling matches `header`, with the channel its suffixes name (1 if
        none; None if two name different ones: `:SOUR2:VOLT1:HIGH`, which an instrument may read
        as either)."""
        if header not in self._rule_of:
            found = None
            for rule in self.rules:
                match = rule.pattern.fullmatch(header)
                if match is not None:
                    groups = match.groupdict()
                    named = {int(suffix) for suffix in (groups.get("n"), groups.get("m")) if suffix}
                    found = rule, (named.pop() if len(named) == 1 else None) if named else 1
                    break
            self._rule_of[header] = found
        return self._rule_of[header]

    def commit(self, state: dict[Any, Any]) -> None:
        if state is not self.state:
            self._heard.clear()          # a reply from before may not hold after a write
        self.state = state

    def commit_uncertain(self, state: dict[Any, Any], touched: Iterable[Any] = ()) -> None:
        """After an exchange that did not complete, the instrument may have the old state or the
        new, or what a unit of the message left on the way (`touched`: keys some unit changed):
        what differs becomes unknown, and an output that may be on is POSSIBLY on."""
        touched = set(touched)
        merged = {}
        for key in self.state.keys() | state.keys() | touched:
            old, new = self.state.get(key), state.get(key)
            if old == new and key not in touched:
                merged[key] = old
            elif isinstance(old, (bool, _Possibly)) or isinstance(new, (bool, _Possibly)):
                merged[key] = POSSIBLY
        self.state = merged
        self._heard.clear()

    def learn(self, message: str, reply: str) -> None:
        """Teach the learners of a one-query message's header its reply, if the reply to that
        header before it (with the state unchanged since) was the same."""
        units = program_units(message)
        if len(units) != 1 or not units[0].is_query:
            return
        for learner in self.learners:
            if learner.pattern.fullmatch(units[0].header[:-1]) and learner.asks(units[0].arguments):
                heard = reply.strip()
                if self._heard.get(learner.spelling) == heard:
                    learner.learn(self.state, heard)
                self._heard[learner.spelling] = heard
                return

    def commanded(self, key: Any) -> Any:
        return self.state.get(key)


_IMMUTABLE = (bool, int, float, complex, str, bytes, type(None))


def copy_state(value: Any) -> Any:
    """A deep copy of a guard's state: its nested dicts copied, numbers, strings and tuples of
    them shared (they cannot change), anything else deep-copied (copy.deepcopy, 5x slower on
    these trees, was 0.3 s of a strength-duration run)."""
    if type(value) is dict:
        return {key: copy_state(item) for key, item in value.items()}
    if isinstance(value, _IMMUTABLE) or (type(value) is tuple and all(isinstance(x, _IMMUTABLE) for x in value)):
        return value
    return copy.deepcopy(value)


# --- reading arguments -----------------------------------------------------------------------

def number(admission: Admission, index: int, what: str, unit: str) -> float:
    """Argument `index` as a finite plain decimal number, or refuse the unit."""
    arguments = admission.unit.arguments
    text = arguments[index] if index < len(arguments) else ""
    if not _DECIMAL.fullmatch(text):
        raise EnvelopeError(f"refused: {what} {text[:40]!r} is not a plain decimal number, so it cannot be "
                            "checked against the envelope; nothing was written")
    value = float(text)
    if not math.isfinite(value):
        raise EnvelopeError(f"refused: {what} {text[:40]!r} {unit} is not finite; nothing was written")
    return value


def whole_number(admission: Admission, index: int, what: str) -> int:
    """Argument `index` as a whole number (an instrument rounds 1.5 as it likes: to 2, where
    truncating it gives 1), or refuse the unit."""
    value = number(admission, index, what, "")
    if not value.is_integer():
        raise EnvelopeError(f"refused: {what} {value:g} is not a whole number; nothing was written")
    return int(value)


def numbers(admission: Admission, what: str, unit: str) -> list[float]:
    return [number(admission, k, what, unit) for k in range(len(admission.unit.arguments))]


def switch(admission: Admission, index: int = 0) -> bool:
    """An ON/OFF (1/0) argument."""
    arguments = admission.unit.arguments
    text = (arguments[index] if index < len(arguments) else "").upper()
    if text in ("ON", "1"):
        return True
    if text in ("OFF", "0"):
        return False
    raise EnvelopeError(f"refused: output state {text[:20]!r} is neither ON nor OFF; nothing was written")


def refuse(reason: str) -> Check:
    """A rule for a command whose effect on the levels the guard cannot know."""
    def check(admission: Admission) -> None:
        raise EnvelopeError(f"refused: {reason}; nothing was written")
    return check


def only(values: tuple[str, ...], effect: str) -> Check:
    """A rule for a command whose first argument may only be one of `values` (upper case): any
    other `effect`s what the guard follows."""
    def check(admission: Admission) -> None:
        value = (admission.unit.arguments or ("",))[0].strip().upper()
        if value not in values:
            raise EnvelopeError(f"refused: {admission.unit.header} {value[:12]!r} {effect} (allowed: "
                                f"{', '.join(values)}); nothing was written")
    return check


def forget(*keys: Any) -> Check:
    """A rule for a command after which the instrument's levels are no longer known (*RST)."""
    def check(admission: Admission) -> None:
        for key in list(admission.state):
            if key in keys or (isinstance(key, tuple) and key[0] in keys):
                del admission.state[key]
    return check


#: Commands that load settings the guard never saw, on every SCPI instrument.
STORED_SETUP_RULES = (
    Rule("*RCL", refuse("recalling a stored setup could apply levels outside the envelope")),
    Rule("[:SYSTem]:SETup", refuse("loading a setup could apply levels outside the envelope")),
    Rule(":MMEMory:LOAD:STATe", refuse("loading a stored state could apply levels outside the envelope")),
)
