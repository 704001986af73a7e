"""The reports in a real browser (headless Chromium through selenium): what a
reader sees at 1400 x 900 and 800 px wide. Skips where Chromium or its
driver is absent; CI installs both (.ci/run). Screenshots stay in the test's
temporary folder for a person to look at."""
import shutil
from pathlib import Path

import pytest

from bench.report import render
from tests.helpers import PROJECT_ROOT, sinebench

PUBLISHED = PROJECT_ROOT / "results" / "h200x2-2026-11-27"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs chromium and chromedriver")
# A CPU sweep at sizes the published GPU sweep ran too, so that --compare has cells.
CPU_SWEEP = ["--devices", "cpu", "--batchsize", "10,100", "--units", "5,50", "--recipe", "article",
             "--full-budget", "--updates", "60", "--max-seconds", "2", "--warmup", "2", "--eval-every", "20",
             "--repeats", "1", "--no-progress", "--no-report",
             "--host-gate", "off"]  # every run counts: the comparison's verdict needs the CPU's times

VERDICTS = {"published": "Per update, one NVIDIA H200 beats the CPU in 13 of 16 configurations",
            "cpu_compared": "Per update, one NVIDIA H200 from h200x2-2026-11-27 beats this machine's CPU in"}


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--hide-scrollbars", "--force-device-scale-factor=1"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    local = out / "local"
    proc = sinebench("sweep", *CPU_SWEEP, "--out", local)
    assert proc.returncode == 0, proc.stderr
    return {"published": render(PUBLISHED, out / "published" / "report.html"),
            "cpu_compared": render(local, out / "cpu" / "report.html", compare=PUBLISHED)}


def look(driver, path: Path, width: int, shot: Path) -> dict:
    """Open the report at ``width`` x 900 and measure what a reader sees."""
    driver.set_window_size(width, 900)
    driver.get(path.as_uri())
    driver.execute_script("window.scrollTo(0, 0)")
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    driver.set_window_size(2 * width - inner[0], 2 * 900 - inner[1])  # the viewport, not the window, is width x 900
    driver.save_screenshot(str(shot))
    return driver.execute_script("""
        const box = (sel) => { const e = document.querySelector(sel); if (!e) return null;
                               const r = e.getBoundingClientRect(); return [r.top, r.bottom]; };
        return {viewport: [window.innerWidth, window.innerHeight],
                overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
                images: Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth]),
                verdict: box('#verdict'), firstMap: box('#maps figure img'),
                verdictText: (document.querySelector('#verdict') || {}).textContent || ''};""")


@pytest.mark.parametrize("name", ["published", "cpu_compared"])
@pytest.mark.parametrize("width", [1400, 800])
def test_report_in_a_browser(browser, reports, tmp_path, name, width):
    seen = look(browser, reports[name], width, tmp_path / f"{name}-{width}.png")
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    assert seen["viewport"] == [width, 900]
    assert seen["images"] and all(ok and w > 0 for _, ok, w in seen["images"]), seen["images"]
    assert seen["overflow"] <= 0, f"horizontal scrollbar: {seen['overflow']} px too wide"
    assert seen["verdict"] is not None and seen["verdict"][1] <= 900
    assert seen["firstMap"] is not None and seen["firstMap"][1] <= 900, seen["firstMap"]
    assert VERDICTS[name] in seen["verdictText"]
    assert (tmp_path / f"{name}-{width}.png").stat().st_size > 10_000


def test_configurations_table_sorts_and_filters(browser, reports):
    from selenium.webdriver.common.by import By

    browser.set_window_size(1400, 900)
    browser.get(reports["published"].as_uri())
    table = browser.find_element(By.ID, "configs")
    ms_col = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")].index("ms per update")
    table.find_elements(By.CSS_SELECTOR, "thead th")[ms_col].click()
    values = browser.execute_script(
        "return Array.from(document.querySelectorAll('#configs tbody tr')).map(r => parseFloat(r.cells[arguments[0]].dataset.v))",
        ms_col)
    assert len(values) == 80 and values == sorted(values)
    box = browser.find_element(By.CSS_SELECTOR, "input[data-filter=configs]")
    box.send_keys("article 2 GPUs chainermn")
    shown = browser.execute_script(
        "return Array.from(document.querySelectorAll('#configs tbody tr')).filter(r => r.style.display !== 'none').length")
    assert shown == 4  # the article's implementation ran 4 sizes on each device set
