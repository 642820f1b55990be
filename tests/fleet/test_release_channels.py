"""Release channels: a module applies only on the channels the root signed it for; `samantha hub promote`
re-signs it at the root with the next channel added. Real nats-server, the real CLI, a real Cube uplink."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import yaml

from samantha.core import fleet
from samantha.core.signing import KeyPair
from samantha.harness.hub_process import spawn_nats_hub
from samantha.hub import nats_ops
from samantha.uplink.local import local_service
from tests.uplink.kit import cli, cube_config, hub_key

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


async def _copy_raw(url: str, doc: dict, channel: str) -> None:
    """Somebody with broker access (not the root) copies a module onto another channel's subject."""
    import nats

    nc = await nats.connect(url)
    try:
        await nc.jetstream(domain=fleet.DOMAIN).publish(fleet.policy_subject(channel), json.dumps(doc).encode())
    finally:
        await nc.close()


def _pull(svc) -> dict:
    deadline = time.monotonic() + 30
    out: dict = {}
    while time.monotonic() < deadline:
        out = svc.force_sync(max_seconds=10).get("policy") or {}
        if out.get("status") not in (None, "none_published"):
            return out
        time.sleep(0.3)
    raise AssertionError(out)


def test_a_module_applies_on_its_signed_channels_and_promotion_releases_it_to_the_next(tmp_path):
    with spawn_nats_hub(tmp_path / "hub") as hub:
        cfg = cube_config(tmp_path, hub.value, cube_id="cube-f", channel="fleet")
        key = hub_key(cfg)
        key.save(key_path := tmp_path / "hub.key")
        (body := tmp_path / "module.yaml").write_text(yaml.safe_dump({"version": 3, "fleet": "twins"}))
        r = cli(["hub", "publish", str(body), "--key", str(key_path), "--hub", hub.value, "--channel", "staging"])
        assert r.returncode == 0, r.stderr + r.stdout
        staged = nats_ops.current_policy(hub.value, "staging")
        assert staged["channels"] == ["staging"] and staged["version"] == 3

        with local_service(cfg) as svc:
            # a staging module copied onto the fleet subject by anyone but the root: refused, nothing applied
            asyncio.run(_copy_raw(hub.value, staged, "fleet"))
            refused = _pull(svc)
            assert refused["status"] == "refused" and refused["code"] == "wrong_channel", refused
            assert refused["field"] == "channels" and "staging" in refused["reason"]
            assert svc.policy.current() is None

            # promotion at the root: staging -> fleet, re-signed with fleet added
            r = cli(["hub", "promote", "--from", "staging", "--to", "fleet", "--key", str(key_path),
                     "--hub", hub.value, "--json"])
            assert r.returncode == 0, r.stderr + r.stdout
            assert json.loads(r.stdout)["channels"] == ["staging", "fleet"]
            applied = _pull(svc)
            assert applied["status"] == "applied" and applied["version"] == 3, applied
            assert svc.policy.current().module.channels == ["staging", "fleet"]
            assert svc.status()["policy"]["channels"] == ["staging", "fleet"]

        # bad input: nothing on the source channel (2); the same version again (2); another root's key (1)
        r = cli(["hub", "promote", "--from", "nowhere", "--to", "fleet", "--key", str(key_path), "--hub", hub.value])
        assert r.returncode == 2 and "no module is published on channel 'nowhere'" in r.stdout + r.stderr
        r = cli(["hub", "promote", "--from", "staging", "--to", "fleet", "--key", str(key_path), "--hub", hub.value])
        assert r.returncode == 2 and "holds version 3" in r.stdout + r.stderr
        KeyPair.generate().save(other := tmp_path / "other.key")
        r = cli(["hub", "promote", "--from", "staging", "--to", "pre-prod", "--key", str(other), "--hub", hub.value])
        assert r.returncode == 1 and "does not verify" in r.stdout + r.stderr
        r = cli(["hub", "promote", "--from", "staging", "--to", "bad.channel", "--key", str(key_path),
                 "--hub", hub.value])
        assert r.returncode == 2, r.stdout + r.stderr
