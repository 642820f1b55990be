"""Ports handed out for servers: below the ephemeral range, distinct, free, one slice per test worker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from samantha.core.ports import free_port


def _ephemeral_low() -> int:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        return int(f.read().split()[0])


def test_ports_are_distinct_free_and_below_the_ephemeral_range():
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == 200
    assert max(ports) < _ephemeral_low()
    for p in ports[:20]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", p))  # raises if someone holds it


def test_a_listening_port_is_never_handed_out():
    held = []
    try:
        for _ in range(30):
            s = socket.socket()
            s.bind(("127.0.0.1", free_port()))
            s.listen()
            held.append(s)
        taken = {s.getsockname()[1] for s in held}
        assert not taken & {free_port() for _ in range(100)}
    finally:
        for s in held:
            s.close()


def test_two_xdist_workers_draw_from_disjoint_slices():
    code = "from samantha.core.ports import free_port; print(*[free_port() for _ in range(300)])"
    drawn = [set(map(int, subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTEST_XDIST_WORKER": w},
                                         capture_output=True, text=True, check=True, timeout=60).stdout.split()))
             for w in ("gw0", "gw1")]
    assert len(drawn[0]) == len(drawn[1]) == 300
    assert not drawn[0] & drawn[1]
