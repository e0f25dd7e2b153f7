"""Read stack configuration from a Pulumi.<stack>.yaml file or from the Pulumi engine, and validate it."""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import shutil
import string
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from . import rules
from .errors import NAMESPACE, ConfigError, ConfigIssue, did_you_mean, from_validation_error, key_path, nearest
from .models import DISCRIMINATOR_TAGS, StackConfig

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Python's own regular-expression parser (stand-ins for encrypted values are generated from the models' patterns);
# typeshed has no stubs for it.
sre_parser: Any = importlib.import_module("re._parser")
sre: Any = importlib.import_module("re._constants")


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
    """Keep the `mlserve:` keys; other providers' keys are theirs (`stray_keys` points at the misspelt ones)."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        namespace, _, name = key.rpartition(":")
        if namespace == NAMESPACE:
            values[name] = value
    return values


def stray_keys(raw: Mapping[str, Any]) -> list[ConfigIssue]:
    """Keys meant for mlserve that it would never read: one without a namespace (`gateway:`) or in a misspelt one
    (`mlserv:gateway`), each pointed at the nearest key of the namespace; and `aws:region` (the provider's default
    region) other than `mlserve:region`, which would put resources in two regions."""
    known = list(StackConfig.model_fields)
    issues: list[ConfigIssue] = []
    for key in raw:
        namespace, _, name = str(key).rpartition(":")
        if namespace == NAMESPACE or (namespace and not nearest(namespace, [NAMESPACE])):
            continue  # ours, or another provider's (aws:, kubernetes:, pulumi:)
        meant = [f"{NAMESPACE}:{k}" for k in known]
        hint = f" (did you mean '{NAMESPACE}:{name}'?)" if name in known else \
            did_you_mean(f"{NAMESPACE}:{name}", meant) or f" (its keys: {', '.join(meant)})"
        where = "has no namespace" if not namespace else f"is in the namespace {namespace!r}"
        issues.append(ConfigIssue(str(key), str(key), f"a key of the {NAMESPACE}: namespace{hint}: this one {where}, "
                                  f"so mlserve would never read it"))
    ours, provider = raw.get(f"{NAMESPACE}:region"), raw.get("aws:region")
    if isinstance(ours, str) and isinstance(provider, str) and provider != ours:
        issues.append(ConfigIssue("aws:region", provider, (
            f"{ours}, as mlserve:region, or no aws:region: aws:region ({provider}) is where the AWS provider "
            f"works and mlserve:region ({ours}) where the stack places its resources and builds their ARNs; "
            "two regions would split the stack")))
    return issues


@dataclass(frozen=True)
class Encrypted:
    """A value stored with `pulumi config set --secret` (`{secure: v1:...}`), as the offline tools see it: a secret
    whose plaintext is unknown, as `pulumi preview` without the secrets provider would see it. Validation runs on a
    stand-in that passes the key's own checks (so its presence is checked and nothing else is guessed at); the
    offline plan records every input built from the stand-in as a secret of unknown value."""
    path: str  # `mlserve:alerting.emails[0]`
    stand_in: str

    def get_command(self, stack: str) -> str:
        return f"pulumi config get --path '{self.path}' --stack {stack}"


def encrypted_of(cfg: StackConfig) -> tuple[Encrypted, ...]:
    """The encrypted values a stack file held when `cfg` was read from it (none when the engine decrypted them)."""
    return cfg.__pydantic_private__.get("_encrypted", ()) if cfg.__pydantic_private__ else ()


def is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"} and isinstance(value["secure"], str)


def secure_leaves(value: Any, loc: tuple = ()) -> list[tuple[tuple, str]]:
    """Where `{secure: ...}` values sit, as (location under the namespace, ciphertext)."""
    if is_secure(value):
        return [(loc, value["secure"])]
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in secure_leaves(item, (*loc, key))]
    if isinstance(value, list):
        return [leaf for index, item in enumerate(value) for leaf in secure_leaves(item, (*loc, index))]
    return []


def _replace(data: Any, loc: tuple, value: Any) -> Any:
    if not loc:
        return value
    head, rest = loc[0], loc[1:]
    if isinstance(data, dict):
        return {k: _replace(v, rest, value) if k == head else v for k, v in data.items()}
    return [_replace(v, rest, value) if i == head else v for i, v in enumerate(data)]


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return StackConfig.model_json_schema()


def _pick(node: Any, value: Any) -> Any:
    """Resolve `$ref`s, Optional's `anyOf` and a discriminated union (by the value's own tag)."""
    defs = _schema().get("$defs", {})
    for _ in range(20):
        if not isinstance(node, dict):
            return None
        if "$ref" in node:
            node = defs.get(node["$ref"].rsplit("/", 1)[-1])
        elif "oneOf" in node:
            tag = (node.get("discriminator") or {}).get("propertyName")
            target = (node.get("discriminator") or {}).get("mapping", {}).get(
                value.get(tag) if isinstance(value, dict) and tag else None)
            node = {"$ref": target} if target else None
        elif "anyOf" in node:
            options = [o for o in node["anyOf"] if o.get("type") != "null"]
            node = options[0] if len(options) == 1 else None
        else:
            return node
    return None


def _schema_at(data: dict[str, Any], loc: tuple) -> Any:
    """The JSON schema of the value at `loc` in the namespace's data, or None where the models have no such key."""
    node: Any = _schema()
    value: Any = data
    for part in loc:
        node = _pick(node, value)
        if node is None:
            return None
        if isinstance(part, int):
            node = node.get("items")
            value = value[part] if isinstance(value, list) and part < len(value) else None
        else:
            properties = node.get("properties") or {}
            node = properties[part] if part in properties else node.get("additionalProperties")
            value = value.get(part) if isinstance(value, dict) else None
    return _pick(node, value)


STAND_IN_ALPHABET = string.ascii_lowercase + string.digits
STAND_IN_EXTRA = "-._/:" + string.ascii_uppercase + "".join(chr(c) for c in range(33, 127))


def _char_test(items: list) -> Callable[[str], bool]:
    """A character class of the regular-expression parser as a test on one character."""
    negate = bool(items) and items[0][0] == sre.NEGATE
    categories = {
        sre.CATEGORY_DIGIT: str.isdigit, sre.CATEGORY_NOT_DIGIT: lambda c: not c.isdigit(),
        sre.CATEGORY_SPACE: str.isspace, sre.CATEGORY_NOT_SPACE: lambda c: not c.isspace(),
        sre.CATEGORY_WORD: lambda c: c.isalnum() or c == "_",
        sre.CATEGORY_NOT_WORD: lambda c: not (c.isalnum() or c == "_")}

    def member(c: str) -> bool:
        for op, arg in items[1:] if negate else items:
            if (op == sre.LITERAL and ord(c) == arg) or (op == sre.RANGE and arg[0] <= ord(c) <= arg[1]) or \
                    (op == sre.CATEGORY and categories.get(arg, lambda _: False)(c)):
                return True
        return False
    return (lambda c: not member(c)) if negate else member


def _sample(pattern: str, seed: str) -> str | None:
    """A string the pattern matches, its free characters drawn from `seed`'s digest (unique per key, stable
    between runs); None for a construct this does not generate."""
    stream = iter(hashlib.sha256(seed.encode()).digest() * 64)

    def char(test: Callable[[str], bool]) -> str | None:
        allowed = [c for c in STAND_IN_ALPHABET if test(c)] or [c for c in STAND_IN_EXTRA if test(c)]
        return allowed[next(stream) % len(allowed)] if allowed else None

    def walk(items) -> str | None:
        out = ""
        for op, arg in items:
            if op == sre.LITERAL:
                piece: str | None = chr(arg)
            elif op == sre.NOT_LITERAL:
                piece = char(lambda c, arg=arg: ord(c) != arg)
            elif op == sre.ANY:
                piece = char(lambda c: c != "\n")
            elif op == sre.IN:
                piece = char(_char_test(arg))
            elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
                low, high, body = arg
                count = low if low == high else max(low, min(high, 8))
                parts = [walk(body) for _ in range(count)]
                piece = None if None in parts else "".join(p for p in parts if p is not None)
            elif op == sre.SUBPATTERN:
                piece = walk(arg[-1])
            elif op == sre.BRANCH:
                piece = walk(arg[1][0])
            elif op == sre.AT:
                piece = ""
            else:
                return None
            if piece is None:
                return None
            out += piece
        return out

    try:
        text = walk(sre_parser.parse(pattern).data)
    except (re.error, StopIteration):
        return None
    if text is None or not re.search(pattern, text):
        return None
    tail = hashlib.sha256(seed.encode()).hexdigest()[:8]
    return text + tail if re.search(pattern, text + tail) else text  # an open-ended pattern: unique all the same


def _stand_in(data: dict[str, Any], loc: tuple, path: str) -> str | None:
    """A text that passes the checks the models make on this key, or None where the key is not text (a number,
    switch or choice decides what is declared: it cannot be unknown) or has checks no stand-in can be made for."""
    node = _schema_at(data, loc)
    if not isinstance(node, dict) or node.get("type") != "string" or "enum" in node or "const" in node:
        return None
    text = _sample(node.get("pattern") or "^.+$", path)
    if text is None:
        return None
    low, high = node.get("minLength", 0), node.get("maxLength")
    text = (text * (low // max(len(text), 1) + 1))[:max(low, len(text))] if len(text) < low else text
    return text[:high] if high is not None and len(text) > high else text


def _mentions(issue: ConfigIssue, encrypted: tuple[Encrypted, ...]) -> Encrypted | None:
    """The encrypted value a rule's finding is about: its key, a key under it, or its stand-in in the text."""
    text = f"{issue.given} {issue.allowed}"
    for secret in encrypted:
        if issue.path == secret.path or issue.path.startswith((f"{secret.path}.", f"{secret.path}[")) or \
                secret.path.startswith((f"{issue.path}.", f"{issue.path}[")) or secret.stand_in in text:
            return secret
    return None


def _on_encrypted(issue: ConfigIssue, encrypted: tuple[Encrypted, ...]) -> ConfigIssue:
    """A model's check that failed on a stand-in: say so instead of showing the stand-in as if it were given."""
    secret = _mentions(issue, encrypted)
    if secret is None:
        return issue
    return ConfigIssue(issue.path, f"an encrypted value (secure:) at {secret.path}",
                       f"{issue.allowed.replace(secret.stand_in, '<encrypted>')} (checked on a stand-in offline: store "
                       "it in plaintext, or check it with `pulumi preview`)")


def _with_stand_ins(data: dict[str, Any]) -> tuple[dict[str, Any], tuple[Encrypted, ...], list[ConfigIssue]]:
    encrypted, refused = [], []
    for loc, _ciphertext in secure_leaves(data):
        path = key_path(loc)
        stand_in = _stand_in(data, loc, path)
        if stand_in is None:
            refused.append(ConfigIssue(path, "an encrypted value (secure:)", (
                "a plaintext value here: the offline tools can stand in for encrypted text only (an address, a URL, "
                "an ARN); this key decides what is declared, so it cannot be unknown offline"
                if _schema_at(data, loc) is not None else "a known key (see docs/configuration.md)")))
            continue
        encrypted.append(Encrypted(path, stand_in))
        data = _replace(data, loc, stand_in)
    return data, tuple(encrypted), refused


def validate(raw: Mapping[str, Any], source: str) -> StackConfig:
    """Validate the whole namespace; raise one ConfigError listing every problem. Encrypted values are checked for
    presence only (`encrypted_of` lists them; `warnings_of` says what could not be checked)."""
    stray = stray_keys(raw)
    data, encrypted, refused = _with_stand_ins(namespace_values(raw))
    if refused:
        raise ConfigError(source, stray + refused)
    try:
        cfg = StackConfig.model_validate(data)
    except ValidationError as err:
        error = from_validation_error(source, err, StackConfig, data, DISCRIMINATOR_TAGS)
        raise ConfigError(source, stray + [_on_encrypted(issue, encrypted) for issue in error.issues]) from None
    issues = rules.check(cfg)
    unchecked = [issue for issue in issues if _mentions(issue, encrypted)]
    issues = stray + [issue for issue in issues if issue not in unchecked]
    if issues:
        raise ConfigError(source, issues)
    if encrypted:  # beside the fields (a frozen model), so that the plan and the warnings can find them
        object.__setattr__(cfg, "__pydantic_private__", {**(cfg.__pydantic_private__ or {}),
                                                         "_encrypted": encrypted, "_unchecked": tuple(unchecked)})
    return cfg


def warnings_of(cfg: StackConfig, source: str, stack: str) -> list[str]:
    """One line per encrypted value (and per rule that could not judge one): what was checked and how to see it."""
    unchecked: tuple[ConfigIssue, ...] = (cfg.__pydantic_private__ or {}).get("_unchecked", ())
    lines = [f"{source}: {secret.path} is encrypted (secure:): checked present, its value not checked offline; "
             f"`{secret.get_command(stack)}` shows it" for secret in encrypted_of(cfg)]
    for issue in unchecked:
        secret = _mentions(issue, encrypted_of(cfg))
        assert secret is not None
        lines.append(f"{source}: {issue.path}: not checked offline, it depends on the encrypted {secret.path} "
                     f"(the check: {issue.allowed.replace(secret.stand_in, '<encrypted>')})")
    return lines


def _announce(cfg: StackConfig, source: str, stack: str) -> StackConfig:
    for line in warnings_of(cfg, source, stack):
        print(f"warning: {line}", file=sys.stderr)
    return cfg


def load_stack(stack: str, root: Path = PROJECT_ROOT, decrypt: bool = False) -> StackConfig:
    """A checked-in stack, validated; `decrypt`: encrypted values read through the Pulumi CLI where it can."""
    return load_file(stack_file(stack, root), decrypt=decrypt, source=f"Pulumi.{stack}.yaml")


def load_named(stack: str | None, config_file: Path | None) -> tuple[str, StackConfig]:
    """What a CLI's `--stack` / `--config-file` pair names: any stack file (the stack is named after it), else a
    checked-in stack, dev by default."""
    if config_file is not None:
        return stack_of(config_file), load_file(config_file)
    return stack or "dev", load_stack(stack or "dev")


def load_file(path: Path, decrypt: bool = False, source: str | None = None) -> StackConfig:
    """Any stack file (the stack is named after it). Encrypted values stay unknown, with a warning line each;
    `decrypt` reads them through the stack's secrets provider with the Pulumi CLI first (`decrypted`)."""
    source = source or str(path)
    raw = read_stack_file(path)
    stack = stack_of(path)
    if decrypt and secure_leaves(namespace_values(raw)):
        raw, unreadable = decrypted(raw, stack, path.parent)
        for line in unreadable:
            print(f"warning: {source}: {line}", file=sys.stderr)
    return _announce(validate(raw, source), source, stack)


def stack_of(path: Path) -> str:
    return path.name.removeprefix("Pulumi.").removesuffix(".yaml")


def decrypted(raw: dict[str, Any], stack: str, cwd: Path) -> tuple[dict[str, Any], list[str]]:
    """The stack file's encrypted values in plaintext, read with `pulumi config get --path` (the CLI decrypts with
    the stack's own secrets provider: awskms, passphrase or Pulumi Cloud). What cannot be read stays encrypted,
    with a line that says why and which command to run where the CLI and the provider's credentials are."""
    cli = shutil.which("pulumi")
    unreadable: list[str] = []
    for key, value in list(raw.items()):
        namespace, _, name = key.rpartition(":")
        if namespace not in ("", NAMESPACE):
            continue  # other providers' keys: not read by the tools
        for loc, _ in secure_leaves(value):
            path = key_path((name, *loc))
            command = f"pulumi config get --path '{path}' --stack {stack}"
            if cli is None:
                unreadable.append(f"cannot decrypt {path}: no Pulumi CLI on PATH; where it and the stack's secrets "
                                  f"provider are reachable, `{command}` shows it")
                continue
            try:
                result = subprocess.run([cli, "config", "get", "--path", path, "--stack", stack, "--cwd", str(cwd)],
                                        capture_output=True, text=True, timeout=120, check=False)
            except (OSError, subprocess.TimeoutExpired) as error:
                unreadable.append(f"cannot decrypt {path}: `{command}` did not run ({error})")
                continue
            if result.returncode != 0:
                reason = (result.stderr.strip().splitlines() or ["no message"])[-1]
                unreadable.append(f"cannot decrypt {path}: `{command}` failed: {reason}")
                continue
            raw = {**raw, key: _replace(raw[key], loc, result.stdout.rstrip("\n"))}
    return raw, unreadable


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
