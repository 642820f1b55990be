"""Loopback ports for servers whose port must be known before they start (a child daemon, nats-server, Triton).

Why not bind to port 0 and release: that hands back a port from the kernel's *ephemeral* range, the same range
every outgoing connection draws from, so between release and the server's own bind any client socket (or a
parallel test worker) can take it; the server then dies with "address already in use". Ports here come from
below the ephemeral range, from a slice of their own per pytest-xdist worker (or per process), in sequence, and
each is checked free on loopback before it is handed out.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
import threading

__all__ = ["free_port"]

_LOW, _HIGH = 20000, 32000  # Linux's default ephemeral range starts at 32768
_SLICES = 12
_SLICE = (_HIGH - _LOW) // _SLICES
_lock = threading.Lock()


def _slice_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ...; children inherit it
    if worker.startswith("gw") and worker[2:].isdigit():
        return int(worker[2:]) % _SLICES
    return os.getpid() % _SLICES


def _cycle() -> itertools.cycle:
    start = _LOW + _slice_index() * _SLICE
    first = random.randrange(_SLICE)  # two processes in one slice start apart
    return itertools.cycle([start + (first + i) % _SLICE for i in range(_SLICE)])


_ports = _cycle()


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback TCP port nobody listens on now, not handed out before by this process (until its slice wraps)."""
    with _lock:
        for _ in range(_SLICE):
            port = next(_ports)
            if _bindable(port):
                return port
    raise OSError(f"no free loopback port in {_LOW}-{_HIGH} slice {_slice_index()}")
