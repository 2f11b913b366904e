"""Headless Chromium sessions: Debian's chromium, driven by Selenium through Debian's
chromedriver (`make system-packages` installs both), with nothing fetched at run time."""

from __future__ import annotations

from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

#: Bound on each wait for the browser: a page load, a script, a condition.
WAIT = 10.0

# Chromium's own traffic (updates, sync, field trials, metrics) is turned off: a test
# reaches 127.0.0.1 and nothing else.
QUIET = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-sync",
    "--metrics-recording-only",
    "--no-first-run",
    "--no-default-browser-check",
)


def open_chromium(
    profile: Path, width: int, height: int, *, phone: bool = False
) -> webdriver.Chrome:
    """A headless Chromium showing `width` x `height` CSS pixels, as a phone's screen
    (narrow, touch, mobile viewport) with `phone`, with a fresh profile directory
    `profile` of its own, so that sessions share no cookies or storage."""
    for program in (CHROMIUM, CHROMEDRIVER):
        if not program.exists():
            raise AssertionError(f"{program} is missing: `make system-packages` installs it")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # Chromium's sandbox refuses to run as root, as tests here do
        "--disable-dev-shm-usage",  # a container's /dev/shm is often too small for it
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        *QUIET,
    ):
        options.add_argument(argument)
    if phone:
        # A window cannot be narrower than 500 pixels; an emulated screen can.
        metrics = {"width": width, "height": height, "pixelRatio": 1.0}
        options.add_experimental_option("mobileEmulation", {"deviceMetrics": metrics})
    # A driver path of our own keeps Selenium Manager out: it would look for, and
    # download, a driver of its choosing.
    service = Service(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    return driver
