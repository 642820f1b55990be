"""Samantha's fault proxy: a server for the Toxiproxy v2 HTTP API with an asyncio TCP data plane.

`start_proxy_server()` runs it in-process; `python -m samantha.proxy` runs it as a process;
`samantha.cube.proxy_client.ProxyClient` talks to it (or to a real toxiproxy-server).
"""

from samantha.proxy.server import ProxyServerHandle, start_proxy_server

__all__ = ["ProxyServerHandle", "start_proxy_server"]
