"""YAML reading for station files: numbers as YAML 1.2 reads them, errors with line numbers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads `2e9` and `2.0e9` as floats, as YAML 1.2 does (1.1 reads strings)."""


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


def parse_yaml(text: str, path: Path, error: type[Exception]) -> Any:
    """Parse YAML text read from `path`; malformed text raises `error` naming file and line."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{path}: not valid YAML{where}: {problem}") from exc
    except RecursionError:
        raise error(f"{path}: not valid YAML: nested too deeply") from None


def load_yaml(path: Path, error: type[Exception]) -> Any:
    """Parse a YAML file; an unreadable or malformed file raises `error` naming file and line."""
    return parse_yaml(read_text(path, error), path, error)
