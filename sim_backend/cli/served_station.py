"""The station file of a served bench (`nwlab sim serve --station-out FILE`).

A copy of the served station in which every instrument is reached at the TCP address the server
gave it, through the default VISA library (no `visalib`), so `nwlab campaign --station FILE`
runs against the served instruments as against real ones on a LAN. The chip path is made
absolute (the file may be written anywhere). Comments of the original are not kept; a header
says where the file came from. The text is YAML 1.2 as `contracts.files.yaml12` reads it: a
string that would read back as something else (`2e9`, `true`, `null`, `a: b`) is quoted, and
the whole text is read back and compared before it is written.
"""

from __future__ import annotations

import json
import math
import os
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from contracts.files.yaml12 import load_yaml, parse_yaml

INDENT = "  "
#: Lines are wrapped (long strings folded) at this width; mappings of a few scalars that fit on a
#: line are written on one, as people write `options: {channel: 1}`.
WIDTH = 96


class StationOutError(ValueError):
    """The served station cannot be written as a station file (one line: what and where)."""


def served_station_text(station_path: Path, addresses: Mapping[str, str], command: str) -> str:
    """The station file for `addresses` (instrument key -> served VISA address); `command` is
    the server's command line, quoted in the header."""
    tree = load_yaml(station_path, StationOutError)
    if not isinstance(tree, Mapping) or not isinstance(tree.get("instruments"), Mapping):
        raise StationOutError(f"{station_path}: no `instruments:` mapping to point at the served addresses")
    served = dict(tree)
    if isinstance(served.get("chip"), str):
        served["chip"] = str((station_path.parent / served["chip"]).resolve())
    instruments = {}
    for key, instrument in tree["instruments"].items():
        if key not in addresses:
            raise StationOutError(f"{station_path}: instruments.{key} is not served")
        entry = {name: value for name, value in instrument.items() if name != "visalib"}
        entry["address"] = addresses[key]
        instruments[key] = entry
    served["instruments"] = instruments
    header = [f"# nwlab station: {station_path.name} as `{command}` serves it.",
              "# Each instrument is reached at its served TCP address through the default VISA library;",
              "# valid while that server runs. Comments of the original file are not copied."]
    text = "\n".join(header + _mapping(served, 0)) + "\n"
    if not _same(parse_yaml(text, station_path, StationOutError), served):
        raise StationOutError(f"{station_path}: the station does not read back as written (a value YAML cannot "
                              "spell plainly)")
    return text


def write_served_station(out: Path, text: str) -> None:
    """Write `text` to `out` whole or not at all (a temporary file renamed over it)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, out)
    finally:
        temporary.unlink(missing_ok=True)


# -- a small YAML 1.2 writer: block mappings, flow lists of scalars, block lists of mappings ----

def _mapping(tree: Mapping[str, Any], depth: int) -> list[str]:
    pad = INDENT * depth
    lines = []
    for key, value in tree.items():
        name = _scalar(key)
        one_line = f"{pad}{name}: {_flow(value)}"
        if isinstance(value, Mapping) and value and not (_scalars(value.values()) and len(one_line) <= WIDTH):
            lines += [f"{pad}{name}:", *_mapping(value, depth + 1)]
        elif isinstance(value, list) and any(isinstance(v, (Mapping, list)) for v in value):
            lines += [f"{pad}{name}:", *_block_list(value, depth + 1)]
        elif isinstance(value, str) and _literal_block(value):
            lines += [f"{pad}{name}: |", *(f"{pad}{INDENT}{line}" for line in value[:-1].split("\n"))]
        elif isinstance(value, str) and len(one_line) > WIDTH and _foldable(value):
            folded = textwrap.wrap(value.rstrip("\n"), WIDTH - len(pad) - len(INDENT), break_long_words=False,
                                   break_on_hyphens=False)
            lines += [f"{pad}{name}: {'>' if value.endswith(chr(10)) else '>-'}",
                      *(f"{pad}{INDENT}{line}" for line in folded)]
        else:
            lines.append(one_line)
    return lines


def _scalars(values) -> bool:
    return all(not isinstance(v, (Mapping, list)) for v in values)


def _block_list(items: list, depth: int) -> list[str]:
    pad = INDENT * depth
    lines = []
    for item in items:
        if isinstance(item, Mapping) and item:
            first, *rest = _mapping(item, depth + 1)
            lines += [f"{pad}- {first.lstrip()}", *rest]
        elif isinstance(item, list) and any(isinstance(v, (Mapping, list)) for v in item):
            lines += [f"{pad}-", *_block_list(item, depth + 1)]
        else:
            lines.append(f"{pad}- {_flow(item)}")
    return lines


def _flow(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_scalar(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return _float(value)
    text = str(value)
    return text if _plain(text) else json.dumps(text, ensure_ascii=False)   # JSON strings are YAML


def _float(value: float) -> str:
    """The shortest spelling that reads back as `value`: 0.1, 24.0, 2.0e9, 1.5e-4."""
    if value == 0 or 1e-3 <= abs(value) < 1e6:
        return repr(value)
    for digits in range(1, 18):
        text = f"{value:.{digits}e}"
        if float(text) == value:
            break
    mantissa, exponent = text.split("e")
    mantissa = mantissa.rstrip("0")
    if mantissa.endswith("."):
        mantissa += "0"
    return f"{mantissa}e{int(exponent)}"


def _plain(text: str) -> bool:
    """Does `text` read back as itself, unquoted, in a flow or block context?"""
    if not text or text != text.strip() or any(c in text for c in "\n\r\t,[]{}#&*!|>'\"%@`"):
        return False
    try:
        return parse_yaml(f"k: {text}", Path("<scalar>"), ValueError) == {"k": text}
    except ValueError:
        return False


def _literal_block(text: str) -> bool:
    """A multi-line string `|` keeps as is: one final newline, no line starting with a space."""
    body = text[:-1]
    return ("\n" in body and text.endswith("\n") and not body.endswith("\n")
            and not any(c in text for c in "\r\t") and not any(line.startswith(" ") or not line
                                                                for line in body.split("\n")))


def _foldable(text: str) -> bool:
    """A one-line string `>` folds without change: single spaces only, none at either end."""
    body = text.removesuffix("\n")
    return (bool(body) and "\n" not in body and "  " not in body and body == body.strip()
            and body.isprintable() and not body.startswith(("#", "-", "?", ":")))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b
