"""The explorer page in a real headless Chromium: metrics listed, queries charted and tabled."""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import urllib.request
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import expected_buckets, ingest, iso, utc
from live import serving
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

# Debian's chromium and chromium-driver (tools/dev test installs them): one source package,
# so the driver always matches the browser and nothing is downloaded.
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--window-size=1200,1000")
WAIT_SECONDS = 60  # generous: a loaded CI machine must not turn a slow start into a failure
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "test-artifacts" / "ui-explorer.png"
# TSAPI_UPDATE_DOCS_SCREENSHOT=1 also refreshes the README's picture.
DOCS_SCREENSHOT = ROOT / "docs" / "explorer.png"

START = datetime(2024, 3, 1, tzinfo=UTC)
# A day of 10-minute temperatures with a daily swing, plus two smaller metrics.
TEMPERATURES = [(START + timedelta(minutes=10 * i),
                 round(19 - 4 * math.cos(2 * math.pi * (i - 24) / 144) + 0.3 * math.sin(i), 2))
                for i in range(144)]
SAMPLE = (
    [{"time": iso(t), "metric": "temperature", "value": v,
      "tags": {"site": "lab", "room": "kitchen"}} for t, v in TEMPERATURES]
    + [{"time": iso(START + timedelta(hours=h)), "metric": "humidity", "value": 40 + h}
       for h in range(24)]
    + [{"time": iso(START + timedelta(hours=h)), "metric": "door", "value": s}
       for h, s in ((1, "open"), (2, "closed"), (5, "open"))]
    + [{"time": iso(START + timedelta(hours=h)), "metric": "power", "value": 100 * i + h,
        "tags": {"device": device}} for i, device in enumerate("abc") for h in range(12)]
)
METRICS = ["door", "humidity", "power", "temperature"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    for path in (CHROMIUM, CHROMEDRIVER):
        assert os.access(path, os.X_OK), f"{path} missing: `tools/dev test` installs it"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    # Kept for failure messages: a script error shows up in the browser's console log.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    with pytest.MonkeyPatch.context() as env:
        # Belt and braces: should Selenium ever reach for its driver manager, keep it offline.
        env.setenv("SE_OFFLINE", os.environ.get("SE_OFFLINE", "true"))
        env.setenv("SE_AVOID_STATS", os.environ.get("SE_AVOID_STATS", "true"))
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        driver.set_page_load_timeout(WAIT_SECONDS)
        driver.set_script_timeout(WAIT_SECONDS)
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def serve(make_app):
    """serve(**config) -> URL: an app with the sample ingested, served in a thread on a free
    127.0.0.1 port until the test ends."""
    with ExitStack() as servers:

        def start(**overrides) -> str:
            app = make_app(**overrides)
            ingest(app.test_client(), SAMPLE)
            return servers.enter_context(serving(app))

        yield start


@pytest.fixture
def live_url(serve):
    return serve()


def wait_for_status(driver, *, after_runs: int | None = None) -> tuple[str, str]:
    """Wait until the page settles (metrics loaded, or query number after_runs + 1 finished)."""
    status = driver.find_element(By.ID, "status")

    def settled(_):
        if after_runs is not None:
            return int(status.get_attribute("data-runs") or 0) > after_runs
        return status.get_attribute("data-state") in {"ready", "empty", "error"}

    try:
        WebDriverWait(driver, WAIT_SECONDS).until(settled)
    except TimeoutException:
        console = [entry["message"] for entry in driver.get_log("browser")]
        pytest.fail(f"page did not settle; status {status.text!r}; console: {console}")
    return status.get_attribute("data-state"), status.text


def run_query(driver) -> tuple[str, str]:
    runs = int(driver.find_element(By.ID, "status").get_attribute("data-runs") or 0)
    driver.find_element(By.ID, "run").click()
    return wait_for_status(driver, after_runs=runs)


def tag_picker(driver, key: str) -> Select:
    """The picker's multi-select for a tag key, once the metric's tag values have loaded."""
    css = f'#tag-keys select[data-tag-key="{key}"]'

    def loaded(d):
        found = d.find_elements(By.CSS_SELECTOR, css)
        return found[0] if found and Select(found[0]).options else False

    return Select(WebDriverWait(driver, WAIT_SECONDS).until(loaded))


def input_time(driver, element_id: str) -> datetime:
    """A datetime-local input's value, which the page means as UTC ("…T00:00" drops :00)."""
    value = driver.find_element(By.ID, element_id).get_attribute("value")
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def table_rows(driver) -> list[tuple[str, str]]:
    cells = driver.execute_script(
        "return [...document.querySelectorAll('#rows tbody tr')]"
        ".map(tr => [...tr.cells].map(td => td.textContent))")
    return [tuple(row) for row in cells]


def chart_points(driver) -> int | None:
    return driver.execute_script("return window.tsapiChart && window.tsapiChart.data[0].length")


def painted_pixels(driver) -> int:
    """How many pixels of the chart's canvas are not transparent: zero means nothing drawn."""
    return driver.execute_script("""
        const canvas = document.querySelector('#chart canvas');
        if (!canvas) return 0;
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i]) n++;
        return n;
    """)


def post_curl_command(command: str, base_url: str) -> list:
    """Run the page's curl command (parsed, not through a shell) against the live server."""
    words = shlex.split(command)
    assert words[:3] == ["curl", "-s", f"{base_url}/query"], words
    assert words[3:5] == ["-H", "Content-Type: application/json"], words
    assert words[5] == "-d" and len(words) == 7, words
    request = urllib.request.Request(words[2], data=words[6].encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=WAIT_SECONDS) as response:
        return json.loads(response.read())


def console_errors(driver) -> list[str]:
    """Severe console entries since the last call (script errors, CSP violations, 4xx/5xx)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_explorer_lists_metrics_and_charts_raw_and_aggregated_queries(browser, live_url):
    console_errors(browser)  # drop what earlier tests left in the log
    browser.get(f"{live_url}/ui")
    state, text = wait_for_status(browser)
    assert state == "ready", text

    metric = Select(browser.find_element(By.ID, "metric"))
    assert [o.get_attribute("value") for o in metric.options] == METRICS

    # Picking a metric fills in its whole stored range (the end is exclusive).
    metric.select_by_value("temperature")
    assert [o.text for o in tag_picker(browser, "site").options] == ["lab"]
    assert input_time(browser, "start") == START
    assert input_time(browser, "end") == TEMPERATURES[-1][0] + timedelta(seconds=1)

    state, text = run_query(browser)
    assert state == "done", text
    expected = [(iso(t).replace("Z", "+00:00"), str(v)) for t, v in TEMPERATURES]
    assert table_rows(browser) == [(t, v.removesuffix(".0")) for t, v in expected]
    assert chart_points(browser) == len(TEMPERATURES)
    assert browser.find_element(By.ID, "chart").get_attribute("data-points") == "144"
    assert painted_pixels(browser) > 1000
    assert len(post_curl_command(browser.find_element(By.ID, "curl").text, live_url)) == 144

    SCREENSHOT.parent.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))
    if os.environ.get("TSAPI_UPDATE_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(SCREENSHOT, DOCS_SCREENSHOT)

    # Hourly averages over the first six hours, against averages computed here.
    Select(browser.find_element(By.ID, "aggregation")).select_by_value("avg")
    browser.find_element(By.ID, "interval").send_keys("1h")
    end = START + timedelta(hours=6)
    browser.execute_script("document.getElementById('end').value = arguments[0]", iso(end)[:19])
    state, text = run_query(browser)
    assert state == "done", text
    buckets = expected_buckets(TEMPERATURES, "avg", START, end, width=timedelta(hours=1))
    rows = table_rows(browser)
    assert [utc(t) for t, _ in rows] == [b for b, _ in buckets]
    assert [float(v) for _, v in rows] == pytest.approx([a for _, a in buckets])
    assert chart_points(browser) == len(buckets) == 6
    body = post_curl_command(browser.find_element(By.ID, "curl").text, live_url)
    assert [utc(r["time"]) for r in body] == [b for b, _ in buckets]
    assert [r["value"] for r in body] == pytest.approx([a for _, a in buckets])
    # uPlot and the page run under the strict Content-Security-Policy without complaint.
    assert console_errors(browser) == []


def test_explorer_shows_the_problem_detail_of_a_rejected_query(browser, live_url):
    browser.get(f"{live_url}/ui")
    state, text = wait_for_status(browser)
    assert state == "ready", text
    Select(browser.find_element(By.ID, "metric")).select_by_value("door")
    Select(browser.find_element(By.ID, "aggregation")).select_by_value("avg")
    state, text = run_query(browser)
    assert state == "error"
    assert text.startswith("400 "), text
    assert "door" in text, text
    assert chart_points(browser) is None


def test_explorer_filters_by_tags_and_says_when_the_server_truncates(browser, serve):
    browser.get(f"{serve(TSAPI_MAX_RAW_ROWS=100)}/ui")
    state, text = wait_for_status(browser)
    assert state == "ready", text

    Select(browser.find_element(By.ID, "metric")).select_by_value("temperature")
    state, text = run_query(browser)
    assert state == "done", text
    assert "Truncated" in text, text
    assert len(table_rows(browser)) == chart_points(browser) == 100

    # Devices b (picked from the metric's tag values) and c (typed) of three: 24 points.
    Select(browser.find_element(By.ID, "metric")).select_by_value("power")
    device = tag_picker(browser, "device")
    assert [o.get_attribute("value") for o in device.options] == ["a", "b", "c"]
    device.select_by_value("b")
    browser.find_element(By.ID, "tags").send_keys("device=c")
    Select(browser.find_element(By.ID, "aggregation")).select_by_value("sum")
    state, text = run_query(browser)
    assert state == "done", text
    assert "Truncated" not in text, text
    wanted = [p["value"] for p in SAMPLE if p.get("tags", {}).get("device") in {"b", "c"}]
    assert len(wanted) == 24
    assert [float(v) for _, v in table_rows(browser)] == [sum(wanted)]
    assert '"tags":{"device":["c","b"]}' in browser.find_element(By.ID, "curl").text


def test_explorer_sends_the_api_key_when_auth_is_required(browser, make_app):
    """With TSAPI_AUTH=required the page is refused until a read key is entered; the key
    then travels as a Bearer token and never appears in the curl command."""
    app = make_app(TSAPI_AUTH="required")
    created = app.test_cli_runner().invoke(
        args=["keys", "create", "--scope", "read", "--scope", "write", "--name", "ui"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    client = app.test_client()
    response = client.post("/ingest", json={"data": SAMPLE},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_json()
    try:
        with serving(app) as url:
            browser.get(f"{url}/ui")
            browser.execute_script("sessionStorage.clear()")
            browser.get(f"{url}/ui")
            state, text = wait_for_status(browser)
            assert state == "error" and text.startswith("401 "), text

            # Tab out, as a person would: the input's change event reloads the metrics.
            browser.find_element(By.ID, "api-key").send_keys(token + Keys.TAB)
            WebDriverWait(browser, WAIT_SECONDS).until(
                lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "ready")
            names = [o.get_attribute("value") for o in
                     Select(browser.find_element(By.ID, "metric")).options]
            assert sorted(names) == sorted({p["metric"] for p in SAMPLE})
            Select(browser.find_element(By.ID, "metric")).select_by_value("temperature")
            # The tag picker loads through the keyed API too.
            assert [o.text for o in tag_picker(browser, "site").options] == ["lab"]
            assert input_time(browser, "start") == START  # the range of the picked metric
            state, text = run_query(browser)
            assert state == "done", text
            assert chart_points(browser) == len(TEMPERATURES), text
            command = browser.find_element(By.ID, "curl").text
            assert "$TSAPI_API_KEY" in command and token not in command
    finally:
        browser.execute_script("sessionStorage.clear()")
