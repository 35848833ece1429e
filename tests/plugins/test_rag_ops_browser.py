"""The RAG Ops page in a real headless Chromium against a real `airflow standalone`, configured as `make up` does.

Log in, trigger document_refresh from its form with the defaults, wait for it, open RAG Ops from the navigation,
find the figures the registry holds, and save a screenshot (test-artifacts/rag-ops.png). The same server answers
anonymous callers with 401 or a redirect to the login, and its task logs carry ragops' lines, not library chatter.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from support import REPO, chromium, chromium_missing, free_port

CORPUS = {
    "refresh.md": "# Refresh\n\nThe refresh DAG runs weekly and whenever the source changes.\n\n## Guards\n\n"
                  "A refresh that would delete more than a fifth of the documents is blocked.\n",
    "serving.md": "# Serving\n\nThe serving app answers from the index and rate-limits heavy traffic.\n",
    "audit.md": "# Audit\n\nThe MCP permission audit runs monthly over the access log.\n",
}
ARTIFACTS = REPO / "test-artifacts"
pytestmark = [pytest.mark.browser, pytest.mark.airflow, pytest.mark.timeout(1800)]


class Standalone:
    def __init__(self, root: Path):
        self.root, self.port = root, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.airflow_home = root / "airflow"
        corpus = root / "corpus"
        for rel, text in CORPUS.items():
            (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
            (corpus / rel).write_text(text, encoding="utf-8")
        (corpus / "broken.md").write_bytes(b"\x00\x01\x02")  # quarantined: ragops warns about it in the task log
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RAGOPS_")) or k.startswith("RAGOPS_TEST")}
        self.env = env | {
            "ROOT": str(REPO), "RAGOPS_HOME": str(root / "home"), "RAGOPS_SOURCE": corpus.as_uri(),
            "RAGOPS_PUBLIC_URL": f"http://127.0.0.1:{free_port()}", "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW_PORT": str(self.port), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            # the log servers of the scheduler and the triggerer: free ports, so another Airflow here is no obstacle
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())}
        from ragops.config import Settings

        self.settings = Settings(home=root / "home", source=corpus.as_uri())
        self.log = open(root / "standalone.log", "wb")
        self.proc = subprocess.Popen(["bash", "-c", "source scripts/airflow-env.sh && exec airflow standalone"],
                                     cwd=REPO, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, timeout_s: float = 600) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"airflow standalone exited: {self.tail()}"
            try:
                if httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).status_code == 200 and self.password():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(2)
        raise AssertionError(f"airflow standalone did not come up in {timeout_s:.0f} s: {self.tail()}")

    def password(self) -> str | None:
        path = self.airflow_home / "simple_auth_manager_passwords.json.generated"
        return json.loads(path.read_text())["admin"] if path.exists() else None

    def token(self) -> str:
        reply = httpx.post(f"{self.url}/auth/token", json={"username": "admin", "password": self.password()}, timeout=30)
        return reply.json()["access_token"]

    def tail(self) -> str:
        return (self.root / "standalone.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        """The whole process group this test started, and nothing else."""
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            # Reap the leader first: our own unreaped child is a zombie in the group, which would keep the group
            # "alive" until the deadline (every stop used to wait the full 60 s and end in SIGKILL).
            self.proc.poll()
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log.close()


def _seed(settings) -> None:
    """Request events and an MCP audit, written by the real code, so that those sections have figures too."""
    from ragops.audit.analysis import run_audit
    from ragops.audit.permissions import Permissions
    from ragops.monitoring.events import EventWriter
    from ragops.registry import Registry

    registry = Registry(settings.registry_url)
    now = datetime.now(timezone.utc)
    writer = EventWriter(registry)
    for i in range(20):
        writer.record("request", ts=now - timedelta(minutes=40 * i + 1), request_id=str(i), endpoint="/v1/ask",
                      user_hash="u", variant="stable", release_id=None, latency_ms=80.0 + i, status=200,
                      fallback="no_results" if i % 5 == 0 else None, chunk_ids=[])
    writer.close()
    grants = {"clients": [{"name": "support-bot", "token_sha256": "b" * 64, "tools": ["*"]}]}
    run_audit(settings, now - timedelta(days=30), now, registry=registry, permissions=Permissions.parse(grants))
    registry.dispose()


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    if chromium_missing():
        pytest.skip(chromium_missing())
    server = Standalone(tmp_path_factory.mktemp("standalone"))
    try:
        _seed(server.settings)
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def browser(tmp_path):
    driver = chromium(tmp_path, "1440,1100")
    driver.implicitly_wait(20)
    yield driver
    driver.quit()


def _listening(port: int) -> set[str]:
    """The local addresses that listen on `port`, from the kernel's socket table (no traffic sent anywhere)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in open(table).read().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_the_api_server_listens_on_loopback_only(standalone):
    assert _listening(standalone.port) == {"0100007F"}  # 127.0.0.1, nothing else


def test_anonymous_callers_get_no_data(standalone):
    summary = httpx.get(f"{standalone.url}/ragops/api/summary", timeout=30)
    assert summary.status_code == 401 and "sections" not in summary.text
    page = httpx.get(f"{standalone.url}/ragops/", timeout=30)
    assert page.status_code == 303 and page.headers["location"].startswith("/auth/login?next=")
    forged = httpx.get(f"{standalone.url}/ragops/api/summary", cookies={"_token": "forged"}, timeout=30)
    assert forged.status_code in (401, 403) and "sections" not in forged.text
    authorized = httpx.get(f"{standalone.url}/ragops/api/summary", timeout=30,
                           headers={"Authorization": f"Bearer {standalone.token()}"})
    assert authorized.status_code == 200 and set(authorized.json()["sections"]) >= {"index", "release", "audit"}


def _wait_for_run(standalone, dag_id: str, run_id: str, timeout_s: float = 1200) -> None:
    deadline = time.monotonic() + timeout_s
    headers = None
    while time.monotonic() < deadline:
        # On a busy machine the api-server can stall for tens of seconds while a task starts: a poll that times out
        # is asked again (the deadline bounds the whole wait), never taken as the run's verdict.
        try:
            headers = headers or {"Authorization": f"Bearer {standalone.token()}"}
            run = httpx.get(f"{standalone.url}/api/v2/dags/{dag_id}/dagRuns/{run_id}", headers=headers,
                            timeout=60).json()
        except httpx.TimeoutException:
            continue
        if run.get("state") in ("success", "failed"):
            assert run["state"] == "success", f"{dag_id} {run_id} failed: {standalone.tail()}"
            return
        time.sleep(1)
    raise AssertionError(f"{dag_id} {run_id} did not finish in {timeout_s:.0f} s")


def _figure(driver, section: str, label: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.XPATH, f"//section[@id='{section}']//div[contains(@class,'figure')]"
                                         f"[div[@class='label']='{label}']/div[@class='value']").text


def test_rag_ops_in_the_airflow_ui(standalone, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{standalone.url}/dags/document_refresh")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(standalone.password())
    browser.find_element(By.XPATH, "//button[normalize-space()='Sign in']").click()

    # The trigger form submits with its defaults: nothing typed, the dialog's Trigger button is enabled.
    browser.find_element(By.XPATH, "//button[normalize-space()='Trigger']").click()
    WebDriverWait(browser, 30).until(lambda d: len(d.find_elements(By.XPATH, "//button[normalize-space()='Trigger']")) > 1)
    submit = browser.find_elements(By.XPATH, "//button[normalize-space()='Trigger']")[-1]
    browser.execute_script("arguments[0].scrollIntoView()", submit)
    assert submit.is_enabled(), "the trigger form cannot be submitted with its defaults"
    submit.click()
    WebDriverWait(browser, 30).until(ready.url_contains("/runs/manual__"))
    run_id = browser.current_url.rsplit("/runs/", 1)[1]
    _wait_for_run(standalone, "document_refresh", run_id)

    browser.get(standalone.url + "/")
    browser.find_element(By.XPATH, "//a[normalize-space()='RAG Ops']").click()
    WebDriverWait(browser, 30).until(ready.frame_to_be_available_and_switch_to_it((By.TAG_NAME, "iframe")))
    assert browser.find_element(By.TAG_NAME, "h1").text == "RAG Ops"

    from ragops.overview import ops_summary

    held = ops_summary(standalone.settings)["sections"]
    live = held["index"]["live"]
    assert live is not None and live["documents"] == len(CORPUS) and held["index"]["quarantined"]["count"] == 1
    assert _figure(browser, "index", "Documents") == str(live["documents"])
    assert _figure(browser, "index", "Chunks") == str(live["chunks"])
    assert _figure(browser, "index", "Quarantined documents") == "1"
    assert "broken.md" in browser.find_element(By.ID, "index").text
    source = browser.find_element(By.XPATH, "//section[@id='index']/div[@class='source']")
    assert run_id in source.text and "success" in source.text
    links = {a.text: a.get_attribute("href") for a in source.find_elements(By.TAG_NAME, "a")}
    assert links["document_refresh"] == f"{standalone.url}/dags/document_refresh"
    assert links[run_id].startswith(f"{standalone.url}/dags/document_refresh/runs/manual__")
    assert _figure(browser, "slo", "Requests") == str(held["slo"]["requests"]) == "20"
    assert _figure(browser, "audit", "high") == str(held["audit"]["run"]["counts"]["high"])
    assert "support-bot" in browser.find_element(By.ID, "audit").text

    browser.switch_to.default_content()
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "rag-ops.png"))

    prepare = _task_log(standalone, run_id, "prepare")
    assert "Skipping registering function" not in prepare and "Context impl" not in prepare
    assert "refresh run" in prepare and "quarantined" in prepare  # ragops' own progress and warning stay
    embed = _task_log(standalone, run_id, "embed")
    assert "Loading weights" not in embed and '"level":"error"' not in embed.replace(" ", "")


def _task_log(standalone, run_id: str, task_id: str) -> str:
    found = sorted((standalone.airflow_home / "logs" / "dag_id=document_refresh" / f"run_id={run_id}"
                    / f"task_id={task_id}").rglob("attempt=*.log"))
    assert found, f"no log of {task_id}"
    return "".join(path.read_text(errors="replace") for path in found)
