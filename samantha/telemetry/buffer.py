"""The bounded write buffer in front of DuckDB: producers append chunks, one committer drains them.

Bounded in rows AND bytes, counting rows until they are committed (not merely taken), so
a slow disk pushes back on producers. A producer facing a full buffer waits up to
`block_timeout_s`, then its chunk is shed and counted. A chunk larger than the whole
budget is admitted only into an empty buffer, so it can never wedge the queue.

Waits here are real time on purpose: they wait for a real committer thread, not for
simulated time to pass.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any


class WriteBuffer:
    def __init__(self, max_rows: int, max_bytes: int, block_timeout_s: float) -> None:
        self.max_rows, self.max_bytes, self.block_timeout_s = max_rows, max_bytes, block_timeout_s
        self._cond = threading.Condition(threading.Lock())
        self._chunks: dict[str, list[Any]] = defaultdict(list)
        self.rows = 0  # buffered + in flight (taken, not yet released)
        self.bytes = 0
        self.pending_rows = 0  # buffered, not yet taken
        self.shed_rows = 0
        self.shed_chunks = 0
        self.closed = False
        self.wakeup = threading.Event()  # set when the committer should not wait for its timer
        self.wake_rows = max(1, max_rows // 4)
        self.first_put_at: float | None = None  # monotonic time of the oldest chunk not yet taken
        self._pressed = False  # a producer found the buffer full since the last take

    def put(self, table: str, chunk: Any, rows: int, nbytes: int) -> bool:
        """Queue a chunk. False when it was shed (buffer full for block_timeout_s, or closed)."""
        with self._cond:
            if not self._fits(rows, nbytes):
                deadline = time.monotonic() + self.block_timeout_s
                self._pressed = True
                self.wakeup.set()
                while not self.closed and not self._fits(rows, nbytes):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                if self.closed or not self._fits(rows, nbytes):
                    self.shed_rows += rows
                    self.shed_chunks += 1
                    return False
            if self.closed:
                self.shed_rows += rows
                self.shed_chunks += 1
                return False
            self._chunks[table].append(chunk)
            if self.first_put_at is None:
                self.first_put_at = time.monotonic()
            self.rows += rows
            self.bytes += nbytes
            self.pending_rows += rows
            if self.pending_rows >= self.wake_rows:
                self.wakeup.set()
            return True

    def oldest_wait_s(self) -> float:
        """How long the oldest chunk not yet taken has waited (0 when none)."""
        first = self.first_put_at
        return 0.0 if first is None else time.monotonic() - first

    def pressing(self) -> bool:
        """A quarter full, or a producer waits for room: commit now, whatever the rhythm."""
        return self.pending_rows >= self.wake_rows or self._pressed

    def has_room(self, rows: int) -> bool:
        """A put of `rows` would not wait now (no producer is waiting for room either)."""
        with self._cond:
            return not self.closed and not self._pressed and self._fits(rows, 0)

    def _fits(self, rows: int, nbytes: int) -> bool:
        if self.rows == 0:
            return True
        return self.rows + rows <= self.max_rows and self.bytes + nbytes <= self.max_bytes

    def take(self) -> tuple[dict[str, list[Any]], float | None]:
        """Everything queued so far and when its oldest chunk arrived; rows stay counted until `release`."""
        with self._cond:
            out, first = self._chunks, self.first_put_at
            self._chunks = defaultdict(list)
            self.pending_rows = 0
            self._pressed = False
            self.first_put_at = None
            return out, first

    def release(self, rows: int, nbytes: int) -> None:
        with self._cond:
            self.rows -= rows
            self.bytes -= nbytes
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
        self.wakeup.set()
