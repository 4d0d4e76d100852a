"""Config files: the typed model, and loading with errors that name file, key path and line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evalharness.errors import ConfigError
from evalharness.params import PARAM_NAMES, RequestParams
from evalharness.suites import Suite, load_suite
from evalharness.yamlsrc import describe_error, load_yaml, parse_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Target(_Strict):
    """Where requests go: an OpenAI-compatible endpoint, or ``kind: local`` for the bundled model."""

    kind: Literal["openai", "local"] = "openai"
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    n_ctx: int = Field(2048, ge=256)
    startup_timeout_s: float = Field(180.0, gt=0)

    @model_validator(mode="after")
    def _needs_endpoint(self) -> Target:
        if self.kind == "openai":
            if not self.base_url:
                raise ValueError("base_url is required unless kind is 'local'")
            if not self.model:
                raise ValueError("model is required unless kind is 'local'")
        return self

    @field_validator("headers")
    @classmethod
    def _no_auth_header(cls, value: dict[str, str]) -> dict[str, str]:
        if any(k.lower() == "authorization" for k in value):
            raise ValueError("put the API key in the environment and name it with api_key_env, "
                             "not in headers (configs are stored with the run)")
        return value


class Pricing(_Strict):
    """Price per 1,000 tokens; cost is computed from the usage the server reports."""

    currency: str = "USD"
    input_per_1k: float = Field(0.0, ge=0)
    output_per_1k: float = Field(0.0, ge=0)


class RunOptions(_Strict):
    """How the runner behaves."""

    concurrency: int = Field(4, ge=1, le=4096)
    stream: bool = True
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0, le=20)
    rpm: float | None = Field(None, gt=0)
    tpm: float | None = Field(None, gt=0)
    budget: float | None = Field(None, ge=0)


class Gate(_Strict):
    """A pass/fail rule on a metric: per matching cell, or on the run totals (``metric: totals.cost``)."""

    metric: str
    where: dict[str, Any] = Field(default_factory=dict)
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _has_bound(self) -> Gate:
        if self.min is None and self.max is None:
            raise ValueError("a gate needs min or max")
        return self


class Config(_Strict):
    """A whole config file, as written (suites still as paths)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    target: Target
    pricing: Pricing = Field(default_factory=Pricing)
    suites: list[str] = Field(min_length=1)
    defaults: RequestParams = Field(default_factory=RequestParams)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    repeats: int = Field(1, ge=1, le=10_000)
    run: RunOptions = Field(default_factory=RunOptions)
    gates: list[Gate] = Field(default_factory=list)

    @field_validator("grid")
    @classmethod
    def _grid_axes(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for axis, values in grid.items():
            if axis not in PARAM_NAMES:
                raise ValueError(f"unknown grid axis {axis!r}; an axis is a request parameter "
                                 f"({', '.join(sorted(PARAM_NAMES))})")
            if not values:
                raise ValueError(f"grid axis {axis!r} has no values")
        return grid


class LoadedConfig(BaseModel):
    """A validated config with its suites loaded and its source file known."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    path: Path
    config: Config
    suites: list[Suite]
    raw: dict[str, Any]

    def api_key(self) -> str | None:
        """The API key from the environment variable the config names (never stored)."""
        env = self.config.target.api_key_env
        return os.environ.get(env) if env else None


def load_config(path: str | Path) -> LoadedConfig:
    """Load, validate and resolve a config file and its suites."""
    path = Path(path)
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise ConfigError("a config must be a YAML mapping (name, target, suites, ...)", file=str(path), line=1)
    config: Config = parse_model(doc, Config, doc.data)
    for axis, values in config.grid.items():
        for i, value in enumerate(values):
            try:
                RequestParams.model_validate({axis: value})
            except ValidationError as exc:
                raise doc.error(("grid", axis, i), describe_error(exc.errors()[0])) from exc
    suites: list[Suite] = []
    seen: dict[str, int] = {}
    for i, rel in enumerate(config.suites):
        suite_path = (path.parent / rel).resolve()
        if not suite_path.is_file():
            raise doc.error(("suites", i), f"suite file not found: {rel} (looked in {suite_path})",
                            hint="paths are relative to the config file's folder")
        suite = load_suite(suite_path)
        if suite.name in seen:
            raise doc.error(("suites", i), f"two suites are named {suite.name!r}")
        seen[suite.name] = i
        suites.append(suite)
    for i, gate in enumerate(config.gates):
        for key in gate.where:
            if key not in config.grid and key not in PARAM_NAMES:
                raise doc.error(("gates", i, "where", key), f"unknown parameter {key!r} in where")
    return LoadedConfig(path=path.resolve(), config=config, suites=suites, raw=doc.data)
