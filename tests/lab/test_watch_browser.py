"""The live page in a real headless Chromium (Debian's chromium and chromium-driver, which
`.ci/env --test-tools` installs) against a campaign running on the emulated station with a
fridge excursion injected: the page loads without console errors, the running procedure's
figure gains points while the run goes, a completed run's results appear, the excursion shows
as an incident, the stop button (with the token in the page's address) ends the campaign as
Ctrl-C does, and a screenshot is kept as a test artefact (`test-artifacts/live-view.png`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from tests.lab.test_report_browser import chromium_driver
from tests.lab.watch_helpers import ROOT, private_station, start, until

pytestmark = pytest.mark.slow

ARTIFACTS = Path(os.environ.get("NWLAB_TEST_ARTIFACTS", ROOT / "test-artifacts"))
#: A fridge excursion inside iv_sweep, the first run (the instruments open in 1,000-4,000 lab s
#: at the station's 600x clock, slower on a loaded machine; iv_sweep then takes ~3,400 lab s on a
#: quiet machine, more on a loaded one: an excursion at 6,000 lab s once fell after it ended). One
#: that begins while the instruments open is iv_sweep's too: the run finds the stage out of its
#: window at its start and waits.
#: with no cooldown run the heater does not regulate, and 2 W take the stage to ~6 K, out of
#: the window [2, 4.5] K, for the excursion's 6,000 lab s (10 s of wall time): longer than any
#: one bias sweep, so it shows wherever it falls (a shorter one inside a sweep is caught by the
#: 336's min/max capture, tests/lab/test_temperature_capture.py). The run sits it out: the
#: station waits up to `EXCURSION_WAIT_S` for the stage to come back.
EXCURSION = {"after_s": 2500, "duration_s": 6000, "heat_w": 2.0}
EXCURSION_WAIT_S = 20000.0


def page_value(driver, script: str):
    return driver.execute_script(script)


def severe_console_entries(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]


@pytest.mark.timeout(420)
def test_live_page_follows_a_campaign_in_chromium(tmp_path):
    driver = chromium_driver()          # skips, saying what is missing, before anything starts
    station = private_station(tmp_path, faults={"cryostat": {"fridge_excursion": EXCURSION}})
    tree = yaml.safe_load(station.read_text())
    tree["guards"]["excursion_wait_s"] = EXCURSION_WAIT_S
    station.write_text(yaml.safe_dump(tree, sort_keys=False))
    out = tmp_path / "campaign"
    # The cooldown left out: the stage starts cold and unregulated.
    served = start(["campaign", "--station", str(station), "--out", str(out), "--only", "iv_sweep",
                    "--only", "strength_duration", "--quiet", "--watch", "0"])
    try:
        driver.get(f"{served.base}/?token={served.token}")
        until(lambda: int(page_value(driver, "return Number(document.body.dataset.updates || 0)")) > 0, 30,
              "a first state rendered")
        # The first state comes by a plain request; then the event stream connects.
        until(lambda: page_value(driver, "return document.querySelector('#connection').dataset.state")
              == "connected", 30, "the event stream connected")

        # The running procedure's figure gains points while the run goes: the switching-current
        # histogram, one event at a time (the I-V curve's sweeps arrive whole, first).
        histogram = ("#runs .run[data-procedure='iv_sweep'][data-status='running'] "
                     ".figure[data-figure-id='iv_sweep/switching_histogram']")

        def events() -> int:
            return int(page_value(driver, f"const f = document.querySelector(\"{histogram}\"); "
                                          "return f ? Number(f.dataset.points) : 0") or 0)

        first = until(events, 150, "the switching histogram of the running iv_sweep on the page")
        assert page_value(driver, f"return document.querySelector(\"{histogram} canvas\") !== null")
        until(lambda: events() > first, 120, f"the histogram growing beyond {first} events while iv_sweep runs")

        # The injected excursion, as an incident, while the campaign still runs.
        incident = until(lambda: page_value(driver, "return [...document.querySelectorAll('#incidents li.incident')]"
                                                    ".map(li => li.textContent).find(t => /window/.test(t)) || ''"),
                         150, "the fridge excursion listed as an incident")
        assert "K" in incident and "iv_sweep" in incident, incident
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "live-view.png"))
        assert (ARTIFACTS / "live-view.png").stat().st_size > 20_000

        # A completed run's results: iv_sweep's table, with what its archive holds.
        table = "#runs .run[data-procedure='iv_sweep'][data-status='completed'] table.results"
        results = until(lambda: page_value(driver, f"const t = document.querySelector(\"{table}\"); "
                                                   "return t ? t.textContent : ''"), 150, "iv_sweep's results")
        assert "switching_current" in results, results

        # The stop button, offered because the address carries the token, stops it as Ctrl-C does.
        until(lambda: page_value(driver, "return document.querySelector(\"#runs .run[data-procedure="
                                         "'strength_duration'][data-status='running'] .figure\") !== null"), 240,
              "strength_duration running, its archive drawn")
        driver.find_element("css selector", "#stop-button").click()
        driver.switch_to.alert.accept()
        until(lambda: "stop requested" in page_value(driver, "return document.querySelector('#stop-answer')"
                                                              ".innerText"), 20, "the stop request's answer")
        served.process.wait(timeout=120)
        until(lambda: page_value(driver, "return document.querySelector('#campaign-state').innerText")
              .strip().lower().startswith("interrupted") or page_value(
                  driver, "return document.querySelector('#connection').dataset.state") == "reconnecting",
              20, "the page showing the campaign interrupted (or the server gone with it)")
        entries = severe_console_entries(driver)
        # The server ends with the campaign: the event stream's reconnect attempts are the
        # browser's own network messages, not the page's errors.
        page_errors = [e for e in entries if "/events" not in e["message"] and "ERR_CONNECTION_REFUSED" not in
                       e["message"]]
        assert page_errors == [], page_errors
    finally:
        served.stop()
        driver.quit()
    manifest = json.loads((out / "campaign.json").read_text())
    statuses = {run["procedure"]: run["status"] for run in manifest["runs"]}
    # Stopped as Ctrl-C stops it: the running run archived as aborted (or, had the signal come
    # before its archive opened, not run, the campaign interrupted); nothing started after it.
    assert statuses["iv_sweep"] == "completed", statuses
    assert statuses.get("strength_duration") == "aborted" or "interrupted" in manifest["not_run"].get(
        "strength_duration", ""), (statuses, manifest["not_run"])
    incidents = [json.loads(line) for line in (out / "live-events.jsonl").read_text().splitlines()]
    assert any(e["kind"] == "incident" and "window" in e["text"] for e in incidents)
