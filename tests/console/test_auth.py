"""Operator auth on the real daemon: every role, every failure mode, TLS and the loopback rule."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from samantha.api.auth import BindRefused, check_binding, required_role
from samantha.core.config import SamanthaConfig
from samantha.core.operators import Role, add_operator, parse_operators
from samantha.core.validated_yaml import DocumentError
from tests.conftest import free_port
from tests.console.kit import console_daemon
from tests.sre.kit import wait_for, write_config


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_roles_and_failure_modes_on_the_real_daemon(tmp_path: Path) -> None:
    with console_daemon(tmp_path, records=False) as d:
        c = httpx.Client(base_url=d.url, timeout=10)
        # public: health; telemetry ingest takes a writer credential, never an operator token
        assert c.get("/healthz").status_code == 200
        assert c.post("/v1/ingest/requests", content=b"").status_code == 401
        assert c.post("/v1/ingest/requests", content=b"", headers=d.bearer("admin")).status_code == 403

        # missing token: 401, says how to authenticate
        for method, path in (("GET", "/v1/status"), ("GET", "/metrics"), ("GET", "/v1/dora"),
                             ("POST", "/v1/rollout/abort"), ("GET", "/v1/nope")):
            r = c.request(method, path)
            assert r.status_code == 401, (path, r.text)
            assert r.json()["error"]["code"] == "unauthenticated" and "Bearer" in r.json()["error"]["reason"]
            assert r.headers["www-authenticate"].startswith("Bearer")
        # an unknown token: 401 bad_token
        r = c.get("/v1/status", headers={"Authorization": "Bearer sam_not-a-real-token"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "bad_token"

        # every role reads
        for role in ("viewer", "approver", "admin"):
            assert c.get("/v1/status", headers=d.bearer(role)).status_code == 200
            who = c.get("/v1/auth/whoami", headers=d.bearer(role)).json()
            assert who == {"name": f"{role}-op", "role": role, "via": "token"}
        # mutations: rollout abort needs admin; approval decisions need approver
        abort = {"json": {"reason": "test"}}
        for role in ("viewer", "approver"):
            r = c.post("/v1/rollout/abort", headers=d.bearer(role), **abort)
            assert r.status_code == 403, r.text
            assert r.json()["error"] == {"code": "forbidden", "field": None, "reason":
                                         f"operator {role}-op has role {role}; POST /v1/rollout/abort needs admin"}
        r = c.post("/v1/rollout/abort", headers=d.bearer("admin"), **abort)
        assert r.status_code == 409 and r.json()["error"]["code"] == "no_rollout"  # authorised, then the controller
        r = c.post("/v1/approvals/x/decide", headers=d.bearer("viewer"))
        assert r.status_code == 403 and "needs approver" in r.json()["error"]["reason"]
        assert c.post("/v1/approvals/x/decide", headers=d.bearer("approver")).status_code != 403
        # the local CLI token is an admin, and the CLI uses it
        assert c.get("/v1/auth/whoami", headers={"Authorization": f"Bearer {d.local_token()}"}).json()["role"] == "admin"
        out = subprocess.run([sys.executable, "-m", "samantha", "status", "--json", "-c", str(d.config_path)],
                             capture_output=True, text=True, env={**os.environ}, timeout=60)
        assert out.returncode == 0, out.stderr
        out = subprocess.run([sys.executable, "-m", "samantha", "status", "--json", "-c", str(d.config_path)],
                             capture_output=True, text=True, env={**os.environ, "SAMANTHA_TOKEN": "sam_wrong"},
                             timeout=60)
        assert out.returncode == 2 and "bad_token" in out.stderr

        # an operator removed from the file loses access at once
        ops = d.config.resolve(d.config.api.operators_file)
        add_operator(ops, "viewer-op", "viewer")  # re-issued: the old token is dead
        r = c.get("/v1/status", headers=d.bearer("viewer"))
        assert r.status_code == 401

        # failed logins are rate-limited per client address: 5 failures in the window, then 429
        fails = 3  # so far from this address: the unknown token, the CLI's wrong token, the re-issued viewer token
        for _ in range(5 - fails):
            assert c.get("/v1/status", headers={"Authorization": "Bearer sam_guess"}).status_code == 401
        r = c.get("/v1/status", headers={"Authorization": "Bearer sam_guess"})
        assert r.status_code == 429, r.text
        assert r.json()["error"]["code"] == "rate_limited" and 1 <= int(r.headers["retry-after"]) <= 300
        # while limited, even a good operator token from that address waits (no oracle for guesses) ...
        assert c.get("/v1/status", headers=d.bearer("admin")).status_code == 429
        # ... but the daemon is not locked out of its own Cube: the local token still works
        assert c.get("/v1/status", headers={"Authorization": f"Bearer {d.local_token()}"}).status_code == 200
        m = c.get("/metrics", headers={"Authorization": f"Bearer {d.local_token()}"}).text
        assert 'samantha_api_logins_total{result="rate_limited"}' in m


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    c, k = tmp / "api.crt", tmp / "api.key"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return c, k


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_tls_serves_https_and_a_non_loopback_bind_without_tls_is_refused(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    port = free_port()
    cfg = SamanthaConfig.model_validate({"data_dir": str(tmp_path / "tls"), "api": {
        "port": port, "tls_cert": str(cert), "tls_key": str(key)}, "sre": {"cube_url": f"http://127.0.0.1:{free_port()}"}})
    proc = subprocess.Popen([sys.executable, "-m", "samantha", "run", "-c", str(write_config(cfg, tmp_path / "t.yaml"))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ)
    try:
        ctx = ssl.create_default_context(cafile=str(cert))
        r = wait_for(lambda: httpx.get(f"https://127.0.0.1:{port}/healthz", verify=ctx, timeout=2), 60, "https")
        assert r.status_code == 200
        token = (tmp_path / "tls" / "api.token").read_text().strip()
        r = httpx.get(f"https://127.0.0.1:{port}/v1/status", verify=ctx, headers={"Authorization": f"Bearer {token}"})
        assert r.json()["url"] == f"https://127.0.0.1:{port}"
        with pytest.raises(httpx.HTTPError):  # no plain-HTTP fallback
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    refused = SamanthaConfig.model_validate({"data_dir": str(tmp_path / "r"), "api": {"host": "0.0.0.0", "port": 0}})
    out = subprocess.run([sys.executable, "-m", "samantha", "run", "-c",
                          str(write_config(refused, tmp_path / "refused.yaml"))],
                         capture_output=True, text=True, env=os.environ, timeout=60)
    assert out.returncode == 1
    assert "0.0.0.0 is not loopback" in out.stderr and "api.tls_cert and api.tls_key" in out.stderr


def test_binding_rule() -> None:
    assert check_binding(SamanthaConfig()) == {}
    with pytest.raises(BindRefused, match="tls_key"):
        check_binding(SamanthaConfig.model_validate({"api": {"host": "10.0.0.5", "tls_cert": "c.pem"}}))
    with pytest.raises(BindRefused, match="does not exist"):
        check_binding(SamanthaConfig.model_validate({"api": {"host": "10.0.0.5", "tls_cert": "/nope/c.pem",
                                                             "tls_key": "/nope/k.pem"}}))


def test_route_policy_table() -> None:
    assert required_role("GET", "/healthz") is None
    assert required_role("GET", "/console/static/console.css") is None
    assert required_role("GET", "/v1/status") == Role.viewer and required_role("GET", "/metrics") == Role.viewer
    assert required_role("POST", "/v1/approvals/a1/decide") == Role.approver
    assert required_role("POST", "/console/approvals/a1/decide") == Role.approver
    assert required_role("POST", "/v1/rollout/start") == Role.admin
    assert required_role("DELETE", "/v1/anything") == Role.admin  # unknown mutations need the highest role


def test_operators_file_errors_name_line_and_field() -> None:
    with pytest.raises(DocumentError) as e:
        parse_operators("operators:\n  - name: bob\n    role: superuser\n")
    p = e.value.problems[0]
    assert p.line == 3 and "role" in p.field
    with pytest.raises(DocumentError, match="duplicate name"):
        parse_operators("operators:\n  - {name: a, role: viewer}\n  - {name: a, role: admin}\n")
    with pytest.raises(DocumentError, match="public key"):
        parse_operators("operators:\n  - {name: a, role: viewer, public_key: 'AAAA'}\n")
