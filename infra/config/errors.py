"""Turn validation failures into messages a person can act on: key path as written, value given, what is allowed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from .models import ADDON_VERSION, CHART_VERSION, DURATION, NAME_PATTERN

NAMESPACE = "mlserve"

_ARN_ID = "123456789012"
_SHA = "925ccfc0e86ea74cf967e9c3c5289b56f96062fcbc6c24c69d15f38c4c402e95"

# Keys renamed in a release: old name -> new name. A stack file that still uses the old one is told the new one (the
# upgrade note in docs/versions.md says when and why), not only that the key is unknown.
RENAMED_KEYS: dict[str, str] = {"component": "inference_component"}

# What each pattern of the models asks for, in words and with an example: a message never shows a regular
# expression. tests/config/test_errors.py checks that every pattern of StackConfig has its line here.
PATTERN_FORMATS: dict[str, str] = {
    NAME_PATTERN: "lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen, "
                  "e.g. resnet50",
    r"^\d{1,3}(\.\d{1,3}){3}/(1[6-9]|2[0-4])$": "an IPv4 CIDR block from /16 to /24, e.g. 10.40.0.0/16",
    r"^[a-z0-9][a-z0-9.-]{1,55}[a-z0-9]$": "an S3 bucket name of 3 to 57 lowercase letters, digits, dots and "
                                           "hyphens, starting and ending with a letter or digit, e.g. mlserve-dev-models",
    r"^(al2023|bottlerocket)@v\d[\w.-]*$": "a pinned Karpenter AMI alias, al2023@v<date> or "
                                          "bottlerocket@v<version>, e.g. al2023@v20260818",
    DURATION: "a whole number of seconds, minutes or hours, e.g. 10m",
    r"^(\d+h|Never)$": "a whole number of hours or Never, e.g. 720h",
    ADDON_VERSION: "an EKS add-on build, v<major>.<minor>.<patch>-eksbuild.<n>, e.g. v1.20.4-eksbuild.2",
    CHART_VERSION: "a chart version <major>.<minor>.<patch>, with or without a leading v, e.g. 0.20.0",
    r"^\d+\.\d+\.\d+$": "a version <major>.<minor>.<patch> without a leading v, e.g. 1.14.1",
    r"^1\.\d{2}$": "a Kubernetes minor version, e.g. 1.36",
    r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/.+": "an ACM certificate ARN, e.g. "
                                                             f"arn:aws:acm:us-east-1:{_ARN_ID}:certificate/<id>",
    r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$": "a lowercase DNS name, e.g. models.example.com",
    r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+": "an S3 URI s3://<bucket>/<key>, e.g. "
                                                 "s3://mlserve-dev-models/resnet50/model.tar.gz",
    r"^[0-9a-f]{64}$": f"64 lowercase hexadecimal digits (what `sha256sum FILE` prints), e.g. {_SHA}",
    r"^[a-z0-9]+([._/-][a-z0-9]+)*$": "an image repository name: lowercase letters and digits, parts joined by "
                                      "single '.', '_', '/' or '-', e.g. triton",
    r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$": "an image tag of up to 128 letters, digits, '_', '.' and '-', not "
                                            "starting with '.' or '-', e.g. 26.04-trt10-r1",
    r"^sha256:[0-9a-f]{64}$": f"sha256: and 64 lowercase hexadecimal digits, e.g. sha256:{_SHA}",
    r"^ml\.[a-z0-9]+\.[a-z0-9]+$": "a SageMaker instance type ml.<family>.<size>, e.g. ml.g5.xlarge",
    r"^\d+(\.\d+)?m?$": "a Kubernetes CPU quantity, cores or millicores, e.g. 4 or 500m",
    r"^\d+(Mi|Gi)$": "a memory quantity in Mi or Gi, e.g. 16Gi",
    r"^arn:aws:sagemaker:[a-z0-9-]+:\d{12}:pipeline/[A-Za-z0-9-]{1,256}$":
        f"a SageMaker pipeline ARN, e.g. arn:aws:sagemaker:us-east-1:{_ARN_ID}:pipeline/retrain",
    r"^arn:aws:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}$":
        f"a Step Functions state machine ARN, e.g. arn:aws:states:us-east-1:{_ARN_ID}:stateMachine:retrain",
    r"^https://[^\s/$.?#][^\s]*$": "an https:// URL, e.g. https://ci.example.com/hooks/retrain",
    r"^arn:aws:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$":
        f"a Secrets Manager secret ARN, e.g. arn:aws:secretsmanager:us-east-1:{_ARN_ID}:secret:mlserve/key-AbCdEf",
    r"^[A-Za-z0-9-]{1,64}$": "an HTTP header name of 1 to 64 letters, digits and hyphens, e.g. x-api-key",
    r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+\.json$": "an S3 URI of a .json file, e.g. "
                                                         "s3://mlserve-dev-models/resnet50/baseline/baseline.json",
    r"^arn:aws[a-z-]*:cognito-idp:[a-z0-9-]+:\d{12}:userpool/.+":
        f"a Cognito user pool ARN, e.g. arn:aws:cognito-idp:us-east-1:{_ARN_ID}:userpool/us-east-1_AbCdEf123",
    r"^[^@\s]+@[^@\s]+\.[^@\s]+$": "an email address, e.g. oncall@example.com",
    r"^https://": "a URL that starts with https://, e.g. https://hooks.example.com/alerts",
    r"^[A-Za-z0-9-]+/[A-Za-z0-9_.-]+$": "a GitHub repository as owner/name, e.g. acme/mlserve",
    r"^[A-Za-z0-9_.-]{1,255}$": "a GitHub environment name of letters, digits, '_', '.' and '-', e.g. production",
    r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s?]*)?(\?[^\s]*)?|https://[^\s]+)$":
        "a Pulumi state backend, s3://<bucket>[/<prefix>][?<options>] or https://..., e.g. "
        "s3://mlserve-pulumi-state?region=us-east-1",
    r"^[A-Za-z0-9/_-]{1,250}$": "a KMS alias name without alias/ (letters, digits, '/', '_' and '-'), e.g. "
                                "mlserve-pulumi-secrets",
    r"^[a-z]{2}(-gov)?-[a-z]+-\d$": "an AWS region name, e.g. us-east-1",
    r"^\d{12}$": f"a 12-digit AWS account id, quoted so that YAML keeps it text, e.g. \"{_ARN_ID}\"",
}


def edit_distance(a: str, b: str) -> int:
    """Edits from `a` to `b`: an inserted, deleted or replaced character, or two neighbours swapped, one each."""
    rows = [list(range(len(b) + 1))] + [[i] + [0] * len(b) for i in range(1, len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            rows[i][j] = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
    return rows[len(a)][len(b)]


def nearest(value: str, choices: Iterable[str], most: int = 3) -> list[str]:
    """The choices fewest edits away from `value` (all of them that tie, up to `most`), or none when even the
    nearest is too far to be a typo of it. `ml.g5.xlarg` -> [`ml.g5.xlarge`], not `ml.g5.12xlarge`."""
    scored = sorted((edit_distance(value.lower(), choice.lower()), choice) for choice in set(choices) if choice != value)
    if not scored:
        return []
    best = scored[0][0]
    if best > max(1, min(3, len(value) // 3)):
        return []
    return [choice for distance, choice in scored if distance == best][:most]


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)`, ` (did you mean 'x' or 'y'?)`, or nothing."""
    near = [repr(n) for n in nearest(value, choices)]
    return f" (did you mean {' or '.join([', '.join(near[:-1]), near[-1]] if len(near) > 1 else near)}?)" \
        if near else ""


@dataclass(frozen=True)
class ConfigIssue:
    path: str  # e.g. "mlserve:deployments[1].autoscaling.min"
    given: Any
    allowed: str

    def render(self) -> str:
        if self.given is MISSING:
            return f"{self.path}: missing; expected: {self.allowed}"
        if self.given is None:
            return f"{self.path}: missing a value (empty, or null); expected: {self.allowed}"
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


class _Missing:
    """The value of a key that is not in the file (a rule yields it for a key left unset)."""

    def __repr__(self) -> str:
        return "missing"


MISSING: Any = _Missing()


def _show(value: Any) -> str:
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


def _field_at(root: type[BaseModel], loc: tuple, data: Any) -> FieldInfo | None:
    """The model field the value at `loc` belongs to (a list item's: its list's), or None (a tag, an unknown key)."""
    annotation: Any = root
    node = data
    field: FieldInfo | None = None
    for part in loc:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        fields: dict[str, FieldInfo] = getattr(_unwrap_model(annotation, node), "model_fields", {})
        found = fields.get(part)
        if found is None:
            return None
        field, annotation = found, found.annotation
        node = node.get(part) if isinstance(node, dict) else None
    return field


def _describe_pattern(pattern: str, field: FieldInfo | None) -> str:
    """What a pattern asks for, in words: its line in PATTERN_FORMATS, else the field's description."""
    if pattern in PATTERN_FORMATS:
        return PATTERN_FORMATS[pattern]
    described = field.description if field is not None and field.description else "a value of the documented form"
    return f"{described} (docs/configuration.md)"


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
        given = item.get("input", MISSING)
        if kind == "extra_forbidden":
            allowed_keys = _allowed_keys(root, loc[:-1], data)
            renamed = RENAMED_KEYS.get(str(loc[-1]))
            if renamed in allowed_keys:
                allowed = f"this key is now named {renamed!r}: rename it (docs/versions.md, Upgrading)"
            else:
                allowed = f"unknown key{did_you_mean(str(loc[-1]), allowed_keys)}; keys here are: " \
                          f"{', '.join(allowed_keys)}"
            issues.append(ConfigIssue(key_path(loc), given, allowed))
        elif kind == "missing":
            field = _field_at(root, loc, data)
            what = f"{field.description} (required)" if field is not None and field.description else \
                "a value (this key is required)"
            issues.append(ConfigIssue(key_path(loc), MISSING, what))
        elif kind == "string_pattern_mismatch":
            pattern = str((item.get("ctx") or {}).get("pattern", ""))
            issues.append(ConfigIssue(key_path(loc), given, _describe_pattern(pattern, _field_at(root, loc, data))))
        elif kind == "literal_error" and isinstance(given, str):
            expected = str((item.get("ctx") or {}).get("expected", ""))
            choices = re.findall(r"'([^']*)'", expected)
            issues.append(ConfigIssue(key_path(loc), given, f"{expected}{did_you_mean(given, choices)}"))
        elif kind == "union_tag_invalid":
            ctx = item.get("ctx") or {}  # pydantic always sets ctx for this kind; TypedDict marks it optional
            issues.append(ConfigIssue(key_path(loc + (str(ctx.get("discriminator")).strip("'"),)),
                                      ctx.get("tag"), f"one of {ctx.get('expected_tags')}"))
        elif kind == "union_tag_not_found":
            ctx = item.get("ctx") or {}
            issues.append(ConfigIssue(key_path(loc + (str(ctx.get("discriminator")).strip("'"),)), MISSING,
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
