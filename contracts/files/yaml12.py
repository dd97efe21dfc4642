"""The one YAML reader of nwlab's files (station files, chip files, archived station text):
numbers and booleans as YAML 1.2 reads them, errors on one line with the file and line.

YAML 1.2 because 1.1 reads `2e9` as a string and `no`/`on` as booleans. Two features are refused
because they let a small file mean something else than it shows: anchors and aliases (a 1 KB file
of nested aliases stands for gigabytes of values, and any message that shows such a value hangs)
and duplicate keys (YAML keeps the last one silently, so a second `bias_current_max_a:` further
down wins unnoticed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: Longest key or value text quoted in a message (a file may hold a megabyte-long key).
SHOWN_CHARS_MAX = 200

_BOOL = "tag:yaml.org,2002:bool"
_FLOAT = "tag:yaml.org,2002:float"


@dataclass(frozen=True)
class Wording:
    """How a kind of file words the loader's refusals (each file's docs quote its own)."""
    file: str = "this file"                 # "...is not allowed in <file>"
    shown_chars: int = SHOWN_CHARS_MAX
    duplicate_by_line: bool = False         # "line 7: duplicate key 'k' (first on line 5)" rather
                                            # than "a.b.k: duplicate key (lines 5 and 7)"


class _Refused(yaml.YAMLError):
    """Valid YAML that the file may not use; the text says where and why."""


if yaml.__with_libyaml__:      # PyYAML's wheels are built with it
    class _SafeLoader(yaml.composer.Composer, yaml.cyaml.CParser, yaml.constructor.SafeConstructor,
                      yaml.resolver.Resolver):
        """PyYAML's SafeLoader with libyaml's scanner and parser below PyYAML's own composer
        (which `_Loader` makes refuse anchors): a station file read in 3 ms instead of 15 ms."""

        def __init__(self, stream: str) -> None:
            yaml.cyaml.CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
else:
    _SafeLoader = yaml.SafeLoader


class _Loader(_SafeLoader):
    """SafeLoader with YAML 1.2's floats and booleans that refuses anchors and aliases where
    they appear (before anything is expanded)."""

    wording = Wording()

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            sign = "*" if isinstance(event, yaml.AliasEvent) else "&"
            raise _Refused(f"line {event.start_mark.line + 1}: YAML anchor or alias "
                           f"{sign}{clip(event.anchor, self.wording.shown_chars)} "
                           f"is not allowed in {self.wording.file}: write each value out")
        return super().compose_node(parent, index)


# YAML 1.1's booleans (yes/no/on/off/y/n) and floats (which need a dot) give way to YAML 1.2's.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
                    |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def read_text(path: Path, error: type[Exception], *, max_bytes: int | None = None,
              wording: Wording = Wording()) -> str:
    """The file's UTF-8 text; a missing, unreadable, non-UTF-8 or (beyond `max_bytes`) too large
    file, or a path with a NUL byte, raises `error` naming the file."""
    try:
        with path.open("rb") as file:       # bounded: /dev/zero or a huge file is refused at once
            raw = file.read(-1 if max_bytes is None else max_bytes + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:       # "embedded null byte" in the path
        raise error(f"{path}: cannot read: {exc}") from None
    if max_bytes is not None and len(raw) > max_bytes:
        raise error(f"{path}: more than {max_bytes} bytes: too large for {wording.file}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: cannot read: not UTF-8 text (byte {exc.start}: {exc.reason})") from None


def clip(text: Any, chars: int = SHOWN_CHARS_MAX) -> str:
    """`text` as str, cut to `chars` characters (marked with "...")."""
    text = str(text)
    return text if len(text) <= chars else text[:chars - 3] + "..."


def _refuse_duplicate_keys(root: yaml.Node, loader: _Loader) -> None:
    """Raise _Refused at the first mapping key that appears twice, naming its key path (or line)
    and both lines. Keys compare as the values YAML makes of them (`1` and `1.0` are one key)."""
    wording = loader.wording
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:
        node, key_path = stack.pop()
        children = []
        if isinstance(node, yaml.MappingNode):
            lines: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key = loader.construct_object(key_node) if isinstance(key_node, yaml.ScalarNode) else id(key_node)
                shown = clip(key, wording.shown_chars)
                where = f"{key_path}.{shown}" if key_path else shown
                line = key_node.start_mark.line + 1
                try:
                    first = lines.get(key)
                    lines.setdefault(key, line)
                except TypeError:          # an unhashable key: the constructor names it
                    first = None
                if first is not None and wording.duplicate_by_line:
                    raise _Refused(f"line {line}: duplicate key {shown!r} (first on line {first}): "
                                   "YAML would keep only the last; write it once")
                if first is not None:
                    raise _Refused(f"{where}: duplicate key (lines {first} and {line}): "
                                   "YAML would keep only the last; write it once")
                children.append((value_node, where))
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, f"{key_path}[{index}]") for index, item in enumerate(node.value)]
        stack.extend(reversed(children))


def parse_yaml(text: str, path: Path, error: type[Exception], wording: Wording = Wording()) -> Any:
    """Parse YAML text read from `path`; malformed text raises `error` naming file and line, and
    so do anchors, aliases and duplicate keys (naming the key path and both lines)."""
    loader = None
    try:
        loader = _Loader(text)             # control characters are refused as the text is read
        loader.wording = wording
        node = loader.get_single_node()
        if node is None:
            return None
        _refuse_duplicate_keys(node, loader)
        return loader.construct_document(node)
    except _Refused as exc:
        raise error(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{path}: not valid YAML{where}: {' '.join(str(problem).split())}") from None
    except RecursionError:
        raise error(f"{path}: not valid YAML: nested too deeply") from None
    except ValueError as exc:          # e.g. an integer of more than 4300 digits
        raise error(f"{path}: not a usable YAML value: {clip(exc, wording.shown_chars)}") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_yaml(path: Path, error: type[Exception], wording: Wording = Wording(), *,
              max_bytes: int | None = None) -> Any:
    """Parse a YAML file; an unreadable or malformed file raises `error` naming file and line."""
    return parse_yaml(read_text(path, error, max_bytes=max_bytes, wording=wording), path, error, wording)
