"""The campaign manifest: `campaign.json` in a campaign directory, which `--resume` reads.

It names what the campaign is — the station file (its path, name and the sha256 of its text), the
chip (name, sha256 of its file), the emulator seed — the software that wrote into it, and every
run: procedure, archive file, status, when it started and finished, and where its hand-offs
came from. It is rewritten whole after every run through a temporary file and a rename, so a
kill leaves the previous complete version, never half of one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.files.station import Station

MANIFEST_NAME = "campaign.json"
FORMAT = 1
#: A run the campaign started and has not yet seen end (a kill leaves it so; resume settles it).
RUNNING = "running"
#: A `.partial` that `lab.archive.recover` could not recover (left as it was).
UNRECOVERABLE = "unrecoverable"


class ManifestError(ValueError):
    """A `campaign.json` that cannot be read (damaged, another format)."""


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Identity:
    """What makes two campaigns the same campaign: station, chip and emulator seed."""
    station_name: str
    station_path: str
    station_sha256: str
    chip_name: str
    chip_sha256: str
    emulator_seed: int | None

    @classmethod
    def of(cls, station: Station, chip_name: str) -> Identity:
        return cls(station.name, str(station.path), text_sha256(station.text), chip_name,
                   text_sha256(station.chip_path.read_text()),
                   station.emulator_seed if station.is_emulated else None)

    def differences(self, other: Identity) -> list[str]:
        """One phrase per difference that makes `other` another campaign ("there" is self)."""
        found = []
        if self.station_sha256 != other.station_sha256:
            found.append(f"another station file: {self.station_name} ({self.station_path}, sha256 "
                         f"{self.station_sha256[:12]}) there, {other.station_name} ({other.station_path}, "
                         f"sha256 {other.station_sha256[:12]}) here")
        if self.chip_sha256 != other.chip_sha256:
            found.append(f"another chip: {self.chip_name} (sha256 {self.chip_sha256[:12]}) there, "
                         f"{other.chip_name} (sha256 {other.chip_sha256[:12]}) here")
        if self.emulator_seed != other.emulator_seed:
            found.append(f"another emulator seed: {self.emulator_seed} there, {other.emulator_seed} here")
        return found


@dataclass
class ManifestRun:
    procedure: str
    status: str                        # running, completed, failed, aborted, crashed, unrecoverable
    started_at: str
    archive: str | None = None         # file name in the campaign directory
    finished_at: str = ""
    run_id: str = ""
    message: str = ""
    software_version: str = ""
    hand_offs: dict[str, str] = field(default_factory=dict)   # parameter -> archive it came from


@dataclass
class Manifest:
    identity: Identity
    created_at: str
    runs: list[ManifestRun] = field(default_factory=list)
    software_versions: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    not_run: dict[str, str] = field(default_factory=dict)     # procedure without a run -> why
    updated_at: str = ""

    def completed(self) -> dict[str, ManifestRun]:
        """procedure -> its latest completed run."""
        latest: dict[str, ManifestRun] = {}
        for run in self.runs:
            if run.status == "completed" and run.archive:
                latest[run.procedure] = run
        return latest

    def by_archive(self) -> dict[str, ManifestRun]:
        return {run.archive: run for run in self.runs if run.archive}

    def to_json(self) -> dict[str, Any]:
        tree = dataclasses.asdict(self)
        return {"format": FORMAT, **tree}

    @classmethod
    def from_json(cls, tree: Any, path: Path) -> Manifest:
        try:
            if tree.get("format") != FORMAT:
                raise ManifestError(f"{path}: manifest format {tree.get('format')!r}, this nwlab reads {FORMAT}")
            fields = {f.name for f in dataclasses.fields(cls)}
            values = {k: v for k, v in tree.items() if k in fields}
            values["identity"] = Identity(**values["identity"])
            values["runs"] = [ManifestRun(**run) for run in values.get("runs", [])]
            return cls(**values)
        except ManifestError:
            raise
        except (AttributeError, KeyError, TypeError) as exc:
            raise ManifestError(f"{path}: not a campaign manifest ({type(exc).__name__}: {exc})") from exc


def manifest_path(directory: str | Path) -> Path:
    return Path(directory) / MANIFEST_NAME


def load_manifest(directory: str | Path) -> Manifest | None:
    """The manifest of `directory`, or None when it has none."""
    path = manifest_path(directory)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    try:
        tree = json.loads(text)
    except ValueError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc}); move it aside to start the directory afresh") from exc
    return Manifest.from_json(tree, path)


def save_manifest(directory: str | Path, manifest: Manifest) -> Path:
    """Write the manifest whole: a temporary file, flushed to disk, renamed over the old one.
    Raises OSError (the caller names it) when the directory cannot take it."""
    path = manifest_path(directory)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w") as stream:
            json.dump(manifest.to_json(), stream, indent=1)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
