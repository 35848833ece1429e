"""/metrics under `ragops serve --workers 2` (prometheus_client's multiprocess mode): counters summed over the
workers, and the registry-backed gauges rendered once per scrape, not once per worker."""

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from support import REPO, free_port, samples, stop_group

STATUS_GAUGES = ("ragops_registry_up", "ragops_ready", "ragops_quarantined_documents", "ragops_slo_error_ratio")


def _wait_ready(base: str, proc: subprocess.Popen, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "ragops serve exited early"
        try:
            if httpx.get(base + "/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"ragops serve was not ready within {deadline_s} s")


def test_two_workers_sum_counters_and_export_status_gauges_once(indexed, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGOPS_") or k.startswith("RAGOPS_TEST_")}
    env |= {"RAGOPS_HOME": str(indexed.home), "RAGOPS_SOURCE": indexed.source, "RAGOPS_STATUS_METRICS_INTERVAL_S": "0.5",
            "RAGOPS_RATE_LIMIT": "1000/minute", "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "include"),
                                                                               env.get("PYTHONPATH", "")])}
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "ragops", "serve", "--port", str(port), "--workers", "2"],
                            env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc, 300)
        with ThreadPoolExecutor(4) as pool:  # concurrent, so that both workers take requests
            statuses = list(pool.map(lambda i: httpx.post(base + "/v1/search", json={"question": f"guards {i}"},
                                                          timeout=60).status_code, range(20)))
        assert statuses == [200] * 20

        deadline = time.monotonic() + 60
        while True:  # each worker reads the registry in the background; wait until the answering one has
            text = httpx.get(base + "/metrics", timeout=10).text
            metrics = samples(text)
            if metrics.get(("ragops_ready", ())) == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        total = sum(v for (name, labels), v in metrics.items()
                    if name == "ragops_requests_total" and dict(labels)["endpoint"] == "/v1/search")
        assert total == 20  # whichever worker answered the scrape, every worker's requests are in it
        lines = text.splitlines()
        for gauge in STATUS_GAUGES:
            assert sum(1 for line in lines if line.startswith(gauge + " ")) == 1, gauge
        refresh = [line for line in lines if line.startswith('ragops_last_success_timestamp_seconds{pipeline="refresh"}')]
        assert len(refresh) == 1 and float(refresh[0].split()[-1]) > 0
        assert metrics[("ragops_ready", ())] == 1
        assert len(list((indexed.home / "prometheus").glob("*.db"))) >= 2  # the workers' multiprocess files
    finally:
        stop_group(proc)
        log.close()
