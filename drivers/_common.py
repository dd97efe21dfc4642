"""Shared driver plumbing: the envelope guard on every write, resynchronisation after an
interrupted exchange, bounded reconnects after transport faults, SCPI error draining.

Every driver mixes `RecoveringVisa` in front of its QCoDeS base class. All traffic goes
through `exchange` (from `write_raw` / `ask_raw`, and the scopes' binary reads), so one place
decides three things:

- what may be sent: the message goes through the driver's `WriteGuard` (`drivers/_write_guard`)
  first, and a level outside the envelope is refused before a byte is written, whatever
  asked for it (a role verb, a stock parameter, a ramp step, a reconnect's re-applied
  settings, a safe-state sequence);
- whether a reply can be trusted: an exchange that did not complete (a signal, a timeout or a
  malformed block in the middle of it) leaves the session unsynchronised — its reply may still
  be on the way and would be taken as the answer to the next query — so the next exchange
  first clears the device and reconnects, and checks `*IDN?` answers like an `*IDN?` (a raw
  socket has no device clear: the old session is first asked `*IDN?` and read up to its
  answer, so what the interrupted exchange wrote has run before the new session's commands);
- whether the instrument did what the guard let through: a message that changes what the guard
  follows (a level, an output, a list sweep) may have been refused by the instrument, in part or
  in all, leaving its old settings, so the error queue is read after it; an error (or an entry
  garbled on the way) leaves what the message changed unknown to the guard, as after an
  interrupted exchange, until a query reads it back; the errors are kept for the role verb's
  own check;
- what a timeout or a dropped link means: close the VISA resource, reopen it with exponential
  backoff (bounded attempts), check `*IDN?`, set aside what the guard recorded (the instrument
  may have been power-cycled: an output counts as on, every level as unknown), re-apply the
  last role settings, then check the operation's message again and retry it once. If that
  fails the caller gets an `InstrumentConnectionError` naming the instrument, its address and
  what failed; never a hang, because every read has the VISA
  timeout (`timeout_s`, seconds; pyvisa itself counts ms).
"""

from __future__ import annotations

import functools
import gc
import logging
import socket
import struct
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pyvisa
from pyvisa import constants

from drivers._write_guard import STORED_SETUP_RULES, Learner, Rule, WriteGuard
from contracts.envelope import EnvelopeError
from contracts.error_text import error_text
from contracts.files.addresses import normalise_address

log = logging.getLogger(__name__)
T = TypeVar("T")

#: VISA status codes that mean "the link, not the command, failed": worth a reconnect.
_TRANSPORT_CODES = frozenset({
    constants.StatusCode.error_timeout,
    constants.StatusCode.error_connection_lost,
    constants.StatusCode.error_io,
    constants.StatusCode.error_invalid_object,
    constants.StatusCode.error_resource_not_found,
})


class InstrumentConnectionError(ConnectionError):
    """An instrument stopped answering and could not be reached again."""


class InstrumentError(RuntimeError):
    """The instrument reported errors (its SCPI error queue) after a role verb."""


#: Reads of a state the guard must learn before giving up on two alike in a row.
AGREED_READS_MAX = 4

#: `*IDN?` asked at most this often on an old session before a reopen (_let_old_session_finish).
OLD_SESSION_ASKS_MAX = 4

#: Why the link is out of step (`_unsynced`): an exchange that did not complete, a reply that did
#: not parse (the link answered).
INTERRUPTED_EXCHANGE = "the previous exchange was interrupted"
GARBLED_REPLY = "the previous reply was garbled"

#: Times a safe state writes its switch-off (and reads the report after it) while that report
#: is lost or garbled on the way, before it says the instrument may not be safe.
SAFE_STATE_ATTEMPTS = 4
#: Passes a role verb's settings get (`write_whole`): the first, then one more after each pass on
#: which a link was lost or a report arrived garbled, the last one whatever it met.
WHOLE_WRITE_PASSES = 3


class MalformedReplyError(InstrumentError):
    """An instrument's reply could not be read as what the query returns, twice in a row."""


#: The module of pyvisa-py's HiSLIP client (path's last parts). Where the server closes the
#: connection it raises a plain RuntimeError ("Connection was dropped by server."), as it does
#: where the stream has lost its framing (a header without its "HS" prologue, a message of an
#: unknown or unexpected type): either way the session is broken and only a new one goes on.
_HISLIP_CLIENT = ("pyvisa_py", "protocols", "hislip.py")


def is_transport_failure(exc: BaseException) -> bool:
    if isinstance(exc, pyvisa.VisaIOError):
        return exc.error_code in _TRANSPORT_CODES
    if isinstance(exc, RuntimeError) and _raised_in_hislip_client(exc):
        return True
    return isinstance(exc, (OSError, pyvisa.InvalidSession))


def _raised_in_hislip_client(exc: BaseException) -> bool:
    """Whether `exc` was raised inside pyvisa-py's HiSLIP client (told by where, not by its
    message, whose wording is pyvisa-py's to change)."""
    innermost = exc.__traceback__
    if innermost is None:
        return False
    while innermost.tb_next is not None:
        innermost = innermost.tb_next
    return tuple(innermost.tb_frame.f_code.co_filename.replace("\\", "/").split("/")[-3:]) == _HISLIP_CLIENT


#: Guards the creation of each driver's exchange lock.
_LOCKS_MADE = threading.Lock()


class RecoveringVisa:
    """Mixin for `VisaInstrument` subclasses (put it first in the bases).

    Subclasses override `reapply_role_settings()` to restore what the role verbs set last
    (the instrument may have been power-cycled while the link was down).
    """

    #: Reconnect attempts after the first failure, and the first backoff (doubles each time).
    reconnect_attempts: int = 3
    reconnect_backoff_s: float = 0.05
    #: Reads of one reply before a reply that does not parse is reported (a garbled line).
    parse_attempts: int = 2

    #: Counts the links re-established with the settings written again: anything the
    #: instrument held for us (an armed acquisition, a record) may be gone once it changes.
    link_generation: int = 0

    _recovering: bool = False
    _making_safe: bool = False
    #: The VISA timeout last read from the session: what a reopen gives the new one when the
    #: old one, closed, has none to read.
    _timeout_ms: float = 5000.0
    _open_spec: tuple[str, str | None] | None = None
    #: Why the link is out of step ("" when it is not), set from the moment an exchange starts
    #: until it completes: if it never completes, its reply may still arrive and must not be
    #: read as the reply to anything else. Also set by a garbled reply and a partial reconnect.
    _unsynced: str = ""
    #: Times the session was cleared and reopened because the link was out of step (_unsynced).
    resynchronisations: int = 0
    #: Times the link was reopened (a resynchronisation or a reconnect after a transport fault).
    reconnects: int = 0
    #: Reconnects after a failed link, which set aside what the write guard had recorded and heard
    #: (a resynchronisation's bare reopen keeps both).
    links_lost: int = 0
    #: Error-queue entries that arrived garbled (each lost: reading consumed it), so a message
    #: they reported on may or may not have been run.
    reports_garbled: int = 0
    #: A failed link's role settings not yet written again (`_set_aside_after_link_loss`).
    _link_lost_pending: bool = False
    #: A failed link's record in the guard not yet set aside: stored the moment the failure is
    #: known, cleared once the record is set aside (`write_guard`, at its next use if a stop
    #: signal cut that short: a stop as the record was being set aside left it standing for good).
    _record_stale: bool = False
    #: A resynchronisation's reopen is under way (bare unless the link failed).
    _resynchronising: bool = False
    _write_guard: WriteGuard | None = None
    #: The commands gathered instead of sent (`gathered_message`), None when writes go out.
    _gathered: list[str] | None = None
    #: Writes held for the next program message (`write_in_messages`), None when not holding.
    _held: list[str] | None = None
    _safety_notes: list[str] | None = None

    @property
    def safety_notes(self) -> list[str]:
        """What the driver met and did about it on the way (a reading that disagreed with the
        level last commanded, an error-queue entry lost to line noise): said in the run's message."""
        if self._safety_notes is None:
            self._safety_notes = []
        return self._safety_notes

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # While a driver makes itself safe, a reconnect only reopens the link: re-applying the
        # last role settings first (as for any other verb) can need more replies than a failing
        # link gives, and then the output would stay on.
        super().__init_subclass__(**kwargs)
        safe_state = getattr(cls, "safe_state", None)
        if safe_state is None or getattr(safe_state, "_reconnects_bare", False):
            return

        @functools.wraps(safe_state)
        def safe_state_with_bare_reconnects(self, *args: Any, **kw: Any) -> Any:
            previous, self._making_safe = self._making_safe, True
            # Errors read after an earlier verb's writes that it never reported (it ended on a
            # refusal first) are said with the run, not as the safe state's failure.
            held, self._held_errors = self._held_errors, None
            if held:
                self.safety_notes.append(f"{self.name}: before its safe state the instrument had reported "
                                         f"{'; '.join(held)}")
            try:
                return safe_state(self, *args, **kw)
            finally:
                self._making_safe = previous

        safe_state_with_bare_reconnects._reconnects_bare = True  # type: ignore[attr-defined]
        cls.safe_state = safe_state_with_bare_reconnects  # type: ignore[attr-defined]

    @classmethod
    def record_instance(cls, instance: Any) -> None:
        """QCoDeS calls this once the driver's __init__ has completed: every parameter is there."""
        super().record_instance(instance)  # type: ignore[misc]
        instance._read_malformed_parameter_replies_again()

    def _read_malformed_parameter_replies_again(self) -> None:
        """Every parameter that is a plain query (a QCoDeS get_cmd string, the stock drivers' as
        ours) reads a reply its parser or value mapping cannot take as a reply that does not
        parse (read_parsed): read again after a resynchronisation, then MalformedReplyError,
        instead of the parser's own ValueError or KeyError ending the verb at the first garbled
        line."""
        from qcodes.parameters.command import Command

        seen: set[int] = set()
        pending: list[Any] = [self]
        while pending:
            node = pending.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            pending.extend(getattr(node, "submodules", {}).values())
            pending.extend(node if isinstance(node, Sequence) and not isinstance(node, str) else ())  # channel lists
            for parameter in getattr(node, "parameters", {}).values():
                query = getattr(parameter, "get_raw", None)
                # a query string, not a function (a stock sweep's or measurement's get runs more
                # than one exchange: reading it again would do all of them again)
                plain_query = isinstance(query, Command) and isinstance(getattr(query, "cmd_str", None), str)
                if plain_query and id(parameter) not in seen:
                    seen.add(id(parameter))
                    parameter.get = self._parsed_get(parameter.full_name, parameter.get)
                # A group's parameters (a Lake Shore's `RAMP? 1`) are read together by the
                # group's update, one query parsed into each.
                group = getattr(parameter, "group", None)
                if isinstance(getattr(group, "_get_cmd", None), str) and id(group) not in seen:
                    seen.add(id(group))
                    owner = getattr(parameter.instrument, "full_name", self.name)
                    group.update = self._parsed_get(f"{owner} group ({', '.join(group.parameters)})", group.update)

    def _parsed_get(self, name: str, get: Callable[[], T]) -> Callable[[], T]:
        what = f"{name}'s query"

        def read() -> T:
            try:
                return get()
            except KeyError as exc:          # an enumerated reply outside the value mapping
                raise ValueError(f"a reply outside its values ({exc.args[0] if exc.args else exc})") from exc

        @functools.wraps(get)
        def parsed_get() -> T:
            return self.read_parsed(what, read)

        return parsed_get

    def remember_address(self, address: str, visalib: str | None) -> None:
        """Called by each driver's __init__ with what it was opened with."""
        self._open_spec = (address, visalib)
        _say_when_the_peer_closes(self.visa_handle)  # type: ignore[attr-defined]
        self._last_timeout_ms()

    # --- what may be written -----------------------------------------------------------------
    def write_rules(self) -> list[Rule]:
        """The model's rules for headers that set levels (see drivers/_write_guard)."""
        return []

    def reply_learners(self) -> list[Learner]:
        """What the guard may learn from replies about state it does not know (see Learner)."""
        return []

    @property
    def write_guard(self) -> WriteGuard:
        if self._write_guard is None:
            self._write_guard = WriteGuard(self._who, [*self.write_rules(), *STORED_SETUP_RULES],
                                           self.reply_learners())
        if self._record_stale:
            self._write_guard.commit_uncertain({})
            self._record_stale = False
        return self._write_guard

    # --- the choke point of all traffic -------------------------------------------------------
    def write_raw(self, cmd: str) -> None:
        with self.exchange_lock:
            if self._gathered is not None:
                self._gathered.append(cmd)
                return
            if self._held is not None:
                self._held.append(cmd)
                return
            self.exchange(f"write {cmd!r}", cmd, lambda: super(RecoveringVisa, self).write_raw(cmd))

    def ask_raw(self, cmd: str) -> str:
        with self.exchange_lock:
            if self._gathered is not None:
                raise RuntimeError(f"{self._who()}: query {cmd!r} while writes are gathered into one message")
            return self.exchange(f"query {cmd!r}", cmd, lambda: super(RecoveringVisa, self).ask_raw(cmd))

    def write_in_messages(self, write: Callable[[], T]) -> T:
        """`write()`, its writes held and sent as one program message (`one_message`) before the
        next exchange and when it returns: the instrument gets the same units in the same order,
        each query after the writes before it, and the guard checks them in that order, as it
        would separate writes; a configuration of ~20 settings takes a few exchanges instead of
        one each (over VXI-11 or GPIB, where a write is acknowledged, ~20 round trips), and one
        error-queue read after each message instead of one after every write the guard follows.
        What is held when an exception leaves `write` is not sent. A call inside (a reconnect's
        re-applied settings) holds its own writes. Not a context manager: a stop signal handled
        as a generator-based one exits would leave it suspended, the writes held and the lock
        taken, for as long as the exception's traceback lives (in the handler that makes the
        instrument safe)."""
        with self.exchange_lock:
            outer = self._held
            try:       # set inside: an interrupt at any point cannot leave writes held
                self._held = []
                result = write()
                self._send_held()
                return result
            finally:
                self._held = outer

    def write_whole(self, write: Callable[[], None], *, unconfirmed_at_once: bool = False) -> None:
        """`write` (a role verb's settings), once more (`write_again_unconfirmed`) if a link was
        lost on the way or a report on one of its messages arrived garbled, up to
        WHOLE_WRITE_PASSES passes in all. After a lost link the reconnect re-applied the role
        settings, but the front panel may have changed what was written before the loss, and the
        message whose report was lost is unknown to the guard; after a garbled report the guard
        cannot know the message was run. Either way what needs its settings, an output switched
        on, would be refused as if they had never been written. So a pass refused after such a
        fault on it is not the verb's end either: what the guard knew was lost on the way (the
        switch-off before a second pass, its report garbled, left the output possibly on), and
        the next pass writes it again. A refusal on a pass without a fault is the verb's.
        `unconfirmed_at_once`: the first pass too is written as a second one is, where an earlier
        verb's fault left the guard's record short of what these settings need."""
        intent = self.unconfirmed_write_intent()
        for passes in range(1, WHOLE_WRITE_PASSES + 1):
            faults = self.links_lost, self.reports_garbled
            try:
                if passes == 1 and not unconfirmed_at_once:
                    write()
                else:
                    self.write_again_unconfirmed(write, intent)
            except EnvelopeError:
                if passes == WHOLE_WRITE_PASSES or (self.links_lost, self.reports_garbled) == faults:
                    raise
                continue
            if (self.links_lost, self.reports_garbled) == faults:
                return

    def write_role_setting(self, attribute: str, value: Any, write: Callable[[], None], *,
                           unconfirmed_at_once: bool = False) -> None:
        """`write_whole(write)` of a role setting that a reconnect re-applies (`reapply_role_settings`),
        recorded in `attribute` first: a link lost on the way re-applies the setting asked for,
        not the one before, which would otherwise stand while the verb returned. The one before
        is recorded again if the write fails (refused, or a reply that stays garbled): the
        caller was told the setting failed, and a later reconnect wrote it all the same."""
        previous = getattr(self, attribute)
        setattr(self, attribute, value)
        try:
            self.write_whole(write, unconfirmed_at_once=unconfirmed_at_once)
        except BaseException:
            setattr(self, attribute, previous)
            raise

    def unconfirmed_write_intent(self) -> Any:
        """What a role keeps from before `write_whole`'s first pass for `write_again_unconfirmed`
        (a generator: whether its output was on, which a pass refused leaves off)."""
        return None

    def write_again_unconfirmed(self, write: Callable[[], None], intent: Any) -> None:
        """`write` again after a report on it was lost or arrived garbled; a role whose guard
        cannot admit the same settings again while it does not know what the first pass did
        overrides it (`intent`: `unconfirmed_write_intent` before the first pass)."""
        write()

    def _send_held(self) -> None:
        if self._held:
            message = one_message(self._held)
            self._held.clear()
            self.exchange(f"write {message!r}", message, lambda: super(RecoveringVisa, self).write_raw(message))

    def gathered_message(self, write: Callable[[], None]) -> str:
        """What `write` (a driver's own verbs, through its parameters) writes, as one program
        message (`one_message`), not sent: each unit written once, where it is declared. Inside,
        a query is refused (its reply would be needed at once), and another thread's write waits
        for the exchange lock, held throughout, rather than joining the message."""
        with self.exchange_lock:
            try:       # set inside: an interrupt at any point cannot leave later writes gathered
                self._gathered = gathered = []
                write()
                return one_message(gathered)
            finally:
                self._gathered = None

    @property
    def exchange_lock(self) -> threading.RLock:
        """Held from a message's check to its commit: two threads sharing a driver would
        otherwise both be checked against the same level (two steps each within the ramp
        limit, from one level, make one twice as large); re-entered by a reconnect's writes."""
        lock = self.__dict__.get("_exchange_lock")
        if lock is None:
            with _LOCKS_MADE:
                lock = self.__dict__.setdefault("_exchange_lock", threading.RLock())
        return lock

    def exchange(self, what: str, message: str, operation: Callable[[], T]) -> T:
        """Send `message` (and read its reply) through `operation`: the envelope guard first,
        then a resynchronisation if the last exchange was cut short, then the exchange itself
        with the reconnect policy of `guarded`; one message at a time (`exchange_lock`)."""
        with self.exchange_lock:
            self._send_held()
            # What the exchange writes itself (a reconnect's re-applied settings, its switch-off
            # first) goes out at once, in its order, not held behind the message.
            held, self._held = self._held, None
            try:
                return self._exchange(what, message, operation)
            finally:
                self._held = held

    def _exchange(self, what: str, message: str, operation: Callable[[], T]) -> T:
        # raises before a byte is written; `touched`: what some unit changes, written back or not
        if self._link_lost_pending and not self._recovering and not self._making_safe:
            # A failed link's reconnect never completed (interrupted, or every attempt failed):
            # completed first, its role settings written again onto the record it set aside.
            if self._unsynced:
                self._resynchronise(what)
            else:
                self._reapply_after_link_loss()
        admitted, touched = self.write_guard.admit_changes(message)
        if self._unsynced and not self._recovering:
            self._resynchronise(what)
            # Admitted again against what the guard holds now, at this moment: a level stamped
            # before a slow resynchronisation was credited with time it did not hold.
            admitted, touched = self.write_guard.admit_changes(message)

        self._doubt_until_done(admitted, touched)

        def attempt() -> T:
            self._unsynced = INTERRUPTED_EXCHANGE
            result = operation()
            self._unsynced = ""
            return result

        def admit_again() -> None:
            # The link failed and was reopened, which set aside what the guard had recorded (the
            # instrument may have been reset) and wrote the role settings again: the message is
            # sent again only if it passes against that state, and commits onto it.
            nonlocal admitted, touched
            admitted, touched = self.write_guard.admit_changes(message)
            self._doubt_until_done(admitted, touched)

        try:
            result = self.guarded(what, attempt, before_retry=admit_again)
        except BaseException:
            self.write_guard.commit_uncertain(admitted, touched)   # the bytes may have been executed
            raise
        # A message that writes a setting back (`LOW 0.2;...;LOW 1.0`) changes it too: an
        # instrument that ran only its first part holds the new value.
        if touched and not self._report_read_clean(what, admitted, touched):
            return result
        self.write_guard.commit(admitted)
        if isinstance(result, str):
            self.write_guard.learn(message, result)
        return result

    def _doubt_until_done(self, admitted: dict[Any, Any], touched: frozenset[Any]) -> None:
        """Before a message's bytes leave, what it changes is taken as uncertain, as after an
        exchange that did not complete (`commit_uncertain`); `commit` makes it known once the
        exchange and its report are through. A stop signal anywhere in between (in the exchange,
        reading the report, as the commit starts) leaves the guard doubting, never holding the
        state from before a message the instrument ran (holding it, the guard admitted an offset
        that shifted the levels it believed, and put a generator past its envelope)."""
        if touched or admitted is not self.write_guard.state:
            self.write_guard.commit_uncertain(admitted, touched)

    def _report_read_clean(self, what: str, admitted: dict[Any, Any], touched: frozenset[Any]) -> bool:
        """Whether the instrument's report after `what` (refusals_after_write) read clean, so the
        guard may take the state it admitted as the instrument's. Otherwise what the message
        changes becomes unknown: the instrument may have refused it in part or in all and kept its
        old settings, or the report could not be read. Unless the link was lost as the report was
        read: the reconnect set the record aside (nothing sent on the old link is taken as known)
        and wrote the role settings again after the message went out, so the record is newer than
        the admission, which would take back what was written since (a width re-applied, then
        refused as "never set")."""
        links_lost = self.links_lost
        try:
            refused = self.refusals_after_write()
        except BaseException:
            if self.links_lost == links_lost:
                self.write_guard.commit_uncertain(admitted, touched)
            raise
        if refused:
            log.warning("%s: after %s the instrument reported %s; what it changed is taken as "
                        "unknown until read back", self._who(), what, "; ".join(refused))
            if self.links_lost == links_lost:
                self.write_guard.commit_uncertain(admitted, touched)
        return not refused

    def _resynchronise(self, what: str) -> None:
        """Device clear and a fresh session, with no settings re-applied: the instrument kept
        them; only the link's unread reply (or half-written command) is thrown away."""
        log.warning("%s: %s, so what the link holds cannot be trusted; "
                    "clearing the device and reconnecting before %s", self._who(), self._unsynced, what)
        self.resynchronisations += 1
        previous, self._resynchronising = self._resynchronising, True
        try:
            self._reconnect(f"resynchronising before {what}", None)
        finally:
            self._resynchronising = previous

    def guarded(self, what: str, operation: Callable[[], T], before_retry: Callable[[], None] | None = None) -> T:
        """Run `operation`; on a transport failure reconnect and run it once more (after
        `before_retry`, which may refuse it)."""
        try:
            return operation()
        except Exception as exc:
            # Stores before any call (where a stop signal's handler runs): the failure counts as
            # the link's until it is known not to be. A stop as `is_transport_failure` was
            # entered once left a failed link unknown, and a bare reopen kept the record.
            stale, pending = self._record_stale, self._link_lost_pending
            self._record_stale = self._link_lost_pending = True
            if self._recovering or self._open_spec is None or not is_transport_failure(exc):
                self._record_stale, self._link_lost_pending = stale, pending
                raise
            first_error = exc
        self._reconnect(what, first_error)
        if before_retry is not None:
            before_retry()
        try:
            return operation()
        except Exception as exc:
            if not is_transport_failure(exc):
                raise
            # The link answers *IDN? but not this: most likely a command the instrument refused.
            reported = self._errors_after_failure()
            if reported:
                raise InstrumentError(f"{self._who()}: {what} got no reply although the instrument answers "
                                      f"*IDN?; it reported {'; '.join(reported)}") from exc
            raise self._connection_error(what, f"it failed again after reconnecting: {error_text(exc)}") from exc

    def read_parsed(self, what: str, read: Callable[[], T], *, repeatable: bool = True) -> T:
        """`read()` (a query and its parsing); a reply that does not parse (ValueError,
        IndexError) is read again, up to parse_attempts in all, then MalformedReplyError names
        the instrument, what was read and why. A read that consumes what it reports (an error
        queue entry, an event register) is not `repeatable`: the first malformed reply is final."""
        attempts = self.parse_attempts if repeatable else 1
        for attempt in range(1, attempts + 1):
            try:
                return read()
            except EnvelopeError:
                raise       # writes held for the query's message refused: no reply was asked for
            except (ValueError, IndexError) as exc:
                # A reply that does not parse may be half of one split by a stray line feed:
                # the rest would answer the next query. Resynchronise before reading again.
                self._unsynced = GARBLED_REPLY
                if attempt == attempts:
                    raise MalformedReplyError(f"{self._who()}: {what} gave a malformed reply"
                                              f"{f' {attempts} times in a row' if attempts > 1 else ''}: "
                                              f"{error_text(exc)}") from exc
                log.warning("%s: %s gave a malformed reply (%s); reading it again", self._who(), what, exc)
        raise AssertionError("unreachable")

    def ask_parsed(self, query: str, parse: Callable[[str], T], *, repeatable: bool = True) -> T:
        """A query whose reply `parse` turns into a value; see read_parsed."""
        return self.read_parsed(f"query {query!r}", lambda: parse(self.ask(query)),  # type: ignore[attr-defined]
                                repeatable=repeatable)

    def ask_numbers(self, queries: Sequence[str]) -> tuple[float, ...]:
        """Queries answered with a number each, asked as one compound query (IEEE 488.2: one
        message, the answers joined by ';' in one reply): one exchange, not one each."""
        return self.ask_parsed(";".join(queries),
                               lambda reply: tuple(float(answer) for answer in reply_units(reply, len(queries))))

    def ask_agreed(self, query: str, parse: Callable[[str], T], *, reads_max: int = AGREED_READS_MAX,
                   for_the_guard: bool = False) -> T:
        """`query` asked until two replies in a row agree, as the write guard needs before it
        learns a state it does not know from them (WriteGuard.learn); MalformedReplyError when
        no two of `reads_max` do. Two replies with the link reopened between them are not in a
        row: a reconnect after a failed link sets aside what the guard heard (a lost reply once left
        the 2450's level unknown after two alike, and its ramp down was refused); a
        resynchronisation's bare reopen (after a garbled reply) does not, unless the reply is read
        `for_the_guard` to learn: it heard the garbled line between the two (a Lake Shore's
        setpoint read back garbled at its second read agreed here, and closing the loop was refused)."""
        def row() -> tuple[int, int]:
            return self.links_lost, self.resynchronisations if for_the_guard else 0

        previous, before = self.ask_parsed(query, parse), row()
        for _ in range(reads_max - 1):
            value = self.ask_parsed(query, parse)
            if value == previous and row() == before:
                return value
            previous, before = value, row()
        raise MalformedReplyError(f"{self._who()}: {reads_max} replies to {query!r}, no two in a row alike")

    # --- recovery ---------------------------------------------------------------------------
    def reapply_role_settings(self) -> None:
        """Write the last role settings again after a reconnect (default: none)."""

    def _reconnect(self, what: str, cause: BaseException | None) -> None:
        assert self._open_spec is not None
        # A resynchronisation takes the link as lost until it has shown it kept and the new
        # session has answered: stores first, where no stop signal's handler runs, so that a stop
        # hiding a failure on the way (as pyvisa raised a timeout, or as the loss was being set
        # aside) leaves the record set aside, not standing.
        suspected = cause is None and not self._link_lost_pending
        stale_before = self._record_stale
        if suspected:
            self._record_stale = self._link_lost_pending = True
        address, visalib = self._open_spec
        timeout_ms = self._last_timeout_ms()
        backoff_s = self.reconnect_backoff_s
        last: BaseException | None = cause
        if cause is not None:
            log.warning("%s: %s failed (%s); reconnecting", self._who(), what, cause)
            self._set_aside_after_link_loss()
        handle: Any = self.visa_handle  # type: ignore[attr-defined]
        if _is_raw_socket(handle):
            kept = self._let_old_session_finish(handle)
        else:
            # No old session is asked here (VXI-11, HiSLIP: a device clear ends what it held):
            # only a reply that arrived garbled shows the link was live.
            kept = self._unsynced == GARBLED_REPLY
        counted = not suspected
        if not kept and not counted:
            self._set_aside_after_link_loss()
            counted = True
        self._recovering = True
        try:
            for attempt in range(1, self.reconnect_attempts + 1):
                try:
                    self._reopen(address, visalib, timeout_ms, link_failed=last is not None)
                    self.reconnects += 1
                    if not counted:             # shown kept, and the new session answered
                        self._record_stale, self._link_lost_pending = stale_before, False
                    # Settings written again end what the instrument held for us (an armed
                    # acquisition); a bare reopen (safe state, a resync) leaves it be, unless the
                    # link failed (before, or in this resync): the settings go out again then.
                    if not self._making_safe and (self._link_lost_pending or not self._resynchronising):
                        self._reapply_after_link_loss(always=True)
                    log.warning("%s: reconnected on attempt %d", self._who(), attempt)
                    return
                except Exception as exc:  # noqa: BLE001 - every failure counts as an attempt
                    if not counted:
                        self._set_aside_after_link_loss()   # the link failed in a resynchronisation
                        counted = True
                    last = exc
                    log.warning("%s: reconnect attempt %d failed: %s", self._who(), attempt, exc)
                    time.sleep(backoff_s)
                    backoff_s *= 2
        finally:
            self._recovering = False
        cause_text = f"{error_text(cause)}; " if cause is not None else ""
        raise self._connection_error(
            what, f"{cause_text}{self.reconnect_attempts} reconnect attempts failed, "
                  f"last: {error_text(last) if last is not None else '?'}") from last

    def _set_aside_after_link_loss(self) -> None:
        """The link failed: the instrument may have been power-cycled or reset meanwhile (its
        front panel used), so nothing the guard recorded is taken as its state any more (an
        output counts as on, every level as unknown), at once, before the reconnect (an
        interrupt in it, or a link failing again, must not leave the old record standing); and
        the role settings are written again at the next reopen or exchange that is no safe
        state's."""
        self._link_lost_pending = self._record_stale = True
        self.links_lost += 1
        self.write_guard                    # sets the record aside (again at its next use, if cut short)

    def _reapply_after_link_loss(self, *, always: bool = False) -> None:
        """The role settings written again (after a link loss, or `always` after a reopen that
        is no safe state's); pending again if that fails."""
        if not (always or self._link_lost_pending):
            return
        self._link_lost_pending = False
        try:
            self.link_generation += 1
            self.reapply_role_settings()
        except BaseException:
            self._link_lost_pending = True
            raise

    def _reopen(self, address: str, visalib: str | None, timeout_ms: float, *, link_failed: bool = False) -> None:
        """A new session to `address` in place of the old one; `link_failed`: the old one's link
        failed (a transport failure, or an earlier reopen), so nothing is asked over it."""
        handle: Any = self.visa_handle  # type: ignore[attr-defined]
        read_term, write_term = handle.read_termination, handle.write_termination
        if link_failed:
            _shut_vxi11_core_channel(handle)
        try:
            handle.close()
        except Exception:  # noqa: BLE001 - a dead session may refuse to close; reopen anyway
            pass
        manager = pyvisa.ResourceManager(visalib) if visalib else pyvisa.ResourceManager()
        # Opened and configured whole before it becomes the handle, closed if that is cut short.
        # A stop signal as pyvisa-py opened it left its socket connected, held in the library's
        # sessions for good: an instrument serving one client refused every later connection,
        # the safe state's included. A stop as it was configured left a handle with pyvisa's
        # default terminations, which every later reopen copied: no identification read back.
        # One reopen to an address at a time, so that the sessions a cut-short one closes are
        # its own, not another driver's of the same instrument (a monitor's) opened meanwhile.
        with _reopening(address):
            sessions_before = _sessions_to(manager.visalib, address)
            resource = None
            try:
                resource = manager.open_resource(address)
                _say_when_the_peer_closes(resource)
                resource.read_termination, resource.write_termination = read_term, write_term
                resource.timeout = timeout_ms
            except BaseException as cut_short:
                _close_sessions_opened_since(manager.visalib, address, sessions_before, resource)
                # A session the open had half built (connected, not yet in the library's
                # sessions) is held by pyvisa's frames in the traceback alone, in a reference
                # cycle: freed now, its socket closed, not once the handler that makes the
                # instruments safe has ended.
                traceback.clear_frames(cut_short.__traceback__)
                gc.collect()
                raise
        self._visa_handle = resource
        self._unsynced = "the previous reconnect did not complete"
        if not _is_pyvisa_py_socket(resource):
            # Device clear: the instrument drops what it held for the old session. A new
            # pyvisa-py socket has nothing in flight, and its "clear" reads until the peer is
            # silent: forever, if the peer closes the connection.
            resource.clear()
        identity = resource.query("*IDN?")
        if not _is_identification(identity):
            raise ValueError(f"*IDN? after reconnecting answered {identity[:60]!r}, not an identification")
        self._unsynced = ""

    def _let_old_session_finish(self, handle: Any) -> bool:
        """Before a raw socket is reopened (a resynchronisation, or a reconnect after a failure
        such as a timeout, which a slow link gives too): a socket has no device clear, and the
        instrument runs what the old session wrote whenever it arrives, so a level still on its
        way would run after the new session's commands (after safe state's zero). An
        identification asked on the old session and read back there, within the VISA timeout,
        means the instrument has run everything written before it: True. Without that reply the
        link counts as lost (the panel may have been used meanwhile), and the old connection is
        reset rather than closed: TCP then drops what it still held to send or retransmit."""
        deadline_s = time.monotonic() + float(handle.timeout or 0.0) / 1000.0
        why = "no identification came back in time"
        try:
            handle.write("*IDN?")
            asked = 1
            while time.monotonic() <= deadline_s:
                # Bytes, not text: the reply left unread may be a binary block.
                if _is_identification(handle.read_raw().decode("ascii", "replace")):
                    return True
                if asked < OLD_SESSION_ASKS_MAX:
                    # That may have been the identification, garbled: asked again, an answer
                    # still comes without waiting out the timeout.
                    handle.write("*IDN?")
                    asked += 1
        except Exception as exc:  # noqa: BLE001 - a dead or garbled link: reopen regardless
            why = error_text(exc)
        log.warning("%s: the old session did not confirm it had run what was written on it (%s); "
                    "taken as a lost link, its connection reset", self._who(), why)
        _reset_on_close(handle)
        return False

    def _last_timeout_ms(self) -> float:
        try:
            self._timeout_ms = float(self.visa_handle.timeout)  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - a closed session (a reopen cut short) has none to read
            pass
        return self._timeout_ms

    def _who(self) -> str:
        address = self._open_spec[0] if self._open_spec else "?"
        return f"{type(self).__name__} {self.name!r} at {address}"  # type: ignore[attr-defined]

    def _connection_error(self, what: str, detail: str) -> InstrumentConnectionError:
        return InstrumentConnectionError(f"{self._who()}: {what} failed: {detail}")

    def _errors_after_failure(self) -> list[str]:
        try:
            if self._unsynced:
                # The failed exchange's reply may still come: taken for an error-queue entry it
                # would shift every later reply by one.
                self._resynchronise("reading the error queue")
            self._recovering = True
            return self.drain_errors()
        except Exception:  # noqa: BLE001 - best effort: the link may be gone after all
            return []
        finally:
            self._recovering = False

    # --- SCPI error queue -------------------------------------------------------------------
    #: The query that pops one error ("SYST:ERR?"); None for instruments without a queue.
    error_query: str | None = "SYST:ERR?"

    #: Errors read after a write (refusals_after_write), kept for the next drain_errors.
    _held_errors: list[str] | None = None

    def drain_errors(self, query: str | None = None, limit: int = 32) -> list[str]:
        """Read the error queue until it reports 0; returns the errors it held, after those read
        since the last drain (refusals_after_write)."""
        held, self._held_errors = self._held_errors or [], None
        return held + self._read_error_queue(query, limit)[0]

    def refusals_after_write(self) -> list[str]:
        """What the instrument reports refusing, read after a write that changed what the guard
        follows: its error queue (an entry garbled on the way counts too). The errors are kept
        for the next drain_errors, so the role verb that checks for them still reports them.
        An instrument without a queue reports nothing the guard could trust (none of ours
        follows such an instrument's state: the Lake Shore and scope rules are absolute)."""
        if self.error_query is None:
            return ["no error queue to say it ran the message"]
        reconnects = self.reconnects
        errors, garbled = self._read_error_queue(None, 32)
        if errors:
            self._held_errors = (self._held_errors or []) + errors
        # A query asked again after a reconnect: the entry its lost reply carried (popped by the
        # instrument when it answered) is gone, and the queue may now read clean.
        lost = self.reconnects != reconnects
        return (errors + (["an error-queue entry that arrived garbled"] if garbled else [])
                + (["an error-queue reply lost with the link"] if lost else []))

    def _read_error_queue(self, query: str | None, limit: int) -> tuple[list[str], bool]:
        """(the errors read until the queue reported 0, whether an entry arrived garbled)."""
        query = query or self.error_query
        if query is None:
            return [], False
        errors, garbled = [], False
        for _ in range(limit):
            try:
                code, reply = self.ask_parsed(query, _error_entry, repeatable=False)
            except MalformedReplyError as error:
                # Line noise on an entry that reading consumed: it cannot be read again, so the
                # run says it was lost and reads on (after a resynchronisation).
                self.safety_notes.append(f"{self.name}: an error-queue entry arrived garbled and is "  # type: ignore[attr-defined]
                                         f"lost ({error_text(error)[-80:]})")
                log.warning("%s: %s", self._who(), error)
                garbled = True
                self.reports_garbled += 1
                continue
            if code == 0:
                break
            errors.append(reply)
        return errors, garbled

    def raise_on_errors(self, after: str, query: str | None = None) -> None:
        errors = self.drain_errors(query)
        if errors:
            raise InstrumentError(f"{self._who()}: after {after} the instrument reported {'; '.join(errors)}")


def one_message(units: list[str]) -> str:
    """Program units joined into one message, each from the root: after a ';' a unit without its
    leading ':' would continue the header path of the one before (SCPI's compound headers; Tek's
    programmer manuals: a concatenated command needs the colon), so every unit gets one but a
    common command (`*...`), which never has one."""
    stripped = (unit.strip() for unit in units)
    return ";".join(unit if unit.startswith("*") else ":" + unit.lstrip(":") for unit in stripped)


def _is_raw_socket(resource: Any) -> bool:
    try:
        return str(resource.resource_name).upper().endswith("::SOCKET")
    except Exception:  # noqa: BLE001 - a closed session may not answer attribute reads
        return False


def _is_identification(reply: str) -> bool:
    """An IEEE 488.2 *IDN? reply: four fields, the first a maker's name (a line of four numbers,
    an ASCII waveform's end, is not one)."""
    line = reply.strip()
    fields = line.split(",")
    return (len(fields) == 4 and any(c.isalpha() for c in fields[0])
            and all(" " <= c <= "~" for c in line))


class _PeerCloseAwareSocket:
    """A pyvisa-py socket session's socket that says when the instrument has closed the
    connection. pyvisa-py reads on after the close (select finds the socket readable, recv
    gives nothing) until its timeout, spinning a core: a power-cycled instrument or a server
    that dropped the client cost the whole timeout before the reconnect. A read at the end of
    the stream raises ConnectionResetError instead (a transport failure: reconnect), as
    NI-VISA reports a lost connection."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock

    def recv(self, size: int, *flags: int) -> bytes:
        data = self._sock.recv(size, *flags)
        if not data and size:
            raise ConnectionResetError("the instrument closed the connection")
        return data

    def fileno(self) -> int:          # select() waits on the socket itself
        return self._sock.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _pyvisa_py_session(resource: Any, *, socket_only: bool = True) -> Any | None:
    """The pyvisa-py session behind a resource (a raw socket's `interface` is the socket; with
    `socket_only`, only a raw socket's), or None."""
    if not (_is_pyvisa_py_socket(resource) if socket_only else _is_pyvisa_py(resource)):
        return None
    return resource.visalib.sessions.get(resource.session)


_REOPENING_BY_ADDRESS: dict[str, threading.RLock] = {}
_REOPENING_TABLE_LOCK = threading.Lock()


def _reopening(address: str) -> threading.RLock:
    """The lock a reopen of `address` holds in this process (one per instrument: a slow open
    delays no other instrument's safe state)."""
    with _REOPENING_TABLE_LOCK:
        return _REOPENING_BY_ADDRESS.setdefault(normalise_address(address), threading.RLock())


def _sessions_to(library: Any, address: str) -> set[Any]:
    """The sessions `library` holds open to `address` (pyvisa-py and the emulator keep theirs in
    `sessions`; a library that does not gives none). Other instruments' sessions are left out."""
    wanted = normalise_address(address)
    found = set()
    for session in list(getattr(library, "sessions", ())):
        try:
            name, _ = library.get_attribute(session, constants.ResourceAttribute.resource_name)
        except Exception:  # noqa: BLE001 - not a resource's session (the manager's own)
            continue
        if isinstance(name, str) and normalise_address(name) == wanted:
            found.add(session)
    return found


def _close_sessions_opened_since(library: Any, address: str, before: set[Any], resource: Any | None) -> None:
    """Close `resource` and every session to `address` that `library` opened since `before` (an
    open cut short may have connected one that no resource holds yet)."""
    if resource is not None:
        try:
            resource.close()
        except Exception:  # noqa: BLE001 - the cut-short open is what is reported
            pass
    for session in _sessions_to(library, address) - before:
        try:
            library.close(session)
        except Exception:  # noqa: BLE001 - as above; closed already with its resource
            pass


def _reset_on_close(resource: Any) -> None:
    """Close a pyvisa-py socket with a TCP reset (SO_LINGER 0), dropping unsent data."""
    session = _pyvisa_py_session(resource)
    try:
        if session is not None:
            session.interface.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except Exception:  # noqa: BLE001 - a session already closed has nothing left to send
        pass


def _say_when_the_peer_closes(resource: Any) -> None:
    session = _pyvisa_py_session(resource)
    if session is not None and not isinstance(session.interface, _PeerCloseAwareSocket):
        session.interface = _PeerCloseAwareSocket(session.interface)


def _shut_vxi11_core_channel(resource: Any) -> None:
    """Shut down the core channel of a pyvisa-py VXI-11 session whose link failed. Its close asks
    the instrument to destroy the link first and waits pyvisa-py's own 5 s (not the VISA timeout)
    for a reply a dead link never gives; on a channel shut down that call fails at once, and the
    close goes on to close the socket. (Closed instead, the socket's select raises what the close
    does not catch: the session stays registered, and its finalizer fails later.) The instrument
    ends the link as its connection closes, as VXI-11 servers do (the emulated one:
    sim_backend/transport/vxi11_server.py)."""
    try:
        client = getattr(_pyvisa_py_session(resource, socket_only=False), "interface", None)
        if hasattr(client, "destroy_link"):       # the VXI-11 core client, an ONC RPC client
            client.sock.shutdown(socket.SHUT_RDWR)
    except Exception:  # noqa: BLE001 - a session already closed has nothing to shut down
        pass


def _is_pyvisa_py(resource: Any) -> bool:
    return type(resource.visalib).__module__.startswith("pyvisa_py")


def _is_pyvisa_py_socket(resource: Any) -> bool:
    return _is_raw_socket(resource) and _is_pyvisa_py(resource)


def reply_units(reply: str, count: int) -> list[str]:
    """The `count` answers in the one reply to a compound query (joined by ';'); ValueError when
    there are not as many."""
    units = reply.strip().split(";")
    if len(units) != count:
        raise ValueError(f"{len(units)} answers where {count} were asked: {reply[:80]!r}")
    return units


def _error_entry(reply: str) -> tuple[int, str]:
    """A SCPI error-queue entry, `<code>,"<text>"`: (code, the entry as read)."""
    reply = reply.strip()
    return int(reply.split(",", 1)[0]), reply
