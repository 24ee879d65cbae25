"""The admin console in a real headless Chromium (selenium + chromedriver) against the live
worker: sign in, request exports through the form, watch them, download, cancel, CCPA, and a
refused token. Screenshots of each step are kept in $ARTIFACTS_DIR (or test-artifacts/console/).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver as Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.e2e.conftest import BIG, JWT_SECRET, ROOT, Worker, supreme_token
from web.devtoken import mint_token

CAMPAIGN = "cmp-e2e"
CHROMIUM_NAMES = ("chromium", "chromium-browser")


def _find_browser() -> tuple[str, str] | None:
    browser = next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)
    driver = shutil.which("chromedriver") or (
        "/usr/lib/chromium/chromedriver"
        if Path("/usr/lib/chromium/chromedriver").exists()
        else None
    )
    return (browser, driver) if browser and driver else None


def _artifacts_dir() -> Path:
    base = os.environ.get("ARTIFACTS_DIR")
    path = Path(base) / "console" if base else ROOT / "test-artifacts" / "console"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Console:
    """The browser on the console page, with explicit waits and numbered screenshots."""

    driver: Chrome
    base_url: str
    artifacts: Path
    shots: list[Path] = field(default_factory=list)

    def wait(self, condition: Callable[[WebDriver], Any], timeout: float, what: str) -> Any:
        """What `condition` returns once it is truthy; a screenshot when the deadline passes."""
        waiter = WebDriverWait(
            self.driver,
            timeout,
            poll_frequency=0.2,
            ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
        )
        try:
            return waiter.until(condition, what)
        except TimeoutException:
            self.shot(f"timeout-{what[:40]}")
            raise

    def shot(self, name: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)
        path = self.artifacts / f"{len(self.shots) + 1:02d}-{safe}.png"
        self.driver.save_screenshot(str(path))
        self.shots.append(path)
        return path

    def by_id(self, element_id: str) -> WebElement:
        return self.driver.find_element(By.ID, element_id)

    def visible(self, element_id: str, timeout: float = 15) -> WebElement:
        found: WebElement = self.wait(
            ec.visibility_of_element_located((By.ID, element_id)), timeout, f"#{element_id}"
        )
        return found

    def fresh(self) -> None:
        """The console with an empty session, as a new tab would open it."""
        self.driver.get(f"{self.base_url}/console")  # the redirect to /console/ is followed
        self.driver.execute_script("window.sessionStorage.clear()")
        self.driver.refresh()
        self.visible("signin")

    def sign_in(self, token: str) -> None:
        box = self.visible("token")
        box.clear()
        box.send_keys(token)
        self.by_id("signin-submit").click()

    def open_campaign(self, campaign_id: str) -> None:
        box = self.visible("campaign")
        box.clear()
        box.send_keys(campaign_id)
        self.by_id("campaign-open").click()
        self.wait(
            lambda d: d.find_element(By.ID, "campaign-title").text == campaign_id,
            10,
            "the campaign to open",
        )

    def choose_type(self, export_type: str) -> None:
        css = f'#export-type option[value="{export_type}"]'
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, css), 15, "the export types")
        Select(self.by_id("export-type")).select_by_value(export_type)

    def param(self, name: str) -> WebElement:
        return self.driver.find_element(
            By.CSS_SELECTOR, f'#param-fields [data-param="{name}"]:is(input, select)'
        )

    def field_error(self, name: str, timeout: float = 15) -> str:
        css = f'#param-fields .field[data-param="{name}"] .field-error'
        element: WebElement = self.wait(
            lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, css) if e.text), None),
            timeout,
            f"an error next to {name}",
        )
        return element.text

    def submit_request(self) -> str:
        """Submit the form; the id of the export it opens."""
        before = self.by_id("detail-id").text if self.by_id("detail-panel").is_displayed() else ""
        self.by_id("request-submit").click()
        return str(
            self.wait(
                lambda d: (
                    d.find_element(By.ID, "detail-panel").is_displayed()
                    and (text := d.find_element(By.ID, "detail-id").text) != before
                    and text
                ),
                20,
                "the requested export to open",
            )
        )

    def row(self, export_id: str) -> WebElement:
        return self.driver.find_element(
            By.CSS_SELECTOR, f'#exports-body tr[data-export-id="{export_id}"]'
        )

    def wait_status(self, export_id: str, status: str, timeout: float) -> WebElement:
        def reached(d: WebDriver) -> WebElement | None:
            row = self.row(export_id)
            current = row.get_attribute("data-status")
            if current == status:
                return row
            if current in {"FINISHED", "FAILED", "EXPIRED", "CANCELLED"}:
                raise AssertionError(f"export {export_id} ended {current}, not {status}")
            return None

        found: WebElement = self.wait(reached, timeout, f"export {export_id} {status}")
        return found

    def assert_no_script_errors(self) -> None:
        """No CSP violation and no uncaught exception in the page (failed API calls that the
        page shows, such as a 403, are logged by Chromium as network errors and pass)."""
        log: list[dict[str, Any]] = self.driver.get_log("browser")  # type: ignore[no-untyped-call]
        problems = [
            entry["message"]
            for entry in log
            if "Content Security Policy" in entry["message"] or "Uncaught" in entry["message"]
        ]
        assert problems == []


@pytest.fixture(scope="module")
def console(worker: Worker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    found = _find_browser()
    if found is None:
        reason = "no chromium + chromedriver (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI must run the console's browser test")
        pytest.skip(reason)
    browser, driver_path = found
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    # Without the background-networking flags Chromium dials out at start (updates, sync),
    # which a closed network refuses.
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1440,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    artifacts = _artifacts_dir()
    for old in artifacts.glob("*.png"):
        old.unlink()
    session = Console(driver, worker.base_url, artifacts)
    try:
        yield session
    finally:
        driver.quit()
        print(f"\nconsole screenshots ({len(session.shots)}): {artifacts}")


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return bytes(response.read())


def test_request_watch_download_and_ccpa(console: Console, worker: Worker) -> None:
    ccpa_status, ccpa = worker.request("DELETE", f"/ccpa/users/console-nobody-{uuid.uuid4().hex}")
    assert ccpa_status == 202
    console.fresh()
    console.shot("signin")
    console.sign_in(supreme_token("console-admin"))
    console.visible("workspace")
    assert console.by_id("who").text == "console-admin"
    assert console.by_id("supreme-badge").is_displayed()
    console.open_campaign(CAMPAIGN)
    console.visible("request-panel")
    console.shot("campaign")

    # The server's validation errors are shown next to the field they are about.
    console.choose_type("reminderEmailSample")
    console.param("sampleSize").send_keys("5000")
    console.by_id("request-submit").click()
    assert "1000" in console.field_error("sampleSize")
    assert "INVALID_PARAMS" in console.by_id("request-error").text
    console.shot("validation-out-of-range")
    console.choose_type("codeWave")
    console.by_id("request-submit").click()
    assert "required" in console.field_error("waveId").lower()
    console.shot("validation-required")

    # Hostile text (markup, quotes, unicode) is shown as text and never runs.
    wave = f"<script>alert(\"x\")</script> 'ünï' & {uuid.uuid4().hex[:8]}"
    console.param("waveId").send_keys(wave)
    export_id = console.submit_request()
    first = console.driver.find_element(By.CSS_SELECTOR, "#exports-body tr")
    assert first.get_attribute("data-export-id") == export_id  # newest first
    row = console.wait_status(export_id, "FINISHED", timeout=120)
    params = row.find_element(By.CSS_SELECTOR, "code.params").text
    assert params == json.dumps({"waveId": wave}, ensure_ascii=False, separators=(",", ":"))
    assert console.driver.find_elements(By.CSS_SELECTOR, "main script") == []
    assert "rows" in row.find_element(By.CSS_SELECTOR, ".progress-text").text
    assert "null" not in row.text
    assert "undefined" not in row.text

    # Every object's link gives the object's bytes (presigned URLs on the S3 server's origin).
    links = console.wait(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#detail-objects a.download"),
        20,
        "download links",
    )
    console.shot("finished-with-downloads")
    record = worker.get_export(CAMPAIGN, export_id)
    assert record is not None
    assert record["status"] == "FINISHED"
    objects = {o["key"]: o for o in record["objects"]}
    assert sorted(str(a.get_attribute("data-key")) for a in links) == sorted(objects)
    for link in links:
        assert link.get_attribute("rel") == "noopener noreferrer"
        data = _fetch(str(link.get_attribute("href")))
        expected = objects[str(link.get_attribute("data-key"))]
        assert len(data) == expected["size"]
        assert hashlib.sha256(data).hexdigest() == expected["sha256"]
    # And followed as a user would: Chromium clicks the link and saves the object.
    downloads = Path(tempfile.mkdtemp(prefix="console-downloads-"))
    console.driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    main_window = console.driver.current_window_handle
    links[0].click()
    saved = console.wait(
        lambda _d: [p for p in downloads.iterdir() if not p.name.endswith(".crdownload")],
        30,
        "the browser to save the object",
    )
    expected = objects[str(links[0].get_attribute("data-key"))]
    assert hashlib.sha256(saved[0].read_bytes()).hexdigest() == expected["sha256"]
    for handle in console.driver.window_handles:
        if handle != main_window:
            console.driver.switch_to.window(handle)
            console.driver.close()
    console.driver.switch_to.window(main_window)

    # CCPA requests (supreme): the one requested above, followed until it completes.
    console.visible("ccpa-panel")
    css = f'#ccpa-body tr[data-request-id="{ccpa["requestId"]}"]'
    console.driver.find_element(By.ID, "ccpa-refresh").click()
    console.wait(
        lambda d: "COMPLETED" in d.find_element(By.CSS_SELECTOR, css).text,
        120,
        "the CCPA request to complete",
    )
    console.driver.execute_script("arguments[0].scrollIntoView()", console.by_id("ccpa-panel"))
    console.shot("ccpa-requests")
    console.assert_no_script_errors()


def test_watch_progress_and_cancel_a_running_export(
    console: Console, worker: Worker, big_campaign: int
) -> None:
    console.fresh()
    console.sign_in(supreme_token("console-admin"))
    console.open_campaign(BIG)
    console.choose_type("entries")
    export_id = console.submit_request()

    def running(d: WebDriver) -> WebElement | None:
        row = console.row(export_id)
        status = row.get_attribute("data-status")
        if status != "TRIGGERED" and status != "PENDING":
            raise AssertionError(f"export {export_id} ended {status} before it was cancelled")
        rate = row.find_element(By.CSS_SELECTOR, ".rate").text
        return row if status == "TRIGGERED" and "rows/s" in rate and "ETA" in rate else None

    row = console.wait(running, 90, "progress with rate and ETA")
    progress_text = row.find_element(By.CSS_SELECTOR, ".progress-text").text
    assert " documents (" in progress_text  # rows of the preliminary count, share from the ETA
    bar = row.find_element(By.CSS_SELECTOR, "progress")
    assert 0 <= float(bar.get_attribute("value") or "0") < 1
    assert "null" not in row.text
    assert console.by_id("live").is_displayed()
    console.shot("running-progress")

    row.find_element(By.CSS_SELECTOR, "button.cancel").click()
    console.wait(ec.alert_is_present(), 5, "the confirmation").accept()
    row = console.wait_status(export_id, "CANCELLED", timeout=30)
    assert not row.find_element(By.CSS_SELECTOR, "button.cancel").is_displayed()
    assert "CANCELLED" in console.visible("banner").text
    console.wait(lambda d: not d.find_element(By.ID, "live").is_displayed(), 10, "polling to end")
    console.shot("cancelled")
    final = worker.get_export(BIG, export_id)
    assert final is not None
    assert final["status"] == "CANCELLED"
    console.assert_no_script_errors()


def test_a_token_without_report_is_refused_and_sign_out_forgets_it(
    console: Console, worker: Worker
) -> None:
    console.fresh()
    console.sign_in("not-a-jwt")
    error = console.visible("signin-error")
    assert "UNAUTHENTICATED" in error.text
    console.shot("bad-token")

    other = mint_token(
        JWT_SECRET, sub="console-reporter", permissions={"cmp-other": ["REPORT"]}, expires_in=600
    )
    console.sign_in(other)
    console.visible("workspace")
    assert not console.by_id("supreme-badge").is_displayed()
    assert not console.by_id("ccpa-panel").is_displayed()
    options = console.driver.find_elements(By.CSS_SELECTOR, "#campaign-list option")
    assert [o.get_attribute("value") for o in options] == ["cmp-other"]
    console.open_campaign(CAMPAIGN)
    refusal = console.visible("exports-error")
    assert "FORBIDDEN" in refusal.text
    assert "REPORT" in refusal.text
    assert not console.by_id("request-panel").is_displayed()
    assert not console.by_id("exports-table").is_displayed()
    console.shot("forbidden")

    stored = console.driver.execute_script(
        "return window.sessionStorage.getItem(arguments[0])", "exportService.token"
    )
    assert stored == other
    assert console.driver.execute_script("return window.localStorage.length") == 0
    console.by_id("sign-out").click()
    assert console.visible("signin-error").text == "Signed out."
    assert console.driver.execute_script("return window.sessionStorage.length") == 0
    console.shot("signed-out")
    console.assert_no_script_errors()
