"""Machine credentials of telemetry writers: one random token per writer, in a 0600 file.

The daemon and a writer on the same host (the twin's router) meet at the file: whichever
starts first creates it, and an existing token is kept, so a restart of either side does not
lock the other out. A writer on another host gets its token's sha256 in the daemon config
(`api.writers.<name>.token_sha256`) instead.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from samantha.core.operators import new_token

WRITER_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"


def ensure_token_file(path: Path) -> str:
    """The token in `path`, created (0600, 256 random bits) when absent or empty."""
    existing = read_token(path)
    if existing:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(new_token() + "\n")
    try:
        os.link(tmp, path)  # never replaces a token the other side wrote meanwhile
    except FileExistsError:
        pass
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return read_token(path) or ""


def read_token(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
