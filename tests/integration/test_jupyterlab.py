"""The five notebooks as a person uses them: opened in JupyterLab in headless Chromium, run through the UI with
their defaults (only the data folder and the sizes made tiny), no cell in error, the figures rendered in the
page, and notebook 03's error browser clicked through. A screenshot per notebook goes to
``outputs/jupyterlab/`` for a person to look at.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and selenium
(requirements-dev.txt); skipped, saying so, where they are missing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from kit.data.synth import generate_dataset
from kit.experiments.pipeline import NOTEBOOK_DIR
from kit.paths import OUTPUTS
from tests.conftest import TINY_COUNTS

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
selenium = pytest.importorskip("selenium", reason="selenium is a test extra: pip install -r requirements-dev.txt")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="no headless Chromium here: apt-get install chromium "
                       "chromium-driver (.ci/run installs them)"),
]

from selenium import webdriver  # noqa: E402  (after the skip: the module needs selenium)
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

SCREENSHOTS = OUTPUTS / "jupyterlab"
TOKEN = "kit-browser-test"
#: Lines appended to each copy's parameters cell: the data and sizes made tiny, every other default kept
#: (02's backbone gives way to the CPU smoke preset; 03 and 04 find the latest run, 05 the choice 04 saved).
TINY = {
    "01_eda.ipynb": 'n_show = 2',
    "02_train.ipynb": 'arch, preset, epochs, max_train_images, max_val_images, schedule, num_workers = '
                      '"resnet18", "smoke", 2, 2, 1, [[0, 128], [1, 160]], 0',
    "03_error_analysis.ipynb": 'max_images, box_thresholds = 2, [0.5, 0.6]',
    "04_ensemble.ipynb": 'max_images, thresholds, box_thresholds, unclip_ratios, search_workers = '
                         '2, [0.5], [0.5, 0.6], [2.0], 1',
    "05_submission.ipynb": 'n_show = 1',
}
NOTEBOOKS = list(TINY)
#: Per notebook, the seconds a run of all its cells may take on the 2-core box.
RUN_TIMEOUT = 420


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _project(root: Path) -> Path:
    """A project folder: the notebooks with tiny parameters and a tiny synthetic set as its data."""
    (root / "notebooks").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[tool.kit]\n")
    generate_dataset(root / "data" / "tiny", TINY_COUNTS, seed=0, workers=2)
    for name, extra in TINY.items():
        nb = json.loads((NOTEBOOK_DIR / name).read_text())
        cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
        cell["source"] = [*cell["source"], "\n", 'data_dir = "data/tiny"\n', extra, "\n"]
        (root / "notebooks" / name).write_text(json.dumps(nb, indent=1, ensure_ascii=False))
    return root


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[webdriver.Chrome, Path, str]]:
    """A JupyterLab server on a free loopback port with a token, and headless Chromium; both stopped at the end,
    whatever happens."""
    tmp = tmp_path_factory.mktemp("lab")
    project = _project(tmp / "project")
    config = tmp / "jupyter-config"
    config.mkdir()
    (config / "jupyter_server_config.json").write_text(json.dumps(
        {"LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"}}))
    env = {**os.environ, "KIT_PROJECT": str(project), "JUPYTER_CONFIG_DIR": str(config),
           "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    port = _free_port()
    log = (tmp / "jupyter.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                               f"--ServerApp.port={port}", f"--IdentityProvider.token={TOKEN}",
                               f"--ServerApp.root_dir={project}", *(["--allow-root"] if os.geteuid() == 0 else [])],
                              cwd=project, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    driver = None
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"jupyter lab did not start: {(tmp / 'jupyter.log').read_text()[-2000:]}")
                time.sleep(1)
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", f"--user-data-dir={tmp / 'chromium'}", "--window-size=1400,1800"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        yield driver, project, base
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _run_all(driver: webdriver.Chrome, base: str, name: str) -> None:
    """Open ``name``, wait for its kernel, Run > Run All Cells, wait until every cell ran, then File > Save."""
    driver.get(f"{base}/lab/workspaces/{name.split('_')[0]}/tree/notebooks/{name}?reset&token={TOKEN}")
    wait = WebDriverWait(driver, 180)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-CodeCell"))
    wait.until(lambda d: _accept_kernel_dialog(d) and d.execute_script(
        "const s = document.querySelector('.jp-Notebook-ExecutionIndicator');"
        "return s && s.getAttribute('data-status') === 'idle';"))
    time.sleep(1)  # a kernel dialog can still open right after the indicator first reads idle
    _accept_kernel_dialog(driver)
    for no in driver.find_elements(By.XPATH, "//button[normalize-space()='No']"):  # the news toast, if shown
        no.click()
    _menu(driver, "Run", "Run All Cells")
    done = ("const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]"
            ".map(p => p.textContent); return prompts.length > 0 && prompts.every(t => /\\[\\d+\\]/.test(t));")
    WebDriverWait(driver, RUN_TIMEOUT, poll_frequency=2).until(lambda d: d.execute_script(done))
    _menu(driver, "File", "Save Notebook")
    time.sleep(2)


def _accept_kernel_dialog(driver: webdriver.Chrome) -> bool:
    """Accept JupyterLab's "Select Kernel" dialog (its default, python3) if it is open: seen once here, a run
    that stalled behind it (a race of the page with the kernel specs, not reproduced since). True, so it can sit
    inside a wait."""
    for dialog in driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog"):
        if "Select Kernel" in dialog.text:
            dialog.find_element(By.CSS_SELECTOR, "button.jp-mod-accept").click()
    return True


def _menu(driver: webdriver.Chrome, menu: str, label: str) -> None:
    """Click menu ``menu``, then its item ``label`` (labels hold their mnemonic in a <u>: match whole texts)."""
    wait = WebDriverWait(driver, 30)
    for kind, text in (("lm-MenuBar-item", menu), ("lm-Menu-item", label)):
        xpath = f"//li[contains(@class, '{kind}')][normalize-space(.//div[contains(@class, '{kind}Label')])='{text}']"
        wait.until(lambda d: d.find_element(By.XPATH, xpath)).click()


def _errors(saved: Path) -> list[str]:
    """Every error output of the saved notebook, as 'cell N: ename: evalue'."""
    nb = json.loads(saved.read_text())
    return [f"cell {i}: {o['ename']}: {o['evalue']}" for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
            for o in c.get("outputs", []) if o["output_type"] == "error"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_jupyterlab(lab: tuple[webdriver.Chrome, Path, str], name: str) -> None:
    driver, project, base = lab
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        _run_all(driver, base, name)
    except TimeoutException:  # what the page showed when it stalled, for the person reading the failure
        driver.save_screenshot(str(SCREENSHOTS / f"{Path(name).stem}-stalled.png"))
        raise
    figures = driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output img")
    if figures:  # the first figure in view, for the screenshot
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", figures[-1])
    driver.save_screenshot(str(SCREENSHOTS / f"{Path(name).stem}.png"))
    assert not _errors(project / "notebooks" / name), f"{name}: cells in error: {_errors(project / 'notebooks' / name)}"
    rendered = driver.execute_script("return [...document.querySelectorAll('.jp-OutputArea-output img')]"
                                     ".filter(i => i.complete && i.naturalWidth > 100).length")
    assert rendered >= 1, f"{name}: no figure rendered in the page"
    if name == "03_error_analysis.ipynb":
        _click_through_the_error_browser(driver)


def _click_through_the_error_browser(driver: webdriver.Chrome) -> None:
    """The widget renders (not its text form), pages with 'next', and explains a picked word."""
    wait = WebDriverWait(driver, 60)
    title = wait.until(lambda d: d.find_element(By.XPATH, "//div[contains(@class, 'widget-html-content')]"
                                                          "[contains(., ' / 2: ')]"))
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", title)
    assert title.text.startswith("1 / 2: ")
    picture = driver.find_element(By.CSS_SELECTOR, ".widget-image")
    assert driver.execute_script("return arguments[0].naturalWidth", picture) > 100
    word = Select(driver.find_elements(By.CSS_SELECTOR, ".widget-dropdown select")[1])
    word.select_by_index(1)
    wait.until(lambda d: "pseudo-characters found" in d.find_element(
        By.XPATH, "//div[contains(@class, 'widget-html-content')][contains(., 'pseudo-characters')]").text)
    driver.save_screenshot(str(SCREENSHOTS / "03_error_browser.png"))
    driver.find_element(By.XPATH, "//button[normalize-space()='next']").click()
    wait.until(lambda d: d.find_element(By.XPATH, "//div[contains(@class, 'widget-html-content')]"
                                                  "[contains(., '2 / 2: ')]"))
