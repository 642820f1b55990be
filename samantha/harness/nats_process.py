"""NATS topologies as real processes on loopback: one node, a 3-node root cluster, a regional leaf."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from samantha.core.ports import free_port
from samantha.hub.broker import NatsServer, ServerSpec


@contextlib.contextmanager
def single(root: Path, name: str = "hub-1", timeout: float = 20.0) -> Iterator[NatsServer]:
    s = NatsServer(ServerSpec(name=name, root=Path(root))).start()
    try:
        s.wait_ready(timeout)
        yield s
    finally:
        s.stop()


class Fleet:
    """A root cluster (JetStream, replicated) and regional leaf nodes (no JetStream: they relay)."""

    def __init__(self, root: Path, nodes: int = 3, regions: tuple[str, ...] = ("eu",),
                 leaf_via: Callable[[int], int] | None = None, max_file: str = "2GB") -> None:
        """`leaf_via`: a root node's leafnode port -> the port the leaves dial instead (a fault proxy);
        `max_file`: each root node's JetStream file storage (SAMANTHA_UP's bound is reserved from it)."""
        self.root = Path(root)
        cports = [free_port() for _ in range(nodes)]
        lports = [free_port() for _ in range(nodes)]
        self.nodes = [NatsServer(ServerSpec(name=f"root-{i + 1}", root=self.root, cluster="root" if nodes > 1 else None,
                                            cluster_port=cports[i], routes=[p for p in cports if p != cports[i]],
                                            leaf_listen_port=lports[i], max_file=max_file))
                      for i in range(nodes)]
        self.leaves = {r: NatsServer(ServerSpec(name=f"leaf-{r}", root=self.root, jetstream=False,
                                                leaf_remotes=[leaf_via(p) for p in lports] if leaf_via else lports))
                       for r in regions}

    @property
    def root_urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def leaf_url(self, region: str) -> str:
        return self.leaves[region].url

    def start(self, timeout: float = 40.0) -> Fleet:
        for n in self.nodes:
            n.start()
        for n in self.nodes:
            n.wait_ready(timeout)
        for leaf in self.leaves.values():
            leaf.start()
            leaf.wait_ready(timeout)
        return self

    def stop(self) -> None:
        for s in [*self.leaves.values(), *self.nodes]:
            s.stop()

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
