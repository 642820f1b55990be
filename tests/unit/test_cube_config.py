"""The `cube:` section of samantha.yaml: what `samantha cube serve` reads, and the errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from samantha.cli import app
from samantha.core.config import COMMAND_PLACEHOLDERS, CubeCommandConfig, CubeConfig, load_config
from samantha.core.validated_yaml import DocumentError
from samantha.cube.bundle import BundleError, VerifiedBundle
from samantha.cube.command_slot import model_file
from samantha.twin.cube_runtime import parser, resolve

COMMAND = """\
data_dir: {root}
cube:
  protocol: openai
  adapter: command
  port: 9000
  control_port: 9001
  slots:
    a: {{port: 9100}}
    b: {{port: 9200}}
  command:
    argv: [llama-server, -m, "{{model_path}}", --port, "{{port}}"]
  timeouts: {{request_s: 60, ready_s: 120}}
"""


def _file(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "samantha.yaml"
    p.write_text(text)
    return p


def _problem(tmp_path: Path, text: str) -> tuple[str, int, str]:
    with pytest.raises(DocumentError) as ei:
        load_config(_file(tmp_path, text))
    p = ei.value.problems[0]
    return p.field, p.line, p.reason


def test_default_section_is_triton_and_says_what_it_still_needs():
    cube = CubeConfig()
    assert (cube.protocol, cube.adapter, cube.host, cube.forwarding) == ("open-inference", "triton-repository",
                                                                       "127.0.0.1", "pool")
    assert [f for f, _ in cube.problems()] == ["cube.slots.a.url", "cube.slots.a.repository",
                                               "cube.slots.b.url", "cube.slots.b.repository"]


def test_a_complete_command_section_loads_with_no_problems(tmp_path):
    cfg = load_config(_file(tmp_path, COMMAND.format(root=tmp_path)))
    cube = cfg.cube
    assert cube.protocol == "openai" and cube.adapter == "command" and cube.forwarding == "httpx"
    assert cube.slots.a.port == 9100 and cube.command.argv[2] == "{model_path}"
    assert cube.timeouts.ready_s == 120 and cube.timeouts.stop_grace_s == 10.0
    assert cube.problems() == []
    assert cfg.resolve(cube.state_file) == tmp_path / "cube" / "runtime.json"


@pytest.mark.parametrize(("change", "field", "reason"), [
    (("  adapter: command\n", "  adapter: podman\n"), "cube.adapter", "'triton-repository' or 'command'"),
    (("  protocol: openai\n", "  protocol: grpc\n"), "cube.protocol", "'open-inference' or 'openai'"),
    (("  port: 9000\n", "  port: 90000\n"), "cube.port", "less than or equal to 65535"),
    (("  port: 9000\n", "  host: 10.0.0.5\n"), "cube.host", "not a loopback address"),
    (("  port: 9000\n", "  prot: 9000\n"), "cube.prot", "Extra inputs are not permitted"),
    (('"{model_path}"', '"{model}"'), "cube.command.argv", "unknown placeholder {model}"),
    (('"{port}"', '"{port"'), "cube.command.argv", "argument 4"),
    (("  timeouts: {request_s: 60", "  timeouts: {request_s: 0"), "cube.timeouts.request_s", "greater than 0"),
    (("    a: {port: 9100}", "    a: {port: 9100, data_url: 'ftp://x'}"), "cube.slots.a.data_url", "http(s)://"),
])
def test_bad_section_names_field_line_and_reason(tmp_path, change, field, reason):
    text = COMMAND.format(root=tmp_path)
    assert change[0] in text
    got_field, line, got_reason = _problem(tmp_path, text.replace(change[0], change[1], 1))
    assert got_field == field and line > 1 and reason in got_reason, (got_field, line, got_reason)


@pytest.mark.parametrize(("update", "field", "reason"), [
    ({"slots": {"a": {"port": 9100}, "b": {"port": 9100}}}, "cube.slots.b.port", "slot a's port too"),
    ({"slots": {"a": {"port": 9000}, "b": {"port": 9200}}}, "cube.slots.a.port", "the runtime's own ports"),
    ({"slots": {"a": {"port": 9100, "url": "http://127.0.0.1:1"}, "b": {"port": 9200}}}, "cube.slots.a.url",
     "only for adapter triton-repository"),
    ({"slots": {"a": {}, "b": {"port": 9200}}}, "cube.slots.a.port", "required by adapter command"),
    ({"command": {"argv": []}}, "cube.command.argv", "required by adapter command"),
    ({"command": {"argv": ["server", "--model", "/fixed/path.gguf"]}}, "cube.command.argv",
     "neither {model_path} nor {bundle_dir}"),
    ({"data_client": "pool"}, "cube.data_client", "cannot relay streamed answers"),
    ({"control_port": 9000}, "cube.control_port", "the inference port too"),
])
def test_incomplete_or_contradictory_sections_are_named(update, field, reason):
    base = {"protocol": "openai", "adapter": "command", "port": 9000, "control_port": 9001,
            "slots": {"a": {"port": 9100}, "b": {"port": 9200}}, "command": {"argv": ["s", "{model_path}"]}}
    problems = dict(CubeConfig.model_validate({**base, **update}).problems())
    assert field in problems and reason in problems[field], problems


@given(st.lists(st.one_of(st.sampled_from([f"{{{p}}}" for p in COMMAND_PLACEHOLDERS]),
                          st.text(alphabet="abc-=/._ 0123", max_size=8)), max_size=6))
def test_templates_of_known_placeholders_are_accepted_and_format_to_plain_text(parts):
    arg = "".join(parts)
    spec = CubeCommandConfig(argv=[arg])
    out = spec.argv[0].format(model_path="/m", bundle_dir="/b", port=1, host="h", slot="A")
    assert "{" not in out and "}" not in out


@given(st.from_regex(r"[a-z_]{1,12}", fullmatch=True).filter(lambda n: n not in COMMAND_PLACEHOLDERS))
def test_any_other_placeholder_is_refused(name):
    with pytest.raises(ValidationError, match=f"unknown placeholder {{{name}}}"):
        CubeCommandConfig(argv=["server", f"--x={{{name}}}"])


def test_options_override_the_file_and_paths_given_on_the_command_line_stay_where_they_point(tmp_path):
    cfg_file = _file(tmp_path, COMMAND.format(root=tmp_path))
    args = parser().parse_args(["-c", str(cfg_file), "--port", "0", "--slot-b-port", "9300", "--timeout", "90",
                                "--trusted", "keys.pem", "--ingest-url", "http://127.0.0.1:8470/v1/ingest/requests"])
    cfg, cube = resolve(args)
    assert (cube.port, cube.control_port, cube.slots.a.port, cube.slots.b.port) == (0, 9001, 9100, 9300)
    assert cube.timeouts.request_s == 90 and cube.timeouts.ready_s == 120  # untouched fields keep the file's
    assert cfg.resolve(cube.trusted_keys) == Path("keys.pem").absolute()  # relative to here, not data_dir
    assert cube.ingest_url == "http://127.0.0.1:8470/v1/ingest/requests"


def test_cube_serve_exits_2_naming_the_field(tmp_path):
    bad = _file(tmp_path, COMMAND.format(root=tmp_path).replace('"{model_path}"', '"{model}"'))
    r = CliRunner().invoke(app, ["cube", "serve", "-c", str(bad)])
    assert r.exit_code == 2 and "cube.command.argv" in r.output and "{model}" in r.output, r.output
    ok = _file(tmp_path, COMMAND.format(root=tmp_path))
    r = CliRunner().invoke(app, ["cube", "serve", "-c", str(ok), "--slot-a-port", "9200"])
    assert r.exit_code == 2 and "cube.slots.b.port: 9200 is slot a's port too" in r.output, r.output
    r = CliRunner().invoke(app, ["cube", "serve", "-c", str(ok), "--host", "0.0.0.0"])
    assert r.exit_code == 2 and "cube.host" in r.output and "(or --host)" in r.output, r.output


def _bundle(files: dict[str, bytes]) -> VerifiedBundle:
    return VerifiedBundle(path=Path("/b"), manifest=None, key_id="k", files=files)  # type: ignore[arg-type]


def test_the_model_file_is_the_configured_one_or_the_only_one():
    assert model_file(_bundle({"m.gguf": b""}), None) == "m.gguf"
    assert model_file(_bundle({"m.gguf": b"", "mmproj.gguf": b""}), "m.gguf") == "m.gguf"
    with pytest.raises(BundleError, match="carries 2 files .* set cube.command.model_file"):
        model_file(_bundle({"m.gguf": b"", "mmproj.gguf": b""}), None)
    with pytest.raises(BundleError, match=r"no other.gguf \(cube.command.model_file\)"):
        model_file(_bundle({"m.gguf": b""}), "other.gguf")
