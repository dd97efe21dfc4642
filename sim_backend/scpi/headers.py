"""Header patterns: compile `[SOURce#]:VOLTage[:LEVel]`-style declarations and resolve headers.

Pattern syntax (as in instrument manuals):

* upper-case letters are the short form, the whole word the long form (`VOLTage`: VOLT, VOLTAGE);
* `[...]` marks an optional node (`[:LEVel]`, `[SOURce#]`);
* `#` after a mnemonic takes a numeric suffix (`OUTPut#`: OUTP, OUTP1, OUTPUT2; absent = 1);
* `[N]` after a mnemonic is a fixed optional suffix, as manuals write `:SOURce[1]`: the node
  accepts SOUR and SOUR1, the handler gets no argument for it, and any other suffix (SOUR2,
  SOUR0) is out of range (-114, reported through `Match.invalid`);
* a leading `*` makes a common command (`*IDN`): matched whole, case-insensitively.

A header to resolve is the full path in upper case, one `:` before each node (`:SOUR2:VOLT`).
Each pattern becomes one regex; results are cached per header string, so a command a scope
sees a thousand times is one dict lookup after the first. A header is tried only against the
patterns whose first node it can begin with, and a regex is compiled the first time it is tried:
an instrument declares hundreds of patterns, and compiling them all took a sixth of a second at
every start of an emulator process.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sim_backend.scpi.params import mnemonic_forms

T = TypeVar("T")

#: One node: [optional] `:`? mnemonic, then `#` (any suffix) or `[N]` (only N, or none), [close].
_NODE = re.compile(r"(\[)?:?([A-Za-z][A-Za-z0-9_]*)(#|\[\d+\])?(\])?")
_CACHE_LIMIT = 4096  # bounded: a fuzzer must not grow it forever


_compiled = functools.cache(re.compile)   # one regex per source, shared by every table


@dataclass(frozen=True, slots=True)
class CompiledPattern:
    """One header pattern: its regex's source, the short names of its `#` nodes (handler
    arguments), one (short name, fixed suffix or None) per capture group of the regex, in order,
    and the words a header matching it can begin with (None: any, as every node
    is optional)."""

    text: str
    source: str
    suffix_nodes: tuple[str, ...]
    groups: tuple[tuple[str, int | None], ...] = ()
    first_words: frozenset[str] | None = None

    @property
    def regex(self) -> re.Pattern[str]:
        return _compiled(self.source)


def first_word(path: str) -> str | None:
    """The letters a header path's first node begins with (`:SOUR2:VOLT` -> SOUR); None if the
    path does not begin with a node. A mnemonic's forms begin with the same letters."""
    if not path.startswith(":"):
        return None
    end = 1
    while end < len(path) and path[end].isalpha():
        end += 1
    return path[1:end]


def compile_pattern(text: str) -> CompiledPattern:
    """Compile a header pattern; ValueError names what is wrong with a malformed one."""
    if text.startswith("*"):
        if not re.fullmatch(r"\*[A-Za-z]+", text):
            raise ValueError(f"common command pattern {text!r} must be '*' and letters")
        return CompiledPattern(text, re.escape(text.upper()), ())
    parts: list[str] = []
    suffix_nodes: list[str] = []
    groups: list[tuple[str, int | None]] = []
    first_words: set[str] = set()
    required_seen = False       # the first words are those up to the first node that is not optional
    pos = 0
    for match in _NODE.finditer(text):
        if match.start() != pos or bool(match.group(1)) != bool(match.group(4)):
            raise ValueError(f"cannot parse header pattern {text!r} at {text[pos:]!r}")
        short, long = mnemonic_forms(match.group(2))
        if not required_seen:
            first_words.update(first_word(f":{form}") for form in (short, long))
            required_seen = not match.group(1)
        forms = short if short == long else f"{short}|{long}"
        node = f":(?:{forms})"
        suffix = match.group(3)
        if suffix == "#":
            node += r"(\d*)"
            suffix_nodes.append(short)
            groups.append((short, None))
        elif suffix:  # `[N]`: digits are captured so that a wrong suffix is -114, not -113
            fixed = int(suffix[1:-1])
            if fixed < 1:
                raise ValueError(f"header pattern {text!r}: a fixed suffix must be >= 1, got {suffix}")
            node += r"(\d*)"
            groups.append((short, fixed))
        parts.append(f"(?:{node})?" if match.group(1) else node)
        pos = match.end()
    if pos != len(text) or not parts:
        raise ValueError(f"cannot parse header pattern {text!r} at {text[pos:]!r}")
    return CompiledPattern(text, "".join(parts), tuple(suffix_nodes), tuple(groups),
                           frozenset(first_words) if required_seen else None)


@dataclass(frozen=True, slots=True)
class Match(Generic[T]):
    """A resolved header: the entry, (node short name, suffix) for each `#` node, and
    (node short name, suffix) for each `[N]` node given a suffix other than N (-114)."""

    entry: T
    suffixes: tuple[tuple[str, int], ...]
    invalid: tuple[tuple[str, int], ...] = ()


class HeaderTable(Generic[T]):
    """Maps headers to entries declared with patterns; the first declared pattern that matches wins."""

    def __init__(self, declarations: Iterable[tuple[str, T]]) -> None:
        self._common: dict[str, T] = {}
        self._compound: list[tuple[CompiledPattern, T]] = []
        for text, entry in declarations:
            pattern = compile_pattern(text)
            if text.startswith("*"):
                self._common.setdefault(text.upper(), entry)
            else:
                self._compound.append((pattern, entry))
        # Per first word, the patterns a header beginning with it can match, in declaration order
        # (those that can begin with any word among them); a word not listed: those alone.
        self._any_word = [i for i, (pattern, _) in enumerate(self._compound) if pattern.first_words is None]
        listed: dict[str, list[int]] = {}
        for i, (pattern, _) in enumerate(self._compound):
            for word in pattern.first_words or ():
                listed.setdefault(word, []).append(i)
        self._by_word = {word: sorted({*indices, *self._any_word}) for word, indices in listed.items()}
        self._cache: dict[str, Match[T] | None] = {}

    def common(self, header: str) -> T | None:
        """Entry for a common command header such as '*idn'."""
        return self._common.get(header.upper())

    def resolve(self, path: str) -> Match[T] | None:
        """Entry for a compound header path such as ':SOUR2:VOLT:LEV' (upper case), or None."""
        try:
            return self._cache[path]
        except KeyError:
            pass
        found: Match[T] | None = None
        for index in self._by_word.get(first_word(path), self._any_word):
            pattern, entry = self._compound[index]
            match = pattern.regex.fullmatch(path)
            if match is not None:
                suffixes: list[tuple[str, int]] = []
                invalid: list[tuple[str, int]] = []
                for (short, fixed), digits in zip(pattern.groups, match.groups()):
                    if fixed is None:
                        suffixes.append((short, int(digits) if digits else 1))
                    elif digits and int(digits) != fixed:
                        invalid.append((short, int(digits)))
                found = Match(entry, tuple(suffixes), tuple(invalid))
                break
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[path] = found
        return found
