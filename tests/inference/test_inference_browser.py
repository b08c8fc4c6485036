"""End-to-end: the web page in headless Chromium: bars, errors, no speech, the timeline.

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
    assert f"speech in {100 * expected.speech:.0f}%" in browser.find_element(By.ID, "duration").text
    assert not browser.find_element(By.ID, "error").is_displayed()
    assert not browser.find_element(By.ID, "timeline-box").is_displayed()  # a short clip
    assert not browser.find_element(By.ID, "card").is_displayed()  # no model card: not bundled
    shot = tmp_path / "page.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


def test_record_in_the_browser(server, browser):
    """Chromium's fake microphone (a beep) is recorded, encoded to WAV in JS and answered.

    A beep is no speech: the page says so and shows no bars.
    """
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    _wait(browser, lambda d: "tier1" in d.find_element(By.ID, "model-info").text)
    browser.find_element(By.ID, "record").click()
    _wait(browser, lambda d: "Stop" in d.find_element(By.ID, "record").text, timeout=20)
    time.sleep(1.5)
    browser.find_element(By.ID, "record").click()
    _wait(browser, lambda d: d.find_element(By.ID, "chart").get_attribute("data-ready") == "true")
    assert "recording.wav" in browser.find_element(By.ID, "filename").text
    assert browser.find_element(By.ID, "label").text == "no speech detected"
    assert _bars(browser) == {}


def test_a_corrupt_upload_shows_the_error(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    browser.get(server + "/")
    browser.find_element(By.ID, "file").send_keys(str(bad))
    _wait(browser, lambda d: d.find_element(By.ID, "error").is_displayed())
    text = browser.find_element(By.ID, "error").text
    assert text.startswith("400:") and "broken.wav" in text


def test_a_bad_upload_after_a_good_one_clears_the_old_result(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    from vocalis.testing import samples_dir

    clip = sorted((samples_dir() / "wav").glob("*.wav"))[0]
    browser.get(server + "/")
    _wait(browser, lambda d: "tier1" in d.find_element(By.ID, "model-info").text)
    browser.find_element(By.ID, "file").send_keys(str(clip))
    _wait(browser, lambda d: d.find_element(By.ID, "chart").get_attribute("data-ready") == "true")
    assert browser.find_element(By.ID, "result").is_displayed() and _bars(browser)
    bad = tmp_path / "second.wav"
    bad.write_bytes(b"not audio at all")
    browser.find_element(By.ID, "file").send_keys(str(bad))
    _wait(browser, lambda d: d.find_element(By.ID, "error").is_displayed())
    assert "second.wav" in browser.find_element(By.ID, "error").text
    # the previous clip's answer is gone, not left on screen under the error
    assert not browser.find_element(By.ID, "result").is_displayed()
    assert _bars(browser) == {} and browser.find_element(By.ID, "label").text == ""
    # the error is where the eye is: inside the upload card, in the first screenful
    card = browser.find_element(By.ID, "input-card")
    error = browser.find_element(By.ID, "error")
    top, bottom = card.location["y"], card.location["y"] + card.size["height"]
    assert top <= error.location["y"] <= bottom
    assert error.location["y"] + error.size["height"] < browser.get_window_size()["height"]


def test_a_long_clip_draws_the_timeline(server, browser, tier1_ckpt, tmp_path):
    import numpy as np
    import soundfile as sf
    from selenium.webdriver.common.by import By

    from vocalis.inference.predictor import Predictor
    from vocalis.inference.segments import predict_segments
    from vocalis.testing import samples_dir

    files = sorted((samples_dir() / "wav").glob("*.wav"))[:3]
    parts = [sf.read(f, dtype="float32")[0] for f in files]
    silence = np.zeros(16000 * 4, dtype=np.float32)  # a pause: windows without speech
    wav = np.concatenate([parts[0], silence, parts[1], parts[2]])
    long = tmp_path / "long.wav"
    sf.write(long, wav, 16000)
    expected = predict_segments(Predictor.from_checkpoint(tier1_ckpt), wav, 16000)
    assert any(s.label is None for s in expected) and any(s.label for s in expected)

    browser.get(server + "/")
    _wait(browser, lambda d: "tier1" in d.find_element(By.ID, "model-info").text)
    browser.find_element(By.ID, "file").send_keys(str(long))
    _wait(browser, lambda d: d.find_element(By.ID, "chart").get_attribute("data-ready") == "true")
    assert browser.find_element(By.ID, "timeline-box").is_displayed()
    timeline = browser.find_element(By.ID, "timeline")
    assert timeline.get_attribute("data-segments") == str(len(expected))
    rects = timeline.find_elements(By.CSS_SELECTOR, "rect.segment")
    assert [r.get_attribute("data-label") for r in rects] == [s.label or "" for s in expected]
    assert [float(r.get_attribute("data-start")) for r in rects] == pytest.approx(
        [s.start for s in expected]
    )
    widths = [float(r.get_attribute("width")) for r in rects]
    assert all(w > 0 for w in widths)
    legend = browser.find_element(By.ID, "timeline-legend").text
    assert "no speech" in legend
    assert all(s.label in legend for s in expected if s.label)
