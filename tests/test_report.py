"""``report.html`` of a real tiny study, rendered in a real headless Chromium driven over WebDriver (modern env only).

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium chromium-driver``); the test fails,
never skips, when they are missing. The WebDriver client is a few HTTP calls with the standard library.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from typing import Any, Dict, Iterator

import numpy as np
import pytest

from lapace_plugin.evaluation import study

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1000"]
INSTALL = "the report test needs Debian's Chromium and its driver: apt-get install -y chromium chromium-driver"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = str(tmp_path_factory.mktemp("report"))
    config = study.StudyConfig(datasets=["compas"], methods=["nnce", "lapace-last"], seeds=[0, 1], n_queries=4,
                               retrained=2, epochs=10, max_train_rows=1200, out=out, progress=False)
    study.run_study(config)
    return os.path.join(out, "report.html")


class WebDriver:
    """The few W3C WebDriver calls the test needs, against a chromedriver it starts."""

    def __init__(self, user_data_dir: str) -> None:
        chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
        if not chromium or not driver:
            pytest.fail("%s (chromium: %s, chromedriver: %s)" % (INSTALL, chromium, driver))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.process = subprocess.Popen([driver, "--port=%d" % self.port], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = "http://127.0.0.1:%d" % self.port
        deadline = time.time() + 30
        while True:
            try:
                if self._call("GET", "/status")["value"]["ready"]:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                self.process.kill()
                pytest.fail("chromedriver did not start within 30 s")
            time.sleep(0.2)
        capabilities = {"browserName": "chrome", "goog:loggingPrefs": {"browser": "ALL"}, "goog:chromeOptions": {
            "binary": chromium, "args": CHROMIUM_ARGS + ["--user-data-dir=%s" % user_data_dir]}}
        self.session = self._call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})["value"]["sessionId"]

    def _call(self, method: str, path: str, payload: Any = None) -> Dict[str, Any]:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read().decode())

    def do(self, method: str, path: str, payload: Any = None) -> Any:
        return self._call(method, "/session/%s%s" % (self.session, path), payload)["value"]

    def close(self) -> None:
        try:
            self._call("DELETE", "/session/%s" % self.session)
        finally:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser(report: str) -> Iterator[WebDriver]:
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    driver = WebDriver(profile)
    try:
        driver.do("POST", "/url", {"url": "file://" + os.path.abspath(report)})
        yield driver
    finally:
        driver.close()
        shutil.rmtree(profile, ignore_errors=True)


PAGE = """
const tables = Array.from(document.querySelectorAll('table'));
return {
  ready: document.readyState,
  title: document.title,
  tables: tables.map(t => ({id: t.id, rows: t.tBodies[0].rows.length, visible: t.getBoundingClientRect().height > 0})),
  verdicts: Array.from(document.querySelectorAll('#claims tbody tr')).map(r => r.cells[2].textContent),
  results: Array.from(document.querySelectorAll('#results-compas tbody tr')).map(r => r.cells[0].textContent),
  cell: document.querySelector('#results-compas tbody tr').cells[8].textContent,
  images: Array.from(document.images).map(i => ({complete: i.complete, width: i.naturalWidth, src: i.src.slice(0, 22)})),
  fetched: performance.getEntriesByType('resource').map(e => e.name),
  front: Array.from(document.querySelectorAll('#front-compas tbody tr')).map(r => [r.cells[0].textContent, r.cells[4].textContent]),
  frontFigure: (i => i && {complete: i.complete, width: i.naturalWidth, height: i.naturalHeight})(document.getElementById('front-figure-compas')),
};
"""


def test_report_loads_without_errors_and_shows_the_tables(browser: WebDriver) -> None:
    page = browser.do("POST", "/execute/sync", {"script": PAGE, "args": []})
    assert page["ready"] == "complete" and page["title"] == "LAPACE comparative study"
    ids = [t["id"] for t in page["tables"]]
    assert ids[:2] == ["claims", "datasets"] and "results-compas" in ids
    assert all(t["rows"] > 0 and t["visible"] for t in page["tables"]), page["tables"]
    assert page["results"] == ["nnce", "lapace-last"]
    assert set(page["verdicts"]) <= {"holds", "fails", "inconclusive", "not run"} and "holds" in page["verdicts"]
    assert "[" in page["cell"] and "]" in page["cell"]  # mean [low, high] over the two seeds
    assert page["images"] and all(i["complete"] and i["width"] > 0 and i["src"] == "data:image/png;base64," for i in page["images"])
    assert page["fetched"] == [], "a self-contained page fetches nothing"
    front = dict(page["front"])  # method -> "non-dominated" / "dominated"
    assert set(front) == {"nnce", "lapace-last"} and "non-dominated" in front.values(), front
    figure = page["frontFigure"]
    assert figure and figure["complete"] and figure["width"] > 300 and figure["height"] > 200, figure
    errors = [e for e in browser.do("POST", "/se/log", {"type": "browser"}) if e["level"] == "SEVERE"]
    assert errors == []


def test_report_screenshot_shows_content(browser: WebDriver) -> None:
    import matplotlib.image

    png = base64.b64decode(browser.do("GET", "/screenshot"))
    pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert pixels.shape[0] >= 700 and pixels.shape[1] >= 1200
    dark = (pixels[..., :3].mean(axis=2) < 0.5).mean()
    assert 0.005 < dark < 0.5, "the page looks blank or black (dark share %.4f)" % dark
    assert np.unique(pixels.reshape(-1, pixels.shape[-1])[:, :3], axis=0).shape[0] > 20  # text, table shading, colours
