"""Versioned prompt templates (Jinja2), one file per task and version: `prompt_templates/<task>.v<N>.j2`.

A template defines two blocks, `system` and `user`. It sees two kinds of input:
- `data`: the telemetry-derived part, already fenced and escaped by `quote_data`;
  nothing from telemetry reaches a template any other way;
- `params`: values chosen by code (enumerations from the action set and the
  fault catalog, limits), never text from telemetry.
The record of every call names the template and the sha256 of its source.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict

from samantha.llm.quoting import quote_data

_NAME = re.compile(r"^(?P<task>[a-z_]+)\.v(?P<version>\d+)\.j2$")
_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


class PromptError(Exception):
    """A template is missing or broken (names the file and the reason)."""


def shipped_prompts_dir() -> Path:
    """The templates shipped as package data, beside this module."""
    here = Path(__file__).resolve().parent / "prompt_templates"
    if not here.is_dir():
        raise PromptError(f"no prompt templates directory at {here}")
    return here


@dataclass(frozen=True)
class PromptTemplate:
    task: str
    version: int
    path: Path
    source: str

    @property
    def name(self) -> str:
        return f"{self.task}.v{self.version}"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()


class RenderedPrompt(BaseModel):
    model_config = ConfigDict(frozen=True)

    template: str
    template_sha256: str
    system: str
    user: str

    @property
    def chars(self) -> int:
        return len(self.system) + len(self.user)


def list_templates(directory: str | Path | None = None) -> list[PromptTemplate]:
    directory = Path(directory) if directory else shipped_prompts_dir()
    out = []
    for path in sorted(directory.glob("*.j2")):
        m = _NAME.match(path.name)
        if m:
            out.append(PromptTemplate(m["task"], int(m["version"]), path, path.read_text()))
    return out


def load_template(task: str, version: int | None = None, directory: str | Path | None = None) -> PromptTemplate:
    """The template for `task`: the given version, else the highest one."""
    found = [t for t in list_templates(directory) if t.task == task]
    if version is not None:
        found = [t for t in found if t.version == version]
    if not found:
        where = directory or shipped_prompts_dir()
        raise PromptError(f"no template for task {task!r}" + (f" version {version}" if version else "") + f" in {where}")
    return max(found, key=lambda t: t.version)


def render(template: PromptTemplate, *, data: Any, params: dict[str, Any] | None = None,
           max_data_chars: int = 3000) -> RenderedPrompt:
    """Render both blocks; `data` is quoted here, so a caller cannot pass telemetry unquoted."""
    try:
        tmpl = _env.from_string(template.source)
        blocks = {}
        for block in ("system", "user"):
            if block not in tmpl.blocks:
                raise PromptError(f"{template.path}: missing block {block!r}")
            ctx = tmpl.new_context({"data": quote_data(data, max_total=max_data_chars), "params": params or {}})
            blocks[block] = "".join(tmpl.blocks[block](ctx)).strip()
    except TemplateError as e:
        raise PromptError(f"{template.path}: {type(e).__name__}: {e}") from e
    return RenderedPrompt(template=template.name, template_sha256=template.sha256, **blocks)
