"""
A real browser for the admin's tests: Debian's Chromium, headless, driven
by Selenium through Debian's chromedriver (nothing is downloaded: Selenium
Manager is never asked, as both paths are given).

Missing, the tests that need it skip, saying how to install it; CI, which
forbids skips (MAILSERVER_FORBID_SKIPS), fails instead. bin/test
--install-browser (on in CI) installs both packages.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
CHROMIUM = os.environ.get("MAILSERVER_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MAILSERVER_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
# Where the screenshots go, for a person (and CI's artifacts) to look at.
SCREENSHOTS = Path(os.environ.get("MAILSERVER_SCREENSHOTS", ROOT / "artifacts" / "screenshots"))

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1600,1000",
]


def missing() -> str | None:
    """Why there is no browser to test with, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return (
                f"no {path}: apt-get install chromium chromium-driver "
                "(bin/test --install-browser does, as root)"
            )
    return None


class Browser:
    """A headless Chromium with a fresh profile, removed when closed."""

    def __init__(self):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="mailserver-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in [*FLAGS, f"--user-data-dir={self.profile}"]:
            options.add_argument(flag)
        self.driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        self.driver.set_page_load_timeout(60)

    def close(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def wait(self, condition, timeout: float = 20):
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout).until(condition)

    def find(self, selector: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def find_all(self, selector: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def screenshot(self, name: str) -> Path:
        """The whole page, as tall as it is (up to 4000 pixels), under SCREENSHOTS."""
        import base64

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": size["width"],
                    "height": min(size["height"], 4000),
                    "scale": 1,
                },
            },
        )
        path = SCREENSHOTS / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path
