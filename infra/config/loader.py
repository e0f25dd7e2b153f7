"""Read stack configuration from a Pulumi.<stack>.yaml file or from the Pulumi engine, and validate it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from . import rules
from .errors import NAMESPACE, ConfigError, ConfigIssue, from_validation_error
from .models import DISCRIMINATOR_TAGS, StackConfig

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def stack_file(stack: str, root: Path = PROJECT_ROOT) -> Path:
    return root / f"Pulumi.{stack}.yaml"


def available_stacks(root: Path = PROJECT_ROOT) -> list[str]:
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def read_stack_file(path: Path) -> dict[str, Any]:
    """The `config:` block of a stack file, or a ConfigError that says what is wrong with the file itself."""
    source = str(path)
    if not path.is_file():
        stacks = ", ".join(available_stacks(path.parent)) or "none"
        raise ConfigError(source, [ConfigIssue("file", str(path), f"an existing stack file (stacks here: {stacks})")])
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(source, [ConfigIssue(f"YAML at {where}", problem, "valid YAML syntax")]) from None
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise ConfigError(source, [ConfigIssue("config", document if not isinstance(document, dict) else
                                               document.get("config"), "a mapping under the top-level key 'config:'")])
    return document["config"]


def namespace_values(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the `mlserve:` keys (bare keys belong to the project too); other providers' keys are theirs."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        namespace, _, name = key.rpartition(":")
        if namespace in ("", NAMESPACE):
            values[name] = value
    return values


def encrypted_values(value: Any, path: str) -> list[ConfigIssue]:
    """`pulumi config set --secret` stores `{secure: v1:...}`; only the engine can decrypt it."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return [ConfigIssue(path, "an encrypted value (secure:)", "a plaintext value here: the offline plan reads the "
                            "stack file and cannot decrypt secrets (`pulumi preview` can); give --config-file a copy "
                            "with a placeholder value")]
    if isinstance(value, dict):
        return [issue for key, item in value.items() for issue in encrypted_values(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [issue for index, item in enumerate(value) for issue in encrypted_values(item, f"{path}[{index}]")]
    return []


def validate(raw: Mapping[str, Any], source: str) -> StackConfig:
    """Validate the whole namespace; raise one ConfigError listing every problem."""
    data = namespace_values(raw)
    encrypted = [issue for key, value in data.items() for issue in encrypted_values(value, f"{NAMESPACE}:{key}")]
    if encrypted:
        raise ConfigError(source, encrypted)
    try:
        cfg = StackConfig.model_validate(data)
    except ValidationError as err:
        raise from_validation_error(source, err, StackConfig, data, DISCRIMINATOR_TAGS) from None
    issues = rules.check(cfg)
    if issues:
        raise ConfigError(source, issues)
    return cfg


def load_stack(stack: str, root: Path = PROJECT_ROOT) -> StackConfig:
    path = stack_file(stack, root)
    return validate(read_stack_file(path), path.name)


def load_named(stack: str | None, config_file: Path | None) -> tuple[str, StackConfig]:
    """What a CLI's `--stack` / `--config-file` pair names: any stack file (the stack is named after it), else a
    checked-in stack, dev by default."""
    if config_file is not None:
        return config_file.name.removeprefix("Pulumi.").removesuffix(".yaml"), load_file(config_file)
    return stack or "dev", load_stack(stack or "dev")


def load_file(path: Path) -> StackConfig:
    return validate(read_stack_file(path), str(path))


def from_engine(config: Mapping[str, str], stack: str) -> StackConfig:
    """Under `pulumi up` the engine hands every key as a string: maps and lists JSON-encoded (secrets inside them
    decrypted), scalars as their text. Only the structured ones are decoded: a top-level scalar stays the string the
    CLI stored (`pulumi config set` never types one), and the models read "true" or "3" as the SDK's
    get_bool/get_int would, while a string key keeps a value such as "0123" intact."""
    decoded: dict[str, Any] = {}
    for key, text in config.items():
        if text.lstrip().startswith(("{", "[")):
            try:
                decoded[key] = json.loads(text)
                continue
            except json.JSONDecodeError:
                pass  # left as text: the model says what it expected
        decoded[key] = text
    return validate(decoded, f"Pulumi.{stack}.yaml")
