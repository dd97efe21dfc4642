"""A campaign resumed with another software version says so, at the terminal and in the report."""

from __future__ import annotations

from lab.app.campaign_dir import CampaignDirectory
from lab.app.manifest import Identity, Manifest, ManifestRun, load_manifest
from lab.execution.provenance import software_version

IDENTITY = Identity("emulated", "stations/emulated.yaml", "0" * 64, "default-neuron", "1" * 64, 7)


def directory_with(tmp_path, versions: list[tuple[str, str]]) -> CampaignDirectory:
    manifest = Manifest(IDENTITY, "2026-12-04T00:00:00", runs=[
        ManifestRun(procedure, "completed", f"2026-12-04T00:0{i}:00", archive=f"{procedure}.h5", software_version=v)
        for i, (procedure, v) in enumerate(versions)])
    return CampaignDirectory(tmp_path, IDENTITY, manifest, [], [], [])


def test_runs_of_two_versions_are_named_in_the_report_and_at_the_terminal(tmp_path):
    directory = directory_with(tmp_path, [("cooldown", "nwlab 0.1.0 (abc1234)"), ("iv_sweep", "nwlab 0.1.0 (abc1234)"),
                                          ("strength_duration", software_version())])
    told: list[str] = []
    directory.settle("nwlab campaign --resume", told.append)
    assert told == [f"runs here were taken with nwlab 0.1.0 (abc1234); this is {software_version()} "
                    "(the report lists the runs of each version)"]
    (remark,) = [line for line in directory.remarks() if "software version" in line]
    assert "nwlab 0.1.0 (abc1234) (cooldown, iv_sweep)" in remark
    assert f"{software_version()} (strength_duration)" in remark
    assert load_manifest(tmp_path).runs[0].software_version == "nwlab 0.1.0 (abc1234)"   # settled, saved


def test_one_version_says_nothing(tmp_path):
    directory = directory_with(tmp_path, [("cooldown", software_version()), ("iv_sweep", software_version())])
    told: list[str] = []
    directory.settle("", told.append)
    assert told == [] and not any("version" in line for line in directory.remarks())
