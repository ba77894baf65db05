"""A real browser: Chromium, driven by Selenium, signs in, opens the API pages and signs out.

The test browser of `tests/browser.py` models browser cookie rules; this module checks the app
against the real thing once, with the provider's pages on another site than the app:
over https (app on https://localhost, stand-in on https://127.0.0.1) and in local development
mode (`python -m devprovider`: app on http://localhost, sign-in pages on http://127.0.0.1).

Any installed Chrome or Chromium is used (`CHROME_BIN`, else `chromium`, `chromium-browser`,
`google-chrome`, `google-chrome-stable` on PATH) with its `chromedriver` (`CHROMEDRIVER`, else
PATH); Selenium never downloads one. Without them the tests are skipped, unless the environment
sets MSAL_WEBAPP_REQUIRE_SERVICES=1 (this project's CI does): then they fail.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from devprovider import DEFAULT_USERS, StandIn, TestUser
from devprovider.__main__ import start_dev_environment
from tests import services
from tests.app_server import serve
from tests.conftest import AppUnderTest, page_of, user_apis

ALICE = DEFAULT_USERS[0]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WAIT = 20  # seconds; each step normally takes well under one
CHROME_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--no-proxy-server",
)


def find_chrome() -> tuple[str, str] | str:
    """(browser, chromedriver) paths, or why they were not found."""
    for variable in ("CHROME_BIN", "CHROMEDRIVER"):
        given = os.environ.get(variable)
        if given and not shutil.which(given):
            return f"{variable}={given} is not an executable file"
    browser = os.environ.get("CHROME_BIN") or next(
        (found for name in BROWSERS if (found := shutil.which(name))), None)
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if not browser:
        return f"no Chrome or Chromium found (set CHROME_BIN, or put one of {BROWSERS} on PATH)"
    if not driver:
        return "no chromedriver found (set CHROMEDRIVER, or put chromedriver on PATH)"
    return browser, driver


def unavailable(reason: str) -> None:
    services.unavailable(f"real-browser test skipped: {reason}")


@pytest.fixture(scope="module")
def chrome() -> Iterator[Any]:
    """One headless Chromium for the module, with its own throw-away profile."""
    found = find_chrome()
    if isinstance(found, str):
        unavailable(found)
        return
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed (pip install -e '.[dev]')")
        return
    browser_path, driver_path = found
    profile = tempfile.mkdtemp(prefix="msal-webapp-chrome-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser_path
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.accept_insecure_certs = True  # the test CA's certificates
    # The console tells why a navigation was refused (a CSP violation, say): shown on failure.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Passing the driver's path keeps Selenium Manager from looking for (or downloading) one.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(chrome: Any) -> Any:
    """The module's Chromium, with no cookies left from another test."""
    chrome.execute_cdp_cmd("Network.clearBrowserCookies", {})
    return chrome


# ------------------------------------------------------------------------------ the journey
def wait_until(driver: Any, condition: Callable[[Any], Any], what: str) -> Any:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT).until(condition)
    except TimeoutException:
        console = "\n".join(entry.get("message", "") for entry in driver.get_log("browser"))
        pytest.fail(f"timed out waiting for {what}; at {driver.current_url}:\n"
                    f"{page_text(driver)[:2000]}\nbrowser console:\n{console[-3000:]}")


def click_away(driver: Any, element: Any) -> None:
    """Click `element` and wait until the page it is on has gone: a condition checked right
    after a click could otherwise still see the old page (a busy machine makes that likely).

    The old page carries a mark that a new document does not have. Asking a page that is being
    replaced can fail (stale nodes, a script context going away): that means "not yet".
    """
    from selenium.common.exceptions import WebDriverException

    driver.execute_script("window.__leaving = true")
    element.click()

    def left(d: Any) -> bool:
        try:
            return bool(d.execute_script("return window.__leaving !== true"))
        except WebDriverException:
            return False

    wait_until(driver, left, "the click to leave the page")


def page_text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    text: str = driver.find_element(By.TAG_NAME, "body").text
    return text


def at_provider(driver: Any, app_url: str) -> bool:
    """On the provider's sign-in page: another origin than the app, with the user choice."""
    from selenium.webdriver.common.by import By

    url = urlsplit(driver.current_url)
    return (url.netloc != urlsplit(app_url).netloc and url.path.endswith("/authorize")
            and bool(driver.find_elements(By.NAME, "username")))


def back_in_app(driver: Any, app_url: str) -> bool:
    from selenium.webdriver.common.by import By

    return (driver.current_url.startswith(app_url + "/")
            and driver.execute_script("return document.readyState") == "complete"
            and bool(driver.find_elements(By.TAG_NAME, "main")))


def pick_user(driver: Any, app_url: str, user: TestUser) -> None:
    """On the provider's page (another site than the app), press the user's button."""
    from selenium.webdriver.common.by import By

    assert urlsplit(driver.current_url).hostname != urlsplit(app_url).hostname, (
        "the provider must be on another site than the app")
    click_away(driver, driver.find_element(
        By.XPATH, f"//form[input[@name='username' and @value='{user.username}']]"
                  "//button[@value='accept']"))
    # The answer comes back as a form_post page (which submits itself) or a redirect.
    wait_until(driver, lambda d: back_in_app(d, app_url) or at_provider(d, app_url),
               "the provider's answer to reach the app")


def sign_in_use_apis_and_sign_out(driver: Any, app_url: str, api_names: list[str]) -> None:
    from selenium.webdriver.common.by import By

    driver.get(app_url + "/")
    click_away(driver, driver.find_element(By.CSS_SELECTOR, "a[href='/login']"))
    wait_until(driver, lambda d: at_provider(d, app_url), "the provider's sign-in page")
    pick_user(driver, app_url, ALICE)
    text = page_text(driver)
    assert driver.current_url == app_url + "/" and ALICE.name in text, text[:2000]

    for name in api_names:
        path = page_of(name)
        click_away(driver, driver.find_element(By.CSS_SELECTOR, f"nav a[href='{path}']"))
        wait_until(driver, lambda d: back_in_app(d, app_url) or at_provider(d, app_url),
                   f"the {name} page")
        if at_provider(driver, app_url):  # consent for an API not asked for at sign-in
            pick_user(driver, app_url, ALICE)
        text = page_text(driver)
        assert urlsplit(driver.current_url).path == path, (driver.current_url, text[:2000])
        assert ALICE.oid in text or ALICE.username in text, text[:2000]

    click_away(driver, driver.find_element(By.XPATH, "//form[@action='/logout']//button"))
    picker = f"//form[.//*[text()='{ALICE.username}'] and .//input[@name='logout_hint']]//button"

    def signed_out(d: Any) -> str | None:
        # The provider asking which account to sign out (Entra does without logout_hint), its
        # "you signed out" page, or back in the app, signed out.
        if urlsplit(d.current_url).netloc != urlsplit(app_url).netloc:
            if d.find_elements(By.XPATH, picker):
                return "picker"
            return "done" if "signed out" in page_text(d).lower() else None
        signed_out = back_in_app(d, app_url) and d.find_elements(By.CSS_SELECTOR,
                                                                  "a[href='/login']")
        return "done" if signed_out else None

    if wait_until(driver, signed_out, "the provider's sign-out") == "picker":
        click_away(driver, driver.find_element(By.XPATH, picker))
        wait_until(driver, lambda d: signed_out(d) == "done", "the end of the sign-out")
    driver.get(app_url + "/")
    text = page_text(driver)
    assert driver.find_elements(By.CSS_SELECTOR, "a[href='/login']"), text[:2000]
    assert ALICE.name not in text


# ------------------------------------------------------------------------------ the tests
def test_https_mode(browser: Any, make_app: Callable[..., AppUnderTest]) -> None:
    app = make_app()
    assert app.base_url.startswith("https://localhost:")
    sign_in_use_apis_and_sign_out(browser, app.base_url, user_apis(app.services.settings.apis))


def test_local_development_mode(browser: Any, tmp_path: Path) -> None:
    started: list[StandIn] = []

    def env_for(base_url: str) -> dict[str, str]:
        standin, env = start_dev_environment(tmp_path, base_url)
        started.append(standin)
        return env

    try:
        with serve(env_for, None, host="localhost") as (base_url, services):
            apis = user_apis(services.settings.apis)
            sign_in_use_apis_and_sign_out(browser, base_url, apis)
    finally:
        for standin in started:
            standin.stop()
