"""The `cube:` examples in docs/real-cube.md must stay valid samantha.yaml sections, complete for their adapter."""

from pathlib import Path

from samantha.core.config import load_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "real-cube.md"


def test_every_cube_example_in_the_doc_loads_with_nothing_missing(tmp_path):
    text = DOC.read_text()
    examples = [block.split("```", 1)[0] for block in text.split("```yaml\n")[1:] if "\ncube:\n" in block]
    assert len(examples) == 2
    adapters = []
    for i, example in enumerate(examples):
        p = tmp_path / f"example-{i}.yaml"
        p.write_text(example)
        cube = load_config(p).cube
        assert cube.problems() == [], (example, cube.problems())
        adapters.append((cube.protocol, cube.adapter))
    assert adapters == [("open-inference", "triton-repository"), ("openai", "command")]
