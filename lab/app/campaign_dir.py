"""A campaign directory as a unit of work: what an earlier campaign left in it, whether this
campaign may write into it, and what its completed runs hand on.

`CampaignDirectory.inspect` reads the directory without changing it (the manifest, every
finished run file, the `.partial` files) so that a campaign is refused — another station, chip
or seed; an earlier campaign without `--resume`; a hand-off no archive holds — before any lock
is taken or instrument opened. Under the campaign's lock `settle` makes the manifest match the
directory: `.partial` runs are recovered (lab/archive/recover.py) and listed as crashed, run
files the manifest does not know (a kill between a run's end and the manifest's update, or a
`nwlab run` into the directory) are added, runs a kill left "running" without a file are dropped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path

from contracts.records import Axis, Result
from lab.app.manifest import (RUNNING, UNRECOVERABLE, Identity, Manifest, ManifestError, ManifestRun,
                              load_manifest, save_manifest, text_sha256)
from lab.app.report.runs import RunData, RunFileError, archived_mapping, load_run

PARTIAL = ".h5.partial"


class CampaignDirectoryError(ValueError):
    """This campaign must not write into that directory (one line saying why and what to do)."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def identity_of(run: RunData) -> Identity:
    """The campaign identity a run file carries (station and chip texts, emulator seed)."""
    return Identity(str(archived_mapping(run.station_text).get("station", "?")), str(run.metadata.get("station", "?")),
                    text_sha256(run.station_text), str(archived_mapping(run.chip_text).get("name", "?")),
                    text_sha256(run.chip_text), run.emulator_seed)


def results_of(run: RunData) -> dict[str, Result]:
    """A run file's numeric results as the campaign hands them on (`procedures.catalog.hand_off`)."""
    results = {}
    for name, quantity in run.results.items():
        if quantity.is_text:
            continue
        axis = (Axis(quantity.axis_name, quantity.axis_values, quantity.axis_units)
                if quantity.axis_name is not None else None)
        results[name] = Result(name, quantity.value, quantity.units, axis, quantity.uncertainty, quantity.exact)
    return results


@dataclasses.dataclass
class CampaignDirectory:
    path: Path
    identity: Identity
    manifest: Manifest | None
    runs: list[RunData]                  # the readable run files the manifest does not list, in start order
    partials: list[Path]
    unreadable: list[str]                # one line each: run files that cannot be read

    @classmethod
    def inspect(cls, path: str | Path, identity: Identity) -> CampaignDirectory:
        """Read what `path` holds; change nothing (a missing directory or a file holds nothing).
        Run files the manifest lists are not opened here: their entries say what they hold."""
        path = Path(path)
        runs: list[RunData] = []
        partials: list[Path] = []
        unreadable: list[str] = []
        manifest = None
        if path.is_dir():
            try:
                manifest = load_manifest(path)
            except ManifestError as error:
                raise CampaignDirectoryError(str(error)) from error
            listed = manifest.by_archive() if manifest is not None else {}
            try:
                files = sorted(path.iterdir())
            except OSError:              # unreadable: the output directory check says so, in one line
                files = []
            for file in files:
                if file.name.endswith(PARTIAL):
                    partials.append(file)
                elif file.suffix == ".h5" and file.name not in listed:
                    try:
                        runs.append(load_run(file, data=False))
                    except RunFileError as error:
                        unreadable.append(str(error))
        runs.sort(key=lambda r: (r.started_at, r.run_id))
        return cls(path, identity, manifest, runs, partials, unreadable)

    @property
    def holds_campaign(self) -> bool:
        return self.manifest is not None or bool(self.runs or self.partials)

    def check(self, *, resume: bool, only: bool) -> None:
        """Refuse another campaign's directory, naming the difference; refuse to continue an
        earlier campaign of this one unless asked (`--resume`, or `--only` naming what to run)."""
        if not self.holds_campaign:
            return
        there = [(f"{self.path}", self.manifest.identity)] if self.manifest is not None else []
        there += [(f"{run.path}", identity_of(run)) for run in self.runs]
        for where, identity in there:
            differences = identity.differences(self.identity)
            if differences:
                raise CampaignDirectoryError(f"{self.path} holds a campaign of {'; '.join(differences)} "
                                             f"(see {where}); choose another --out")
        if not (resume or only):
            completed = self.completed()
            unfinished = f", {len(self.partials)} unfinished run(s)" if self.partials else ""
            raise CampaignDirectoryError(
                f"{self.path} holds an earlier campaign of {self.identity.station_name} on chip "
                f"{self.identity.chip_name} ({len(completed)} procedure(s) completed{unfinished}): continue it "
                "with --resume (or rerun some procedures with --only), or choose another --out")

    def completed(self) -> dict[str, Path]:
        """procedure -> the run file of its latest completed run in the directory."""
        found = [(r.started_at, r.procedure, self.path / r.archive) for r in
                 (self.manifest.runs if self.manifest is not None else [])
                 if r.status == "completed" and r.archive and (self.path / r.archive).is_file()]
        found += [(r.started_at, r.procedure, r.path) for r in self.runs if r.status == "completed"]
        return {procedure: path for _, procedure, path in sorted(found)}

    def settle(self, command: str, tell: Callable[[str], None]) -> Manifest:
        """Under the campaign's lock: recover `.partial` runs, make the manifest list every run
        file of the directory, and save it (a new one if there was none)."""
        manifest = self.manifest or Manifest(self.identity, created_at=now())
        manifest.runs = [run for run in manifest.runs if run.status != RUNNING]   # a kill left them
        known = manifest.by_archive()
        settled = {run.archive for run in manifest.runs}
        from lab.archive.layout import ArchiveError
        from lab.archive.recover import recover

        for partial in self.partials:
            name = partial.name
            if name in settled:            # noted unrecoverable by an earlier resume
                continue
            try:
                recovered = recover(partial)
            except ArchiveError as error:
                tell(f"not recovered: {error}")
                manifest.runs.append(ManifestRun(name.split("-")[1] if name.count("-") >= 2 else "?",
                                                 UNRECOVERABLE, "", archive=name, message=str(error)))
                continue
            try:
                run = load_run(recovered.path, data=False)
            except RunFileError as error:
                self.unreadable.append(str(error))
                continue
            tell(f"recovered: {name} -> {recovered.path.name} ({run.procedure}, {run.status})")
            self.runs.append(run)
        self.runs.sort(key=lambda r: (r.started_at, r.run_id))
        for run in self.runs:
            if run.path.name not in known:
                manifest.runs.append(ManifestRun(run.procedure, run.status, run.started_at, archive=run.path.name,
                                                 finished_at=run.ended_at, run_id=run.run_id,
                                                 message=run.message, software_version=run.software_version))
        manifest.runs.sort(key=lambda r: r.started_at)
        with_runs = {run.procedure for run in manifest.runs}
        manifest.not_run = {p: why for p, why in manifest.not_run.items() if p not in with_runs}
        if command:
            manifest.commands.append(command)
        self.manifest = manifest
        self.save()
        from lab.execution.provenance import software_version

        earlier = sorted({run.software_version for run in manifest.runs if run.software_version} - {software_version()})
        if earlier:        # a fix between two runs of one campaign is normal; mixing them silently is not
            tell(f"runs here were taken with {', '.join(earlier)}; this is {software_version()} "
                 "(the report lists the runs of each version)")
        return manifest

    def started(self, procedure: str, hand_offs: Mapping[str, str], software_version: str) -> None:
        assert self.manifest is not None
        self.manifest.runs.append(ManifestRun(procedure, RUNNING, now(), hand_offs=dict(hand_offs),
                                              software_version=software_version))
        if software_version not in self.manifest.software_versions:
            self.manifest.software_versions.append(software_version)
        self.save()

    def finished(self, procedure: str, run_id: str, archive: Path | None, status: str, message: str) -> None:
        entry = self._running(procedure)
        if entry is None:
            return
        if archive is None:          # refused before its archive opened: no run to list
            self.manifest.runs.remove(entry)
        else:
            entry.status, entry.archive, entry.run_id = status, Path(archive).name, run_id
            entry.finished_at, entry.message = now(), message
            self.manifest.not_run.pop(procedure, None)
        self.save()

    def not_run(self, reasons: Mapping[str, str]) -> None:
        assert self.manifest is not None
        with_runs = {run.procedure for run in self.manifest.runs}
        self.manifest.not_run.update({p: why for p, why in reasons.items() if p not in with_runs})

    def _running(self, procedure: str) -> ManifestRun | None:
        if self.manifest is None:
            return None
        return next((r for r in reversed(self.manifest.runs) if r.procedure == procedure and r.status == RUNNING),
                    None)

    def save(self) -> None:
        """Write the manifest (OSError if the directory cannot take it)."""
        assert self.manifest is not None
        self.manifest.updated_at = now()
        save_manifest(self.path, self.manifest)

    def remarks(self) -> list[str]:
        """What the report says about the directory besides its runs."""
        lines = [f"Left out, unreadable: {why}" for why in self.unreadable]
        if self.manifest is not None:
            lines += [f"Left out, not recoverable: `{r.archive}`: {r.message}" for r in self.manifest.runs
                      if r.status == UNRECOVERABLE]
            lines += self._versions_remark()
        return lines

    def _versions_remark(self) -> list[str]:
        by_version: dict[str, list[str]] = {}
        for run in self.manifest.runs:
            if run.software_version and run.archive:
                by_version.setdefault(run.software_version, []).append(run.procedure)
        if len(by_version) < 2:
            return []
        return ["Runs in this directory were taken with more than one software version: "
                + "; ".join(f"{version} ({', '.join(dict.fromkeys(procedures))})"
                            for version, procedures in by_version.items())
                + ". Compare results across versions with `nwlab archive compare`."]
