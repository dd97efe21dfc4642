"""Bad station and chip files, generated: the loaders refuse them with their own error, naming
the file and where in it the problem is, and never raise anything else.

Station files: mutations of stations/emulated.yaml (deleted keys, values of the wrong type,
negative/NaN/infinite/huge numbers, unknown keys, corrupted YAML text). Chip files: the same
mutations of every shipped chip file. Nothing is left out of generation: every case
that used to escape as another exception (docs/reliability.md, F-CHIP-*, F-CFG-*) is generated.
"""

from __future__ import annotations

import copy
import math
import re
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from reliability_helpers import (
    BAD_NUMBERS, BAD_OTHERS, CHIPS, delete_at, emulated_tree, get_at, key_paths, set_at, write_station,
)

from contracts.files.station import StationError, read_station
from sim_backend.bench.station import StationFileError
from sim_backend.bench.station import load_emulated_station as emulator_load_station
from sim_backend.chip.build import ChipFileError, load_chip

FILES = settings(max_examples=150, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
BAD_VALUES = BAD_NUMBERS + BAD_OTHERS
UNKNOWN_KEYS = ["nope", "Role", "bias_current_max_ma", "envelope ", "évolution", "x" * 200]

# -- station files --------------------------------------------------------------------------------

STATION = emulated_tree()
STATION_PATHS = key_paths(STATION)
TOP_KEYS = set(STATION)


def _station_mutation():
    paths = st.sampled_from(STATION_PATHS)
    delete = st.builds(lambda p: ("delete", p, None), paths)
    replace = st.builds(lambda p, v: ("replace", p, v), paths, st.sampled_from(BAD_VALUES))
    unknown = st.builds(lambda p, k: ("unknown", p, k),
                        st.sampled_from([("", ())] + [p for p in STATION_PATHS
                                                      if isinstance(get_at(STATION, p[1]), dict)]),
                        st.sampled_from(UNKNOWN_KEYS))
    return st.one_of(delete, replace, unknown)


def _apply(tree, mutation):
    kind, (dotted, access), value = mutation
    if kind == "delete":
        return delete_at(tree, access)
    if kind == "replace":
        return set_at(tree, access, value)
    tree = copy.deepcopy(tree)
    get_at(tree, access)[value] = 1.0
    return tree


_LOCATED = re.compile(r"^(?:(?P<yaml>not valid YAML)|(?P<key>.+?): )")


def assert_station_error(error: StationError, path: Path, roots: set | None = None) -> str:
    """The message starts with the file, then names a key path of the file (or a YAML line)."""
    message = str(error)
    assert message.startswith(f"{path}: "), message
    match = _LOCATED.match(message[len(f"{path}: "):])
    assert match, f"no key path in {message!r}"
    if match.group("yaml"):
        return "(yaml)"
    key = match.group("key")
    assert key and not key.startswith("."), f"malformed key path {key!r}: {message}"
    root = re.split(r"[.\[]", key)[0]
    if roots is not None:
        assert root in roots or key == "(top level)", f"{key!r} is not a key path: {message}"
    return key


@pytest.mark.timeout(60)
@FILES
@given(mutations=st.lists(_station_mutation(), min_size=1, max_size=3))
def test_mutated_station_files_fail_only_with_a_located_station_error(tmp_path, mutations):
    tree = STATION
    for mutation in mutations:
        try:
            tree = _apply(tree, mutation)
        except (KeyError, IndexError, TypeError):
            assume(False)       # an earlier mutation removed or retyped the parent
    path = write_station(tmp_path, tree)
    try:
        read_station(path)
    except StationError as error:
        assert_station_error(error, path.resolve(), TOP_KEYS | set(UNKNOWN_KEYS))
    # Loading may succeed (e.g. a new description); anything but StationError propagates and fails.
    assert_emulator_reader_fails_cleanly(path)


def assert_emulator_reader_fails_cleanly(path: Path) -> None:
    """The emulator's own reader of the same file: it loads, or raises StationFileError naming
    the file (it checks less than contracts.files.station, never crashes on more)."""
    try:
        emulator_load_station(path)
    except StationFileError as error:
        assert str(error).startswith(f"{path.resolve()}: "), str(error)


NUMERIC_LIMITS = [(dotted, access) for dotted, access in STATION_PATHS
                  if ".envelope." in dotted and isinstance(get_at(STATION, access), (int, float))]


@pytest.mark.timeout(60)
@FILES
@given(target=st.sampled_from(NUMERIC_LIMITS),
       value=st.sampled_from([-1.0, -1e-9, math.nan, math.inf, -math.inf, "30 uA", None, True, [1.0], {"a": 1}]))
def test_a_bad_envelope_limit_is_refused_naming_its_key_path(tmp_path, target, value):
    dotted, access = target
    if value is None:           # a limit left empty means "no limit"; deleting it too
        return
    path = write_station(tmp_path, set_at(STATION, access, value))
    with pytest.raises(StationError) as error:
        read_station(path)
    assert assert_station_error(error.value, path.resolve()) == dotted


REQUIRED = ["chip", "instruments", "instruments.bias.role", "instruments.bias.driver", "instruments.bias.address",
            "instruments.pulser.role", "wiring.pulse_input.source", "wiring.pulse_input.chip_port",
            "wiring.pulse_input.series_resistance_ohm", "wiring.bias.chip_port", "wiring.readout[0].scope_channel"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("dotted", REQUIRED)
def test_a_missing_required_key_is_named(tmp_path, dotted):
    access = dict(STATION_PATHS)[dotted]
    path = write_station(tmp_path, delete_at(STATION, access))
    with pytest.raises(StationError) as error:
        read_station(path)
    key = assert_station_error(error.value, path.resolve())
    assert key == dotted or (dotted == "instruments" and key.startswith("instruments")), str(error.value)


# Free-form mappings are left out: `options` (driver keywords), `instruments.<name>.emulator`
# (model settings; its `faults` are checked below) and `wiring`/`instruments` (names).
CLOSED_MAPPINGS = [("", ())] + [p for p in STATION_PATHS if isinstance(get_at(STATION, p[1]), dict)
                                and not p[0].endswith((".options", ".emulator"))
                                and ".emulator." not in p[0] and p[0] not in ("wiring", "instruments")]
assert {"emulator", "wiring.pulse_input.source", "wiring.bias.source"} <= {p[0] for p in CLOSED_MAPPINGS}


@pytest.mark.timeout(60)
@FILES
@given(where=st.sampled_from(CLOSED_MAPPINGS + [("instruments.bias.emulator.faults", ("instruments", "bias",
                                                                                      "emulator", "faults"))]),
       key=st.sampled_from(UNKNOWN_KEYS + [1, 2.5, True]))
def test_an_unknown_key_is_refused_by_name(tmp_path, where, key):
    dotted, access = where
    tree = copy.deepcopy(STATION)
    if access[-1:] == ("faults",):
        get_at(tree, access[:-1])["faults"] = {"drop_every": 50}
    get_at(tree, access)[key] = 1.0
    get_at(tree, access)["zz_second"] = 2.0      # two unknown keys, maybe of different types
    path = write_station(tmp_path, tree)
    with pytest.raises(StationError) as error:
        read_station(path)
    located = assert_station_error(error.value, path.resolve())
    first = sorted([key, "zz_second"], key=str)[0]
    assert located == (f"{dotted}.{first}" if dotted else str(first)), str(error.value)
    assert "unknown key" in str(error.value)


def _text_corruptions():
    text = (Path(STATION["chip"]).parent.parent / "emulated.yaml").read_text()
    # YAML-significant characters weighted up, plus NUL, control bytes, deep nesting and bytes
    # that are not UTF-8 (a lone continuation byte, a truncated sequence, Latin-1 é, UTF-16 BOM)
    pieces = [c.encode() for c in ":-[]{}&*!|>'\"#%@`,? \t\nx1"] + [
        "\u00e9".encode(), "\ufeff".encode(), b"\x00", b"\x07", b"\x80", b"\xc3", b"\xe9", b"\xff\xfe",
        b"[" * 3000, b"{a: " * 3000]
    edit = st.tuples(st.integers(0, len(text)), st.integers(0, 8),
                     st.lists(st.sampled_from(pieces), max_size=6).map(b"".join))
    return text, st.lists(edit, min_size=1, max_size=4)


_TEXT, _EDITS = _text_corruptions()


@pytest.mark.timeout(60)
@FILES
@given(edits=_EDITS)
def test_corrupted_station_text_fails_only_with_a_station_error(tmp_path, edits):
    data = _TEXT.replace("chip: chips/default-neuron.yaml", f"chip: {STATION['chip']}").encode()
    for at, cut, insert in edits:
        at = min(at, len(data))
        data = data[:at] + insert + data[at + cut:]
    path = tmp_path / "station.yaml"
    path.write_bytes(data)
    try:
        read_station(path)
    except StationError as error:
        message = str(error)
        if ": cannot read: not UTF-8 text" not in message:
            assert_station_error(error, path.resolve())
    assert_emulator_reader_fails_cleanly(path)


@pytest.mark.timeout(30)
def test_unreadable_and_empty_station_files(tmp_path):
    for name, content in [("empty.yaml", ""), ("list.yaml", "- 1\n"), ("scalar.yaml", "42\n"),
                          ("tag.yaml", "!!python/object:os.system {}\n")]:
        path = tmp_path / name
        path.write_text(content)
        with pytest.raises(StationError) as error:
            read_station(path)
        assert str(error.value).startswith(f"{path.resolve()}: ")
    with pytest.raises(StationError, match="cannot read"):
        read_station(tmp_path / "missing.yaml")


def _unusual_station_files(tmp_path):
    """(path, what is wrong): files and paths that used to escape as other exceptions."""
    text = write_station(tmp_path, STATION).read_text()
    cases = []
    for name, data in [("latin1.yaml", text.replace("emulated-probe-station", "caf\u00e9").encode("latin-1")),
                       ("utf16.yaml", text.encode("utf-16")),
                       ("nul-byte.yaml", text.replace("4 K probe", "4\0K probe").encode()),
                       ("deep-list.yaml", b"station: " + b"[" * 20000 + b"]" * 20000 + b"\n"),
                       ("deep-map.yaml", b"station: " + b"{a: " * 5000 + b"1" + b"}" * 5000 + b"\n"),
                       ("mixed-keys.yaml", text.encode() + b"1: 2\nzz: 3\n"),
                       ("nul-chip.yaml", text.replace(f"chip: {STATION['chip']}", f'chip: "{STATION["chip"]}\\0"')
                        .encode())]:
        path = tmp_path / name
        path.write_bytes(data)
        cases.append(path)
    (tmp_path / "a-directory.yaml").mkdir()
    return cases + [tmp_path / "a-directory.yaml", tmp_path / "nul\0in-name.yaml"]


@pytest.mark.timeout(30)
def test_undecodable_nested_and_nul_station_files_are_station_errors(tmp_path):
    for path in _unusual_station_files(tmp_path):
        with pytest.raises(StationError) as error:
            read_station(path)
        assert str(error.value).startswith(f"{path.resolve() if chr(0) not in str(path) else path}: "), str(error.value)
        try:
            emulator_load_station(path)
        except StationFileError as error:
            assert str(error).startswith(f"{path.resolve() if chr(0) not in str(path) else path}: "), str(error)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("anchored", ["station: *l8", "instruments:\n  bias:\n    address: *l8"])
def test_aliases_in_a_station_file_are_refused_by_both_readers_at_once(tmp_path, anchored):
    """~1 KB of nested aliases standing for 9**9 strings, where a message would show the value
    (it used to hang lab's loader, growing 75 MB/s, and the emulator's): refused within a second."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n" + anchored + "\n")
    for load, error in ((read_station, StationError), (emulator_load_station, StationFileError)):
        began = time.monotonic()
        with pytest.raises(error, match=r"line 1: YAML anchor"):
            load(path)
        assert time.monotonic() - began < 1.0


# -- chip files -----------------------------------------------------------------------------------

CHIP_FILES = sorted(CHIPS.glob("*.yaml"))
CHIP_TREES = {p.name: yaml.safe_load(p.read_text()) for p in CHIP_FILES}
_CHIP_MESSAGE = re.compile(r"^(?P<file>.+?): (?:not valid YAML|top level must be a mapping|"
                           r"line \d+: (?:YAML anchor or alias|duplicate key)|(?P<where>chip|element '[^']*'|"
                           r"element #\d+|wire_defaults|ports|outputs|port '[^']*'|output '[^']*'), field '(?P<field>[^']*)': )")


def assert_chip_error(error: ChipFileError, path: Path) -> None:
    message = str(error)
    assert message.startswith(f"{path}: "), message
    assert _CHIP_MESSAGE.match(message), f"chip error names no element and field: {message!r}"


@pytest.mark.timeout(60)
@FILES
@given(chip=st.sampled_from(sorted(CHIP_TREES)), data=st.data())
def test_mutated_chip_files_fail_only_with_a_located_chip_error(tmp_path, chip, data):
    tree = CHIP_TREES[chip]
    paths = key_paths(tree)
    for _ in range(data.draw(st.integers(1, 3))):
        dotted, access = data.draw(st.sampled_from(paths))
        kind = data.draw(st.sampled_from(["delete", "replace", "unknown"]))
        value = data.draw(st.sampled_from(BAD_VALUES))
        try:
            if kind == "delete":
                tree = delete_at(tree, access)
            elif kind == "replace":
                tree = set_at(tree, access, value)
            else:
                parent = get_at(tree, access)
                assume(isinstance(parent, dict))
                tree = copy.deepcopy(tree)
                get_at(tree, access)[data.draw(st.sampled_from(UNKNOWN_KEYS))] = 1.0
        except (KeyError, IndexError, TypeError):
            assume(False)
        paths = key_paths(tree)
    path = tmp_path / chip
    path.write_text(yaml.safe_dump(tree, allow_unicode=True), encoding="utf-8")
    try:
        load_chip(path)
    except ChipFileError as error:
        assert_chip_error(error, path)


CHIP_NUMBERS = [(name, dotted, access) for name, tree in CHIP_TREES.items() for dotted, access in key_paths(tree)
                if access[-1] == "value" and isinstance(get_at(tree, access), (int, float))
                and not isinstance(get_at(tree, access), bool)]


@pytest.mark.timeout(60)
@FILES
@given(target=st.sampled_from(CHIP_NUMBERS), value=st.sampled_from([math.nan, math.inf, -math.inf, "12", None,
                                                                     [1.0], True]))
def test_a_non_numeric_quantity_is_refused_naming_element_and_field(tmp_path, target, value):
    name, dotted, access = target
    path = tmp_path / name
    path.write_text(yaml.safe_dump(set_at(CHIP_TREES[name], access, value), allow_unicode=True), encoding="utf-8")
    with pytest.raises(ChipFileError) as error:
        load_chip(path)
    assert_chip_error(error.value, path)
    field = [a for a in access if isinstance(a, str)][-2]   # the quantity's own key
    assert f"field '{field}'" in str(error.value), str(error.value)


POSITIVE_ELEMENT_VALUES = [(n, d, a) for n, d, a in CHIP_NUMBERS
                           if a[0] == "elements" and a[2] in ("inductance", "resistance")]


@pytest.mark.timeout(60)
@FILES
@given(target=st.sampled_from(POSITIVE_ELEMENT_VALUES), value=st.sampled_from([0.0, -1.0, -1e-300, -20]))
def test_a_non_positive_inductance_or_resistance_is_refused(tmp_path, target, value):
    name, dotted, access = target
    path = tmp_path / name
    path.write_text(yaml.safe_dump(set_at(CHIP_TREES[name], access, value)), encoding="utf-8")
    with pytest.raises(ChipFileError) as error:
        load_chip(path)
    assert_chip_error(error.value, path)
    element = get_at(CHIP_TREES[name], access[:2])["name"]
    assert f"element '{element}', field '{access[2]}'" in str(error.value)


@pytest.mark.timeout(60)
@FILES
@given(chip=st.sampled_from(sorted(CHIP_TREES)), value=st.sampled_from([0, 0.0, -0.0, -1e-300, -3, -273.15]),
       unit=st.sampled_from(["K", "mK", "uK"]))
def test_a_non_positive_chip_temperature_is_refused(tmp_path, chip, value, unit):
    tree = copy.deepcopy(CHIP_TREES[chip])
    tree["temperature"].update(value=value, unit=unit)
    path = tmp_path / chip
    path.write_text(yaml.safe_dump(tree), encoding="utf-8")
    with pytest.raises(ChipFileError) as error:
        load_chip(path)
    assert_chip_error(error.value, path)
    assert "chip, field 'temperature': must be > 0 K" in str(error.value)


@pytest.mark.timeout(60)
@FILES
@given(chip=st.sampled_from(sorted(CHIP_TREES)), data=st.data())
def test_unhashable_names_in_a_chip_file_are_refused_by_field(tmp_path, chip, data):
    """Lists and mappings where the loader looks a name up (element `type`, port `source`,
    output `node`): a ChipFileError naming that element and field."""
    tree = copy.deepcopy(CHIP_TREES[chip])
    value = data.draw(st.sampled_from([[], ["resistor"], {}, {"a": 1}, [[1]]]))
    section = data.draw(st.sampled_from(["elements", "ports", "outputs"]))
    if section == "elements":
        element = data.draw(st.sampled_from(tree["elements"]))
        element["type"], where, fld = value, f"element '{element['name']}'", "type"
    else:
        name = data.draw(st.sampled_from(sorted(tree[section])))
        fld = "source" if section == "ports" else "node"
        tree[section][name][fld], where = value, f"{section[:-1]} '{name}'"
    path = tmp_path / chip
    path.write_text(yaml.safe_dump(tree), encoding="utf-8")
    with pytest.raises(ChipFileError) as error:
        load_chip(path)
    assert_chip_error(error.value, path)
    assert f"{where}, field '{fld}'" in str(error.value), str(error.value)
