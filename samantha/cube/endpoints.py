"""Where the agent reaches the Cube: its control API, its fault proxy's API, the twin's state file.

The twin writes `twin.json` in its run directory (`twin.run_dir`) with the host and the ports
it bound; the agent reads it here, and only here. `sre.cube_url` in the config, when set,
wins for the control API (a real Cube, or a twin elsewhere). Without a state file the
configured ports are used (`twin.host:twin.control_port`, `proxy.url`).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from samantha.core.config import SamanthaConfig

TWIN_STATE_FILE = "twin.json"  # written by the twin's supervisor (samantha/twin/supervisor.py)


@dataclass(frozen=True)
class CubeEndpoints:
    control_url: str  # the CubeRuntime control API
    proxy_url: str  # the Toxiproxy-compatible API of the slot proxies
    twin_state: str  # absolute path of the twin's state file (it may not exist)


def cube_endpoints(config: SamanthaConfig) -> CubeEndpoints:
    """The Cube's control and proxy APIs: `sre.cube_url` first (control), then the running twin's state file,
    then the configured ports."""
    path = config.resolve(config.twin.run_dir) / TWIN_STATE_FILE
    t = config.twin
    control, proxy = f"http://{t.host}:{t.control_port}", config.proxy.url
    st = _read(path)
    if st is not None:
        with contextlib.suppress(KeyError, TypeError):
            control = f"http://{st['host']}:{st['ports']['control_port']}"
        with contextlib.suppress(KeyError, TypeError):
            proxy = f"http://{st['host']}:{st['ports']['proxy_api_port']}"
    return CubeEndpoints(config.sre.cube_url or control, proxy, str(path.absolute()))


def _read(path: Any) -> dict[str, Any] | None:
    try:
        st = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return st if isinstance(st, dict) else None
