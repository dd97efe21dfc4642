"""YAML reading for station files: numbers as YAML 1.2 reads them, errors with line numbers.

Two YAML features are refused because they let a small file mean something else than it shows:
anchors and aliases (a 1 KB file of nested aliases stands for gigabytes of values, and any
message that shows such a value hangs) and duplicate keys (YAML keeps the last one silently, so a
second `bias_current_max_a:` further down wins unnoticed).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml


#: Longest key or value text quoted in a message (a file may hold a megabyte-long key).
SHOWN_CHARS_MAX = 200


class _Refused(yaml.YAMLError):
    """Valid YAML that a station file may not use; the text says where and why."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads `2e9` and `2.0e9` as floats, as YAML 1.2 does (1.1 reads strings),
    and refuses anchors and aliases where they appear."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            sign = "*" if isinstance(event, yaml.AliasEvent) else "&"
            raise _Refused(f"line {event.start_mark.line + 1}: YAML anchor or alias {sign}{clip(event.anchor)} "
                           "is not allowed in this file: write each value out")
        return super().compose_node(parent, index)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
                    |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def read_text(path: Path, error: type[Exception]) -> str:
    """The file's UTF-8 text; a missing, unreadable or non-UTF-8 file (or a path with a NUL
    byte) raises `error` naming the file."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: cannot read: not UTF-8 text (byte {exc.start}: {exc.reason})") from exc
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:       # "embedded null byte" in the path
        raise error(f"{path}: cannot read: {exc}") from exc


def clip(text: Any) -> str:
    """`text` as str, cut to SHOWN_CHARS_MAX characters (marked with "...")."""
    text = str(text)
    return text if len(text) <= SHOWN_CHARS_MAX else text[:SHOWN_CHARS_MAX - 3] + "..."


def _refuse_duplicate_keys(root: yaml.Node, loader: _Loader) -> None:
    """Raise _Refused at the first mapping key that appears twice, naming its key path and lines.
    Keys compare as the values YAML makes of them (`1` and `1.0` are one dict key)."""
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:
        node, key_path = stack.pop()
        children = []
        if isinstance(node, yaml.MappingNode):
            lines: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key = loader.construct_object(key_node) if isinstance(key_node, yaml.ScalarNode) else id(key_node)
                where = f"{key_path}.{clip(key)}" if key_path else clip(key)
                line = key_node.start_mark.line + 1
                try:
                    first = lines.get(key)
                    lines.setdefault(key, line)
                except TypeError:          # an unhashable key: the constructor names it
                    first = None
                if first is not None:
                    raise _Refused(f"{where}: duplicate key (lines {first} and {line}): "
                                   "YAML would keep only the last; write it once")
                children.append((value_node, where))
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, f"{key_path}[{index}]") for index, item in enumerate(node.value)]
        stack.extend(reversed(children))


def parse_yaml(text: str, path: Path, error: type[Exception]) -> Any:
    """Parse YAML text read from `path`; malformed text raises `error` naming file and line, and
    so do anchors, aliases and duplicate keys (naming the key path and both lines)."""
    loader = None
    try:
        loader = _Loader(text)             # the reader refuses control characters here
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
        raise error(f"{path}: not valid YAML{where}: {problem}") from exc
    except RecursionError:
        raise error(f"{path}: not valid YAML: nested too deeply") from None
    except ValueError as exc:          # e.g. an integer of more than 4300 digits
        raise error(f"{path}: not a usable YAML value: {clip(exc)}") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_yaml(path: Path, error: type[Exception]) -> Any:
    """Parse a YAML file; an unreadable or malformed file raises `error` naming file and line."""
    return parse_yaml(read_text(path, error), path, error)
