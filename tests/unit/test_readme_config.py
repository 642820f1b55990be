"""The README's real-Cube configuration example must stay a valid samantha.yaml."""

from pathlib import Path

from samantha.core.config import load_config

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_config_example_is_valid(tmp_path):
    text = README.read_text()
    start = text.index("data_dir: /var/lib/samantha")
    example = text[start:text.index("```", start)]
    p = tmp_path / "samantha.yaml"
    p.write_text(example)
    cfg = load_config(p)
    assert cfg.data_dir == "/var/lib/samantha" and cfg.uplink.cube_id == "cube-0042"
