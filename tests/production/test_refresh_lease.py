"""The refresh lock is a lease in the shared PostgreSQL registry: a live holder keeps it, any other host takes it over
once its holder has died without releasing it.

The lease (ragops.registry.lease) is renewed by its holder's heartbeat, so it holds past its TTL while the holder
lives, and is taken over on any host once the holder died and the TTL ran out.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta


from production_support import clean_env, wait_for
from support import throwaway_database

TTL_S = 4.0

HOST_A = """
import socket, sys
from datetime import timedelta
socket.gethostname = lambda: "host-a"  # this process plays another machine
from ragops.registry import Registry, registry_lock
registry = Registry(sys.argv[1])
with registry_lock(registry, "refresh", ttl=timedelta(seconds=float(sys.argv[2])),
                   heartbeat=timedelta(seconds=float(sys.argv[2]) / 4)):
    print("acquired", flush=True)
    sys.stdin.read()  # holds the lease until it is killed
"""


def try_acquire(registry) -> bool:
    from ragops.errors import RefreshConflict
    from ragops.registry import registry_lock

    try:
        with registry_lock(registry, "refresh", ttl=timedelta(seconds=TTL_S), heartbeat=timedelta(seconds=TTL_S / 4)):
            return True
    except RefreshConflict:
        return False


def test_another_host_takes_over_the_refresh_lease_after_its_holder_dies(pg_base, monkeypatch):
    from ragops.registry import Registry

    with throwaway_database(pg_base, "ragops_lease") as url:
        Registry(url).dispose()
        holder = subprocess.Popen([sys.executable, "-c", HOST_A, url, str(TTL_S)], env=clean_env(),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
        registry = None
        try:
            assert holder.stdout.readline() == b"acquired\n", "host A did not acquire the lease"
            acquired = time.monotonic()
            monkeypatch.setattr(socket, "gethostname", lambda: "host-b")
            registry = Registry(url)

            # Host A is alive: its lease holds well past one TTL, and host B is refused.
            wait_for("two lease TTLs to pass", lambda: time.monotonic() - acquired > 2 * TTL_S, 4 * TTL_S)
            assert not try_acquire(registry), "host B took the lease while host A was alive and holding it"

            # Host A dies without releasing it: host B takes it over once the TTL has run out.
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=30)
            wait_for("host B to take over the lease of dead host A", lambda: try_acquire(registry), 4 * TTL_S,
                     interval=0.2)
        finally:
            if holder.poll() is None:
                holder.kill()
                holder.wait(timeout=30)
            holder.stdout.close()
            holder.stdin.close()
            if registry is not None:
                registry.dispose()
