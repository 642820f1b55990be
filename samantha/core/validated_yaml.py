"""YAML documents validated by pydantic, with errors that name file, line, column and field.

Config, playbooks, scenarios and experiments all go through here, so every bad
file a human wrote gets the same kind of answer: where, which field, and why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    source: str
    line: int  # 1-based; 0 when unknown
    column: int  # 1-based; 0 when unknown
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}:{self.column}" if self.line else self.source
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "line": self.line, "column": self.column,
                "field": self.field, "reason": self.reason}


class DocumentError(ValueError):
    """One or more problems in a document; str() lists them all, one per line."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def _marks(node: yaml.Node, loc: Loc, out: dict[Loc, tuple[int, int]]) -> None:
    out[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value
            out[(*loc, k)] = (key.start_mark.line + 1, key.start_mark.column + 1)
            _marks(value, (*loc, k), out)
            out[(*loc, k)] = (key.start_mark.line + 1, key.start_mark.column + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _marks(item, (*loc, i), out)


def field_path(loc: Loc) -> str:
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        else:
            parts.append(("." if parts else "") + str(p))
    return "".join(parts)


def locate(marks: dict[Loc, tuple[int, int]], loc: Loc) -> tuple[int, int]:
    """The position of the longest prefix of `loc` present in the document."""
    for n in range(len(loc), -1, -1):
        # pydantic inserts discriminator tags into loc; skip parts the document lacks
        if loc[:n] in marks:
            return marks[loc[:n]]
    return (0, 0)


def parse_yaml(text: str, source: str) -> tuple[Any, dict[Loc, tuple[int, int]]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise DocumentError([Problem(source, line, col, "", f"invalid YAML: {e.problem or e}")]) from None
    except yaml.YAMLError as e:
        raise DocumentError([Problem(source, 0, 0, "", f"invalid YAML: {e}")]) from None
    marks: dict[Loc, tuple[int, int]] = {}
    if node is not None:
        _marks(node, (), marks)
    return data, marks


def problems_from_validation(err: ValidationError, source: str,
                             marks: dict[Loc, tuple[int, int]], prefix: Loc = ()) -> list[Problem]:
    out = []
    for e in err.errors():
        loc = (*prefix, *e["loc"])
        line, col = locate(marks, loc)
        out.append(Problem(source, line, col, field_path(loc), e["msg"]))
    return out


def load_model(model: type[M], text: str, source: str = "<string>", *, empty_ok: bool = False) -> M:
    data, marks = parse_yaml(text, source)
    if data is None:
        if not empty_ok:
            raise DocumentError([Problem(source, 0, 0, "", "document is empty")])
        data = {}
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise DocumentError(problems_from_validation(e, source, marks)) from None


def load_model_file(model: type[M], path: str | Path, *, empty_ok: bool = False) -> M:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise DocumentError([Problem(str(p), 0, 0, "", f"cannot read: {e.strerror or e}")]) from None
    except UnicodeDecodeError as e:
        raise DocumentError([Problem(str(p), 0, 0, "", f"not UTF-8 text: {e.reason}")]) from None
    return load_model(model, text, str(p), empty_ok=empty_ok)
