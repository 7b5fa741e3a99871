"""The HTML run report in a real browser: open the file, move the time slider, watch a host go down.

Same driver as ``test_browser.py`` (``tests/_chromium.py``): Debian's headless Chromium and its
chromedriver through selenium; skipped when they are missing unless
PLAYGROUND_REQUIRE_BROWSER is set (as CI does).
"""
from __future__ import annotations

import pytest

from components import AppServer, L7Balancer
from playground import OpenLoop, Sim

pytestmark = pytest.mark.browser

from _chromium import start_browser  # noqa: E402 - skips this module without a browser
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402


@pytest.fixture
def browser(tmp_path):
    driver = start_browser(tmp_path / "profile")
    try:
        yield driver
    finally:
        driver.quit()


def test_sliding_past_the_crash_shows_the_host_down_then_back(browser, tmp_path):
    sim = Sim(seed=1)
    for name in ("app1", "app2"):
        sim.add(AppServer(name, cores=1, cpu_s=0.004))
    sim.add(L7Balancer("lb", ["app1", "app2"]))
    sim.load(OpenLoop("lb", rate=100))
    sim.at(5, sim.crash, "app2", 3)  # down from 5 s to 8 s
    path = tmp_path / "run.html"
    sim.run(duration_s=10).to_html(path)

    browser.get(path.as_uri())
    node = browser.find_element(By.CSS_SELECTOR, '[data-host="app2"]')
    slider = browser.find_element(By.ID, "time")
    assert node.get_attribute("data-state") == "up"  # the page opens at t = 0
    assert browser.find_element(By.ID, "time-label").text == "t = 0 s of 10 s"

    slider.send_keys(Keys.HOME)
    for _ in range(6):  # to t = 6 s
        slider.send_keys(Keys.ARROW_RIGHT)
    assert browser.find_element(By.ID, "time-label").text == "t = 6 s of 10 s"
    assert node.get_attribute("data-state") == "down"
    assert node.find_element(By.CSS_SELECTOR, ".state").text == "DOWN"
    assert browser.find_element(By.CSS_SELECTOR, '[data-host="app1"]').get_attribute("data-state") == "up"

    slider.send_keys(Keys.END)  # t = 9 s: restarted at 8 s
    assert node.get_attribute("data-state") == "up"
    assert browser.get_log("browser") == []  # no script error
