"""report.html opened in a real headless Chromium (Debian's chromium and chromium-driver, which
`.ci/env --test-tools` installs): it loads from the file alone with no console error, its
figures decode, its summary table renders, and a screenshot of it is a picture, not a blank page."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest

from lab.app.report.markdown import write_report
from procedures.cooldown import Cooldown
from procedures.iv_sweep import IvSweep
from tests.lab.test_report import archive, cooldown_records, iv_records

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WINDOW = (1280, 1600)


def chromium_driver():
    """A headless Chromium through selenium and the Debian chromedriver; skips saying what is missing."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        pytest.skip(f"selenium is not installed ({exc}); `.ci/env --test-tools python -m pytest` installs it")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if browser is None or driver_path is None:
        pytest.skip("headless Chromium is missing (Debian packages chromium and chromium-driver; "
                    "`.ci/env --test-tools` installs them where it may)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={WINDOW[0]},{WINDOW[1]}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=options)


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("browser")
    rng = np.random.default_rng(7)
    archive(directory, Cooldown(), cooldown_records(rng), index=0, stage_temperature_k=3.2)
    archive(directory, IvSweep(), iv_records(rng), index=1, stage_temperature_k=3.17)
    write_report(directory)
    return directory / "report.html"


def test_report_html_opens_in_headless_chromium(report_html):
    import matplotlib.image

    driver = chromium_driver()
    try:
        driver.get(report_html.as_uri())
        assert driver.execute_script("return document.readyState") == "complete"
        assert driver.title == "Characterization campaign report"
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
        assert len(images) == 2 and all(done and width > 500 and height > 300 for done, width, height in images)
        headers = driver.execute_script(
            "return Array.from(document.querySelectorAll('table.summary th')).map(th => th.textContent)")
        assert headers[:2] == ["figure", "measured"] and "deviation (σ)" in headers
        first_table = driver.execute_script("return document.querySelector('table').className")
        assert first_table == "summary"
        # The archive links resolve to the run files beside the report.
        links = driver.execute_script("return Array.from(document.links).map(a => a.href)")
        assert links and all(Path(href.removeprefix("file://")).is_file() for href in links)
        screenshot = driver.get_screenshot_as_png()
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    finally:
        driver.quit()
    assert not errors, errors
    assert screenshot[:8] == PNG_SIGNATURE
    pixels = matplotlib.image.imread(io.BytesIO(screenshot), format="png")
    assert pixels.shape[0] >= WINDOW[1] * 0.8 and pixels.shape[1] >= WINDOW[0] * 0.8, pixels.shape
    assert pixels[..., :3].std() > 0.05                   # text, tables and a figure, not a blank page
    assert (pixels[..., :3].mean(axis=2) < 0.5).mean() > 0.005    # some dark ink (text) on the page
