"""End-to-end: the web page in headless Chromium uploads a real clip and draws the bars.

Needs selenium, chromium and chromedriver (Debian: ``apt-get install chromium
chromium-driver``; ``pip install selenium``); skipped with the reason when any is
missing. The system chromedriver is used, so selenium-manager never goes online.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time

import pytest
from _inference_helpers import CLASSES

selenium = pytest.importorskip("selenium", reason="selenium not installed (pip install selenium)")

CHROMIUM = (
    shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
)
DRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not found (apt-get install chromium)"),
    pytest.mark.skipif(
        DRIVER is None, reason="chromedriver not found (apt-get install chromium-driver)"
    ),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tier1_ckpt):
    import uvicorn

    from vocalis.inference.service import create_app

    port = _free_port()
    config = uvicorn.Config(
        create_app(tier1_ckpt), host="127.0.0.1", port=port, log_level="warning"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    if not srv.started:
        pytest.fail("uvicorn did not start within 30 s")
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    import os

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium_profile")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=900,900",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(flag)
    try:
        driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    except Exception as err:  # a broken browser install is an environment problem
        pytest.skip(f"cannot start headless chromium: {type(err).__name__}: {err}"[:200])
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _wait(driver, condition, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def _bars(driver):
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#chart .bar-row")
    return {
        r.get_attribute("data-class"): (
            r.find_element(By.CSS_SELECTOR, ".bar-label").text,
            float(r.get_attribute("data-probability")),
            r.find_element(By.CSS_SELECTOR, ".bar-fill").value_of_css_property("width"),
            r.find_element(By.CSS_SELECTOR, ".bar-track").value_of_css_property("width"),
        )
        for r in rows
    }


def test_upload_a_real_clip_and_see_the_bars(server, browser, tier1_ckpt, tmp_path):
    from selenium.webdriver.common.by import By

    from vocalis.inference.predictor import Predictor
    from vocalis.testing import samples_dir

    clip = sorted((samples_dir() / "wav").glob("*.wav"))[0]
    browser.get(server + "/")
    _wait(browser, lambda d: "tier1" in d.find_element(By.ID, "model-info").text)
    browser.find_element(By.ID, "file").send_keys(str(clip))
    _wait(browser, lambda d: d.find_element(By.ID, "chart").get_attribute("data-ready") == "true")
    time.sleep(0.5)  # let the width transition finish before measuring
    bars = _bars(browser)
    assert set(bars) == set(CLASSES)
    expected = Predictor.from_checkpoint(tier1_ckpt).predict_file(clip)
    for cls, (label, prob, fill, track) in bars.items():
        assert label == cls
        assert prob == pytest.approx(expected.probs[cls], abs=1e-5)
        width = float(fill.rstrip("px")) / float(track.rstrip("px"))
        assert width == pytest.approx(prob, abs=0.01)
    assert browser.find_element(By.ID, "label").text == expected.label
    assert clip.name in browser.find_element(By.ID, "filename").text
    assert not browser.find_element(By.ID, "error").is_displayed()
    shot = tmp_path / "page.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


def test_record_in_the_browser(server, browser):
    """Chromium's fake microphone (a beep) is recorded, encoded to WAV in JS and classified."""
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    _wait(browser, lambda d: "tier1" in d.find_element(By.ID, "model-info").text)
    browser.find_element(By.ID, "record").click()
    _wait(browser, lambda d: "Stop" in d.find_element(By.ID, "record").text, timeout=20)
    time.sleep(1.5)
    browser.find_element(By.ID, "record").click()
    _wait(browser, lambda d: d.find_element(By.ID, "chart").get_attribute("data-ready") == "true")
    assert "recording.wav" in browser.find_element(By.ID, "filename").text
    assert set(_bars(browser)) == set(CLASSES)


def test_a_corrupt_upload_shows_the_error(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    browser.get(server + "/")
    browser.find_element(By.ID, "file").send_keys(str(bad))
    _wait(browser, lambda d: d.find_element(By.ID, "error").is_displayed())
    text = browser.find_element(By.ID, "error").text
    assert text.startswith("400:") and "broken.wav" in text
