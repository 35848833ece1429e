"""`make up`'s stop: every process group it started is gone, however the stop signals arrive.

Found by stopping `make up` with SIGTERM: make forwards a second SIGTERM to the script, which then died in the
middle of its cleanup and left Airflow (or the serving app) running without an owner.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _as_from_a_terminal() -> None:
    """The driver starts with SIGINT and SIGTERM at their defaults, as from a terminal. A CI runner started in the
    background of a non-interactive shell ignores SIGINT, every child inherits that, and bash cannot trap a signal
    that was ignored when it started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_every_group_stops_even_when_the_signal_comes_twice_and_one_ignores_it(tmp_path, sig):
    pidfile = tmp_path / "groups"
    driver = tmp_path / "driver.sh"
    driver.write_text(f"""set -euo pipefail
source {REPO}/scripts/process-groups.sh
stop_on_signals
start_group {tmp_path}/a.log sleep 300
start_group {tmp_path}/b.log bash -c 'trap "" TERM; while true; do sleep 0.2; done'
echo "${{RAGOPS_GROUPS[*]}}" > {pidfile}.tmp && mv {pidfile}.tmp {pidfile}
for i in $(seq 1 600); do sleep 0.1; done  # like up.sh's waits for Airflow: the signal comes in here
echo "still starting after the stop"
wait "${{RAGOPS_GROUPS[0]}}"
""")
    proc = subprocess.Popen(["bash", str(driver)], env=dict(os.environ, RAGOPS_STOP_GRACE_S="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            preexec_fn=_as_from_a_terminal)
    groups: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while not pidfile.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the driver did not start its groups"
            time.sleep(0.05)
        groups = [int(p) for p in pidfile.read_text().split()]
        assert len(groups) == 2 and all(_alive(g) for g in groups)
        proc.send_signal(sig)
        time.sleep(0.05)
        proc.send_signal(sig)  # what make does with SIGTERM, and a user's second Ctrl-C
        output, _ = proc.communicate(timeout=60)
        assert "stopping ragops" in output
        assert "still starting after the stop" not in output  # a stop ends the script, it does not resume it
        assert proc.returncode == {signal.SIGTERM: 143, signal.SIGINT: 130}[sig]
        assert f"process group {groups[1]} did not stop within 1s: SIGKILL" in output
        deadline = time.monotonic() + 10
        while any(_alive(g) for g in groups) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [g for g in groups if _alive(g)]
    finally:
        for pgid in [*groups, proc.pid]:  # only the groups this test started
            if _alive(pgid):
                os.killpg(pgid, signal.SIGKILL)
        if proc.poll() is None:
            proc.wait(timeout=10)
