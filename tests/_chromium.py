"""Debian's headless Chromium for the browser tests, through its chromedriver and selenium.

Imported by ``test_browser*.py`` at module level: it skips the importing module when
chromium, chromedriver or selenium is missing - unless PLAYGROUND_REQUIRE_BROWSER is set
(``.ci/run`` sets it when it installed them), so CI cannot pass by skipping. Never a
downloaded browser.
"""
from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
if CHROMIUM is None or CHROMEDRIVER is None:
    if os.environ.get("PLAYGROUND_REQUIRE_BROWSER"):
        raise RuntimeError("PLAYGROUND_REQUIRE_BROWSER is set but chromium/chromedriver are not installed")
    pytest.skip("needs chromium and chromium-driver (apt-get install chromium chromium-driver)",
                allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install 'playground[browser]')")

# without the background-networking flags Chromium keeps trying hosts a closed network refuses
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000")


def start_browser(profile_dir, page_load_timeout_s: float = 120):
    """A headless Chromium with a fresh profile in ``profile_dir``; the caller quits it.

    The page-load timeout is a hang guard: a busy machine is slow, not broken."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(page_load_timeout_s)
    return driver
