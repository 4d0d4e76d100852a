"""Load YAML safely and remember the line of every key, so errors can say where they are."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from evalharness.errors import ConfigError

KeyPath = tuple[str | int, ...]


@dataclass
class YamlDoc:
    """A parsed YAML document and the 1-based line of each key path in it.

    A config given as a Python mapping has no file and no lines: ``path`` is the folder its paths are
    relative to and ``name`` what its errors call it. Key paths in ``overridden`` took their values from a
    caller's overrides, so an error under one names the overrides, not a line of the file that lacks it.
    """

    path: Path
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    name: str | None = None
    overridden: frozenset[KeyPath] = frozenset()

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """Line of the deepest prefix of ``loc`` that exists in the file."""
        key = tuple(loc)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), None)

    def error(self, loc: Sequence[str | int], message: str, hint: str | None = None) -> ConfigError:
        """A ConfigError pointing at ``loc`` in this file."""
        key = tuple(loc)
        if any(key[:len(p)] == p for p in self.overridden):
            return ConfigError(message, file="overrides", key=format_loc(loc), hint=hint)
        return ConfigError(message, file=self.source, key=format_loc(loc), line=self.line_of(loc), hint=hint)

    @property
    def source(self) -> str:
        """What errors name: the file, or the ``name`` of a document that has none."""
        return self.name or str(self.path)


def format_loc(loc: Sequence[str | int]) -> str:
    """``('grid', 'seed', 1)`` -> ``grid.seed[1]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# Scalars that JSON (and so a request body or a record) can carry; YAML's others must be quoted.
_JSON_SCALARS = {"tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null")}
_CONTAINERS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


def _walk(node: yaml.Node, loc: KeyPath, lines: dict[KeyPath, int], path: Path, open_nodes: set[int]) -> None:
    """Record the line of every key path, and refuse what cannot become JSON."""
    line = node.start_mark.line + 1
    lines.setdefault(loc, line)
    if id(node) in open_nodes:
        raise ConfigError("a YAML alias refers to itself", file=str(path), key=format_loc(loc), line=line)
    if isinstance(node, yaml.ScalarNode):
        if node.tag not in _JSON_SCALARS:
            kind = node.tag.rsplit(":", 1)[-1]
            raise ConfigError(f"YAML type '{kind}' is not supported here", file=str(path), key=format_loc(loc),
                              line=line, hint="quote the value to make it a string")
        return
    if node.tag not in _CONTAINERS:
        kind = node.tag.rsplit(":", 1)[-1]
        raise ConfigError(f"YAML type '{kind}' is not supported here", file=str(path), key=format_loc(loc),
                          line=line, hint="use a plain mapping or list")
    open_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            lines[(*loc, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*loc, key), lines, path, open_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*loc, i), lines, path, open_nodes)
    open_nodes.discard(id(node))


def load_yaml(path: Path) -> YamlDoc:
    """Parse ``path`` with the safe loader; a syntax error becomes a ConfigError with its line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError("file not found", file=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read file: {exc}", file=str(path)) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        lines: dict[KeyPath, int] = {}
        if node is not None:
            _walk(node, (), lines, path, set())
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"YAML syntax error: {problem}", file=str(path), line=line) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error: {exc}", file=str(path)) from exc
    except RecursionError as exc:
        raise ConfigError("the YAML is nested too deeply", file=str(path)) from exc
    return YamlDoc(path=path, data=data, lines=lines)


def describe_error(err: Any) -> str:
    """A short message for one pydantic error."""
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required key is missing"
    return str(err["msg"]).removeprefix("Value error, ")


def _to_config_error(doc: YamlDoc, exc: ValidationError, prefix: tuple[str | int, ...]) -> ConfigError:
    errors = exc.errors()
    locs = [(*prefix, *err["loc"]) for err in errors]
    hint = None
    if errors[0]["type"] == "extra_forbidden" and ({"defaults", "params"} & set(map(str, locs[0]))):
        hint = "not a request parameter; put server-specific keys under extra_body"
    first = doc.error(locs[0], describe_error(errors[0]), hint=hint)
    if len(errors) == 1:
        return first
    more = "".join(f"\n  also {doc.error(loc, describe_error(err))}"
                   for loc, err in zip(locs[1:], errors[1:], strict=True))
    return ConfigError(first.message + more, file=first.file, key=first.key, line=first.line, hint=hint)


def parse_model(doc: YamlDoc, model: type[BaseModel], data: Any, prefix: tuple[str | int, ...] = ()
                ) -> Any:
    """Validate ``data`` against ``model``; errors become a ConfigError naming file, key and line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _to_config_error(doc, exc, prefix) from exc
