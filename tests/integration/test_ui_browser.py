"""The Prefect UI in a real browser: start the `pipeline` deployment from its page, see its metrics artifact.

Starts `recause serve` (tiny profile, stage `ope`) on a clone of the tiny workspace, against the test
run's Prefect server (`prefect server start`, which serves the UI), opens the UI in headless Chromium
(Debian's `chromium` + `chromium-driver`, driven by Selenium), goes Deployments -> pipeline -> Run ->
Quick run, waits through the API until that run completes, then opens the run's `ope-metrics` table
artifact in the UI and checks its rows against the workspace's metrics/ope.json. Screenshots go to
$RECAUSE_TEST_ARTIFACTS/ui (default: <repo>/test-artifacts/ui). Skipped, with the reason, where
Chromium, its driver or Selenium is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.prefect_server import PrefectServer
from tests.integration.workspaces import Workspace

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "apt-get install chromium chromium-driver"
ARTIFACTS = Path(os.environ.get("RECAUSE_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "ui"
PROFILE = "tests/profiles/tiny.yaml"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
UI_WAIT_S = 30
RUN_TIMEOUT_S = 240


def _missing_browser() -> str | None:
    """Why the test cannot drive a browser here (checked at collection: a skip builds no workspace)."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        return f"headless browser missing ({', '.join(missing)}): {INSTALL}"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not importable: pip install -e '.[dev]' (and " + INSTALL + ")"
    return None


MISSING = _missing_browser()
pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.skipif(MISSING is not None, reason=MISSING or "the browser is there"),
]

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _api(base: str, method: str, path: str, body: dict | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{base}/api{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with _NO_PROXY.open(request, timeout=15) as response:
        return json.loads(response.read() or b"null")


def _tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def _wait_for(what: str, check: Callable[[], Any], timeout: float, log: Path, process: subprocess.Popen) -> Any:
    """Poll ``check`` until it returns something truthy; fail early if ``process`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what}: the process exited with {process.returncode}\n{_tail(log)}")
        try:
            found = check()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            found = None
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"{what}: not after {timeout:.0f}s\n{_tail(log)}")


def _start(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """A process in its own session (own process group), output to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen, grace: float = 30) -> None:
    """Ctrl-C the process group, kill it if it hangs, then kill whatever is left in the group."""
    group = process.pid  # start_new_session: the pid is the group id
    if process.poll() is None:
        try:
            os.killpg(group, signal.SIGINT)
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            process.wait(timeout=30)
        except ProcessLookupError:
            pass
    if _group_members(group):  # children that outlived the leader (flow run subprocesses, uvicorn)
        os.killpg(group, signal.SIGKILL)  # safe: a group id is not reused while the group has members


def _group_members(group: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group:  # after "pid (comm)": state, ppid, pgrp
            members.append(int(stat.parent.name))
    return members


@dataclass(frozen=True)
class Stack:
    root: Path
    base: str  # http://127.0.0.1:<port>
    server_log: Path
    serve_log: Path
    deployment: dict


@pytest.fixture
def stack(workspace_clone: Workspace, prefect_server: PrefectServer) -> Iterator[Stack]:
    """`recause serve` on the test run's Prefect server, stopped at the end."""
    base, root = prefect_server.base, workspace_clone.root
    where = str(root.resolve())
    serve_log = root.parent / "serve.log"
    serve = _start(
        [str(BIN / "recause"), "serve", "--workspace", str(root), "--profile", PROFILE, "--stage", "ope"],
        root,
        workspace_clone.env,
        serve_log,
    )
    try:

        def pipeline_ready() -> dict | None:
            try:
                deployment = _api(base, "GET", "/deployments/name/recause-pipeline/pipeline")
            except urllib.error.HTTPError as error:
                if error.code == 404:
                    return None
                raise
            # READY: serve is polling it; this test's serve, not another run's
            ours = deployment.get("status") == "READY" and deployment["parameters"].get("workspace") == where
            return deployment if ours else None

        deployment = _wait_for("the served pipeline deployment", pipeline_ready, 120, serve_log, serve)
        yield Stack(root, base, prefect_server.log, serve_log, deployment)
    finally:
        _stop(serve)


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=tmp_path))
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-quic",
        "--no-proxy-server",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    # An explicit driver path: Selenium Manager never runs (it would try to download a driver).
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    browser.set_page_load_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()


def _runs_of(stack: Stack) -> list[dict]:
    return _api(stack.base, "POST", "/flow_runs/filter", {"deployments": {"id": {"any_": [stack.deployment["id"]]}}})


def _wait_until_terminal(stack: Stack, run_id: str) -> dict:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        run = _api(stack.base, "GET", f"/flow_runs/{run_id}")
        if run["state_type"] in TERMINAL:
            return run
        if time.monotonic() > deadline:
            pytest.fail(f"flow run {run_id} still {run['state_type']} after {RUN_TIMEOUT_S}s\n{_tail(stack.serve_log)}")
        time.sleep(2)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_run_from_the_ui_completes_and_its_metrics_artifact_shows(stack: Stack, driver: Any) -> None:
    from selenium.common.exceptions import (
        ElementClickInterceptedException,
        ElementNotInteractableException,
        NoSuchElementException,
        StaleElementReferenceException,
    )
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    wait = WebDriverWait(driver, UI_WAIT_S)

    def shot(name: str) -> None:
        driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))

    def visible(xpath: str) -> Any:
        return wait.until(ec.visibility_of_element_located((By.XPATH, xpath)))

    def click(xpath: str) -> None:
        """A real click on the element, found anew while it is missing, re-rendered, animating or covered."""
        retry = (
            NoSuchElementException,
            StaleElementReferenceException,
            ElementClickInterceptedException,
            ElementNotInteractableException,
        )
        WebDriverWait(driver, UI_WAIT_S, ignored_exceptions=retry).until(
            lambda d: d.find_element(By.XPATH, xpath).click() or True
        )

    deployment = stack.deployment
    assert deployment["parameters"] == {"workspace": str(stack.root.resolve()), "profile": PROFILE, "stages": ["ope"]}
    assert _runs_of(stack) == [], "the deployment has runs before the UI started one"

    try:
        # Deployments -> pipeline (of flow recause-pipeline)
        driver.get(f"{stack.base}/deployments")
        pipeline_row = "//a[contains(@href, '/deployments/deployment/')][normalize-space()='pipeline']"
        visible("//a[contains(@href, '/flows/flow/')][normalize-space()='recause-pipeline']")
        click(pipeline_row)
        wait.until(ec.url_contains(f"/deployments/deployment/{deployment['id']}"))
        visible("//*[contains(@class, 'p-bread-crumbs__crumb')][normalize-space()='pipeline']")
        shot("01-deployment-pipeline")

        # Run -> Quick run: the deployment's default parameters (the tiny profile, stage ope)
        click("//button[contains(@class, 'run-menu__run-button')][normalize-space()='Run']")
        click("//button[contains(@class, 'p-overflow-menu-item')][normalize-space()='Quick run']")
        # The toast names the new run ("<name> scheduled to start now"); its "View run" button slides away
        # after 5 s, so the run is opened from the deployment page's own link to it instead.
        toast = visible("//*[contains(@class, 'toast-flow-run-create__message')]")
        run_name = toast.find_element(By.CSS_SELECTOR, ".toast-flow-run-create__message--emphasized").text.strip()
        shot("02-quick-run-toast")
        runs = _runs_of(stack)
        assert [r["name"] for r in runs] == [run_name], "the UI's click made exactly this one run"
        run_id = runs[0]["id"]
        assert runs[0]["parameters"] == deployment["parameters"]
        click(f"//a[contains(@href, '/runs/flow-run/{run_id}')][normalize-space()='{run_name}']")
        wait.until(ec.url_contains(f"/runs/flow-run/{run_id}"))

        run = _wait_until_terminal(stack, run_id)
        assert run["state_type"] == "COMPLETED", f"{run['state']}\n{_tail(stack.serve_log)}"

        # The run's page, its Artifacts tab, the ope-metrics table artifact
        driver.refresh()
        visible(f"//*[contains(@class, 'p-bread-crumbs__crumb')][normalize-space()='{run_name}']")
        visible("//*[contains(@class, 'state-badge')][normalize-space()='Completed']")
        click("//li[contains(@class, 'p-tab')][normalize-space()='Artifacts']")
        card = (
            "//a[.//*[contains(@class, 'artifact-card__title')][normalize-space()='ope-metrics']]"
            "[.//*[contains(@class, 'artifact-card__subheader')][normalize-space()='table']]"
        )
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", visible(card))
        shot("03-flow-run-artifacts")
        click(card)
        wait.until(ec.url_matches(r"/artifacts/artifact/[0-9a-f-]{36}"))
        artifact_id = driver.current_url.rstrip("/").split("/")[-1].split("?")[0]
        visible("//a[normalize-space()='ope-metrics']")  # the breadcrumb: the artifact's key
        table = visible("//table[.//th[normalize-space()='estimator']][.//td[normalize-space()='ipw']]")
        visible("//table//td[normalize-space()='dm']")
        shot("04-ope-metrics-artifact")

        headers = [th.get_attribute("textContent").strip() for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
        rows = driver.execute_script(
            "return [...arguments[0].querySelectorAll('tbody tr')]"
            ".map(r => [...r.querySelectorAll('td')].map(c => c.textContent.trim()))",
            table,
        )
    except BaseException:  # pytest.fail too
        for log in (stack.server_log, stack.serve_log):
            shutil.copy2(log, ARTIFACTS / log.name)
        with contextlib.suppress(Exception):
            shot("failure")
        raise

    assert headers[:4] == ["direction", "campaign", "estimator", "relative_ee_mean"], headers
    shown = {tuple(row[:3]) for row in rows}
    ope = json.loads((stack.root / "metrics/ope.json").read_text(encoding="utf-8"))
    expected = {(d, c, e) for d, campaigns in ope.items() for c, estimators in campaigns.items() for e in estimators}
    assert len(rows) == len(expected) and shown == expected, rows
    assert {"ipw", "dm", "dr"} <= {row[2] for row in rows}

    artifact = _api(stack.base, "GET", f"/artifacts/{artifact_id}")
    assert (artifact["key"], artifact["type"], artifact["flow_run_id"]) == ("ope-metrics", "table", run_id)
