"""The Airflow UI in a real browser: log in, see the four DAGs, trigger k2f_launch with a click.

Headless Chromium from Debian's packages (`ensure_browser` in dev/lib.sh; `make test` runs it). The click
must not start a streaming job on the shared stack, so k2f_launch is paused through the REST API first and
the dialog's "unpause on trigger" box is cleared: the new run stays queued, and is deleted afterwards.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from dev.airflow_api import AirflowApi

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DAG_IDS = ("k2f_launch", "k2f_health", "k2f_error_replay", "k2f_drain")
LAUNCH = "k2f_launch"
WAIT = 20  # seconds for any one thing to appear; the whole test takes a few
# React replaces nodes as data arrives: a node found a moment ago may be gone, so look again.
RETRY_ON = (StaleElementReferenceException,)

# Airflow's own test ids (airflow-core/src/airflow/ui), steadier than Chakra's generated classes and ids.
DAG_ID_LINK = (By.CSS_SELECTOR, "a[data-testid='dag-id']")
TRIGGER_SUBMIT = (By.CSS_SELECTOR, "[data-testid='trigger-dag-submit']")
DIALOG = (By.CSS_SELECTOR, "[role='dialog']")
UNPAUSE_BOX = (By.XPATH, ".//label[@data-scope='checkbox'][.//*[starts-with(normalize-space(), 'Unpause ')]]")


def _card_trigger_button(dag_id: str) -> tuple[str, str]:
    return (
        By.XPATH,
        f"//*[@data-testid='dag-card'][.//a[@data-testid='dag-id' and normalize-space()='{dag_id}']]"
        "//*[@data-testid='trigger-dag-button']",
    )


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not found; install with "
            "`source dev/lib.sh && ensure_browser` (apt-get install chromium chromium-driver; `make test` does it)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # Root in a container: no sandbox, and /dev/shm is small.
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    # The selectors match English labels; Airflow's UI follows the browser's language.
    options.add_argument("--lang=en-US")
    options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    # An explicit driver path keeps Selenium Manager from trying to download a browser or driver.
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def _new_manual_runs(airflow: AirflowApi, known: set[str]) -> list[dict[str, Any]]:
    """Manual runs of k2f_launch created since `known` was taken, other than through the REST API.

    Airflow records `triggered_by: ui` when the trigger request carries a Referer, as a browser's does, and
    `rest_api` for other clients: those are other tests on the shared stack, not ours to count or delete.
    """
    return [
        r
        for r in airflow.runs(LAUNCH, run_type="manual")
        if r["dag_run_id"] not in known and r["triggered_by"] != "rest_api"
    ]


def _visible_dag_ids(driver: WebDriver) -> set[str]:
    return {e.text.strip() for e in driver.find_elements(*DAG_ID_LINK) if e.is_displayed()}


def _wait_for_dag_ids(driver: WebDriver) -> set[str]:
    """The DAG ids shown once all of DAG_IDS are, or whatever is shown when the wait gives up."""
    seen: set[str] = set()

    def all_shown(d: WebDriver) -> bool:
        nonlocal seen
        seen = _visible_dag_ids(d)
        return set(DAG_IDS) <= seen

    try:
        WebDriverWait(driver, WAIT, ignored_exceptions=RETRY_ON).until(all_shown)
    except TimeoutException:
        pass  # the caller's assert names what is missing
    return seen


def _log_in(driver: WebDriver, base_url: str) -> None:
    driver.get(f"{base_url}/auth/login?next=%2Fdags")
    wait = WebDriverWait(driver, WAIT)
    wait.until(ec.visibility_of_element_located((By.NAME, "username"))).send_keys("admin")
    driver.find_element(By.NAME, "password").send_keys("admin")
    # The button stays disabled until both fields are filled.
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "button[type='submit']"))).click()


def _trigger_without_unpausing(driver: WebDriver, dag_id: str) -> None:
    wait = WebDriverWait(driver, WAIT, ignored_exceptions=RETRY_ON)
    wait.until(ec.element_to_be_clickable(_card_trigger_button(dag_id))).click()
    dialog = wait.until(ec.visibility_of_element_located(DIALOG))
    wait.until(lambda _: dag_id in dialog.text)

    def unpause_box() -> WebElement:
        return dialog.find_element(*UNPAUSE_BOX)

    # Shown, and ticked by default, only because the DAG is paused; the dialog learns that from a request
    # of its own, so wait for the box rather than assume it is absent. Left ticked, the run would start.
    if wait.until(lambda _: unpause_box().get_attribute("data-state")) == "checked":
        unpause_box().click()
    wait.until(lambda _: unpause_box().get_attribute("data-state") == "unchecked")
    assert not unpause_box().find_element(By.TAG_NAME, "input").is_selected()
    wait.until(ec.element_to_be_clickable(TRIGGER_SUBMIT)).click()
    # The dialog closes once the API has accepted the run.
    wait.until(ec.staleness_of(dialog))


def test_log_in_see_the_dags_and_trigger_launch_with_a_click(browser: WebDriver, env, tmp_path):
    base_url = f"http://127.0.0.1:{env['AIRFLOW_PORT']}"
    with AirflowApi(base_url) as airflow:
        was_paused = airflow.is_paused(LAUNCH)
        known = {r["dag_run_id"] for r in airflow.runs(LAUNCH)}
        airflow.set_paused(LAUNCH, True)
        try:
            try:
                _log_in(browser, base_url)
                visible = _wait_for_dag_ids(browser)
                assert set(DAG_IDS) <= visible, f"DAG list shows {sorted(visible)}, missing {set(DAG_IDS) - visible}"

                _trigger_without_unpausing(browser, LAUNCH)
            except Exception:
                # Best effort: a browser that died must not hide the failure that matters.
                with contextlib.suppress(WebDriverException, OSError):
                    browser.save_screenshot(str(tmp_path / "airflow-ui.png"))
                    (tmp_path / "airflow-ui.html").write_text(browser.page_source)
                    print(f"browser state at failure: {tmp_path}/airflow-ui.png and airflow-ui.html")
                raise

            deadline = time.monotonic() + WAIT
            while not (created := _new_manual_runs(airflow, known)) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert len(created) == 1, f"expected one new manual run of {LAUNCH} from the UI, found {created}"
            assert created[0]["triggered_by"] == "ui", created[0]
            assert airflow.is_paused(LAUNCH), "the trigger dialog unpaused the DAG"
            assert created[0]["state"] == "queued", created[0]
        finally:
            # Delete before unpausing: an unpaused DAG's queued run would start the job.
            for run in _new_manual_runs(airflow, known):
                airflow.delete_run(LAUNCH, run["dag_run_id"])
            airflow.set_paused(LAUNCH, was_paused)
