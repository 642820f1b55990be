from pathlib import Path

import pytest
from typer.testing import CliRunner

from samantha.cli import app
from samantha.core.clock import SimClock
from samantha.core.config import SamanthaConfig, load_config
from samantha.core.validated_yaml import DocumentError


def test_defaults_need_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SAMANTHA_CONFIG", raising=False)
    cfg = load_config()
    assert cfg == SamanthaConfig()
    assert cfg.api.host == "127.0.0.1"


def test_empty_file_is_defaults(tmp_path):
    p = tmp_path / "samantha.yaml"
    p.write_text("")
    assert load_config(p) == SamanthaConfig()


def test_bad_field_names_line_field_and_reason(tmp_path):
    p = tmp_path / "samantha.yaml"
    p.write_text("data_dir: /tmp/x\nstore:\n  disk_budget_mb: -5\n  flush_interval_ms: abc\n")
    with pytest.raises(DocumentError) as ei:
        load_config(p)
    probs = {pr.field: pr for pr in ei.value.problems}
    assert probs["store.disk_budget_mb"].line == 3
    assert "greater than 0" in probs["store.disk_budget_mb"].reason
    assert probs["store.flush_interval_ms"].line == 4


def test_unknown_key_is_an_error(tmp_path):
    p = tmp_path / "samantha.yaml"
    p.write_text("store:\n  disk_budjet_mb: 5\n")
    with pytest.raises(DocumentError) as ei:
        load_config(p)
    assert ei.value.problems[0].field == "store.disk_budjet_mb"
    assert ei.value.problems[0].line == 2


def test_invalid_yaml_has_position(tmp_path):
    p = tmp_path / "samantha.yaml"
    p.write_text("store: [1, 2\n")
    with pytest.raises(DocumentError) as ei:
        load_config(p)
    assert ei.value.problems[0].line >= 1
    assert "invalid YAML" in ei.value.problems[0].reason


def test_cli_bad_config_exits_2(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("api:\n  port: 99999\n")
    r = CliRunner().invoke(app, ["config", "check", "--config", str(p)])
    assert r.exit_code == 2
    assert "api.port" in r.output


def test_cli_config_show_json(tmp_path):
    p = tmp_path / "ok.yaml"
    p.write_text("api:\n  port: 9000\n")
    r = CliRunner().invoke(app, ["config", "show", "--json", "--config", str(p)])
    assert r.exit_code == 0, r.output
    assert '"port": 9000' in r.output


def test_sim_clock_moves_only_when_told():
    c = SimClock(start=100.0)
    assert c.time() == 100.0 and c.monotonic() == 0.0
    c.sleep(2.5)
    assert c.time() == 102.5 and c.monotonic() == 2.5
    with pytest.raises(ValueError):
        c.advance(-1)


def test_resolve_relative_under_data_dir():
    cfg = SamanthaConfig(data_dir="/var/lib/samantha")
    assert cfg.store_path == Path("/var/lib/samantha/telemetry.duckdb")


def test_the_store_commit_setting_keeps_its_old_name():
    from samantha.core.config import StoreConfig

    assert StoreConfig.model_validate({"loop_backstop_ms": 700}).daemon_commit_ms == 700
    assert StoreConfig.model_validate({"daemon_commit_ms": 800}).daemon_commit_ms == 800
