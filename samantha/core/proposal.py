"""A proposed chaos experiment: a fault kind, a target role and raw parameters, from any source.

A domain record in the core because the safety kernel's pre-flight judges it and the kernel
imports only the core. Parameters stay raw (unvalidated) here on purpose: pre-flight is the
one place that judges them (after the chaos fault-kind registry resolved them), so a proposal
from the LLM, a template or an adversary gets the same refusal with the same reasons.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from samantha.core.signing import canonical_json, sha256_hex

Source = Literal["planner", "llm", "template", "operator", "test"]


class Proposal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Any
    target: Any
    params: Any = Field(default_factory=dict)
    source: Source = "planner"
    title: str = ""
    rationale: str | None = Field(None, description="why (planner rule or LLM hypothesis); advisory only")
    dependency: str | None = Field(None, description="the dependency-map edge this exercises")
    value: float = Field(0.0, description="planner's value score (higher: more worth running)")
    risk: float = Field(0.0, description="planner's risk score (higher: more dangerous)")

    @property
    def key(self) -> str:
        """Identity for dedup: kind, target and parameters (not the source or scores)."""
        try:
            body = canonical_json({"kind": self.kind, "target": self.target, "params": self.params})
        except (TypeError, ValueError):
            body = repr((self.kind, self.target, self.params)).encode()
        return "prop-" + sha256_hex(body)[:16]

    def label(self) -> str:
        return self.title or f"{self.kind} on {self.target}"
