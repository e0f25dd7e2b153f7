"""Turn validation failures into messages a person can act on: key path as written, value given, what is allowed."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

NAMESPACE = "mlserve"


@dataclass(frozen=True)
class ConfigIssue:
    path: str  # e.g. "mlserve:deployments[1].autoscaling.min"
    given: Any
    allowed: str

    def render(self) -> str:
        return f"{self.path}: given {_show(self.given)}; allowed: {self.allowed}"


class ConfigError(Exception):
    """Every problem found in one stack file, reported together."""

    def __init__(self, source: str, issues: Iterable[ConfigIssue]):
        self.source = source
        self.issues = list(issues)
        super().__init__(self.render())

    def render(self) -> str:
        count = len(self.issues)
        lines = [f"{self.source}: {count} configuration error{'s' if count != 1 else ''}"]
        lines += [f"  - {issue.render()}" for issue in self.issues]
        return "\n".join(lines)


_MISSING = object()


def _show(value: Any) -> str:
    if value is _MISSING:
        return "nothing (the key is missing)"
    if isinstance(value, (dict, list)):
        text = json.dumps(value, default=str)
        return text if len(text) <= 80 else text[:77] + "..."
    return repr(value)


def key_path(loc: Iterable[Any]) -> str:
    """`("deployments", 1, "autoscaling", "min")` -> `mlserve:deployments[1].autoscaling.min`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return f"{NAMESPACE}:{text}" if text else f"{NAMESPACE}:"


def _strip_tags(loc: tuple, tags: set[str]) -> tuple:
    """Drop discriminator tags pydantic puts in the location (`deployments.1.sagemaker.compute`)."""
    return tuple(part for part in loc if not (isinstance(part, str) and part in tags))


def _allowed_keys(root: type[BaseModel], loc: tuple, data: Any) -> list[str]:
    """Walk the model along `loc` to list the keys valid where an unknown key was found."""
    annotation: Any = root
    node = data
    for part in loc:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        model = _unwrap_model(annotation, node)
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return sorted(fields)
        annotation = fields[part].annotation
        node = node.get(part) if isinstance(node, dict) else None
    return sorted(getattr(_unwrap_model(annotation, node), "model_fields", {}))


def _unwrap_model(annotation: Any, node: Any) -> Any:
    """Find the BaseModel inside Optional[...], list[...], or a discriminated union (by the node's tag)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    candidates = [a for a in _flatten(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
    if len(candidates) > 1 and isinstance(node, dict):
        for candidate in candidates:
            for field_name in ("backend", "strategy"):
                field = candidate.model_fields.get(field_name)
                if field is not None and node.get(field_name) in get_args(field.annotation):
                    return candidate
    return candidates[0] if candidates else None


def _flatten(annotation: Any) -> list[Any]:
    out: list[Any] = []
    stack = [annotation]
    while stack:
        item = stack.pop()
        args = get_args(item)
        if args and get_origin(item) is not None:
            stack.extend(args)
        else:
            out.append(item)
    return out


def from_validation_error(source: str, error: ValidationError, root: type[BaseModel], data: Any,
                          tags: set[str]) -> ConfigError:
    issues: list[ConfigIssue] = []
    for item in error.errors(include_url=False):
        loc = _strip_tags(tuple(item["loc"]), tags)
        kind = item["type"]
        given = item.get("input", _MISSING)
        if kind == "extra_forbidden":
            allowed_keys = _allowed_keys(root, loc[:-1], data)
            typo = difflib.get_close_matches(str(loc[-1]), allowed_keys, n=1)
            hint = f" (did you mean {typo[0]!r}?)" if typo else ""
            issues.append(ConfigIssue(key_path(loc), given,
                                      f"unknown key{hint}; keys here are: {', '.join(allowed_keys)}"))
        elif kind == "missing":
            issues.append(ConfigIssue(key_path(loc), _MISSING, "this key is required"))
        elif kind == "union_tag_invalid":
            ctx = item.get("ctx") or {}  # pydantic always sets ctx for this kind; TypedDict marks it optional
            issues.append(ConfigIssue(key_path(loc + (str(ctx.get("discriminator")).strip("'"),)),
                                      ctx.get("tag"), f"one of {ctx.get('expected_tags')}"))
        elif kind == "union_tag_not_found":
            ctx = item.get("ctx") or {}
            issues.append(ConfigIssue(key_path(loc + (str(ctx.get("discriminator")).strip("'"),)), _MISSING,
                                      "this key is required to choose the kind of block"))
        else:
            message = item["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, "):]
            issues.append(ConfigIssue(key_path(loc), given, _as_allowed(message)))
    return ConfigError(source, issues)


def _as_allowed(message: str) -> str:
    """Pydantic says 'Input should be X'; the user wants to read what is allowed."""
    for prefix in ("Input should be ", "String should "):
        if message.startswith(prefix):
            rest = message[len(prefix):]
            return rest if prefix == "Input should be " else "a string that should " + rest
    return message
