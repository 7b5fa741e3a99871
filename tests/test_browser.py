"""End to end in a real browser: open the dashboard, crash a host, watch the page say so.

Drives Debian's headless Chromium through its chromedriver with selenium
(``pip install 'playground[browser]'``, ``apt-get install chromium
chromium-driver``); never a downloaded browser. Skipped when either is missing.
"""
from __future__ import annotations

import pytest

from components import AppServer, L7Balancer
from playground import Population, Sim
from playground.tools.live import serve_in_thread

pytestmark = pytest.mark.browser

from _chromium import start_browser  # noqa: E402 - skips this module without a browser
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

def two_apps_with_users() -> Sim:
    sim = Sim(seed=1, realtime=True)
    for name in ("app1", "app2"):
        sim.add(AppServer(name, cores=2, cpu_s=0.002))
    sim.add(L7Balancer("lb", ["app1", "app2"]))
    sim.load(Population("lb", users=10, requests_per_user_per_s=1.0, client="users"))
    return sim


@pytest.fixture
def browser(tmp_path):
    driver = start_browser(tmp_path / "profile")
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def server():
    server = serve_in_thread(two_apps_with_users, port=0, dashboard_port=0)
    try:
        yield server
    finally:
        server.stop()


def text_of(driver, css: str) -> str:
    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0].text if found else ""


def test_clicking_crash_shows_the_host_down_then_restart_brings_it_back(browser, server):
    browser.get(server.dashboard_url + "/")
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: text_of(d, "#state-app1") == "up")
    assert browser.find_element(By.ID, "node-app1").get_attribute("data-state") == "up"

    browser.find_element(By.ID, "crash-app1").click()
    wait.until(lambda d: text_of(d, "#state-app1") == "down")
    assert browser.find_element(By.ID, "node-app1").get_attribute("data-state") == "down"
    assert not server.sim["app1"].up
    wait.until(lambda d: "crash app1" in text_of(d, "#events"))

    browser.find_element(By.ID, "restart-app1").click()
    wait.until(lambda d: text_of(d, "#state-app1") == "up")
    assert server.sim["app1"].up
    # the charts have drawn at least one second of traffic
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#chart-throughput polyline"))
    logs = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert logs == []
